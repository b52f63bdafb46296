package approval

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/signoff/approval/internal/text"
)

// BreakGlass configures the emergency path around a request's policies
// (Config.BreakGlass): the people it names approve an open request at
// once, with a reason, through Gate.BreakGlass. It is loud by design:
// audited as its own event type, announced to every approver of the
// request and to Security, and marked in the artifact.
type BreakGlass struct {
	// Approvers may break the glass: users, groups or roles (resolved
	// through the Directory at the time). Required.
	Approvers []Approver
	// SecondPerson makes a break-glass need two people of Approvers: the
	// first opens it (the request stays open, everyone is told), the
	// second, another person, approves.
	SecondPerson bool
	// Security are told of every break-glass besides the request's
	// approvers. Defaults to none.
	Security []Approver
	// SecurityChannels names the gate's channels that tell Security; a
	// Pager named here raises one alert per break-glass (see Pager).
	// Defaults to all of them but the Pagers.
	SecurityChannels []string
	// AllowRequester lets the requester break the glass on their own
	// request. Off by default: segregation applies as it does to votes.
	AllowRequester bool
}

func (b *BreakGlass) validate() error {
	if len(b.Approvers) == 0 {
		return fmt.Errorf("%w: BreakGlass needs Approvers", ErrInvalidConfig)
	}
	for _, list := range [][]Approver{b.Approvers, b.Security} {
		for _, a := range list {
			if err := a.check(); err != nil {
				return fmt.Errorf("%w: BreakGlass: %v", ErrInvalidConfig, err)
			}
		}
	}
	return nil
}

// BreakGlass approves open request id at once on the emergency path (see
// Config.BreakGlass), for the person d.Token names. d.Verdict must be
// VerdictApprove, d.Reason must say why (ErrInvalidDecision otherwise), and
// the person must be one of BreakGlass.Approvers (ErrNotEligible; also
// when the gate has no BreakGlass). The token is checked as Decide checks
// it, and the request as Decide does (ErrNotPending, ErrSelfApproval
// unless AllowRequester, ErrAlreadyDecided); a refusal changes nothing
// and is audited as decision.rejected.
//
// The vote is marked Vote.BreakGlass and counts toward no policy. The
// request is approved with reason "break-glass by ...: <reason>", or, with
// SecondPerson, stays open until a second person does the same. Every
// approver of the request and BreakGlass.Security are alerted
// (NotifyAlert) each time; the artifact says "break_glass": true.
func (g *Gate) BreakGlass(ctx context.Context, id string, d Decision) (*Request, error) {
	if len(id) > maxEchoBytes {
		id = text.Clip(id, maxEchoBytes)
	}
	now := g.now()
	claims, err := g.checkDecision(id, d, now)
	if err == nil {
		err = g.checkBreakGlass(d)
	}
	if err != nil {
		return nil, g.reject(ctx, id, claims.Subject, d.Verdict, err)
	}
	return g.commitDecision(ctx, "break-glass", id, &claims, d.Verdict, func(req *Request) (*Request, []AuditEvent, []note, error) {
		return g.applyBreakGlass(ctx, req, &claims, d, normalizeTime(now))
	})
}

func (g *Gate) checkBreakGlass(d Decision) error {
	switch {
	case g.breakGlass == nil:
		return fmt.Errorf("%w: the gate has no break-glass path (Config.BreakGlass)", ErrNotEligible)
	case d.Verdict != VerdictApprove:
		return fmt.Errorf("%w: break-glass approves; its verdict is approve, not %s", ErrInvalidDecision, d.Verdict)
	case d.Reason == "":
		return fmt.Errorf("%w: break-glass needs a reason", ErrInvalidDecision)
	case d.Conditions != nil || d.Payload != nil:
		return fmt.Errorf("%w: break-glass takes no conditions or edited payload", ErrInvalidDecision)
	}
	return nil
}

// applyBreakGlass checks a break-glass against req and returns req with
// it applied, the events to write and the notices to send.
func (g *Gate) applyBreakGlass(ctx context.Context, req *Request, c *TokenClaims, d Decision, now time.Time) (*Request, []AuditEvent, []note, error) {
	bg, sub := g.breakGlass, c.Subject
	if req.usedToken(c.TokenID) {
		return nil, nil, nil, ErrTokenUsed
	}
	if !req.Status.Open() {
		return nil, nil, nil, fmt.Errorf("%w: request is %s", ErrNotPending, req.Status)
	}
	if !req.Deadline.IsZero() && !now.Before(req.Deadline) {
		return nil, nil, nil, errTimedOut
	}
	ok, err := g.isApprover(ctx, bg.Approvers, sub)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %w", errResolveApprovers, err)
	}
	if !ok {
		return nil, nil, nil, fmt.Errorf("%w: %s may not break the glass", ErrNotEligible, sub)
	}
	if !bg.AllowRequester && req.isRequester(sub) {
		return nil, nil, nil, fmt.Errorf("%w: %s requested it and may not break the glass on it", ErrSelfApproval, sub)
	}
	if v, ok := req.decidedBy(sub); ok {
		return nil, nil, nil, fmt.Errorf("%w: %s voted %s at %s", ErrAlreadyDecided, v.Approver, v.Verdict, v.At.Format(time.RFC3339))
	}
	var first string
	for _, v := range req.Votes {
		if v.BreakGlass {
			first = v.Approver
		}
	}
	next := req
	next.Votes = append(next.Votes, Vote{Approver: sub, Verdict: VerdictApprove, Reason: d.Reason, BreakGlass: true, TokenID: c.TokenID, At: now})
	next.Version++
	next.UpdatedAt = now
	refs := policyRefs(next.Policies)
	done := !bg.SecondPerson || first != ""
	what := "break-glass by " + sub
	if first != "" {
		what = "break-glass by " + first + ", confirmed by " + sub
	}
	audit := what + ": " + d.Reason
	if !done {
		audit = "break-glass opened by " + sub + ", a second person must confirm: " + d.Reason
	}
	events := []AuditEvent{{RequestID: req.ID, Type: EventBreakGlass, Actor: sub, Policies: refs, Verdict: VerdictApprove, Reason: audit, At: now}}
	alert := noticeTarget{Approvers: allApprovers(next), Note: breakGlassNote + audit}
	notes := []note{{typ: NotifyAlert, target: alert}}
	if len(bg.Security) > 0 {
		notes = append(notes, note{typ: NotifyAlert, target: noticeTarget{Approvers: slices.Clone(bg.Security), Channels: slices.Clone(bg.SecurityChannels), Note: alert.Note}})
	}
	if done {
		next.approve(now, what+": "+d.Reason)
		next.Deadline = time.Time{}
		events = append(events, AuditEvent{RequestID: req.ID, Type: EventRequestApproved, Actor: sub, Policies: refs, Reason: next.Reason, At: now})
		notes = append(notes, note{typ: NotifyResolved})
	}
	return next, events, notes, nil
}

// allApprovers returns every approver r's policies name, at every level.
func allApprovers(r *Request) []Approver {
	var out []Approver
	add := func(as []Approver) {
		for _, a := range as {
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	for i := range r.Policies {
		p := &r.Policies[i]
		add(p.Approvers)
		for _, l := range p.Chain {
			add(l.Approvers)
			for _, grp := range l.Groups {
				add(grp.Approvers)
			}
		}
		add(p.Progress.Added)
		add(p.Progress.Assigned)
	}
	return out
}

// brokeGlass reports whether r was approved on the emergency path.
func (r *Request) brokeGlass() bool {
	return slices.ContainsFunc(r.Votes, func(v Vote) bool { return v.BreakGlass })
}
