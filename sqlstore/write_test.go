package sqlstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/stmtcache"
)

// TestStatementCache checks that a SQLite Store made by Open prepares the
// statements of its writes and reads once (see stmtcache): the caches fill
// on the first writes, nothing is left missed once the transactions end,
// and they stop growing when the same writes repeat.
func TestStatementCache(t *testing.T) {
	t.Parallel()
	s := open(t, sqliteDSN(t))
	ctx := t.Context()
	write := func(i int) {
		r := newRequest()
		_, _, err := s.Create(ctx, r, []approval.AuditEvent{event(r.ID, approval.EventRequestCreated, "alice")})
		require.NoError(t, err)
		tok := fmt.Sprintf("tok-%d", i)
		require.NoError(t, s.Update(ctx, approval.Update{Request: vote(r, "bob", tok), TokenID: tok,
			Events: []approval.AuditEvent{event(r.ID, approval.EventDecisionApprove, "bob")}}))
		_, err = s.Get(ctx, r.ID)
		require.NoError(t, err)
	}
	write(0)
	cached := func(c *stmtcache.Cache) int {
		prepared, missed := c.Len()
		require.Zero(t, missed, "missed statements are prepared once the transaction ends")
		return prepared
	}
	writes, reads := cached(s.writes), cached(s.reads)
	require.GreaterOrEqual(t, writes, 6, "the statements of Create and Update")
	require.Equal(t, 1, reads, "Get's statement")
	for i := range 5 {
		write(i + 1)
	}
	require.Equal(t, writes, cached(s.writes))
	require.Equal(t, reads, cached(s.reads))
}

// TestWritePanicEndsTransaction makes a write's function panic after it
// changed a row. The panic must reach the caller, the change must be rolled
// back, and the next write must run: on SQLite the Store's one writer
// connection would otherwise stay inside the transaction, holding the
// database's write lock for good. It runs on each dialect and write path
// through Open, and on SQLite through OpenDB too.
func TestWritePanicEndsTransaction(t *testing.T) {
	t.Parallel()
	eachBackendPath(t, func(t *testing.T, newDSN func(testing.TB) string, opts []Option) {
		testWritePanic(t, open(t, newDSN(t), opts...))
	})
	t.Run("SQLite OpenDB", func(t *testing.T) {
		t.Parallel()
		testWritePanic(t, openSQLiteDB(t))
	})
}

func testWritePanic(t *testing.T, s *Store) {
	ctx := t.Context()
	r := newRequest()
	_, created, err := s.Create(ctx, r, []approval.AuditEvent{event(r.ID, approval.EventRequestCreated, "alice")})
	require.NoError(t, err)
	require.True(t, created)

	recovered := make(chan any, 1)
	go func() {
		defer func() { recovered <- recover() }()
		// A context that never ends, as a caller's may be.
		_ = s.write(context.Background(), func(ctx context.Context, q querier) error {
			if _, err := q.exec(ctx, `UPDATE requests SET version = version + 100 WHERE id = $1`, r.ID); err != nil {
				return err
			}
			panic("boom")
		})
	}()
	select {
	case p := <-recovered:
		require.Equal(t, "boom", p)
	case <-time.After(10 * time.Second):
		t.Fatal("the panicking write did not return")
	}

	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	next := newRequest()
	_, created, err = s.Create(wctx, next, []approval.AuditEvent{event(next.ID, approval.EventRequestCreated, "alice")})
	require.NoError(t, err, "the write after the panic")
	require.True(t, created)
	got, err := s.Get(ctx, r.ID)
	require.NoError(t, err)
	require.Equal(t, r.Version, got.Version, "the panicking write's change must be rolled back")
	trail := fullTrail(t, s)
	require.Len(t, trail, 2)
	require.NoError(t, approval.VerifyAuditChain(trail))
}

// TestInvalidTextRefused writes a string that is not valid UTF-8 through
// each kind of write: each must fail with ErrInvalidText and write nothing.
// A valid U+FFFD, and the six characters of its JSON escape, are text like
// any other.
func TestInvalidTextRefused(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		s := open(t, newDSN(t))
		ctx := t.Context()

		bad := newRequest()
		bad.Votes = []approval.Vote{{Approver: "b\xffb", Verdict: approval.VerdictApprove, TokenID: "tok", At: now()}}
		_, _, err := s.Create(ctx, bad, []approval.AuditEvent{event(bad.ID, approval.EventRequestCreated, "alice")})
		require.ErrorIs(t, err, ErrInvalidText)
		require.ErrorContains(t, err, "request.Votes[0].Approver")
		_, err = s.Get(ctx, bad.ID)
		require.ErrorIs(t, err, approval.ErrNotFound)

		r := newRequest()
		r.Reason = "\uFFFD and \\ufffd are text"
		_, _, err = s.Create(ctx, r, []approval.AuditEvent{event(r.ID, approval.EventRequestCreated, "alice")})
		require.NoError(t, err)
		got, err := s.Get(ctx, r.ID)
		require.NoError(t, err)
		require.Equal(t, r.Reason, got.Reason)

		next := got.Clone()
		next.Version++
		next.Action.Metadata = map[string]string{"k\xfe": "v"}
		err = s.Update(ctx, approval.Update{Request: next, TokenID: "tok-1"})
		require.ErrorIs(t, err, ErrInvalidText)
		next = got.Clone()
		next.Version++
		ev := event(r.ID, approval.EventDecisionApprove, "bob")
		ev.Reason = "\xe9"
		err = s.Update(ctx, approval.Update{Request: next, TokenID: "tok-1", Events: []approval.AuditEvent{ev}})
		require.ErrorIs(t, err, ErrInvalidText)
		err = s.AppendAudit(ctx, []approval.AuditEvent{event(r.ID, approval.EventNotificationSent, "system"), ev})
		require.ErrorIs(t, err, ErrInvalidText)

		stored, err := s.Get(ctx, r.ID)
		require.NoError(t, err)
		require.Equal(t, got, stored, "no Update took effect")
		trail := fullTrail(t, s)
		require.Len(t, trail, 1, "only the valid Create's event")
		require.NoError(t, approval.VerifyAuditChain(trail))
		// Nor was the token recorded.
		next = got.Clone()
		next.Version++
		require.NoError(t, s.Update(ctx, approval.Update{Request: next, TokenID: "tok-1"}))

		// A NUL byte is text SQLite keeps and PostgreSQL cannot.
		nul := newRequest()
		nul.Action.RequestedBy = "a\x00b"
		_, _, err = s.Create(ctx, nul, nil)
		if s.Dialect() == Postgres {
			require.ErrorIs(t, err, ErrInvalidText)
			return
		}
		require.NoError(t, err)
		got, err = s.Get(ctx, nul.ID)
		require.NoError(t, err)
		require.Equal(t, "a\x00b", got.Action.RequestedBy)
		require.Equal(t, []string{nul.ID}, listAll(t, s, approval.RequestQuery{RequestedBy: "a\x00b"}))
	})
}
