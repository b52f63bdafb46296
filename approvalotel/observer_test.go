package approvalotel_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
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
// context; one without, a new root's; a provider that records nothing,
// none.
func TestTraceParent(t *testing.T) {
	tel := newTelemetry(t)
	ctx, span := tel.tp.Tracer("caller").Start(context.Background(), "caller")
	span.End()
	sc := span.SpanContext()
	require.Equal(t, "00-"+sc.TraceID().String()+"-"+sc.SpanID().String()+"-01", tel.obs.TraceParent(ctx))
	require.Len(t, tel.spans.Ended(), 1, "no root is started inside a span")

	tp := tel.obs.TraceParent(context.Background())
	require.Empty(t, tel.named("approval.request"), "the root is ended on the observer's goroutine, not the Guard's")
	// The Guard's own observation, which follows on that goroutine.
	tel.obs.Observe(context.Background(), approval.Observation{Kind: approval.ObserveGuard, Outcome: "pending", Policies: []string{"p"}, TraceParent: tp})
	roots := tel.named("approval.request")
	require.Len(t, roots, 1)
	require.Equal(t, roots[0].StartTime(), roots[0].EndTime(), "an instant")
	rc := roots[0].SpanContext()
	require.Equal(t, "00-"+rc.TraceID().String()+"-"+rc.SpanID().String()+"-01", tp)
	require.NotEqual(t, sc.TraceID(), rc.TraceID())

	quiet, err := approvalotel.New(approvalotel.Options{TracerProvider: noop.NewTracerProvider()})
	require.NoError(t, err)
	require.Empty(t, quiet.TraceParent(context.Background()))
	require.Equal(t, "00-"+sc.TraceID().String()+"-"+sc.SpanID().String()+"-01", quiet.TraceParent(ctx),
		"a caller's span is kept whatever records it")

	// An unsampled caller's context is kept as it is: its spans are not
	// recorded, here or in another process.
	unsampled := trace.ContextWithSpanContext(context.Background(), sc.WithTraceFlags(0))
	require.Equal(t, "00-"+sc.TraceID().String()+"-"+sc.SpanID().String()+"-00", tel.obs.TraceParent(unsampled))
	sampler := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	defer func() { _ = sampler.Shutdown(context.Background()) }()
	never, err := approvalotel.New(approvalotel.Options{TracerProvider: sampler})
	require.NoError(t, err)
	require.Regexp(t, `^00-[0-9a-f]{32}-[0-9a-f]{16}-00$`, never.TraceParent(context.Background()))
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
