package approval_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/memstore"
)

// flakyChannel fails the first failures attempts of each notification ID
// with err (a transient error when nil), then succeeds; it records every
// call.
type flakyChannel struct {
	name     string
	failures int
	err      func() error

	mu    sync.Mutex
	calls map[string][]approval.Notification
	ok    chan approval.Notification
}

func newFlakyChannel(name string, failures int, err func() error) *flakyChannel {
	return &flakyChannel{name: name, failures: failures, err: err, calls: map[string][]approval.Notification{},
		ok: make(chan approval.Notification, 10_000)}
}

func (c *flakyChannel) Name() string { return c.name }

func (c *flakyChannel) Send(_ context.Context, n approval.Notification) error {
	c.mu.Lock()
	c.calls[n.ID] = append(c.calls[n.ID], n)
	k := len(c.calls[n.ID])
	c.mu.Unlock()
	if k <= c.failures {
		if c.err != nil {
			return c.err()
		}
		return fmt.Errorf("receiver answered 503 (attempt %d)", k)
	}
	c.ok <- n
	return nil
}

func (c *flakyChannel) attempts() map[string][]approval.Notification {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string][]approval.Notification, len(c.calls))
	for k, v := range c.calls {
		out[k] = append([]approval.Notification(nil), v...)
	}
	return out
}

// outboxFixture is a fixture whose gate delivers through memstore's
// outbox, polling often, so that tests drive retries with the clock.
func outboxFixture(t *testing.T, chans []approval.Channel, mod ...func(*approval.Config)) *fixture {
	var claims *claimWatch
	mods := append([]func(*approval.Config){func(c *approval.Config) {
		claims = &claimWatch{Store: c.Store.(*memstore.Store), seen: make(chan struct{}, 1)}
		c.Store = claims
		c.Channels = chans
		c.PollInterval = 5 * time.Millisecond
		c.BaseURL = "https://approvals.example.com"
	}}, mod...)
	mods = append(mods, func(c *approval.Config) {
		if _, ok := c.Store.(approval.Outbox); !ok {
			// The gate's in-memory outbox: watch it from inside.
			approval.WatchMemoryOutbox(c, claims.claimed, claims.settle)
		}
	})
	f := newFixture(t, mods...)
	f.claims = claims
	for _, ch := range chans {
		claims.names = append(claims.names, ch.Name())
	}
	return f
}

// claimWatch is a memstore that records the outbox claims of the delivery
// goroutines, the signal that they have looked at the outbox, at the
// clock's time, since a point of the test; and the claimed messages not
// yet settled.
type claimWatch struct {
	*memstore.Store
	names []string // of the gate's channels

	mu    sync.Mutex
	begun int             // claims begun so far
	ended map[int]claimed // by the order they began in
	held  map[string]bool // IDs claimed and not settled since
	seen  chan struct{}   // receives when a claim or a settle ends
}

type claimed struct {
	channel string // "" for the goroutine that expands notices
	n       int    // messages claimed
}

func (s *claimWatch) ClaimOutbox(ctx context.Context, q approval.OutboxClaim) ([]approval.OutboxMessage, error) {
	s.mu.Lock()
	seq := s.begun
	s.begun++
	s.mu.Unlock()
	msgs, err := s.Store.ClaimOutbox(ctx, q)
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	s.record(seq, q.Channel, ids)
	return msgs, err
}

// claimed records a claim of the gate's in-memory outbox, which begins and
// ends here.
func (s *claimWatch) claimed(channel string, ids []string) {
	s.mu.Lock()
	seq := s.begun
	s.begun++
	s.mu.Unlock()
	s.record(seq, channel, ids)
}

// record records the end of claim seq of channel, which claimed ids.
func (s *claimWatch) record(seq int, channel string, ids []string) {
	s.mu.Lock()
	if s.ended == nil {
		s.ended = map[int]claimed{}
	}
	s.ended[seq] = claimed{channel, len(ids)}
	if s.held == nil {
		s.held = map[string]bool{}
	}
	for _, id := range ids {
		s.held[id] = true
	}
	s.mu.Unlock()
	s.ping()
}

func (s *claimWatch) SettleOutbox(ctx context.Context, st approval.OutboxSettle) error {
	err := s.Store.SettleOutbox(ctx, st)
	s.settle(st.ID)
	return err
}

// settle records the settlement of message id.
func (s *claimWatch) settle(id string) {
	s.mu.Lock()
	delete(s.held, id)
	s.mu.Unlock()
	s.ping()
}

func (s *claimWatch) ping() {
	select {
	case s.seen <- struct{}{}:
	default:
	}
}

// settled waits until every claimed message has been settled.
func (s *claimWatch) settled(t *testing.T) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		s.mu.Lock()
		n := len(s.held)
		s.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-s.seen:
		case <-deadline:
			t.Fatalf("%d claimed outbox messages not settled within 10s", n)
		}
	}
}

// next waits for a claim of channel that begins after the call to end,
// and returns how many messages it claimed.
func (s *claimWatch) next(t *testing.T, channel string) int {
	t.Helper()
	s.mu.Lock()
	from := s.begun
	s.mu.Unlock()
	deadline := time.After(10 * time.Second)
	for {
		s.mu.Lock()
		for seq, c := range s.ended {
			if seq >= from && c.channel == channel {
				s.mu.Unlock()
				return c.n
			}
		}
		s.mu.Unlock()
		select {
		case <-s.seen:
		case <-deadline:
			t.Fatalf("no claim of the outbox for channel %q within 10s", channel)
		}
	}
}

// outboxKinds are the outboxes a gate delivers from: its Store's
// (memstore's), or, for a Store without one, the gate's in memory, which
// keeps the same promises while the process lives.
var outboxKinds = map[string]func(*approval.Config){
	"store":  func(*approval.Config) {},
	"memory": inProcess,
}

// advanceUntil moves the fake clock a step at a time until cond holds.
// After each step the delivery goroutines (the one that expands notices
// and each channel's) look at the outbox and settle what they claimed
// before the clock moves again: a clock that leaps while a send is in
// flight would end its lease.
func advanceUntil(t *testing.T, f *fixture, step time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 20s")
		}
		f.clock.Advance(step)
		for _, name := range append([]string{""}, f.claims.names...) {
			f.claims.next(t, name)
		}
		f.claims.settled(t)
	}
}

// TestOutboxRetriesUntilDelivered: a delivery that fails is retried with
// backoff, under the same ID (the idempotency key) and fresh links, until
// it gets through; every attempt is audited once.
func TestOutboxRetriesUntilDelivered(t *testing.T) {
	t.Parallel()
	for name, kind := range outboxKinds {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ch := newFlakyChannel("hook", 2, nil)
			f := outboxFixture(t, []approval.Channel{ch}, kind)
			id := f.Pending(transfer(5000)) // alice, bob, carol, dave

			advanceUntil(t, f, time.Minute, func() bool { return len(ch.ok) == 4 })
			require.NoError(t, closeWithin(t, f.gate, 10*time.Second))

			calls := ch.attempts()
			require.Len(t, calls, 4, "one ID per recipient and channel")
			for nid, ns := range calls {
				require.Len(t, ns, 3, nid)
				for i, n := range ns {
					require.Equal(t, nid, n.ID, "a retry carries the same ID")
					require.Equal(t, i+1, n.Attempt)
					require.Equal(t, id, n.RequestID)
					claims, err := f.gate.VerifyToken(tokenOf(t, n.ApproveURL))
					require.NoError(t, err, "each attempt carries working links")
					require.Equal(t, n.Recipient, claims.Subject)
				}
			}
			evs := f.events()
			require.Equal(t, 8, countReasons(evs, approval.EventNotificationFailed, "; next attempt at "))
			require.Equal(t, 4, countReasons(evs, approval.EventNotificationFailed, ": attempt 1 of 8: receiver answered 503"))
			require.Equal(t, 4, countReasons(evs, approval.EventNotificationSent, "via hook (attempt 3)"))
			page, err := f.gate.ListOutbox(f.ctx, approval.OutboxQuery{})
			require.NoError(t, err)
			require.Empty(t, page.Messages, "delivered messages leave the outbox")
		})
	}
}

// TestOutboxDeadLetterAndRedrive: after its last attempt a message is
// dead-lettered and audited, listed for the operator, and sent again by
// Redrive.
func TestOutboxDeadLetterAndRedrive(t *testing.T) {
	t.Parallel()
	for name, kind := range outboxKinds {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ch := newFlakyChannel("hook", 2, nil)
			f := outboxFixture(t, []approval.Channel{ch}, kind, func(c *approval.Config) {
				c.Delivery.ChannelRetry = map[string]approval.RetryPolicy{"hook": {MaxAttempts: 2, InitialInterval: time.Second}}
			})
			f.Pending(transfer(5000))

			var dead approval.OutboxPage
			advanceUntil(t, f, time.Minute, func() bool {
				var err error
				dead, err = f.gate.ListOutbox(f.ctx, approval.OutboxQuery{State: approval.OutboxDead})
				require.NoError(t, err)
				return len(dead.Messages) == 4
			})
			for _, m := range dead.Messages {
				require.Equal(t, 2, m.Attempts)
				require.Equal(t, "hook", m.Channel)
				require.Contains(t, m.LastError, "receiver answered 503 (attempt 2)")
			}
			evs := f.events()
			require.Equal(t, 4, countReasons(evs, approval.EventNotificationDeadLettered, ": attempt 2 of 2: receiver answered 503 (attempt 2); dead-lettered (no attempt left)"))
			require.Empty(t, ch.ok)

			// A page at a time, as an operator would.
			first, err := f.gate.ListOutbox(f.ctx, approval.OutboxQuery{State: approval.OutboxDead, Limit: 3})
			require.NoError(t, err)
			require.Len(t, first.Messages, 3)
			second, err := f.gate.ListOutbox(f.ctx, approval.OutboxQuery{State: approval.OutboxDead, Cursor: first.Next})
			require.NoError(t, err)
			require.Len(t, second.Messages, 1)
			require.Empty(t, second.Next)

			var ids []string
			for _, m := range dead.Messages {
				ids = append(ids, m.ID)
			}
			n, err := f.gate.Redrive(f.ctx, "ops-oncall", ids...)
			require.NoError(t, err)
			require.Equal(t, 4, n)
			_, err = f.gate.Redrive(f.ctx, "ops-oncall", ids[0])
			require.ErrorIs(t, err, approval.ErrNotFound, "no longer a dead letter")

			advanceUntil(t, f, time.Second, func() bool { return len(ch.ok) == 4 })
			require.NoError(t, closeWithin(t, f.gate, 10*time.Second))
			evs = f.events()
			require.Equal(t, 4, countReasons(evs, approval.EventNotificationRedriven, "outbox message "))
			for _, e := range evs {
				if e.Type == approval.EventNotificationRedriven {
					require.Equal(t, "ops-oncall", e.Actor)
					require.NotEmpty(t, e.RequestID)
				}
			}
			require.Equal(t, 4, countReasons(evs, approval.EventNotificationSent, "via hook"))
			require.Zero(t, countReasons(evs, approval.EventNotificationSent, "(attempt"), "a redrive counts attempts from zero")
		})
	}
}

// TestOutboxPermanentAndRetryAfter: a permanent refusal is dead-lettered
// at its first attempt; a Retry-After postpones the next attempt at least
// that long.
func TestOutboxPermanentAndRetryAfter(t *testing.T) {
	t.Parallel()
	t.Run("permanent", func(t *testing.T) {
		t.Parallel()
		ch := newFlakyChannel("hook", 1, func() error { return approval.Permanent(errors.New("receiver answered 410 Gone")) })
		f := outboxFixture(t, []approval.Channel{ch})
		f.Pending(transfer(5000))
		advanceUntil(t, f, time.Second, func() bool {
			return countReasons(f.events(), approval.EventNotificationDeadLettered, "dead-lettered (refused for good)") == 4
		})
		require.Len(t, ch.attempts(), 4)
		for _, ns := range ch.attempts() {
			require.Len(t, ns, 1)
		}
	})
	t.Run("retry after", func(t *testing.T) {
		t.Parallel()
		ch := newFlakyChannel("hook", 1, func() error { return approval.RetryAfter(errors.New("429"), 2*time.Hour) })
		f := outboxFixture(t, []approval.Channel{ch}, func(c *approval.Config) {
			c.Delivery.Retry = approval.RetryPolicy{MaxInterval: 3 * time.Hour}
		})
		start := f.clock.Now()
		f.Pending(transfer(5000))
		var pending approval.OutboxPage
		advanceUntil(t, f, time.Millisecond, func() bool {
			var err error
			pending, err = f.gate.ListOutbox(f.ctx, approval.OutboxQuery{Channel: "hook"})
			require.NoError(t, err)
			n := 0
			for _, m := range pending.Messages {
				if m.Attempts == 1 {
					n++
				}
			}
			return n == 4
		})
		var due time.Time
		for _, m := range pending.Messages {
			require.False(t, m.NextAttempt.Before(start.Add(2*time.Hour)), "next attempt %s", m.NextAttempt)
			if m.NextAttempt.After(due) {
				due = m.NextAttempt
			}
		}
		f.clock.Advance(time.Hour)
		require.Zero(t, f.claims.next(t, "hook"), "an hour on, the channel finds nothing due")
		require.Empty(t, ch.ok, "not before the receiver's Retry-After")
		// To the next attempt at once, then in small steps: a clock that
		// leaps while a send is in flight ends its lease (SendTimeout plus
		// a minute), and the message is sent again, as it should be.
		f.clock.Advance(due.Sub(f.clock.Now()))
		advanceUntil(t, f, time.Millisecond, func() bool { return len(ch.ok) == 4 })
		require.Zero(t, f.claims.next(t, "hook"), "nothing is left to send")
		require.Len(t, ch.ok, 4, "each delivery sent once")
	})
}

// TestOutboxStuckChannelDelaysNoOther: a channel whose sends never return
// is cut by SendTimeout, does not hold up the other channel, and what it
// has not delivered stays in the outbox, not lost, when Close gives up.
func TestOutboxStuckChannelDelaysNoOther(t *testing.T) {
	t.Parallel()
	stuck := newStuckChannel("stuck")
	healthy := newCountChannel("healthy")
	f := outboxFixture(t, []approval.Channel{stuck, healthy}, func(c *approval.Config) {
		c.Delivery.SendTimeout = 250 * time.Millisecond
	})
	t.Cleanup(stuck.unblock)
	for i := range 50 {
		f.Pending(transfer(float64(2000 + i)))
	}
	healthy.awaitSent(t, 200, 10*time.Second)
	// Polled: the audit trail is the only report of a cut send, and of a
	// sent message's settlement.
	var evs []approval.AuditEvent
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(20 * time.Second)
	for evs = f.events(); countReasons(evs, approval.EventNotificationFailed, "via stuck: attempt 1 of 8: Send did not return in time") < 3 ||
		countReasons(evs, approval.EventNotificationSent, "via healthy") < 200; evs = f.events() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatal("the stuck sends were not cut")
		}
	}
	require.Equal(t, 200, countReasons(evs, approval.EventNotificationSent, "via healthy"))
	require.LessOrEqual(t, stuck.calls.Load(), int64(8), "a blocked channel is probed, not called for every message")

	page, err := f.gate.ListOutbox(f.ctx, approval.OutboxQuery{Channel: "stuck", Limit: 1000})
	require.NoError(t, err)
	require.Len(t, page.Messages, 200, "the stuck channel's messages wait in the outbox")
}

func tokenOf(t *testing.T, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	require.NoError(t, err)
	tok := u.Query().Get("token")
	require.NotEmpty(t, tok, "no token in %q", link)
	return tok
}
