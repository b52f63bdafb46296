package approvalotel_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/fixture"
	"github.com/signoff/approval/internal/pgtest"
	"github.com/signoff/approval/sqlstore"
)

// TestTraceAcrossProcesses: two gates, each with its own pool on one
// PostgreSQL database and its own TracerProvider, as two processes. A
// request guarded in A inside a span is decided in B: B's Decide span is
// in the trace of A's caller, a child of the context A stored.
func TestTraceAcrossProcesses(t *testing.T) {
	dsn := pgtest.DSN(t)
	_, key, err := approval.GenerateKeys()
	require.NoError(t, err)
	process := func() (*telemetry, *approval.Gate) {
		tel := newTelemetry(t)
		store, err := sqlstore.Open(context.Background(), dsn)
		require.NoError(t, err)
		t.Cleanup(func() { _ = store.Close() })
		g := fixture.NewGate(t, approval.Config{Store: store, SigningKey: key, Directory: fixture.FinanceDirectory(), Observer: tel.obs},
			fixture.HighSpend())
		return tel, g
	}
	telA, gateA := process()
	telB, gateB := process()

	ctx, span := telA.tp.Tracer("caller").Start(context.Background(), "caller")
	res, err := gateA.Guard(ctx, fixture.Transfer(5000))
	span.End()
	require.NoError(t, err)
	require.Equal(t, approval.OutcomePending, res.Status)
	caller := span.SpanContext()

	// The reviewer's request in B has a trace of its own.
	rctx, rspan := telB.tp.Tracer("reviewer").Start(context.Background(), "reviewer")
	for _, who := range []string{"alice", "bob"} {
		tok, err := gateB.IssueToken(res.RequestID, who, approval.VerdictApprove, time.Hour)
		require.NoError(t, err)
		_, err = gateB.Decide(rctx, res.RequestID, approval.Decision{Token: tok, Verdict: approval.VerdictApprove})
		require.NoError(t, err)
	}
	rspan.End()
	require.NoError(t, gateA.Close(context.Background()))
	require.NoError(t, gateB.Close(context.Background()))

	require.Len(t, byRequest(telA.named("approval.guard"), res.RequestID), 1)
	require.Empty(t, telA.named("approval.decide"), "A decided nothing")
	decides := telB.named("approval.decide")
	require.Len(t, decides, 2)
	for _, d := range decides {
		require.Equal(t, caller.TraceID(), d.SpanContext().TraceID(), "B's decision is in A's caller's trace")
		require.Equal(t, caller.SpanID(), d.Parent().SpanID(), "a child of the context A stored")
		require.True(t, d.Parent().IsRemote())
		require.Len(t, d.Links(), 1)
		require.Equal(t, rspan.SpanContext(), d.Links()[0].SpanContext, "linked to the reviewer's span")
		require.Equal(t, "accepted", attr(d, "approval.outcome"))
	}
	resolved := telB.named("approval.resolved")
	require.Len(t, resolved, 1)
	require.Equal(t, caller.TraceID(), resolved[0].SpanContext().TraceID())
}
