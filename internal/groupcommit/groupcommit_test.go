package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeDB is a list of committed values. A write puts values in its
// transaction; a write rolled back to its savepoint drops its own; COMMIT
// adds the transaction's values to the list, or fails with commitErr.
type fakeDB struct {
	mu        sync.Mutex
	committed []string
	sizes     []int // values each committed transaction held
	commitErr []error
}

type fakeTx struct {
	values []string
	mark   int
	open   bool
}

func (t *fakeTx) Savepoint(context.Context) error {
	if t.open {
		return errors.New("savepoint inside a write")
	}
	t.mark, t.open = len(t.values), true
	return nil
}

func (t *fakeTx) Release(_ context.Context, keep bool) error {
	if !t.open {
		return errors.New("release outside a write")
	}
	if !keep {
		t.values = t.values[:t.mark]
	}
	t.open = false
	return nil
}

// txn is the Group's transaction function. The next error queued in
// commitErr fails the COMMIT; one wrapping ErrOutcomeUnknown commits all
// the same, as a COMMIT whose answer was lost.
func (d *fakeDB) txn(ctx context.Context, fn Write[*fakeTx]) error {
	tx := &fakeTx{}
	if err := fn(ctx, tx); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var err error
	if len(d.commitErr) > 0 {
		err, d.commitErr = d.commitErr[0], d.commitErr[1:]
	}
	if err == nil || errors.Is(err, ErrOutcomeUnknown) {
		d.committed = append(d.committed, tx.values...)
		d.sizes = append(d.sizes, len(tx.values))
	}
	return err
}

func (d *fakeDB) values() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Sorted(slices.Values(d.committed))
}

func newGroup() (*Group[*fakeTx], *fakeDB) {
	d := &fakeDB{}
	return New(d.txn), d
}

// put is a write of value v that fails with err, after putting v, if err
// is set.
func put(v string, err error) Write[*fakeTx] {
	return func(_ context.Context, tx *fakeTx) error {
		tx.values = append(tx.values, v)
		return err
	}
}

// hold starts a write that leads and blocks until the returned function
// is called, so that writes started meanwhile queue for one transaction.
func hold(t *testing.T, g *Group[*fakeTx]) (release func()) {
	t.Helper()
	gate, started, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- g.Do(context.Background(), func(context.Context, *fakeTx) error {
			close(started)
			<-gate
			return nil
		})
	}()
	<-started
	return func() {
		close(gate)
		require.NoError(t, <-done)
	}
}

// enqueue runs do on a goroutine and waits until its write is queued, so
// that writes join the queue in order.
func enqueue(t *testing.T, g *Group[*fakeTx], wg *sync.WaitGroup, do func()) {
	t.Helper()
	want := g.Stats().Queued + 1
	wg.Go(do)
	require.Eventually(t, func() bool { return g.Stats().Queued == want }, 10*time.Second, time.Millisecond)
}

// TestSavepointsIsolateWrites: writes queued behind a running one share
// the next transaction, and each has the outcome it would have alone: a
// failed write's value is rolled back, the others commit, and each caller
// gets its own error.
func TestSavepointsIsolateWrites(t *testing.T) {
	t.Parallel()
	g, d := newGroup()
	release := hold(t, g)
	var wg sync.WaitGroup
	errs := make([]error, 5)
	for i := range errs {
		var fail error
		if i%2 == 1 {
			fail = fmt.Errorf("write %d refused", i)
		}
		enqueue(t, g, &wg, func() { errs[i] = g.Do(t.Context(), put(fmt.Sprint(i), fail)) })
	}
	release()
	wg.Wait()
	for i, err := range errs {
		if i%2 == 1 {
			require.EqualError(t, err, fmt.Sprintf("write %d refused", i))
		} else {
			require.NoError(t, err)
		}
	}
	require.Equal(t, []string{"0", "2", "4"}, d.values())
	require.Equal(t, Stats{Transactions: 2, Writes: 6}, g.Stats(), "the held write, then one transaction of five")
	require.Equal(t, []int{0, 3}, d.sizes)
}

// TestFailedTransactionRunsEachAlone: a transaction of several that fails
// as a whole commits nothing, and each of its writes runs again alone, so
// that only a write that fails by itself fails.
func TestFailedTransactionRunsEachAlone(t *testing.T) {
	t.Parallel()
	g, d := newGroup()
	release := hold(t, g)
	d.commitErr = []error{nil, errors.New("disk full")} // the held write commits; the group's COMMIT fails
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		var fail error
		if i == 1 {
			fail = errors.New("conflict")
		}
		enqueue(t, g, &wg, func() { errs[i] = g.Do(t.Context(), put(fmt.Sprint(i), fail)) })
	}
	release()
	wg.Wait()
	require.NoError(t, errs[0])
	require.EqualError(t, errs[1], "conflict")
	require.NoError(t, errs[2])
	require.Equal(t, []string{"0", "2"}, d.values(), "each good write committed once")
	require.Equal(t, Stats{Transactions: 2, Writes: 4, Failed: 1}, g.Stats())
}

// TestOutcomeUnknownRunsNothingAgain: when a transaction of several sends
// COMMIT and hears no answer, every write of it fails with
// ErrOutcomeUnknown, and none runs again: here the COMMIT did commit, and
// a second run would apply each write twice.
func TestOutcomeUnknownRunsNothingAgain(t *testing.T) {
	t.Parallel()
	g, d := newGroup()
	release := hold(t, g)
	lost := fmt.Errorf("commit: connection reset (%w)", ErrOutcomeUnknown)
	d.commitErr = []error{nil, lost}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		enqueue(t, g, &wg, func() { errs[i] = g.Do(t.Context(), put(fmt.Sprint(i), nil)) })
	}
	release()
	wg.Wait()
	for _, err := range errs {
		require.ErrorIs(t, err, ErrOutcomeUnknown)
	}
	require.Equal(t, []string{"0", "1", "2"}, d.values(), "committed once, run once")
	require.Equal(t, int64(1), g.Stats().Failed)
}

// TestLongQueue: a queue longer than MaxWrites is carried by several
// transactions, none of more than MaxWrites writes.
func TestLongQueue(t *testing.T) {
	t.Parallel()
	g, d := newGroup()
	release := hold(t, g)
	var wg sync.WaitGroup
	const n = MaxWrites + 5
	errs := make([]error, n)
	for i := range n {
		enqueue(t, g, &wg, func() { errs[i] = g.Do(t.Context(), put(fmt.Sprint(i), nil)) })
	}
	release()
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, d.values(), n)
	require.Equal(t, MaxWrites, d.sizes[1], "the first transaction after the held one is full")
	for _, size := range d.sizes {
		require.LessOrEqual(t, size, MaxWrites)
	}
}

// TestPanic: a panic in a transaction of several fails each of its writes
// and passes the lead on; a lone write's panic reaches its caller, and
// passes the lead on too.
func TestPanic(t *testing.T) {
	t.Parallel()
	g, d := newGroup()
	release := hold(t, g)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	enqueue(t, g, &wg, func() { errs[0] = g.Do(t.Context(), put("0", nil)) })
	enqueue(t, g, &wg, func() {
		errs[1] = g.Do(t.Context(), func(context.Context, *fakeTx) error { panic("boom") })
	})
	release()
	wg.Wait()
	for _, err := range errs {
		require.EqualError(t, err, "panic in a transaction of 2 writes: boom")
	}
	require.Empty(t, d.values())
	require.NoError(t, g.Do(t.Context(), put("after", nil)), "the lead was passed on")

	require.PanicsWithValue(t, "boom", func() {
		_ = g.Do(t.Context(), func(context.Context, *fakeTx) error { panic("boom") })
	})
	require.NoError(t, g.Do(t.Context(), put("again", nil)), "the lead was passed on")
	require.Equal(t, []string{"after", "again"}, d.values())
}

// TestQueuedCallerLeaves: a caller whose context ends while its write is
// still queued returns the context's error at once, and its write never
// runs.
func TestQueuedCallerLeaves(t *testing.T) {
	t.Parallel()
	g, d := newGroup()
	release := hold(t, g)
	ctx, cancel := context.WithCancel(t.Context())
	left := make(chan error, 1)
	var wg sync.WaitGroup
	enqueue(t, g, &wg, func() { left <- g.Do(ctx, put("abandoned", nil)) })
	var kept error
	enqueue(t, g, &wg, func() { kept = g.Do(t.Context(), put("kept", nil)) })
	cancel()
	err := <-left
	require.ErrorIs(t, err, context.Canceled)
	require.NotErrorIs(t, err, ErrOutcomeUnknown, "a queued write is known not to have run")
	release()
	wg.Wait()
	require.NoError(t, kept)
	require.Equal(t, []string{"kept"}, d.values())
}

// TestCallerLeavesRunningTransaction: a caller whose context ends while
// its write is in a running transaction returns at once, with an error
// saying that the write may still commit; the others' transaction goes on
// and no caller that stays hears of its write before the commit. A write
// whose context ended before its turn in the transaction is not run. The
// first write queued leads the transaction: with a context that cannot
// end it runs the transaction on its own goroutine and a follower leaves;
// with one that can, the transaction runs on a goroutine of its own and
// the leader leaves.
func TestCallerLeavesRunningTransaction(t *testing.T) {
	t.Parallel()
	for _, leaderLeaves := range []bool{false, true} {
		t.Run(fmt.Sprintf("leader=%v", leaderLeaves), func(t *testing.T) {
			t.Parallel()
			g, d := newGroup()
			release := hold(t, g)
			inside, finish := make(chan struct{}), make(chan struct{})
			slow := func(_ context.Context, tx *fakeTx) error {
				tx.values = append(tx.values, "slow")
				close(inside)
				<-finish
				return nil
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			stays, leaves := make(chan error, 1), make(chan error, 1)
			var wg sync.WaitGroup
			if leaderLeaves {
				enqueue(t, g, &wg, func() { leaves <- g.Do(ctx, slow) })
				enqueue(t, g, &wg, func() { stays <- g.Do(context.Background(), put("stays", nil)) })
			} else {
				enqueue(t, g, &wg, func() { stays <- g.Do(context.Background(), slow) })
				enqueue(t, g, &wg, func() { leaves <- g.Do(ctx, put("left", nil)) })
			}
			release()
			<-inside
			cancel()
			select {
			case err := <-leaves:
				require.ErrorIs(t, err, context.Canceled)
				require.ErrorIs(t, err, ErrOutcomeUnknown, "the transaction may still commit its write")
			case <-time.After(10 * time.Second):
				t.Fatal("the caller whose context ended is still waiting")
			}
			select {
			case err := <-stays:
				t.Fatalf("a caller heard of its write (%v) before its transaction committed", err)
			case <-time.After(20 * time.Millisecond):
			}
			close(finish)
			require.NoError(t, <-stays)
			wg.Wait()
			if leaderLeaves {
				require.Equal(t, []string{"slow", "stays"}, d.values(), "the leader's write was under way when it left")
			} else {
				require.Equal(t, []string{"slow"}, d.values(), "the write whose context had ended by its turn did not run")
			}
			require.NoError(t, g.Do(t.Context(), put("next", nil)), "the lead was passed on")
		})
	}
}

// TestTransactionContext: a lone write runs under its caller's context; a
// transaction of several under the Group's own, which ends only once every
// caller's context has.
func TestTransactionContext(t *testing.T) {
	t.Parallel()
	g, _ := newGroup()
	g.callerLeft.Init()
	type key struct{}
	ctx := context.WithValue(t.Context(), key{}, "caller")
	require.NoError(t, g.Do(ctx, func(ctx context.Context, _ *fakeTx) error {
		require.Equal(t, "caller", ctx.Value(key{}))
		return nil
	}))

	release := hold(t, g)
	ctxA, cancelA := context.WithCancel(t.Context())
	ctxB, cancelB := context.WithCancel(t.Context())
	defer cancelB()
	txnCtx := make(chan context.Context, 1)
	resume := make(chan struct{})
	var wg sync.WaitGroup
	enqueue(t, g, &wg, func() {
		_ = g.Do(ctxA, func(ctx context.Context, _ *fakeTx) error {
			txnCtx <- ctx
			<-resume
			return nil
		})
	})
	enqueue(t, g, &wg, func() { _ = g.Do(ctxB, put("b", nil)) })
	release()
	tctx := <-txnCtx
	require.Nil(t, tctx.Value(key{}), "not a caller's context")
	cancelA()
	require.Equal(t, int64(1), g.callerLeft.Wait(t), "the group saw A leave")
	require.NoError(t, tctx.Err(), "one caller left: the transaction goes on for the other")
	cancelB()
	require.Equal(t, int64(0), g.callerLeft.Wait(t), "the group saw B leave")
	require.Error(t, tctx.Err(), "every caller left: the transaction is abandoned")
	close(resume)
	wg.Wait()
}
