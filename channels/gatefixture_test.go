package channels_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
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
	_, priv, err := approval.GenerateKeys()
	require.NoError(t, err)
	cfg := approval.Config{
		Store:      memstore.New(),
		SigningKey: priv,
		Directory:  approval.StaticDirectory{},
		Logger:     slog.New(slog.DiscardHandler),
	}
	for _, m := range mod {
		m(&cfg)
	}
	gate, err := approval.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = gate.Close(context.Background()) })
	for name, p := range map[string]approval.Policy{
		"deploys": {Match: approval.Name("deploy:*"),
			Approvers: []approval.Approver{approval.User("alice"), approval.User("bob")}, RequiredApprovals: 1},
		"pair": {Match: approval.Name("pair:*"),
			Approvers: []approval.Approver{approval.User("alice"), approval.User("bob")}, RequiredApprovals: 2},
		"self-service": {Match: approval.Name("selfserve:*"),
			Approvers: []approval.Approver{approval.User("carol"), approval.User("dave")}, RequiredApprovals: 1},
	} {
		require.NoError(t, gate.SetPolicy(name, p))
	}
	return gate
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
	var all []approval.AuditEvent
	q := approval.AuditQuery{RequestID: id}
	for {
		p, err := gate.ListAudit(context.Background(), q)
		require.NoError(t, err)
		all = append(all, p.Events...)
		if p.Next == "" {
			break
		}
		q.Cursor = p.Next
	}
	return all
}
