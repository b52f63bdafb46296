package approval

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/signoff/approval/internal/text"
)

// Recommendation is an automated reviewer's advice on a request: an AI
// agent that gathered the logs, scored the risk and suggests an answer.
// Reviewers see it beside the request. It is never a vote: it counts
// toward no quorum and no level. A policy may let a recommendation to
// approve pass it, but only for an action whose risk is below the
// policy's RecommendationApprovesBelow (see Policy), audited as such.
type Recommendation struct {
	// By names who produced it ("risk-reviewer", "model:claude"). Required.
	By string `json:"by"`
	// Verdict is VerdictApprove or VerdictDeny.
	Verdict Verdict `json:"verdict"`
	// Summary says why, for reviewers.
	Summary string `json:"summary,omitempty"`
	// Confidence is the producer's confidence, from 0 to 1.
	Confidence float64 `json:"confidence"`
	// Context is the supporting context: links to logs, test results,
	// a diff summary (at most 16 entries).
	Context map[string]string `json:"context,omitempty"`
	// At is when the gate recorded it.
	At time.Time `json:"at"`
}

// Bounds of recommendations.
const (
	maxRecommendations = 16
	maxRecContext      = 16
)

// check validates rec.
func (rec *Recommendation) check() error {
	if rec.By == "" {
		return errors.New("recommendation without By")
	}
	if err := checkString("recommendation by", rec.By, 256); err != nil {
		return err
	}
	if rec.Verdict != VerdictApprove && rec.Verdict != VerdictDeny {
		return fmt.Errorf("recommendation verdict %q (want approve or deny)", text.Clip(string(rec.Verdict), 16))
	}
	if err := checkString("recommendation summary", rec.Summary, maxReasonBytes); err != nil {
		return err
	}
	if math.IsNaN(rec.Confidence) || rec.Confidence < 0 || rec.Confidence > 1 {
		return fmt.Errorf("recommendation confidence %v (want 0 to 1)", rec.Confidence)
	}
	if len(rec.Context) > maxRecContext {
		return fmt.Errorf("recommendation context has %d entries, at most %d", len(rec.Context), maxRecContext)
	}
	for k, v := range rec.Context {
		if err := checkString("recommendation context key", k, 256); err != nil {
			return err
		}
		if err := checkString("recommendation context", v, maxReasonBytes); err != nil {
			return err
		}
	}
	return nil
}

func (rec Recommendation) clone() Recommendation {
	if rec.Context != nil {
		m := make(map[string]string, len(rec.Context))
		for k, v := range rec.Context {
			m[k] = v
		}
		rec.Context = m
	}
	return rec
}

// recommends reports whether rec lets policy p pass for action a: a
// recommendation to approve, at least as confident as the policy asks,
// on an action whose risk is known and below the policy's bound.
func recommends(p *MatchedPolicy, a *Action, rec *Recommendation) bool {
	return rec.Verdict == VerdictApprove && p.RecommendationApprovesBelow != RiskNone &&
		a.Risk != RiskNone && a.Risk < p.RecommendationApprovesBelow && rec.Confidence >= p.RecommendationMinConfidence
}

// applyRecommendation passes the policies of r rec lets pass, and returns
// the audit events; r is the caller's copy.
func applyRecommendation(r *Request, rec *Recommendation, now time.Time) []AuditEvent {
	var events []AuditEvent
	for pi := range r.Policies {
		p := &r.Policies[pi]
		if policyMet(r, p) || !recommends(p, &r.Action, rec) {
			continue
		}
		p.Progress = LevelProgress{Level: levelCount(p), Since: now}
		what := fmt.Sprintf("policy %s: passed on the recommendation of %s (approve, confidence %s; risk %s below %s)",
			p.Name, rec.By, strconv.FormatFloat(rec.Confidence, 'f', -1, 64), r.Action.Risk, p.RecommendationApprovesBelow)
		if rec.Summary != "" {
			what += ": " + rec.Summary
		}
		events = append(events, AuditEvent{RequestID: r.ID, Type: EventLevelPassed, Actor: SystemActor,
			Policies: []PolicyRef{{Name: p.Name, Hash: p.Hash}}, Reason: auditSafe(what, maxReasonBytes), At: now})
	}
	return events
}

// recommendationEvent audits rec attached to r by actor.
func recommendationEvent(r *Request, actor string, rec *Recommendation) AuditEvent {
	what := fmt.Sprintf("%s recommends %s (confidence %s)", rec.By, rec.Verdict, strconv.FormatFloat(rec.Confidence, 'f', -1, 64))
	if rec.Summary != "" {
		what += ": " + rec.Summary
	}
	return AuditEvent{RequestID: r.ID, Type: EventRequestRecommended, Actor: actor, Policies: policyRefs(r.Policies),
		Reason: auditSafe(what, maxReasonBytes), At: rec.At}
}

// Recommend attaches rec to open request id, on behalf of actor (the
// agent runtime or service that produced it), audited
// (request.recommended). If it lets every policy of the request pass (see
// Recommendation), the request is approved, audited as such. It returns the
// request as it stands after, and ErrInvalidDecision for a recommendation
// or actor that does not validate or a request that has 16 already,
// ErrNotPending for a request that is not open, ErrNotFound for an
// unknown ID.
func (g *Gate) Recommend(ctx context.Context, id, actor string, rec Recommendation) (*Request, error) {
	if err := checkRequestID(id); err != nil {
		return nil, fmt.Errorf("approval: recommend: %w", err)
	}
	actor, err := CanonicalID(actor)
	if err != nil {
		return nil, fmt.Errorf("approval: recommend %s: %w: actor: %w", id, ErrInvalidDecision, err)
	}
	if err := rec.check(); err != nil {
		return nil, fmt.Errorf("approval: recommend %s: %w: %v", id, ErrInvalidDecision, err)
	}
	rec = rec.clone()
	for attempt := range maxAttempts {
		if err := backoff(ctx, attempt); err != nil {
			return nil, fmt.Errorf("approval: recommend %s: %w", id, err)
		}
		r, err := g.store.Get(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("approval: recommend %s: %w", id, err)
		}
		now := normalizeTime(g.now())
		if !r.Status.Open() || (!r.Deadline.IsZero() && !now.Before(r.Deadline)) {
			return nil, fmt.Errorf("approval: recommend %s: %w: request is %s", id, ErrNotPending, r.Status)
		}
		if len(r.Recommendations) >= maxRecommendations {
			return nil, fmt.Errorf("approval: recommend %s: %w: the request has %d recommendations already", id, ErrInvalidDecision, len(r.Recommendations))
		}
		next := r.Clone()
		next.Version++
		next.UpdatedAt = now
		rec.At = now
		next.Recommendations = append(next.Recommendations, rec)
		events := []AuditEvent{recommendationEvent(next, actor, &rec)}
		events = append(events, applyRecommendation(next, &rec, now)...)
		var notes []note
		if allMet(next) {
			next.approve(now, "approved on the recommendation of "+rec.By)
			events = append(events, AuditEvent{RequestID: id, Type: EventRequestApproved, Actor: SystemActor,
				Policies: policyRefs(next.Policies), Reason: next.Reason, At: now})
			notes = append(notes, note{typ: NotifyResolved})
		} else {
			next.DueAt = nextDue(next)
		}
		err = g.update(ctx, Update{Request: next, Events: events, Outbox: g.notices(next, notes, now)})
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("approval: recommend %s: %w", id, err)
		}
		return next, nil
	}
	return nil, fmt.Errorf("approval: recommend %s: %w: gave up after %d attempts", id, ErrConflict, maxAttempts)
}
