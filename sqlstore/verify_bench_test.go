package sqlstore

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/fixture"
	"github.com/signoff/approval/memstore"
)

// BenchmarkVerifyAuditTrail times approval.VerifyAuditTrail over a
// synthetic trail (see seedTrail) beside a floor measured in the same
// run: one query reading the same rows of audit_events in order, each
// body SHA-256 hashed, and nothing else. Each iteration runs the floor,
// then the verification, so both see the same machine; the metrics are
// the medians over the iterations:
//
//   - events/s: the verification's rate, the whole trail and every
//     request checked;
//   - floor-events/s: the floor's;
//   - ratio: events/s ÷ floor-events/s, of the same iteration;
//   - B/event, floor-B/event: bytes allocated per event;
//   - cpu-µs/event, floor-cpu-µs/event: the process's CPU time (user and
//     system, every goroutine and the garbage collector) per event;
//   - peak-heap-MB: the most heap the verification held (live and not yet
//     collected objects, sampled every 5ms), less what was held before.
//
// Trails of 10,000 events run by default; APPROVAL_SCALE=1 adds 100,000
// and 1,000,000. PostgreSQL needs APPROVAL_POSTGRES_DSN.
//
//	APPROVAL_SCALE=1 go test -run '^$' -bench VerifyAuditTrail -benchtime 3x ./sqlstore
func BenchmarkVerifyAuditTrail(b *testing.B) {
	sizes := []int{10_000}
	if os.Getenv("APPROVAL_SCALE") == "1" {
		sizes = append(sizes, 100_000, 1_000_000)
	}
	for _, tg := range []struct {
		name   string
		newDSN func(testing.TB) string
	}{{"SQLite", sqliteDSN}, {"Postgres", postgresDSN}} {
		for _, n := range sizes {
			b.Run(fmt.Sprintf("%s/events=%d", tg.name, n), func(b *testing.B) {
				s := open(b, tg.newDSN(b))
				pub, requests := seedTrail(b, s, n)
				ctx := context.Background()
				var (
					rates, floors, ratios, bytes, floorBytes, cpus, floorCPUs, peaks []float64
					events                                                           int64
				)
				for b.Loop() {
					var before, after runtime.MemStats
					runtime.GC()
					runtime.ReadMemStats(&before)
					t0, c0 := time.Now(), cpuTime()
					fn, err := floorPass(ctx, s)
					require.NoError(b, err)
					floors = append(floors, float64(fn)/time.Since(t0).Seconds())
					floorCPUs = append(floorCPUs, float64(cpuTime()-c0)/float64(time.Microsecond)/float64(fn))
					runtime.ReadMemStats(&after)
					floorBytes = append(floorBytes, float64(after.TotalAlloc-before.TotalAlloc)/float64(fn))

					runtime.GC()
					runtime.ReadMemStats(&before)
					peak := watchHeap()
					t0, c0 = time.Now(), cpuTime()
					rep, err := approval.VerifyAuditTrail(ctx, s, approval.VerifyAuditOptions{Keys: []ed25519.PublicKey{pub}})
					elapsed, cpu := time.Since(t0), cpuTime()-c0
					high := peak()
					require.NoError(b, err)
					runtime.ReadMemStats(&after)
					cpus = append(cpus, float64(cpu)/float64(time.Microsecond)/float64(rep.Events))
					require.Equal(b, fn, rep.Events)
					require.Equal(b, requests, rep.Requests)
					require.NotZero(b, rep.Checkpoints)
					events = rep.Events
					rates = append(rates, float64(rep.Events)/elapsed.Seconds())
					ratios = append(ratios, rates[len(rates)-1]/floors[len(floors)-1])
					bytes = append(bytes, float64(after.TotalAlloc-before.TotalAlloc)/float64(rep.Events))
					peaks = append(peaks, float64(high-before.HeapAlloc)/(1<<20))
				}
				b.ReportMetric(median(rates), "events/s")
				b.ReportMetric(median(floors), "floor-events/s")
				b.ReportMetric(median(ratios), "ratio")
				b.ReportMetric(median(bytes), "B/event")
				b.ReportMetric(median(floorBytes), "floor-B/event")
				b.ReportMetric(median(cpus), "cpu-µs/event")
				b.ReportMetric(median(floorCPUs), "floor-cpu-µs/event")
				b.ReportMetric(median(peaks), "peak-heap-MB")
				b.ReportMetric(float64(events), "events")
			})
		}
	}
}

func median(xs []float64) float64 {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	if len(xs) == 0 {
		return 0
	}
	return xs[len(xs)/2]
}

// watchHeap samples the heap's objects every 5ms until the function it
// returns is called, which returns the highest sample.
func watchHeap() func() uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var (
		high uint64
		stop = make(chan struct{})
		wg   sync.WaitGroup
	)
	read := func() {
		metrics.Read(sample)
		high = max(high, sample[0].Value.Uint64())
	}
	wg.Go(func() {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			read()
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	})
	return func() uint64 {
		close(stop)
		wg.Wait()
		read()
		return high
	}
}

// floorPass reads every row of the trail, in order, with one query, the
// columns scanned as the store scans them (the body into a reused
// buffer), and hashes each body: what any verification must at least do.
func floorPass(ctx context.Context, s *Store) (int64, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT seq, request_id, type, actor, at, prev_hash, hash, body FROM audit_events ORDER BY seq")
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var (
		n, seq              int64
		requestID, actor    sql.NullString
		typ, prevHash, hash string
		at                  time.Time
		body                sql.RawBytes
		sum                 byte
	)
	for rows.Next() {
		if err := rows.Scan(&seq, &requestID, &typ, &actor, timeColumn{&at}, &prevHash, &hash, &body); err != nil {
			return n, err
		}
		h := sha256.Sum256(body)
		sum ^= h[0]
		n++
	}
	_ = sum
	return n, rows.Err()
}

// seedTrail fills s with a trail of about n events and the requests they
// account for, and returns the public key of its checkpoints and the
// number of requests.
//
// The rows are synthetic, made from four requests a gate made on
// memstore (the finance fixture: two approvals of a transfer, then its
// consumption; a denial; a cancellation; one left pending): each
// synthetic request is a copy of one of them, in the ratio 14:3:1:2, with
// an ID of its own in creation order and an action hash of its own, and
// its events are copies of the gate's with three notification.sent
// events after request.created and one after the resolution. The
// requests' events interleave as a busy gate's do: the nth event of a
// request is written n(n+1)/2 requests after its request.created, so
// that a few dozen requests are open at any place in the trail. Requests
// and events are written through the store's own insert functions, 5,000
// events to a transaction, and a gate over s checkpoints the trail after
// each transaction.
func seedTrail(b *testing.B, s *Store, n int) (ed25519.PublicKey, int64) {
	b.Helper()
	ctx := context.Background()
	templates := gateFlows(b)
	pub, priv, err := approval.GenerateKeys()
	require.NoError(b, err)
	g := fixture.NewGate(b, approval.Config{Store: s, SigningKey: priv, Directory: fixture.FinanceDirectory()}, nil)

	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	// due[k] are the events to write at step k, in order.
	due := map[int][]approval.AuditEvent{}
	var (
		batch    []approval.AuditEvent
		created  []requestRow
		requests int64
		written  int
		step     int
	)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		require.NoError(b, s.write(ctx, func(ctx context.Context, q querier) error {
			for _, row := range created {
				if ok, err := s.insertRequest(ctx, q, row); err != nil || !ok {
					return fmt.Errorf("insert %s: %v (inserted %v)", row.req.ID, err, ok)
				}
			}
			_, err := s.appendEvents(ctx, q, batch)
			return err
		}))
		_, err := g.Checkpoint(ctx)
		require.NoError(b, err)
		written += len(batch) + 1
		batch, created = batch[:0], created[:0]
	}
	for ; ; step++ {
		more := written+len(batch)+400 < n
		if !more && len(due) == 0 {
			break
		}
		if more {
			f := templates[pattern[step%len(pattern)]]
			r := f.req.Clone()
			r.ID = fmt.Sprintf("req_%032x", step+1)
			sum := sha256.Sum256([]byte(r.ID))
			r.ActionHash = fmt.Sprintf("%x", sum)
			at := t0.Add(time.Duration(step) * 100 * time.Millisecond)
			r.CreatedAt, r.UpdatedAt = at, at
			row, err := encodeRequest(r)
			require.NoError(b, err)
			created = append(created, row)
			requests++
			for j, e := range f.events {
				e = e.Clone()
				e.RequestID = r.ID
				if e.ActionHash != "" && e.Type != approval.EventPayloadEdited {
					e.ActionHash = r.ActionHash
				}
				k := step + j*(j+1)/2
				due[k] = append(due[k], e)
			}
		}
		for _, e := range due[step] {
			e.At = t0.Add(time.Duration(step) * 100 * time.Millisecond)
			batch = append(batch, e)
		}
		delete(due, step)
		if len(batch) >= 5000 {
			flush()
		}
	}
	flush()
	_, err = s.w.ExecContext(ctx, "ANALYZE")
	require.NoError(b, err)
	return pub, requests
}

// pattern is the order in which seedTrail copies its templates: 14
// consumed, 3 denied, 1 cancelled and 2 pending in 20.
var pattern = []int{0, 0, 1, 0, 0, 0, 3, 0, 0, 2, 0, 0, 1, 0, 0, 0, 3, 0, 1, 0}

// gateFlow is a request a gate made and the events of its life, with
// notification events added.
type gateFlow struct {
	req    *approval.Request
	events []approval.AuditEvent
}

// gateFlows returns the templates of seedTrail: a consumed, a denied, a
// cancelled and a pending request.
func gateFlows(b *testing.B) []gateFlow {
	b.Helper()
	ctx := context.Background()
	store := memstore.New()
	g := fixture.NewGate(b, approval.Config{Store: store, Directory: fixture.FinanceDirectory()}, fixture.HighSpend())
	guard := func(amount float64) string {
		res, err := g.Guard(ctx, fixture.Transfer(amount))
		require.NoError(b, err)
		return res.RequestID
	}
	decide := func(id, who string, v approval.Verdict) {
		_, err := fixture.Decide(g, id, who, approval.Decision{Verdict: v, Reason: "checked the invoice"})
		require.NoError(b, err)
	}
	consumed := guard(5000)
	decide(consumed, "alice", approval.VerdictApprove)
	decide(consumed, "bob", approval.VerdictApprove)
	res, err := g.Guard(ctx, fixture.Transfer(5000))
	require.NoError(b, err)
	require.Equal(b, approval.OutcomeApproved, res.Status)
	denied := guard(7000)
	decide(denied, "carol", approval.VerdictDeny)
	cancelled := guard(9000)
	_, err = g.Cancel(ctx, cancelled, "user-1", "not needed")
	require.NoError(b, err)
	pending := guard(11000)

	var flows []gateFlow
	for _, id := range []string{consumed, denied, cancelled, pending} {
		r, err := store.Get(ctx, id)
		require.NoError(b, err)
		var events []approval.AuditEvent
		for _, e := range fixture.AuditTrail(b, store, approval.AuditQuery{RequestID: id}) {
			events = append(events, e)
			switch e.Type {
			case approval.EventRequestCreated:
				for _, who := range []string{"alice", "bob", "carol"} {
					events = append(events, approval.AuditEvent{RequestID: id, Type: approval.EventNotificationSent, Actor: approval.SystemActor,
						Reason: "approval.requested to " + who + " via slack", Policies: e.Policies})
				}
			case approval.EventRequestApproved, approval.EventRequestDenied, approval.EventRequestCancelled:
				events = append(events, approval.AuditEvent{RequestID: id, Type: approval.EventNotificationSent, Actor: approval.SystemActor,
					Reason: "approval.resolved to user-1 via slack", Policies: e.Policies})
			}
		}
		flows = append(flows, gateFlow{req: r, events: events})
	}
	return flows
}
