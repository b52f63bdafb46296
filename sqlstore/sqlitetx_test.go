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

func TestSQLiteBusy(t *testing.T) {
	t.Parallel()
	dsn := sqliteDSN(t)
	s := open(t, dsn, BusyTimeout(50*time.Millisecond))
	other := open(t, dsn)

	// Another process (here: another store's writer) holds the write lock.
	conn, err := other.w.Conn(t.Context())
	require.NoError(t, err)
	_, err = conn.ExecContext(t.Context(), "BEGIN IMMEDIATE")
	require.NoError(t, err)

	start := time.Now()
	_, _, err = s.Create(t.Context(), newRequest(), nil)
	require.ErrorIs(t, err, ErrBusy)
	require.ErrorContains(t, err, "sqlstore.BusyTimeout")
	require.GreaterOrEqual(t, time.Since(start), 40*time.Millisecond, "a busy write waits for the busy timeout")

	_, err = conn.ExecContext(t.Context(), "ROLLBACK")
	require.NoError(t, err)
	require.NoError(t, conn.Close())
	_, created, err := s.Create(t.Context(), newRequest(), nil)
	require.NoError(t, err)
	require.True(t, created)
}

// TestSQLiteFailedRollbackDiscardsConnection ends a transaction behind the
// store's back, so its ROLLBACK fails: the connection must be discarded,
// not handed to the next write while in an unknown state.
func TestSQLiteFailedRollbackDiscardsConnection(t *testing.T) {
	t.Parallel()
	s := open(t, sqliteDSN(t))
	boom := errors.New("boom")
	err := s.sqliteTx(t.Context(), "BEGIN IMMEDIATE", func(ctx context.Context, q querier) error {
		if _, err := q.exec(ctx, "COMMIT"); err != nil {
			return err
		}
		_, err := q.exec(ctx, "BEGIN") // left open if the connection were kept
		require.NoError(t, err)
		_, err = q.exec(ctx, "ROLLBACK")
		require.NoError(t, err)
		return boom
	})
	require.ErrorIs(t, err, boom)
	require.Equal(t, 0, s.w.Stats().OpenConnections, "the connection whose ROLLBACK failed must be discarded")

	// A transaction left open by fn is rolled back, not leaked.
	err = s.sqliteTx(t.Context(), "BEGIN IMMEDIATE", func(ctx context.Context, q querier) error {
		_, err := q.exec(ctx, `INSERT INTO requests (id) VALUES ('req_x')`)
		require.Error(t, err, "the columns are NOT NULL")
		return err
	})
	require.Error(t, err)
	_, created, err := s.Create(t.Context(), newRequest(), []approval.AuditEvent{event("", approval.EventRequestCreated, "a")})
	require.NoError(t, err)
	require.True(t, created)
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
	err := s.write(t.Context(), func(ctx context.Context, q querier) error {
		_, err := q.exec(ctx, "COMMIT") // behind database/sql's back: its ROLLBACK will fail
		require.NoError(t, err)
		return boom
	})
	require.ErrorIs(t, err, boom)
	require.True(t, before != writer(), "the connection whose ROLLBACK failed must be discarded")
	_, created, err := s.Create(t.Context(), newRequest(), []approval.AuditEvent{event("", approval.EventRequestCreated, "a")})
	require.NoError(t, err)
	require.True(t, created)
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
	err = s.sqliteTx(t.Context(), "BEGIN IMMEDIATE; SELECT * FROM no_such_table", func(context.Context, querier) error {
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
	s.begins.Init()
	done := make(chan error, 1)
	go func() {
		done <- s.Update(ctx, approval.Update{Request: vote(r, "bob", "tok"), TokenID: "tok",
			Events: []approval.AuditEvent{event(r.ID, approval.EventDecisionApprove, "bob")}})
	}()
	s.begins.Wait(t) // the Update is about to begin, while the lock is held
	select {
	case err := <-done:
		t.Fatalf("the Update returned (%v) while another connection held the write lock", err)
	default:
	}
	_, err = conn.ExecContext(ctx, `INSERT INTO used_tokens (token_id, request_id, used_at) VALUES ('other', $1, 0)`, r.ID)
	require.NoError(t, err)
	_, err = conn.ExecContext(ctx, "COMMIT")
	require.NoError(t, err)
	require.NoError(t, <-done)
	got, err := s.Get(ctx, r.ID)
	require.NoError(t, err)
	require.Equal(t, int64(2), got.Version)
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
