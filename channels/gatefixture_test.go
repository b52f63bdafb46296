package channels_test

import (
	"context"
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
