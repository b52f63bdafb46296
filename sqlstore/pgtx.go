package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// pgTx is the querier of a PostgreSQL write transaction. It runs on the
// pgx connection beneath database/sql's, to pipeline: statements that
// need no answer of their own travel ahead of the next ones that do, each
// group of them as one pgx batch (one network write, one read). BEGIN and
// the chain lock travel with the transaction's first statement, and the
// statements given to execLast with COMMIT (or, in a group, with the next
// write's first statement). A write of a request and its events then
// takes two round trips (Create, AppendAudit) or three (Update, which
// reads the stored version first) instead of five or six.
//
// Every transaction locks the audit chain and reads its end first (see
// audit_tail), before any row lock, so all writers take their locks in one
// order and writes grouped in one transaction (see group) cannot deadlock
// with those of other processes. The end of the chain is then known for
// the whole transaction, and each append advances it without a query.
//
// Within a batch PostgreSQL skips everything after an error, so a failed
// statement also leaves COMMIT unrun; the transaction is then rolled back
// by end.
type pgTx struct {
	conn *pgx.Conn
	// ctx, if set, is the context every statement runs under, whatever
	// its caller passes (a group's: see runGroup).
	ctx   context.Context
	begun bool
	// unchained is set for the migrations' transaction, which must not
	// lock the chain: the schema may not exist yet.
	unchained bool
	// pre holds statements to send ahead of the next batch's own: a
	// group's savepoint statements and the deferred statements of its
	// previous write.
	pre  []pgStmt
	last []pgStmt
	// tail is the end of the chain as of the last write kept; pending, if
	// set, is where the current write's appends have taken it.
	tail    chainTail
	pending *chainTail
	// broken is the error of a statement sent ahead (pre): the
	// transaction cannot commit.
	broken error
}

type pgStmt struct {
	sql  string
	args []any
	// what says what the statement does, for its errors.
	what string
	// dest, if set, receives the one row the statement returns.
	dest []any
}

// pgWrite runs fn in a pgTx on a connection of the writer pool and
// commits, or rolls back if fn or the commit fails. The connection goes
// back to the pool outside any transaction, or is discarded. If fixed is
// set, fn's statements run under ctx.
func (s *Store) pgWrite(ctx context.Context, fixed bool, fn func(q querier) error) error {
	return s.pgRun(ctx, &pgTx{ctx: fixedCtx(ctx, fixed)}, fn)
}

// fixedCtx returns ctx if fixed is set, and nil otherwise.
func fixedCtx(ctx context.Context, fixed bool) context.Context {
	if fixed {
		return ctx
	}
	return nil
}

// pgRun runs fn in t on a connection of the writer pool: see pgWrite.
func (s *Store) pgRun(ctx context.Context, t *pgTx, fn func(q querier) error) error {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var ferr error
	err = conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			ferr = errNotPgx(dc)
			return nil
		}
		t.conn = sc.Conn()
		ferr = fn(t)
		if ferr == nil {
			ferr = t.commit(ctx)
		}
		return t.end(ctx)
	})
	if ferr != nil {
		return ferr
	}
	return err
}

// checkPgx returns an error unless db's driver is pgx's stdlib, on which
// the PostgreSQL write path runs.
func checkPgx(ctx context.Context, db *sql.DB) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		if _, ok := dc.(*stdlib.Conn); !ok {
			return errNotPgx(dc)
		}
		return nil
	})
}

func errNotPgx(dc any) error {
	return fmt.Errorf("the pool's driver connection is a %T, not pgx's (open the pool with sql.Open(\"pgx\", dsn) after importing github.com/jackc/pgx/v5/stdlib)", dc)
}

// batch sends the statements sent ahead (BEGIN and the chain lock first
// if the transaction has not begun), then stmts, in one batch, and returns
// the results positioned at stmts' first.
func (t *pgTx) batch(ctx context.Context, stmts ...pgStmt) (pgx.BatchResults, error) {
	if t.broken != nil {
		return nil, t.broken
	}
	if t.ctx != nil {
		ctx = t.ctx
	}
	pre := t.pre
	t.pre = nil
	if !t.begun && t.unchained {
		t.begun = true
		pre = append([]pgStmt{{sql: "BEGIN", what: "begin"}}, pre...)
	} else if !t.begun {
		t.begun = true
		pre = append([]pgStmt{
			{sql: "BEGIN", what: "begin"},
			{sql: `SELECT seq, hash FROM audit_tail(true)`, what: "lock the audit chain",
				dest: []any{&t.tail.seq, &t.tail.hash}},
		}, pre...)
	}
	b := &pgx.Batch{}
	for _, st := range pre {
		b.Queue(st.sql, st.args...)
	}
	for _, st := range stmts {
		b.Queue(st.sql, st.args...)
	}
	br := t.conn.SendBatch(ctx, b)
	for _, st := range pre {
		var err error
		if st.dest != nil {
			err = br.QueryRow().Scan(st.dest...)
		} else {
			_, err = br.Exec()
		}
		if err != nil {
			_ = br.Close()
			t.broken = fmt.Errorf("%s: %w", st.what, err)
			return nil, t.broken
		}
	}
	return br, nil
}

// direct reports whether a statement can go on its own: nothing waits to
// be sent ahead of it.
func (t *pgTx) direct() bool { return t.begun && len(t.pre) == 0 && t.broken == nil }

func (t *pgTx) exec(ctx context.Context, query string, args ...any) (int64, error) {
	if t.ctx != nil {
		ctx = t.ctx
	}
	if t.direct() {
		tag, err := t.conn.Exec(ctx, query, args...)
		return tag.RowsAffected(), err
	}
	br, err := t.batch(ctx, pgStmt{sql: query, args: args})
	if err != nil {
		return 0, err
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag.RowsAffected(), err
}

func (t *pgTx) queryRow(ctx context.Context, query string, args ...any) scanner {
	if t.ctx != nil {
		ctx = t.ctx
	}
	if t.direct() {
		return t.conn.QueryRow(ctx, query, args...)
	}
	br, err := t.batch(ctx, pgStmt{sql: query, args: args})
	if err != nil {
		return errRow{err}
	}
	return batchRow{row: br.QueryRow(), br: br}
}

// execLast defers the statement: it is sent with COMMIT, or with the
// first statement of the group's next write.
func (t *pgTx) execLast(_ context.Context, what, query string, args ...any) error {
	t.last = append(t.last, pgStmt{sql: query, args: args, what: what})
	return nil
}

// chainEnd returns the end of the audit chain, as the current write's
// appends have left it. The chain is locked and its end read at BEGIN, so
// this is a round trip only if the transaction has sent nothing yet.
func (t *pgTx) chainEnd(ctx context.Context) (chainTail, error) {
	if !t.begun {
		br, err := t.batch(ctx)
		if err != nil {
			return chainTail{}, err
		}
		if err := br.Close(); err != nil {
			return chainTail{}, err
		}
	}
	if t.pending != nil {
		return *t.pending, nil
	}
	return t.tail, nil
}

// appended records that the current write appended up to end.
func (t *pgTx) appended(end chainTail) { t.pending = &end }

func (t *pgTx) savepoint(context.Context) error {
	t.pre = append(t.pre, pgStmt{sql: "SAVEPOINT write", what: "start a write of the group"})
	return t.broken
}

// release ends the current write of a group. Its statements go ahead of
// the next write's: the deferred ones and RELEASE if it is kept, ROLLBACK
// TO and RELEASE if not. But if a statement of the write failed, the
// transaction is aborted and refuses everything but ROLLBACK TO until it
// runs, including pgx's preparing the next write's new statements, which
// pgx does before sending any of a batch: so the rollback is sent at once,
// by the simple protocol, which prepares nothing.
func (t *pgTx) release(ctx context.Context, keep bool) error {
	release := pgStmt{sql: "RELEASE write", what: "end a write of the group"}
	if keep {
		t.pre = append(t.pre, t.last...)
		t.pre = append(t.pre, release)
		if t.pending != nil {
			t.tail = *t.pending
		}
		t.last, t.pending = nil, nil
		return t.broken
	}
	t.last, t.pending = nil, nil
	if t.broken != nil || t.conn.PgConn().TxStatus() != 'E' {
		t.pre = append(t.pre, pgStmt{sql: "ROLLBACK TO write", what: "roll back a write of the group"}, release)
		return t.broken
	}
	if t.ctx != nil {
		ctx = t.ctx
	}
	if _, err := t.conn.PgConn().Exec(ctx, "ROLLBACK TO write; RELEASE write").ReadAll(); err != nil {
		t.broken = fmt.Errorf("roll back a write of the group: %w", err)
	}
	return t.broken
}

// commit sends the statements sent ahead and those of execLast, and
// COMMIT, in one batch. Once the batch is sent, an error that is not the
// server's (a *pgconn.PgError, after which the server runs nothing more
// of the batch, COMMIT included) leaves the outcome unknown: the
// connection failed or the context ended with COMMIT in flight, and the
// error wraps ErrOutcomeUnknown.
func (t *pgTx) commit(ctx context.Context) error {
	if t.broken != nil {
		return t.broken
	}
	if !t.begun && len(t.last) == 0 && len(t.pre) == 0 {
		return nil
	}
	err := t.sendCommit(ctx)
	var pe *pgconn.PgError
	if err != nil && !errors.As(err, &pe) && !errors.Is(err, errRolledBack) {
		return outcomeUnknown(err)
	}
	return err
}

// errRolledBack is commit's error when PostgreSQL answered COMMIT with
// ROLLBACK, as it does in a transaction that has failed.
var errRolledBack = errors.New("transaction rolled back: COMMIT answered ROLLBACK")

func (t *pgTx) sendCommit(ctx context.Context) error {
	br, err := t.batch(ctx, append(t.last, pgStmt{sql: "COMMIT", what: "commit"})...)
	if err != nil {
		return err
	}
	for _, st := range t.last {
		if _, err = br.Exec(); err != nil {
			err = fmt.Errorf("%s: %w", st.what, err)
			break
		}
	}
	var tag pgconn.CommandTag
	if err == nil {
		tag, err = br.Exec()
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err == nil && tag.String() != "COMMIT" {
		err = errRolledBack
	}
	return err
}

// end leaves the connection outside any transaction, rolling back one
// that did not commit, or returns driver.ErrBadConn so that database/sql
// discards it.
func (t *pgTx) end(ctx context.Context) error {
	pc := t.conn.PgConn()
	if pc.IsClosed() {
		return driver.ErrBadConn
	}
	if pc.TxStatus() == 'I' {
		return nil
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := t.conn.Exec(rctx, "ROLLBACK"); err != nil || pc.TxStatus() != 'I' {
		return driver.ErrBadConn
	}
	return nil
}

// batchRow is the row of a statement sent in a batch: scanning it also
// reads the rest of the batch's results.
type batchRow struct {
	row pgx.Row
	br  pgx.BatchResults
}

func (r batchRow) Scan(dest ...any) error {
	err := r.row.Scan(dest...)
	if cerr := r.br.Close(); err == nil || errors.Is(err, pgx.ErrNoRows) && cerr != nil {
		err = cerr
	}
	return err
}

// errRow is a row whose query failed to start.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
