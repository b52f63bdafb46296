package approval_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// editedTransfer is the reviewer-trust scenario: bob approves a transfer
// with an edit to another payee and amount; carol decides next.
var (
	originalPayment = []byte(`{"to":"ACME-ORIGINAL-PAYEE","amount":100,"password":"hunter2-SECRET"}`)
	editedPayment   = []byte(`{"to":"EVE-EDITED-PAYEE","amount":990000,"password":"hunter2-SECRET"}`)
)

// TestNotificationsCarryTheEditedPayload: once an approver edited the
// payload, the notifications of the request show what the next vote binds
// (the edited payload and its hashes), who edited it and what changed,
// redacted as the action is.
func TestNotificationsCarryTheEditedPayload(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	f := newFixture(t, inProcess, func(c *approval.Config) {
		c.Channels = []approval.Channel{rec}
		c.BaseURL = "https://approvals.example.com"
	})
	require.NoError(t, f.gate.SetPolicy("payments", approval.Policy{
		Match:  approval.Name("pay"),
		Redact: []string{"password"},
		Chain: []approval.Level{
			{Name: "clerk", Approvers: []approval.Approver{approval.User("bob")}, Require: approval.Threshold(1)},
			{Name: "controller", Approvers: []approval.Approver{approval.User("carol")}, Require: approval.Threshold(1)},
		},
	}))
	id := f.Pending(approval.Action{Name: "pay", RequestedBy: "user-1", Payload: originalPayment})
	_, err := f.gate.Decide(f.ctx, id, approval.Decision{Token: f.Token(id, "bob", approval.VerdictApprove),
		Verdict: approval.VerdictApprove, Payload: editedPayment})
	require.NoError(t, err)
	require.NoError(t, f.gate.Close(f.ctx)) // drains the notifications

	r := f.Get(id)
	var toCarol *approval.Notification
	for _, n := range rec.sent() {
		if n.Recipient == "carol" && n.Type == approval.NotifyRequested {
			toCarol = &n
		}
		body, err := json.Marshal(n)
		require.NoError(t, err)
		require.NotContains(t, string(body), "hunter2", "no notification carries the redacted value")
		require.NotContains(t, string(n.Action.Payload), "hunter2")
	}
	require.NotNil(t, toCarol, "the controller level was notified")
	require.Equal(t, r.Edit.ActionHash, toCarol.ActionHash, "the hashes are those a vote binds")
	require.Equal(t, r.Edit.PayloadHash, toCarol.PayloadHash)
	require.JSONEq(t, `{"to":"EVE-EDITED-PAYEE","amount":990000,"password":"[redacted]"}`, string(toCarol.Action.Payload))
	require.NotNil(t, toCarol.Edit)
	require.Equal(t, "bob", toCarol.Edit.By)
	require.Equal(t, r.ActionHash, toCarol.Edit.OriginalActionHash)
	require.Equal(t, r.PayloadHash, toCarol.Edit.OriginalPayloadHash)
	require.Equal(t, []approval.PayloadChange{
		{Path: "amount", Kind: approval.ChangeChanged, Old: json.RawMessage(`100`), New: json.RawMessage(`990000`)},
		{Path: "to", Kind: approval.ChangeChanged, Old: json.RawMessage(`"ACME-ORIGINAL-PAYEE"`), New: json.RawMessage(`"EVE-EDITED-PAYEE"`)},
	}, toCarol.Edit.Changes)
}

// TestDecisionBindsTheActionShown: a decision that names the action hash
// its approver was shown is refused, audited, when another approver
// edited the payload in between; with the edited hash it counts.
func TestDecisionBindsTheActionShown(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := transfer(5000)
	id := f.Pending(a)
	shown := f.Get(id).ActionHash // carol opens the page

	_, err := f.gate.Decide(f.ctx, id, approval.Decision{Token: f.Token(id, "bob", approval.VerdictApprove),
		Verdict: approval.VerdictApprove, Payload: []byte(`{"to":"EVE","amount":990000}`)})
	require.NoError(t, err)

	_, err = f.gate.Decide(f.ctx, id, approval.Decision{Token: f.Token(id, "carol", approval.VerdictApprove),
		Verdict: approval.VerdictApprove, ActionHash: shown})
	require.ErrorIs(t, err, approval.ErrActionChanged)
	require.ErrorContains(t, err, "bob edited the payload")
	r := f.Get(id)
	require.Len(t, r.Votes, 1, "the refused vote changed nothing")
	require.Equal(t, approval.StatusPending, r.Status)
	last := f.lastEvent()
	require.Equal(t, approval.EventDecisionRejected, last.Type)
	require.Equal(t, "carol", last.Actor)

	r, err = f.gate.Decide(f.ctx, id, approval.Decision{Token: f.Token(id, "carol", approval.VerdictApprove),
		Verdict: approval.VerdictApprove, ActionHash: r.Edit.ActionHash})
	require.NoError(t, err)
	require.Equal(t, approval.StatusApproved, r.Status)

	// A deny bound to a stale view is refused the same way.
	id2 := f.Pending(transfer(6000))
	stale := f.Get(id2).ActionHash
	_, err = f.gate.Decide(f.ctx, id2, approval.Decision{Token: f.Token(id2, "dave", approval.VerdictApprove),
		Verdict: approval.VerdictApprove, Payload: []byte(`{"amount":1}`)})
	require.NoError(t, err)
	_, err = f.gate.Decide(f.ctx, id2, approval.Decision{Token: f.Token(id2, "erin", approval.VerdictDeny),
		Verdict: approval.VerdictDeny, ActionHash: stale})
	require.ErrorIs(t, err, approval.ErrActionChanged)
}

func TestDiffPayloads(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		old, new string
		keys     []string
		want     []string
	}{
		{"key order and white space are no change", `{"a":1,"b":[1,2]}`, ` { "b" : [1, 2], "a" : 1 } `, nil, nil},
		{"changed, added, removed", `{"a":1,"b":"x","c":true}`, `{"a":2,"c":true,"d":null}`, nil,
			[]string{"a: 1 → 2", "b: removed (was \"x\")", "d: added null"}},
		{"numbers as written", `{"n":1.0}`, `{"n":1}`, nil, []string{"n: 1.0 → 1"}},
		{"big numbers exactly", `{"id":9007199254740993}`, `{"id":9007199254740992}`, nil,
			[]string{"id: 9007199254740993 → 9007199254740992"}},
		{"nested and arrays", `{"lines":[{"sku":"A","qty":1}]}`, `{"lines":[{"sku":"A","qty":5},{"sku":"B"}]}`, nil,
			[]string{"lines[0].qty: 1 → 5", `lines[1]: added {"sku":"B"}`}},
		{"odd names quoted", `{"a.b":1,"":2}`, `{"a.b":3,"":4}`, nil, []string{`[""]: 2 → 4`, `["a.b"]: 1 → 3`}},
		{"type change", `{"a":{"x":1}}`, `{"a":[1]}`, nil, []string{`a: {"x":1} → [1]`}},
		{"redacted value changed: listed, masked", `{"to":"x","Password":"old-secret"}`, `{"to":"x","Password":"new-secret"}`,
			[]string{"password"}, []string{`Password: "[redacted]" → "[redacted]"`}},
		{"redacted inside an added value", `{}`, `{"auth":{"password":"s3cret","user":"u"}}`, []string{"password"},
			[]string{`auth: added {"password":"[redacted]","user":"u"}`}},
		{"html is not escaped here", `{"a":"<b>"}`, `{"a":"&"}`, nil, []string{`a: "<b>" → "&"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs, err := approval.DiffPayloads([]byte(tc.old), []byte(tc.new), tc.keys)
			require.NoError(t, err)
			var got []string
			for _, c := range cs {
				got = append(got, c.String())
			}
			require.Equal(t, tc.want, got)
		})
	}
	for _, bad := range [][2]string{{`{"a":1}`, `not json`}, {``, `{}`}, {`{} {}`, `{}`}} {
		_, err := approval.DiffPayloads([]byte(bad[0]), []byte(bad[1]), nil)
		require.ErrorIs(t, err, approval.ErrInvalidAction, "%q", bad)
	}
}

// TestStanding: the progress a reviewer is shown, per policy and level.
func TestStanding(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.Pending(transfer(5000))
	st := f.Get(id).Standing()
	require.Equal(t, []approval.PolicyStanding{{Policy: "high_spend", Level: 0, Levels: 1, Units: []approval.UnitStanding{
		{Approvers: []approval.Approver{approval.Group("finance")}, Need: 2}}}}, st)
	_, err := f.Decide(id, "bob", approval.VerdictApprove)
	require.NoError(t, err)
	st = f.Get(id).Standing()
	require.Equal(t, []string{"bob"}, st[0].Units[0].ApprovedBy)
	require.False(t, st[0].Met)
	_, err = f.Decide(id, "carol", approval.VerdictApprove)
	require.NoError(t, err)
	st = f.Get(id).Standing()
	require.True(t, st[0].Met)
	require.Equal(t, 1, st[0].Level, "a met policy is past its last level")
	require.Nil(t, st[0].Units)
	require.Equal(t, []string{"bob", "carol"}, st[0].ApprovedBy)
}
