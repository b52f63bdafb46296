package approvalhttp_test

import (
	"crypto/ed25519"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/approvalhttp"
)

// TestClientModifiedAndConditions: reviewers answer through the JSON API
// with an edited payload and conditions; the remote agent's Guard gets
// OutcomeModified with the edited payload and the signed conditions, and a
// deny's structured reason reaches it too.
func TestClientModifiedAndConditions(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	agent := f.newClient("")
	a := agentTransfer(5000)
	a.Constraints = []string{"window <= 2h"}
	res, err := agent.Guard(f.ctx, a)
	require.NoError(t, err)
	id := res.RequestID
	edited := []byte(`{"to":"DE89370400440532013000","amount":500}`)

	// A widening is refused over the API too.
	f.decideAPI(id, approval.VerdictApprove, jsonBody(t, map[string]any{"conditions": []string{"window <= 3h"}}), "alice").
		problem(t, http.StatusUnprocessableEntity, "invalid_decision")
	r := f.decideAPI(id, approval.VerdictApprove, jsonBody(t, map[string]any{
		"conditions": []string{"window <= 30m"}, "payload": edited, "reason": "smaller amount"}), "alice")
	require.Equal(t, http.StatusOK, r.StatusCode, r.text())
	r = f.decideAPI(id, approval.VerdictApprove, "", "bob")
	require.Equal(t, http.StatusOK, r.StatusCode, r.text())

	res, err = agent.Guard(f.ctx, a)
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeModified, res.Status)
	require.Equal(t, edited, res.Payload)
	require.Equal(t, []string{"window <= 30m"}, res.Conditions)
	run := a
	run.Payload = res.Payload
	_, err = approval.VerifyArtifactAt(res.Artifact, run, []ed25519.PublicKey{f.pub}, f.clock.Now())
	require.NoError(t, err, "the artifact binds the edited payload")

	// A server that answers modified with a payload of its own is refused.
	srv := f.tamperServer(func(r *http.Request, body []byte) []byte {
		return []byte(strings.Replace(string(body), `"payload":{"amount":1}`, `"payload":{"amount":2}`, 1))
	})
	b := agentTransfer(7000)
	res, err = agent.Guard(f.ctx, b)
	require.NoError(t, err)
	f.approveEdited(res.RequestID, []byte(`{"amount":1}`))
	res, err = f.newClient(srv).Guard(f.ctx, b)
	require.ErrorIs(t, err, approvalhttp.ErrUnverified)
	require.Equal(t, approval.OutcomeDenied, res.Status)

	// A deny's structured reason reaches the agent.
	c := agentTransfer(9000)
	res, err = agent.Guard(f.ctx, c)
	require.NoError(t, err)
	r = f.decideAPI(res.RequestID, approval.VerdictDeny, jsonBody(t, map[string]any{
		"denial": approval.Denial{Code: "too-broad", Retry: approval.RetryChanged, Hint: "under 1000"}}), "alice")
	require.Equal(t, http.StatusOK, r.StatusCode, r.text())
	res, err = agent.Guard(f.ctx, c)
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeDenied, res.Status)
	require.Equal(t, &approval.Denial{Code: "too-broad", Retry: approval.RetryChanged, Hint: "under 1000"}, res.Denial)
}

// approveEdited approves request id with payload edited (alice) and
// plainly (bob).
func (f *fixture) approveEdited(id string, payload []byte) {
	f.t.Helper()
	_, err := f.gate.Decide(f.ctx, id, approval.Decision{Token: f.token(id, "alice", approval.VerdictApprove), Verdict: approval.VerdictApprove, Payload: payload})
	require.NoError(f.t, err)
	_, err = f.gate.Decide(f.ctx, id, approval.Decision{Token: f.token(id, "bob", approval.VerdictApprove), Verdict: approval.VerdictApprove})
	require.NoError(f.t, err)
}

// TestReuseOverTheAPI: reviewers grant a reusable approval through the
// JSON API; the remote agent's identical calls use it, up to its count.
func TestReuseOverTheAPI(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	require.NoError(t, f.gate.SetPolicy("high_spend", approval.Policy{
		Match:             approval.CostAtLeast(1000, "USD"),
		Approvers:         []approval.Approver{approval.Group("finance")},
		RequiredApprovals: 2,
		MaxReuse:          approval.Reuse{For: time.Hour, Uses: 2},
	}))
	agent := f.newClient("")
	a := agentTransfer(5000)
	res, err := agent.Guard(f.ctx, a)
	require.NoError(t, err)
	id := res.RequestID
	f.decideAPI(id, approval.VerdictApprove, `{"reuse":{"for":"2h","uses":2}}`, "alice").
		problem(t, http.StatusUnprocessableEntity, "invalid_decision")
	for _, who := range []string{"alice", "bob"} {
		r := f.decideAPI(id, approval.VerdictApprove, `{"reuse":{"for":"30m","uses":2}}`, who)
		require.Equal(t, http.StatusOK, r.StatusCode, r.text())
	}
	for range 2 {
		res, err = agent.Guard(f.ctx, a)
		require.NoError(t, err)
		require.Equal(t, approval.OutcomeApproved, res.Status)
		require.Equal(t, id, res.RequestID)
	}
	res, err = agent.Guard(f.ctx, a)
	require.NoError(t, err)
	require.Equal(t, approval.OutcomePending, res.Status)
	require.NotEqual(t, id, res.RequestID)
}
