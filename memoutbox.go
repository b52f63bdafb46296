package approval

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

const (
	// closeGrace bounds the audit writes Close makes after its context
	// ended.
	closeGrace = time.Second
	// auditBatch bounds the events of one audit write.
	auditBatch = 500
)

// errUnaudited marks an outcome the in-memory outbox recorded whose audit
// event the Store refused.
var errUnaudited = errors.New("outcome recorded, audit event not stored")

// memOutbox is the outbox of a gate with channels whose Store has none:
// the Outbox contract, kept in the gate's memory in front of the Store, so
// that one delivery engine serves every store. Its guarantees are those
// of DeliveryConfig.MemoryLimit: what a Store's outbox keeps across a
// crash, this loses; a claimed message stays claimed until settled, so
// each attempt sends once; it holds at most limit pending notices and limit
// pending deliveries per channel, and audits as notification.failed each
// one that does not fit or that Close leaves undelivered; it keeps the
// newest limit dead letters. It is safe for concurrent use.
// outboxWatch is a test's view of the in-memory outbox: claim is called
// after each claim with the channel ("" for notices) and the IDs claimed,
// settle after each settlement with the ID. Both nil in production.
type outboxWatch struct {
	claim  func(channel string, ids []string)
	settle func(id string)
}

type memOutbox struct {
	watch outboxWatch
	g     *Gate
	limit int

	mu    sync.Mutex
	lanes map[string]map[string]*memMessage // pending, by channel ("" notices) and ID
	dead  map[string]*memMessage
	order []string // dead letter IDs, oldest first
	// intakeClosed refuses new notices (Close has begun); closed refuses
	// everything (Close has ended).
	intakeClosed, closed bool
}

// memMessage is one message, with the policies of its request, for the
// events of a message that is dropped.
type memMessage struct {
	OutboxMessage
	refs []PolicyRef
	// req is a notice's request as the change left it: its recipients are
	// those of that moment, as the change's own notices were, whatever
	// happened to the request since.
	req *Request
}

func newMemOutbox(g *Gate, limit int) *memOutbox {
	return &memOutbox{g: g, limit: limit, lanes: map[string]map[string]*memMessage{}, dead: map[string]*memMessage{}}
}

// CreateWithOutbox implements Outbox: Store.Create, then, if it created
// req, msgs kept in memory.
func (o *memOutbox) CreateWithOutbox(ctx context.Context, req *Request, events []AuditEvent, msgs []OutboxMessage) (*Request, bool, error) {
	stored, created, err := o.g.store.Create(ctx, req, events)
	if err == nil && created {
		o.push(ctx, req, msgs)
	}
	return stored, created, err
}

// push keeps the notices msgs of a change to r that has committed. A
// notice that does not fit, or that comes after Close began, is audited
// as notification.failed: the store write outlives ctx, so the record is
// kept.
func (o *memOutbox) push(ctx context.Context, r *Request, msgs []OutboxMessage) {
	refs, snap := policyRefs(r.Policies), r.Clone()
	var events []AuditEvent
	o.mu.Lock()
	for _, m := range msgs {
		if reason := o.refuse(m.Channel); reason != "" {
			events = append(events, AuditEvent{RequestID: r.ID, Type: EventNotificationFailed, Actor: SystemActor, Policies: refs,
				Reason: string(m.Type) + ": " + reason, At: normalizeTime(o.g.now())})
			continue
		}
		o.add(&memMessage{OutboxMessage: m, refs: refs, req: snap})
	}
	o.mu.Unlock()
	if len(events) == 0 {
		return
	}
	o.g.log.Error("approval: notification not queued", "request", r.ID, "reason", events[0].Reason)
	if err := o.g.record(ctx, events); err != nil {
		o.g.log.Error("approval: cannot audit a notification not queued", "request", r.ID, "err", err)
	}
}

// request returns the request of notice id as the change that stored it
// left it, or nil.
func (o *memOutbox) request(id string) *Request {
	o.mu.Lock()
	defer o.mu.Unlock()
	if m := o.lanes[""][id]; m != nil {
		return m.req
	}
	return nil
}

// refuse says why a new message of channel cannot be kept, or "". o.mu
// must be held.
func (o *memOutbox) refuse(channel string) string {
	switch {
	case o.closed || (channel == "" && o.intakeClosed):
		return reasonClosed
	case len(o.lanes[channel]) < o.limit:
		return ""
	case channel == "":
		return fmt.Sprintf("outbox full (%d notices waiting); not sent", o.limit)
	}
	return fmt.Sprintf("outbox full (%d deliveries waiting for %s); not sent", o.limit, channel)
}

// add keeps m as pending. o.mu must be held.
func (o *memOutbox) add(m *memMessage) {
	m.State = OutboxPending
	l := o.lanes[m.Channel]
	if l == nil {
		l = map[string]*memMessage{}
		o.lanes[m.Channel] = l
	}
	l[m.ID] = m
}

// ClaimOutbox implements Outbox. A claim here lasts until its message is
// settled, whatever q.Lease says: no other process can take a message
// over, and a lease ended by the clock (a slow send, a clock that jumps)
// would only send it twice.
func (o *memOutbox) ClaimOutbox(ctx context.Context, q OutboxClaim) ([]OutboxMessage, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("claim outbox: %w", err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	var due []*memMessage
	for _, m := range o.lanes[q.Channel] {
		if m.LeaseOwner == "" && !m.NextAttempt.After(q.Now) && (q.Recipient == "" || m.Recipient == q.Recipient) {
			due = append(due, m)
		}
	}
	slices.SortFunc(due, func(a, b *memMessage) int {
		if c := a.NextAttempt.Compare(b.NextAttempt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	due = due[:min(len(due), PageSize(q.Limit))]
	out := make([]OutboxMessage, len(due))
	for i, m := range due {
		m.LeaseOwner, m.LeaseUntil = q.Owner, q.Now.Add(q.Lease)
		out[i] = m.OutboxMessage
	}
	if o.watch.claim != nil {
		ids := make([]string, len(out))
		for i := range out {
			ids[i] = out[i].ID
		}
		defer o.watch.claim(q.Channel, ids) // after the unlock
	}
	return out, nil
}

// SettleOutbox implements Outbox. A delivery of s.Add that does not fit
// is audited as notification.failed; the events are appended to the
// Store's audit trail after the outcome is kept, and when the Store
// refuses them the error wraps errUnaudited.
func (o *memOutbox) SettleOutbox(ctx context.Context, s OutboxSettle) error {
	o.mu.Lock()
	var m *memMessage
	for _, l := range o.lanes {
		if m = l[s.ID]; m != nil {
			break
		}
	}
	switch {
	case m == nil:
		o.mu.Unlock()
		return fmt.Errorf("settle outbox %s: %w", s.ID, ErrNotFound)
	case m.LeaseOwner != s.Owner:
		o.mu.Unlock()
		return fmt.Errorf("settle outbox %s: not leased by %s: %w", s.ID, s.Owner, ErrConflict)
	}
	m.LeaseOwner, m.LeaseUntil = "", time.Time{}
	switch s.Outcome {
	case OutboxDone:
		delete(o.lanes[m.Channel], m.ID)
	case OutboxRetry:
		m.Attempts, m.NextAttempt, m.LastError = s.Attempts, s.NextAttempt, s.LastError
	case OutboxDeadLetter:
		m.Attempts, m.LastError = s.Attempts, s.LastError
		o.deadLetter(m)
	default:
		o.mu.Unlock()
		return fmt.Errorf("settle outbox %s: unknown outcome %d", s.ID, s.Outcome)
	}
	var dropped []AuditEvent
	for _, a := range s.Add {
		if reason := o.refuse(a.Channel); reason != "" {
			dropped = append(dropped, AuditEvent{RequestID: a.RequestID, Type: EventNotificationFailed, Actor: SystemActor, Policies: m.refs,
				Reason: auditSafe(fmt.Sprintf("%s to %s via %s: %s", a.Type, a.Recipient, a.Channel, reason), maxReasonBytes),
				At:     normalizeTime(o.g.now())})
			continue
		}
		o.add(&memMessage{OutboxMessage: a, refs: m.refs})
	}
	o.mu.Unlock()
	if o.watch.settle != nil {
		defer o.watch.settle(s.ID) // once the events are written too
	}
	if len(dropped) > 0 {
		o.g.log.Error("approval: notifications not queued", "request", m.RequestID, "count", len(dropped), "reason", dropped[0].Reason)
		o.audit(ctx, dropped)
	}
	if len(s.Events) == 0 {
		return nil
	}
	if err := o.g.store.AppendAudit(ctx, s.Events); err != nil {
		return fmt.Errorf("settle outbox %s: %w: %w", s.ID, errUnaudited, err)
	}
	return nil
}

// deadLetter moves pending m to the dead letters, dropping the oldest
// beyond the limit (they were audited as dead-lettered). o.mu must be
// held.
func (o *memOutbox) deadLetter(m *memMessage) {
	delete(o.lanes[m.Channel], m.ID)
	m.State = OutboxDead
	o.dead[m.ID] = m
	o.order = append(o.order, m.ID)
	for len(o.dead) > o.limit {
		id := o.order[0]
		o.order = o.order[1:]
		if _, ok := o.dead[id]; ok {
			delete(o.dead, id)
			o.g.log.Warn("approval: in-memory outbox full of dead letters; the oldest is dropped, not redriven", "message", id)
		}
	}
}

// ListOutbox implements Outbox. The cursor is the ID of the last message
// of the previous page.
func (o *memOutbox) ListOutbox(ctx context.Context, q OutboxQuery) (OutboxPage, error) {
	if err := ctx.Err(); err != nil {
		return OutboxPage{}, fmt.Errorf("list outbox: %w", err)
	}
	if q.Cursor != "" && !isOutboxID(q.Cursor) {
		return OutboxPage{}, fmt.Errorf("%w %.64q (pass OutboxPage.Next)", ErrInvalidCursor, q.Cursor)
	}
	limit := PageSize(q.Limit)
	o.mu.Lock()
	var sel []OutboxMessage
	keep := func(m *memMessage) {
		if (q.State == "" || m.State == q.State) && (q.Channel == "" || m.Channel == q.Channel) &&
			(q.RequestID == "" || m.RequestID == q.RequestID) && m.ID > q.Cursor {
			sel = append(sel, m.OutboxMessage)
		}
	}
	for _, l := range o.lanes {
		for _, m := range l {
			keep(m)
		}
	}
	for _, m := range o.dead {
		keep(m)
	}
	o.mu.Unlock()
	slices.SortFunc(sel, func(a, b OutboxMessage) int { return cmp.Compare(a.ID, b.ID) })
	var page OutboxPage
	if len(sel) > limit {
		sel = sel[:limit]
		page.Next = sel[limit-1].ID
	}
	page.Messages = sel
	return page, nil
}

// isOutboxID reports whether c has the shape of a message ID the gate
// makes (a cursor may name a message delivered since).
func isOutboxID(c string) bool {
	return len(c) == 36 && c[8] == '-' && c[13] == '-' && c[18] == '-' && c[23] == '-'
}

// RedriveOutbox implements Outbox.
func (o *memOutbox) RedriveOutbox(ctx context.Context, id string, now time.Time, ev *AuditEvent) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redrive %.64q: %w", id, err)
	}
	o.mu.Lock()
	m, ok := o.dead[id]
	if ok {
		delete(o.dead, id)
		m.Attempts, m.NextAttempt = 0, now
		o.add(m)
	}
	o.mu.Unlock()
	if !ok {
		return fmt.Errorf("redrive %.64q: no such dead letter: %w", id, ErrNotFound)
	}
	if ev == nil {
		return nil
	}
	ev.RequestID = m.RequestID
	evs := []AuditEvent{*ev}
	if err := o.g.store.AppendAudit(ctx, evs); err != nil {
		return fmt.Errorf("redrive %.64q: %w: %w", id, errUnaudited, err)
	}
	*ev = evs[0]
	return nil
}

// closeIntake refuses the notices of later changes: Close has begun.
func (o *memOutbox) closeIntake() {
	o.mu.Lock()
	o.intakeClosed = true
	o.mu.Unlock()
}

// close ends the outbox once delivery has stopped (stopErr is the
// engine's: ctx ended first). It audits each message left pending as
// notification.failed, "gate closed before delivery", logs their number
// and returns an error wrapping ctx's if ctx ended. Later messages are
// audited the same way at once.
func (o *memOutbox) close(ctx context.Context, stopErr error) error {
	o.mu.Lock()
	o.closed = true
	lanes := o.lanes
	o.lanes, o.dead, o.order = map[string]map[string]*memMessage{}, map[string]*memMessage{}, nil
	o.mu.Unlock()

	var left []*memMessage
	for _, l := range lanes {
		for _, m := range l {
			left = append(left, m)
		}
	}
	slices.SortFunc(left, func(a, b *memMessage) int { return cmp.Compare(a.ID, b.ID) }) // oldest first
	now := normalizeTime(o.g.now())
	events := make([]AuditEvent, 0, len(left))
	notices, deliveries := 0, 0
	for _, m := range left {
		{
			ev := AuditEvent{RequestID: m.RequestID, Type: EventNotificationFailed, Actor: SystemActor, Policies: m.refs, At: now}
			if m.Channel == "" {
				notices++
				ev.Reason = fmt.Sprintf("%s: %s (recipients not resolved)", m.Type, reasonClosed)
			} else {
				deliveries++
				ev.Reason = auditSafe(fmt.Sprintf("%s to %s via %s: %s", m.Type, m.Recipient, m.Channel, reasonClosed), maxReasonBytes)
			}
			events = append(events, ev)
		}
	}
	if len(events) > 0 {
		o.g.log.Error("approval: gate closed before delivery; the undelivered are audited as "+string(EventNotificationFailed),
			"notices", notices, "notifications", deliveries, "err", stopErr)
	}
	actx := ctx
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(context.WithoutCancel(ctx), closeGrace)
		defer cancel()
	}
	o.audit(actx, events)
	if stopErr != nil {
		return fmt.Errorf("approval: close: %d notifications and %d unresolved notices left undelivered (audited): %w",
			deliveries, notices, stopErr)
	}
	return nil
}

// audit writes events in batches, each bounded by auditTimeout and by
// ctx.
func (o *memOutbox) audit(ctx context.Context, events []AuditEvent) {
	for len(events) > 0 {
		batch := events[:min(len(events), auditBatch)]
		events = events[len(batch):]
		actx, cancel := context.WithTimeout(ctx, auditTimeout)
		err := o.g.appendAudit(actx, batch)
		cancel()
		if err != nil {
			o.g.log.Error("approval: cannot audit notification outcomes", "events", len(batch)+len(events),
				"request", batch[0].RequestID, "err", err)
			return
		}
	}
}
