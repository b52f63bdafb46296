package approvaltemporal_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/signoff/approval"
	"github.com/signoff/approval/approvaltemporal"
	"github.com/signoff/approval/memstore"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"
)

// clock is the gate's clock, moved by hand (the workflow's is the test
// environment's own).
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// sent is one signal the Notifier sent.
type sent struct {
	workflowID, runID, name string
	signal                  approvaltemporal.Signal
}

// signals is a Signaler that hands each signal to the test, which
// delivers it to the test environment on the environment's goroutine.
type signals chan sent

func (s signals) SignalWorkflow(_ context.Context, workflowID, runID, name string, arg any) error {
	s <- sent{workflowID: workflowID, runID: runID, name: name, signal: arg.(approvaltemporal.Signal)}
	return nil
}

// lostSignals is a Signaler whose every signal is lost.
type lostSignals struct{}

func (lostSignals) SignalWorkflow(context.Context, string, string, string, any) error {
	return errors.New("connection refused")
}

// fixture is a gate over memstore, observed by a Notifier, and a workflow
// test environment with Approve's activities and a "transfer" activity
// that runs through Do.
type fixture struct {
	t       *testing.T
	gate    *approval.Gate
	pub     ed25519.PublicKey
	clock   *clock
	signals signals
	env     *testsuite.TestWorkflowEnvironment

	mu        sync.Mutex
	transfers []approval.Result // what the transfer's fn ran with
	failFirst bool              // the transfer's fn fails on its first run
}

func newFixture(t *testing.T, signaler approvaltemporal.Signaler) *fixture {
	t.Helper()
	f := &fixture{t: t, clock: &clock{t: time.Now().UTC().Truncate(time.Second)}, signals: make(signals, 16)}
	if signaler == nil {
		signaler = f.signals
	}
	n := approvaltemporal.NewNotifier(signaler, approvaltemporal.NotifierOptions{})
	pub, priv, err := approval.GenerateKeys()
	require.NoError(t, err)
	f.pub = pub
	f.gate, err = approval.New(approval.Config{
		Store:      memstore.New(),
		SigningKey: priv,
		Now:        f.clock.Now,
		Directory:  approval.StaticDirectory{Groups: map[string][]string{"finance": {"alice", "bob", "carol"}}},
		Observer:   n,
	})
	require.NoError(t, err)
	n.Attach(f.gate)
	t.Cleanup(func() { _ = f.gate.Close(context.Background()) })
	require.NoError(t, f.gate.SetPolicy("wires", approval.Policy{
		Match:             approval.Name("wire-transfer"),
		Approvers:         []approval.Approver{approval.Group("finance")},
		RequiredApprovals: 2,
		Timeout:           time.Hour,
		Reason:            "wires need two people of finance",
	}))
	f.env = f.newEnv("wf-1")
	return f
}

// newEnv returns a workflow test environment for a workflow with ID
// workflowID, with the activities registered.
func (f *fixture) newEnv(workflowID string) *testsuite.TestWorkflowEnvironment {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.SetStartWorkflowOptions(startOptions(workflowID))
	acts := &approvaltemporal.Activities{Gate: f.gate}
	acts.Register(env)
	env.RegisterActivityWithOptions(f.transfer, activity.RegisterOptions{Name: "transfer"})
	env.RegisterWorkflow(approveAndTransfer)
	return env
}

// transfer is the activity that carries out the approved action.
func (f *fixture) transfer(ctx context.Context, res approvaltemporal.Result) error {
	return approvaltemporal.Do(ctx, f.gate, res, func(_ context.Context, r approval.Result) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.transfers = append(f.transfers, r)
		if f.failFirst && len(f.transfers) == 1 {
			return errors.New("the bank timed out")
		}
		return nil
	})
}

func (f *fixture) ran() []approval.Result {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]approval.Result(nil), f.transfers...)
}

// output is what the test workflow returns.
type output struct {
	Result  approvaltemporal.Result
	Waited  time.Duration // workflow time spent in Approve
	Started time.Time
}

// approveAndTransfer is the workflow under test: Approve, then the
// transfer activity when approved.
func approveAndTransfer(ctx workflow.Context, a approval.Action, opts approvaltemporal.Options) (output, error) {
	start := workflow.Now(ctx)
	res, err := approvaltemporal.Approve(ctx, a, opts)
	if err != nil {
		return output{}, err
	}
	out := output{Result: res, Waited: workflow.Now(ctx).Sub(start), Started: start}
	if res.Status != approval.OutcomeApproved && res.Status != approval.OutcomeModified {
		return out, nil
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3, InitialInterval: time.Second},
	})
	return out, workflow.ExecuteActivity(actx, "transfer", res).Get(ctx, nil)
}

func wire(amount string) approval.Action {
	return approval.Action{
		Name: "wire-transfer", RequestedBy: "billing-worker",
		Payload: []byte(`{"amount":` + amount + `,"to":"ACME"}`),
	}
}

// pending returns the only open request.
func (f *fixture) pending() *approval.Request {
	f.t.Helper()
	p, err := f.gate.List(context.Background(), approval.RequestQuery{Status: []approval.Status{approval.StatusPending}})
	require.NoError(f.t, err)
	require.Len(f.t, p.Requests, 1, "open requests")
	return p.Requests[0]
}

// all returns every request in the store.
func (f *fixture) all() []*approval.Request {
	f.t.Helper()
	p, err := f.gate.List(context.Background(), approval.RequestQuery{})
	require.NoError(f.t, err)
	return p.Requests
}

func (f *fixture) decide(id, who string, v approval.Verdict, denial *approval.Denial) {
	f.t.Helper()
	tok, err := f.gate.IssueToken(id, who, v, time.Hour)
	require.NoError(f.t, err)
	_, err = f.gate.Decide(context.Background(), id, approval.Decision{Token: tok, Verdict: v, Reason: "checked by " + who, Denial: denial})
	require.NoError(f.t, err)
}

// deliver waits for the Notifier's signal and delivers it to env, as a
// Temporal server would.
func (f *fixture) deliver(env *testsuite.TestWorkflowEnvironment, workflowID, requestID, outcome string) {
	f.t.Helper()
	select {
	case s := <-f.signals:
		require.Equal(f.t, workflowID, s.workflowID)
		require.Equal(f.t, "default-test-run-id", s.runID)
		require.Equal(f.t, approvaltemporal.SignalName, s.name)
		require.Equal(f.t, approvaltemporal.Signal{RequestID: requestID, Outcome: outcome}, s.signal)
		require.NoError(f.t, env.SignalWorkflowByID(s.workflowID, s.name, s.signal))
	case <-time.After(10 * time.Second):
		f.t.Fatal("the Notifier sent no signal")
	}
}

func (f *fixture) run(env *testsuite.TestWorkflowEnvironment, a approval.Action, opts approvaltemporal.Options) output {
	f.t.Helper()
	env.ExecuteWorkflow(approveAndTransfer, a, opts)
	require.True(f.t, env.IsWorkflowCompleted())
	require.NoError(f.t, env.GetWorkflowError())
	var out output
	require.NoError(f.t, env.GetWorkflowResult(&out))
	return out
}
