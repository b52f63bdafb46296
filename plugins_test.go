package approval_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// Host code (channels, the directory, the audit sink) may panic, hang or
// ignore its context; these tests hold the gate to containing it.

// stuckChannel is a Channel whose Send ignores its context: it blocks
// until unblock. Tests unblock it in a cleanup registered after the
// fixture's, so that it runs before the fixture closes the gate.
type stuckChannel struct {
	name    string
	calls   atomic.Int64
	entered chan struct{} // gets one value per Send begun, if there is room
	release chan struct{}
}

func newStuckChannel(name string) *stuckChannel {
	return &stuckChannel{name: name, entered: make(chan struct{}, 1000), release: make(chan struct{})}
}

func (c *stuckChannel) Name() string { return c.name }

func (c *stuckChannel) Send(context.Context, approval.Notification) error {
	c.calls.Add(1)
	select {
	case c.entered <- struct{}{}:
	default:
	}
	<-c.release
	return nil
}

func (c *stuckChannel) unblock() {
	select {
	case <-c.release:
	default:
		close(c.release)
	}
}

// countChannel is a healthy Channel that passes on what it is sent.
type countChannel struct {
	name string
	got  chan approval.Notification
}

func newCountChannel(name string) *countChannel {
	return &countChannel{name: name, got: make(chan approval.Notification, 10_000)}
}

func (c *countChannel) Name() string { return c.name }

func (c *countChannel) Send(_ context.Context, n approval.Notification) error {
	c.got <- n
	return nil
}

// awaitSent waits for n notifications on c, failing the test after limit.
func (c *countChannel) awaitSent(t *testing.T, n int, limit time.Duration) {
	t.Helper()
	timeout := time.After(limit)
	for i := range n {
		select {
		case <-c.got:
		case <-timeout:
			t.Fatalf("channel %s got %d of %d notifications within %s", c.name, i, n, limit)
		}
	}
}

type panicChannel struct{}

func (panicChannel) Name() string { return "panicky" }

func (panicChannel) Send(context.Context, approval.Notification) error { panic("smtp boom") }

type panicNameChannel struct{ panicChannel }

func (panicNameChannel) Name() string { panic("no name") }

// hostDirectory is financeDir with hooks: each one, if set, replaces the
// method.
type hostDirectory struct {
	isMember func(ctx context.Context) (bool, error)
	members  func(ctx context.Context) ([]string, error)
}

func (d hostDirectory) IsMember(ctx context.Context, a approval.Approver, user string) (bool, error) {
	if d.isMember != nil {
		return d.isMember(ctx)
	}
	return financeDir.IsMember(ctx, a, user)
}

func (d hostDirectory) Members(ctx context.Context, a approval.Approver) ([]string, error) {
	if d.members != nil {
		return d.members(ctx)
	}
	return financeDir.Members(ctx, a)
}

// auditFeed mirrors every committed event to a Go channel, so that a test
// waits for the dispatcher's audit writes without sleeping.
func auditFeed(c *approval.Config) <-chan approval.AuditEvent {
	feed := make(chan approval.AuditEvent, 10_000)
	c.Audit = approval.AuditSinkFunc(func(_ context.Context, evs []approval.AuditEvent) error {
		for _, e := range evs {
			feed <- e
		}
		return nil
	})
	return feed
}

// notifications weighs each notification outcome 1.
func notifications(e approval.AuditEvent) int {
	if e.Type == approval.EventNotificationSent || e.Type == approval.EventNotificationFailed {
		return 1
	}
	return 0
}

// await reads feed until the weights of the events it read add up to n,
// and returns the events of positive weight.
func await(t *testing.T, feed <-chan approval.AuditEvent, n int, weight func(approval.AuditEvent) int) []approval.AuditEvent {
	t.Helper()
	timeout := time.After(20 * time.Second)
	var got []approval.AuditEvent
	for sum := 0; sum < n; {
		select {
		case e := <-feed:
			if w := weight(e); w > 0 {
				sum += w
				got = append(got, e)
			}
		case <-timeout:
			t.Fatalf("got %d audit events, not the %d expected, within 20s", len(got), n)
		}
	}
	return got
}

// within runs fn and fails the test if it has not returned after limit
// (fn is then left running: the test has failed).
func within[T any](t *testing.T, limit time.Duration, what string, fn func() T) (T, time.Duration) {
	t.Helper()
	start := time.Now()
	done := make(chan T, 1)
	go func() { done <- fn() }()
	select {
	case v := <-done:
		return v, time.Since(start)
	case <-time.After(limit):
		t.Fatalf("%s had not returned after %s", what, limit)
		panic("unreachable")
	}
}

func countReasons(evs []approval.AuditEvent, typ approval.EventType, substr string) int {
	n := 0
	for _, e := range evs {
		if e.Type == typ && strings.Contains(e.Reason, substr) {
			n++
		}
	}
	return n
}

func closeWithin(t *testing.T, g *approval.Gate, limit time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	return g.Close(ctx)
}

const scenarioEnv = "APPROVAL_TEST_HOST_PANIC"

// panicScenarios each make host code panic, and check that the gate turns
// the panic into an audited failure. They run in a child process, so that
// a panic that escapes fails the test rather than killing the run.
var panicScenarios = map[string]func(t *testing.T){
	"channel Send": func(t *testing.T) {
		healthy := newCountChannel("healthy")
		f := newFixture(t, inProcess, func(c *approval.Config) { c.Channels = []approval.Channel{panicChannel{}, healthy} })
		f.Pending(transfer(5000))
		require.NoError(t, closeWithin(t, f.gate, 10*time.Second))
		require.Len(t, healthy.got, 4, "the other channel still delivers")
		evs := f.events()
		require.Equal(t, 4, countReasons(evs, approval.EventNotificationFailed, "via panicky: attempt 1 of 8: Send panicked: smtp boom"))
		require.Equal(t, 4, countReasons(evs, approval.EventNotificationSent, "via healthy"))
		// Their retries, not due yet, are lost with the in-memory outbox,
		// and audited so.
		require.Equal(t, 4, countReasons(evs, approval.EventNotificationFailed, "via panicky: gate closed before delivery"))
	},
	"channel Name": func(t *testing.T) {
		f := newFixture(t)
		_, err := approval.New(approval.Config{Store: f.store, SigningKey: f.priv, Channels: []approval.Channel{panicNameChannel{}}})
		require.ErrorIs(t, err, approval.ErrInvalidConfig)
		require.ErrorContains(t, err, "Name panicked: no name")
	},
	"directory Members": func(t *testing.T) {
		rec := newCountChannel("rec")
		f := newFixture(t, inProcess, func(c *approval.Config) {
			c.Channels = []approval.Channel{rec}
			c.Directory = hostDirectory{members: func(context.Context) ([]string, error) { panic("ldap boom") }}
		})
		f.Pending(transfer(5000))
		require.NoError(t, closeWithin(t, f.gate, 10*time.Second))
		require.Empty(t, rec.got)
		evs := f.events()
		require.Equal(t, 1, countReasons(evs, approval.EventNotificationFailed,
			"approval.requested: attempt 1 of 8: resolve recipients: directory: group:finance: Members panicked: ldap boom"))
		require.Equal(t, 1, countReasons(evs, approval.EventNotificationFailed,
			"approval.requested: gate closed before delivery (recipients not resolved)"))
	},
	"directory IsMember": func(t *testing.T) {
		f := newFixture(t, func(c *approval.Config) {
			c.Directory = hostDirectory{isMember: func(context.Context) (bool, error) { panic("ldap boom") }}
		})
		id := f.Pending(transfer(5000))
		short, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// A context that cannot end calls the directory inline; one that
		// can calls it on a goroutine: both must recover.
		for _, ctx := range []context.Context{context.Background(), short} {
			_, err := f.gate.Decide(ctx, id, approval.Decision{Token: f.Token(id, "alice", approval.VerdictApprove), Verdict: approval.VerdictApprove})
			require.ErrorContains(t, err, "IsMember panicked: ldap boom")
			require.NotErrorIs(t, err, approval.ErrNotEligible, "an internal error, not a verdict on alice")
			r := f.Get(id)
			require.Empty(t, r.Votes, "never counted")
			require.Equal(t, approval.StatusPending, r.Status)
			last := f.lastEvent()
			require.Equal(t, approval.EventDecisionRejected, last.Type)
			require.Equal(t, "alice", last.Actor)
			require.Contains(t, last.Reason, "IsMember panicked: ldap boom")
		}
	},
	"audit sink": func(t *testing.T) {
		f := newFixture(t, func(c *approval.Config) {
			c.Audit = approval.AuditSinkFunc(func(context.Context, []approval.AuditEvent) error { panic("siem boom") })
		})
		res, err := f.gate.Guard(f.ctx, transfer(5000))
		require.NoError(t, err)
		require.Equal(t, approval.OutcomePending, res.Status)
		require.NotEmpty(t, res.RequestID, "the caller keeps the request ID")
		r, err := f.Decide(res.RequestID, "alice", approval.VerdictApprove)
		require.NoError(t, err)
		require.Len(t, r.Votes, 1)
		evs := f.events()
		require.Equal(t, 2, countReasons(evs, approval.EventAuditSinkFailed, "Append panicked: siem boom"))
		for _, e := range evs {
			if e.Type == approval.EventAuditSinkFailed {
				require.Equal(t, res.RequestID, e.RequestID)
			}
		}
	},
}

func TestHostPanicsAreContained(t *testing.T) {
	if name := os.Getenv(scenarioEnv); name != "" {
		run, ok := panicScenarios[name]
		require.True(t, ok, "unknown scenario %q", name)
		run(t)
		t.Logf("scenario %q contained", name)
		return
	}
	t.Parallel()
	for name := range panicScenarios {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHostPanicsAreContained$", "-test.v", "-test.count=1", "-test.timeout=90s")
			cmd.Env = append(os.Environ(), scenarioEnv+"="+name)
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "the child process failed or crashed:\n%s", out)
			require.Contains(t, string(out), "scenario \""+name+"\" contained")
		})
	}
}

// TestStuckChannelDelaysNoOther: with the in-memory outbox (a Store
// without one), a channel whose sends never return is cut by SendTimeout
// and blocked, the other channel delivers everything, and what the stuck
// one could not deliver is audited when Close drops it.
func TestStuckChannelDelaysNoOther(t *testing.T) {
	t.Parallel()
	stuck := newStuckChannel("stuck")
	healthy := newCountChannel("healthy")
	f := newFixture(t, inProcess, func(c *approval.Config) {
		c.Channels = []approval.Channel{stuck, healthy}
		c.Delivery.SendTimeout = 250 * time.Millisecond // long enough for a healthy send on a busy machine
		c.Delivery.SendConcurrency = 1
	})
	t.Cleanup(stuck.unblock)
	for i := range 50 {
		f.Pending(transfer(float64(2000 + i))) // 4 recipients each
	}
	healthy.awaitSent(t, 200, 10*time.Second)
	require.NoError(t, closeWithin(t, f.gate, 10*time.Second), "every due notification was attempted")

	evs := f.events()
	require.Equal(t, 200, countReasons(evs, approval.EventNotificationSent, "via healthy"))
	require.Equal(t, 3, countReasons(evs, approval.EventNotificationFailed, "via stuck: attempt 1 of 8: Send did not return in time"))
	require.EqualValues(t, 3, stuck.calls.Load(), "a blocked channel is not called until its probe is due")
	require.Equal(t, 200, countReasons(evs, approval.EventNotificationFailed, "via stuck: gate closed before delivery"),
		"each of the stuck channel's is audited when Close drops it")
}

// TestBlockedChannelUnblocksOnProbe: a blocked channel's deliveries wait
// in the in-memory outbox until its probe is due; the probe gets through
// and they all go.
func TestBlockedChannelUnblocksOnProbe(t *testing.T) {
	t.Parallel()
	ch := newStuckChannel("flaky")
	var feed <-chan approval.AuditEvent
	f := newFixture(t, inProcess, func(c *approval.Config) {
		c.Channels = []approval.Channel{ch}
		c.Delivery.SendTimeout = 250 * time.Millisecond // long enough for a healthy send on a busy machine
		c.Delivery.SendConcurrency = 1
		feed = auditFeed(c)
	})
	t.Cleanup(ch.unblock)

	f.Pending(transfer(5000))
	evs := await(t, feed, 3, notifications)
	require.Equal(t, 3, countReasons(evs, approval.EventNotificationFailed, "attempt 1 of 8: Send did not return in time"))
	require.EqualValues(t, 3, ch.calls.Load())

	ch.unblock()              // the channel answers again, but no probe is due yet
	f.Pending(transfer(5001)) // its deliveries wait
	f.clock.Advance(time.Minute)
	probe := f.clock.Now()
	f.Pending(transfer(5002))
	evs = await(t, feed, 12, notifications)
	require.Equal(t, 12, countReasons(evs, approval.EventNotificationSent, "via flaky"), "the probe got through and unblocked it")
	require.Equal(t, 3, countReasons(evs, approval.EventNotificationSent, "(attempt 2)"), "the sends that timed out were retried")
	for _, e := range evs {
		require.False(t, e.At.Before(probe), "nothing was sent before the probe was due")
	}
	require.EqualValues(t, 3+12, ch.calls.Load())
}

// TestMemoryOutboxIsBounded: the in-memory outbox holds at most
// MemoryLimit notices and MemoryLimit deliveries per channel; each
// notification that does not fit, or that Close leaves, is audited as
// notification.failed, none dropped silently.
func TestMemoryOutboxIsBounded(t *testing.T) {
	t.Parallel()
	t.Run("channel", func(t *testing.T) {
		t.Parallel()
		stuck := newStuckChannel("stuck")
		var feed <-chan approval.AuditEvent
		f := newFixture(t, inProcess, func(c *approval.Config) {
			c.Channels = []approval.Channel{stuck}
			c.Delivery.MemoryLimit = 10
			c.Delivery.SendConcurrency = 1
			feed = auditFeed(c)
		})
		t.Cleanup(stuck.unblock)
		f.Pending(transfer(2000))
		<-stuck.entered // one notification in flight, three waiting
		for i := 1; i < 20; i++ {
			f.Pending(transfer(float64(2000 + i)))
		}
		// 80 notifications: ten kept (the one in flight among them), the
		// rest overflow: the channel's deliveries, or the notices (of four
		// each) if expansion fell behind Guard.
		const channelFull, noticesFull = "outbox full (10 deliveries waiting for stuck); not sent", "outbox full (10 notices waiting); not sent"
		await(t, feed, 80-10, func(e approval.AuditEvent) int {
			switch {
			case e.Type != approval.EventNotificationFailed:
				return 0
			case strings.Contains(e.Reason, channelFull):
				return 1
			case strings.Contains(e.Reason, noticesFull):
				return 4
			}
			return 0
		})
		err := closeWithin(t, f.gate, 100*time.Millisecond)
		require.ErrorIs(t, err, context.DeadlineExceeded)

		evs := f.events()
		overflow := countReasons(evs, approval.EventNotificationFailed, channelFull) +
			4*countReasons(evs, approval.EventNotificationFailed, noticesFull)
		require.Equal(t, 70, overflow)
		closed := countReasons(evs, approval.EventNotificationFailed, "via stuck: gate closed before delivery")
		require.Equal(t, 10, closed, "the outbox held no more than its bound, the one in flight included")
		require.Equal(t, 80, overflow+closed, "every notification is accounted for")
		require.Zero(t, countReasons(evs, approval.EventNotificationSent, ""))
		require.EqualValues(t, 1, stuck.calls.Load())
	})
	t.Run("notices", func(t *testing.T) {
		t.Parallel()
		entered, release := make(chan struct{}, 1), make(chan struct{})
		rec := newCountChannel("rec")
		f := newFixture(t, inProcess, func(c *approval.Config) {
			c.Channels = []approval.Channel{rec}
			c.Delivery.MemoryLimit = 5
			c.Directory = hostDirectory{members: func(context.Context) ([]string, error) {
				select {
				case entered <- struct{}{}:
				default:
				}
				<-release // ignores its context
				return nil, nil
			}}
		})
		t.Cleanup(func() { close(release) })
		// Two named users meet the quorum check before it reaches the
		// group, so only delivery asks the directory.
		require.NoError(t, f.gate.SetPolicy("high_spend", approval.Policy{
			Match:             approval.CostAtLeast(1000, "USD"),
			Approvers:         []approval.Approver{approval.User("alice"), approval.User("bob"), approval.Group("finance")},
			RequiredApprovals: 2,
		}))
		f.Pending(transfer(2000))
		<-entered // the first notice holds the expansion
		for i := 1; i < 12; i++ {
			f.Pending(transfer(float64(2000 + i)))
		}
		// Guard audits a notice that does not fit before it returns.
		require.Equal(t, 7, countReasons(f.events(), approval.EventNotificationFailed,
			"approval.requested: outbox full (5 notices waiting); not sent"), "five kept, the one being expanded among them")

		err := closeWithin(t, f.gate, 100*time.Millisecond)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		evs := f.events()
		require.Equal(t, 5, countReasons(evs, approval.EventNotificationFailed,
			"approval.requested: gate closed before delivery (recipients not resolved)"), "four waiting, one being expanded")
		require.Equal(t, 12, countReasons(evs, approval.EventNotificationFailed, ""), "every notice is accounted for")
		require.Empty(t, rec.got)
	})
}

func TestCloseHonoursItsDeadline(t *testing.T) {
	t.Parallel()
	stuck := newStuckChannel("stuck")
	f := newFixture(t, inProcess, func(c *approval.Config) { c.Channels = []approval.Channel{stuck} })
	t.Cleanup(stuck.unblock)
	for i := range 5 {
		f.Pending(transfer(float64(2000 + i)))
	}
	<-stuck.entered
	const deadline = 200 * time.Millisecond
	err, took := within(t, 10*time.Second, "Close with a stuck channel", func() error {
		return closeWithin(t, f.gate, deadline)
	})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, took, deadline+1500*time.Millisecond, "Close returns about when its context ends, plus at most 1s to audit")

	evs := f.events()
	notifications := countReasons(evs, approval.EventNotificationFailed, "via stuck: gate closed before delivery")
	jobs := countReasons(evs, approval.EventNotificationFailed, "approval.requested: gate closed before delivery (recipients not resolved)")
	require.Equal(t, 20, notifications+4*jobs, "every undelivered notification is audited")
	require.NoError(t, f.gate.Close(context.Background()), "a second Close returns at once")

	// A closed gate still guards, and audits what it can no longer send.
	id := f.Pending(transfer(3000))
	last := f.lastEvent()
	require.Equal(t, approval.EventNotificationFailed, last.Type)
	require.Equal(t, id, last.RequestID)
	require.Equal(t, "approval.requested: gate closed before delivery", last.Reason)
}

func TestAuditSinkCannotHoldTheCaller(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	f := newFixture(t, func(c *approval.Config) {
		c.Audit = approval.AuditSinkFunc(func(context.Context, []approval.AuditEvent) error {
			<-release // ignores its context
			return nil
		})
	})
	t.Cleanup(func() { close(release) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	type guarded struct {
		res approval.Result
		err error
	}
	got, took := within(t, 10*time.Second, "Guard with a hung audit sink", func() guarded {
		res, err := f.gate.Guard(ctx, transfer(5000))
		return guarded{res, err}
	})
	require.NoError(t, got.err)
	require.Equal(t, approval.OutcomePending, got.res.Status)
	require.NotEmpty(t, got.res.RequestID)
	require.Less(t, took, 2*time.Second, "the sink holds Guard no longer than its context (not the 5s cap)")

	evs := f.events()
	last := evs[len(evs)-1]
	require.Equal(t, approval.EventAuditSinkFailed, last.Type)
	require.Equal(t, got.res.RequestID, last.RequestID)
	require.Contains(t, last.Reason, "Append did not return in time (context deadline exceeded); abandoned")
	require.Equal(t, approval.EventRequestCreated, evs[len(evs)-2].Type, "the request itself was committed")
}

func TestDirectoryCannotHoldADecision(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	f := newFixture(t, func(c *approval.Config) {
		c.Directory = hostDirectory{isMember: func(context.Context) (bool, error) {
			<-release // ignores its context
			return true, nil
		}}
	})
	t.Cleanup(func() { close(release) })
	id := f.Pending(transfer(5000))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	tok := f.Token(id, "alice", approval.VerdictApprove)
	err, took := within(t, 10*time.Second, "Decide with a hung directory", func() error {
		_, err := f.gate.Decide(ctx, id, approval.Decision{Token: tok, Verdict: approval.VerdictApprove})
		return err
	})
	require.ErrorContains(t, err, "IsMember did not return in time")
	require.True(t, errors.Is(err, context.DeadlineExceeded))
	require.Less(t, took, time.Second)
	require.Empty(t, f.Get(id).Votes, "never counted")
	last := f.lastEvent()
	require.Equal(t, approval.EventDecisionRejected, last.Type)
	require.Contains(t, last.Reason, "IsMember did not return in time")
}
