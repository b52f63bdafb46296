package pgpipe

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/signoff/approval/internal/pgtest"
)

// exchanges counts the network exchanges of a pgx connection: each query
// sent on its own and each batch is one write and one read.
type exchanges struct{ n atomic.Int64 }

func (e *exchanges) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	e.n.Add(1)
	return ctx
}
func (e *exchanges) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (e *exchanges) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	e.n.Add(1)
	return ctx
}
func (e *exchanges) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (e *exchanges) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// openDB opens a one-connection pool on a new schema holding table
// items (a unique name each), counting the exchanges in ex if set.
func openDB(t *testing.T, ex *exchanges) *sql.DB {
	t.Helper()
	return openDSN(t, pgtest.DSN(t), ex)
}

func openDSN(t *testing.T, dsn string, ex *exchanges) *sql.DB {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	require.NoError(t, err)
	if ex != nil {
		cfg.Tracer = ex
	}
	db := stdlib.OpenDB(*cfg)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	db.SetMaxOpenConns(1)
	_, err = db.ExecContext(t.Context(), `CREATE TABLE IF NOT EXISTS items (name text PRIMARY KEY)`)
	require.NoError(t, err)
	return db
}

func items(t *testing.T, db *sql.DB) []string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), `SELECT name FROM items ORDER BY name`)
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		out = append(out, s)
	}
	require.NoError(t, rows.Err())
	return out
}

// backend returns the server process of the pool's one connection, to
// tell whether a connection was kept or replaced.
func backend(t *testing.T, db *sql.DB) (pid int) {
	t.Helper()
	require.NoError(t, db.QueryRowContext(t.Context(), `SELECT pg_backend_pid()`).Scan(&pid))
	return pid
}

func insert(name string) (string, []any) { return `INSERT INTO items (name) VALUES ($1)`, []any{name} }

// TestPipelining: BEGIN and the first statements travel with the
// transaction's first statement, deferred statements with COMMIT, and a
// statement with nothing sent ahead of it goes on its own: a transaction
// of a first statement, two statements and a deferred one takes three
// exchanges and commits all of it.
func TestPipelining(t *testing.T) {
	t.Parallel()
	ex := &exchanges{}
	db := openDB(t, ex)
	var answer int
	first := []Stmt{{SQL: `SELECT 41 + 1`, What: "ask", Dest: []any{&answer}}}
	err := Run(t.Context(), db, first, func(tx *Tx) error {
		ex.n.Store(0)
		q, args := insert("a")
		if _, err := tx.Exec(t.Context(), q, args...); err != nil {
			return err
		}
		require.Equal(t, 42, answer, "the first statements' answers are in once the first statement returns")
		var n int
		if err := tx.QueryRow(t.Context(), `SELECT count(*) FROM items`).Scan(&n); err != nil {
			return err
		}
		require.Equal(t, 1, n)
		q, args = insert("b")
		tx.Defer("insert b", q, args...)
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, int64(3), ex.n.Load(), "BEGIN+first+insert, the count, the deferred insert+COMMIT")
	require.Equal(t, []string{"a", "b"}, items(t, db))
}

// TestDeferredFailureCommitsNothing: a deferred statement that fails at
// COMMIT fails Run with its what, commits nothing, and is the server's
// answer, so the outcome is known; the connection is rolled back and kept.
// A function's own error rolls back too.
func TestDeferredFailureCommitsNothing(t *testing.T) {
	t.Parallel()
	db := openDB(t, nil)
	pid := backend(t, db)
	err := Run(t.Context(), db, nil, func(tx *Tx) error {
		q, args := insert("a")
		if _, err := tx.Exec(t.Context(), q, args...); err != nil {
			return err
		}
		tx.Defer("insert a again", q, args...)
		return nil
	})
	require.ErrorContains(t, err, "insert a again")
	require.NotErrorIs(t, err, ErrCommitUnanswered)
	require.Empty(t, items(t, db))
	require.Equal(t, pid, backend(t, db), "the connection was rolled back and kept")

	boom := errors.New("boom")
	err = Run(t.Context(), db, nil, func(tx *Tx) error {
		q, args := insert("b")
		if _, err := tx.Exec(t.Context(), q, args...); err != nil {
			return err
		}
		return boom
	})
	require.ErrorIs(t, err, boom)
	require.Empty(t, items(t, db))
	require.Equal(t, pid, backend(t, db))
}

// TestSavepoints: of three writes in one transaction, the second fails at
// a statement, which aborts the transaction until its savepoint is rolled
// back: its changes and its deferred statements are dropped, and the
// third write, whose statement the connection has never prepared (pgx
// prepares before it sends), still runs; the first and third commit.
func TestSavepoints(t *testing.T) {
	t.Parallel()
	db := openDB(t, nil)
	var writeErrs [3]error
	err := Run(t.Context(), db, nil, func(tx *Tx) error {
		writes := []func() error{
			func() error {
				q, args := insert("a")
				_, err := tx.Exec(t.Context(), q, args...)
				tx.Defer("insert a2", `INSERT INTO items (name) VALUES ('a2')`)
				return err
			},
			func() error {
				tx.Defer("insert dropped", `INSERT INTO items (name) VALUES ('dropped')`)
				q, args := insert("a") // taken
				_, err := tx.Exec(t.Context(), q, args...)
				return err
			},
			func() error {
				_, err := tx.Exec(t.Context(), `INSERT INTO items (name) SELECT 'c' WHERE 1 = $1`, 1)
				return err
			},
		}
		for i, w := range writes {
			if err := tx.Savepoint(t.Context()); err != nil {
				return err
			}
			writeErrs[i] = w()
			if err := tx.Release(t.Context(), writeErrs[i] == nil); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)
	require.NoError(t, writeErrs[0])
	require.ErrorContains(t, writeErrs[1], "duplicate key")
	require.NoError(t, writeErrs[2])
	require.Equal(t, []string{"a", "a2", "c"}, items(t, db))
}

// TestCommitUnanswered: when the answer to COMMIT is lost (the server did
// commit), Run's error wraps ErrCommitUnanswered.
func TestCommitUnanswered(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	proxy := pgtest.NewCommitDropper(t, dsn)
	db := openDSN(t, proxy.DSN, nil)
	proxy.Arm()
	err := Run(t.Context(), db, nil, func(tx *Tx) error {
		q, args := insert("a")
		tx.Defer("insert a", q, args...)
		return nil
	})
	require.ErrorIs(t, err, ErrCommitUnanswered)
	require.Equal(t, int64(1), proxy.Drops())
	require.Equal(t, []string{"a"}, items(t, db), "it did commit, on a new connection")
}

// TestRawNeedsPgx: a pool of another driver is refused, with advice.
func TestRawNeedsPgx(t *testing.T) {
	t.Parallel()
	sql.Register("pgpipe-test-other", otherDriver{})
	db, err := sql.Open("pgpipe-test-other", "")
	require.NoError(t, err)
	defer db.Close()
	ran := false
	err = Raw(t.Context(), db, func(*pgx.Conn) error { ran = true; return nil })
	require.ErrorContains(t, err, "not pgx's")
	require.False(t, ran)
	err = Run(t.Context(), db, nil, func(*Tx) error { ran = true; return nil })
	require.ErrorContains(t, err, "not pgx's")
	require.False(t, ran)
}

type otherDriver struct{}

func (otherDriver) Open(string) (driver.Conn, error) { return otherConn{}, nil }

type otherConn struct{}

func (otherConn) Prepare(string) (driver.Stmt, error) { return nil, errors.New("not supported") }
func (otherConn) Close() error                        { return nil }
func (otherConn) Begin() (driver.Tx, error)           { return nil, errors.New("not supported") }
