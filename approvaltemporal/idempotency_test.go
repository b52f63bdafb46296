package approvaltemporal_test

import (
	"context"
	"testing"
	"time"

	"github.com/signoff/approval"
	"github.com/signoff/approval/approvaltemporal"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"
)

// A worker restart during the wait: the run is executed again from its
// start (its Guard activity runs again, which is more than a replay from
// history does), and finds the request the first execution made.
func TestApproveRestartMakesNoSecondRequest(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	first := f.newEnv("wf-restart")
	first.SetWorkflowRunTimeout(30 * time.Minute) // the worker goes away mid-wait
	first.ExecuteWorkflow(approveAndTransfer, wire("5000"), signalled)
	require.True(t, first.IsWorkflowCompleted())
	require.Error(t, first.GetWorkflowError())
	id := f.pending().ID

	second := f.newEnv("wf-restart")
	second.RegisterDelayedCallback(func() {
		require.Equal(t, id, f.pending().ID, "the same request, still open")
		f.decide(id, "alice", approval.VerdictApprove, nil)
		f.decide(id, "bob", approval.VerdictApprove, nil)
		f.deliver(second, "wf-restart", id, "approved")
	}, time.Minute)
	out := f.run(second, wire("5000"), signalled)

	require.Equal(t, approval.OutcomeApproved, out.Result.Status)
	require.Equal(t, id, out.Result.RequestID)
	require.Len(t, f.all(), 1, "one request for one step")
	require.Len(t, f.ran(), 1)
}

// Two workflows with the same action are two steps: each has its own
// request, and neither's approval runs the other's action. (Without the
// workflow in the action, the store would have given both one request,
// and one approval would have let only one of them run.)
func TestApproveTwoWorkflowsSameAction(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	a := wire("5000")
	acts := &approvaltemporal.Activities{Gate: f.gate}
	ctx := context.Background()

	one, err := acts.Guard(ctx, approvaltemporal.Bind(a, "wf-a", "run-1", "pay"))
	require.NoError(t, err)
	two, err := acts.Guard(ctx, approvaltemporal.Bind(a, "wf-b", "run-1", "pay"))
	require.NoError(t, err)
	again, err := acts.Guard(ctx, approvaltemporal.Bind(a, "wf-a", "run-1", "pay")) // wf-a's activity, retried
	require.NoError(t, err)
	require.Equal(t, approval.OutcomePending, one.Status)
	require.Equal(t, approval.OutcomePending, two.Status)
	require.NotEqual(t, one.RequestID, two.RequestID)
	require.Equal(t, one.RequestID, again.RequestID)
	require.Len(t, f.all(), 2)

	// Whole workflows: each waits for, and runs on, its own approval.
	for _, wid := range []string{"wf-c", "wf-d"} {
		env := f.newEnv(wid)
		var id string
		env.RegisterDelayedCallback(func() {
			r := requestOf(t, f, wid)
			id = r.ID
			f.decide(id, "alice", approval.VerdictApprove, nil)
			f.decide(id, "carol", approval.VerdictApprove, nil)
			f.deliver(env, wid, id, "approved")
		}, time.Minute)
		out := f.run(env, a, signalled)
		require.Equal(t, approval.OutcomeApproved, out.Result.Status)
		require.Equal(t, id, out.Result.RequestID)
	}
	ran := f.ran()
	require.Len(t, ran, 2)
	require.NotEqual(t, ran[0].RequestID, ran[1].RequestID)
	require.Len(t, f.all(), 4)
}

// requestOf returns the open request workflow wid made.
func requestOf(t *testing.T, f *fixture, wid string) *approval.Request {
	t.Helper()
	var found *approval.Request
	for _, r := range f.all() {
		if r.Status.Open() && r.Action.Metadata[approvaltemporal.MetadataWorkflowID] == wid {
			require.Nil(t, found, "two open requests for %s", wid)
			found = r
		}
	}
	require.NotNil(t, found, "no open request for %s", wid)
	return found
}

// A retried Guard activity that finds the request approved consumes it
// (Result.Consumed); Do then runs the action on its first attempt, and
// never on a later one.
func TestDoAfterGuardConsumed(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	acts := &approvaltemporal.Activities{Gate: f.gate}
	ctx := context.Background()
	a := approvaltemporal.Bind(wire("5000"), "wf-x", "run-1", "pay")
	res, err := acts.Guard(ctx, a)
	require.NoError(t, err)
	f.decide(res.RequestID, "alice", approval.VerdictApprove, nil)
	f.decide(res.RequestID, "bob", approval.VerdictApprove, nil)
	res, err = acts.Guard(ctx, a) // the retry, after the approval
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeApproved, res.Status)
	require.True(t, res.Consumed)
	res.Action = a

	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(f.transfer)
	_, err = env.ExecuteActivity(f.transfer, res)
	require.NoError(t, err)
	ran := f.ran()
	require.Len(t, ran, 1)
	require.Equal(t, res.RequestID, ran[0].RequestID)
	require.NotEmpty(t, ran[0].Artifact)

	// Without Consumed (an approval Approve did not use), the used
	// approval runs nothing.
	res.Consumed = false
	_, err = env.ExecuteActivity(f.transfer, res)
	require.ErrorContains(t, err, "already ran")
	require.Len(t, f.ran(), 1)
}

// Do refuses an action Approve did not bind.
func TestDoNeedsBoundAction(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(f.transfer)
	_, err := env.ExecuteActivity(f.transfer, approvaltemporal.Result{Status: approval.OutcomeApproved, Action: wire("1")})
	require.ErrorContains(t, err, "no IdempotencyKey")
	require.Empty(t, f.ran())
}

// Bind keeps long keys within approval.MaxIdempotencyKeyBytes.
func TestBindLongWorkflowID(t *testing.T) {
	t.Parallel()
	long := make([]byte, 400)
	for i := range long {
		long[i] = 'w'
	}
	a := approvaltemporal.Bind(wire("1"), string(long), "run-1", "pay")
	b := approvaltemporal.Bind(wire("1"), string(long), "run-2", "pay")
	require.LessOrEqual(t, len(a.IdempotencyKey), approval.MaxIdempotencyKeyBytes)
	require.NotEqual(t, a.IdempotencyKey, b.IdempotencyKey)
	require.Equal(t, string(long), a.Metadata[approvaltemporal.MetadataWorkflowID])
}

// A policy that approves the action as it is created (its only level
// does not apply): Approve's Guard consumes the approval, says so, and
// the transfer runs on its first attempt.
func TestApproveApprovedAtOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	require.NoError(t, f.gate.SetPolicy("small-refunds", approval.Policy{
		Match: approval.Name("refund"),
		Chain: []approval.Level{{
			Name: "lead", Approvers: []approval.Approver{approval.Group("finance")}, Require: approval.Threshold(1),
			When: approval.CostAtLeast(1000, "USD"),
		}},
	}))
	a := wire("10")
	a.Name, a.Cost = "refund", &approval.Cost{Amount: 10, Currency: "USD"}
	out := f.run(f.env, a, signalled)

	require.Equal(t, approval.OutcomeApproved, out.Result.Status)
	require.NotEmpty(t, out.Result.RequestID)
	require.True(t, out.Result.Consumed)
	require.Equal(t, time.Duration(0), out.Waited)
	ran := f.ran()
	require.Len(t, ran, 1)
	require.Equal(t, out.Result.RequestID, ran[0].RequestID)
	require.NotEmpty(t, ran[0].Artifact)
	require.Len(t, f.all(), 1)
}
