package approval_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

func fastPoll(c *approval.Config) { c.PollInterval = 5 * time.Millisecond }

// runs counts the calls of a function Do runs.
type runs struct {
	n    atomic.Int64
	last atomic.Pointer[approval.Result]
}

func (r *runs) fn(_ context.Context, res approval.Result) error {
	r.n.Add(1)
	r.last.Store(&res)
	return nil
}

// notApproved requires err to be a *NotApprovedError wrapping sentinel and
// returns it.
func notApproved(t *testing.T, err error, sentinel error) *approval.NotApprovedError {
	t.Helper()
	require.ErrorIs(t, err, sentinel)
	var na *approval.NotApprovedError
	require.ErrorAs(t, err, &na)
	return na
}

func TestDoReturnsPendingThenRunsOnce(t *testing.T) {
	f := newFixture(t)
	var r runs
	a := transfer(5000)
	res, err := approval.Do(f.ctx, f.gate, a, approval.DoOptions{}, r.fn)
	na := notApproved(t, err, approval.ErrPending)
	require.Equal(t, approval.OutcomePending, res.Status)
	require.Equal(t, res, na.Result)
	require.Contains(t, err.Error(), "approval: wire-transfer: pending (request "+res.RequestID+")")
	id := res.RequestID

	// A retry of the same call is the same request.
	res, err = approval.Do(f.ctx, f.gate, a, approval.DoOptions{}, r.fn)
	notApproved(t, err, approval.ErrPending)
	require.Equal(t, id, res.RequestID)

	_, err = f.Decide(id, "alice", approval.VerdictApprove)
	require.NoError(t, err)
	_, err = f.Decide(id, "bob", approval.VerdictApprove)
	require.NoError(t, err)

	// Other arguments do not ride on this approval.
	other := a
	other.Payload = []byte(`{"to":"DE89 3704 0044 0532 0130 00","amount":5001}`)
	res, err = approval.Do(f.ctx, f.gate, other, approval.DoOptions{}, r.fn)
	notApproved(t, err, approval.ErrPending)
	require.NotEqual(t, id, res.RequestID)
	require.Zero(t, r.n.Load())

	res, err = approval.Do(f.ctx, f.gate, a, approval.DoOptions{}, r.fn)
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeApproved, res.Status)
	require.EqualValues(t, 1, r.n.Load())
	require.Equal(t, id, r.last.Load().RequestID)
	require.NotEmpty(t, r.last.Load().Artifact)

	// The approval is spent: the next call asks again.
	res, err = approval.Do(f.ctx, f.gate, a, approval.DoOptions{}, r.fn)
	notApproved(t, err, approval.ErrPending)
	require.NotEqual(t, id, res.RequestID)
	require.EqualValues(t, 1, r.n.Load())
}

func TestDoReturnsTheFunctionsError(t *testing.T) {
	f := newFixture(t)
	boom := errors.New("boom")
	res, err := approval.Do(f.ctx, f.gate, transfer(10), approval.DoOptions{}, func(context.Context, approval.Result) error { return boom })
	require.Same(t, boom, err)
	require.Equal(t, approval.OutcomeApproved, res.Status)
	require.Equal(t, approval.ReasonNoPolicyMatched, res.Reason)
}

func TestDoDenied(t *testing.T) {
	f := newFixture(t)
	var r runs
	a := transfer(5000)
	id := f.Pending(a)
	_, err := f.gate.Decide(f.ctx, id, approval.Decision{Token: f.Token(id, "carol", approval.VerdictDeny), Verdict: approval.VerdictDeny,
		Reason: "too large", Denial: &approval.Denial{Code: "over_limit", Retry: approval.RetryChanged, Hint: "split it"}})
	require.NoError(t, err)

	res, err := approval.Do(f.ctx, f.gate, a, approval.DoOptions{}, r.fn)
	na := notApproved(t, err, approval.ErrDenied)
	require.Equal(t, approval.OutcomeDenied, res.Status)
	require.Equal(t, "over_limit", na.Result.Denial.Code)
	require.Equal(t, "approval: wire-transfer: denied (request "+id+"): denied by carol: too large (code over_limit, retry changed, hint: split it)", err.Error())
	require.Zero(t, r.n.Load())
}

// doAsync runs Do in a goroutine and returns a function that waits for
// its outcome.
func doAsync(ctx context.Context, g *approval.Gate, a approval.Action, opts approval.DoOptions, fn func(context.Context, approval.Result) error) func() (approval.Result, error) {
	type out struct {
		res approval.Result
		err error
	}
	ch := make(chan out, 1)
	go func() {
		res, err := approval.Do(ctx, g, a, opts, fn)
		ch <- out{res, err}
	}()
	return func() (approval.Result, error) {
		o := <-ch
		return o.res, o.err
	}
}

// waitForRequest waits until a has a pending request and returns its ID.
func waitForRequest(t *testing.T, f *fixture) string {
	t.Helper()
	var id string
	require.Eventually(t, func() bool {
		p, err := f.gate.List(f.ctx, approval.RequestQuery{Status: []approval.Status{approval.StatusPending}})
		require.NoError(t, err)
		if len(p.Requests) == 1 {
			id = p.Requests[0].ID
		}
		return id != ""
	}, 5*time.Second, time.Millisecond)
	return id
}

func TestDoWaits(t *testing.T) {
	wait := approval.DoOptions{Wait: 10 * time.Second}
	t.Run("approved", func(t *testing.T) {
		f := newFixture(t, fastPoll)
		var r runs
		done := doAsync(f.ctx, f.gate, transfer(5000), wait, r.fn)
		id := waitForRequest(t, f)
		for _, who := range []string{"alice", "bob"} {
			_, err := f.Decide(id, who, approval.VerdictApprove)
			require.NoError(t, err)
		}
		res, err := done()
		require.NoError(t, err)
		require.Equal(t, approval.OutcomeApproved, res.Status)
		require.Equal(t, id, res.RequestID)
		require.EqualValues(t, 1, r.n.Load())
		require.Equal(t, approval.StatusConsumed, f.Get(id).Status)
	})
	t.Run("modified", func(t *testing.T) {
		f := newFixture(t, fastPoll)
		var r runs
		done := doAsync(f.ctx, f.gate, transfer(5000), wait, r.fn)
		id := waitForRequest(t, f)
		edited := []byte(`{"to":"DE89 3704 0044 0532 0130 00","amount":4000}`)
		_, err := f.gate.Decide(f.ctx, id, approval.Decision{Token: f.Token(id, "alice", approval.VerdictApprove), Verdict: approval.VerdictApprove, Payload: edited})
		require.NoError(t, err)
		_, err = f.Decide(id, "bob", approval.VerdictApprove)
		require.NoError(t, err)
		res, err := done()
		require.NoError(t, err)
		require.Equal(t, approval.OutcomeModified, res.Status)
		require.JSONEq(t, string(edited), string(r.last.Load().Payload))
	})
	t.Run("wait ends unanswered", func(t *testing.T) {
		f := newFixture(t, fastPoll)
		var r runs
		res, err := approval.Do(f.ctx, f.gate, transfer(5000), approval.DoOptions{Wait: 30 * time.Millisecond}, r.fn)
		notApproved(t, err, approval.ErrPending)
		require.NotErrorIs(t, err, approval.ErrTimedOut)
		require.Equal(t, approval.StatusPending, f.Get(res.RequestID).Status)
		require.Zero(t, r.n.Load())
	})
	t.Run("request timed out", func(t *testing.T) {
		f := newFixture(t, fastPoll)
		var r runs
		done := doAsync(f.ctx, f.gate, transfer(5000), wait, r.fn)
		id := waitForRequest(t, f)
		f.clock.Advance(25 * time.Hour)
		_, err := f.gate.Tick(f.ctx, 0)
		require.NoError(t, err)
		res, err := done()
		notApproved(t, err, approval.ErrTimedOut)
		require.Equal(t, approval.OutcomeTimedOut, res.Status)
		require.Equal(t, id, res.RequestID)
		require.Zero(t, r.n.Load())
	})
	t.Run("cancelled", func(t *testing.T) {
		f := newFixture(t, fastPoll)
		var r runs
		done := doAsync(f.ctx, f.gate, transfer(5000), wait, r.fn)
		id := waitForRequest(t, f)
		_, err := f.gate.Cancel(f.ctx, id, "user-1", "changed my mind")
		require.NoError(t, err)
		res, err := done()
		na := notApproved(t, err, approval.ErrCancelled)
		require.Equal(t, approval.OutcomeCancelled, res.Status)
		require.Contains(t, na.Result.Reason, "changed my mind")
		require.Zero(t, r.n.Load())
	})
	t.Run("denied", func(t *testing.T) {
		f := newFixture(t, fastPoll)
		var r runs
		done := doAsync(f.ctx, f.gate, transfer(5000), wait, r.fn)
		id := waitForRequest(t, f)
		_, err := f.Decide(id, "carol", approval.VerdictDeny)
		require.NoError(t, err)
		_, err = done()
		notApproved(t, err, approval.ErrDenied)
		require.Zero(t, r.n.Load())
	})
}

func TestDoConcurrentIdenticalCallsRunOncePerApproval(t *testing.T) {
	f := newFixture(t, fastPoll)
	var r runs
	ctx, cancel := context.WithCancel(f.ctx)
	defer cancel()
	const n = 50
	var wg sync.WaitGroup
	outcomes := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := approval.Do(ctx, f.gate, transfer(5000), approval.DoOptions{Wait: time.Minute}, r.fn)
			outcomes <- err
		})
	}
	id := waitForRequest(t, f)
	for _, who := range []string{"alice", "bob"} {
		_, err := f.Decide(id, who, approval.VerdictApprove)
		require.NoError(t, err)
	}
	// One call runs; the others ask again, as one new request.
	require.Eventually(t, func() bool { return r.n.Load() == 1 }, 5*time.Second, time.Millisecond)
	second := waitForRequest(t, f)
	require.NotEqual(t, id, second)
	for _, who := range []string{"carol", "dave"} {
		_, err := f.Decide(second, who, approval.VerdictApprove)
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return r.n.Load() == 2 }, 5*time.Second, time.Millisecond)
	cancel()
	wg.Wait()
	close(outcomes)
	ok, cancelled := 0, 0
	for err := range outcomes {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, context.Canceled):
			cancelled++
		default:
			t.Errorf("unexpected outcome: %v", err)
		}
	}
	require.Equal(t, 2, ok)
	require.Equal(t, n-2, cancelled)
	require.EqualValues(t, 2, r.n.Load())
	page, err := f.gate.List(f.ctx, approval.RequestQuery{})
	require.NoError(t, err)
	require.Len(t, page.Requests, 3, "one request per approval, and one still waiting")
}

func TestDoCancelledWaitsLeaveNoGoroutine(t *testing.T) {
	f := newFixture(t)
	id := f.Pending(transfer(5000))
	before := runtime.NumGoroutine()
	for range 1000 {
		ctx, cancel := context.WithCancel(f.ctx)
		done := doAsync(ctx, f.gate, transfer(5000), approval.DoOptions{Wait: time.Hour}, func(context.Context, approval.Result) error {
			t.Error("ran")
			return nil
		})
		cancel()
		res, err := done()
		require.ErrorIs(t, err, context.Canceled)
		if res.RequestID != "" { // ctx may have ended before Guard
			require.Equal(t, id, res.RequestID)
		}
	}
	// Polled by hand: require.Eventually runs goroutines of its own. A
	// goroutine's end signals nothing, so the count is the honest check.
	after := runtime.NumGoroutine()
	for deadline := time.Now().Add(5 * time.Second); after > before && time.Now().Before(deadline); after = runtime.NumGoroutine() {
		time.Sleep(10 * time.Millisecond)
	}
	require.LessOrEqual(t, after, before, "goroutines: %d before 1,000 cancelled waits, %d after", before, after)
}
