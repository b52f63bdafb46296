package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// TestStatementCache checks that a SQLite Store made by Open prepares the
// statements of its writes once: the cache fills on the first writes and
// stops growing when the same writes repeat.
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
	cached := func(c *stmtCache) int {
		c.mu.Lock()
		defer c.mu.Unlock()
		require.Empty(t, c.missed, "missed statements are prepared once the transaction ends")
		return len(c.stmts)
	}
	writes, reads := cached(s.writes), cached(s.reads)
	require.GreaterOrEqual(t, writes, 6, "the statements of Create and Update")
	require.Equal(t, 1, reads, "Get's statement")
	for i := range 5 {
		write(i + 1)
	}
	require.Equal(t, writes, cached(s.writes))
	require.Equal(t, reads, cached(s.reads))

	// A full cache runs further statements unprepared, and remembers none.
	c := newStmtCache(s.w)
	t.Cleanup(func() { require.NoError(t, c.close()) })
	for i := range maxCachedStmts + 10 {
		require.Nil(t, c.lookup(fmt.Sprintf("SELECT %d", i)))
	}
	require.Len(t, c.missed, maxCachedStmts)
	c.prepareMissed(ctx)
	require.Len(t, c.stmts, maxCachedStmts)
	require.NotNil(t, c.prepared(ctx, "SELECT 0"))
	require.Nil(t, c.prepared(ctx, "SELECT -1"), "a full cache prepares nothing more")
}

// TestSQLiteCachedTxFailedRollbackDiscardsConnection is
// TestSQLiteFailedRollbackDiscardsConnection for the write path of a Store
// made by Open, whose transactions are database/sql's.
func TestSQLiteCachedTxFailedRollbackDiscardsConnection(t *testing.T) {
	t.Parallel()
	s := open(t, sqliteDSN(t))
	require.NotNil(t, s.writes)
	writer := func() (dc any) {
		conn, err := s.w.Conn(t.Context())
		require.NoError(t, err)
		defer conn.Close()
		require.NoError(t, conn.Raw(func(c any) error { dc = c; return nil }))
		return dc
	}
	before := writer()
	boom := errors.New("boom")
	err := s.write(t.Context(), func(q querier) error {
		_, err := q.exec(t.Context(), "COMMIT") // behind database/sql's back: its ROLLBACK will fail
		require.NoError(t, err)
		return boom
	})
	require.ErrorIs(t, err, boom)
	require.True(t, before != writer(), "the connection whose ROLLBACK failed must be discarded")
	_, created, err := s.Create(t.Context(), newRequest(), []approval.AuditEvent{event("", approval.EventRequestCreated, "a")})
	require.NoError(t, err)
	require.True(t, created)
}

// TestPostgresFailureAtCommitWritesNothing makes the events of an Update
// fail to insert: PostgreSQL rejects NUL in text, and a pgTx sends the
// events with COMMIT. The whole write must be rolled back (version, token,
// approver index, trail), and the connection rolled back and reused.
func TestPostgresFailureAtCommitWritesNothing(t *testing.T) {
	t.Parallel()
	s := open(t, postgresDSN(t), MaxConns(1))
	ctx := t.Context()
	r := newRequest()
	_, _, err := s.Create(ctx, r, nil)
	require.NoError(t, err)

	conn := func() (dc any) {
		c, err := s.w.Conn(ctx)
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.Raw(func(x any) error { dc = x; return nil }))
		return dc
	}
	before := conn()

	bad := []approval.AuditEvent{event(r.ID, approval.EventDecisionApprove, "bob\x00")}
	err = s.Update(ctx, approval.Update{Request: vote(r, "bob", "tok"), TokenID: "tok", Events: bad})
	require.ErrorContains(t, err, "append audit events")
	require.Zero(t, bad[0].Seq)
	err = s.AppendAudit(ctx, []approval.AuditEvent{event("", approval.EventNotificationSent, "x\x00")})
	require.Error(t, err)

	got, err := s.Get(ctx, r.ID)
	require.NoError(t, err)
	require.Equal(t, int64(1), got.Version)
	page, err := s.List(ctx, approval.RequestQuery{Approver: "bob"})
	require.NoError(t, err)
	require.Empty(t, page.Requests)
	require.Empty(t, fullTrail(t, s))

	require.True(t, before == conn(), "the failed transaction is rolled back and its connection kept")

	// The token was not recorded, and the connection is usable.
	good := []approval.AuditEvent{event(r.ID, approval.EventDecisionApprove, "bob")}
	require.NoError(t, s.Update(ctx, approval.Update{Request: vote(r, "bob", "tok"), TokenID: "tok", Events: good}))
	require.Equal(t, int64(1), good[0].Seq)
	require.Len(t, fullTrail(t, s), 1)
}

// TestSQLitePagesPerWrite measures the pages each kind of write adds to
// the WAL (with checkpoints off, so the WAL only grows), and bounds them:
// each b-tree a write touches costs at least one page, written twice (to
// the WAL, then by the checkpoint to the database file), so an index added
// to the write path shows here.
func TestSQLitePagesPerWrite(t *testing.T) {
	t.Parallel()
	path := sqliteDSN(t)
	db, err := sqlOpen(SQLite, SQLiteDSN(path)+"&_pragma=wal_autocheckpoint(0)")
	require.NoError(t, err)
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	s, err := OpenDB(t.Context(), db, SQLite)
	require.NoError(t, err)
	require.NoError(t, s.Migrate(t.Context()))
	ctx := t.Context()
	frames := func() float64 {
		fi, err := os.Stat(path + "-wal")
		require.NoError(t, err)
		return float64(fi.Size()-32) / (4096 + 24)
	}
	const n = 200
	var reqs []*approval.Request
	create := func() {
		r := newRequest()
		_, _, err := s.Create(ctx, r, []approval.AuditEvent{event(r.ID, approval.EventRequestCreated, "alice")})
		require.NoError(t, err)
		reqs = append(reqs, r)
	}
	for range 50 { // past the first page splits
		create()
	}
	f0 := frames()
	for range n {
		create()
	}
	f1 := frames()
	for i := range n {
		r, tok := reqs[i], fmt.Sprintf("tok-%d", i)
		require.NoError(t, s.Update(ctx, approval.Update{Request: vote(r, "bob", tok), TokenID: tok,
			Events: []approval.AuditEvent{event(r.ID, approval.EventDecisionApprove, "bob")}}))
	}
	f2 := frames()
	for range n {
		require.NoError(t, s.AppendAudit(ctx, []approval.AuditEvent{event("req_x", approval.EventNotificationSent, "system")}))
	}
	f3 := frames()
	create1, update1, append1 := (f1-f0)/n, (f2-f1)/n, (f3-f2)/n
	t.Logf("WAL pages per write: Create %.2f, Update %.2f, AppendAudit %.2f", create1, update1, append1)
	// Create: the request's table, id and 5 indexes, a policy row, and the
	// event's table and 3 indexes. Update: the request's table row, the
	// token, the approver row and the event's 4 b-trees. AppendAudit: the
	// event's 4 b-trees. Page splits add a little.
	require.LessOrEqual(t, create1, 13.5)
	require.LessOrEqual(t, update1, 9.5)
	require.LessOrEqual(t, append1, 5.0)
}

// TestSQLiteUpdateWaitsForAnotherWriter holds the write lock from another
// connection, as another process would, while an Update starts, and
// commits a change before releasing it. The Update must wait and then
// succeed: a deferred transaction would read first and then fail at its
// first write (SQLITE_BUSY_SNAPSHOT, without waiting), which is why the
// store's transactions begin IMMEDIATE.
func TestSQLiteUpdateWaitsForAnotherWriter(t *testing.T) {
	t.Parallel()
	dsn := sqliteDSN(t)
	s, other := open(t, dsn), open(t, dsn)
	ctx := t.Context()
	r := newRequest()
	_, _, err := s.Create(ctx, r, nil)
	require.NoError(t, err)

	conn, err := other.w.Conn(ctx)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(ctx, "BEGIN IMMEDIATE")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		done <- s.Update(ctx, approval.Update{Request: vote(r, "bob", "tok"), TokenID: "tok",
			Events: []approval.AuditEvent{event(r.ID, approval.EventDecisionApprove, "bob")}})
	}()
	time.Sleep(50 * time.Millisecond)
	_, err = conn.ExecContext(ctx, `INSERT INTO used_tokens (token_id, request_id, used_at) VALUES ('other', $1, 0)`, r.ID)
	require.NoError(t, err)
	_, err = conn.ExecContext(ctx, "COMMIT")
	require.NoError(t, err)
	require.NoError(t, <-done)
	got, err := s.Get(ctx, r.ID)
	require.NoError(t, err)
	require.Equal(t, int64(2), got.Version)
}

// TestWritePanicEndsTransaction makes a write's function panic after it
// changed a row. The panic must reach the caller, the change must be rolled
// back, and the next write must run: on SQLite the Store's one writer
// connection would otherwise stay inside the transaction, holding the
// database's write lock for good. It runs on each dialect through Open,
// and on SQLite through OpenDB too.
func TestWritePanicEndsTransaction(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		testWritePanic(t, open(t, newDSN(t)))
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
		_ = s.write(context.Background(), func(q querier) error {
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

// TestSQLiteFailedBeginEndsTransaction runs the write path of a pool given
// to OpenDB with a BEGIN that takes effect and still reports an error, as
// the driver does when the context ends while BEGIN runs. The connection
// must not go back to the pool inside the transaction: the next write
// would fail on it, and its write lock would stop other connections.
func TestSQLiteFailedBeginEndsTransaction(t *testing.T) {
	t.Parallel()
	dsn := sqliteDSN(t)
	db, err := sqlOpen(SQLite, SQLiteDSN(dsn, BusyTimeout(100*time.Millisecond)))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	db.SetMaxOpenConns(1)
	s, err := OpenDB(t.Context(), db, SQLite)
	require.NoError(t, err)
	require.NoError(t, s.Migrate(t.Context()))

	ran := false
	err = s.sqliteTx(t.Context(), "BEGIN IMMEDIATE; SELECT * FROM no_such_table", false, func(querier) error {
		ran = true
		return nil
	})
	require.ErrorContains(t, err, "no_such_table")
	require.False(t, ran)

	_, created, err := s.Create(t.Context(), newRequest(), []approval.AuditEvent{event("", approval.EventRequestCreated, "a")})
	require.NoError(t, err, "the next write, on the pool's one connection")
	require.True(t, created)
	other := open(t, dsn, BusyTimeout(100*time.Millisecond))
	_, created, err = other.Create(t.Context(), newRequest(), []approval.AuditEvent{event("", approval.EventRequestCreated, "a")})
	require.NoError(t, err, "a write through another pool")
	require.True(t, created)
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
