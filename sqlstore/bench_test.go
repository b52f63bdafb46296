package sqlstore

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/signoff/approval"
)

// The benchmarks measure the store's writes beside the raw driver's
// single-row read-modify-write transaction on a plain table (BEGIN; SELECT
// ... [FOR UPDATE]; UPDATE; COMMIT), with the same pool and durability
// settings, so the store's overhead is their ratio. Each runs with 1 caller
// and with 8 concurrent callers. The PostgreSQL ones need
// APPROVAL_POSTGRES_DSN.
//
//	go test -run '^$' -bench . -benchtime 2s ./sqlstore

// benchTarget is one database configuration.
type benchTarget struct {
	name string
	open func(b *testing.B) (*Store, string)
}

var benchTargets = []benchTarget{
	{"SQLite-NORMAL", func(b *testing.B) (*Store, string) {
		dsn := sqliteDSN(b)
		return open(b, dsn), dsn
	}},
	{"SQLite-FULL", func(b *testing.B) (*Store, string) {
		dsn := sqliteDSN(b)
		return open(b, dsn, Synchronous(SyncFull)), dsn
	}},
	{"Postgres", func(b *testing.B) (*Store, string) {
		dsn := postgresDSN(b)
		return open(b, dsn), dsn
	}},
}

// benchCallers runs each benchmark with one caller and with eight.
var benchCallers = []int{1, 8}

// runCallers runs op b.N times in total over callers goroutines; op gets
// the caller's index (0 to callers-1) and must not call b.Fatal.
func runCallers(b *testing.B, callers int, op func(caller int) error) {
	b.ReportAllocs()
	if callers == 1 {
		b.ResetTimer()
		for b.Loop() {
			if err := op(0); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	b.SetParallelism((callers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	var next atomic.Int64
	var failed atomic.Pointer[error]
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		caller := int(next.Add(1)-1) % callers
		for pb.Next() {
			if err := op(caller); err != nil {
				failed.CompareAndSwap(nil, &err)
				return
			}
		}
	})
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
}

// BenchmarkCreate stores a new request with its request.created event.
func BenchmarkCreate(b *testing.B) {
	for _, tg := range benchTargets {
		for _, callers := range benchCallers {
			b.Run(fmt.Sprintf("%s/callers=%d", tg.name, callers), func(b *testing.B) {
				s, _ := tg.open(b)
				ctx := context.Background()
				runCallers(b, callers, func(int) error {
					r := newRequest()
					_, _, err := s.Create(ctx, r, []approval.AuditEvent{event(r.ID, approval.EventRequestCreated, "alice")})
					return err
				})
			})
		}
	}
}

// BenchmarkUpdate is one decision: Get a request, replace its vote with a
// new one carrying a fresh token, and Update it with one audit event. Each
// caller has its own request, so there are no compare-and-set conflicts.
func BenchmarkUpdate(b *testing.B) {
	for _, tg := range benchTargets {
		for _, callers := range benchCallers {
			b.Run(fmt.Sprintf("%s/callers=%d", tg.name, callers), func(b *testing.B) {
				s, _ := tg.open(b)
				ctx := context.Background()
				ids := make([]string, callers)
				for i := range ids {
					r := newRequest()
					if _, _, err := s.Create(ctx, r, nil); err != nil {
						b.Fatal(err)
					}
					ids[i] = r.ID
				}
				var tokens atomic.Int64
				runCallers(b, callers, func(caller int) error {
					r, err := s.Get(ctx, ids[caller])
					if err != nil {
						return err
					}
					tok := fmt.Sprintf("tok-%d", tokens.Add(1))
					r.Votes = r.Votes[:0]
					r = vote(r, "bob", tok)
					return s.Update(ctx, approval.Update{Request: r, TokenID: tok,
						Events: []approval.AuditEvent{event(r.ID, approval.EventDecisionApprove, "bob")}})
				})
			})
		}
	}
}

// BenchmarkRawReadModifyWrite is the baseline: the driver's single-row
// read-modify-write transaction on a plain table, one row per caller,
// through a pool configured as the Store's writer pool (SQLite: one
// connection, BEGIN IMMEDIATE; PostgreSQL: SELECT ... FOR UPDATE).
func BenchmarkRawReadModifyWrite(b *testing.B) {
	for _, tg := range benchTargets {
		for _, callers := range benchCallers {
			b.Run(fmt.Sprintf("%s/callers=%d", tg.name, callers), func(b *testing.B) {
				s, _ := tg.open(b)
				ctx := context.Background()
				if _, err := s.w.ExecContext(ctx, `CREATE TABLE bench_rows (id BIGINT PRIMARY KEY, n BIGINT NOT NULL)`); err != nil {
					b.Fatal(err)
				}
				for i := range callers {
					if _, err := s.w.ExecContext(ctx, `INSERT INTO bench_rows (id, n) VALUES ($1, 0)`, i); err != nil {
						b.Fatal(err)
					}
				}
				rmw := func(q rawQuerier, caller int) error {
					var n int64
					if err := q.QueryRowContext(ctx, `SELECT n FROM bench_rows WHERE id = $1`+s.dialect.forUpdate(), caller).Scan(&n); err != nil {
						return err
					}
					_, err := q.ExecContext(ctx, `UPDATE bench_rows SET n = $2 WHERE id = $1`, caller, n+1)
					return err
				}
				runCallers(b, callers, func(caller int) error {
					return rawTx(ctx, s, func(q rawQuerier) error { return rmw(q, caller) })
				})
			})
		}
	}
}

// BenchmarkApprovalEventRead is the read a Guard adds before consuming an
// approval (and Gate.Artifact before signing one): the request's
// request.approved event, found through the request_id index, in a trail
// of 20,000 events over 4,000 requests.
func BenchmarkApprovalEventRead(b *testing.B) {
	for _, target := range benchTargets[:1] {
		b.Run(target.name, func(b *testing.B) { benchApprovalEventRead(b, target) })
	}
	b.Run("Postgres", func(b *testing.B) { benchApprovalEventRead(b, benchTargets[2]) })
}

func benchApprovalEventRead(b *testing.B, target benchTarget) {
	s, _ := target.open(b)
	ctx := context.Background()
	const requests, perRequest = 4000, 5
	ids := make([]string, requests)
	types := []approval.EventType{approval.EventRequestCreated, approval.EventNotificationSent,
		approval.EventDecisionApprove, approval.EventRequestApproved, approval.EventApprovalConsumed}
	for i := range ids {
		ids[i] = "req_" + randomHex()
		evs := make([]approval.AuditEvent, perRequest)
		for j := range evs {
			evs[j] = event(ids[i], types[j], "alice")
		}
		if err := s.AppendAudit(ctx, evs); err != nil {
			b.Fatal(err)
		}
	}
	i := 0
	runCallers(b, 1, func(int) error {
		i++
		page, err := s.ListAudit(ctx, approval.AuditQuery{RequestID: ids[i%requests], Type: approval.EventRequestApproved, Limit: 1})
		if err == nil && len(page.Events) != 1 {
			err = fmt.Errorf("found %d events", len(page.Events))
		}
		return err
	})
}
