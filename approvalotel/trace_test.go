package approvalotel_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/fixture"
	"github.com/signoff/approval/internal/testkit"
)

// storedContext parses a request's stored traceparent.
func storedContext(t *testing.T, tp string) trace.SpanContext {
	t.Helper()
	ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{"traceparent": tp})
	sc := trace.SpanContextFromContext(ctx)
	require.True(t, sc.IsValid(), "stored trace context %q", tp)
	return sc
}

// attr returns span s's attribute key as a string, "" if it has none.
func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

// byRequest returns the spans of request id.
func byRequest(spans []sdktrace.ReadOnlySpan, id string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if attr(s, "approval.request.id") == id {
			out = append(out, s)
		}
	}
	return out
}

// TestTraces: one approval, one trace. a's Guard ran in the caller's
// span, so a's request continues the caller's trace; b's ran without
// one, so b's trace has b's Guard as its root. Decisions, the Wait,
// each delivery attempt and the resolution join their request's trace;
// a decision made inside another trace (a reviewer's) links to it.
func TestTraces(t *testing.T) {
	s := runScenario(t)
	require.NoError(t, s.h.Gate.Close(context.Background()))
	tel := s.tel

	require.Equal(t, s.caller.WithRemote(true), storedContext(t, s.h.Get(s.a).TraceParent), "a keeps the caller's span as its trace context")
	bRoot := storedContext(t, s.h.Get(s.b).TraceParent)
	require.NotEqual(t, s.caller.TraceID(), bRoot.TraceID())

	// Guard: no span for the Guard no policy matched; a's is a child of
	// the caller's span; b's and c's, guarded without one, are the roots
	// of their approvals' traces.
	guards := tel.named("approval.guard")
	require.Len(t, guards, 3)
	ga := byRequest(guards, s.a)
	require.Len(t, ga, 1)
	require.Equal(t, s.caller.SpanID(), ga[0].Parent().SpanID())
	require.Equal(t, s.caller.TraceID(), ga[0].SpanContext().TraceID())
	require.Equal(t, "pending", attr(ga[0], "approval.outcome"))
	require.Equal(t, `["high_spend"]`, attr(ga[0], "approval.policies"))
	require.Equal(t, trace.SpanKindInternal, ga[0].SpanKind())
	require.Equal(t, codes.Unset, ga[0].Status().Code)
	require.Positive(t, ga[0].EndTime().Sub(ga[0].StartTime()), "the span lasts as long as the Guard did")
	gb := byRequest(guards, s.b)
	require.Len(t, gb, 1)
	require.Equal(t, bRoot.WithRemote(false), gb[0].SpanContext(), "b's stored context is its Guard's span")
	require.False(t, gb[0].Parent().IsValid(), "a root")
	require.Equal(t, "pending", attr(gb[0], "approval.outcome"))
	require.Equal(t, `["ops_deploy"]`, attr(gb[0], "approval.policies"))

	// Decide: the two rejections carry their class; the accepted ones are
	// children of a's stored context, alice's linked to the reviewer's.
	decides := tel.named("approval.decide")
	require.Len(t, decides, 4)
	classes := map[string]int{}
	for _, d := range decides {
		require.Equal(t, s.a, attr(d, "approval.request.id"))
		switch attr(d, "approval.outcome") {
		case "rejected":
			class := attr(d, "approval.decision.rejection")
			classes[class]++
			require.Equal(t, codes.Error, d.Status().Code)
			require.Equal(t, class, d.Status().Description, "the status says the class, not the error")
			require.Equal(t, class, attr(d, "error.type"))
		case "accepted":
			require.Equal(t, s.caller.TraceID(), d.SpanContext().TraceID(), "in a's trace")
			require.Equal(t, s.caller.SpanID(), d.Parent().SpanID())
			require.True(t, d.Parent().IsRemote(), "the parent is the stored context")
			require.Equal(t, `["high_spend"]`, attr(d, "approval.policies"))
			require.Equal(t, codes.Unset, d.Status().Code)
		default:
			t.Fatalf("decide span with outcome %q", attr(d, "approval.outcome"))
		}
	}
	require.Equal(t, map[string]int{"not_eligible": 1, "token_expired": 1}, classes)
	var linked int
	for _, d := range decides {
		for _, l := range d.Links() {
			require.Equal(t, s.reviewer, l.SpanContext, "the link is to the reviewer's span")
			linked++
		}
	}
	require.Equal(t, 1, linked, "alice's decision, made in the reviewer's trace, links to it")

	waits := tel.named("approval.wait")
	require.Len(t, waits, 1)
	require.Equal(t, s.caller.TraceID(), waits[0].SpanContext().TraceID())

	// Each delivery attempt is a client span in its request's trace.
	deliveries := tel.named("approval.delivery")
	require.Len(t, deliveries, 2*perChannel+perChannel+perChannel)
	want := map[string]trace.TraceID{s.a: s.caller.TraceID(), s.b: bRoot.TraceID()}
	for _, d := range deliveries {
		require.Equal(t, trace.SpanKindClient, d.SpanKind())
		require.NotEmpty(t, attr(d, "approval.channel"))
		require.NotEmpty(t, attr(d, "approval.notification.attempt"))
		if tid, ok := want[attr(d, "approval.request.id")]; ok {
			require.Equal(t, tid, d.SpanContext().TraceID())
		}
		switch attr(d, "approval.outcome") {
		case "failed", "dead_letter":
			require.Equal(t, codes.Error, d.Status().Code)
			require.Equal(t, "channel", attr(d, "error.type"))
		case "delivered":
			require.Equal(t, codes.Unset, d.Status().Code)
		}
	}
	require.NotEmpty(t, byRequest(deliveries, s.a))
	require.NotEmpty(t, byRequest(deliveries, s.b))

	resolved := tel.named("approval.resolved")
	require.Len(t, resolved, 2)
	for _, r := range resolved {
		require.Equal(t, want[attr(r, "approval.request.id")], r.SpanContext().TraceID())
	}
	require.Len(t, tel.named("approval.tick"), 1, "the Tick that timed b out")

	// Nothing secret in any span: no payload, no token, no error text.
	for _, sp := range tel.spans.Ended() {
		text := fmt.Sprint(sp.Name(), sp.Attributes(), sp.Events(), sp.Links(), sp.Status())
		for _, secret := range []string{s.payload, `{"service":"web"}`, s.token, "mail server down", "pager refused"} {
			require.False(t, testkit.Leaks(text, secret), "span %s shows %q", sp.Name(), secret)
		}
	}
}

// TestTraceConsumingGuard: without a span, the Guard that asks is the
// root of the approval's trace, and the Guard that consumes the approval
// (answered by the request, not stored) is the root of a trace of its
// own that links to it.
func TestTraceConsumingGuard(t *testing.T) {
	tel := newTelemetry(t)
	h := fixture.NewHarness(t, func(c *approval.Config) { c.Observer = tel.obs })
	id := h.Pending(fixture.Transfer(5000))
	for _, who := range []string{"alice", "bob"} {
		_, err := h.Decide(id, who, approval.VerdictApprove)
		require.NoError(t, err)
	}
	res, err := h.Gate.Guard(h.Ctx, fixture.Transfer(5000))
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeApproved, res.Status)
	require.NoError(t, h.Gate.Close(context.Background()))

	stored := storedContext(t, h.Get(id).TraceParent)
	guards := tel.named("approval.guard")
	require.Len(t, guards, 2)
	asked, consumed := guards[0], guards[1]
	require.Equal(t, stored.WithRemote(false), asked.SpanContext(), "the asking Guard is the stored context")
	require.False(t, asked.Parent().IsValid())
	require.Equal(t, "pending", attr(asked, "approval.outcome"))
	require.False(t, consumed.Parent().IsValid(), "a root")
	require.NotEqual(t, stored.TraceID(), consumed.SpanContext().TraceID())
	require.Equal(t, "approved", attr(consumed, "approval.outcome"))
	require.Equal(t, id, attr(consumed, "approval.request.id"))
	require.Len(t, consumed.Links(), 1)
	require.Equal(t, stored, consumed.Links()[0].SpanContext, "linked to the approval's trace")
	for _, d := range tel.named("approval.decide") {
		require.Equal(t, stored.SpanID(), d.Parent().SpanID(), "decisions are children of the asking Guard")
	}
	require.Len(t, tel.named("approval.decide"), 2)
}
