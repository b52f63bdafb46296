// Package pgpipe runs a PostgreSQL transaction on the pgx connection
// beneath a database/sql connection, pipelining its statements: those that
// need no answer of their own travel ahead of the next ones that do, each
// group of them as one pgx batch (one network write, one read). BEGIN, and
// the statements the transaction is started with, travel with its first
// statement; the statements given to Tx.Defer travel with COMMIT (or, in a
// transaction of several writes, with the next write's first statement).
//
// It guarantees that a transaction run by Run commits exactly what its
// function ran, or nothing: a statement that fails, sent ahead or with
// COMMIT, leaves the transaction uncommitted (within a batch PostgreSQL
// skips everything after an error, COMMIT included) and Run rolls it back.
// Run's error wraps ErrCommitUnanswered when COMMIT was sent and its answer
// never came (the connection failed or the context ended meanwhile): only
// then may the transaction have committed though Run failed. The
// connection goes back to the pool outside any transaction, or is
// discarded.
//
// It exists because on a local server a short write's time is mostly
// round trips: pipelined, a write of a request and its events takes two
// round trips instead of five or six (see docs/PERFORMANCE.md).
package pgpipe

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

// ErrCommitUnanswered is wrapped by Run's error when COMMIT was sent and
// its answer never came back: the transaction may have committed.
var ErrCommitUnanswered = errors.New("COMMIT was sent but not answered")

// errRolledBack is the commit's error when PostgreSQL answered COMMIT with
// ROLLBACK, as it does in a transaction that has failed.
var errRolledBack = errors.New("transaction rolled back: COMMIT answered ROLLBACK")

// Stmt is a statement sent ahead of others.
type Stmt struct {
	// SQL is the statement's text.
	SQL string
	// Args are its arguments.
	Args []any
	// What says what the statement does, for its errors ("lock the audit
	// chain: ...").
	What string
	// Dest, if set, receives the one row the statement returns.
	Dest []any
}

// Tx is a pipelined transaction. Its statements must run one at a time,
// as on any one connection; it is valid only inside Run's function.
type Tx struct {
	conn  *pgx.Conn
	first []Stmt
	begun bool
	// pre holds statements to send ahead of the next batch's own: a write's
	// savepoint statements and the deferred statements of the write
	// before it.
	pre  []Stmt
	last []Stmt
	// broken is the error of a statement sent ahead: the transaction
	// cannot commit.
	broken error
}

// Run runs fn in a transaction on a connection of db, whose driver must
// be pgx's stdlib, and commits it if fn returns nil. The statements of
// first are sent with BEGIN, before any of fn's; each fills its Dest.
func Run(ctx context.Context, db *sql.DB, first []Stmt, fn func(tx *Tx) error) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var ferr error
	err = raw(conn, func(c *pgx.Conn) error {
		t := &Tx{conn: c, first: first}
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

// Raw runs fn on the pgx connection beneath one of db's connections. It
// fails, running nothing, unless db's driver is pgx's stdlib.
func Raw(ctx context.Context, db *sql.DB, fn func(c *pgx.Conn) error) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return raw(conn, fn)
}

func raw(conn *sql.Conn, fn func(c *pgx.Conn) error) error {
	var ferr error
	err := conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			ferr = fmt.Errorf("the pool's driver connection is a %T, not pgx's (open the pool with sql.Open(\"pgx\", dsn) after importing github.com/jackc/pgx/v5/stdlib)", dc)
			return nil
		}
		return fn(sc.Conn())
	})
	if ferr != nil {
		return ferr
	}
	return err
}

// Begin sends BEGIN and the transaction's first statements, unless they
// have gone already.
func (t *Tx) Begin(ctx context.Context) error {
	if t.begun {
		return t.broken
	}
	br, err := t.batch(ctx)
	if err != nil {
		return err
	}
	return br.Close()
}

// batch sends the statements sent ahead (BEGIN and the first statements
// first if the transaction has not begun), then stmts, in one batch, and
// returns the results positioned at stmts' first.
func (t *Tx) batch(ctx context.Context, stmts ...Stmt) (pgx.BatchResults, error) {
	if t.broken != nil {
		return nil, t.broken
	}
	pre := t.pre
	t.pre = nil
	if !t.begun {
		t.begun = true
		pre = append(append([]Stmt{{SQL: "BEGIN", What: "begin"}}, t.first...), pre...)
	}
	b := &pgx.Batch{}
	for _, st := range pre {
		b.Queue(st.SQL, st.Args...)
	}
	for _, st := range stmts {
		b.Queue(st.SQL, st.Args...)
	}
	br := t.conn.SendBatch(ctx, b)
	for _, st := range pre {
		var err error
		if st.Dest != nil {
			err = br.QueryRow().Scan(st.Dest...)
		} else {
			_, err = br.Exec()
		}
		if err != nil {
			_ = br.Close()
			t.broken = fmt.Errorf("%s: %w", st.What, err)
			return nil, t.broken
		}
	}
	return br, nil
}

// direct reports whether a statement can go on its own: nothing waits to
// be sent ahead of it.
func (t *Tx) direct() bool { return t.begun && len(t.pre) == 0 && t.broken == nil }

// Exec runs a statement, with whatever waits to be sent ahead of it, and
// returns the number of rows it changed.
func (t *Tx) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	if t.direct() {
		tag, err := t.conn.Exec(ctx, query, args...)
		return tag.RowsAffected(), err
	}
	br, err := t.batch(ctx, Stmt{SQL: query, Args: args})
	if err != nil {
		return 0, err
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag.RowsAffected(), err
}

// QueryRow runs a statement that returns at most one row, with whatever
// waits to be sent ahead of it.
func (t *Tx) QueryRow(ctx context.Context, query string, args ...any) pgx.Row {
	if t.direct() {
		return t.conn.QueryRow(ctx, query, args...)
	}
	br, err := t.batch(ctx, Stmt{SQL: query, Args: args})
	if err != nil {
		return errRow{err}
	}
	return batchRow{row: br.QueryRow(), br: br}
}

// Defer queues a statement whose result nothing depends on, after which
// the write runs no other: it is sent with COMMIT, or with the first
// statement of the next write (see Release). Its error, should it fail,
// is wrapped with what and comes from Run (or from the next write's first
// statement).
func (t *Tx) Defer(what, query string, args ...any) {
	t.last = append(t.last, Stmt{SQL: query, Args: args, What: what})
}

// Savepoint starts a write of a transaction of several. Its SAVEPOINT is
// sent ahead of the write's first statement.
func (t *Tx) Savepoint(context.Context) error {
	t.pre = append(t.pre, Stmt{SQL: "SAVEPOINT write", What: "start a write of the group"})
	return t.broken
}

// Release ends the write Savepoint started. Its statements go ahead of the
// next write's: the deferred ones and RELEASE if it is kept, ROLLBACK TO
// and RELEASE if not (its deferred statements are dropped). But if a
// statement of the write failed, the transaction is aborted and refuses
// everything but ROLLBACK TO until it runs, including pgx's preparing the
// next write's new statements, which pgx does before sending any of a
// batch: so the rollback is sent at once, by the simple protocol, which
// prepares nothing.
func (t *Tx) Release(ctx context.Context, keep bool) error {
	release := Stmt{SQL: "RELEASE write", What: "end a write of the group"}
	if keep {
		t.pre = append(t.pre, t.last...)
		t.pre = append(t.pre, release)
		t.last = nil
		return t.broken
	}
	t.last = nil
	if t.broken != nil || t.conn.PgConn().TxStatus() != 'E' {
		t.pre = append(t.pre, Stmt{SQL: "ROLLBACK TO write", What: "roll back a write of the group"}, release)
		return t.broken
	}
	if _, err := t.conn.PgConn().Exec(ctx, "ROLLBACK TO write; RELEASE write").ReadAll(); err != nil {
		t.broken = fmt.Errorf("roll back a write of the group: %w", err)
	}
	return t.broken
}

// commit sends the statements sent ahead and the deferred ones, and
// COMMIT, in one batch. Once the batch is sent, an error that is not the
// server's (a *pgconn.PgError, after which the server runs nothing more of
// the batch, COMMIT included) leaves the outcome unknown: the connection
// failed or the context ended with COMMIT in flight, and the error wraps
// ErrCommitUnanswered.
func (t *Tx) commit(ctx context.Context) error {
	if t.broken != nil {
		return t.broken
	}
	if !t.begun && len(t.last) == 0 && len(t.pre) == 0 {
		return nil
	}
	err := t.sendCommit(ctx)
	var pe *pgconn.PgError
	if err != nil && !errors.As(err, &pe) && !errors.Is(err, errRolledBack) {
		return fmt.Errorf("%w: %w", ErrCommitUnanswered, err)
	}
	return err
}

func (t *Tx) sendCommit(ctx context.Context) error {
	br, err := t.batch(ctx, append(t.last, Stmt{SQL: "COMMIT", What: "commit"})...)
	if err != nil {
		return err
	}
	for _, st := range t.last {
		if _, err = br.Exec(); err != nil {
			err = fmt.Errorf("%s: %w", st.What, err)
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
func (t *Tx) end(ctx context.Context) error {
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
