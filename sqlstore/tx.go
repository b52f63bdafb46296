package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
)

// querier is what a write transaction runs statements on: a pgTx for
// PostgreSQL; for SQLite, a stmtTx, or a sqlQuerier over a *sql.Conn
// inside BEGIN IMMEDIATE.
type querier interface {
	// exec runs a statement and returns the number of rows it changed.
	exec(ctx context.Context, query string, args ...any) (int64, error)
	// queryRow runs a statement that returns at most one row.
	queryRow(ctx context.Context, query string, args ...any) scanner
	// execLast runs a statement whose result nothing depends on and after
	// which the transaction runs no other: a pgTx sends it with COMMIT, so
	// its error may come from the commit instead. Its error is wrapped
	// with what, which says what the statement does.
	execLast(ctx context.Context, what, query string, args ...any) error
}

// scanner is a row: a *sql.Row or a pgx.Row.
type scanner interface {
	Scan(dest ...any) error
}

// sqlQuerier adapts a *sql.Conn (or *sql.Tx) to querier.
type sqlQuerier struct {
	q interface {
		ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
		QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	}
}

func (q sqlQuerier) exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := q.q.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (q sqlQuerier) queryRow(ctx context.Context, query string, args ...any) scanner {
	return q.q.QueryRowContext(ctx, query, args...)
}

func (q sqlQuerier) execLast(ctx context.Context, what, query string, args ...any) error {
	if _, err := q.exec(ctx, query, args...); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// maxTxAttempts bounds how often write runs a PostgreSQL transaction that
// failed with a serialization failure or deadlock.
const maxTxAttempts = 5

// write runs fn in one write transaction and commits it, or rolls it back
// if fn fails. fn may run more than once (PostgreSQL deadlocks and
// serialization failures are retried), so it must reset anything it
// captures at its start.
func (s *Store) write(ctx context.Context, fn func(q querier) error) error {
	for attempt := 1; ; attempt++ {
		err := s.writeOnce(ctx, fn)
		if s.writes != nil && s.writes.hasMissed() {
			// Now that the transaction has given its connection back.
			s.writes.prepareMissed(ctx)
		}
		if err == nil || attempt == maxTxAttempts || !isRetryable(err) || ctx.Err() != nil {
			return err
		}
	}
}

func (s *Store) writeOnce(ctx context.Context, fn func(q querier) error) error {
	switch {
	case s.dialect == Postgres:
		return s.pgWrite(ctx, fn)
	case s.writes != nil:
		return s.sqliteCachedTx(ctx, fn)
	}
	return s.sqliteTx(ctx, "BEGIN IMMEDIATE", fn)
}

// sqliteCachedTx runs fn in a transaction of the writer pool Open made,
// whose DSN makes the driver begin every transaction IMMEDIATE (see
// sqliteTx for why), running statements prepared once by the Store's
// cache.
func (s *Store) sqliteCachedTx(ctx context.Context, fn func(q querier) error) error {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return s.wrapBusy(err)
	}
	if err := fn(stmtTx{tx: tx, cache: s.writes}); err != nil {
		if rerr := tx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
			// Never hand back a connection that may still be inside a
			// transaction.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		return s.wrapBusy(err)
	}
	if err := tx.Commit(); err != nil {
		return s.wrapBusy(err)
	}
	s.ckpt.committed()
	return nil
}

// sqliteTx runs fn on one connection between begin (BEGIN IMMEDIATE or
// BEGIN EXCLUSIVE) and COMMIT: the write path of a pool passed to OpenDB,
// whose DSN's _txlock the store cannot know, and of migrations. An
// immediate transaction takes the write lock at once, waiting up to the
// busy timeout for it: a deferred one that read first could fail with
// SQLITE_BUSY at its first write without waiting at all.
func (s *Store) sqliteTx(ctx context.Context, begin string, fn func(q querier) error) (err error) {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, begin); err != nil {
		_ = conn.Close()
		return s.wrapBusy(err)
	}
	defer func() {
		if err != nil {
			// Never hand back a connection still inside a transaction.
			if _, rerr := conn.ExecContext(context.Background(), "ROLLBACK"); rerr != nil {
				_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			}
		}
		_ = conn.Close()
	}()
	if err := fn(sqlQuerier{conn}); err != nil {
		return s.wrapBusy(err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := conn.ExecContext(context.Background(), "COMMIT"); err != nil {
		return s.wrapBusy(err)
	}
	return nil
}

// errNoRows reports whether err is sql.ErrNoRows.
func errNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
