package approvalotel_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/signoff/approval"
	"github.com/signoff/approval/approvalotel"
	"github.com/signoff/approval/memstore"
	"github.com/signoff/approval/sqlstore"
)

// The benchmarks behind docs/PERFORMANCE.md's "Observability overhead":
// each runs a gate without an observer (off) and one with an Observer on
// the SDK (on: spans batched to an exporter that drops them, metrics
// kept for a ManualReader) alternately in one loop, which of the two
// first alternating too, so that the machine's drift weighs on both
// alike, and reports each side's time per
// operation and their ratio:
//
//	go test -run '^$' -bench . -benchmem -count 5 ./approvalotel
//
// The observer works on a goroutine of the gate's own: on two cores, most
// of its cost runs beside the loop rather than in it. BenchmarkObserve
// measures that cost by itself.

// discard is a span exporter that drops what it is given.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// benchObserver returns an Observer on SDK providers, and a function
// that reads how many observations the gate dropped.
func benchObserver(b *testing.B) (*approvalotel.Observer, func() int64) {
	b.Helper()
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	b.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	obs, err := approvalotel.New(approvalotel.Options{TracerProvider: tp, MeterProvider: mp})
	if err != nil {
		b.Fatal(err)
	}
	dropped := func() int64 {
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(context.Background(), &rm); err != nil {
			b.Fatal(err)
		}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "approval.observer.dropped" {
					var n int64
					for _, dp := range sum.DataPoints {
						n += dp.Value
					}
					return n
				}
			}
		}
		return 0
	}
	return obs, dropped
}

// benchGate returns a gate on memstore whose finance group has three
// members, observed by obs if it is not nil.
func benchGate(b *testing.B, obs approval.Observer) *approval.Gate {
	b.Helper()
	return benchGateOn(b, memstore.New(), obs)
}

// benchGateOn is benchGate on store.
func benchGateOn(b *testing.B, store approval.Store, obs approval.Observer) *approval.Gate {
	b.Helper()
	_, priv, err := approval.GenerateKeys()
	if err != nil {
		b.Fatal(err)
	}
	cfg := approval.Config{
		Store:      store,
		SigningKey: priv,
		Directory:  approval.StaticDirectory{Groups: map[string][]string{"finance": {"approver-0", "approver-1", "approver-2"}}},
		Logger:     slog.New(slog.DiscardHandler),
	}
	if obs != nil {
		cfg.Observer = obs
	}
	g, err := approval.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = g.Close(context.Background()) })
	return g
}

var highSpend = approval.Policy{
	Match:             approval.CostAtLeast(1000, "USD"),
	Approvers:         []approval.Approver{approval.Group("finance")},
	RequiredApprovals: 2,
}

// pair is a gate without an observer and one with.
type pair struct {
	off, on *approval.Gate
	dropped func() int64
}

func newPair(b *testing.B, setup func(*approval.Gate)) pair {
	obs, dropped := benchObserver(b)
	p := pair{off: benchGate(b, nil), on: benchGate(b, obs), dropped: dropped}
	setup(p.off)
	setup(p.on)
	return p
}

// alternate runs op on each gate, timing each into off and on; the
// first of the two alternates with i, so that neither side always runs
// on caches the other warmed.
func (p pair) alternate(i int, off, on *time.Duration, op func(*approval.Gate)) {
	first, second, dFirst, dSecond := p.off, p.on, off, on
	if i&1 == 1 {
		first, second, dFirst, dSecond = p.on, p.off, on, off
	}
	t0 := time.Now()
	op(first)
	t1 := time.Now()
	op(second)
	t2 := time.Now()
	*dFirst += t1.Sub(t0)
	*dSecond += t2.Sub(t1)
}

// report reports each side's time per operation, their ratio, and the
// observations the gate dropped (which would flatter the figure), once
// the observed gate is closed.
func (p pair) report(b *testing.B, off, on time.Duration) {
	b.StopTimer()
	if err := p.on.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(off.Nanoseconds())/float64(b.N), "off-ns/op")
	b.ReportMetric(float64(on.Nanoseconds())/float64(b.N), "on-ns/op")
	b.ReportMetric(float64(on)/float64(off), "x-off")
	b.ReportMetric(float64(p.dropped()), "dropped")
}

// run runs op b.N times on each of p's gates, alternately, timing each
// side, and reports them.
func (p pair) run(b *testing.B, op func(i int, g *approval.Gate)) {
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	var off, on time.Duration
	for i := range b.N {
		p.alternate(i, &off, &on, func(g *approval.Gate) { op(i, g) })
	}
	p.report(b, off, on)
}

// BenchmarkGuardCreate: a matching policy; every iteration creates a new
// request on each gate. traced-caller calls Guard in the context of a
// caller's span (as a host that uses OpenTelemetry does: an HTTP handler
// under otelhttp, a job with its span), so the request joins that trace;
// untraced-caller calls it without, so the observer starts the
// Guard's own span, the root of the new trace, on the Guard's goroutine.
func BenchmarkGuardCreate(b *testing.B) {
	caller := trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:  trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}, TraceFlags: trace.FlagsSampled, Remote: true,
	}))
	for _, bc := range []struct {
		name string
		ctx  context.Context
	}{{"traced-caller", caller}, {"untraced-caller", context.Background()}} {
		b.Run(bc.name, func(b *testing.B) {
			p := newPair(b, func(g *approval.Gate) {
				if err := g.SetPolicy("high_spend", highSpend); err != nil {
					b.Fatal(err)
				}
			})
			guardCreate(bc.ctx, b, p)
		})
	}
}

// guardCreate runs b.N Guards with ctx that each create a request on each
// of p's gates alternately, and reports them.
func guardCreate(ctx context.Context, b *testing.B, p pair) {
	actions := make([]approval.Action, b.N)
	for i := range actions {
		actions[i] = approval.Action{
			Name: "wire-transfer", RequestedBy: "user-1",
			Cost:    &approval.Cost{Amount: 5000, Currency: "USD"},
			Tags:    []string{"payments", "eu"},
			Payload: fmt.Appendf(nil, `{"to":"DE89370400440532013000","amount":5000,"ref":%d}`, i),
		}
	}
	p.run(b, func(i int, g *approval.Gate) {
		if res, err := g.Guard(ctx, actions[i]); err != nil || res.Status != approval.OutcomePending {
			b.Fatal(res, err)
		}
	})
}

// BenchmarkGuardCreateSQLite: BenchmarkGuardCreate's untraced caller on
// the embedded default store, a SQLite file for each gate.
func BenchmarkGuardCreateSQLite(b *testing.B) {
	obs, dropped := benchObserver(b)
	gate := func(obs approval.Observer) *approval.Gate {
		st, err := sqlstore.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = st.Close() })
		g := benchGateOn(b, st, obs)
		if err := g.SetPolicy("high_spend", highSpend); err != nil {
			b.Fatal(err)
		}
		return g
	}
	guardCreate(context.Background(), b, pair{off: gate(nil), on: gate(obs), dropped: dropped})
}

// decideSetup guards n requests on g, and issues a token for each.
func decideSetup(b *testing.B, g *approval.Gate, n int) (ids, toks []string) {
	ctx := context.Background()
	ids, toks = make([]string, n), make([]string, n)
	for i := range n {
		res, err := g.Guard(ctx, approval.Action{
			Name: "wire-transfer", RequestedBy: "user-1",
			Cost:  &approval.Cost{Amount: 5000, Currency: "USD"},
			RunID: fmt.Sprint(i),
		})
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = res.RequestID
		if toks[i], err = g.IssueToken(res.RequestID, "approver-1", approval.VerdictApprove, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	return ids, toks
}

// BenchmarkDecide: one approval on a pending request, token verified, on
// each gate; every iteration uses a fresh request and token.
func BenchmarkDecide(b *testing.B) {
	p := newPair(b, func(g *approval.Gate) {
		if err := g.SetPolicy("high_spend", highSpend); err != nil {
			b.Fatal(err)
		}
	})
	offIDs, offToks := decideSetup(b, p.off, b.N)
	onIDs, onToks := decideSetup(b, p.on, b.N)
	ctx := context.Background()
	p.run(b, func(i int, g *approval.Gate) {
		id, tok := offIDs[i], offToks[i]
		if g == p.on {
			id, tok = onIDs[i], onToks[i]
		}
		if r, err := g.Decide(ctx, id, approval.Decision{Token: tok, Verdict: approval.VerdictApprove}); err != nil || len(r.Votes) != 1 {
			b.Fatal(r, err)
		}
	})
}

// noMatchPolicies registers ten policies, none of which matches
// noMatchAction.
func noMatchPolicies(b *testing.B, g *approval.Gate) {
	for i := range 10 {
		err := g.SetPolicy(fmt.Sprintf("p%d", i), approval.Policy{
			Match:             approval.Name(fmt.Sprintf("deploy:prod-%d-*", i)),
			Approvers:         []approval.Approver{approval.Group("finance")},
			RequiredApprovals: 1,
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

var noMatchAction = approval.Action{Name: "read-report", RequestedBy: "user-1", Tags: []string{"reporting"}}

// BenchmarkGuardNoMatch: ten policies, none of which matches, on each
// gate alternately.
func BenchmarkGuardNoMatch(b *testing.B) {
	p := newPair(b, func(g *approval.Gate) { noMatchPolicies(b, g) })
	ctx := context.Background()
	p.run(b, func(_ int, g *approval.Gate) {
		if res, err := g.Guard(ctx, noMatchAction); err != nil || res.Status != approval.OutcomeApproved {
			b.Fatal(res, err)
		}
	})
}

// BenchmarkGuardNoMatchAllocs: the no-match Guard's allocations with the
// observer off and on, each side by itself. The allocation count is the
// process's, so the observer's goroutine's allocations count on the on
// side.
func BenchmarkGuardNoMatchAllocs(b *testing.B) {
	for _, side := range []string{"off", "on"} {
		b.Run(side, func(b *testing.B) {
			var obs approval.Observer
			if side == "on" {
				obs, _ = benchObserver(b)
			}
			g := benchGate(b, obs)
			noMatchPolicies(b, g)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if res, err := g.Guard(ctx, noMatchAction); err != nil || res.Status != approval.OutcomeApproved {
					b.Fatal(res, err)
				}
			}
			// Count what the observer does with the last observations.
			if err := g.Close(context.Background()); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkObserve: what the observer's goroutine spends on each kind of
// observation, called directly.
func BenchmarkObserve(b *testing.B) {
	obs, _ := benchObserver(b)
	ctx := context.Background()
	tp := obs.TraceParent(ctx, time.Now())
	now := time.Now()
	for _, bc := range []struct {
		name string
		o    approval.Observation
	}{
		{"guard-nomatch", approval.Observation{Kind: approval.ObserveGuard, Start: now, Duration: 300, Outcome: "approved"}},
		{"guard-create", approval.Observation{Kind: approval.ObserveGuard, Start: now, Duration: 18000, Outcome: "pending",
			RequestID: "req_0190b5d2a1c47e2f9c3b6a1d2e3f4a5b", Policies: []string{"high_spend"}}},
		{"created", approval.Observation{Kind: approval.ObserveCreated, RequestID: "req_0190b5d2a1c47e2f9c3b6a1d2e3f4a5b",
			Policies: []string{"high_spend"}, TraceParent: tp, Outcome: "pending"}},
		{"decide", approval.Observation{Kind: approval.ObserveDecide, Start: now, Duration: 60000, Outcome: "accepted",
			RequestID: "req_0190b5d2a1c47e2f9c3b6a1d2e3f4a5b", Policies: []string{"high_spend"}, TraceParent: tp}},
		{"guard-root", approval.Observation{Kind: approval.ObserveGuard, Start: now, Duration: 18000, Outcome: "pending",
			RequestID: "req_0190b5d2a1c47e2f9c3b6a1d2e3f4a5b", Policies: []string{"high_spend"}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				o := bc.o
				if bc.name == "guard-root" {
					// A Guard without a span: its root is started on
					// the Guard's goroutine and ended with its
					// observation.
					o.TraceParent = obs.TraceParent(ctx, now)
					o.NewTraceParent = o.TraceParent
				}
				obs.Observe(ctx, o)
			}
		})
	}
}
