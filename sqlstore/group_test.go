package sqlstore

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// holdLead starts a write on s that leads and blocks until the returned
// function is called, so that writes started meanwhile queue for one group.
func holdLead(t *testing.T, s *Store) (release func()) {
	t.Helper()
	gate := make(chan struct{})
	done := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		done <- s.write(context.Background(), func(context.Context, querier) error {
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

// enqueue runs write on a goroutine and waits until it is queued in s's
// group, so that writes join the group in order.
func enqueue(t *testing.T, s *Store, wg *sync.WaitGroup, write func()) {
	t.Helper()
	want := s.group.Stats().Queued + 1
	wg.Go(write)
	require.Eventually(t, func() bool { return s.group.Stats().Queued == want }, 10*time.Second, time.Millisecond)
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
		enqueue(t, s, &wg, func() {
			tok := fmt.Sprintf("tok-%d", i)
			votes[i] = s.Update(ctx, approval.Update{Request: vote(reqs[i], "bob", tok), TokenID: tok,
				Events: []approval.AuditEvent{event(reqs[i].ID, approval.EventDecisionApprove, "bob")}})
		})
	}
	var replayErr, staleErr, badErr, appendErr error
	enqueue(t, s, &wg, func() {
		replayErr = s.Update(ctx, approval.Update{Request: vote(voted, "mallory", "used"), TokenID: "used",
			Events: []approval.AuditEvent{event(reqs[5].ID, approval.EventDecisionApprove, "mallory")}})
	})
	enqueue(t, s, &wg, func() {
		stale := vote(reqs[6], "mallory", "tok-stale")
		stale.Version = 5
		staleErr = s.Update(ctx, approval.Update{Request: stale, TokenID: "tok-stale",
			Events: []approval.AuditEvent{event(reqs[6].ID, approval.EventDecisionApprove, "mallory")}})
	})
	enqueue(t, s, &wg, func() {
		badErr = s.AppendAudit(ctx, []approval.AuditEvent{event("", approval.EventDecisionRejected, "nul\x00actor")})
	})
	fresh := newRequest()
	var created bool
	var createErr error
	enqueue(t, s, &wg, func() {
		_, created, createErr = s.Create(ctx, fresh, []approval.AuditEvent{event(fresh.ID, approval.EventRequestCreated, "carol")})
	})
	dup := newRequest()
	dup.ActionHash = reqs[0].ActionHash
	var dupGot *approval.Request
	var dupCreated bool
	var dupErr error
	enqueue(t, s, &wg, func() {
		dupGot, dupCreated, dupErr = s.Create(ctx, dup, []approval.AuditEvent{event(dup.ID, approval.EventRequestCreated, "mallory")})
	})
	cctx, cancel := context.WithCancel(ctx)
	cancelled := make(chan error, 1)
	enqueue(t, s, &wg, func() {
		cancelled <- s.AppendAudit(cctx, []approval.AuditEvent{event("", approval.EventDecisionRejected, "mallory")})
	})
	cancel()
	require.ErrorIs(t, <-cancelled, context.Canceled, "a queued write whose context ends returns at once")
	enqueue(t, s, &wg, func() {
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
	require.Equal(t, int64(2), after.Transactions-before.Transactions)
	require.Equal(t, int64(1+11), after.Writes-before.Writes)
	if s.Dialect() == Postgres {
		require.Error(t, badErr, "PostgreSQL text cannot hold NUL")
		require.Equal(t, int64(1), after.Failed-before.Failed, "the group failed as a whole, and each write ran alone")
	} else {
		require.NoError(t, badErr)
		require.Equal(t, 1, actors["nul\x00actor"])
		require.Zero(t, after.Failed-before.Failed)
	}
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
	enqueue(t, s, &wg, func() {
		patient = s.AppendAudit(context.Background(), []approval.AuditEvent{event("", approval.EventDecisionRejected, "patient")})
	})
	errs := make([]error, 2)
	var hurried sync.WaitGroup
	start := time.Now()
	for i := range errs {
		hurried.Add(1)
		enqueue(t, s, &wg, func() {
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
	enqueue(t, s, &wg, func() {
		bad := newRequest()
		bad.Action.RequestedBy = "nul\x00"
		_, _, createErr = s.Create(ctx, bad, []approval.AuditEvent{event(bad.ID, approval.EventRequestCreated, "alice")})
	})
	enqueue(t, s, &wg, func() {
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
	require.Equal(t, before.Transactions+2, after.Transactions, "the held write's transaction, then the group's")
	require.Zero(t, after.Failed-before.Failed, "the group did not fail as a whole")
	trail := fullTrail(t, s)
	require.Len(t, trail, 7)
	require.NoError(t, approval.VerifyAuditChain(trail))
}

// TestSingleTransactionPath: with GroupCommit(false) a Store has no group,
// and each write runs in a transaction of its own, under its caller's
// context: a write that starts while another holds the database's write
// lock (SQLite's writer connection, or the audit chain's lock on
// PostgreSQL) waits for it, and both commit, in order.
func TestSingleTransactionPath(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		s := open(t, newDSN(t), GroupCommit(false))
		require.Nil(t, s.group)
		type key struct{}
		ctx := context.WithValue(t.Context(), key{}, "caller")
		inside, finish := make(chan struct{}), make(chan struct{})
		first := make(chan error, 1)
		go func() {
			first <- s.write(ctx, func(ctx context.Context, q querier) error {
				require.Equal(t, "caller", ctx.Value(key{}), "the write runs under its caller's context")
				if _, err := s.appendEvents(ctx, q, []approval.AuditEvent{event("", approval.EventNotificationSent, "first")}); err != nil {
					return err
				}
				close(inside)
				<-finish
				return nil
			})
		}()
		<-inside
		second := make(chan error, 1)
		go func() {
			second <- s.AppendAudit(ctx, []approval.AuditEvent{event("", approval.EventNotificationSent, "second")})
		}()
		select {
		case err := <-second:
			t.Fatalf("the second write returned (%v) while the first held the write lock", err)
		case <-time.After(50 * time.Millisecond):
		}
		close(finish)
		require.NoError(t, <-first)
		require.NoError(t, <-second)
		trail := fullTrail(t, s)
		require.Len(t, trail, 2)
		require.Equal(t, []string{"first", "second"}, []string{trail[0].Actor, trail[1].Actor})
	})
}
