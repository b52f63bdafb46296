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
	// savepoint starts one write of a group (see group), and release ends
	// it, keeping its changes or rolling them back.
	savepoint(ctx context.Context) error
	release(ctx context.Context, keep bool) error
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
	// ctx, if set, is the context every statement runs under, whatever
	// its caller passes (a group's: see runGroup).
	ctx context.Context
}

func (q sqlQuerier) exec(ctx context.Context, query string, args ...any) (int64, error) {
	if q.ctx != nil {
		ctx = q.ctx
	}
	res, err := q.q.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (q sqlQuerier) queryRow(ctx context.Context, query string, args ...any) scanner {
	if q.ctx != nil {
		ctx = q.ctx
	}
	return q.q.QueryRowContext(ctx, query, args...)
}

func (q sqlQuerier) savepoint(ctx context.Context) error { return sqliteSavepoint(ctx, q) }

func (q sqlQuerier) release(ctx context.Context, keep bool) error {
	return sqliteRelease(ctx, q, keep)
}

// sqliteSavepoint and sqliteRelease are savepoint and release of the
// SQLite queriers. A failed write whose error rolled back the whole
// transaction (SQLite does so on some I/O errors) leaves no savepoint, so
// release fails and the group fails as a whole.
func sqliteSavepoint(ctx context.Context, q querier) error {
	_, err := q.exec(ctx, "SAVEPOINT write")
	return err
}

func sqliteRelease(ctx context.Context, q querier, keep bool) error {
	if !keep {
		if _, err := q.exec(ctx, "ROLLBACK TO write"); err != nil {
			return fmt.Errorf("roll back a write of the group: %w", err)
		}
	}
	if _, err := q.exec(ctx, "RELEASE write"); err != nil {
		return fmt.Errorf("release a write of the group: %w", err)
	}
	return nil
}

func (q sqlQuerier) execLast(ctx context.Context, what, query string, args ...any) error {
	if _, err := q.exec(ctx, query, args...); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// outcomeUnknown wraps err, the error of a COMMIT that was sent, with
// ErrOutcomeUnknown.
func outcomeUnknown(err error) error {
	return fmt.Errorf("commit: %w (%w)", err, ErrOutcomeUnknown)
}

// maxTxAttempts bounds how often write runs a PostgreSQL transaction that
// failed with a serialization failure or deadlock.
const maxTxAttempts = 5

// write runs fn in a write transaction and commits it, or rolls back fn's
// changes if fn fails. Writes that arrive together share a transaction
// (see group). fn may run more than once (in a group whose transaction
// failed, and on PostgreSQL deadlocks and serialization failures), so it
// must reset anything it captures at its start.
func (s *Store) write(ctx context.Context, fn func(q querier) error) error {
	return s.group.do(ctx, fn)
}

// writeAlone runs fn in a transaction of its own, retrying it on
// PostgreSQL deadlocks and serialization failures.
func (s *Store) writeAlone(ctx context.Context, fn func(q querier) error) error {
	for attempt := 1; ; attempt++ {
		err := s.writeOnce(ctx, false, fn)
		if err == nil {
			s.ckpt.committed(1)
		}
		if s.writes != nil && s.writes.hasMissed() {
			// Now that the transaction has given its connection back.
			s.writes.prepareMissed(ctx)
		}
		if err == nil || attempt == maxTxAttempts || !isRetryable(err) || ctx.Err() != nil {
			return err
		}
	}
}

// writeOnce runs fn in one transaction. If fixed is set, the statements
// fn runs ignore the contexts it passes and run under ctx.
func (s *Store) writeOnce(ctx context.Context, fixed bool, fn func(q querier) error) error {
	switch {
	case s.dialect == Postgres:
		return s.pgWrite(ctx, fixed, fn)
	case s.writes != nil:
		return s.sqliteCachedTx(ctx, fixed, fn)
	}
	return s.sqliteTx(ctx, "BEGIN IMMEDIATE", fixed, fn)
}

// sqliteCachedTx runs fn in a transaction of the writer pool Open made,
// whose DSN makes the driver begin every transaction IMMEDIATE (see
// sqliteTx for why), running statements prepared once by the Store's
// cache.
func (s *Store) sqliteCachedTx(ctx context.Context, fixed bool, fn func(q querier) error) error {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
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
	q := stmtTx{tx: tx, cache: s.writes}
	if fixed {
		q.ctx = ctx
	}
	if err := fn(q); err != nil {
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
func (s *Store) sqliteTx(ctx context.Context, begin string, fixed bool, fn func(q querier) error) error {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return err
	}
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
	q := sqlQuerier{q: conn}
	if fixed {
		q.ctx = ctx
	}
	if err := fn(q); err != nil {
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

// errNoRows reports whether err is sql.ErrNoRows.
func errNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
