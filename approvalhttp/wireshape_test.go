package approvalhttp_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/approvalhttp"
)

// TestGuardResultCarriesEditedPayload: the Guard answer shows an edited
// payload that is JSON as JSON, and any other as text or base64, so that
// the Client reads back exactly the bytes the artifact binds, whatever
// their form.
func TestGuardResultCarriesEditedPayload(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var mu sync.Mutex
	var last []byte
	srv := f.tamperServer(func(r *http.Request, body []byte) []byte {
		mu.Lock()
		last = append([]byte(nil), body...)
		mu.Unlock()
		return body
	})
	agent := f.newClient(srv)
	for i, tc := range []struct {
		name, edited, field string
	}{
		{"compact JSON", `{"to":"DE89370400440532013000","amount":500}`, "payload"},
		{"an array", `[1,2,{"a":null}]`, "payload"},
		{"JSON with white space", "{\n  \"amount\": 500\n}\n", "payload_text"},
		{"JSON the encoder escapes", `{"note":"a<b & c>d"}`, "payload_text"},
		{"a JSON string", `"five hundred"`, "payload_text"},
		{"text", "pay five hundred\n", "payload_text"},
		{"bytes", "\xff\x00\x01", "payload_base64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := agentTransfer(5000 + float64(i))
			res, err := agent.Guard(f.ctx, a)
			require.NoError(t, err)
			f.approveEdited(res.RequestID, []byte(tc.edited))
			res, err = agent.Guard(f.ctx, a)
			require.NoError(t, err)
			require.Equal(t, approval.OutcomeModified, res.Status)
			require.Equal(t, []byte(tc.edited), res.Payload, "the exact bytes")

			mu.Lock()
			body := last
			mu.Unlock()
			var fields map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(body, &fields))
			got := []string{}
			for _, k := range []string{"payload", "payload_text", "payload_base64"} {
				if _, ok := fields[k]; ok {
					got = append(got, k)
				}
			}
			require.Equal(t, []string{tc.field}, got, string(body))
			if tc.field == "payload" {
				require.JSONEq(t, tc.edited, string(fields["payload"]), "JSON as itself")
			}
		})
	}
}

// TestClientReadsBase64GuardResult: a server of an earlier version
// answered the edited payload in base64 in "payload"; the Client still
// reads it.
func TestClientReadsBase64GuardResult(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	edited := `{"amount":1}`
	srv := f.tamperServer(func(r *http.Request, body []byte) []byte {
		return []byte(strings.Replace(string(body), `"payload":`+edited, `"payload":"eyJhbW91bnQiOjF9"`, 1))
	})
	a := agentTransfer(7000)
	res, err := f.newClient("").Guard(f.ctx, a)
	require.NoError(t, err)
	f.approveEdited(res.RequestID, []byte(edited))
	res, err = f.newClient(srv).Guard(f.ctx, a)
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeModified, res.Status)
	require.Equal(t, []byte(edited), res.Payload)
}

// TestActionBodyPayloadFields: POST /api/approvals takes the payload as
// JSON, as text in a string (as before), or in payload_text or
// payload_base64; more than one is refused.
func TestActionBodyPayloadFields(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for i, tc := range []struct {
		name, body string
		want       string
	}{
		{"JSON", `"payload":{"b":1, "a":2}`, `{"b":1, "a":2}`},
		{"a string is text", `"payload":"pay\nnow"`, "pay\nnow"},
		{"payload_text", `"payload_text":"{\"a\":1}"`, `{"a":1}`},
		{"payload_base64", `"payload_base64":"/wA="`, "\xff\x00"},
	} {
		body := `{"name":"wire-transfer","cost":{"amount":2000,"currency":"USD"},"run_id":"r` + string(rune('a'+i)) + `",` + tc.body + `}`
		r := f.do(req{method: http.MethodPost, path: "/api/approvals", auth: agentKey, body: body})
		require.Equal(t, http.StatusAccepted, r.StatusCode, tc.name+": "+r.text())
		var res struct {
			RequestID string `json:"request_id"`
		}
		r.json(t, &res)
		require.Equal(t, []byte(tc.want), f.request(res.RequestID).Action.Payload, tc.name)
	}
	f.do(req{method: http.MethodPost, path: "/api/approvals", auth: agentKey,
		body: `{"name":"read-report","payload":{"a":1},"payload_text":"x"}`}).
		problem(t, http.StatusBadRequest, "malformed_request")
}

// TestDecideBodyPayloadForms: an edit in a decision's body is JSON as
// itself, text in payload_text, bytes in payload_base64, or, as before, a
// base64 string in "payload".
func TestDecideBodyPayloadForms(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for i, tc := range []struct {
		name, field string
		want        string
	}{
		{"JSON as itself", `"payload":{"to":"x","amount":1}`, `{"to":"x","amount":1}`},
		{"payload_text", `"payload_text":"one\n"`, "one\n"},
		{"payload_base64", `"payload_base64":"/wA="`, "\xff\x00"},
		{"a base64 string, as before", `"payload":"eyJhbW91bnQiOjJ9"`, `{"amount":2}`},
	} {
		id := f.pending(transfer(3000 + float64(i)))
		r := f.decideAPI(id, approval.VerdictApprove, `{`+tc.field+`}`, "alice")
		require.Equal(t, http.StatusOK, r.StatusCode, tc.name+": "+r.text())
		got := f.request(id)
		require.NotNil(t, got.Edit, tc.name)
		require.Equal(t, []byte(tc.want), got.Edit.Payload, tc.name)
	}
	id := f.pending(transfer(4000))
	f.decideAPI(id, approval.VerdictApprove, `{"payload":{"a":1},"payload_base64":"AA=="}`, "alice").
		problem(t, http.StatusBadRequest, "malformed_request")
	f.decideAPI(id, approval.VerdictApprove, `{"payload":"not base64!"}`, "alice").
		problem(t, http.StatusBadRequest, "malformed_request")
}

// TestRequestDurationsAreStrings: every duration of the API's request
// object is a string in Go's syntax, and Client.Wait reads them back.
func TestRequestDurationsAreStrings(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	require.NoError(t, f.gate.SetPolicy("chain", approval.Policy{
		Match:            approval.Name("release:*"),
		ReminderInterval: 90 * time.Minute,
		ApprovalTTL:      2 * time.Hour,
		Chain: []approval.Level{{
			Name: "leads", Approvers: []approval.Approver{approval.User("alice")}, Require: approval.RequireAny,
			Timeout: 4 * time.Hour,
			Escalation: []approval.EscalationStep{
				{After: 30 * time.Minute, Action: approval.StepReminder},
				{Before: 1500 * time.Millisecond, Action: approval.StepNotify, To: []approval.Approver{approval.User("bob")}},
			},
		}},
	}))
	res, err := f.newClient("").Guard(f.ctx, approval.Action{Name: "release:web", RequestedBy: agentID})
	require.NoError(t, err)
	r := f.get("/api/approvals/"+res.RequestID, "carol")
	require.Equal(t, http.StatusOK, r.StatusCode, r.text())
	var got struct {
		ApprovalTTL any `json:"approval_ttl"`
		Policies    []struct {
			ReminderInterval any `json:"reminder_interval"`
			Chain            []struct {
				Timeout    any `json:"timeout"`
				Escalation []struct {
					After  any `json:"after"`
					Before any `json:"before"`
				} `json:"escalation"`
			} `json:"chain"`
		} `json:"policies"`
	}
	r.json(t, &got)
	require.Equal(t, "2h0m0s", got.ApprovalTTL)
	require.Len(t, got.Policies, 1)
	p := got.Policies[0]
	require.Equal(t, "1h30m0s", p.ReminderInterval)
	require.Equal(t, "4h0m0s", p.Chain[0].Timeout)
	require.Equal(t, "30m0s", p.Chain[0].Escalation[0].After)
	require.Nil(t, p.Chain[0].Escalation[0].Before, "a zero duration is left out")
	require.Equal(t, "1.5s", p.Chain[0].Escalation[1].Before)

	_, err = f.gate.Decide(f.ctx, res.RequestID, approval.Decision{Token: f.token(res.RequestID, "alice", approval.VerdictApprove), Verdict: approval.VerdictApprove})
	require.NoError(t, err)
	back, err := f.newClient("").Wait(f.ctx, res.RequestID)
	require.NoError(t, err)
	want := f.request(res.RequestID)
	require.Equal(t, want.ApprovalTTL, back.ApprovalTTL)
	require.Equal(t, want.Policies, back.Policies)
}

// TestClientRefusesAmbiguousPayload: a Guard answer with the edited
// payload in two fields at once is refused, failing closed.
func TestClientRefusesAmbiguousPayload(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	edited := `{"amount":1}`
	srv := f.tamperServer(func(r *http.Request, body []byte) []byte {
		return []byte(strings.Replace(string(body), `"payload":`+edited, `"payload":`+edited+`,"payload_text":"x"`, 1))
	})
	a := agentTransfer(8000)
	res, err := f.newClient("").Guard(f.ctx, a)
	require.NoError(t, err)
	f.approveEdited(res.RequestID, []byte(edited))
	res, err = f.newClient(srv).Guard(f.ctx, a)
	require.ErrorIs(t, err, approvalhttp.ErrUnverified)
	require.ErrorContains(t, err, "more than one")
	require.Equal(t, approval.OutcomeDenied, res.Status)
}
