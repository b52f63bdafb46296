package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
)

// The raw-driver yardsticks of BenchmarkGate: what a single-row
// read-modify-write costs, and what the rows the gate must write cost the
// raw driver, with no gate, no encoding, no hashing and no group commit.

// rawRows is the size of the raw benchmark's table; each caller updates
// the rows whose id is its index modulo the number of callers.
const rawRows = 64

func benchRawRMW(b *testing.B, s *Store, callers int) {
	ctx := context.Background()
	db := s.w // the Store's writer pool: same connections, same pragmas
	if _, err := db.ExecContext(ctx, `CREATE TABLE bench_rmw (id BIGINT NOT NULL PRIMARY KEY, counter BIGINT NOT NULL, payload TEXT NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	payload := func(n int64) string { return fmt.Sprintf("%08d", n) + strings.Repeat("x", 192) }
	for id := range rawRows {
		if _, err := db.ExecContext(ctx, `INSERT INTO bench_rmw (id, counter, payload) VALUES ($1, 0, $2)`, id, payload(0)); err != nil {
			b.Fatal(err)
		}
	}
	forUpdate := ""
	if s.Dialect() == Postgres {
		forUpdate = " FOR UPDATE"
	}
	rmw := func(ctx context.Context, q rawQuerier, id int) error {
		var (
			n int64
			p string
		)
		if err := q.QueryRowContext(ctx, `SELECT counter, payload FROM bench_rmw WHERE id = $1`+forUpdate, id).Scan(&n, &p); err != nil {
			return err
		}
		_, err := q.ExecContext(ctx, `UPDATE bench_rmw SET counter = $2, payload = $3 WHERE id = $1`, id, n+1, payload(n+1))
		return err
	}
	runBench(b, callers, func(caller, i int) error {
		id := (caller + i*callers) % rawRows
		return rawTx(ctx, s, func(q rawQuerier) error { return rmw(ctx, q, id) })
	})
}

// schemaRows holds the column values of a request and of its
// request.created event as the gate stored them, for the raw-create and
// raw-decide benchmarks to write rows of the same size and shape.
type schemaRows struct {
	request []any // requests: status, requested_by, created_at, updated_at, due_at, version, body
	event   []any // audit_events: type, actor, at, body
}

// gateRows guards one action through a gate over s and reads back the
// rows it wrote.
func gateRows(b *testing.B, s *Store) schemaRows {
	b.Helper()
	ctx := context.Background()
	res, err := benchGate(b, s).Guard(ctx, benchActions(1)[0])
	if err != nil {
		b.Fatal(err)
	}
	rows := schemaRows{request: make([]any, 7), event: make([]any, 4)}
	scan := func(dest []any, query string) {
		ptrs := make([]any, len(dest))
		for i := range dest {
			ptrs[i] = &dest[i]
		}
		if err := s.w.QueryRowContext(ctx, query, res.RequestID).Scan(ptrs...); err != nil {
			b.Fatal(err)
		}
	}
	scan(rows.request, `SELECT status, requested_by, created_at, updated_at, due_at, version, body FROM requests WHERE id = $1`)
	scan(rows.event, `SELECT type, actor, at, body FROM audit_events WHERE request_id = $1 ORDER BY seq LIMIT 1`)
	return rows
}

// rawAppend appends one event to the audit trail as the schema requires
// of every write: read the end of the chain (on PostgreSQL through
// audit_tail, which takes the chain's lock) and insert the next row after
// it. The hash is a fixed-size stand-in, not computed.
func rawAppend(ctx context.Context, s *Store, q rawQuerier, requestID string, event []any) error {
	tail := `SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1`
	if s.Dialect() == Postgres {
		tail = `SELECT seq, hash FROM audit_tail(true)`
	}
	var (
		seq  int64
		prev string
	)
	if err := q.QueryRowContext(ctx, tail).Scan(&seq, &prev); err != nil {
		return err
	}
	_, err := q.ExecContext(ctx, `INSERT INTO audit_events (seq, request_id, type, actor, at, prev_hash, hash, body)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		seq+1, requestID, event[0], event[1], event[2], prev, fmt.Sprintf("%064x", seq+1), event[3])
	return err
}

// rawInsertRequest inserts a request row like the gate's, under another
// ID and action hash, with its policy row.
func rawInsertRequest(ctx context.Context, q rawQuerier, id string, req []any) error {
	args := append([]any{id, "ah-" + id}, req...)
	if _, err := q.ExecContext(ctx, `INSERT INTO requests (id, action_hash, status, requested_by, created_at, updated_at, due_at, version, body)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING`, args...); err != nil {
		return err
	}
	_, err := q.ExecContext(ctx, `INSERT INTO request_policies (request_id, policy) VALUES ($1, 'high_spend')`, id)
	return err
}

// benchRawCreate is the least a guard-create costs in the store's schema:
// one transaction inserting the request row (every index of requests: its
// key, the live-action dedup index, the due, status, requester and
// creation-time indexes), its policy row, and the request.created event
// (the audit table and its request, actor and time indexes), after reading
// the end of the chain. The statements are unprepared, as in raw-rmw.
func benchRawCreate(b *testing.B, s *Store, callers int) {
	ctx := context.Background()
	rows := gateRows(b, s)
	runBench(b, callers, func(_, i int) error {
		id := fmt.Sprintf("raw-%d", i)
		return rawTx(ctx, s, func(q rawQuerier) error {
			if err := rawInsertRequest(ctx, q, id, rows.request); err != nil {
				return err
			}
			return rawAppend(ctx, s, q, id, rows.event)
		})
	})
}

// benchRawDecide is the least a decision costs in the store's schema: one
// transaction reading the request row (FOR UPDATE on PostgreSQL), updating
// its body and version, inserting the used token ID and the approver's row,
// and appending the decision's event.
func benchRawDecide(b *testing.B, s *Store, callers int) {
	ctx := context.Background()
	rows := gateRows(b, s)
	for i := range b.N {
		if err := rawTx(ctx, s, func(q rawQuerier) error {
			return rawInsertRequest(ctx, q, fmt.Sprintf("raw-%d", i), rows.request)
		}); err != nil {
			b.Fatal(err)
		}
	}
	forUpdate := ""
	if s.Dialect() == Postgres {
		forUpdate = " FOR UPDATE"
	}
	runBench(b, callers, func(_, i int) error {
		id := fmt.Sprintf("raw-%d", i)
		return rawTx(ctx, s, func(q rawQuerier) error {
			var (
				body    string
				version int64
			)
			if err := q.QueryRowContext(ctx, `SELECT body, version FROM requests WHERE id = $1`+forUpdate, id).Scan(&body, &version); err != nil {
				return err
			}
			if _, err := q.ExecContext(ctx, `UPDATE requests SET body = $2, version = $3, updated_at = $4 WHERE id = $1`,
				id, body, version+1, rows.request[3]); err != nil {
				return err
			}
			if _, err := q.ExecContext(ctx, `INSERT INTO used_tokens (token_id, request_id, used_at) VALUES ($1, $2, $3)`,
				"tok-"+id, id, rows.event[2]); err != nil {
				return err
			}
			if _, err := q.ExecContext(ctx, `INSERT INTO request_approvers (request_id, approver) VALUES ($1, 'approver-1')`, id); err != nil {
				return err
			}
			return rawAppend(ctx, s, q, id, rows.event)
		})
	})
}

// rawTx runs fn in a transaction of the raw driver on the Store's writer
// pool: BEGIN IMMEDIATE and COMMIT on one SQLite connection, a
// database/sql transaction on PostgreSQL.
func rawTx(ctx context.Context, s *Store, fn func(q rawQuerier) error) error {
	if s.Dialect() == Postgres {
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
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	if err := fn(conn); err != nil {
		_, _ = conn.ExecContext(ctx, "ROLLBACK")
		return err
	}
	_, err = conn.ExecContext(ctx, "COMMIT")
	return err
}

// rawQuerier is what raw-rmw runs its statements on: a *sql.Tx or a
// *sql.Conn.
type rawQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}
