package channels_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/channels"
	"github.com/signoff/approval/internal/testkit"
)

// TestRedactionInMessages: a value a policy redacts never reaches a
// webhook body or an email, before or after an approver's edit; after the
// edit, the next approver's message carries the edited payload (what the
// vote binds), who edited it and what changed.
func TestRedactionInMessages(t *testing.T) {
	t.Parallel()
	const secret = "hunter2-SECRET-7f3a"
	original := `{"to":"ACME-ORIGINAL-PAYEE","amount":100,"password":"` + secret + `"}`
	edited := `{"to":"EVE-EDITED-PAYEE","amount":990000,"password":"` + secret + `"}`
	leaks := func(s string) bool { return testkit.Leaks(s, secret) }

	for _, edit := range []bool{false, true} {
		hook, hooks := hookReceiver(t, nil)
		mail := startMailServer(t, serverOpts{})
		email := newTestEmail(t, mail.addr)
		gate := newFixtureGate(t, func(c *approval.Config) {
			c.Channels = []approval.Channel{newWebhook(t, hook.URL), email}
			c.BaseURL = "https://ops.example.com/review"
		})
		require.NoError(t, gate.SetPolicy("payments", approval.Policy{
			Match:  approval.Name("pay"),
			Redact: []string{"password"},
			Chain: []approval.Level{
				{Name: "clerk", Approvers: []approval.Approver{approval.User("bob")}, Require: approval.Threshold(1)},
				{Name: "controller", Approvers: []approval.Approver{approval.User("alice")}, Require: approval.Threshold(1)},
			},
		}))
		ctx := context.Background()
		res, err := gate.Guard(ctx, approval.Action{Name: "pay", RequestedBy: "user-1", Payload: []byte(original)})
		require.NoError(t, err)
		tok, err := gate.IssueToken(res.RequestID, "bob", approval.VerdictApprove, time.Hour)
		require.NoError(t, err)
		d := approval.Decision{Token: tok, Verdict: approval.VerdictApprove}
		if edit {
			d.Payload = []byte(edited)
		}
		_, err = gate.Decide(ctx, res.RequestID, d)
		require.NoError(t, err)
		require.NoError(t, gate.Close(ctx)) // drains the outbox

		var toAlice *approval.Notification
		for _, h := range hooks() {
			require.False(t, leaks(string(h.body)), "edit=%v: a webhook body leaks the redacted value", edit)
			n, err := channels.DecodeWebhook(h.body)
			require.NoError(t, err)
			require.False(t, leaks(string(n.Action.Payload)), "edit=%v: a webhook payload leaks", edit)
			if n.Recipient == "alice" && n.Type == approval.NotifyRequested {
				toAlice = &n
			}
		}
		require.NotNil(t, toAlice, "the controller was notified")
		msgs := mail.messages()
		require.NotEmpty(t, msgs)
		var aliceMail string
		for _, m := range msgs {
			p := parseMail(t, m.data)
			require.False(t, leaks(string(m.data)+p.text+p.html), "edit=%v: an email leaks the redacted value", edit)
			if strings.Contains(p.header.Get("To"), "alice@") && strings.Contains(p.subject, "Approval needed") {
				aliceMail = p.text
			}
		}
		require.NotEmpty(t, aliceMail)
		if !edit {
			require.Nil(t, toAlice.Edit)
			require.NotContains(t, aliceMail, "edited")
			continue
		}
		require.Contains(t, string(toAlice.Action.Payload), "EVE-EDITED-PAYEE", "the webhook carries what the vote binds")
		require.Equal(t, "bob", toAlice.Edit.By)
		require.Len(t, toAlice.Edit.Changes, 2)
		require.Contains(t, aliceMail, "Payload edited by: bob")
		require.Contains(t, aliceMail, `to: "ACME-ORIGINAL-PAYEE" → "EVE-EDITED-PAYEE"`)
		require.Contains(t, aliceMail, "amount: 100 → 990000")
		require.Contains(t, aliceMail, toAlice.PayloadHash)
	}
}
