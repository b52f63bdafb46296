package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/signoff/approval/internal/groupcommit"
	"github.com/signoff/approval/internal/stmtcache"
)

// sqliteQuerier is the querier of a SQLite write transaction. Its
// statements run on q: a *sql.Tx of the writer pool Open made, each as the
// prepared statement cache holds for it if any, or a *sql.Conn inside
// BEGIN IMMEDIATE.
type sqliteQuerier struct {
	q interface {
		ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
		QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	}
	// tx is q if it is a *sql.Tx with a cache.
	tx    *sql.Tx
	cache *stmtcache.Cache
}

// stmt returns the transaction's copy of the cached statement for query,
// or nil.
func (t sqliteQuerier) stmt(ctx context.Context, query string) *sql.Stmt {
	if t.cache == nil {
		return nil
	}
	if st := t.cache.Lookup(query); st != nil {
		return t.tx.StmtContext(ctx, st)
	}
	return nil
}

func (t sqliteQuerier) exec(ctx context.Context, query string, args ...any) (int64, error) {
	var (
		res sql.Result
		err error
	)
	if st := t.stmt(ctx, query); st != nil {
		res, err = st.ExecContext(ctx, args...)
	} else {
		res, err = t.q.ExecContext(ctx, query, args...)
	}
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (t sqliteQuerier) queryRow(ctx context.Context, query string, args ...any) scanner {
	if st := t.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return t.q.QueryRowContext(ctx, query, args...)
}

func (t sqliteQuerier) execLast(ctx context.Context, what, query string, args ...any) error {
	if _, err := t.exec(ctx, query, args...); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// Savepoint and Release delimit a write of a group. A failed write whose
// error rolled back the whole transaction (SQLite does so on some I/O
// errors) leaves no savepoint, so Release fails and the group fails as a
// whole.
func (t sqliteQuerier) Savepoint(ctx context.Context) error {
	_, err := t.exec(ctx, "SAVEPOINT write")
	return err
}

func (t sqliteQuerier) Release(ctx context.Context, keep bool) error {
	if !keep {
		if _, err := t.exec(ctx, "ROLLBACK TO write"); err != nil {
			return fmt.Errorf("roll back a write of the group: %w", err)
		}
	}
	if _, err := t.exec(ctx, "RELEASE write"); err != nil {
		return fmt.Errorf("release a write of the group: %w", err)
	}
	return nil
}

// sqliteCachedTx runs fn in a transaction of the writer pool Open made,
// whose DSN makes the driver begin every transaction IMMEDIATE (see
// sqliteTx for why), running statements prepared once by the Store's
// cache. Once the transaction has given its connection back, it prepares
// the statements the cache missed.
func (s *Store) sqliteCachedTx(ctx context.Context, fn groupcommit.Write[querier]) error {
	err := s.sqliteCachedTxOnce(ctx, fn)
	s.writes.PrepareMissed(ctx)
	return err
}

func (s *Store) sqliteCachedTxOnce(ctx context.Context, fn groupcommit.Write[querier]) error {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	s.begins.Signal(struct{}{})
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return s.wrapBusy(err)
	}
	ended := false
	defer func() {
		if !ended {
			// fn panicked. Roll back now: the connection cannot go back
			// to the pool (conn.Close waits for the transaction) until
			// the transaction ends, and its context may never end.
			rollbackOrDiscard(tx, conn)
		}
	}()
	if err := fn(ctx, sqliteQuerier{q: tx, tx: tx, cache: s.writes}); err != nil {
		ended = true
		rollbackOrDiscard(tx, conn)
		return s.wrapBusy(err)
	}
	ended = true
	if err := ctx.Err(); err != nil {
		// database/sql would not send COMMIT now, but say so plainly.
		rollbackOrDiscard(tx, conn)
		return err
	}
	if err := tx.Commit(); err != nil {
		if ctx.Err() != nil {
			// The context ended while COMMIT ran; the driver reports
			// that whether or not the commit completed.
			return outcomeUnknown(err)
		}
		return s.wrapBusy(err)
	}
	return nil
}

// rollbackOrDiscard rolls tx back, or, if that fails, makes the pool
// discard conn: never hand back a connection that may still be inside a
// transaction.
func rollbackOrDiscard(tx *sql.Tx, conn *sql.Conn) {
	if err := tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	}
}

// sqliteTx runs fn on one connection between begin (BEGIN IMMEDIATE or
// BEGIN EXCLUSIVE) and COMMIT: the write path of a pool passed to OpenDB,
// whose DSN's _txlock the store cannot know, and of migrations. An
// immediate transaction takes the write lock at once, waiting up to the
// busy timeout for it: a deferred one that read first could fail with
// SQLITE_BUSY at its first write without waiting at all.
func (s *Store) sqliteTx(ctx context.Context, begin string, fn groupcommit.Write[querier]) error {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return err
	}
	s.begins.Signal(struct{}{})
	if _, err := conn.ExecContext(ctx, begin); err != nil {
		// BEGIN may have taken effect all the same: the driver reports a
		// context that ended while a statement ran even if the statement
		// completed. Roll back, and if there was nothing to roll back (or
		// the rollback failed) discard the connection rather than guess.
		if _, rerr := conn.ExecContext(context.Background(), "ROLLBACK"); rerr != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		_ = conn.Close()
		return s.wrapBusy(err)
	}
	committed := false
	defer func() {
		if !committed {
			// fn failed or panicked, or COMMIT failed. Never hand back a
			// connection still inside a transaction.
			if _, rerr := conn.ExecContext(context.Background(), "ROLLBACK"); rerr != nil {
				_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			}
		}
		_ = conn.Close()
	}()
	if err := fn(ctx, sqliteQuerier{q: conn}); err != nil {
		return s.wrapBusy(err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := conn.ExecContext(context.Background(), "COMMIT"); err != nil {
		return s.wrapBusy(err)
	}
	committed = true
	return nil
}

// readRow runs a query that returns at most one row on the read pool, as a
// cached prepared statement if the Store has a cache for it.
func (s *Store) readRow(ctx context.Context, query string, args ...any) *sql.Row {
	if s.reads != nil {
		if st := s.reads.Prepared(ctx, query); st != nil {
			return st.QueryRowContext(ctx, args...)
		}
	}
	return s.r.QueryRowContext(ctx, query, args...)
}

// readRows is readRow for a query of several rows.
func (s *Store) readRows(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if s.reads != nil {
		if st := s.reads.Prepared(ctx, query); st != nil {
			return st.QueryContext(ctx, args...)
		}
	}
	return s.r.QueryContext(ctx, query, args...)
}
