package approval_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/testkit"
)

// recordingObserver keeps every observation and hands out trace contexts.
type recordingObserver struct {
	mu    sync.Mutex
	seen  []approval.Observation
	trace string
}

func (o *recordingObserver) Observe(_ context.Context, ob approval.Observation) {
	o.mu.Lock()
	o.seen = append(o.seen, ob)
	o.mu.Unlock()
}

func (o *recordingObserver) TraceParent(context.Context, time.Time) string { return o.trace }

func (o *recordingObserver) of(k approval.ObservationKind) []approval.Observation {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []approval.Observation
	for _, ob := range o.seen {
		if ob.Kind == k {
			out = append(out, ob)
		}
	}
	return out
}

const traceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// TestObserverHearsTheGate: one approval, told as observations: the
// Guard that created it (and its stored trace context), a rejected and an
// accepted decision, the resolution with its time to decision, the Wait
// that woke, a failed then a delivered notification, and a Tick.
func TestObserverHearsTheGate(t *testing.T) {
	obs := &recordingObserver{trace: traceParent}
	ch := newFlakyChannel("slack", 1, nil)
	f := newFixture(t, func(c *approval.Config) {
		c.Observer = obs
		c.Channels = []approval.Channel{ch}
		c.Delivery.Retry = approval.RetryPolicy{MaxAttempts: 3, InitialInterval: time.Millisecond, MaxInterval: time.Millisecond}
		// Claims outlast the four minutes the clock moves on below, so no
		// attempt in flight is claimed again (at least once, not twice).
		c.Delivery.SendTimeout = time.Hour
	})

	res, err := f.gate.Guard(f.ctx, approval.Action{Name: "deploy", RequestedBy: "user-1"})
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeApproved, res.Status, "no policy matches")
	id := f.Pending(transfer(5000))
	require.Equal(t, traceParent, f.Get(id).TraceParent, "the request keeps the trace context it was created in")

	_, err = f.gate.Decide(f.ctx, id, approval.Decision{Token: f.Token(id, "zoe", approval.VerdictApprove), Verdict: approval.VerdictApprove})
	require.ErrorIs(t, err, approval.ErrNotEligible)
	f.clock.Advance(4 * time.Minute)
	_, err = f.Decide(id, "alice", approval.VerdictApprove)
	require.NoError(t, err)
	_, err = f.Decide(id, "bob", approval.VerdictApprove)
	require.NoError(t, err)
	r, err := f.gate.Wait(f.ctx, id)
	require.NoError(t, err)
	require.Equal(t, approval.StatusApproved, r.Status)
	_, err = f.gate.Tick(f.ctx, 0)
	require.NoError(t, err)
	// Every notification fails once and is retried: move the clock on
	// until each has had its second attempt.
	deadline := time.Now().Add(10 * time.Second)
	for !allRetried(ch, 4+1) {
		require.True(t, time.Now().Before(deadline), "the retries never came")
		// A millisecond at a time: far inside the claims' leases, so no
		// first attempt is claimed twice.
		f.clock.Advance(time.Millisecond)
		time.Sleep(2 * time.Millisecond)
	}
	require.NoError(t, f.gate.Close(context.Background()), "Close waits for the observer")

	unmatched := obs.of(approval.ObserveUnmatched)
	require.Len(t, unmatched, 1, "the Guard no policy matched is counted, and reported at Close")
	require.Equal(t, 1, unmatched[0].Count)
	guards := obs.of(approval.ObserveGuard)
	require.Len(t, guards, 1)
	require.Equal(t, string(approval.OutcomePending), guards[0].Outcome)
	require.Equal(t, []string{"high_spend"}, guards[0].Policies)
	require.Equal(t, id, guards[0].RequestID)
	require.Equal(t, traceParent, guards[0].TraceParent)
	require.False(t, guards[0].Start.IsZero())
	require.Positive(t, guards[0].Duration)

	created := obs.of(approval.ObserveCreated)
	require.Len(t, created, 1)
	require.Equal(t, approval.Observation{Kind: approval.ObserveCreated, RequestID: id, Policies: []string{"high_spend"},
		TraceParent: traceParent, Outcome: string(approval.StatusPending)}, created[0])

	decides := obs.of(approval.ObserveDecide)
	require.Len(t, decides, 3)
	require.Equal(t, approval.ObservedRejected, decides[0].Outcome)
	require.Equal(t, "not_eligible", decides[0].Class)
	require.ErrorIs(t, decides[0].Err, approval.ErrNotEligible)
	require.Equal(t, traceParent, decides[0].TraceParent, "a refusal after the request was read joins its trace")
	require.Equal(t, []string{"high_spend"}, decides[0].Policies)
	for _, d := range decides[1:] {
		require.Equal(t, approval.ObservedAccepted, d.Outcome)
		require.Empty(t, d.Class)
		require.Equal(t, traceParent, d.TraceParent)
		require.Equal(t, []string{"high_spend"}, d.Policies)
	}

	resolved := obs.of(approval.ObserveResolved)
	require.Len(t, resolved, 1)
	require.Equal(t, approval.Observation{Kind: approval.ObserveResolved, RequestID: id, Policies: []string{"high_spend"},
		TraceParent: traceParent, Outcome: string(approval.StatusApproved), Duration: 4 * time.Minute}, resolved[0])

	waits := obs.of(approval.ObserveWait)
	require.Len(t, waits, 1)
	require.Equal(t, string(approval.StatusApproved), waits[0].Outcome)
	require.Equal(t, traceParent, waits[0].TraceParent)

	ticks := obs.of(approval.ObserveTick)
	require.Len(t, ticks, 1)
	require.NoError(t, ticks[0].Err)

	// Four approvers notified of the request and two of the resolution
	// (the requester has no channel address here, so count by outcome):
	// each delivery fails once, then goes.
	var failed, delivered int
	for _, d := range obs.of(approval.ObserveDelivery) {
		require.Equal(t, "slack", d.Channel)
		require.Equal(t, id, d.RequestID)
		require.Equal(t, traceParent, d.TraceParent)
		switch d.Outcome {
		case approval.ObservedFailed:
			failed++
			require.Equal(t, 1, d.Attempt)
			require.Error(t, d.Err)
		case approval.ObservedDelivered:
			delivered++
			require.Equal(t, 2, d.Attempt)
			require.NoError(t, d.Err)
		default:
			t.Fatalf("unexpected delivery outcome %q", d.Outcome)
		}
	}
	require.Positive(t, delivered)
	require.Equal(t, failed, delivered)
	for _, sent := range ch.attempts() {
		require.Equal(t, traceParent, sent[0].TraceParent, "the channel gets the trace context to propagate")
	}
}

// TestObserverIsIsolated: an Observer that panics, or blocks for ever,
// changes nothing a caller sees: Guard and Decide answer at once, and the
// observations that could not wait are dropped and counted.
func TestObserverIsIsolated(t *testing.T) {
	t.Run("panics", func(t *testing.T) {
		var log testkit.Buffer
		obs := panicObserver{}
		f := newFixture(t, func(c *approval.Config) {
			c.Observer = obs
			c.Logger = slog.New(slog.NewTextHandler(&log, nil))
		})
		id := f.Pending(transfer(5000))
		require.Empty(t, f.Get(id).TraceParent, "a TraceParent that panicked stores none")
		_, err := f.Decide(id, "alice", approval.VerdictApprove)
		require.NoError(t, err)
		r, err := f.Decide(id, "bob", approval.VerdictApprove)
		require.NoError(t, err)
		require.Equal(t, approval.StatusApproved, r.Status)
		require.NoError(t, f.gate.Close(context.Background()))
		require.Contains(t, log.String(), "observer panicked")
		require.Contains(t, log.String(), "TraceParent panicked")
	})

	t.Run("blocks", func(t *testing.T) {
		release := make(chan struct{})
		obs := &blockingObserver{release: release, entered: make(chan struct{}, 1)}
		f := newFixture(t, func(c *approval.Config) {
			c.Observer = obs
			c.ObserverQueue = 4
		})
		ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
		defer cancel()
		start := time.Now()
		id := f.Pending(transfer(5000))
		<-obs.entered // the observer is now stuck in its first Observe
		for i := range 20 {
			_, err := f.gate.Guard(ctx, transfer(float64(2000+i)))
			require.NoError(t, err)
		}
		_, err := f.Decide(id, "alice", approval.VerdictApprove)
		require.NoError(t, err)
		r, err := f.Decide(id, "bob", approval.VerdictApprove)
		require.NoError(t, err)
		require.Equal(t, approval.StatusApproved, r.Status)
		require.Less(t, time.Since(start), 5*time.Second, "nothing waited for the observer")

		close(release)
		require.NoError(t, f.gate.Close(context.Background()))
		obs.mu.Lock()
		defer obs.mu.Unlock()
		dropped := 0
		for _, o := range obs.seen {
			if o.Kind == approval.ObserveDropped {
				dropped += o.Count
			}
		}
		// 21 Guards and 21 creations, 2 Decides, 1 resolution: at most the
		// queue and the one in hand were kept.
		require.Positive(t, dropped)
		require.Equal(t, 21+21+2+1, len(obs.seen)-countKind(obs.seen, approval.ObserveDropped)+dropped,
			"every observation was heard or counted dropped")
	})

	t.Run("a closed gate's observations wait for nobody", func(t *testing.T) {
		obs := &recordingObserver{}
		f := newFixture(t, func(c *approval.Config) { c.Observer = obs; c.ObserverQueue = 2 })
		require.NoError(t, f.gate.Close(context.Background()))
		for range 10 {
			_, err := f.gate.Guard(f.ctx, approval.Action{Name: "deploy", RequestedBy: "user-1"})
			require.NoError(t, err)
		}
	})
}

// allRetried reports whether at least n notifications were sent and
// every one was attempted twice.
func allRetried(ch *flakyChannel, n int) bool {
	at := ch.attempts()
	if len(at) < n {
		return false
	}
	for _, calls := range at {
		if len(calls) < 2 {
			return false
		}
	}
	return true
}

func countKind(os []approval.Observation, k approval.ObservationKind) int {
	n := 0
	for _, o := range os {
		if o.Kind == k {
			n++
		}
	}
	return n
}

type panicObserver struct{}

func (panicObserver) Observe(context.Context, approval.Observation) { panic("observer bug") }
func (panicObserver) TraceParent(context.Context, time.Time) string { panic("trace bug") }

type blockingObserver struct {
	release <-chan struct{}
	entered chan struct{}
	mu      sync.Mutex
	seen    []approval.Observation
}

func (o *blockingObserver) Observe(_ context.Context, ob approval.Observation) {
	select {
	case o.entered <- struct{}{}:
		<-o.release
	default:
	}
	o.mu.Lock()
	o.seen = append(o.seen, ob)
	o.mu.Unlock()
}

// TestObserverTraceParentChecked: a TraceParent that is not a well-formed
// W3C traceparent is not stored.
func TestObserverTraceParentChecked(t *testing.T) {
	for _, tp := range []string{
		"",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",          // no flags
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",       // another version
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",       // zero trace ID
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",       // zero parent ID
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",       // upper case
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\nX: y", // header injection
	} {
		obs := &recordingObserver{trace: tp}
		f := newFixture(t, func(c *approval.Config) { c.Observer = obs })
		id := f.Pending(transfer(5000))
		require.Empty(t, f.Get(id).TraceParent, "%q", tp)
	}
	_, err := approval.New(approval.Config{Store: newFixture(t).store, SigningKey: newFixture(t).priv, Observer: &recordingObserver{}, ObserverQueue: -1})
	require.ErrorIs(t, err, approval.ErrInvalidConfig)
	require.True(t, errors.Is(err, approval.ErrInvalidConfig))
}

// mintingObserver hands out a new trace context on each call, and keeps
// the start each was asked with.
type mintingObserver struct {
	recordingObserver
	starts map[string]time.Time
}

func (o *mintingObserver) TraceParent(_ context.Context, start time.Time) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	tp := fmt.Sprintf("00-4bf92f3577b34da6a3ce929d0e0e4736-%016x-01", len(o.starts)+1)
	o.starts[tp] = start
	return tp
}

// TestObserverNewTraceParent: the Guard that creates a request stores the
// trace context it was given, at its start, and says so; a Guard the
// store answers with that request says both which context it was given
// and which request's answered it.
func TestObserverNewTraceParent(t *testing.T) {
	obs := &mintingObserver{starts: map[string]time.Time{}}
	f := newFixture(t, func(c *approval.Config) { c.Observer = obs })
	id := f.Pending(transfer(5000))
	stored := f.Get(id).TraceParent
	res, err := f.gate.Guard(f.ctx, transfer(5000))
	require.NoError(t, err)
	require.Equal(t, id, res.RequestID, "asked again: the same request")
	require.NoError(t, f.gate.Close(context.Background()))

	guards := obs.of(approval.ObserveGuard)
	require.Len(t, guards, 2)
	require.Equal(t, stored, guards[0].TraceParent)
	require.Equal(t, stored, guards[0].NewTraceParent, "the request it built was stored")
	require.Equal(t, guards[0].Start, obs.starts[stored], "asked with the Guard's start")
	require.Equal(t, stored, guards[1].TraceParent, "answered by the first request")
	require.NotEqual(t, stored, guards[1].NewTraceParent, "its own request was not stored")
	require.Equal(t, guards[1].Start, obs.starts[guards[1].NewTraceParent])
	require.Len(t, obs.starts, 2)
}
