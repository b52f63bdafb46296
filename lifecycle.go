package approval

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Tick does the time-driven work that is due: it times out open requests
// past their deadline, runs the escalation steps that are due, times out
// levels past their Level.Timeout, reminds the approvers who have not
// answered when a reminder interval has passed, and expires approvals not
// consumed within their TTL. It
// handles at most limit requests (0 means 100) and returns how many it
// changed. Successive Ticks walk the due requests page by page and then
// start over, so a request that keeps failing to update does not stop the
// ones after it from being reached. Several gates may Tick one store at once: each change is a
// compare-and-set, so a request is timed out or expired once, and each
// escalation step runs once.
func (g *Gate) Tick(ctx context.Context, limit int) (int, error) {
	if g.obs == nil {
		return g.tick(ctx, limit)
	}
	start := time.Now()
	n, err := g.tick(ctx, limit)
	g.obs.observe(ctx, Observation{Kind: ObserveTick, Start: start, Duration: time.Since(start), Count: n, Err: err})
	return n, err
}

func (g *Gate) tick(ctx context.Context, limit int) (int, error) {
	if limit <= 0 {
		limit = DefaultPageSize
	}
	now := normalizeTime(g.now())
	g.tickMu.Lock()
	after := g.tickAfter
	g.tickMu.Unlock()
	due, err := g.store.ListDue(ctx, DueQuery{Now: now, After: after, Limit: limit})
	if err != nil {
		return 0, fmt.Errorf("approval: tick: %w", err)
	}
	// The next Tick goes on after this page, or starts over after a short
	// one: requests that keep failing to update cannot hold the others
	// back, and every due request is reached within a few Ticks.
	next := DuePosition{}
	if len(due) >= PageSize(limit) {
		last := due[len(due)-1]
		next = DuePosition{DueAt: last.DueAt, ID: last.ID}
	}
	g.tickMu.Lock()
	g.tickAfter = next
	g.tickMu.Unlock()
	changed := 0
	var errs []error
	for _, r := range due {
		var ok bool
		switch {
		case r.Status.Open() && !r.Deadline.IsZero() && !now.Before(r.Deadline):
			ok, err = g.applyTimeout(ctx, r)
		case r.Status.Open():
			ok, err = g.advance(ctx, r, now)
		case r.Status == StatusApproved:
			ok, err = g.expire(ctx, r)
		}
		if errors.Is(err, ErrConflict) {
			err = nil // another gate or decision got there first
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.ID, err))
		}
		if ok {
			changed++
		}
	}
	if err := g.tickCheckpoint(ctx, now); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return changed, fmt.Errorf("approval: tick: %w", errors.Join(errs...))
	}
	return changed, nil
}

// Run calls Tick every interval until ctx is done, logging errors. It
// returns ctx's error.
func (g *Gate) Run(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		for {
			n, err := g.Tick(ctx, 0)
			if err != nil {
				g.log.Error("approval: tick failed", "err", err)
			}
			if n < DefaultPageSize || err != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// applyTimeout ends an open request whose deadline passed: timed out, or
// approved if every matched policy says OnTimeout: Approve.
func (g *Gate) applyTimeout(ctx context.Context, r *Request) (bool, error) {
	now := normalizeTime(g.now())
	next := r.Clone()
	next.Version++
	next.UpdatedAt = now
	refs := policyRefs(r.Policies)
	events := []AuditEvent{{RequestID: r.ID, Type: EventRequestTimedOut, Actor: SystemActor, Policies: refs,
		Reason: "no decision by " + r.Deadline.Format(time.RFC3339), At: now}}
	notice := NotifyTimedOut
	if r.OnTimeout == TimeoutApprove {
		next.approve(now, "approved on timeout")
		events = append(events, AuditEvent{RequestID: r.ID, Type: EventRequestApproved, Actor: SystemActor, Policies: refs, Reason: next.Reason, At: now})
		notice = NotifyResolved
	} else {
		next.Status, next.ResolvedAt, next.DueAt = StatusTimedOut, now, time.Time{}
		next.HoldUntil = g.holdUntil(now)
		next.Reason = "timed out"
	}
	if err := g.update(ctx, Update{Request: next, Events: events, Outbox: g.notice(notice, next, 0, now)}); err != nil {
		return false, err
	}
	return true, nil
}

// holdUntil is when a denial or timeout at now stops being held; zero when
// the gate holds none.
func (g *Gate) holdUntil(now time.Time) time.Time {
	if g.hold <= 0 {
		return time.Time{}
	}
	return now.Add(g.hold)
}

// expire ends an approval that was not consumed within its TTL.
func (g *Gate) expire(ctx context.Context, r *Request) (bool, error) {
	now := normalizeTime(g.now())
	next := r.Clone()
	next.Version++
	next.Status, next.UpdatedAt, next.DueAt = StatusExpired, now, time.Time{}
	events := []AuditEvent{{RequestID: r.ID, Type: EventApprovalExpired, Actor: SystemActor, Policies: policyRefs(r.Policies),
		Reason: "not used by " + r.ExpiresAt.Format(time.RFC3339), At: now}}
	if err := g.update(ctx, Update{Request: next, Events: events}); err != nil {
		return false, err
	}
	return true, nil
}

// Cancel ends a request that is open or approved but not yet consumed, on
// behalf of actor (the requester, an operator, a workflow engine). It
// returns ErrNotPending if the request is already terminal, ErrNotFound for
// an unknown ID, and ErrInvalidDecision for an actor that is not a valid
// identity (see CanonicalID) or a reason that is not valid UTF-8 text of at
// most 4 KiB. The actor is recorded in canonical form.
func (g *Gate) Cancel(ctx context.Context, id, actor, reason string) (*Request, error) {
	if err := checkRequestID(id); err != nil {
		return nil, fmt.Errorf("approval: cancel: %w", err)
	}
	actor, err := CanonicalID(actor)
	if err != nil {
		return nil, fmt.Errorf("approval: cancel %s: %w: actor: %w", id, ErrInvalidDecision, err)
	}
	if err := checkString("reason", reason, maxReasonBytes); err != nil {
		return nil, fmt.Errorf("approval: cancel %s: %w: %v", id, ErrInvalidDecision, err)
	}
	for attempt := range maxAttempts {
		if err := backoff(ctx, attempt); err != nil {
			return nil, fmt.Errorf("approval: cancel %s: %w", id, err)
		}
		r, err := g.store.Get(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("approval: cancel %s: %w", id, err)
		}
		if r.Status.Terminal() {
			return nil, fmt.Errorf("approval: cancel %s: %w: request is %s", id, ErrNotPending, r.Status)
		}
		now := normalizeTime(g.now())
		next := r.Clone()
		next.Version++
		next.Status, next.UpdatedAt, next.DueAt = StatusCancelled, now, time.Time{}
		if next.ResolvedAt.IsZero() {
			next.ResolvedAt = now
		}
		next.Reason = "cancelled by " + actor
		if reason != "" {
			next.Reason += ": " + reason
		}
		events := []AuditEvent{{RequestID: id, Type: EventRequestCancelled, Actor: actor, Policies: policyRefs(r.Policies), Reason: reason, At: now}}
		err = g.update(ctx, Update{Request: next, Events: events, Outbox: g.notice(NotifyResolved, next, 0, now)})
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("approval: cancel %s: %w", id, err)
		}
		return next, nil
	}
	return nil, fmt.Errorf("approval: cancel %s: %w: gave up after %d attempts", id, ErrConflict, maxAttempts)
}

// MoveDeadline moves the deadline of open request id to deadline, later
// or earlier, on behalf of actor, with a reason; the change is audited
// (request.deadline_moved, with both times). Level timeouts, escalation
// steps that run Before the deadline, and Tick's next look follow the new
// deadline; steps counted After a level opened do not move. The gate does
// not decide who may move a deadline: the host authorises actor, as for
// Cancel.
//
// It returns ErrInvalidDeadline for a deadline not after now, ErrNotPending
// for a request that is not open, ErrNotFound for an unknown ID, and
// ErrInvalidDecision for an actor that is not a valid identity or a reason
// that is not UTF-8 text of at most 4 KiB.
func (g *Gate) MoveDeadline(ctx context.Context, id, actor string, deadline time.Time, reason string) (*Request, error) {
	if err := checkRequestID(id); err != nil {
		return nil, fmt.Errorf("approval: move deadline: %w", err)
	}
	actor, err := CanonicalID(actor)
	if err != nil {
		return nil, fmt.Errorf("approval: move deadline %s: %w: actor: %w", id, ErrInvalidDecision, err)
	}
	if err := checkString("reason", reason, maxReasonBytes); err != nil {
		return nil, fmt.Errorf("approval: move deadline %s: %w: %v", id, ErrInvalidDecision, err)
	}
	deadline = normalizeTime(deadline)
	for attempt := range maxAttempts {
		if err := backoff(ctx, attempt); err != nil {
			return nil, fmt.Errorf("approval: move deadline %s: %w", id, err)
		}
		now := normalizeTime(g.now())
		if !deadline.After(now) {
			return nil, fmt.Errorf("approval: move deadline %s: %w: %s is not after now (%s)", id, ErrInvalidDeadline,
				deadline.Format(time.RFC3339), now.Format(time.RFC3339))
		}
		r, err := g.store.Get(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("approval: move deadline %s: %w", id, err)
		}
		if !r.Status.Open() || (!r.Deadline.IsZero() && !now.Before(r.Deadline)) {
			return nil, fmt.Errorf("approval: move deadline %s: %w: request is %s", id, ErrNotPending, r.Status)
		}
		next := r.Clone()
		next.Version++
		next.UpdatedAt, next.Deadline = now, deadline
		next.DueAt = nextDue(next)
		what := "from " + fmtDeadline(r.Deadline) + " to " + deadline.Format(time.RFC3339)
		if reason != "" {
			what += ": " + reason
		}
		events := []AuditEvent{{RequestID: id, Type: EventDeadlineMoved, Actor: actor, Policies: policyRefs(r.Policies), Reason: what, At: now}}
		err = g.update(ctx, Update{Request: next, Events: events})
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("approval: move deadline %s: %w", id, err)
		}
		return next, nil
	}
	return nil, fmt.Errorf("approval: move deadline %s: %w: gave up after %d attempts", id, ErrConflict, maxAttempts)
}

func fmtDeadline(t time.Time) string {
	if t.IsZero() {
		return "none"
	}
	return t.Format(time.RFC3339)
}

// Wait blocks until request id is no longer open (approved, denied, timed
// out, cancelled...) or ctx is done, and returns the request. Decisions
// made through this gate wake it at once. If the Store implements
// ResolutionNotifier (sqlstore does: on PostgreSQL across processes,
// within milliseconds), Wait subscribes before its first read and
// decisions made by other gates and processes wake it too; it still
// re-reads the request every Config.PollInterval, so that a notifier that
// lost its connection delays Wait by at most that much. With any other
// store, decisions made by other processes are seen within
// Config.PollInterval. Wait does not time requests out by itself: run
// Tick or Run for that.
func (g *Gate) Wait(ctx context.Context, id string) (*Request, error) {
	if g.obs == nil {
		return g.wait(ctx, id)
	}
	start := time.Now()
	r, err := g.wait(ctx, id)
	o := Observation{Kind: ObserveWait, Start: start, Duration: time.Since(start), RequestID: id, Outcome: ObservedError, Err: err}
	if err == nil {
		o.Outcome, o.Policies, o.TraceParent = string(r.Status), policyNames(r.Policies), r.TraceParent
	}
	g.obs.observe(ctx, o)
	return r, err
}

func (g *Gate) wait(ctx context.Context, id string) (*Request, error) {
	if err := checkRequestID(id); err != nil {
		return nil, fmt.Errorf("approval: wait: %w", err)
	}
	ch, stop := g.waiters.Add(id)
	defer stop()
	var resolved <-chan struct{}
	if n, ok := g.store.(ResolutionNotifier); ok {
		// Subscribed before the first Get: a decision that commits after
		// it is either read by that Get or wakes the select below.
		c, stop := n.SubscribeResolved(id)
		if stop != nil {
			defer stop()
		}
		resolved = c
	}
	t := time.NewTicker(g.poll)
	defer t.Stop()
	for {
		r, err := g.store.Get(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("approval: wait %s: %w", id, err)
		}
		if !r.Status.Open() {
			return r, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("approval: wait %s: %w", id, ctx.Err())
		case <-ch:
		case <-resolved:
		case <-t.C:
		}
	}
}
