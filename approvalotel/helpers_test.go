package approvalotel_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/signoff/approval"
	"github.com/signoff/approval/approvalotel"
)

// telemetry is an Observer on SDK providers whose spans and metrics a
// test reads back: a SpanRecorder and a ManualReader.
type telemetry struct {
	obs    *approvalotel.Observer
	tp     *sdktrace.TracerProvider
	mp     *sdkmetric.MeterProvider
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
}

func newTelemetry(t *testing.T) *telemetry {
	t.Helper()
	tel := &telemetry{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	tel.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tel.spans))
	tel.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(tel.reader))
	t.Cleanup(func() {
		_ = tel.tp.Shutdown(context.Background())
		_ = tel.mp.Shutdown(context.Background())
	})
	var err error
	tel.obs, err = approvalotel.New(approvalotel.Options{TracerProvider: tel.tp, MeterProvider: tel.mp})
	require.NoError(t, err)
	return tel
}

// collect returns the metrics by name.
func (tel *telemetry) collect(t *testing.T) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, tel.reader.Collect(context.Background(), &rm))
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// named returns the ended spans called name.
func (tel *telemetry) named(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range tel.spans.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// attrs spells an attribute set the way the tests compare them.
func attrs(kvs ...attribute.KeyValue) string {
	s := attribute.NewSet(kvs...)
	return s.Encoded(attribute.DefaultEncoder())
}

func enc(s attribute.Set) string { return s.Encoded(attribute.DefaultEncoder()) }

// counts returns an Int64 sum's value by attribute set.
func counts(t *testing.T, ms map[string]metricdata.Metrics, name string) map[string]int64 {
	t.Helper()
	m, ok := ms[name]
	require.True(t, ok, "metric %s is missing", name)
	sum, ok := m.Data.(metricdata.Sum[int64])
	require.True(t, ok, "%s is a %T", name, m.Data)
	require.True(t, sum.IsMonotonic, "%s is a counter", name)
	out := map[string]int64{}
	for _, dp := range sum.DataPoints {
		out[enc(dp.Attributes)] = dp.Value
	}
	return out
}

// hist is one histogram data point's count and sum.
type hist struct {
	Count uint64
	Sum   float64
}

// histograms returns a Float64 histogram's count and sum by attribute
// set.
func histograms(t *testing.T, ms map[string]metricdata.Metrics, name string) map[string]hist {
	t.Helper()
	m, ok := ms[name]
	require.True(t, ok, "metric %s is missing", name)
	require.Equal(t, "s", m.Unit, name)
	h, ok := m.Data.(metricdata.Histogram[float64])
	require.True(t, ok, "%s is a %T", name, m.Data)
	out := map[string]hist{}
	for _, dp := range h.DataPoints {
		require.True(t, slices.IsSorted(dp.Bounds), name)
		out[enc(dp.Attributes)] = hist{dp.Count, dp.Sum}
	}
	return out
}

// gauges returns a gauge's values by attribute set.
func gauges[N int64 | float64](t *testing.T, ms map[string]metricdata.Metrics, name string) map[string]N {
	t.Helper()
	m, ok := ms[name]
	require.True(t, ok, "metric %s is missing", name)
	g, ok := m.Data.(metricdata.Gauge[N])
	require.True(t, ok, "%s is a %T", name, m.Data)
	out := map[string]N{}
	for _, dp := range g.DataPoints {
		out[enc(dp.Attributes)] = dp.Value
	}
	return out
}

// testChannel records every notification it is asked to send, by ID,
// and fails the attempts fail says.
type testChannel struct {
	name string
	fail func(n approval.Notification, attempt int) error

	mu    sync.Mutex
	calls map[string][]approval.Notification
}

func newTestChannel(name string, fail func(n approval.Notification, attempt int) error) *testChannel {
	return &testChannel{name: name, fail: fail, calls: map[string][]approval.Notification{}}
}

func (c *testChannel) Name() string { return c.name }

func (c *testChannel) Send(_ context.Context, n approval.Notification) error {
	c.mu.Lock()
	c.calls[n.ID] = append(c.calls[n.ID], n)
	k := len(c.calls[n.ID])
	c.mu.Unlock()
	if c.fail != nil {
		return c.fail(n, k)
	}
	return nil
}

// sent returns the attempts of each notification, by ID.
func (c *testChannel) sent() map[string][]approval.Notification {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string][]approval.Notification, len(c.calls))
	for k, v := range c.calls {
		out[k] = slices.Clone(v)
	}
	return out
}

// failFirst fails the first attempt of every notification.
func failFirst(_ approval.Notification, attempt int) error {
	if attempt == 1 {
		return errors.New("receiver answered 503")
	}
	return nil
}

func kOutcome(v string) attribute.KeyValue { return attribute.String("approval.outcome", v) }
func kPolicy(v string) attribute.KeyValue  { return attribute.String("approval.policy", v) }
func kMatched(v bool) attribute.KeyValue   { return attribute.Bool("approval.policy.matched", v) }
func kRejection(v string) attribute.KeyValue {
	return attribute.String("approval.decision.rejection", v)
}
func kChannel(v string) attribute.KeyValue { return attribute.String("approval.channel", v) }
