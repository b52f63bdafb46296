package approval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/signoff/approval/internal/host"
	"github.com/signoff/approval/internal/text"

	"github.com/google/uuid"

	"github.com/signoff/approval/internal/delivery"
)

// Delivery timings that are not configurable.
const (
	// leaseSlack is how much longer than SendTimeout a claim's lease lasts:
	// time to settle the outcome after the send.
	leaseSlack = time.Minute
	// settleTimeout bounds one SettleOutbox or ClaimOutbox call.
	settleTimeout = 10 * time.Second
	// resolveTimeout bounds resolving one notice's recipients.
	resolveTimeout = 10 * time.Second
	// auditTimeout bounds the store write of an event a caller's
	// cancellation must not suppress.
	auditTimeout = 10 * time.Second
)

// reasonClosed is the audited reason of a notification a closed gate left
// undelivered (an in-memory outbox only: a Store's outbox keeps it).
const reasonClosed = "gate closed before delivery"

// outboxHandler is the gate's side of the delivery engine
// (internal/delivery): it claims and settles through an Outbox (the
// Store's, or the in-memory one), expands notices into notifications for
// their recipients, signs their links and sends them through the
// channels, and audits every attempt in the same atomic step as its
// outcome.
//
// The audit rule: every real attempt is audited once: notification.sent,
// notification.failed (saying which attempt of how many, and when the
// next is due) or, for the last attempt or a permanent refusal,
// notification.dead_lettered. A delivery postponed because its channel is
// blocked (see Channel) is not an attempt and is not audited, so a channel
// that is down costs each message at most its channel's MaxAttempts
// events.
type outboxHandler struct {
	resolver // used by the engine's one notice goroutine
	ob       Outbox
	owner    string // this gate's lease owner ID
	chans    []namedChannel
	byName   map[string]*namedChannel
	digests  *digester // nil without DeliveryConfig.DigestWindow
}

// claimed is one claimed message, with the policies its events name.
type claimed struct {
	m    OutboxMessage
	refs []PolicyRef
	// trace and sent are the notification's TraceParent and when its
	// attempt began, for the Observer.
	trace string
	sent  time.Time
	// members, for a digest, are the deliveries it gathers (m is the one
	// with the most attempts); nil for a message sent alone.
	members []OutboxMessage
	// memberRefs are the policies each member's notification names.
	memberRefs [][]PolicyRef
	// as is the type a Pager's attempt was sent as, when not the
	// message's (see Pager).
	as NotificationType
}

// startDelivery starts the engine over ob for chans.
func startDelivery(g *Gate, ob Outbox, chans []namedChannel, cfg *DeliveryConfig) *delivery.Runner[*claimed] {
	h := &outboxHandler{resolver: resolver{g: g}, ob: ob, owner: "gate-" + uuid.NewString(), chans: chans,
		byName: make(map[string]*namedChannel, len(chans))}
	if cfg.DigestWindow != nil {
		h.digests = &digester{window: cfg.DigestWindow, host: host.New("Delivery.DigestWindow", g.log)}
	}
	ecfg := delivery.Config{
		Notices:     cfg.Retry.withDefaults().policy(),
		Lease:       cfg.SendTimeout + leaseSlack,
		SendTimeout: cfg.SendTimeout,
		Poll:        g.poll,
		Now:         func() time.Time { return normalizeTime(g.now()) },
		Log:         g.log,
	}
	for i := range chans {
		c := &chans[i]
		h.byName[c.name] = c
		p, ok := cfg.ChannelRetry[c.name]
		if !ok {
			p = cfg.Retry
		}
		ecfg.Lanes = append(ecfg.Lanes, delivery.Lane{Name: c.name, Policy: p.withDefaults().policy(), Slots: cfg.SendConcurrency})
	}
	return delivery.Start(ecfg, delivery.Handler[*claimed](h))
}

// Claim implements delivery.Handler.
func (h *outboxHandler) Claim(ctx context.Context, lane string, limit int, lease time.Duration) []*claimed {
	cctx, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	msgs, err := h.ob.ClaimOutbox(cctx, OutboxClaim{Owner: h.owner, Channel: lane, Now: normalizeTime(h.g.now()),
		Lease: lease, Limit: limit})
	if err != nil && ctx.Err() == nil {
		h.g.log.Error("approval: cannot claim outbox messages", "channel", lane, "err", err)
	}
	if h.digests != nil && lane != "" {
		return h.gather(ctx, lane, msgs, lease)
	}
	out := make([]*claimed, len(msgs))
	for i := range msgs {
		out[i] = &claimed{m: msgs[i]}
	}
	return out
}

// Attempts implements delivery.Handler.
func (h *outboxHandler) Attempts(c *claimed) int { return c.m.Attempts }

// Failure implements delivery.Handler.
func (h *outboxHandler) Failure(err error) delivery.Failure {
	se := sendErrorOf(err)
	return delivery.Failure{Permanent: se.Permanent, RetryAfter: se.RetryAfter, TimedOut: host.TimedOut(err),
		NotSent: errors.As(err, new(notSent))}
}

// notSent is a delivery that failed before its Send: its body could not
// be decoded or its links signed.
type notSent struct{ err error }

func (e notSent) Error() string { return e.err.Error() }
func (e notSent) Unwrap() error { return e.err }

// Expand implements delivery.Handler: it turns notice c into one delivery
// per recipient and channel, settled in one step. An error that says
// something is not found (the request is gone) fails it for good.
func (h *outboxHandler) Expand(ctx context.Context, c *claimed) error {
	err := h.expand(ctx, c)
	if err == nil {
		return nil
	}
	err = fmt.Errorf("resolve recipients: %w", err)
	if errors.Is(err, ErrNotFound) {
		return Permanent(err)
	}
	return err
}

func (h *outboxHandler) expand(ctx context.Context, c *claimed) error {
	g, m := h.g, c.m
	h.ctx = ctx
	now := normalizeTime(g.now())
	rctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	var req *Request
	if mem, ok := h.ob.(*memOutbox); ok {
		req = mem.request(m.ID)
	}
	if req == nil {
		var err error
		if req, err = g.store.Get(rctx, m.RequestID); err != nil {
			return err
		}
	}
	c.refs = policyRefs(req.Policies)
	job := notifyJob{typ: m.Type, req: req, level: m.Level}
	if m.Body != nil {
		if err := json.Unmarshal(m.Body, &job.target); err != nil {
			return fmt.Errorf("decode the notice's target: %w", err)
		}
	}
	recipients, err := h.recipientsFor(rctx, &job)
	if err != nil {
		return err
	}
	s := OutboxSettle{ID: m.ID, Owner: h.owner, Outcome: OutboxDone}
	base := g.notification(job, now)
	for _, to := range recipients {
		for _, ch := range h.chans {
			if ch.pager || !job.target.wants(ch.name) {
				continue
			}
			n := base.forRecipient(&job, to, newOutboxID())
			body, err := json.Marshal(&n)
			if err != nil {
				s.Events = append(s.Events, AuditEvent{RequestID: req.ID, Type: EventNotificationFailed, Actor: SystemActor,
					Policies: c.refs, Reason: auditSafe(fmt.Sprintf("%s to %s via %s: encode: %v", m.Type, to, ch.name, err), maxReasonBytes), At: now})
				continue
			}
			s.Add = append(s.Add, OutboxMessage{ID: n.ID, RequestID: req.ID, Type: m.Type, Level: m.Level, Channel: ch.name,
				Recipient: to, Body: body, State: OutboxPending, NextAttempt: h.digests.due(m.Type, n.Urgent, ch.name, to, m.CreatedAt, now), CreatedAt: now})
		}
	}
	h.addPages(&s, &job, base, c.refs, now)
	h.settle(s)
	return nil
}

// Send implements delivery.Handler: it signs the delivery's links for
// this attempt and sends it through its channel.
func (h *outboxHandler) Send(ctx context.Context, lane string, c *claimed, attempt int) error {
	if c.members != nil {
		if h.g.obs != nil {
			c.sent = time.Now()
		}
		return h.sendDigest(ctx, h.byName[lane], c, attempt)
	}
	var n Notification
	if err := json.Unmarshal(c.m.Body, &n); err != nil {
		return notSent{err}
	}
	c.refs, c.trace = n.Policies, n.TraceParent
	if h.g.obs != nil {
		c.sent = time.Now()
	}
	n.Attempt = attempt
	if err := h.pageCurrent(ctx, lane, c, &n); err != nil {
		return notSent{err}
	}
	if err := h.g.sign(&n, normalizeTime(h.g.now())); err != nil {
		return notSent{err}
	}
	ch := h.byName[lane]
	_, err := host.Call(ch.host, ctx, "Send", func(ctx context.Context) (struct{}, error) {
		return struct{}{}, ch.ch.Send(ctx, n)
	})
	return err
}

// Settle implements delivery.Handler: it records the outcome of an
// attempt with its audit event.
func (h *outboxHandler) Settle(lane string, c *claimed, r delivery.Result) {
	var outcome OutboxOutcome
	if c.members == nil {
		outcome = h.settleMessage(lane, &c.m, c.refs, r, 0, c.as)
	} else {
		// Each member is its own delivery, with the digest's outcome.
		for i := range c.members {
			m := &c.members[i]
			outcome = h.settleMessage(lane, m, c.memberRefs[i], r, len(c.members), "")
		}
	}
	g, m := h.g, c.m
	if r.Outcome == delivery.Postponed {
		return
	}
	if g.obs != nil && lane != "" {
		start, took := c.sent, time.Since(c.sent)
		if start.IsZero() { // refused before it was sent
			start, took = time.Now(), 0
		}
		o := Observation{Kind: ObserveDelivery, Start: start, Duration: took, RequestID: m.RequestID,
			Channel: lane, Attempt: r.Attempt, Policies: refNames(c.refs), TraceParent: c.trace, Outcome: ObservedFailed, Err: r.Err}
		switch outcome {
		case OutboxDone:
			o.Outcome = ObservedDelivered
		case OutboxDeadLetter:
			o.Outcome = ObservedDeadLetter
		}
		g.obs.observe(context.Background(), o)
	}
}

// settleMessage records the outcome of an attempt at m, one delivery or
// one of the inDigest members of a digest, with its audit event, and
// returns how it was settled.
func (h *outboxHandler) settleMessage(lane string, m *OutboxMessage, refs []PolicyRef, r delivery.Result, inDigest int, as NotificationType) OutboxOutcome {
	g := h.g
	s := OutboxSettle{ID: m.ID, Owner: h.owner, Attempts: r.Attempt}
	if r.Outcome == delivery.Postponed {
		// Not an attempt: postponed to the channel's next probe, unaudited.
		s.Outcome, s.NextAttempt, s.LastError = OutboxRetry, r.NextAttempt, m.LastError
		h.settle(s)
		return s.Outcome
	}
	now := normalizeTime(g.now())
	what := string(m.Type)
	if lane != "" {
		what = fmt.Sprintf("%s to %s via %s", m.Type, m.Recipient, lane)
		if m.Recipient == "" { // a Pager's
			what = fmt.Sprintf("%s via %s", m.Type, lane)
		}
		if as != "" {
			what += fmt.Sprintf(" (sent as %s: the request was resolved first)", as)
		}
		if inDigest > 0 {
			what += fmt.Sprintf(" (in a digest of %d)", inDigest)
		}
	} else {
		g.log.Error("approval: cannot resolve notification recipients", "request", m.RequestID, "type", m.Type, "err", r.Err)
	}
	ev := AuditEvent{RequestID: m.RequestID, Actor: SystemActor, Policies: refs, At: now}
	switch r.Outcome {
	case delivery.Done:
		s.Outcome = OutboxDone
		ev.Type = EventNotificationSent
		ev.Reason = what
		if r.Attempt > 1 {
			ev.Reason += fmt.Sprintf(" (attempt %d)", r.Attempt)
		}
	case delivery.Dead:
		s.Outcome, s.LastError = OutboxDeadLetter, auditSafe(r.Err.Error(), maxReasonBytes)
		ev.Type = EventNotificationDeadLettered
		ev.Reason = fmt.Sprintf("%s: attempt %d of %d: %v; dead-lettered", what, r.Attempt, r.MaxAttempts, r.Err)
		if lane != "" {
			why := "refused for good"
			if !r.Permanent {
				why = "no attempt left"
			}
			ev.Reason += " (" + why + ")"
			g.log.Error("approval: notification dead-lettered", "request", m.RequestID, "recipient", m.Recipient,
				"channel", lane, "attempts", r.Attempt, "err", r.Err)
		}
	default:
		s.Outcome, s.LastError = OutboxRetry, auditSafe(r.Err.Error(), maxReasonBytes)
		s.NextAttempt = r.NextAttempt
		ev.Type = EventNotificationFailed
		ev.Reason = fmt.Sprintf("%s: attempt %d of %d: %v; next attempt at %s", what, r.Attempt, r.MaxAttempts, r.Err,
			s.NextAttempt.Format(time.RFC3339))
		if lane != "" {
			g.log.Warn("approval: notification failed; it will be retried", "request", m.RequestID, "recipient", m.Recipient,
				"channel", lane, "attempt", r.Attempt, "next_attempt", s.NextAttempt, "err", r.Err)
		}
	}
	ev.Reason = auditSafe(ev.Reason, maxReasonBytes)
	s.Events = []AuditEvent{ev}
	h.settle(s)
	return s.Outcome
}

// settle records s, with its events mirrored to the audit sink. A lost
// lease (ErrConflict) is not an error: the message's new owner settles it.
func (h *outboxHandler) settle(s OutboxSettle) {
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	err := h.ob.SettleOutbox(ctx, s)
	switch {
	case err == nil:
		h.g.afterCommit(ctx, s.Events)
	case errors.Is(err, errUnaudited):
		h.g.log.Error("approval: cannot audit a notification outcome", "message", s.ID, "err", err)
	case errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound):
		h.g.log.Warn("approval: outbox message was taken over by another worker (lease ended); its outcome here is not recorded",
			"message", s.ID, "err", err)
	default:
		h.g.log.Error("approval: cannot record an outbox outcome; the message is sent again when its lease ends",
			"message", s.ID, "err", err)
	}
}

// notice returns the outbox notice of a notification about r, for a
// write to store with its change; nil for a gate without channels.
func (g *Gate) notice(typ NotificationType, r *Request, level int, now time.Time) []OutboxMessage {
	if g.outbox == nil {
		return nil
	}
	return []OutboxMessage{{ID: newOutboxID(), RequestID: r.ID, Type: typ, Level: level, State: OutboxPending,
		NextAttempt: now, CreatedAt: now}}
}

// notified is called once a write that stored notices has committed: it
// wakes delivery.
func (g *Gate) notified() {
	if g.engine != nil {
		g.engine.Wake()
	}
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
// store with its change; nil for a gate without channels.
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

// newOutboxID returns a time-ordered unique ID (UUIDv7), so that listing
// the outbox by ID lists it roughly oldest first.
func newOutboxID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

// outboxOf returns the outbox ListOutbox and Redrive work on: the gate's
// (the Store's, or the in-memory one of a gate with channels), else the
// Store's, if it has one.
func (g *Gate) outboxOf() (Outbox, bool) {
	if g.outbox != nil {
		return g.outbox, true
	}
	ob, ok := g.store.(Outbox)
	return ob, ok
}

// ListOutbox lists the messages of the gate's outbox, for an operator:
// the dead letters (State OutboxDead), what waits for a channel, or a
// request's. The outbox is the Store's, or, for a gate with channels on a
// Store without one, the gate's in memory (see DeliveryConfig.MemoryLimit).
// It returns an error wrapping ErrUnsupported for a gate that has neither.
func (g *Gate) ListOutbox(ctx context.Context, q OutboxQuery) (OutboxPage, error) {
	ob, ok := g.outboxOf()
	if !ok {
		return OutboxPage{}, fmt.Errorf("approval: list outbox: %w: the store has no outbox", ErrUnsupported)
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
// ID that names no dead letter is an error wrapping ErrNotFound. It works
// on the outbox ListOutbox lists.
func (g *Gate) Redrive(ctx context.Context, actor string, ids ...string) (int, error) {
	ob, ok := g.outboxOf()
	if !ok {
		return 0, fmt.Errorf("approval: redrive: %w: the store has no outbox", ErrUnsupported)
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
	if g.engine != nil {
		g.engine.WakeAll()
	}
	return len(ids), nil
}
