package approvalotel_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/fixture"
)

// scenario is one scripted run of a gate on memstore with a test clock,
// told through an Observer on SDK providers.
type scenario struct {
	tel *telemetry
	h   *fixture.Harness

	// caller is the span the Guard of a was called in.
	caller trace.SpanContext
	// reviewer is the span, of a trace of its own, alice decided a in.
	reviewer trace.SpanContext
	// a is a high_spend transfer guarded inside caller, rejected twice
	// (a person not eligible, an expired token) and approved after 4
	// minutes; b an ops_deploy guarded without a span, timed out by a Tick
	// after tookB; c a high_spend transfer left pending.
	a, b, c string
	tookB   time.Duration
	// slack fails each notification's first attempt; pager fails for
	// good (MaxAttempts 1) the one notifying sam of b; email fails every
	// attempt, retried only after 1000 hours, so its messages wait.
	slack, pager, email *testChannel
	// token is a decision token used in the run, payload an action's
	// payload: neither may show in telemetry.
	token, payload string
}

// opsDeploy is a policy on deploys: one approval from the sre role, within
// an hour.
var opsDeploy = approval.Policy{
	Match:             approval.Name("deploy"),
	Approvers:         []approval.Approver{approval.Role("sre")},
	RequiredApprovals: 1,
	Timeout:           time.Hour,
}

func runScenario(t *testing.T) *scenario {
	t.Helper()
	s := &scenario{tel: newTelemetry(t)}
	s.slack = newTestChannel("slack", failFirst)
	s.pager = newTestChannel("pager", func(n approval.Notification, _ int) error {
		if n.Recipient == "sam" && n.Type == approval.NotifyRequested {
			return errors.New("pager refused sam")
		}
		return nil
	})
	s.email = newTestChannel("email", func(approval.Notification, int) error { return errors.New("mail server down") })
	s.h = fixture.NewHarness(t, func(c *approval.Config) {
		c.Observer = s.tel.obs
		c.Channels = []approval.Channel{s.slack, s.pager, s.email}
		c.PollInterval = 5 * time.Millisecond
		c.Delivery.Retry = approval.RetryPolicy{MaxAttempts: 3, InitialInterval: time.Millisecond, MaxInterval: time.Millisecond}
		c.Delivery.ChannelRetry = map[string]approval.RetryPolicy{
			"pager": {MaxAttempts: 1},
			"email": {MaxAttempts: 5, InitialInterval: 1000 * time.Hour, MaxInterval: 1000 * time.Hour},
		}
		// Claims outlast the hour the clock moves on below, so no attempt
		// in flight is claimed again.
		c.Delivery.SendTimeout = 2 * time.Hour
	})
	h := s.h
	require.NoError(t, h.Gate.SetPolicy("ops_deploy", opsDeploy))
	tracer := s.tel.tp.Tracer("caller")

	res, err := h.Gate.Guard(h.Ctx, approval.Action{Name: "read-report", RequestedBy: "user-1"})
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeApproved, res.Status, "no policy matches")

	ctx, span := tracer.Start(h.Ctx, "caller")
	s.caller = span.SpanContext()
	transfer := fixture.Transfer(5000)
	s.payload = string(transfer.Payload)
	res, err = h.Gate.Guard(ctx, transfer)
	span.End()
	require.NoError(t, err)
	require.Equal(t, approval.OutcomePending, res.Status)
	s.a = res.RequestID
	s.b = h.Pending(approval.Action{Name: "deploy", RequestedBy: "user-1", Payload: []byte(`{"service":"web"}`)})
	s.c = h.Pending(fixture.Transfer(7000))

	_, err = h.Gate.Decide(h.Ctx, s.a, approval.Decision{Token: h.Token(s.a, "zoe", approval.VerdictApprove), Verdict: approval.VerdictApprove})
	require.ErrorIs(t, err, approval.ErrNotEligible)
	s.token, err = h.Gate.IssueToken(s.a, "carol", approval.VerdictApprove, time.Minute)
	require.NoError(t, err)
	h.Clock.Advance(4 * time.Minute)
	_, err = h.Gate.Decide(h.Ctx, s.a, approval.Decision{Token: s.token, Verdict: approval.VerdictApprove})
	require.ErrorIs(t, err, approval.ErrTokenExpired)
	ctx, span = tracer.Start(h.Ctx, "reviewer")
	s.reviewer = span.SpanContext()
	_, err = h.Gate.Decide(ctx, s.a, approval.Decision{Token: h.Token(s.a, "alice", approval.VerdictApprove), Verdict: approval.VerdictApprove})
	span.End()
	require.NoError(t, err)
	r, err := h.Decide(s.a, "bob", approval.VerdictApprove)
	require.NoError(t, err)
	require.Equal(t, approval.StatusApproved, r.Status)
	r, err = h.Gate.Wait(h.Ctx, s.a)
	require.NoError(t, err)
	require.Equal(t, approval.StatusApproved, r.Status)

	h.Clock.Advance(56*time.Minute + time.Second)
	s.tookB = time.Hour + time.Second
	n, err := h.Gate.Tick(h.Ctx, 0)
	require.NoError(t, err)
	require.Equal(t, 1, n, "b timed out")
	require.Equal(t, approval.StatusTimedOut, h.Get(s.b).Status)

	// Every notification fails once on slack and is retried: move the
	// clock on, a millisecond at a time (far inside the claims' leases),
	// until each has had its second attempt, and every channel has tried
	// every notification.
	deadline := time.Now().Add(20 * time.Second)
	for !s.settled() {
		require.True(t, time.Now().Before(deadline), "the deliveries never settled")
		h.Clock.Advance(time.Millisecond)
		time.Sleep(2 * time.Millisecond)
	}
	return s
}

// perChannel is how many notifications each channel is given: a's four
// approvers, b's one (sam) and c's four are asked; a's approval goes to
// its two voters and its requester, b's timeout to sam and its requester.
const perChannel = 4 + 1 + 4 + 3 + 2

// settled reports whether every notification was attempted on each
// channel, and retried on slack.
func (s *scenario) settled() bool {
	sl, pg, em := s.slack.sent(), s.pager.sent(), s.email.sent()
	if len(sl) != perChannel || len(pg) != perChannel || len(em) != perChannel {
		return false
	}
	for _, calls := range sl {
		if len(calls) < 2 {
			return false
		}
	}
	return true
}

// TestMetrics: every metric of the scripted run, with its attributes and
// values.
func TestMetrics(t *testing.T) {
	s := runScenario(t)
	reg, err := s.tel.obs.ObserveGate(s.h.Gate)
	require.NoError(t, err)
	defer func() { require.NoError(t, reg.Unregister()) }()
	// The emails wait ten minutes more; the oldest was made when the
	// gate's delivery loop first saw a's notices.
	s.h.Clock.Advance(10 * time.Minute)
	now := s.h.Clock.Now()
	page, err := s.h.Gate.ListOutbox(context.Background(), approval.OutboxQuery{State: approval.OutboxPending, Channel: "email", Limit: 100})
	require.NoError(t, err)
	require.Len(t, page.Messages, perChannel)
	oldest := now
	for _, m := range page.Messages {
		if m.CreatedAt.Before(oldest) {
			oldest = m.CreatedAt
		}
	}
	// Close delivers every observation queued; the stats below are read
	// from the store, at the clock's time.
	require.NoError(t, s.h.Gate.Close(context.Background()))
	ms := s.tel.collect(t)

	require.Equal(t, map[string]hist{
		attrs(kOutcome("pending"), kMatched(true)): {Count: 3},
	}, zeroSums(histograms(t, ms, "approval.guard.duration")))
	require.Equal(t, map[string]int64{attrs(): 1}, counts(t, ms, "approval.guard.unmatched"),
		"the Guard no policy matched is counted, not timed")

	require.Equal(t, map[string]int64{
		attrs(kPolicy("high_spend"), kOutcome("pending")): 2,
		attrs(kPolicy("ops_deploy"), kOutcome("pending")): 1,
	}, counts(t, ms, "approval.request.created"))
	require.Equal(t, map[string]int64{
		attrs(kPolicy("high_spend"), kOutcome("approved")):  1,
		attrs(kPolicy("ops_deploy"), kOutcome("timed_out")): 1,
	}, counts(t, ms, "approval.request.resolved"))
	require.Equal(t, map[string]hist{
		attrs(kPolicy("high_spend"), kOutcome("approved")):  {Count: 1, Sum: (4 * time.Minute).Seconds()},
		attrs(kPolicy("ops_deploy"), kOutcome("timed_out")): {Count: 1, Sum: s.tookB.Seconds()},
	}, histograms(t, ms, "approval.request.duration"), "the time to decision, by the gate's clock")

	require.Equal(t, map[string]int64{
		attrs(kOutcome("accepted")):                              2,
		attrs(kOutcome("rejected"), kRejection("not_eligible")):  1,
		attrs(kOutcome("rejected"), kRejection("token_expired")): 1,
	}, counts(t, ms, "approval.decisions"))

	wantAttempts := map[string]int64{
		attrs(kChannel("slack"), kOutcome("failed")):      perChannel,
		attrs(kChannel("slack"), kOutcome("delivered")):   perChannel,
		attrs(kChannel("pager"), kOutcome("delivered")):   perChannel - 1,
		attrs(kChannel("pager"), kOutcome("dead_letter")): 1,
		attrs(kChannel("email"), kOutcome("failed")):      perChannel,
	}
	require.Equal(t, wantAttempts, counts(t, ms, "approval.notification.attempts"))
	durations := histograms(t, ms, "approval.notification.duration")
	require.Len(t, durations, len(wantAttempts))
	for k, n := range wantAttempts {
		require.Equal(t, uint64(n), durations[k].Count, k)
	}
	require.Equal(t, map[string]int64{attrs(kChannel("pager")): 1}, counts(t, ms, "approval.notification.dead_lettered"))

	ticks := histograms(t, ms, "approval.tick.duration")
	require.Equal(t, uint64(1), ticks[attrs()].Count)
	require.NotContains(t, ms, "approval.observer.dropped", "nothing was dropped")

	// The gauges: c is open; sam's page is a dead letter; every email
	// waits.
	require.Equal(t, map[string]int64{
		attrs(kPolicy("high_spend")): 1,
		attrs(kPolicy("ops_deploy")): 0,
	}, gauges[int64](t, ms, "approval.request.open"))
	require.Equal(t, map[string]int64{
		attrs(kChannel("slack")): 0, attrs(kChannel("pager")): 1, attrs(kChannel("email")): 0,
	}, gauges[int64](t, ms, "approval.outbox.dead"))
	require.Equal(t, map[string]int64{
		attrs(kChannel("slack")): 0, attrs(kChannel("pager")): 0, attrs(kChannel("email")): perChannel,
	}, gauges[int64](t, ms, "approval.outbox.pending"))
	age := gauges[float64](t, ms, "approval.outbox.oldest_age")
	require.Len(t, age, 1, "only a channel with messages waiting has an age")
	require.InDelta(t, now.Sub(oldest).Seconds(), age[attrs(kChannel("email"))], 1e-9)
	require.GreaterOrEqual(t, age[attrs(kChannel("email"))], (10 * time.Minute).Seconds())
}

// zeroSums drops the sums of h, which time real calls.
func zeroSums(h map[string]hist) map[string]hist {
	for k, v := range h {
		v.Sum = 0
		h[k] = v
	}
	return h
}
