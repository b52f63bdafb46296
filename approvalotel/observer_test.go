package approvalotel_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/signoff/approval"
	"github.com/signoff/approval/approvalotel"
	"github.com/signoff/approval/internal/fixture"
	"github.com/signoff/approval/memstore"
)

// TestDropped: the gate's count of dropped observations adds up.
func TestDropped(t *testing.T) {
	tel := newTelemetry(t)
	tel.obs.Observe(context.Background(), approval.Observation{Kind: approval.ObserveDropped, Count: 7})
	tel.obs.Observe(context.Background(), approval.Observation{Kind: approval.ObserveDropped, Count: 5})
	ms := tel.collect(t)
	require.Equal(t, map[string]int64{attrs(): 12}, counts(t, ms, "approval.observer.dropped"))
	require.Equal(t, "{observation}", ms["approval.observer.dropped"].Unit)
}

// TestGuardNoMatchAllocatesNothing: what a Guard no policy matched costs
// the observer allocates nothing and makes no span: the gate's count of
// them (ObserveUnmatched), and a Guard refused before any policy ran.
func TestGuardNoMatchAllocatesNothing(t *testing.T) {
	tel := newTelemetry(t)
	ctx := context.Background()
	unmatched := approval.Observation{Kind: approval.ObserveUnmatched, Count: 3}
	refused := approval.Observation{Kind: approval.ObserveGuard, Start: time.Now(), Duration: 300 * time.Nanosecond,
		Outcome: approval.ObservedError}
	tel.obs.Observe(ctx, unmatched) // the first of each makes its series
	tel.obs.Observe(ctx, refused)
	allocs := 1.0
	for range 5 { // other goroutines may allocate during one run
		allocs = min(allocs, testing.AllocsPerRun(1000, func() {
			tel.obs.Observe(ctx, unmatched)
			tel.obs.Observe(ctx, refused)
		}))
	}
	require.Zero(t, allocs)
	require.Empty(t, tel.spans.Ended(), "neither makes a span")
	ms := tel.collect(t)
	runs := uint64(counts(t, ms, "approval.guard.unmatched")[attrs()]) / 3
	require.Equal(t, runs, histograms(t, ms, "approval.guard.duration")[attrs(kOutcome("error"), kMatched(false))].Count)
	require.GreaterOrEqual(t, runs, uint64(5001))
}

// TestTraceParent: a Guard's context with a span gives that span's
// context; one without, that of the Guard's own root span, which its
// observation ends; a provider that records nothing, none.
func TestTraceParent(t *testing.T) {
	tel := newTelemetry(t)
	ctx, span := tel.tp.Tracer("caller").Start(context.Background(), "caller")
	span.End()
	sc := span.SpanContext()
	start := time.Now().Add(-time.Millisecond)
	require.Equal(t, "00-"+sc.TraceID().String()+"-"+sc.SpanID().String()+"-01", tel.obs.TraceParent(ctx, start))
	require.Len(t, tel.spans.Ended(), 1, "no root is started inside a span")

	tp := tel.obs.TraceParent(context.Background(), start)
	require.Empty(t, tel.named("approval.guard"), "the root is ended with the Guard's observation, on the observer's goroutine")
	// The Guard's own observation, which follows on that goroutine.
	tel.obs.Observe(context.Background(), approval.Observation{Kind: approval.ObserveGuard, Start: start, Duration: time.Millisecond,
		Outcome: "pending", RequestID: "req_1", Policies: []string{"p"}, TraceParent: tp, NewTraceParent: tp})
	roots := tel.named("approval.guard")
	require.Len(t, roots, 1)
	require.False(t, roots[0].Parent().IsValid(), "a root")
	require.Equal(t, start, roots[0].StartTime(), "the Guard's start")
	require.Equal(t, start.Add(time.Millisecond), roots[0].EndTime(), "the Guard's end")
	require.Equal(t, "req_1", attr(roots[0], "approval.request.id"))
	require.Equal(t, "pending", attr(roots[0], "approval.outcome"))
	rc := roots[0].SpanContext()
	require.Equal(t, "00-"+rc.TraceID().String()+"-"+rc.SpanID().String()+"-01", tp)
	require.NotEqual(t, sc.TraceID(), rc.TraceID())

	// A Guard the store answered with an earlier request: its root keeps
	// a trace of its own, linked to that request's.
	again := tel.obs.TraceParent(context.Background(), start)
	tel.obs.Observe(context.Background(), approval.Observation{Kind: approval.ObserveGuard, Start: start, Duration: time.Millisecond,
		Outcome: "pending", RequestID: "req_1", Policies: []string{"p"}, TraceParent: tp, NewTraceParent: again})
	roots = tel.named("approval.guard")
	require.Len(t, roots, 2, "one span for each Guard")
	ac := roots[1].SpanContext()
	require.Equal(t, "00-"+ac.TraceID().String()+"-"+ac.SpanID().String()+"-01", again)
	require.False(t, roots[1].Parent().IsValid())
	require.Len(t, roots[1].Links(), 1)
	require.Equal(t, rc.WithRemote(true), roots[1].Links()[0].SpanContext, "linked to the answering request's trace")

	quiet, err := approvalotel.New(approvalotel.Options{TracerProvider: noop.NewTracerProvider()})
	require.NoError(t, err)
	require.Empty(t, quiet.TraceParent(context.Background(), start))
	require.Equal(t, "00-"+sc.TraceID().String()+"-"+sc.SpanID().String()+"-01", quiet.TraceParent(ctx, start),
		"a caller's span is kept whatever records it")

	// An unsampled caller's context is kept as it is: its spans are not
	// recorded, here or in another process.
	unsampled := trace.ContextWithSpanContext(context.Background(), sc.WithTraceFlags(0))
	require.Equal(t, "00-"+sc.TraceID().String()+"-"+sc.SpanID().String()+"-00", tel.obs.TraceParent(unsampled, start))
	sampler := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	defer func() { _ = sampler.Shutdown(context.Background()) }()
	never, err := approvalotel.New(approvalotel.Options{TracerProvider: sampler})
	require.NoError(t, err)
	require.Regexp(t, `^00-[0-9a-f]{32}-[0-9a-f]{16}-00$`, never.TraceParent(context.Background(), start))
}

// TestTraceParentUnclaimed: roots whose Guard observations never come
// (the gate dropped them) are ended as instants once a minute old, and
// while the most wait, a new root is ended at once; a Guard whose root
// was ended so is a child of it.
func TestTraceParentUnclaimed(t *testing.T) {
	tel := newTelemetry(t)
	old := time.Now().Add(-2 * time.Minute)
	lost := tel.obs.TraceParent(context.Background(), old)
	for range 4096 - 1 {
		tel.obs.TraceParent(context.Background(), time.Now())
	}
	require.Empty(t, tel.named("approval.guard"), "4096 roots wait")
	now := time.Now()
	full := tel.obs.TraceParent(context.Background(), now)
	ended := tel.named("approval.guard")
	require.Len(t, ended, 1, "the root past the bound is ended at once")
	require.Equal(t, now, ended[0].StartTime())
	require.Equal(t, now, ended[0].EndTime(), "an instant")

	// The Guard whose root was ended at once: a child of it.
	tel.obs.Observe(context.Background(), approval.Observation{Kind: approval.ObserveGuard, Start: now, Duration: time.Millisecond,
		Outcome: "pending", RequestID: "req_2", Policies: []string{"p"}, TraceParent: full, NewTraceParent: full})
	guards := tel.named("approval.guard")
	require.Len(t, guards, 3, "the root ended at once, the root a minute old, the Guard's span")
	var child, swept int
	for _, g := range guards {
		sc := g.SpanContext()
		switch {
		case attr(g, "approval.request.id") == "req_2":
			child++
			require.Equal(t, ended[0].SpanContext().SpanID(), g.Parent().SpanID())
		case "00-"+sc.TraceID().String()+"-"+sc.SpanID().String()+"-01" == lost:
			// That observation also swept the root a minute old.
			swept++
			require.Equal(t, old, g.StartTime())
			require.Equal(t, old, g.EndTime())
		}
	}
	require.Equal(t, 1, child)
	require.Equal(t, 1, swept, "the root a minute old is ended")
}

func TestOptions(t *testing.T) {
	_, err := approvalotel.New(approvalotel.Options{StatsTimeout: -time.Second})
	require.ErrorContains(t, err, "StatsTimeout")
	obs, err := approvalotel.New(approvalotel.Options{})
	require.NoError(t, err, "the global providers")
	_, err = obs.ObserveGate(nil)
	require.Error(t, err)
}

// statsStore is a memstore whose OpenByPolicy fails, or blocks until its
// context ends.
type statsStore struct {
	*memstore.Store
	block bool
}

var errStats = errors.New("stats unavailable")

func (s *statsStore) OpenByPolicy(ctx context.Context) ([]approval.PolicyOpen, error) {
	if s.block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return nil, errStats
}

// TestGaugesWhenStatsFail: a Stats that fails, or does not answer within
// StatsTimeout, fails the collection's gauges and nothing else.
func TestGaugesWhenStatsFail(t *testing.T) {
	for _, block := range []bool{false, true} {
		t.Run(map[bool]string{false: "fails", true: "blocks"}[block], func(t *testing.T) {
			tel := newTelemetry(t)
			obs, err := approvalotel.New(approvalotel.Options{TracerProvider: tel.tp, MeterProvider: tel.mp, StatsTimeout: 50 * time.Millisecond})
			require.NoError(t, err)
			h := fixture.NewHarness(t, func(c *approval.Config) {
				c.Store = &statsStore{Store: c.Store.(*memstore.Store), block: block}
				c.Observer = obs
			})
			reg, err := obs.ObserveGate(h.Gate)
			require.NoError(t, err)
			defer func() { require.NoError(t, reg.Unregister()) }()
			h.Pending(fixture.Transfer(5000))
			require.NoError(t, h.Gate.Close(context.Background()))

			start := time.Now()
			var rm metricdata.ResourceMetrics
			err = tel.reader.Collect(context.Background(), &rm)
			require.Less(t, time.Since(start), 5*time.Second, "bounded by StatsTimeout")
			if block {
				require.ErrorIs(t, err, context.DeadlineExceeded)
			} else {
				require.ErrorIs(t, err, errStats)
			}
			names := map[string]bool{}
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					names[m.Name] = true
				}
			}
			require.True(t, names["approval.request.created"], "the other metrics are collected")
			require.False(t, names["approval.request.open"])
		})
	}
}

// TestTraceParentAsPropagated: the traceparent a caller's span gives is
// what the W3C Trace Context propagator writes, flags masked alike.
func TestTraceParentAsPropagated(t *testing.T) {
	tel := newTelemetry(t)
	for _, flags := range []trace.TraceFlags{0, trace.FlagsSampled, trace.FlagsRandom, trace.FlagsSampled | trace.FlagsRandom, 0xff} {
		sc := trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
			SpanID:  trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}, TraceFlags: flags,
		})
		ctx := trace.ContextWithSpanContext(context.Background(), sc)
		carrier := propagation.MapCarrier{}
		propagation.TraceContext{}.Inject(ctx, carrier)
		require.Equal(t, carrier.Get("traceparent"), tel.obs.TraceParent(ctx, time.Now()), "flags %02x", byte(flags))
	}
}
