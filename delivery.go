package approval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/signoff/approval/internal/text"

	"github.com/google/uuid"
)

// Outbox delivery timings.
const (
	// outboxBatch bounds the notices one claim takes.
	outboxBatch = 16
	// leaseSlack is how much longer than SendTimeout a claim's lease lasts:
	// time to settle the outcome after the send.
	leaseSlack = time.Minute
	// settleTimeout bounds one SettleOutbox or ClaimOutbox call.
	settleTimeout = 10 * time.Second
	// defaultSendConcurrency is Config.SendConcurrency's default.
	defaultSendConcurrency = 4
)

// outboxRunner delivers the messages of a Store's Outbox: a resolver
// goroutine expands notices into deliveries, and one goroutine per channel
// claims that channel's due deliveries, SendConcurrency at a time, and
// settles each outcome. Everything it holds in memory is bounded by those
// claims, however many messages wait in the outbox. It polls every
// Config.PollInterval, for retries that come due and for messages other
// processes stored, and is woken at once by this gate's own writes.
//
// The audit rule: every real attempt is audited once, in the same atomic
// step as its outcome: notification.sent, notification.failed (saying
// which attempt of how many, and when the next is due) or, for the last
// attempt or a permanent refusal, notification.dead_lettered. A delivery
// postponed because its channel is blocked (see Channel) is not an
// attempt and is not audited, so a channel that is down costs each
// message at most its channel's MaxAttempts events.
type outboxRunner struct {
	resolver
	ob      Outbox
	owner   string // this runner's lease owner ID
	lease   time.Duration
	timeout time.Duration // per Send
	poll    time.Duration
	retry   RetryPolicy // for notices, and channels ChannelRetry does not name
	chans   []*outboxChannel
	cancel  context.CancelFunc

	wake     chan struct{} // a notice was stored
	draining atomic.Bool   // Close: exit once nothing is due
	resolved atomic.Bool   // the resolver exited: no more deliveries come from this runner
	resDone  chan struct{}
	wg       sync.WaitGroup // the channel goroutines
}

// outboxChannel is one channel's delivery goroutine.
type outboxChannel struct {
	r *outboxRunner
	namedChannel
	retry RetryPolicy
	slots int

	mu   sync.Mutex // guards brk: the sends of one channel run concurrently
	brk  breaker
	wake chan struct{}
}

func newOutboxRunner(g *Gate, ob Outbox, chans []namedChannel, cfg Config) *outboxRunner {
	r := &outboxRunner{
		resolver: resolver{g: g},
		ob:       ob,
		owner:    "gate-" + uuid.NewString(),
		timeout:  cfg.SendTimeout,
		poll:     g.poll,
		retry:    cfg.Retry.withDefaults(),
		wake:     make(chan struct{}, 1),
		resDone:  make(chan struct{}),
	}
	r.lease = r.timeout + leaseSlack
	slots := cfg.SendConcurrency
	if slots == 0 {
		slots = defaultSendConcurrency
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	if cfg.StoreOnly {
		r.cancel()
		close(r.resDone)
		return r
	}
	for _, c := range chans {
		p, ok := cfg.ChannelRetry[c.name]
		if !ok {
			p = cfg.Retry
		}
		r.chans = append(r.chans, &outboxChannel{r: r, namedChannel: c, retry: p.withDefaults(), slots: slots,
			wake: make(chan struct{}, 1)})
	}
	go r.resolve()
	for _, c := range r.chans {
		r.wg.Add(1)
		go c.run()
	}
	return r
}

// notice returns the outbox notice of a notification about r, for a
// write to store with its change; nil when delivery is in process.
func (g *Gate) notice(typ NotificationType, r *Request, level int, now time.Time) []OutboxMessage {
	if g.outbox == nil {
		return nil
	}
	return []OutboxMessage{{ID: newOutboxID(), RequestID: r.ID, Type: typ, Level: level, State: OutboxPending,
		NextAttempt: now, CreatedAt: now}}
}

// notified is called once a write that causes a notification about r has
// committed: it wakes the outbox (whose notice the write stored), or
// queues the notification in process.
func (g *Gate) notified(ctx context.Context, typ NotificationType, r *Request, level int) {
	if g.outbox != nil {
		signal(g.outbox.wake)
		return
	}
	g.notify.enqueue(ctx, notifyJob{typ: typ, req: r, level: level})
}

// noticeTarget narrows a notification: to the current level of one
// policy, or to named approvers, and to some channels, with a note (an
// escalation step's reason). The zero value narrows nothing. An outbox
// notice keeps it as its Body.
type noticeTarget struct {
	Policy    string     `json:"policy,omitempty"`
	Approvers []Approver `json:"approvers,omitempty"`
	Channels  []string   `json:"channels,omitempty"`
	Note      string     `json:"note,omitempty"`
}

func (t *noticeTarget) isZero() bool {
	return t.Policy == "" && t.Approvers == nil && t.Channels == nil && t.Note == ""
}

// wants reports whether the notification goes through channel name.
func (t *noticeTarget) wants(name string) bool {
	return len(t.Channels) == 0 || slices.Contains(t.Channels, name)
}

// note is one notification a change causes.
type note struct {
	typ    NotificationType
	level  int
	target noticeTarget
}

// notices returns the outbox notices of notes about r, for a write to
// store with its change; nil when delivery is in process.
func (g *Gate) notices(r *Request, notes []note, now time.Time) []OutboxMessage {
	if g.outbox == nil || len(notes) == 0 {
		return nil
	}
	out := make([]OutboxMessage, 0, len(notes))
	for _, n := range notes {
		m := OutboxMessage{ID: newOutboxID(), RequestID: r.ID, Type: n.typ, Level: n.level, State: OutboxPending,
			NextAttempt: now, CreatedAt: now}
		if !n.target.isZero() {
			m.Body, _ = json.Marshal(&n.target) // of strings only: cannot fail
		}
		out = append(out, m)
	}
	return out
}

// notifiedAll is notified for each of notes.
func (g *Gate) notifiedAll(ctx context.Context, r *Request, notes []note) {
	if len(notes) == 0 {
		return
	}
	if g.outbox != nil {
		signal(g.outbox.wake)
		return
	}
	for _, n := range notes {
		g.notify.enqueue(ctx, notifyJob{typ: n.typ, req: r, level: n.level, target: n.target})
	}
}

// newOutboxID returns a time-ordered unique ID (UUIDv7), so that listing
// the outbox by ID lists it roughly oldest first.
func newOutboxID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

// wait waits for wake, the poll interval, or the end of delivery, and
// reports whether delivery goes on.
func (r *outboxRunner) wait(wake <-chan struct{}) bool {
	t := time.NewTimer(r.poll)
	defer t.Stop()
	select {
	case <-wake:
	case <-t.C:
	case <-r.ctx.Done():
		return false
	}
	return true
}

func (r *outboxRunner) claim(channel string, limit int) []OutboxMessage {
	ctx, cancel := context.WithTimeout(r.ctx, settleTimeout)
	defer cancel()
	msgs, err := r.ob.ClaimOutbox(ctx, OutboxClaim{Owner: r.owner, Channel: channel, Now: normalizeTime(r.g.now()),
		Lease: r.lease, Limit: limit})
	if err != nil && r.ctx.Err() == nil {
		r.g.log.Error("approval: cannot claim outbox messages", "channel", channel, "err", err)
	}
	return msgs
}

// settle records s, with its events mirrored to the audit sink. A lost
// lease (ErrConflict) is not an error: the message's new owner settles it.
func (r *outboxRunner) settle(s OutboxSettle) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), settleTimeout)
	defer cancel()
	err := r.ob.SettleOutbox(ctx, s)
	switch {
	case err == nil:
		r.g.afterCommit(ctx, s.Events)
	case errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound):
		r.g.log.Warn("approval: outbox message was taken over by another worker (lease ended); its outcome here is not recorded",
			"message", s.ID, "err", err)
	default:
		r.g.log.Error("approval: cannot record an outbox outcome; the message is sent again when its lease ends",
			"message", s.ID, "err", err)
	}
}

// resolve is the resolver goroutine: it expands due notices until delivery
// stops, or, once Close drains, until none is due.
func (r *outboxRunner) resolve() {
	defer func() {
		r.resolved.Store(true)
		close(r.resDone)
		for _, c := range r.chans {
			signal(c.wake)
		}
	}()
	for r.ctx.Err() == nil {
		msgs := r.claim("", outboxBatch)
		for _, m := range msgs {
			r.expand(m)
		}
		if len(msgs) > 0 {
			for _, c := range r.chans {
				signal(c.wake)
			}
			continue
		}
		if r.draining.Load() || !r.wait(r.wake) {
			return
		}
	}
}

// expand turns notice m into one delivery per recipient and channel.
func (r *outboxRunner) expand(m OutboxMessage) {
	g := r.g
	now := normalizeTime(g.now())
	ctx, cancel := context.WithTimeout(r.ctx, resolveTimeout)
	defer cancel()
	req, err := g.store.Get(ctx, m.RequestID)
	job := notifyJob{typ: m.Type, req: req, level: m.Level}
	if err == nil && m.Body != nil {
		if jerr := json.Unmarshal(m.Body, &job.target); jerr != nil {
			err = fmt.Errorf("decode the notice's target: %w", jerr)
		}
	}
	var recipients []string
	if err == nil {
		recipients, err = r.recipients(ctx, &job)
	}
	if err != nil {
		if r.ctx.Err() != nil {
			return // stopping: the lease ends and the notice is claimed again
		}
		r.failNotice(m, req, fmt.Errorf("resolve recipients: %w", err), now)
		return
	}
	s := OutboxSettle{ID: m.ID, Owner: r.owner, Outcome: OutboxDone}
	refs := policyRefs(req.Policies)
	for _, to := range recipients {
		for _, c := range r.chans {
			if !job.target.wants(c.name) {
				continue
			}
			n := g.notification(job, to, now)
			n.ID = newOutboxID()
			body, err := json.Marshal(&n)
			if err != nil {
				s.Events = append(s.Events, AuditEvent{RequestID: req.ID, Type: EventNotificationFailed, Actor: SystemActor,
					Policies: refs, Reason: auditSafe(fmt.Sprintf("%s to %s via %s: encode: %v", m.Type, to, c.name, err), maxReasonBytes), At: now})
				continue
			}
			s.Add = append(s.Add, OutboxMessage{ID: n.ID, RequestID: req.ID, Type: m.Type, Level: m.Level, Channel: c.name,
				Recipient: to, Body: body, State: OutboxPending, NextAttempt: now, CreatedAt: now})
		}
	}
	r.settle(s)
}

// failNotice records a notice whose recipients could not be resolved: a
// retry under the default policy, audited, or after the last attempt (or
// for a request that is gone) a dead letter.
func (r *outboxRunner) failNotice(m OutboxMessage, req *Request, err error, now time.Time) {
	r.g.log.Error("approval: cannot resolve notification recipients", "request", m.RequestID, "type", m.Type, "err", err)
	var refs []PolicyRef
	if req != nil {
		refs = policyRefs(req.Policies)
	}
	attempts := m.Attempts + 1
	s := OutboxSettle{ID: m.ID, Owner: r.owner, Attempts: attempts, LastError: auditSafe(err.Error(), maxReasonBytes)}
	ev := AuditEvent{RequestID: m.RequestID, Actor: SystemActor, Policies: refs, At: now}
	if attempts >= r.retry.MaxAttempts || errors.Is(err, ErrNotFound) {
		s.Outcome = OutboxDeadLetter
		ev.Type = EventNotificationDeadLettered
		ev.Reason = fmt.Sprintf("%s: attempt %d of %d: %v; dead-lettered", m.Type, attempts, r.retry.MaxAttempts, err)
	} else {
		s.Outcome = OutboxRetry
		s.NextAttempt = now.Add(r.retry.wait(attempts, 0))
		ev.Type = EventNotificationFailed
		ev.Reason = fmt.Sprintf("%s: attempt %d of %d: %v; next attempt at %s", m.Type, attempts, r.retry.MaxAttempts, err,
			s.NextAttempt.Format(time.RFC3339))
	}
	ev.Reason = auditSafe(ev.Reason, maxReasonBytes)
	s.Events = []AuditEvent{ev}
	r.settle(s)
}

// run is a channel's goroutine: it keeps up to slots sends in flight,
// claiming as many due deliveries as there are free slots.
func (c *outboxChannel) run() {
	r := c.r
	defer r.wg.Done()
	var inflight sync.WaitGroup
	defer inflight.Wait()
	var busy atomic.Int32
	for r.ctx.Err() == nil {
		// Read before the claim: once the resolver has exited, every
		// delivery it made is committed, so a claim after that which
		// finds nothing means nothing is left.
		finished := r.draining.Load() && r.resolved.Load()
		free := c.slots - int(busy.Load())
		c.mu.Lock()
		open, _ := c.brk.allow(normalizeTime(r.g.now()))
		probing := c.brk.blocked
		c.mu.Unlock()
		switch {
		case !open:
			free = 0 // blocked: its deliveries wait in the store, unclaimed
		case probing && busy.Load() > 0:
			free = 0 // the probe is in flight
		case probing:
			free = min(free, 1) // one delivery is the probe
		}
		var msgs []OutboxMessage
		if free > 0 {
			msgs = c.r.claim(c.name, free)
		}
		for _, m := range msgs {
			busy.Add(1)
			inflight.Add(1)
			go func() {
				defer func() {
					busy.Add(-1)
					inflight.Done()
					signal(c.wake)
				}()
				c.deliver(m)
			}()
		}
		if open && len(msgs) > 0 && len(msgs) == free {
			continue // there may be more due
		}
		if finished && len(msgs) == 0 && busy.Load() == 0 {
			return
		}
		if !r.wait(c.wake) {
			return
		}
	}
}

// deliver sends one claimed delivery and settles its outcome.
func (c *outboxChannel) deliver(m OutboxMessage) {
	r, g := c.r, c.r.g
	now := normalizeTime(g.now())
	c.mu.Lock()
	ok, until := c.brk.allow(now)
	c.mu.Unlock()
	if !ok {
		// Not an attempt: postponed to the channel's next probe, unaudited.
		r.settle(OutboxSettle{ID: m.ID, Owner: r.owner, Outcome: OutboxRetry, Attempts: m.Attempts,
			NextAttempt: until, LastError: m.LastError})
		return
	}
	attempts := m.Attempts + 1
	var n Notification
	err := json.Unmarshal(m.Body, &n)
	if err == nil {
		n.Attempt = attempts
		err = g.sign(&n, now)
	}
	if err == nil {
		ctx, cancel := context.WithTimeout(r.ctx, r.timeout)
		_, err = callHost(c.host, ctx, "Send", func(ctx context.Context) (struct{}, error) {
			return struct{}{}, c.ch.Send(ctx, n)
		})
		cancel()
		if r.ctx.Err() != nil && err != nil {
			// Close gave up during the send: not the receiver's failure.
			// The lease ends and the delivery is claimed again.
			return
		}
		c.mu.Lock()
		blocked := c.brk.record(g.now(), err)
		c.mu.Unlock()
		if blocked {
			g.log.Error("approval: channel blocked: its deliveries wait until a probe returns in time",
				"channel", c.name, "err", err)
		}
	}
	now = normalizeTime(g.now())
	what := fmt.Sprintf("%s to %s via %s", m.Type, m.Recipient, c.name)
	ev := AuditEvent{RequestID: m.RequestID, Actor: SystemActor, Policies: n.Policies, At: now}
	s := OutboxSettle{ID: m.ID, Owner: r.owner, Attempts: attempts}
	se := sendErrorOf(err)
	switch {
	case err == nil:
		s.Outcome = OutboxDone
		ev.Type = EventNotificationSent
		ev.Reason = what
		if attempts > 1 {
			ev.Reason += fmt.Sprintf(" (attempt %d)", attempts)
		}
	case se.Permanent || attempts >= c.retry.MaxAttempts:
		s.Outcome, s.LastError = OutboxDeadLetter, auditSafe(err.Error(), maxReasonBytes)
		ev.Type = EventNotificationDeadLettered
		why := "refused for good"
		if !se.Permanent {
			why = "no attempt left"
		}
		ev.Reason = fmt.Sprintf("%s: attempt %d of %d: %v; dead-lettered (%s)", what, attempts, c.retry.MaxAttempts, err, why)
		g.log.Error("approval: notification dead-lettered", "request", m.RequestID, "recipient", m.Recipient,
			"channel", c.name, "attempts", attempts, "err", err)
	default:
		s.Outcome, s.LastError = OutboxRetry, auditSafe(err.Error(), maxReasonBytes)
		s.NextAttempt = now.Add(c.retry.wait(attempts, se.RetryAfter))
		ev.Type = EventNotificationFailed
		ev.Reason = fmt.Sprintf("%s: attempt %d of %d: %v; next attempt at %s", what, attempts, c.retry.MaxAttempts, err,
			s.NextAttempt.Format(time.RFC3339))
		g.log.Warn("approval: notification failed; it will be retried", "request", m.RequestID, "recipient", m.Recipient,
			"channel", c.name, "attempt", attempts, "next_attempt", s.NextAttempt, "err", err)
	}
	ev.Reason = auditSafe(ev.Reason, maxReasonBytes)
	s.Events = []AuditEvent{ev}
	r.settle(s)
}

// close lets the goroutines deliver what is due now, then stops them; if
// ctx ends first it stops them at once. Nothing is lost either way: what
// is not delivered stays in the outbox, and a claim this runner held goes
// to the next claim once its lease ends.
func (r *outboxRunner) close(ctx context.Context) error {
	if r.ctx.Err() != nil {
		return nil // StoreOnly: nothing runs
	}
	r.draining.Store(true)
	signal(r.wake)
	for _, c := range r.chans {
		signal(c.wake)
	}
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
	r.g.log.Error("approval: gate closed before every due notification was delivered; they stay in the outbox", "err", ctx.Err())
	return fmt.Errorf("approval: close: due notifications left in the outbox: %w", ctx.Err())
}

// ListOutbox lists the messages of the store's outbox, for an operator:
// the dead letters (State OutboxDead), what waits for a channel, or a
// request's. It returns an error wrapping ErrUnsupported for a store that
// does not implement Outbox.
func (g *Gate) ListOutbox(ctx context.Context, q OutboxQuery) (OutboxPage, error) {
	ob, ok := g.store.(Outbox)
	if !ok {
		return OutboxPage{}, fmt.Errorf("approval: list outbox: %w: the store has no outbox", errors.ErrUnsupported)
	}
	page, err := ob.ListOutbox(ctx, q)
	if err != nil {
		return OutboxPage{}, fmt.Errorf("approval: list outbox: %w", err)
	}
	return page, nil
}

// Redrive sends dead letters again: each becomes pending, due now, with a
// fresh count of attempts, and notification.redriven is audited with
// actor. It returns how many it redrove, and stops at the first error; an
// ID that names no dead letter is an error wrapping ErrNotFound.
func (g *Gate) Redrive(ctx context.Context, actor string, ids ...string) (int, error) {
	ob, ok := g.store.(Outbox)
	if !ok {
		return 0, fmt.Errorf("approval: redrive: %w: the store has no outbox", errors.ErrUnsupported)
	}
	actor, err := CanonicalID(actor)
	if err != nil {
		return 0, fmt.Errorf("approval: redrive: %w: actor: %w", ErrInvalidDecision, err)
	}
	for i, id := range ids {
		now := normalizeTime(g.now())
		ev := []AuditEvent{{Type: EventNotificationRedriven, Actor: actor, Reason: auditSafe("outbox message "+text.Clip(id, 64), maxReasonBytes), At: now}}
		if err := ob.RedriveOutbox(ctx, id, now, &ev[0]); err != nil {
			return i, fmt.Errorf("approval: redrive %s: %w", text.Clip(id, 64), err)
		}
		g.afterCommit(ctx, ev)
	}
	if g.outbox != nil {
		for _, c := range g.outbox.chans {
			signal(c.wake)
		}
		signal(g.outbox.wake)
	}
	return len(ids), nil
}
