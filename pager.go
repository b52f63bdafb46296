package approval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// breakGlassNote begins the Note of every break-glass alert.
const breakGlassNote = "BREAK-GLASS: "

// isResolution reports whether notifications of type t say that a request
// ended.
func isResolution(t NotificationType) bool {
	return t == NotifyResolved || t == NotifyTimedOut
}

// pagerWants reports whether pager channel name gets job's notice (see
// Pager): a step or a break-glass alert that names it, or the resolution
// of a request an escalation step of whose policies names it.
func pagerWants(job *notifyJob, name string) bool {
	if slices.Contains(job.target.Channels, name) {
		return true
	}
	return isResolution(job.typ) && len(job.target.Channels) == 0 && stepsName(job.req, name)
}

// stepsName reports whether an escalation step of r's matched policies,
// at any level, names channel name.
func stepsName(r *Request, name string) bool {
	names := func(steps []EscalationStep) bool {
		return slices.ContainsFunc(steps, func(s EscalationStep) bool { return slices.Contains(s.Channels, name) })
	}
	for i := range r.Policies {
		p := &r.Policies[i]
		if names(p.Escalation) || slices.ContainsFunc(p.Chain, func(l Level) bool { return names(l.Escalation) }) {
			return true
		}
	}
	return false
}

// recipientsFor resolves job's recipients when a channel that is not a
// Pager may deliver it: a notice only Pagers get (an escalation step that
// names Pagers alone) needs no directory, so a directory that is down
// cannot hold up the page that calls for help.
func (h *outboxHandler) recipientsFor(ctx context.Context, job *notifyJob) ([]string, error) {
	if !slices.ContainsFunc(h.chans, func(c namedChannel) bool { return !c.pager && job.target.wants(c.name) }) {
		return nil, nil
	}
	return h.recipients(ctx, job)
}

// addPages adds to s one delivery of job's notification, base, per Pager
// that gets it (see Pager), without a recipient.
func (h *outboxHandler) addPages(s *OutboxSettle, job *notifyJob, base Notification, refs []PolicyRef, now time.Time) {
	r := job.req
	for _, ch := range h.chans {
		if !ch.pager || !pagerWants(job, ch.name) {
			continue
		}
		n := base
		n.ID = newOutboxID()
		body, err := json.Marshal(&n)
		if err != nil {
			s.Events = append(s.Events, AuditEvent{RequestID: r.ID, Type: EventNotificationFailed, Actor: SystemActor,
				Policies: refs, Reason: auditSafe(fmt.Sprintf("%s via %s: encode: %v", job.typ, ch.name, err), maxReasonBytes), At: now})
			continue
		}
		s.Add = append(s.Add, OutboxMessage{ID: n.ID, RequestID: r.ID, Type: job.typ, Level: job.level, Channel: ch.name,
			Body: body, State: OutboxPending, NextAttempt: now, CreatedAt: now})
	}
}

// pageCurrent, before an attempt through a Pager, turns a notification
// that asks, made while its request was open, into the request's
// resolution if the request has been resolved since (see Pager), and
// records that in c for the audit trail.
func (h *outboxHandler) pageCurrent(ctx context.Context, lane string, c *claimed, n *Notification) error {
	ch := h.byName[lane]
	c.as = ""
	if ch == nil || !ch.pager || isResolution(n.Type) || !n.Status.Open() ||
		(n.Type == NotifyAlert && strings.HasPrefix(n.Note, breakGlassNote)) {
		return nil
	}
	r, err := h.g.store.Get(ctx, n.RequestID)
	if err != nil {
		err = fmt.Errorf("read the request again before paging: %w", err)
		if errors.Is(err, ErrNotFound) {
			return Permanent(err)
		}
		return err
	}
	if r.Status.Open() {
		return nil
	}
	n.Type, n.Status, n.Reason = NotifyResolved, r.Status, r.Reason
	if r.Status == StatusTimedOut {
		n.Type = NotifyTimedOut
	}
	c.as = n.Type
	return nil
}
