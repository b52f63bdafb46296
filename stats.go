package approval

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"time"
)

// OperatorStats is an optional Store capability, found by type assertion:
// a store that computes the numbers an operator watches (Gate.Stats) in a
// few indexed queries. memstore and sqlstore implement it; without it,
// Gate.Stats pages through List, ListAudit and ListOutbox instead.
// Methods may be called concurrently.
type OperatorStats interface {
	// OpenByPolicy returns, for each policy that open requests (pending
	// or escalated: waiting for people, see Status.Open) matched, how many
	// there are and when the oldest was created, in policy name order. A
	// request counts once under each policy it matched.
	OpenByPolicy(ctx context.Context) ([]PolicyOpen, error)
	// Resolutions calls fn with each request resolution (an event of
	// type request.approved, request.denied, request.timed_out or
	// request.cancelled) at or after since, once for each policy its
	// request matched, in no particular order, until fn returns an error,
	// which it returns.
	Resolutions(ctx context.Context, since time.Time, fn func(Resolution) error) error
	// OutboxByChannel returns, for each channel with messages in the
	// outbox, its pending and dead messages (see ChannelHealth), in
	// channel name order.
	OutboxByChannel(ctx context.Context) ([]ChannelHealth, error)
}

// PolicyOpen is how many open requests matched one policy (Stats.Open).
type PolicyOpen struct {
	// Policy is the policy's name.
	Policy string
	// Count is how many open requests matched it.
	Count int
	// Oldest is when the oldest of them was created.
	Oldest time.Time
}

// Resolution is one request leaving the open states, under one policy it
// matched (OperatorStats.Resolutions).
type Resolution struct {
	// RequestID is the request's ID.
	RequestID string
	// Policy is one policy the request matched.
	Policy string
	// Event is the resolution's type: EventRequestApproved,
	// EventRequestDenied, EventRequestTimedOut or EventRequestCancelled.
	Event EventType
	// CreatedAt is when the request was created.
	CreatedAt time.Time
	// At is when it was resolved.
	At time.Time
}

// ChannelHealth is the state of one channel's deliveries (Stats.Channels).
type ChannelHealth struct {
	// Channel is the channel's name.
	Channel string
	// Pending is how many messages wait for an attempt.
	Pending int
	// OldestPending is when the oldest of them was created; zero if none
	// waits. Now minus it is how far delivery lags.
	OldestPending time.Time
	// Retrying is how many of the pending messages failed at least once.
	Retrying int
	// Dead is how many messages are dead letters (see Gate.Redrive).
	Dead int
	// LastError is the error of a failed message, the newest pending one
	// that failed if any, else the newest dead letter; empty if none.
	LastError string
}

// DecisionTimes summarises how long requests of one policy took to be
// resolved, over one window (Stats.Decisions).
type DecisionTimes struct {
	// Count is how many requests were resolved in the window.
	Count int
	// Approved, Denied, TimedOut and Cancelled split Count by outcome.
	Approved, Denied, TimedOut, Cancelled int
	// P50 and P90 are the median and 90th percentile of the time from
	// creation to resolution (nearest rank); zero when Count is 0.
	P50, P90 time.Duration
}

// PolicyDecisions is the time to decision of one policy's requests
// (Stats.Decisions).
type PolicyDecisions struct {
	// Policy is the policy's name.
	Policy string
	// Day covers the 24 hours before Stats.At, Week the 7 days.
	Day, Week DecisionTimes
	// Daily covers each of the 7 days before Stats.At, oldest first:
	// Daily[6] is the last 24 hours.
	Daily [7]DecisionTimes
}

// VerifiedHead is the outcome of this gate's last VerifyAuditTrail that
// succeeded (Stats.Verified).
type VerifiedHead struct {
	// Head is the newest event that run verified.
	Head AuditHead
	// Events is how many events it verified.
	Events int64
	// At is when it finished, by the gate's clock.
	At time.Time
}

// Stats is what an operator looks at when approvals seem stuck: what is
// waiting, how long people take, whether notifications get out, and
// whether the audit trail still verifies (Gate.Stats).
type Stats struct {
	// At is when the stats were taken, by the gate's clock.
	At time.Time
	// Open is the open requests by policy, in policy name order.
	Open []PolicyOpen
	// Decisions is the time to decision by policy, for every policy that
	// resolved a request in the last 7 days, in policy name order. A
	// request resolved as it was created (by a deny policy, or one that
	// needs no approver) is not counted.
	Decisions []PolicyDecisions
	// Channels is the health of each of the gate's channels, and of any
	// other channel with messages in the outbox, in name order.
	Channels []ChannelHealth
	// Head is the newest event of the audit trail; zero if it is empty.
	Head AuditHead
	// LastCheckpoint is the newest audit.checkpoint event's own head and
	// time; zero if the trail has none, or if the store cannot find it
	// without reading the whole trail (it lacks AuditTail).
	LastCheckpoint AuditHead
	// LastCheckpointAt is when LastCheckpoint was signed.
	LastCheckpointAt time.Time
	// Verified is this gate's last successful VerifyAuditTrail; zero if
	// it has run none since it started.
	Verified VerifiedHead
}

// statsScanLimit bounds what Stats reads from a Store without the
// OperatorStats capability, per list: beyond it Stats fails with
// ErrUnsupported rather than read an unbounded store page by page.
const statsScanLimit = 100_000

// Stats returns the numbers an operator watches (see Stats). On a Store
// with OperatorStats (memstore and sqlstore) it runs a few indexed
// queries; otherwise it pages through the store, and fails with an error
// wrapping ErrUnsupported once a list passes 100,000 items.
func (g *Gate) Stats(ctx context.Context) (Stats, error) {
	now := g.now()
	st := Stats{At: now}
	os, native := g.store.(OperatorStats)
	var err error
	if native {
		st.Open, err = os.OpenByPolicy(ctx)
	} else {
		st.Open, err = g.openByPolicy(ctx)
	}
	if err != nil {
		return Stats{}, fmt.Errorf("approval: stats: open requests: %w", err)
	}
	since := now.Add(-7 * 24 * time.Hour)
	times := map[string]*[]resolved{}
	collect := func(r Resolution) error {
		// A request resolved as it was created (by a deny policy, or one
		// that needs no approver) took nobody's time.
		if r.At.Before(since) || r.At.After(now) || !r.At.After(r.CreatedAt) {
			return nil
		}
		d := r.At.Sub(r.CreatedAt)
		p := times[r.Policy]
		if p == nil {
			p = new([]resolved)
			times[r.Policy] = p
		}
		*p = append(*p, resolved{event: r.Event, took: max(d, 0), age: now.Sub(r.At)})
		return nil
	}
	if native {
		err = os.Resolutions(ctx, since, collect)
	} else {
		err = g.resolutions(ctx, since, collect)
	}
	if err != nil {
		return Stats{}, fmt.Errorf("approval: stats: resolutions: %w", err)
	}
	for policy, rs := range times {
		st.Decisions = append(st.Decisions, summarise(policy, *rs))
	}
	slices.SortFunc(st.Decisions, func(a, b PolicyDecisions) int { return strings.Compare(a.Policy, b.Policy) })
	if _, ok := g.store.(Outbox); native && ok {
		st.Channels, err = os.OutboxByChannel(ctx)
	} else {
		st.Channels, err = g.outboxByChannel(ctx)
	}
	if err != nil {
		return Stats{}, fmt.Errorf("approval: stats: outbox: %w", err)
	}
	st.Channels = g.withOwnChannels(st.Channels)
	if err := g.statsAudit(ctx, &st); err != nil {
		return Stats{}, fmt.Errorf("approval: stats: audit trail: %w", err)
	}
	if v := g.verified.Load(); v != nil {
		st.Verified = *v
	}
	return st, nil
}

// resolved is one resolution as Stats summarises it.
type resolved struct {
	event EventType
	took  time.Duration // creation to resolution
	age   time.Duration // resolution to Stats.At
}

// summarise computes one policy's decision times.
func summarise(policy string, rs []resolved) PolicyDecisions {
	pd := PolicyDecisions{Policy: policy}
	var day, week []time.Duration
	var daily [7][]time.Duration
	for _, r := range rs {
		week = append(week, r.took)
		count(&pd.Week, r.event)
		if r.age < 24*time.Hour {
			day = append(day, r.took)
			count(&pd.Day, r.event)
		}
		i := 6 - int(r.age/(24*time.Hour))
		if i >= 0 && i < 7 {
			daily[i] = append(daily[i], r.took)
			count(&pd.Daily[i], r.event)
		}
	}
	percentiles(&pd.Day, day)
	percentiles(&pd.Week, week)
	for i := range daily {
		percentiles(&pd.Daily[i], daily[i])
	}
	return pd
}

func count(t *DecisionTimes, e EventType) {
	t.Count++
	switch e {
	case EventRequestApproved:
		t.Approved++
	case EventRequestDenied:
		t.Denied++
	case EventRequestTimedOut:
		t.TimedOut++
	case EventRequestCancelled:
		t.Cancelled++
	}
}

// percentiles sets t's P50 and P90 by nearest rank.
func percentiles(t *DecisionTimes, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	rank := func(p int) time.Duration {
		i := (p*len(ds) + 99) / 100 // ceil(p/100 * n)
		return ds[max(i, 1)-1]
	}
	t.P50, t.P90 = rank(50), rank(90)
}

// withOwnChannels adds a zero row for each of the gate's channels the
// outbox holds nothing for, so an operator sees every channel.
func (g *Gate) withOwnChannels(hs []ChannelHealth) []ChannelHealth {
	for _, name := range g.chanNames {
		if !slices.ContainsFunc(hs, func(h ChannelHealth) bool { return h.Channel == name }) {
			hs = append(hs, ChannelHealth{Channel: name})
		}
	}
	slices.SortFunc(hs, func(a, b ChannelHealth) int { return strings.Compare(a.Channel, b.Channel) })
	return hs
}

// statsAudit fills the trail's head and newest checkpoint.
func (g *Gate) statsAudit(ctx context.Context, st *Stats) error {
	tail, ok := g.store.(AuditTail)
	if !ok {
		return nil
	}
	last, found, err := tail.LastAuditEvent(ctx)
	if err != nil || !found {
		return err
	}
	st.Head = AuditHead{Seq: last.Seq, Hash: last.Hash}
	page, err := g.store.ListAudit(ctx, AuditQuery{Type: EventAuditCheckpoint, Since: st.At.Add(-checkpointLookback)})
	if err != nil {
		return err
	}
	// Pages come oldest first: follow them to the newest checkpoint.
	for n := 0; ; n++ {
		if k := len(page.Events); k > 0 {
			e := page.Events[k-1]
			st.LastCheckpoint, st.LastCheckpointAt = AuditHead{Seq: e.Seq, Hash: e.Hash}, e.At
		}
		if page.Next == "" || n == 100 {
			return nil
		}
		if page, err = g.store.ListAudit(ctx, AuditQuery{Type: EventAuditCheckpoint, Since: st.At.Add(-checkpointLookback), Cursor: page.Next, Limit: MaxPageSize}); err != nil {
			return err
		}
	}
}

// checkpointLookback is how far back Stats looks for the newest
// checkpoint: a trail whose newest checkpoint is older shows none.
const checkpointLookback = 31 * 24 * time.Hour

// errStatsScan is the failure of a Stats over a store too large to page.
var errStatsScan = fmt.Errorf("the store lacks approval.OperatorStats and holds more than %d items to read: %w", statsScanLimit, ErrUnsupported)

// openByPolicy is OpenByPolicy over Store.List.
func (g *Gate) openByPolicy(ctx context.Context) ([]PolicyOpen, error) {
	by := map[string]*PolicyOpen{}
	q := RequestQuery{Status: []Status{StatusPending, StatusEscalated}, Limit: MaxPageSize}
	for n := 0; ; {
		page, err := g.store.List(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, r := range page.Requests {
			for _, p := range r.Policies {
				o := by[p.Name]
				if o == nil {
					o = &PolicyOpen{Policy: p.Name, Oldest: r.CreatedAt}
					by[p.Name] = o
				}
				o.Count++
				if r.CreatedAt.Before(o.Oldest) {
					o.Oldest = r.CreatedAt
				}
			}
		}
		if n += len(page.Requests); page.Next == "" {
			break
		} else if n >= statsScanLimit {
			return nil, errStatsScan
		}
		q.Cursor = page.Next
	}
	out := make([]PolicyOpen, 0, len(by))
	for _, o := range by {
		out = append(out, *o)
	}
	slices.SortFunc(out, func(a, b PolicyOpen) int { return strings.Compare(a.Policy, b.Policy) })
	return out, nil
}

// resolutions is Resolutions over Store.ListAudit and Store.Get: the
// policies each resolution event names, and its request's creation time.
func (g *Gate) resolutions(ctx context.Context, since time.Time, fn func(Resolution) error) error {
	n := 0
	for _, t := range []EventType{EventRequestApproved, EventRequestDenied, EventRequestTimedOut, EventRequestCancelled} {
		q := AuditQuery{Type: t, Since: since, Limit: MaxPageSize}
		for {
			page, err := g.store.ListAudit(ctx, q)
			if err != nil {
				return err
			}
			for _, e := range page.Events {
				created, err := g.createdAt(ctx, e.RequestID)
				if err != nil {
					return err
				} else if created.IsZero() {
					continue // neither the request nor its creation is kept
				}
				for _, p := range e.Policies {
					if err := fn(Resolution{RequestID: e.RequestID, Policy: p.Name, Event: e.Type, CreatedAt: created, At: e.At}); err != nil {
						return err
					}
				}
			}
			if n += len(page.Events); page.Next == "" {
				break
			} else if n >= statsScanLimit {
				return errStatsScan
			}
			q.Cursor = page.Next
		}
	}
	return nil
}

// createdAt returns when request id was created: the stored request's
// CreatedAt, or, for a request the store dropped, its request.created
// event's time; zero if neither is kept.
func (g *Gate) createdAt(ctx context.Context, id string) (time.Time, error) {
	r, err := g.store.Get(ctx, id)
	if err == nil {
		return r.CreatedAt, nil
	} else if !errors.Is(err, ErrNotFound) {
		return time.Time{}, err
	}
	page, err := g.store.ListAudit(ctx, AuditQuery{RequestID: id, Limit: 1})
	if err != nil || len(page.Events) == 0 || page.Events[0].Type != EventRequestCreated {
		return time.Time{}, err
	}
	return page.Events[0].At, nil
}

// outboxByChannel is OutboxByChannel over Outbox.ListOutbox; a store
// without an outbox has nothing to show.
func (g *Gate) outboxByChannel(ctx context.Context) ([]ChannelHealth, error) {
	ob, ok := g.outboxOf()
	if !ok {
		return nil, nil
	}
	var msgs []OutboxMessage
	for _, state := range []OutboxState{OutboxPending, OutboxDead} {
		q := OutboxQuery{State: state, Limit: MaxPageSize}
		for {
			page, err := ob.ListOutbox(ctx, q)
			if err != nil {
				return nil, err
			}
			msgs = append(msgs, page.Messages...)
			if page.Next == "" {
				break
			} else if len(msgs) >= statsScanLimit {
				return nil, errStatsScan
			}
			q.Cursor = page.Next
		}
	}
	return ChannelHealths(slices.Values(msgs)), nil
}

// ChannelHealths summarises outbox messages (pending ones and dead
// letters) by channel, in channel name order, as
// OperatorStats.OutboxByChannel answers: for a store that walks its
// messages (memstore does), and for Gate.Stats over a store without
// OperatorStats. LastError is the newest pending message's error, else the
// newest dead letter's.
func ChannelHealths(msgs iter.Seq[OutboxMessage]) []ChannelHealth {
	by := map[string]*ChannelHealth{}
	last := map[string]OutboxMessage{} // the message whose error LastError is
	for m := range msgs {
		h := by[m.Channel]
		if h == nil {
			h = &ChannelHealth{Channel: m.Channel}
			by[m.Channel] = h
		}
		pending := m.State == OutboxPending
		if pending {
			h.Pending++
			if h.OldestPending.IsZero() || m.CreatedAt.Before(h.OldestPending) {
				h.OldestPending = m.CreatedAt
			}
			if m.Attempts > 0 {
				h.Retrying++
			}
		} else {
			h.Dead++
		}
		if m.LastError == "" {
			continue
		}
		l, ok := last[m.Channel]
		lp := l.State == OutboxPending
		if !ok || (pending && !lp) || (pending == lp && m.CreatedAt.After(l.CreatedAt)) {
			last[m.Channel] = m
			h.LastError = m.LastError
		}
	}
	out := make([]ChannelHealth, 0, len(by))
	for _, h := range by {
		out = append(out, *h)
	}
	slices.SortFunc(out, func(a, b ChannelHealth) int { return strings.Compare(a.Channel, b.Channel) })
	return out
}
