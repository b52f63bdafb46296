package scale

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/signoff/approval"
)

// EnvScale=1 runs BenchmarkScale; without it the benchmark skips, so
// that "go test -bench ." over the module stays short.
const EnvScale = "APPROVAL_SCALE"

// sizes are the numbers of stored requests BenchmarkScale measures at.
var sizes = []int{10_000, 100_000, 1_000_000}

// BenchmarkScale measures what the gate's hot paths cost as the store
// grows, each beside a floor measured in the same run: for each backend
// and size N, a store of N requests (Build, DefaultMix) and
//
//   - tick: an idle Gate.Tick (nothing is due), against the floor of the
//     query ListDue runs, sent raw through database/sql on a pool of its
//     own, as ListDue sends it (unprepared; prepared-ns/op is the same
//     query prepared once), or on memstore against Store.ListDue itself;
//   - guard-create: a Guard that creates a request, against the same on an
//     empty store of the backend and options;
//   - decide: one approval of two (the request stays pending), token
//     verification included, against the same on an empty store.
//
// The operation and its floor run alternately in one loop, each timed on
// its own: ns/op is the operation's mean, floor-ns/op the floor's, x-floor
// their ratio; p50-us and floor-p50-us are their medians, p99-us and
// floor-p99-us their 99th percentiles, max-us
// the operation's slowest run. Each guard-create and decide leaf adds up
// to 2 × b.N requests to the store of N (the requests decided are created
// for it), so give them a fixed -benchtime of a few hundred iterations.
// The store of N is built once per size, before its leaves, and the build
// logged (shown with -v). Building a million requests takes minutes:
// EnvCache keeps SQLite's files between runs, and -timeout must allow for
// the builds. PostgreSQL needs APPROVAL_POSTGRES_DSN. Anchor the size in
// -bench, since N=10000 also matches N=100000:
//
//	APPROVAL_SCALE=1 go test -run '^$' -bench 'Scale/sqlite/N=100000$/' -benchtime 400x -v ./internal/scale
func BenchmarkScale(b *testing.B) {
	if os.Getenv(EnvScale) != "1" {
		b.Skipf("set %s=1 to build stores of up to %d requests and measure on them", EnvScale, sizes[len(sizes)-1])
	}
	for _, backend := range Backends {
		b.Run(string(backend), func(b *testing.B) {
			for _, n := range sizes {
				b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
					built := Build(b, backend, Spec{Requests: n})
					logBuild(b, built)
					b.Run("tick", func(b *testing.B) { benchTick(b, built) })
					b.Run("guard-create", func(b *testing.B) { benchGuardCreate(b, built) })
					b.Run("decide", func(b *testing.B) { benchDecide(b, built) })
				})
			}
		})
	}
}

// logBuild logs what a build made and took.
func logBuild(b *testing.B, built *Built) {
	size := ""
	if built.Backend == SQLite {
		if fi, err := os.Stat(built.DSN); err == nil {
			size = fmt.Sprintf(", a %d MiB file", fi.Size()>>20)
		}
	}
	how := "built"
	if built.Cached {
		how = "copied from " + EnvCache
	}
	b.Logf("%d requests (%d live) and %d audit events on %s, %s in %s%s",
		built.Spec.Requests, built.Live, built.Events, built.Backend, how, built.Took.Round(time.Millisecond), size)
}

// timed is an operation alternate runs and times.
type timed struct {
	// name names its time per operation, as name-ns/op; alternate
	// reports the first two of its operations as ns/op and floor-ns/op.
	name string
	f    func(i int) error
	sum  time.Duration
	// each holds the time of each run.
	each []time.Duration
}

// alternate runs each of ops b.N times, in turn (which goes first
// rotating), timing each on its own. Each gets the iteration's index. It
// reports the first one's time per operation as ns/op, the second's (the
// floor) as floor-ns/op and their ratio as x-floor, both medians and
// both 99th percentiles, and any further one's time per operation under
// its name.
func alternate(b *testing.B, ops ...*timed) {
	b.ResetTimer()
	for i := range b.N {
		for j := range ops {
			op := ops[(i+j)%len(ops)]
			t0 := time.Now()
			err := op.f(i)
			d := time.Since(t0)
			op.sum += d
			op.each = append(op.each, d)
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	perOp := func(op *timed) float64 { return float64(op.sum.Nanoseconds()) / float64(b.N) }
	b.ReportMetric(perOp(ops[0]), "ns/op")
	b.ReportMetric(perOp(ops[1]), "floor-ns/op")
	b.ReportMetric(float64(ops[0].sum)/float64(ops[1].sum), "x-floor")
	b.ReportMetric(percentile(ops[0].each, 50), "p50-us")
	b.ReportMetric(percentile(ops[1].each, 50), "floor-p50-us")
	b.ReportMetric(percentile(ops[0].each, 99), "p99-us")
	b.ReportMetric(percentile(ops[1].each, 99), "floor-p99-us")
	b.ReportMetric(float64(slices.Max(ops[0].each))/1e3, "max-us")
	for _, op := range ops[2:] {
		b.ReportMetric(perOp(op), op.name+"-ns/op")
	}
}

// percentile returns the q-th percentile of ds, in microseconds.
func percentile(ds []time.Duration, q int) float64 {
	slices.Sort(ds)
	return float64(ds[len(ds)*q/100].Nanoseconds()) / 1e3
}

// listDue is the query sqlstore's ListDue sends (sqlstore/list.go,
// listDueQuery, without a position to start after), which walks the
// requests_due index.
func listDue(b Backend) string {
	q := `SELECT body FROM requests`
	if b == SQLite {
		q += ` INDEXED BY requests_due`
	}
	return q + `
WHERE due_at IS NOT NULL AND status IN ('pending', 'escalated', 'approved') AND due_at <= $1
ORDER BY due_at, id LIMIT $2`
}

func benchTick(b *testing.B, built *Built) {
	ctx := context.Background()
	g := NewGate(b, built.Store, nil)
	if n, err := g.Tick(ctx, 0); err != nil || n != 0 {
		b.Fatalf("the first Tick changed %d requests (%v): the store has requests due", n, err)
	}
	tick := &timed{f: func(int) error {
		n, err := g.Tick(ctx, 0)
		if err == nil && n != 0 {
			err = fmt.Errorf("tick changed %d requests", n)
		}
		return err
	}}
	if built.Backend == Memory {
		alternate(b, tick, &timed{f: func(int) error {
			due, err := built.Store.ListDue(ctx, approval.DueQuery{Now: time.Now()})
			if err == nil && len(due) > 0 {
				err = fmt.Errorf("%d requests due", len(due))
			}
			return err
		}})
		return
	}
	db := built.DB(b)
	query := listDue(built.Backend)
	now := func() any {
		t := time.Now().UTC().Truncate(time.Microsecond)
		if built.Backend == Postgres {
			return t
		}
		return t.UnixMicro()
	}
	none := func(r *sql.Rows, err error) error {
		if err != nil {
			return err
		}
		n := 0
		for r.Next() {
			n++
		}
		if err := r.Close(); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%d requests due", n)
		}
		return nil
	}
	stmt, err := db.PrepareContext(ctx, query)
	if err != nil {
		b.Fatal(err)
	}
	defer stmt.Close()
	alternate(b, tick, &timed{f: func(int) error {
		return none(db.QueryContext(ctx, query, now(), approval.DefaultPageSize))
	}}, &timed{name: "prepared", f: func(int) error {
		return none(stmt.QueryContext(ctx, now(), approval.DefaultPageSize))
	}})
}

// benchGates returns a gate over the built store and one over a new empty
// store of the same backend, and a tag that makes this run's actions new.
func benchGates(b *testing.B, built *Built) (at, empty *approval.Gate, tag string) {
	e := Build(b, built.Backend, Spec{Requests: 0}, built.opts...)
	var r [6]byte
	_, _ = rand.Read(r[:])
	return NewGate(b, built.Store, nil), NewGate(b, e.Store, nil), hex.EncodeToString(r[:])
}

func guardNew(g *approval.Gate, a approval.Action) (string, error) {
	res, err := g.Guard(context.Background(), a)
	if err == nil && res.Status != approval.OutcomePending {
		err = fmt.Errorf("guard: %s, want pending", res.Status)
	}
	return res.RequestID, err
}

func benchGuardCreate(b *testing.B, built *Built) {
	at, empty, tag := benchGates(b, built)
	alternate(b, &timed{f: func(i int) error {
		_, err := guardNew(at, Action(fmt.Sprintf("bench-%s-at-%d", tag, i), i))
		return err
	}}, &timed{f: func(i int) error {
		_, err := guardNew(empty, Action(fmt.Sprintf("bench-%s-empty-%d", tag, i), i))
		return err
	}})
}

func benchDecide(b *testing.B, built *Built) {
	at, empty, tag := benchGates(b, built)
	type decision struct{ id, token string }
	prepare := func(g *approval.Gate, which string) []decision {
		ds := make([]decision, b.N)
		for i := range ds {
			id, err := guardNew(g, Action(fmt.Sprintf("bench-%s-%s-%d", tag, which, i), i))
			if err != nil {
				b.Fatal(err)
			}
			tok, err := g.IssueToken(id, "approver-1", approval.VerdictApprove, time.Hour)
			if err != nil {
				b.Fatal(err)
			}
			ds[i] = decision{id, tok}
		}
		return ds
	}
	decide := func(g *approval.Gate, ds []decision) *timed {
		return &timed{f: func(i int) error {
			r, err := g.Decide(context.Background(), ds[i].id, approval.Decision{Token: ds[i].token, Verdict: approval.VerdictApprove})
			if err == nil && (r.Status != approval.StatusPending || len(r.Votes) != 1) {
				err = fmt.Errorf("decide: %s with %d votes, want pending with 1", r.Status, len(r.Votes))
			}
			return err
		}}
	}
	atDs, emptyDs := prepare(at, "at"), prepare(empty, "empty")
	alternate(b, decide(at, atDs), decide(empty, emptyDs))
}
