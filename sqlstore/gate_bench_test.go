package sqlstore

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signoff/approval"
)

// gateConfigs are the database configurations the gate benchmarks run on.
var gateConfigs = []struct {
	name   string
	newDSN func(testing.TB) string
	opts   []Option
}{
	{"sqlite-normal", sqliteDSN, nil},
	{"sqlite-full", sqliteDSN, []Option{Synchronous(SyncFull)}},
	{"postgres", postgresDSN, nil},
}

// BenchmarkGate measures the gate's two writes end to end over each
// database configuration, beside the raw driver's single-row
// read-modify-write transaction measured in the same run with the same
// pool and durability settings:
//
//   - guard-create: Guard an action a policy matches (3 eligible approvers,
//     2 required), creating a pending request;
//   - decide: one approval of a pending request (which stays pending),
//     token verification included: subtract BenchmarkEd25519Verify for the
//     database's share;
//   - raw-rmw: BEGIN (IMMEDIATE on SQLite); SELECT a row (FOR UPDATE on
//     PostgreSQL); UPDATE it; COMMIT, on a plain table of 64 rows with a
//     200-byte payload, each caller on rows of its own. It is written as a
//     user of database/sql would: statements unprepared (pgx caches its
//     own), one round trip each on PostgreSQL, where the store pipelines;
//   - raw-create and raw-decide: the rows guard-create and decide must
//     write, written by the raw driver the same way in the store's own
//     schema and nothing else (no gate, no encoding, no hashing, no
//     signature, no group commit): what the schema costs at the least, so
//     the part of the gap to raw-rmw that is the schema's is visible (see
//     benchRawCreate).
//
// Each runs with 1 caller and with 8 concurrent callers; ns/op is wall time
// divided by operations, so at 8 callers it is the inverse of throughput.
// The postgres configurations need APPROVAL_POSTGRES_DSN.
//
//	go test -run '^$' -bench 'Gate|Ed25519' -count 3 ./sqlstore
func BenchmarkGate(b *testing.B) {
	ops := []struct {
		name string
		run  func(b *testing.B, s *Store, callers int)
	}{
		{"guard-create", benchGuardCreate},
		{"decide", benchDecide},
		{"raw-rmw", benchRawRMW},
		{"raw-create", benchRawCreate},
		{"raw-decide", benchRawDecide},
	}
	for _, c := range gateConfigs {
		b.Run(c.name, func(b *testing.B) {
			for _, op := range ops {
				b.Run(op.name, func(b *testing.B) {
					for _, callers := range []int{1, 8} {
						b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
							op.run(b, open(b, c.newDSN(b), c.opts...), callers)
						})
					}
				})
			}
		})
	}
}

// groupCounts snapshots how many transactions s ran and how many writes
// they carried; report reports the mean writes per transaction since the
// snapshot (see group) and any transaction of several writes that failed
// as a whole.
type groupCounts struct{ txns, writes, failed int64 }

func groupsOf(s *Store) groupCounts {
	return groupCounts{s.group.txns.Load(), s.group.writes.Load(), s.group.failed.Load()}
}

func (c groupCounts) report(b *testing.B, s *Store) {
	now := groupsOf(s)
	if n := now.txns - c.txns; n > 0 {
		b.ReportMetric(float64(now.writes-c.writes)/float64(n), "writes/txn")
	}
	if n := now.failed - c.failed; n > 0 {
		b.ReportMetric(float64(n), "failed-groups")
	}
}

// BenchmarkEd25519Verify is the CPU cost inside every Decide that is not
// database work: one signature check of a message the size of a token's.
func BenchmarkEd25519Verify(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	msg := []byte(`{"act":"approve","exp":1772359200,"iat":1772355600,"kid":"AAAAAAAAAAA","rid":"req_0190b5d2a1c47e2f9c3b6a1d2e3f4a5b","sub":"approver-1","tid":"AAAAAAAAAAAAAAAAAAAAAA","v":1}`)
	sig := ed25519.Sign(priv, msg)
	b.ReportAllocs()
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("bad signature")
		}
	}
}

// benchGate returns a gate over s with the policy every benchmark action
// matches: three eligible approvers, two approvals required, so one
// approval leaves the request pending.
func benchGate(b *testing.B, s *Store) *approval.Gate {
	b.Helper()
	_, priv, err := approval.GenerateKeys()
	if err != nil {
		b.Fatal(err)
	}
	g, err := approval.New(approval.Config{
		Store:      s,
		SigningKey: priv,
		Directory: approval.StaticDirectory{Groups: map[string][]string{
			"finance": {"approver-1", "approver-2", "approver-3"},
		}},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = g.Close(context.Background()) })
	err = g.SetPolicy("high_spend", approval.Policy{
		Match:             approval.CostAtLeast(1000, "USD"),
		Approvers:         []approval.Approver{approval.Group("finance")},
		RequiredApprovals: 2,
	})
	if err != nil {
		b.Fatal(err)
	}
	return g
}

// benchActions returns n distinct actions (their RunIDs differ) that the
// policy of benchGate matches.
func benchActions(n int) []approval.Action {
	as := make([]approval.Action, n)
	for i := range as {
		as[i] = approval.Action{
			Name: "wire-transfer", RequestedBy: "user-1",
			Cost:    &approval.Cost{Amount: 5000, Currency: "USD"},
			Tags:    []string{"payments", "eu"},
			Payload: []byte(`{"to":"DE89370400440532013000","amount":5000}`),
			RunID:   fmt.Sprintf("run-%d", i),
		}
	}
	return as
}

// BenchmarkGateCancellable is BenchmarkGate's guard-create and decide
// with 8 callers whose contexts can be cancelled, as a server's request
// contexts can: a group's transaction then runs on a goroutine of its own
// (see group), where BenchmarkGate's callers, with context.Background(),
// run it on the leader's.
func BenchmarkGateCancellable(b *testing.B) {
	for _, c := range gateConfigs {
		for _, op := range []struct {
			name string
			run  func(ctx context.Context, b *testing.B, s *Store, callers int)
		}{{"guard-create", benchGuardCreateCtx}, {"decide", benchDecideCtx}} {
			b.Run(c.name+"/"+op.name+"/callers=8", func(b *testing.B) {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				op.run(ctx, b, open(b, c.newDSN(b), c.opts...), 8)
			})
		}
	}
}

func benchGuardCreate(b *testing.B, s *Store, callers int) {
	benchGuardCreateCtx(context.Background(), b, s, callers)
}

func benchGuardCreateCtx(ctx context.Context, b *testing.B, s *Store, callers int) {
	g := benchGate(b, s)
	actions := benchActions(b.N)
	defer groupsOf(s).report(b, s)
	runBench(b, callers, func(_, i int) error {
		res, err := g.Guard(ctx, actions[i])
		if err == nil && res.Status != approval.StatusPending {
			err = fmt.Errorf("guard: %s, want pending", res.Status)
		}
		return err
	})
}

func benchDecide(b *testing.B, s *Store, callers int) {
	benchDecideCtx(context.Background(), b, s, callers)
}

func benchDecideCtx(ctx context.Context, b *testing.B, s *Store, callers int) {
	g := benchGate(b, s)
	ids := make([]string, b.N)
	tokens := make([]string, b.N)
	for i, a := range benchActions(b.N) {
		res, err := g.Guard(ctx, a)
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = res.RequestID
		if tokens[i], err = g.IssueToken(res.RequestID, "approver-1", approval.VerdictApprove, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	defer groupsOf(s).report(b, s)
	runBench(b, callers, func(_, i int) error {
		r, err := g.Decide(ctx, ids[i], approval.Decision{Token: tokens[i], Verdict: approval.VerdictApprove})
		if err == nil && (r.Status != approval.StatusPending || len(r.Votes) != 1) {
			err = fmt.Errorf("decide: %s with %d votes, want pending with 1", r.Status, len(r.Votes))
		}
		return err
	})
}

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

// runBench runs op b.N times in all, from callers goroutines that take the
// next index (0 to b.N-1) in turn, and fails the benchmark on the first
// error.
func runBench(b *testing.B, callers int, op func(caller, i int) error) {
	b.ReportAllocs()
	var (
		next   atomic.Int64
		wg     sync.WaitGroup
		failed atomic.Pointer[error]
	)
	b.ResetTimer()
	for c := range callers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= b.N || failed.Load() != nil {
					return
				}
				if err := op(c, i); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
}
