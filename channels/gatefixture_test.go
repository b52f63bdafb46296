package channels_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/fixture"
	"github.com/signoff/approval/memstore"
)

// newFixtureGate is a gate over a memstore with three policies:
//
//   - deploys: "deploy:*" needs one approval from alice or bob;
//   - pair: "pair:*" needs two, from alice and bob;
//   - self-service: "selfserve:*" needs carol or dave, who may not approve
//     their own.
func newFixtureGate(t *testing.T, mod ...func(*approval.Config)) *approval.Gate {
	t.Helper()
	cfg := approval.Config{
		Store:     memstore.New(),
		Directory: approval.StaticDirectory{},
	}
	for _, m := range mod {
		m(&cfg)
	}
	return fixture.NewGate(t, cfg, map[string]approval.Policy{
		"deploys": {Match: approval.Name("deploy:*"),
			Approvers: []approval.Approver{approval.User("alice"), approval.User("bob")}, RequiredApprovals: 1},
		"pair": {Match: approval.Name("pair:*"),
			Approvers: []approval.Approver{approval.User("alice"), approval.User("bob")}, RequiredApprovals: 2},
		"self-service": {Match: approval.Name("selfserve:*"),
			Approvers: []approval.Approver{approval.User("carol"), approval.User("dave")}, RequiredApprovals: 1},
	})
}

// guardAction opens a request for action name by requester and returns its ID.
func guardAction(t *testing.T, gate *approval.Gate, name, requester string) string {
	t.Helper()
	res, err := gate.Guard(context.Background(), approval.Action{Name: name, RequestedBy: requester,
		Message: "Roll out <!channel> & friends"})
	require.NoError(t, err)
	require.Equal(t, approval.OutcomePending, res.Status)
	return res.RequestID
}

func guardDeploy(t *testing.T, gate *approval.Gate) string {
	t.Helper()
	return guardAction(t, gate, "deploy:production", "ci")
}

// auditOf returns request id's audit trail, verified.
func auditOf(t *testing.T, gate *approval.Gate, id string) []approval.AuditEvent {
	t.Helper()
	return fixture.AuditTrail(t, gate, approval.AuditQuery{RequestID: id})
}

// requireApprovedBy checks that request id was approved by one vote of
// approver, with reason, recorded in the audit trail as the approver's,
// and that the trail still verifies.
func requireApprovedBy(t *testing.T, gate *approval.Gate, id, approver, reason string) {
	t.Helper()
	r, err := gate.Get(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, approval.StatusApproved, r.Status)
	require.Len(t, r.Votes, 1)
	require.Equal(t, approver, r.Votes[0].Approver)
	require.Equal(t, approval.VerdictApprove, r.Votes[0].Verdict)
	require.Equal(t, reason, r.Votes[0].Reason)

	var vote *approval.AuditEvent
	evs := auditOf(t, gate, id)
	for i := range evs {
		if evs[i].Type == approval.EventDecisionApprove {
			vote = &evs[i]
		}
	}
	require.NotNil(t, vote, "the vote is in the audit trail")
	require.Equal(t, approver, vote.Actor)
	require.Equal(t, reason, vote.Reason)
	require.Equal(t, approval.EventRequestApproved, evs[len(evs)-1].Type)
	require.NoError(t, approval.VerifyAuditChain(evs))
}

// postTo posts body to srv as contentType, with the given headers, and
// returns the answer's status, headers and body.
func postTo(t *testing.T, srv *httptest.Server, contentType string, body []byte, header map[string]string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", contentType)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, got
}
