package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/signoff/approval/internal/groupcommit"
)

// querier is what a write transaction runs statements on: a sqliteQuerier
// or a pgQuerier. Its statements run one at a time.
type querier interface {
	// exec runs a statement and returns the number of rows it changed.
	exec(ctx context.Context, query string, args ...any) (int64, error)
	// queryRow runs a statement that returns at most one row.
	queryRow(ctx context.Context, query string, args ...any) scanner
	// execLast runs a statement whose result nothing depends on and after
	// which the write runs no other: a pgQuerier sends it with COMMIT, so
	// its error may come from the commit instead. Its error is wrapped
	// with what, which says what the statement does.
	execLast(ctx context.Context, what, query string, args ...any) error
	// Savepoint and Release delimit one write of a transaction of
	// several (see groupcommit).
	groupcommit.Tx
}

// scanner is a row: a *sql.Row or a pgx.Row.
type scanner interface {
	Scan(dest ...any) error
}

// write runs fn in a write transaction and commits it, or rolls back fn's
// changes if fn fails. Unless GroupCommit(false), writes that arrive
// together share a transaction, each in a savepoint (see groupcommit). fn
// runs its statements under the context it is given, which is ctx when it
// runs alone; it may run more than once (in a group whose transaction
// failed, and on PostgreSQL deadlocks and serialization failures), so it
// must reset anything it captures at its start.
func (s *Store) write(ctx context.Context, fn groupcommit.Write[querier]) error {
	var err error
	if s.group != nil {
		err = s.group.Do(ctx, fn)
	} else {
		err = s.txn(ctx, fn)
	}
	if err == nil {
		s.ckpt.Committed(1)
	}
	return err
}

// maxTxAttempts bounds how often txn runs a PostgreSQL transaction that
// failed with a serialization failure or deadlock.
const maxTxAttempts = 5

// txn runs fn in one transaction of its own and commits it, retrying it
// on PostgreSQL deadlocks and serialization failures: the transaction of
// every write with GroupCommit(false), and of every group of writes.
func (s *Store) txn(ctx context.Context, fn groupcommit.Write[querier]) error {
	for attempt := 1; ; attempt++ {
		var err error
		switch {
		case s.dialect == Postgres:
			err = s.pgTxn(ctx, fn)
		case s.writes != nil:
			err = s.sqliteCachedTx(ctx, fn)
		default:
			err = s.sqliteTx(ctx, "BEGIN IMMEDIATE", fn)
		}
		if err == nil || attempt == maxTxAttempts || !isRetryable(err) || ctx.Err() != nil {
			return err
		}
	}
}

// outcomeUnknown wraps err, the error of a COMMIT that was sent, with
// ErrOutcomeUnknown.
func outcomeUnknown(err error) error {
	return fmt.Errorf("commit: %w (%w)", err, ErrOutcomeUnknown)
}

// errNoRows reports whether err is sql.ErrNoRows.
func errNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
