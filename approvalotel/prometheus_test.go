package approvalotel_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/otlptranslator"
	"github.com/stretchr/testify/require"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/signoff/approval"
	"github.com/signoff/approval/approvalotel"
	"github.com/signoff/approval/internal/fixture"
)

// TestPrometheus: the metrics, exported through the OpenTelemetry
// Prometheus exporter and scraped over HTTP as Prometheus would.
func TestPrometheus(t *testing.T) {
	// What a host writes to serve /metrics (see README.md).
	registry := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(registry),
		otelprom.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithSuffixes))
	require.NoError(t, err)
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	obs, err := approvalotel.New(approvalotel.Options{MeterProvider: mp})
	require.NoError(t, err)
	srv := httptest.NewServer(promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
	defer srv.Close()

	h := fixture.NewHarness(t, func(c *approval.Config) { c.Observer = obs })
	reg, err := obs.ObserveGate(h.Gate)
	require.NoError(t, err)
	defer func() { require.NoError(t, reg.Unregister()) }()
	for range 3 {
		_, err := h.Gate.Guard(h.Ctx, approval.Action{Name: "read-report", RequestedBy: "user-1"})
		require.NoError(t, err)
	}
	h.Pending(fixture.Transfer(5000))
	h.Pending(fixture.Transfer(6000))
	require.NoError(t, h.Gate.Close(context.Background()))

	resp, err := http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)

	created := families["approval_request_created_total"]
	require.NotNil(t, created, "families: %v", keys(families))
	require.Equal(t, dto.MetricType_COUNTER, created.GetType())
	require.Len(t, created.Metric, 1)
	require.Equal(t, map[string]string{"approval_policy": "high_spend", "approval_outcome": "pending"}, labels(created.Metric[0]))
	require.Equal(t, 2.0, created.Metric[0].GetCounter().GetValue())

	guard := families["approval_guard_duration_seconds"]
	require.NotNil(t, guard, "families: %v", keys(families))
	require.Equal(t, dto.MetricType_HISTOGRAM, guard.GetType())
	byOutcome := map[string]uint64{}
	for _, m := range guard.Metric {
		l := labels(m)
		byOutcome[l["approval_outcome"]+"/"+l["approval_policy_matched"]] = m.GetHistogram().GetSampleCount()
		b := m.GetHistogram().GetBucket()
		require.Len(t, b, 18+1, "Guard's buckets, 10µs to 5s, and +Inf")
		require.Equal(t, 1e-5, b[0].GetUpperBound())
		require.Equal(t, 5.0, b[17].GetUpperBound())
	}
	require.Equal(t, map[string]uint64{"pending/true": 2}, byOutcome)
	unmatched := families["approval_guard_unmatched_total"]
	require.NotNil(t, unmatched, "families: %v", keys(families))
	require.Equal(t, 3.0, unmatched.Metric[0].GetCounter().GetValue(), "Guards no policy matched")

	open := families["approval_request_open"]
	require.NotNil(t, open, "families: %v", keys(families))
	require.Equal(t, dto.MetricType_GAUGE, open.GetType())
	require.Len(t, open.Metric, 1)
	require.Equal(t, map[string]string{"approval_policy": "high_spend"}, labels(open.Metric[0]))
	require.Equal(t, 2.0, open.Metric[0].GetGauge().GetValue())
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		if n := l.GetName(); n != "otel_scope_name" && n != "otel_scope_version" && n != "otel_scope_schema_url" {
			out[n] = l.GetValue()
		}
	}
	return out
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
