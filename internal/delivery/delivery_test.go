package delivery

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPolicyWait(t *testing.T) {
	t.Parallel()
	p := Policy{MaxAttempts: 8, InitialInterval: 5 * time.Second, MaxInterval: time.Hour}
	for _, tc := range []struct {
		attempts int
		want     time.Duration
	}{
		{1, 5 * time.Second}, {2, 10 * time.Second}, {3, 20 * time.Second}, {9, 1280 * time.Second},
		{10, 2560 * time.Second}, {11, time.Hour}, {1000, time.Hour},
	} {
		require.Equal(t, tc.want, p.interval(tc.attempts), "attempt %d", tc.attempts)
		for range 50 {
			d := p.Wait(tc.attempts, 0)
			require.GreaterOrEqual(t, d, tc.want/2, "attempt %d", tc.attempts)
			require.LessOrEqual(t, d, tc.want*3/2+1, "attempt %d", tc.attempts)
		}
	}
	require.Equal(t, 2*time.Second+time.Second/2, randomize(5*time.Second, 0), "the low end of the jitter")
	require.Equal(t, time.Hour, p.Wait(1, 2*time.Hour), "a Retry-After, capped at MaxInterval")
	require.Equal(t, 30*time.Minute, p.Wait(1, 30*time.Minute), "no sooner than the Retry-After")
}

func TestBreaker(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	var b Breaker
	for i := range BlockAfter - 1 {
		require.False(t, b.Record(now, true), "timeout %d", i+1)
	}
	require.False(t, b.Record(now, false), "an answer in time resets the count")
	for range BlockAfter - 1 {
		b.Record(now, true)
	}
	require.True(t, b.Record(now, true), "blocked after BlockAfter timeouts in a row")
	ok, until := b.Allow(now.Add(time.Second))
	require.False(t, ok)
	require.Equal(t, now.Add(ProbeEvery), until)
	ok, _ = b.Allow(until)
	require.True(t, ok, "a probe when it is due")
	require.True(t, b.Record(until, true), "a probe that times out blocks again")
	require.Equal(t, until.Add(ProbeEvery), b.NextProbe())
	require.False(t, b.Record(until.Add(ProbeEvery), false), "a probe that answers unblocks")
	require.False(t, b.Blocked())
	require.Zero(t, b.Timeouts())
}

// fakeHandler is a Handler over an in-memory list of messages: notices
// expand into one delivery per lane, and send fails as fail says.
type fakeHandler struct {
	lanes []string
	fail  func(lane string, m *msg) error

	mu      sync.Mutex
	pending []*msg
	settled []settled
	sends   chan *msg
}

type msg struct {
	id, lane string
	attempts int
	leased   bool
	due      time.Time
}

type settled struct {
	id string
	r  Result
}

func (h *fakeHandler) Claim(_ context.Context, lane string, limit int, _ time.Duration) []*msg {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*msg
	for _, m := range h.pending {
		if m.lane == lane && !m.leased && !m.due.After(time.Now()) && len(out) < limit {
			m.leased = true
			out = append(out, m)
		}
	}
	return out
}

func (h *fakeHandler) Attempts(m *msg) int { return m.attempts }

func (h *fakeHandler) Expand(_ context.Context, m *msg) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.remove(m)
	for _, l := range h.lanes {
		h.pending = append(h.pending, &msg{id: m.id + "/" + l, lane: l})
	}
	return nil
}

func (h *fakeHandler) remove(m *msg) {
	h.pending = slices.DeleteFunc(h.pending, func(o *msg) bool { return o == m })
}

func (h *fakeHandler) Send(ctx context.Context, lane string, m *msg, _ int) error {
	if h.sends != nil {
		h.sends <- m
	}
	if h.fail != nil {
		return h.fail(lane, m)
	}
	return nil
}

var errPermanent = errors.New("refused")

func (h *fakeHandler) Failure(err error) Failure {
	return Failure{Permanent: errors.Is(err, errPermanent), TimedOut: errors.Is(err, context.DeadlineExceeded)}
}

func (h *fakeHandler) Settle(_ string, m *msg, r Result) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.settled = append(h.settled, settled{m.id, r})
	switch r.Outcome {
	case Done, Dead:
		h.remove(m)
	default:
		m.attempts, m.leased, m.due = r.Attempt, false, r.NextAttempt
	}
}

func (h *fakeHandler) outcomes() map[string][]Outcome {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string][]Outcome{}
	for _, s := range h.settled {
		out[s.id] = append(out[s.id], s.r.Outcome)
	}
	return out
}

func testConfig(lanes ...Lane) Config {
	return Config{Lanes: lanes, Notices: Policy{MaxAttempts: 2, InitialInterval: time.Second, MaxInterval: time.Second},
		Lease: time.Minute, SendTimeout: time.Minute, Poll: time.Hour, Now: time.Now, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// TestRunnerDeliversAndSettles: every notice expands into a delivery per
// lane, each delivery is settled once, and Close returns once all that
// was due is settled: a failure retried later, a permanent one dead.
func TestRunnerDeliversAndSettles(t *testing.T) {
	t.Parallel()
	h := &fakeHandler{lanes: []string{"a", "b"}, fail: func(lane string, m *msg) error {
		switch {
		case m.id == "n1/b":
			return errPermanent
		case lane == "b":
			return errors.New("503")
		}
		return nil
	}}
	for _, id := range []string{"n0", "n1", "n2"} {
		h.pending = append(h.pending, &msg{id: id})
	}
	r := Start(testConfig(Lane{Name: "a", Policy: Policy{MaxAttempts: 3, InitialInterval: time.Hour, MaxInterval: time.Hour}, Slots: 2},
		Lane{Name: "b", Policy: Policy{MaxAttempts: 3, InitialInterval: time.Hour, MaxInterval: time.Hour}, Slots: 1}), Handler[*msg](h))
	r.Wake()
	require.NoError(t, r.Close(context.Background()))
	got := h.outcomes()
	for _, id := range []string{"n0", "n1", "n2"} {
		require.Equal(t, []Outcome{Done}, got[id+"/a"], id)
	}
	require.Equal(t, []Outcome{Retry}, got["n0/b"])
	require.Equal(t, []Outcome{Dead}, got["n1/b"], "a permanent failure is dead at once")
	require.Equal(t, []Outcome{Retry}, got["n2/b"])
	for _, s := range h.settled {
		if s.r.Outcome == Retry {
			require.Equal(t, 1, s.r.Attempt)
			require.Equal(t, 3, s.r.MaxAttempts)
			require.True(t, s.r.NextAttempt.After(time.Now().Add(29*time.Minute)), "after the lane's interval")
		}
	}
}

// TestRunnerLastAttemptIsDead: a failure on the lane's last attempt is
// dead, not retried.
func TestRunnerLastAttemptIsDead(t *testing.T) {
	t.Parallel()
	h := &fakeHandler{lanes: []string{"a"}, fail: func(string, *msg) error { return errors.New("503") }}
	h.pending = []*msg{{id: "d", lane: "a", attempts: 2}}
	r := Start(testConfig(Lane{Name: "a", Policy: Policy{MaxAttempts: 3, InitialInterval: time.Hour, MaxInterval: time.Hour}, Slots: 1}), Handler[*msg](h))
	require.NoError(t, r.Close(context.Background()))
	require.Len(t, h.settled, 1)
	require.Equal(t, Result{Outcome: Dead, Attempt: 3, MaxAttempts: 3, Err: h.settled[0].r.Err}, h.settled[0].r)
}

// TestRunnerBlocksALaneThatTimesOut: after BlockAfter sends that ran out
// of time, a lane is blocked: it claims nothing more, its Close does not
// wait for it, and the other lane delivers everything.
func TestRunnerBlocksALaneThatTimesOut(t *testing.T) {
	t.Parallel()
	h := &fakeHandler{lanes: []string{"stuck", "ok"}, sends: make(chan *msg, 100), fail: func(lane string, _ *msg) error {
		if lane == "stuck" {
			return context.DeadlineExceeded
		}
		return nil
	}}
	for i := range 10 {
		h.pending = append(h.pending, &msg{id: string(rune('a' + i))})
	}
	p := Policy{MaxAttempts: 8, InitialInterval: time.Hour, MaxInterval: time.Hour}
	r := Start(testConfig(Lane{Name: "stuck", Policy: p, Slots: 1}, Lane{Name: "ok", Policy: p, Slots: 4}), Handler[*msg](h))
	r.Wake()
	require.NoError(t, r.Close(context.Background()))
	close(h.sends)
	stuck := 0
	for m := range h.sends {
		if m.lane == "stuck" {
			stuck++
		}
	}
	require.Equal(t, BlockAfter, stuck, "a blocked lane is not called until its probe is due")
	ok := 0
	for id, o := range h.outcomes() {
		if id[len(id)-2:] == "ok" {
			require.Equal(t, []Outcome{Done}, o)
			ok++
		}
	}
	require.Equal(t, 10, ok)
}

// TestRunnerCloseGivesUp: a Close whose context ends while a send hangs
// returns the context's error, and settles nothing for that send.
func TestRunnerCloseGivesUp(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(release) })
	h := &fakeHandler{lanes: []string{"a"}, fail: func(string, *msg) error {
		close(entered)
		<-release // hangs, ignoring its context
		return errors.New("too late")
	}}
	h.pending = []*msg{{id: "x", lane: "a"}}
	r := Start(testConfig(Lane{Name: "a", Policy: Policy{MaxAttempts: 3, InitialInterval: time.Hour, MaxInterval: time.Hour}, Slots: 1}), Handler[*msg](h))
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	require.ErrorIs(t, r.Close(ctx), context.Canceled)
	require.Less(t, time.Since(start), 3*time.Second, "at most a second's grace")
	require.Empty(t, h.outcomes())
}
