package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
)

// querier is what a write transaction runs statements on: a *sql.Tx for
// PostgreSQL, a *sql.Conn inside BEGIN IMMEDIATE for SQLite.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
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
		if err == nil || attempt == maxTxAttempts || !isRetryable(err) || ctx.Err() != nil {
			return err
		}
	}
}

func (s *Store) writeOnce(ctx context.Context, fn func(q querier) error) error {
	if s.dialect == Postgres {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			_ = tx.Rollback()
			return err
		}
		return tx.Commit()
	}
	return s.sqliteTx(ctx, "BEGIN IMMEDIATE", fn)
}

// sqliteTx runs fn on one connection between begin (BEGIN IMMEDIATE or
// BEGIN EXCLUSIVE) and COMMIT. The store issues BEGIN itself rather than
// relying on the DSN's _txlock, so a pool passed to OpenDB behaves the
// same. An immediate transaction takes the write lock at once, waiting up
// to the busy timeout for it: a deferred one that read first could fail
// with SQLITE_BUSY at its first write without waiting at all.
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
	if err := fn(conn); err != nil {
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
