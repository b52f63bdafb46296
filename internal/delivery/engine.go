package delivery

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// noticeBatch bounds the notices one claim takes.
	noticeBatch = 16
	// closeGrace is how long Close waits, after its context ended, for the
	// goroutines to return.
	closeGrace = time.Second
)

// Handler is what the engine delivers through: the outbox it claims from
// and settles in, and the sending. Its methods are called concurrently:
// Claim and Settle by every lane, Send by up to Lane.Slots goroutines per
// lane; Expand by one goroutine at a time.
type Handler[M any] interface {
	// Claim leases up to limit due messages of lane ("" for notices) for
	// lease, oldest NextAttempt first. It handles (logs) its own errors:
	// the engine tries again at the next poll.
	Claim(ctx context.Context, lane string, limit int, lease time.Duration) []M
	// Attempts is how many attempts m had before this claim.
	Attempts(m M) int
	// Expand makes one attempt at notice m, and settles it when the
	// attempt succeeds; an error is classified (Failure) and settled
	// through Settle.
	Expand(ctx context.Context, m M) error
	// Send makes attempt number attempt at delivering m through lane,
	// returning by ctx's end.
	Send(ctx context.Context, lane string, m M, attempt int) error
	// Failure classifies an error of Expand or Send.
	Failure(err error) Failure
	// Settle records the outcome of an attempt at m (or, for Postponed, of
	// no attempt). Its failures are its own to log: a message not settled
	// is claimed again once its lease ends.
	Settle(lane string, m M, r Result)
}

// Failure is how a Handler classifies a failed attempt.
type Failure struct {
	// Permanent: no retry can succeed; the message is dead at once.
	Permanent bool
	// RetryAfter is the least wait before the next attempt.
	RetryAfter time.Duration
	// TimedOut: the send ran out of time; the lane's breaker counts it.
	TimedOut bool
	// NotSent: the attempt failed before it reached the channel; the
	// lane's breaker does not count it either way.
	NotSent bool
}

// Outcome is how an attempt ends.
type Outcome int

// Outcomes.
const (
	// Done: delivered; the message leaves the outbox.
	Done Outcome = iota + 1
	// Retry: failed; the message is due again at Result.NextAttempt.
	Retry
	// Dead: failed for good, or on its last attempt.
	Dead
	// Postponed: not attempted, its lane being blocked; due again at
	// Result.NextAttempt, its attempts unchanged.
	Postponed
)

// Result is the outcome of one attempt, for Handler.Settle.
type Result struct {
	// Outcome is what became of the message.
	Outcome Outcome
	// Attempt is the attempt's number, from 1; for Postponed, the
	// attempts made so far.
	Attempt int
	// MaxAttempts is the lane's Policy.MaxAttempts.
	MaxAttempts int
	// NextAttempt is when a Retry or Postponed message is due.
	NextAttempt time.Time
	// Err is the failure of a Retry or Dead attempt.
	Err error
	// Permanent is set on a Dead attempt refused for good rather than out
	// of attempts.
	Permanent bool
}

// Lane is one channel's deliveries.
type Lane struct {
	// Name is the channel's name, as messages carry it; not "".
	Name string
	// Policy is the lane's retry schedule.
	Policy Policy
	// Slots bounds the sends in flight; at least 1.
	Slots int
}

// Config configures a Runner. Every field is required.
type Config struct {
	// Lanes are the channels.
	Lanes []Lane
	// Notices is the retry schedule of notices that fail to expand.
	Notices Policy
	// Lease is how long a claim lasts: longer than SendTimeout, with time
	// to settle.
	Lease time.Duration
	// SendTimeout bounds one Send.
	SendTimeout time.Duration
	// Poll is how often an idle stage claims again, for retries coming
	// due and messages other processes stored.
	Poll time.Duration
	// Now is the clock.
	Now func() time.Time
	// Log receives the engine's own news (a lane blocked).
	Log *slog.Logger
}

// Runner runs the engine over one Handler. Its methods are safe for
// concurrent use.
type Runner[M any] struct {
	cfg    Config
	h      Handler[M]
	lanes  []*lane[M]
	ctx    context.Context // ends when delivery stops
	cancel context.CancelFunc

	wake     chan struct{} // a notice was stored
	draining atomic.Bool   // Close: exit once nothing is due
	resolved atomic.Bool   // the notice goroutine exited: no more deliveries come from it
	resDone  chan struct{}
	wg       sync.WaitGroup // the lane goroutines
}

// lane is one lane's goroutine and breaker.
type lane[M any] struct {
	r *Runner[M]
	Lane

	mu   sync.Mutex // guards brk: the sends of one lane run concurrently
	brk  Breaker
	wake chan struct{}
}

// Start starts the engine's goroutines.
func Start[M any](cfg Config, h Handler[M]) *Runner[M] {
	r := &Runner[M]{cfg: cfg, h: h, wake: make(chan struct{}, 1), resDone: make(chan struct{})}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	for _, l := range cfg.Lanes {
		r.lanes = append(r.lanes, &lane[M]{r: r, Lane: l, wake: make(chan struct{}, 1)})
	}
	go r.expandNotices()
	for _, l := range r.lanes {
		r.wg.Add(1)
		go l.run()
	}
	return r
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Wake tells the engine a notice was stored.
func (r *Runner[M]) Wake() { signal(r.wake) }

// WakeAll tells every stage that messages may be due (a redrive).
func (r *Runner[M]) WakeAll() {
	for _, l := range r.lanes {
		signal(l.wake)
	}
	signal(r.wake)
}

// wait waits for wake, the poll interval, or the end of delivery, and
// reports whether delivery goes on.
func (r *Runner[M]) wait(wake <-chan struct{}) bool {
	t := time.NewTimer(r.cfg.Poll)
	defer t.Stop()
	select {
	case <-wake:
	case <-t.C:
	case <-r.ctx.Done():
		return false
	}
	return true
}

// expandNotices is the notice goroutine: it expands due notices until
// delivery stops, or, once Close drains, until none is due.
func (r *Runner[M]) expandNotices() {
	defer func() {
		r.resolved.Store(true)
		close(r.resDone)
		for _, l := range r.lanes {
			signal(l.wake)
		}
	}()
	for r.ctx.Err() == nil {
		msgs := r.h.Claim(r.ctx, "", noticeBatch, r.cfg.Lease)
		for _, m := range msgs {
			if err := r.h.Expand(r.ctx, m); err != nil && r.ctx.Err() == nil {
				// Stopping leaves the notice to the next claim.
				r.h.Settle("", m, r.failed(r.cfg.Notices, r.h.Attempts(m)+1, err, r.h.Failure(err)))
			}
		}
		if len(msgs) > 0 {
			for _, l := range r.lanes {
				signal(l.wake)
			}
			continue
		}
		if r.draining.Load() || !r.wait(r.wake) {
			return
		}
	}
}

// failed is the Result of failed attempt number attempt under p.
func (r *Runner[M]) failed(p Policy, attempt int, err error, f Failure) Result {
	res := Result{Attempt: attempt, MaxAttempts: p.MaxAttempts, Err: err}
	if f.Permanent || attempt >= p.MaxAttempts {
		res.Outcome, res.Permanent = Dead, f.Permanent
		return res
	}
	res.Outcome = Retry
	res.NextAttempt = r.cfg.Now().Add(p.Wait(attempt, f.RetryAfter))
	return res
}

// run is a lane's goroutine: it keeps up to Slots sends in flight,
// claiming as many due deliveries as there are free slots.
func (l *lane[M]) run() {
	r := l.r
	defer r.wg.Done()
	var inflight sync.WaitGroup
	defer inflight.Wait()
	var busy atomic.Int32
	for r.ctx.Err() == nil {
		// Read before the claim: once the notice goroutine has exited,
		// every delivery it made is settled, so a claim after that which
		// finds nothing means nothing is left.
		finished := r.draining.Load() && r.resolved.Load()
		free := l.Slots - int(busy.Load())
		l.mu.Lock()
		open, _ := l.brk.Allow(r.cfg.Now())
		probing := l.brk.Blocked()
		l.mu.Unlock()
		switch {
		case !open:
			free = 0 // blocked: its deliveries wait in the outbox, unclaimed
		case probing && busy.Load() > 0:
			free = 0 // the probe is in flight
		case probing:
			free = min(free, 1) // one delivery is the probe
		}
		var msgs []M
		if free > 0 {
			msgs = r.h.Claim(r.ctx, l.Name, free, r.cfg.Lease)
		}
		for _, m := range msgs {
			busy.Add(1)
			inflight.Add(1)
			go func() {
				defer func() {
					busy.Add(-1)
					inflight.Done()
					signal(l.wake)
				}()
				l.deliver(m)
			}()
		}
		if open && len(msgs) > 0 && len(msgs) == free {
			continue // there may be more due
		}
		if finished && len(msgs) == 0 && busy.Load() == 0 {
			return
		}
		if !r.wait(l.wake) {
			return
		}
	}
}

// deliver makes one attempt at a claimed delivery and settles it.
func (l *lane[M]) deliver(m M) {
	r := l.r
	attempts := r.h.Attempts(m)
	l.mu.Lock()
	ok, until := l.brk.Allow(r.cfg.Now())
	l.mu.Unlock()
	if !ok {
		// Not an attempt: postponed to the lane's next probe.
		r.h.Settle(l.Name, m, Result{Outcome: Postponed, Attempt: attempts, MaxAttempts: l.Policy.MaxAttempts, NextAttempt: until})
		return
	}
	attempt := attempts + 1
	ctx, cancel := context.WithTimeout(r.ctx, r.cfg.SendTimeout)
	err := r.h.Send(ctx, l.Name, m, attempt)
	cancel()
	if err == nil {
		l.record(false, nil)
		r.h.Settle(l.Name, m, Result{Outcome: Done, Attempt: attempt, MaxAttempts: l.Policy.MaxAttempts})
		return
	}
	if r.ctx.Err() != nil {
		// Close gave up during the send: not the receiver's failure. The
		// lease ends and the delivery is claimed again.
		return
	}
	f := r.h.Failure(err)
	if !f.NotSent {
		l.record(f.TimedOut, err)
	}
	r.h.Settle(l.Name, m, r.failed(l.Policy, attempt, err, f))
}

// record notes a send's outcome in the lane's breaker.
func (l *lane[M]) record(timedOut bool, err error) {
	l.mu.Lock()
	blocked := l.brk.Record(l.r.cfg.Now(), timedOut)
	l.mu.Unlock()
	if blocked {
		l.r.cfg.Log.Error("approval: channel blocked: its deliveries wait until a probe returns in time",
			"channel", l.Name, "err", err)
	}
}

// Close lets the goroutines deliver what is due now, then stops them, and
// returns nil; if ctx ends first it stops them at once and returns ctx's
// error once they returned or a second passed. Nothing is settled for the
// sends it interrupts. Close must be called once.
func (r *Runner[M]) Close(ctx context.Context) error {
	r.draining.Store(true)
	r.WakeAll()
	done := make(chan struct{})
	go func() {
		<-r.resDone
		r.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		r.cancel()
		return nil
	case <-ctx.Done():
	}
	r.cancel()
	grace := time.NewTimer(closeGrace)
	defer grace.Stop()
	select {
	case <-done:
	case <-grace.C:
	}
	return ctx.Err()
}
