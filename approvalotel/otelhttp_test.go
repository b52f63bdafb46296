package approvalotel_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/signoff/approval"
	"github.com/signoff/approval/approvalhttp"
	"github.com/signoff/approval/internal/fixture"
)

// TestHTTPDecisionLinksToServerSpan: approvalhttp's handler wrapped in
// otelhttp, as docs/OBSERVABILITY.md shows. A decision posted to it is
// traced in the approval's trace, linked to the HTTP server span.
func TestHTTPDecisionLinksToServerSpan(t *testing.T) {
	tel := newTelemetry(t)
	h := fixture.NewHarness(t, func(c *approval.Config) { c.Observer = tel.obs })
	api, err := approvalhttp.New(h.Gate, approvalhttp.Options{})
	require.NoError(t, err)
	srv := httptest.NewServer(otelhttp.NewHandler(api, "approval", otelhttp.WithTracerProvider(tel.tp)))
	defer srv.Close()

	ctx, span := tel.tp.Tracer("caller").Start(context.Background(), "caller")
	res, err := h.Gate.Guard(ctx, fixture.Transfer(5000))
	span.End()
	require.NoError(t, err)
	tok := h.Token(res.RequestID, "alice", approval.VerdictApprove)
	resp, err := http.Post(srv.URL+"/api/approvals/"+res.RequestID+"/approve", "application/json",
		strings.NewReader(`{"token":"`+tok+`"}`))
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, h.Gate.Close(context.Background()))

	var server trace.SpanContext
	for _, s := range tel.spans.Ended() {
		if s.SpanKind() == trace.SpanKindServer {
			require.False(t, server.IsValid(), "one HTTP request")
			server = s.SpanContext()
		}
	}
	require.True(t, server.IsValid(), "otelhttp traced the request")
	require.NotEqual(t, span.SpanContext().TraceID(), server.TraceID())
	decides := tel.named("approval.decide")
	require.Len(t, decides, 1)
	d := decides[0]
	require.Equal(t, span.SpanContext().TraceID(), d.SpanContext().TraceID(), "in the approval's trace")
	require.Equal(t, span.SpanContext().SpanID(), d.Parent().SpanID())
	require.Len(t, d.Links(), 1)
	require.Equal(t, server, d.Links()[0].SpanContext, "linked to the HTTP server span")
	require.Less(t, time.Duration(0), d.EndTime().Sub(d.StartTime()))
}
