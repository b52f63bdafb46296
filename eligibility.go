package approval

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/signoff/approval/internal/host"
)

// Who may decide a request now: the eligibility Decide, CanDecide and
// the inbox share.

// eligiblePolicies returns the names of the matched policies under which
// user may decide now, resolving groups and roles through the directory,
// and, on a request with a chain, what the vote counts toward: the
// current level (and its groups) of each. Only a policy's current level
// admits deciders; a chain that is done admits none. With
// DistinctApprovers, a chain request's vote counts toward the first of
// those policies it can still help.
func (g *Gate) eligiblePolicies(ctx context.Context, req *Request, user string) ([]string, []VoteCount, error) {
	chain := hasChain(req)
	var names []string
	var counts []VoteCount
	for i := range req.Policies {
		p := &req.Policies[i]
		ok, groups, err := g.eligibleAt(ctx, p, user)
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			continue
		}
		if chain && req.DistinctApprovers && len(counts) > 0 {
			continue
		}
		if chain && req.DistinctApprovers && policyMet(req, p) {
			continue
		}
		names = append(names, p.Name)
		if chain {
			counts = append(counts, VoteCount{Policy: p.Name, Level: p.Progress.Level, Groups: groups})
		}
	}
	if chain && req.DistinctApprovers && len(names) == 0 {
		// Eligible only where nothing more is needed: count it there.
		for i := range req.Policies {
			p := &req.Policies[i]
			if ok, groups, err := g.eligibleAt(ctx, p, user); err != nil {
				return nil, nil, err
			} else if ok {
				return []string{p.Name}, []VoteCount{{Policy: p.Name, Level: p.Progress.Level, Groups: groups}}, nil
			}
		}
	}
	return names, counts, nil
}

func (g *Gate) isApprover(ctx context.Context, as []Approver, user string) (bool, error) {
	for _, a := range as {
		if a.Kind == KindUser {
			if sameID(a.Name, user) {
				return true, nil
			}
			continue
		}
		if g.dir == nil {
			return false, fmt.Errorf("approver %s needs a Directory", a)
		}
		ok, err := g.isMember(ctx, a, user)
		if err != nil {
			return false, fmt.Errorf("directory: %s: %w", a, err)
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}

// isMember asks the directory whether user belongs to a, through host.Call:
// a panic is an error, and a call still running when ctx ends is
// abandoned. With a ctx that cannot end it calls inline, and the closure
// stays on the stack: Decide allocates nothing more for it.
func (g *Gate) isMember(ctx context.Context, a Approver, user string) (bool, error) {
	if ctx.Done() == nil {
		return host.Recovered(g.dirHost, ctx, "IsMember", func(ctx context.Context) (bool, error) {
			return g.dir.IsMember(ctx, a, user)
		})
	}
	return host.Call(g.dirHost, ctx, "IsMember", func(ctx context.Context) (bool, error) {
		return g.dir.IsMember(ctx, a, user)
	})
}

// decidable checks, in Decide's order, that who (canonical) may decide r
// at now, and returns the names of the matched policies under which who is
// eligible. A refusal wraps ErrNotPending (r not open), errTimedOut (its
// deadline passed), ErrNotEligible, ErrSelfApproval or ErrAlreadyDecided;
// any other error is the Directory's, wrapping errResolveApprovers. Decide,
// CanDecide and the inbox all ask it, so they cannot disagree.
func (g *Gate) decidable(ctx context.Context, r *Request, who string, now time.Time) (decidableAs, error) {
	return g.decidableWith(ctx, r, who, now, nil)
}

// decidableWith is decidable with who's delegations already read (see
// delegated), or nil to read them if needed.
func (g *Gate) decidableWith(ctx context.Context, r *Request, who string, now time.Time, held *[]Delegation) (decidableAs, error) {
	if !r.Status.Open() {
		return decidableAs{}, fmt.Errorf("%w: request is %s", ErrNotPending, r.Status)
	}
	if !r.Deadline.IsZero() && !now.Before(r.Deadline) {
		return decidableAs{}, errTimedOut
	}
	if needsMembers(r) {
		// Members of a level requiring all that could not be resolved
		// when it opened are resolved now, on a copy: r stays as given.
		r = r.Clone()
		if err := g.resolveAllMembers(ctx, r); err != nil {
			return decidableAs{}, err
		}
	}
	var as decidableAs
	var err error
	as.policies, as.counts, err = g.eligiblePolicies(ctx, r, who)
	if err != nil {
		return decidableAs{}, fmt.Errorf("%w: %w", errResolveApprovers, err)
	}
	if len(as.policies) == 0 {
		// Not in their own right: perhaps on someone's behalf.
		as.onBehalfOf, as.policies, as.counts, err = g.delegated(ctx, r, who, now, held)
		if err != nil {
			return decidableAs{}, fmt.Errorf("%w: delegations: %w", errResolveApprovers, err)
		}
	}
	if len(as.policies) == 0 {
		return decidableAs{}, fmt.Errorf("%w: %s is not an approver of %v%s", ErrNotEligible, who, r.PolicyNames(), levelsNow(r))
	}
	if r.SegregateRequester && r.isRequester(who) {
		if !sameID(who, r.Action.RequestedBy) {
			return decidableAs{}, fmt.Errorf("%w: %s requested it through %s (the initiator)", ErrSelfApproval, who, r.Action.RequestedBy)
		}
		return decidableAs{}, fmt.Errorf("%w: %s requested it", ErrSelfApproval, who)
	}
	if as.onBehalfOf != "" && r.SegregateRequester && r.isRequester(as.onBehalfOf) {
		return decidableAs{}, fmt.Errorf("%w: %s would decide for %s, who requested it", ErrSelfApproval, who, as.onBehalfOf)
	}
	for _, p := range []string{who, as.onBehalfOf} {
		if p == "" {
			continue
		}
		if v, ok := r.decidedBy(p); ok {
			return decidableAs{}, fmt.Errorf("%w: %s voted %s at %s%s", ErrAlreadyDecided, v.Approver, v.Verdict, v.At.Format(time.RFC3339), onBehalf(v.OnBehalfOf))
		}
	}
	return as, nil
}

// decidableAs is how a person may decide a request: toward these
// policies (and levels), perhaps on behalf of another.
type decidableAs struct {
	policies   []string
	counts     []VoteCount
	onBehalfOf string
}

func onBehalf(who string) string {
	if who == "" {
		return ""
	}
	return " on behalf of " + who
}

// levelsNow describes the current levels of r's chains, for an error.
func levelsNow(r *Request) string {
	var b strings.Builder
	for i := range r.Policies {
		p := &r.Policies[i]
		if len(p.Chain) == 0 {
			continue
		}
		if l, li, ok := p.currentLevel(); ok {
			fmt.Fprintf(&b, "; %s is at %s", p.Name, levelName(&l, li))
		} else {
			fmt.Fprintf(&b, "; %s is met", p.Name)
		}
	}
	return b.String()
}
