package approval

import (
	"context"
	"errors"
	"strings"
	"time"
)

// Requests that end as they are created: approved at once (every policy
// met: every level skipped, or passed on a recommendation) or denied at
// once (a deny policy, or a quorum that cannot be met), each recorded in
// one write with its events so that the trail explains it.

// approveAtOnce records req, whose every policy is met as it is created
// (every level of its chains skipped, or passed on a recommendation), as
// approved and consumed by this Guard in one write.
//
// An action with an IdempotencyKey is stored approved instead, and then
// consumed as any approval is: the store keeps one live request per key,
// so of two such Guards of one key only one runs the action.
func (g *Gate) approveAtOnce(ctx context.Context, req *Request, events []AuditEvent, reason string, note *guardNote) (Result, error) {
	now := req.CreatedAt
	req.approve(now, reason)
	req.Deadline = time.Time{}
	refs := policyRefs(req.Policies)
	events = append(events,
		AuditEvent{RequestID: req.ID, Type: EventRequestApproved, Actor: SystemActor, Policies: refs, Reason: req.Reason, At: now})
	if req.Action.IdempotencyKey != "" {
		return g.create(ctx, req, events, now, note)
	}
	req.Status, req.DueAt = StatusConsumed, time.Time{}
	events = append(events,
		AuditEvent{RequestID: req.ID, Type: EventApprovalConsumed, Actor: req.Action.RequestedBy, Policies: refs, Reason: req.Reason, At: now})
	stampHashes(req, events)
	_, created, err := g.store.Create(ctx, req, events)
	if err != nil {
		return Result{}, err
	}
	if !created {
		return Result{}, errors.New("store did not record a consumed request beside a live one (see Store.Create)")
	}
	g.afterCommit(ctx, events)
	g.observeCommit(ctx, req, events)
	return Result{Status: OutcomeApproved, RequestID: req.ID, Reason: req.Reason, Artifact: g.signArtifact(req)}, nil
}

// denyByPolicy records an action a deny policy refused: a request created
// and denied in one write, so the refusal is in the audit trail.
func (g *Gate) denyByPolicy(ctx context.Context, req *Request, m *match) (Result, error) {
	audited := ""
	if m.denyErr != "" {
		audited = m.deny.def.Reason + " (matcher failed: " + m.denyErr + ")"
	}
	return g.denyAtOnce(ctx, req, m.deny.def.Reason, audited)
}

// denyAtOnce records req as created and denied in one write, with reason
// (and audited, if not empty, as the reason in the trail).
func (g *Gate) denyAtOnce(ctx context.Context, req *Request, reason, audited string) (Result, error) {
	if audited == "" {
		audited = reason
	}
	req.Status, req.Reason, req.ResolvedAt = StatusDenied, reason, req.CreatedAt
	req.OnTimeout, req.Deadline, req.DueAt = TimeoutDeny, time.Time{}, time.Time{}
	refs := policyRefs(req.Policies)
	events := []AuditEvent{
		{RequestID: req.ID, Type: EventRequestCreated, Actor: req.Action.RequestedBy, Policies: refs, At: req.CreatedAt},
		{RequestID: req.ID, Type: EventRequestDenied, Actor: SystemActor, Policies: refs, Reason: audited, At: req.CreatedAt},
	}
	stampHashes(req, events)
	_, created, err := g.store.Create(ctx, req, events)
	if err != nil {
		return Result{}, err
	}
	if !created {
		return Result{}, errors.New("store did not record a denied request beside a live one (see Store.Create)")
	}
	g.afterCommit(ctx, events)
	g.observeCommit(ctx, req, events)
	return Result{Status: OutcomeDenied, RequestID: req.ID, Reason: reason}, nil
}

func joinReasons(ps []*compiledPolicy) string {
	if len(ps) == 1 {
		return ps[0].def.Reason
	}
	rs := make([]string, len(ps))
	for i, p := range ps {
		rs[i] = p.def.Reason
	}
	return strings.Join(rs, "; ")
}
