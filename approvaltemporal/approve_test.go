package approvaltemporal_test

import (
	"context"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/signoff/approval"
	"github.com/signoff/approval/approvaltemporal"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
)

func startOptions(workflowID string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{ID: workflowID, TaskQueue: "payments"}
}

// A long poll, so that a result within it proves the signal woke the
// workflow.
var signalled = approvaltemporal.Options{PollInterval: 24 * time.Hour}

func TestApproveTwoReviewers(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	var id string
	f.env.RegisterDelayedCallback(func() {
		r := f.pending()
		id = r.ID
		require.Equal(t, "temporal:wf-1/default-test-run-id/wire-transfer", r.Action.IdempotencyKey)
		require.Equal(t, "wf-1", r.Action.Metadata[approvaltemporal.MetadataWorkflowID])
		f.decide(id, "alice", approval.VerdictApprove, nil)
		f.decide(id, "bob", approval.VerdictApprove, nil)
		f.deliver(f.env, "wf-1", id, "approved")
	}, 10*time.Minute)
	a := wire("5000")
	out := f.run(f.env, a, signalled)

	require.Equal(t, approval.OutcomeApproved, out.Result.Status)
	require.Equal(t, id, out.Result.RequestID)
	require.False(t, out.Result.Consumed)
	require.Equal(t, 10*time.Minute, out.Waited, "the signal woke the workflow, not the poll")

	// The transfer activity consumed the approval, and ran with its artifact.
	ran := f.ran()
	require.Len(t, ran, 1)
	require.Equal(t, approval.OutcomeApproved, ran[0].Status)
	require.Equal(t, id, ran[0].RequestID)
	art, err := approval.VerifyArtifactAt(ran[0].Artifact, out.Result.Action, []ed25519.PublicKey{f.pub}, f.clock.Now())
	require.NoError(t, err)
	require.Equal(t, id, art.RequestID)
	r, err := f.gate.Get(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, approval.StatusConsumed, r.Status)

	// The step's key remembers it: the same Guard does not ask again.
	res, err := f.gate.Guard(context.Background(), out.Result.Action)
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeAlreadyRan, res.Status)
	require.Len(t, f.all(), 1)
}

func TestApproveDenied(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	denial := &approval.Denial{Code: "too-broad", Retry: approval.RetryChanged, Hint: "split it in two"}
	var id string
	f.env.RegisterDelayedCallback(func() {
		id = f.pending().ID
		f.decide(id, "carol", approval.VerdictDeny, denial)
		f.deliver(f.env, "wf-1", id, "denied")
	}, 5*time.Minute)
	out := f.run(f.env, wire("9000"), signalled)

	require.Equal(t, approval.OutcomeDenied, out.Result.Status)
	require.Equal(t, id, out.Result.RequestID)
	require.Equal(t, denial, out.Result.Denial)
	require.Contains(t, out.Result.Reason, "carol")
	require.Equal(t, 5*time.Minute, out.Waited)
	require.Empty(t, f.ran(), "a denied transfer does not run")
}

// The policy's timeout: the gate's Tick times the request out, and the
// Notifier signals the workflow.
func TestApprovePolicyTimeout(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	var id string
	f.env.RegisterDelayedCallback(func() {
		id = f.pending().ID
		f.clock.Add(61 * time.Minute) // past the policy's Timeout of 1h
		n, err := f.gate.Tick(context.Background(), 0)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		f.deliver(f.env, "wf-1", id, "timed_out")
	}, 30*time.Minute)
	out := f.run(f.env, wire("100"), signalled)

	require.Equal(t, approval.OutcomeTimedOut, out.Result.Status)
	require.Equal(t, id, out.Result.RequestID)
	require.Equal(t, 30*time.Minute, out.Waited)
	require.Empty(t, f.ran())
}

// The workflow's own timeout (Options.Timeout), by workflow time: Approve
// cancels the request and returns timed out.
func TestApproveWorkflowTimeout(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	out := f.run(f.env, wire("100"), approvaltemporal.Options{Timeout: 20 * time.Minute, PollInterval: 3 * time.Minute})

	require.Equal(t, approval.OutcomeTimedOut, out.Result.Status)
	require.Contains(t, out.Result.Reason, "workflow's timeout of 20m0s")
	require.Equal(t, 20*time.Minute, out.Waited)
	r, err := f.gate.Get(context.Background(), out.Result.RequestID)
	require.NoError(t, err)
	require.Equal(t, approval.StatusCancelled, r.Status, "nobody is asked to approve what no workflow waits for")
	require.Empty(t, f.ran())
}

func TestApproveCancelled(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	var id string
	f.env.RegisterDelayedCallback(func() {
		id = f.pending().ID
		_, err := f.gate.Cancel(context.Background(), id, "ops", "the invoice was withdrawn")
		require.NoError(t, err)
		f.deliver(f.env, "wf-1", id, "cancelled")
	}, 7*time.Minute)
	out := f.run(f.env, wire("100"), signalled)

	require.Equal(t, approval.OutcomeCancelled, out.Result.Status)
	require.Equal(t, id, out.Result.RequestID)
	require.Contains(t, out.Result.Reason, "the invoice was withdrawn")
	require.Equal(t, 7*time.Minute, out.Waited)
	require.Empty(t, f.ran())
}

// The workflow's cancellation cancels the request.
func TestApproveWorkflowCancelled(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	var id string
	f.env.RegisterDelayedCallback(func() {
		id = f.pending().ID
		f.env.CancelWorkflow()
	}, 3*time.Minute)
	f.env.ExecuteWorkflow(approveAndTransfer, wire("100"), signalled)
	require.True(t, f.env.IsWorkflowCompleted())
	var canceled *temporal.CanceledError
	require.ErrorAs(t, f.env.GetWorkflowError(), &canceled)
	r, err := f.gate.Get(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, approval.StatusCancelled, r.Status)
}

// The safety net: the signal is lost (the Notifier's process could not
// reach Temporal), and the workflow's poll finds the approval.
func TestApproveSignalLost(t *testing.T) {
	t.Parallel()
	f := newFixture(t, lostSignals{})
	f.env.RegisterDelayedCallback(func() {
		id := f.pending().ID
		f.decide(id, "alice", approval.VerdictApprove, nil)
		f.decide(id, "bob", approval.VerdictApprove, nil)
	}, 10*time.Minute)
	out := f.run(f.env, wire("5000"), approvaltemporal.Options{PollInterval: 15 * time.Minute})

	require.Equal(t, approval.OutcomeApproved, out.Result.Status)
	require.Equal(t, 15*time.Minute, out.Waited, "the first poll after the decision saw it")
	require.Len(t, f.ran(), 1)
}

// A signal for another request wakes nothing.
func TestApproveIgnoresOtherSignals(t *testing.T) {
	t.Parallel()
	f := newFixture(t, lostSignals{})
	f.env.RegisterDelayedCallback(func() {
		f.env.SignalWorkflow(approvaltemporal.SignalName, approvaltemporal.Signal{RequestID: "req_other", Outcome: "approved"})
	}, time.Minute)
	out := f.run(f.env, wire("5000"), approvaltemporal.Options{Timeout: 30 * time.Minute, PollInterval: time.Hour})
	require.Equal(t, approval.OutcomeTimedOut, out.Result.Status)
	require.Equal(t, 30*time.Minute, out.Waited)
}

// Do consumes the approval once: a retry of the activity after its
// function failed finds it used, and fails for good.
func TestDoRunsOncePerApproval(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.failFirst = true
	f.env.RegisterDelayedCallback(func() {
		id := f.pending().ID
		f.decide(id, "alice", approval.VerdictApprove, nil)
		f.decide(id, "bob", approval.VerdictApprove, nil)
		f.deliver(f.env, "wf-1", id, "approved")
	}, time.Minute)
	f.env.ExecuteWorkflow(approveAndTransfer, wire("5000"), signalled)
	require.True(t, f.env.IsWorkflowCompleted())
	var app *temporal.ApplicationError
	require.ErrorAs(t, f.env.GetWorkflowError(), &app)
	require.Equal(t, approvaltemporal.ErrTypeAlreadyRan, app.Type())
	require.True(t, app.NonRetryable())
	require.Len(t, f.ran(), 1, "the function ran once")
}

// An action no policy matches is approved with no request, and runs.
func TestApproveNoPolicy(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	a := wire("1")
	a.Name = "refund"
	out := f.run(f.env, a, signalled)
	require.Equal(t, approval.OutcomeApproved, out.Result.Status)
	require.Empty(t, out.Result.RequestID)
	require.Equal(t, time.Duration(0), out.Waited)
	require.Len(t, f.ran(), 1)
	require.Equal(t, approval.ReasonNoPolicyMatched, f.ran()[0].Reason)
	require.Empty(t, f.all())
}

// An invalid action fails the workflow at once (no retries).
func TestApproveInvalidAction(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	a := wire("1")
	a.RequestedBy = ""
	f.env.ExecuteWorkflow(approveAndTransfer, a, signalled)
	var app *temporal.ApplicationError
	require.ErrorAs(t, f.env.GetWorkflowError(), &app)
	require.Equal(t, approvaltemporal.ErrTypeInvalid, app.Type())
	require.True(t, app.NonRetryable())
	require.Empty(t, f.all())
}

// An approval that expired unused before the workflow saw it (the signal
// was lost, and the poll came after the approval's TTL) is asked for
// again: the key is free after an expiry.
func TestApproveAsksAgainAfterExpiry(t *testing.T) {
	t.Parallel()
	f := newFixture(t, lostSignals{})
	var first, second string
	f.env.RegisterDelayedCallback(func() {
		first = f.pending().ID
		f.decide(first, "alice", approval.VerdictApprove, nil)
		f.decide(first, "bob", approval.VerdictApprove, nil)
		f.clock.Add(2 * time.Hour) // past the approval's TTL of 1h
		n, err := f.gate.Tick(context.Background(), 0)
		require.NoError(t, err)
		require.Equal(t, 1, n)
	}, 10*time.Minute)
	f.env.RegisterDelayedCallback(func() {
		second = f.pending().ID
		f.decide(second, "alice", approval.VerdictApprove, nil)
		f.decide(second, "carol", approval.VerdictApprove, nil)
	}, 3*time.Hour)
	out := f.run(f.env, wire("5000"), approvaltemporal.Options{PollInterval: 2 * time.Hour})

	require.Equal(t, approval.OutcomeApproved, out.Result.Status)
	require.NotEqual(t, first, second)
	require.Equal(t, second, out.Result.RequestID)
	require.Equal(t, 4*time.Hour, out.Waited, "read at 2h (expired, asked again), then at 4h")
	r, err := f.gate.Get(context.Background(), first)
	require.NoError(t, err)
	require.Equal(t, approval.StatusExpired, r.Status)
	require.Len(t, f.ran(), 1)
	require.Equal(t, second, f.ran()[0].RequestID)
}

// A reviewer's edited payload comes back as OutcomeModified, and the
// action runs with it.
func TestApproveModified(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	edited := []byte(`{"amount":4000,"to":"ACME"}`)
	f.env.RegisterDelayedCallback(func() {
		id := f.pending().ID
		tok, err := f.gate.IssueToken(id, "alice", approval.VerdictApprove, time.Hour)
		require.NoError(t, err)
		_, err = f.gate.Decide(context.Background(), id, approval.Decision{Token: tok, Verdict: approval.VerdictApprove, Payload: edited})
		require.NoError(t, err)
		f.decide(id, "bob", approval.VerdictApprove, nil)
		f.deliver(f.env, "wf-1", id, "approved")
	}, time.Minute)
	out := f.run(f.env, wire("5000"), signalled)

	require.Equal(t, approval.OutcomeModified, out.Result.Status)
	require.JSONEq(t, string(edited), string(out.Result.Payload))
	ran := f.ran()
	require.Len(t, ran, 1)
	require.Equal(t, approval.OutcomeModified, ran[0].Status)
	require.JSONEq(t, string(edited), string(ran[0].Payload))
}

// When the workflow's timeout passes after a decision it has not heard
// of, the decision stands: the request is not cancelled, and its outcome
// is returned.
func TestApproveWorkflowTimeoutAfterDenial(t *testing.T) {
	t.Parallel()
	f := newFixture(t, lostSignals{})
	var id string
	f.env.RegisterDelayedCallback(func() {
		id = f.pending().ID
		f.decide(id, "carol", approval.VerdictDeny, &approval.Denial{Code: "unsafe", Retry: approval.RetryNever})
	}, 5*time.Minute)
	out := f.run(f.env, wire("100"), approvaltemporal.Options{Timeout: 10 * time.Minute, PollInterval: time.Hour})

	require.Equal(t, approval.OutcomeDenied, out.Result.Status)
	require.Equal(t, id, out.Result.RequestID)
	require.Equal(t, "unsafe", out.Result.Denial.Code)
	require.Equal(t, 10*time.Minute, out.Waited)
	r, err := f.gate.Get(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, approval.StatusDenied, r.Status)
}
