package approvaltemporal_test

import (
	"context"
	"testing"
	"time"

	"github.com/signoff/approval"
	"github.com/signoff/approval/approvaltemporal"
	"github.com/signoff/approval/memstore"
	"github.com/stretchr/testify/require"
)

// recorder is an Observer that hands over the resolutions it hears.
type recorder chan approval.Observation

func (r recorder) Observe(_ context.Context, o approval.Observation) {
	if o.Kind == approval.ObserveResolved {
		r <- o
	}
}

func (r recorder) next(t *testing.T) approval.Observation {
	t.Helper()
	select {
	case o := <-r:
		return o
	case <-time.After(10 * time.Second):
		t.Fatal("no resolution observed")
		return approval.Observation{}
	}
}

// The Notifier signals only requests Approve made, and the next observer
// hears every observation after it.
func TestNotifierSignalsOnlyWorkflowRequests(t *testing.T) {
	t.Parallel()
	sig := make(signals, 4)
	next := make(recorder, 4)
	n := approvaltemporal.NewNotifier(sig, approvaltemporal.NotifierOptions{Next: next})
	_, priv, err := approval.GenerateKeys()
	require.NoError(t, err)
	g, err := approval.New(approval.Config{Store: memstore.New(), SigningKey: priv, Observer: n})
	require.NoError(t, err)
	t.Cleanup(func() { _ = g.Close(context.Background()) })
	require.NoError(t, g.SetPolicy("wires", approval.Policy{Match: approval.Name("wire-transfer"), Approvers: []approval.Approver{approval.User("alice")}, RequiredApprovals: 1}))
	ctx := context.Background()

	// Resolved before Attach: nothing to read the request with, no signal.
	early, err := g.Guard(ctx, approvaltemporal.Bind(wire("1"), "wf-early", "run-1", "pay"))
	require.NoError(t, err)
	_, err = g.Cancel(ctx, early.RequestID, "ops", "")
	require.NoError(t, err)
	require.Equal(t, early.RequestID, next.next(t).RequestID)
	n.Attach(g)

	plain, err := g.Guard(ctx, wire("2")) // not made by Approve
	require.NoError(t, err)
	_, err = g.Cancel(ctx, plain.RequestID, "ops", "")
	require.NoError(t, err)
	require.Equal(t, plain.RequestID, next.next(t).RequestID)

	bound, err := g.Guard(ctx, approvaltemporal.Bind(wire("3"), "wf-9", "run-9", "pay"))
	require.NoError(t, err)
	_, err = g.Cancel(ctx, bound.RequestID, "ops", "")
	require.NoError(t, err)
	require.Equal(t, bound.RequestID, next.next(t).RequestID)

	// The Notifier signals before the next observer hears the
	// observation: every signal it sent is in the channel by now.
	require.Len(t, sig, 1)
	s := <-sig
	require.Equal(t, sent{workflowID: "wf-9", runID: "run-9", name: approvaltemporal.SignalName,
		signal: approvaltemporal.Signal{RequestID: bound.RequestID, Outcome: "cancelled"}}, s)
}
