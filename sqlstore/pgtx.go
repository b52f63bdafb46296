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
// pgx connection beneath database/sql's, to pipeline: BEGIN travels with
// the transaction's first statement, and the statements given to execLast
// travel with COMMIT, each pair as one pgx batch (one network write, one
// read). A write of a request and its events then takes two round trips
// (Create, AppendAudit) or three (Update, which reads the stored version
// first) instead of four or five, and the chain lock (see audit_tail) is
// held for one round trip and the commit rather than two and the commit.
//
// Within a batch PostgreSQL skips everything after an error, so a failed
// statement also leaves COMMIT unrun; the transaction is then rolled back
// by end.
type pgTx struct {
	conn  *pgx.Conn
	begun bool
	last  []pgStmt
}

type pgStmt struct {
	sql  string
	args []any
	// what says what the statement does, for its errors (execLast).
	what string
}

// pgWrite runs fn in a pgTx on a connection of the writer pool and
// commits, or rolls back if fn or the commit fails. The connection goes
// back to the pool outside any transaction, or is discarded.
func (s *Store) pgWrite(ctx context.Context, fn func(q querier) error) error {
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
		t := &pgTx{conn: sc.Conn()}
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

// batch sends the queued statements, after BEGIN if the transaction has
// not begun, and returns the results positioned after BEGIN's.
func (t *pgTx) batch(ctx context.Context, stmts ...pgStmt) (pgx.BatchResults, error) {
	b := &pgx.Batch{}
	begin := !t.begun
	if begin {
		b.Queue("BEGIN")
		t.begun = true
	}
	for _, st := range stmts {
		b.Queue(st.sql, st.args...)
	}
	br := t.conn.SendBatch(ctx, b)
	if begin {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return nil, err
		}
	}
	return br, nil
}

func (t *pgTx) exec(ctx context.Context, query string, args ...any) (int64, error) {
	if t.begun {
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
	if t.begun {
		return t.conn.QueryRow(ctx, query, args...)
	}
	br, err := t.batch(ctx, pgStmt{sql: query, args: args})
	if err != nil {
		return errRow{err}
	}
	return batchRow{row: br.QueryRow(), br: br}
}

// queryRows runs stmts in one batch and scans the one row each returns
// into its dests.
func (t *pgTx) queryRows(ctx context.Context, stmts []pgStmt, dests [][]any) error {
	br, err := t.batch(ctx, stmts...)
	if err != nil {
		return err
	}
	for _, d := range dests {
		if err = br.QueryRow().Scan(d...); err != nil {
			break
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return err
}

// execLast queues the statement to be sent with COMMIT.
func (t *pgTx) execLast(_ context.Context, what, query string, args ...any) error {
	t.last = append(t.last, pgStmt{sql: query, args: args, what: what})
	return nil
}

// commit sends the statements of execLast and COMMIT in one batch.
func (t *pgTx) commit(ctx context.Context) error {
	if !t.begun && len(t.last) == 0 {
		return nil
	}
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
		// PostgreSQL answers COMMIT with ROLLBACK, not an error, in a
		// transaction that has failed.
		err = fmt.Errorf("transaction rolled back: COMMIT answered %q", tag.String())
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
