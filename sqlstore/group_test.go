package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// queued returns how many writes wait in s's group queue.
func queued(g *group) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.queue)
}

// holdLead starts a write on s that leads and blocks until the returned
// function is called, so that writes started meanwhile queue for one group.
func holdLead(t *testing.T, s *Store) (release func()) {
	t.Helper()
	gate := make(chan struct{})
	done := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		done <- s.write(context.Background(), func(querier) error {
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

// enqueue runs write on a goroutine once the queue holds want-1 writes,
// and waits until it is queued, so writes join the group in order.
func enqueue(t *testing.T, g *group, wg *sync.WaitGroup, write func()) {
	t.Helper()
	want := queued(g) + 1
	wg.Go(write)
	require.Eventually(t, func() bool { return queued(g) == want }, 10*time.Second, time.Millisecond)
}

// TestGroupCommit queues writes of every kind behind a write that holds
// the lead, so that one transaction carries them all: each must have the
// outcome it would have alone (the failures undo their own changes and
// nothing else), the group must be one transaction, and the trail one
// chain. On PostgreSQL an event the database refuses fails its transaction
// as a whole, at a later statement: the group must then run each write
// alone, so that only the bad one fails. It runs on each dialect through
// Open, and on SQLite through OpenDB too, whose writes run on a pool of
// the caller's with BEGIN IMMEDIATE of the store's own.
func TestGroupCommit(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		testGroupCommit(t, open(t, newDSN(t)))
	})
	t.Run("SQLite OpenDB", func(t *testing.T) {
		t.Parallel()
		testGroupCommit(t, openSQLiteDB(t))
	})
}

func testGroupCommit(t *testing.T, s *Store) {
	ctx := t.Context()
	reqs := make([]*approval.Request, 7)
	for i := range reqs {
		reqs[i] = newRequest()
		_, created, err := s.Create(ctx, reqs[i], []approval.AuditEvent{event(reqs[i].ID, approval.EventRequestCreated, "alice")})
		require.NoError(t, err)
		require.True(t, created)
	}
	// reqs[5]'s vote uses token "used" before the group.
	require.NoError(t, s.Update(ctx, approval.Update{Request: vote(reqs[5], "erin", "used"), TokenID: "used",
		Events: []approval.AuditEvent{event(reqs[5].ID, approval.EventDecisionApprove, "erin")}}))
	voted, err := s.Get(ctx, reqs[5].ID)
	require.NoError(t, err)
	before := groupsOf(s)

	release := holdLead(t, s)
	var wg sync.WaitGroup
	votes := make([]error, 5)
	for i := range votes {
		enqueue(t, &s.group, &wg, func() {
			tok := fmt.Sprintf("tok-%d", i)
			votes[i] = s.Update(ctx, approval.Update{Request: vote(reqs[i], "bob", tok), TokenID: tok,
				Events: []approval.AuditEvent{event(reqs[i].ID, approval.EventDecisionApprove, "bob")}})
		})
	}
	var replayErr, staleErr, badErr, appendErr error
	enqueue(t, &s.group, &wg, func() {
		replayErr = s.Update(ctx, approval.Update{Request: vote(voted, "mallory", "used"), TokenID: "used",
			Events: []approval.AuditEvent{event(reqs[5].ID, approval.EventDecisionApprove, "mallory")}})
	})
	enqueue(t, &s.group, &wg, func() {
		stale := vote(reqs[6], "mallory", "tok-stale")
		stale.Version = 5
		staleErr = s.Update(ctx, approval.Update{Request: stale, TokenID: "tok-stale",
			Events: []approval.AuditEvent{event(reqs[6].ID, approval.EventDecisionApprove, "mallory")}})
	})
	enqueue(t, &s.group, &wg, func() {
		badErr = s.AppendAudit(ctx, []approval.AuditEvent{event("", approval.EventDecisionRejected, "nul\x00actor")})
	})
	fresh := newRequest()
	var created bool
	var createErr error
	enqueue(t, &s.group, &wg, func() {
		_, created, createErr = s.Create(ctx, fresh, []approval.AuditEvent{event(fresh.ID, approval.EventRequestCreated, "carol")})
	})
	dup := newRequest()
	dup.ActionHash = reqs[0].ActionHash
	var dupGot *approval.Request
	var dupCreated bool
	var dupErr error
	enqueue(t, &s.group, &wg, func() {
		dupGot, dupCreated, dupErr = s.Create(ctx, dup, []approval.AuditEvent{event(dup.ID, approval.EventRequestCreated, "mallory")})
	})
	cctx, cancel := context.WithCancel(ctx)
	cancelled := make(chan error, 1)
	enqueue(t, &s.group, &wg, func() {
		cancelled <- s.AppendAudit(cctx, []approval.AuditEvent{event("", approval.EventDecisionRejected, "mallory")})
	})
	cancel()
	require.ErrorIs(t, <-cancelled, context.Canceled, "a queued write whose context ends returns at once")
	enqueue(t, &s.group, &wg, func() {
		appendErr = s.AppendAudit(ctx, []approval.AuditEvent{event("", approval.EventDecisionRejected, "dave")})
	})
	release()
	wg.Wait()

	for i, err := range votes {
		require.NoError(t, err, "vote %d", i)
		got, err := s.Get(ctx, reqs[i].ID)
		require.NoError(t, err)
		require.Equal(t, int64(2), got.Version)
		require.Len(t, got.Votes, 1)
	}
	require.ErrorIs(t, replayErr, approval.ErrTokenUsed)
	require.ErrorIs(t, staleErr, approval.ErrConflict)
	require.NoError(t, createErr)
	require.True(t, created)
	require.NoError(t, dupErr)
	require.False(t, dupCreated)
	require.Equal(t, reqs[0].ID, dupGot.ID)
	require.NoError(t, appendErr)
	got, err := s.Get(ctx, reqs[6].ID)
	require.NoError(t, err)
	require.Equal(t, int64(1), got.Version, "the stale write changed nothing")
	got, err = s.Get(ctx, reqs[5].ID)
	require.NoError(t, err)
	require.Equal(t, []string{"erin"}, voterNames(got), "the replay changed nothing")

	after := groupsOf(s)
	actors := map[string]int{}
	for _, e := range fullTrail(t, s) {
		actors[e.Actor]++
	}
	require.Zero(t, actors["mallory"], "no event of a failed write is in the trail")
	require.Equal(t, 5, actors["bob"])
	require.Equal(t, 1, actors["carol"])
	require.Equal(t, 1, actors["dave"])
	// The held write, then one group of the 12 writes queued behind it
	// less the abandoned one.
	require.Equal(t, int64(2), after.txns-before.txns)
	require.Equal(t, int64(1+11), after.writes-before.writes)
	if s.Dialect() == Postgres {
		require.Error(t, badErr, "PostgreSQL text cannot hold NUL")
		require.Equal(t, int64(1), after.failed-before.failed, "the group failed as a whole, and each write ran alone")
	} else {
		require.NoError(t, badErr)
		require.Equal(t, 1, actors["nul\x00actor"])
		require.Zero(t, after.failed-before.failed)
	}
}

// TestGroupUnits checks the queue itself, with a fake transaction: a group
// that fails as a whole reruns each write alone; a queue longer than
// maxGroup is carried by several transactions; a panic fails the writes
// grouped with it and passes the lead on.
func TestGroupUnits(t *testing.T) {
	t.Parallel()
	var (
		mu     sync.Mutex
		sizes  []int
		alones int
		fail   atomic.Bool
		boom   atomic.Bool
	)
	g := &group{}
	g.run = func(ops []*writeOp) error {
		mu.Lock()
		sizes = append(sizes, len(ops))
		mu.Unlock()
		if boom.Load() {
			panic("boom")
		}
		if fail.Load() {
			return errors.New("transaction failed")
		}
		for _, op := range ops {
			op.err = op.fn(nil)
		}
		return nil
	}
	g.alone = func(_ context.Context, fn func(querier) error) error {
		mu.Lock()
		alones++
		mu.Unlock()
		return fn(nil)
	}
	hold := func() func() {
		gate, started := make(chan struct{}), make(chan struct{})
		go func() {
			_ = g.do(context.Background(), func(querier) error { close(started); <-gate; return nil })
		}()
		<-started
		return func() { close(gate) }
	}
	queue := func(n int, fn func(i int) error) (errs []error, wait func()) {
		var wg sync.WaitGroup
		errs = make([]error, n)
		for i := range n {
			enqueue(t, g, &wg, func() { errs[i] = g.do(context.Background(), func(querier) error { return fn(i) }) })
		}
		return errs, wg.Wait
	}
	reset := func() {
		mu.Lock()
		defer mu.Unlock()
		sizes, alones = nil, 0
	}

	t.Run("failed group runs each alone", func(t *testing.T) {
		reset()
		fail.Store(true)
		defer fail.Store(false)
		release := hold()
		errs, wait := queue(3, func(i int) error {
			if i == 1 {
				return approval.ErrConflict
			}
			return nil
		})
		release()
		wait()
		require.NoError(t, errs[0])
		require.ErrorIs(t, errs[1], approval.ErrConflict)
		require.NoError(t, errs[2])
		require.Equal(t, []int{3}, sizes)
		require.Equal(t, 1+3, alones, "the held write, then the three again")
	})

	t.Run("long queue", func(t *testing.T) {
		reset()
		release := hold()
		errs, wait := queue(maxGroup+5, func(int) error { return nil })
		release()
		wait()
		for _, err := range errs {
			require.NoError(t, err)
		}
		require.Equal(t, []int{maxGroup}, sizes[:1])
		total := 0
		for _, n := range sizes {
			total += n
		}
		require.Equal(t, maxGroup+5, total+alones-1)
	})

	t.Run("panic", func(t *testing.T) {
		reset()
		release := hold()
		errs, wait := queue(2, func(int) error { return nil })
		boom.Store(true)
		release()
		wait()
		boom.Store(false)
		for _, err := range errs {
			require.ErrorContains(t, err, "panic in a transaction of 2 writes")
		}
		// The lead was passed on: a new write runs.
		require.NoError(t, g.do(context.Background(), func(querier) error { return nil }))
	})

	t.Run("panic alone", func(t *testing.T) {
		require.PanicsWithValue(t, "boom", func() {
			_ = g.do(context.Background(), func(querier) error { panic("boom") })
		}, "a lone write's panic reaches its caller")
		require.NoError(t, g.do(context.Background(), func(querier) error { return nil }))
	})

	// A caller whose context ends while its write is in a running
	// transaction returns at once. The first write queued leads the
	// transaction: with a context that cannot end it runs the transaction
	// on its own goroutine, and a follower leaves; with one that can, the
	// transaction runs on a goroutine of its own, and the leader leaves.
	for _, leaderLeaves := range []bool{false, true} {
		t.Run(fmt.Sprintf("caller leaves a running transaction/leader=%v", leaderLeaves), func(t *testing.T) {
			reset()
			release := hold()
			var wg sync.WaitGroup
			inside, finish := make(chan struct{}), make(chan struct{})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stays, leaves := make(chan error, 1), make(chan error, 1)
			slow := func(querier) error {
				close(inside)
				<-finish
				return nil
			}
			quick := func(querier) error { return nil }
			if leaderLeaves {
				enqueue(t, g, &wg, func() { leaves <- g.do(ctx, slow) })
				enqueue(t, g, &wg, func() { stays <- g.do(context.Background(), quick) })
			} else {
				enqueue(t, g, &wg, func() { stays <- g.do(context.Background(), slow) })
				enqueue(t, g, &wg, func() { leaves <- g.do(ctx, quick) })
			}
			release()
			<-inside // the transaction of both runs, and waits
			cancel()
			var left error
			select {
			case left = <-leaves:
			case <-time.After(10 * time.Second):
				t.Fatal("the caller whose context ended is still waiting")
			}
			require.ErrorIs(t, left, context.Canceled)
			require.ErrorIs(t, left, ErrOutcomeUnknown, "the transaction may still commit its write")
			close(finish)
			require.NoError(t, <-stays)
			wg.Wait()
			require.Equal(t, []int{2}, sizes)
			require.NoError(t, g.do(context.Background(), quick), "the lead was passed on")
		})
	}
}

// TestUpdateSideTables changes a request's voters and policies through a
// Store that remembers the names of the version it replaces and through
// one that does not (see nameCache): List's Approver and Policy filters
// must follow either way, and an Update built on a version another Store
// has since replaced must fail with ErrConflict, changing nothing.
func TestUpdateSideTables(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		dsn := newDSN(t)
		warm, cold := open(t, dsn), open(t, dsn)
		ctx := t.Context()
		r := vote(vote(newRequest(), "bob", "t1"), "carol", "t2")
		r.Version = 1
		_, _, err := warm.Create(ctx, r, nil)
		require.NoError(t, err)
		list := func(q approval.RequestQuery) []string {
			page, err := cold.List(ctx, q)
			require.NoError(t, err)
			var ids []string
			for _, x := range page.Requests {
				ids = append(ids, x.ID)
			}
			return ids
		}
		set := func(s *Store, version int64, voters []string, policy string) error {
			next := r.Clone()
			next.Version = version
			next.Votes = nil
			for _, v := range voters {
				next.Votes = append(next.Votes, approval.Vote{Approver: v, Verdict: approval.VerdictApprove, At: now()})
			}
			next.Policies[0].Name = policy
			return s.Update(ctx, approval.Update{Request: next})
		}
		check := func(voters []string, policy string) {
			t.Helper()
			for _, v := range []string{"bob", "carol", "dave"} {
				want := []string(nil)
				for _, w := range voters {
					if w == v {
						want = []string{r.ID}
					}
				}
				require.Equal(t, want, list(approval.RequestQuery{Approver: v}), "approver %s", v)
			}
			for _, p := range []string{"high_spend", "prod_deploys"} {
				want := []string(nil)
				if p == policy {
					want = []string{r.ID}
				}
				require.Equal(t, want, list(approval.RequestQuery{Policy: p}), "policy %s", p)
			}
		}
		check([]string{"bob", "carol"}, "high_spend")

		_, cached := warm.names.get(r.ID, 1)
		require.True(t, cached)
		require.NoError(t, set(warm, 2, []string{"carol", "dave"}, "prod_deploys"))
		check([]string{"carol", "dave"}, "prod_deploys")

		_, cached = cold.names.get(r.ID, 2)
		require.False(t, cached)
		require.NoError(t, set(cold, 3, []string{"bob"}, "high_spend"))
		check([]string{"bob"}, "high_spend")

		// warm remembers version 2, which cold has replaced.
		require.ErrorIs(t, set(warm, 3, []string{"mallory"}, "prod_deploys"), approval.ErrConflict)
		check([]string{"bob"}, "high_spend")
		got, err := warm.Get(ctx, r.ID)
		require.NoError(t, err)
		require.Equal(t, int64(3), got.Version)
	})
}

// TestGroupCallersLeaveAtDeadline queues writes behind a transaction of
// another Store that holds the audit chain's lock, so that the group's
// transaction waits for it: first a write with no deadline, whose
// statements go out first and wait on the lock, then writes whose
// contexts have deadlines. Each of those must return at its deadline,
// not when the lock is released, saying the outcome is unknown (their
// transaction is still alive, for the first write's sake). Once the lock
// is released, the first write commits, and the others, whose contexts
// had ended by their turn, are not run.
func TestGroupCallersLeaveAtDeadline(t *testing.T) {
	t.Parallel()
	dsn := postgresDSN(t)
	s, other := open(t, dsn), open(t, dsn)
	ctx := t.Context()
	tx, err := other.w.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	_, err = tx.ExecContext(ctx, `SELECT * FROM audit_tail(true)`)
	require.NoError(t, err)

	release := holdLead(t, s)
	var wg sync.WaitGroup
	var patient error
	enqueue(t, &s.group, &wg, func() {
		patient = s.AppendAudit(context.Background(), []approval.AuditEvent{event("", approval.EventDecisionRejected, "patient")})
	})
	errs := make([]error, 2)
	var hurried sync.WaitGroup
	start := time.Now()
	for i := range errs {
		hurried.Add(1)
		enqueue(t, &s.group, &wg, func() {
			defer hurried.Done()
			wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			defer cancel()
			errs[i] = s.AppendAudit(wctx, []approval.AuditEvent{event("", approval.EventDecisionRejected, "hurried")})
		})
	}
	release()
	hurried.Wait()
	require.Less(t, time.Since(start), 5*time.Second, "the callers with deadlines left at them")
	for _, err := range errs {
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.ErrorIs(t, err, ErrOutcomeUnknown)
	}

	require.NoError(t, tx.Rollback())
	wg.Wait()
	require.NoError(t, patient)
	trail := fullTrail(t, s)
	require.Len(t, trail, 1)
	require.Equal(t, "patient", trail[0].Actor)
}

// TestGroupFailedWriteKeepsGroup groups, on PostgreSQL, a Create that the
// database refuses (NUL in text), which aborts the transaction until the
// write's savepoint is rolled back, with an append whose statement the
// connection has never prepared (seven events: a statement text of its
// own). pgx prepares a new statement before running it, which an aborted
// transaction refuses: the failed write must be rolled back first, so that
// the group goes on rather than fall back to running each write alone.
func TestGroupFailedWriteKeepsGroup(t *testing.T) {
	t.Parallel()
	s := open(t, postgresDSN(t))
	ctx := t.Context()
	before := groupsOf(s)

	release := holdLead(t, s)
	var wg sync.WaitGroup
	var createErr, appendErr error
	enqueue(t, &s.group, &wg, func() {
		bad := newRequest()
		bad.Action.RequestedBy = "nul\x00"
		_, _, createErr = s.Create(ctx, bad, []approval.AuditEvent{event(bad.ID, approval.EventRequestCreated, "alice")})
	})
	enqueue(t, &s.group, &wg, func() {
		events := make([]approval.AuditEvent, 7)
		for i := range events {
			events[i] = event("", approval.EventNotificationSent, "system")
		}
		appendErr = s.AppendAudit(ctx, events)
	})
	release()
	wg.Wait()
	require.ErrorIs(t, createErr, ErrInvalidText)
	require.ErrorContains(t, createErr, "0x00")
	require.NoError(t, appendErr)
	after := groupsOf(s)
	require.Equal(t, before.txns+2, after.txns, "the held write's transaction, then the group's")
	require.Zero(t, after.failed-before.failed, "the group did not fail as a whole")
	trail := fullTrail(t, s)
	require.Len(t, trail, 7)
	require.NoError(t, approval.VerifyAuditChain(trail))
}
