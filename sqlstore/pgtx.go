package sqlstore

import (
	"context"
	"errors"

	"github.com/signoff/approval/internal/groupcommit"
	"github.com/signoff/approval/internal/pgpipe"
)

// pgQuerier is the querier of a PostgreSQL write transaction: a pipelined
// transaction (see pgpipe) that locks the audit chain and reads its end
// with BEGIN, before any row lock, so that all writers take their locks in
// one order and writes grouped in one transaction cannot deadlock with
// those of other processes. The end of the chain is then known for the
// whole transaction, and each append advances it without a query.
type pgQuerier struct {
	tx *pgpipe.Tx
	// tail is the end of the chain as of the last write kept; pending, if
	// set, is where the current write's appends have taken it.
	tail    chainTail
	pending *chainTail
}

// pgTxn runs fn in a pgQuerier on a connection of the writer pool and
// commits, or rolls back if fn or the commit fails.
func (s *Store) pgTxn(ctx context.Context, fn groupcommit.Write[querier]) error {
	q := &pgQuerier{}
	lock := []pgpipe.Stmt{{SQL: `SELECT seq, hash FROM audit_tail(true)`, What: "lock the audit chain",
		Dest: []any{&q.tail.seq, &q.tail.hash}}}
	err := pgpipe.Run(ctx, s.w, lock, func(tx *pgpipe.Tx) error {
		q.tx = tx
		return fn(ctx, q)
	})
	if errors.Is(err, pgpipe.ErrCommitUnanswered) {
		return outcomeUnknown(err)
	}
	return err
}

func (q *pgQuerier) exec(ctx context.Context, query string, args ...any) (int64, error) {
	return q.tx.Exec(ctx, query, args...)
}

func (q *pgQuerier) queryRow(ctx context.Context, query string, args ...any) scanner {
	return q.tx.QueryRow(ctx, query, args...)
}

// execLast defers the statement: it is sent with COMMIT, or with the first
// statement of the group's next write.
func (q *pgQuerier) execLast(_ context.Context, what, query string, args ...any) error {
	q.tx.Defer(what, query, args...)
	return nil
}

// chainEnd returns the end of the audit chain, as the current write's
// appends have left it. The chain is locked and its end read at BEGIN, so
// this is a round trip only if the transaction has sent nothing yet.
func (q *pgQuerier) chainEnd(ctx context.Context) (chainTail, error) {
	if err := q.tx.Begin(ctx); err != nil {
		return chainTail{}, err
	}
	if q.pending != nil {
		return *q.pending, nil
	}
	return q.tail, nil
}

// appended records that the current write appended up to end.
func (q *pgQuerier) appended(end chainTail) { q.pending = &end }

func (q *pgQuerier) Savepoint(ctx context.Context) error { return q.tx.Savepoint(ctx) }

// Release ends a write of a group; the end of the chain it appended up to
// is kept with it.
func (q *pgQuerier) Release(ctx context.Context, keep bool) error {
	if keep && q.pending != nil {
		q.tail = *q.pending
	}
	q.pending = nil
	return q.tx.Release(ctx, keep)
}
