package approval

import (
	"context"
	"fmt"
	"time"
)

// NotifyAlert goes to the people an escalation step of StepNotify names:
// they are told about the request, and cannot decide it (no links).
const NotifyAlert NotificationType = "approval.alert"

// levelSince returns when p's current level opened.
func levelSince(r *Request, p *MatchedPolicy) time.Time {
	if p.Progress.Since.IsZero() {
		return r.CreatedAt
	}
	return p.Progress.Since
}

// nextDue returns when Tick must next look at an open request: its
// deadline, a level's timeout, its next escalation step or reminder,
// whichever comes first.
func nextDue(r *Request) time.Time {
	due := r.Deadline
	earlier := func(at time.Time) {
		if due.IsZero() || at.Before(due) {
			due = at
		}
	}
	for i := range r.Policies {
		p := &r.Policies[i]
		l, _, ok := p.currentLevel()
		if !ok || (len(p.Chain) == 0 && levelMet(r, p)) {
			continue
		}
		since := levelSince(r, p)
		if l.Timeout > 0 {
			earlier(since.Add(l.Timeout))
		}
		if p.Progress.Steps < len(l.Escalation) {
			if at := stepAt(r, since, &l.Escalation[p.Progress.Steps]); !at.IsZero() {
				earlier(at)
			}
		}
	}
	if at, ok := nextReminder(r); ok {
		earlier(at)
	}
	return due
}

// reminderEvery is the shortest ReminderInterval of r's policies; zero if
// none reminds.
func reminderEvery(r *Request) time.Duration {
	var every time.Duration
	for _, p := range r.Policies {
		if p.ReminderInterval > 0 && (every == 0 || p.ReminderInterval < every) {
			every = p.ReminderInterval
		}
	}
	return every
}

// nextReminder returns when r's approvers are next reminded, if ever.
func nextReminder(r *Request) (time.Time, bool) {
	every := reminderEvery(r)
	if every == 0 {
		return time.Time{}, false
	}
	return r.CreatedAt.Add(time.Duration(r.Reminders+1) * every), true
}

// progress is the change Tick makes to one open request.
type progress struct {
	g      *Gate
	ctx    context.Context
	r      *Request // the new version
	now    time.Time
	events []AuditEvent
	notes  []note
}

func (pr *progress) event(typ EventType, reason string, refs []PolicyRef) {
	if refs == nil {
		refs = policyRefs(pr.r.Policies)
	}
	pr.events = append(pr.events, AuditEvent{RequestID: pr.r.ID, Type: typ, Actor: SystemActor, Policies: refs,
		Reason: auditSafe(reason, maxReasonBytes), At: pr.now})
}

// end closes the request with status and reason.
func (pr *progress) end(status Status, reason string, typ EventType, notice NotificationType) {
	r := pr.r
	r.Status, r.Reason, r.ResolvedAt, r.DueAt = status, reason, pr.now, time.Time{}
	r.HoldUntil = pr.g.holdUntil(pr.now)
	pr.event(typ, reason, nil)
	pr.notes = append(pr.notes[:0], note{typ: notice})
}

// advance runs what is due on open request r at now, in one
// compare-and-set: each policy's escalation steps and level timeout, in
// time order, then the chains settled, the reminder interval, and the
// outcome. It reports whether it changed r.
func (g *Gate) advance(ctx context.Context, r *Request, now time.Time) (bool, error) {
	pr := &progress{g: g, ctx: ctx, r: r.Clone(), now: now}
	for pi := range pr.r.Policies {
		pr.policy(pi)
		if !pr.r.Status.Open() {
			break
		}
	}
	next := pr.r
	if next.Status.Open() {
		moved, opened := g.settle(ctx, next, SystemActor, now)
		pr.events = append(pr.events, moved...)
		for _, pi := range opened {
			pr.notes = append(pr.notes, note{typ: NotifyRequested, target: noticeTarget{Policy: next.Policies[pi].Name}})
		}
		if at, ok := nextReminder(next); ok && !now.Before(at) {
			next.Reminders = int(now.Sub(next.CreatedAt) / reminderEvery(next))
			pr.event(EventRequestReminded, fmt.Sprintf("reminder %d", next.Reminders), nil)
			pr.notes = append(pr.notes, note{typ: NotifyReminder})
		}
		if outcome(next) == StatusApproved {
			next.approve(now, "every policy met")
			pr.event(EventRequestApproved, next.Reason, nil)
			pr.notes = append(pr.notes[:0], note{typ: NotifyResolved})
		}
	}
	if len(pr.events) == 0 {
		return false, nil
	}
	next.Version++
	next.UpdatedAt = now
	if next.Status.Open() {
		next.DueAt = nextDue(next)
	}
	if err := g.update(ctx, Update{Request: next, Events: pr.events, Outbox: g.notices(next, pr.notes, now)}); err != nil {
		return false, err
	}
	return true, nil
}

// policy runs the due steps and level timeouts of policy pi, moving
// through levels as they pass.
func (pr *progress) policy(pi int) {
	r, now := pr.r, pr.now
	for range maxChainLevels * (maxSteps + 1) {
		p := &r.Policies[pi]
		l, li, ok := p.currentLevel()
		if !ok || !r.Status.Open() || (len(p.Chain) == 0 && levelMet(r, p)) {
			return
		}
		since := levelSince(r, p)
		timeoutAt := time.Time{}
		if l.Timeout > 0 {
			timeoutAt = since.Add(l.Timeout)
		}
		if p.Progress.Steps < len(l.Escalation) {
			s := l.Escalation[p.Progress.Steps]
			at := stepAt(r, since, &s)
			if !at.IsZero() && !now.Before(at) && (timeoutAt.IsZero() || at.Before(timeoutAt)) {
				p.Progress.Steps++
				pr.step(pi, &l, li, s)
				continue
			}
		}
		if timeoutAt.IsZero() || now.Before(timeoutAt) {
			return
		}
		where := "policy " + p.Name + ": " + levelName(&l, li)
		if r.OnTimeout == TimeoutDeny {
			pr.end(StatusTimedOut, where+" timed out", EventRequestTimedOut, NotifyTimedOut)
			return
		}
		pr.pass(pi, li, "timed out; passed (on timeout: approve)")
	}
}

// pass passes level li of policy pi, audited with why, and opens the next.
func (pr *progress) pass(pi, li int, why string) {
	p := &pr.r.Policies[pi]
	l := levelAt(p, li)
	pr.events = append(pr.events, pr.g.levelEvent(pr.r, pi, EventLevelPassed, SystemActor, levelName(&l, li)+": "+why, pr.now))
	pr.g.openLevel(pr.ctx, pr.r, pi, li+1, pr.now)
	if len(p.Chain) == 0 {
		return // a flat policy passed is met
	}
	// settle (in advance) skips and notifies from here on; a level opened
	// now is notified there too, unless it is met already.
	pr.openedByStep(pi)
}

// openedByStep records that policy pi opened a level outside settle.
func (pr *progress) openedByStep(pi int) {
	p := &pr.r.Policies[pi]
	for p.Progress.Level < len(p.Chain) && p.skipped(p.Progress.Level) {
		li := p.Progress.Level
		pr.events = append(pr.events, pr.g.levelEvent(pr.r, pi, EventLevelSkipped, SystemActor, levelName(&p.Chain[li], li)+": condition not met", pr.now))
		pr.g.openLevel(pr.ctx, pr.r, pi, li+1, pr.now)
	}
	if li := p.Progress.Level; li < len(p.Chain) {
		pr.events = append(pr.events, pr.g.levelEvent(pr.r, pi, EventLevelOpened, SystemActor, levelName(&p.Chain[li], li), pr.now))
		pr.notes = append(pr.notes, note{typ: NotifyRequested, target: noticeTarget{Policy: p.Name}})
	}
}

// step runs escalation step s of level li of policy pi.
func (pr *progress) step(pi int, l *Level, li int, s EscalationStep) {
	r := pr.r
	p := &r.Policies[pi]
	refs := []PolicyRef{{Name: p.Name, Hash: p.Hash}}
	where := "policy " + p.Name
	if len(p.Chain) > 0 {
		where += " " + levelName(l, li)
	}
	when := "after " + s.After.String()
	if s.Before > 0 {
		when = s.Before.String() + " before the deadline"
	}
	what := fmt.Sprintf("%s: step %d (%s %s)", where, p.Progress.Steps, s.Action, when)
	if s.Reason != "" {
		what += ": " + s.Reason
	}
	target := noticeTarget{Channels: s.Channels, Note: s.Reason}
	switch s.Action {
	case StepReminder:
		target.Policy = p.Name
		pr.event(EventRequestReminded, what, refs)
		pr.notes = append(pr.notes, note{typ: NotifyReminder, target: target})
	case StepEscalate:
		p.Progress.Added = append(p.Progress.Added, s.To...)
		p.Progress.Widened, p.Progress.People = true, nil
		r.EscalationLevel++
		r.Status = StatusEscalated
		target.Approvers = s.To
		pr.event(EventRequestEscalated, what+"; added "+approverList(s.To), refs)
		pr.notes = append(pr.notes, note{typ: NotifyEscalated, level: r.EscalationLevel, target: target})
	case StepReassign:
		p.Progress.Assigned = append([]Approver(nil), s.To...)
		p.Progress.Reassigned, p.Progress.Added, p.Progress.Widened, p.Progress.People = true, nil, true, nil
		if len(l.Groups) == 0 && l.Require.IsAll() {
			p.Progress.Members = nil
			if err := pr.g.resolveMembers(pr.ctx, r, pi); err != nil {
				pr.g.log.Warn("approval: could not resolve the members of a reassigned level; resolved at the first decision",
					"request", r.ID, "policy", p.Name, "err", err)
			}
		}
		r.EscalationLevel++
		r.Status = StatusEscalated
		target.Approvers = s.To
		pr.event(EventRequestReassigned, what+"; now "+approverList(s.To), refs)
		pr.notes = append(pr.notes, note{typ: NotifyRequested, target: target})
	case StepNotify:
		target.Approvers = s.To
		pr.event(EventRequestAlerted, what+"; alerted "+approverList(s.To), refs)
		pr.notes = append(pr.notes, note{typ: NotifyAlert, target: target})
	case StepAutoApprove:
		pr.event(EventLevelPassed, what+"; policy passed", refs)
		p.Progress = LevelProgress{Level: levelCount(p), Since: pr.now}
	case StepAutoDeny:
		pr.end(StatusDenied, "denied by an escalation step: "+what, EventRequestDenied, NotifyResolved)
	}
}

// approverList writes as for a message.
func approverList(as []Approver) string {
	s := ""
	for i, a := range as {
		if i > 0 {
			s += ", "
		}
		s += a.String()
	}
	return s
}
