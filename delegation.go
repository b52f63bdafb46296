package approval

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/signoff/approval/internal/text"

	"github.com/google/uuid"
)

// Delegation lends one person's authority to approve to another for a
// while: out of office, From's delegate To decides in From's place, on the
// requests From could decide, for the policies in scope.
//
// A delegate's vote records both people (Vote.Approver is To,
// Vote.OnBehalfOf is From, and so does its audit event) and counts as
// From's: From and To together count once, so neither decides after the
// other has, and two delegations of one original give one vote. A
// delegate decides once per request: a delegate who may decide in their
// own right does so for themselves, and one with delegations from several
// people uses the first that applies (in From order). Delegation does not
// chain: To cannot pass From's authority on. Requester segregation
// applies to both: a delegate may not decide their own request, nor one
// From requested.
type Delegation struct {
	// ID is "dlg_" and a time-ordered UUID, set by Gate.Delegate.
	ID string `json:"id"`
	// From lends their authority to To. Both are identities (see
	// CanonicalID) and must differ.
	From string `json:"from"`
	// To is who may decide in From's place.
	To string `json:"to"`
	// NotBefore starts the window, [NotBefore, NotAfter). Defaults to the
	// time of Delegate.
	NotBefore time.Time `json:"not_before"`
	// NotAfter ends the window. Required.
	NotAfter time.Time `json:"not_after"`
	// Policies, if set, limits the delegation to requests under these
	// policy names: To decides only toward them.
	Policies []string `json:"policies,omitempty"`
	// Reason is recorded in the audit trail ("parental leave").
	Reason string `json:"reason,omitempty"`
	// CreatedBy is who granted it (From, or an administrator).
	CreatedBy string `json:"created_by"`
	// CreatedAt is when it was granted.
	CreatedAt time.Time `json:"created_at"`
	// RevokedBy is who revoked it, once revoked.
	RevokedBy string `json:"revoked_by,omitempty"`
	// RevokedAt is when it was revoked; zero while it stands.
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// Active reports whether d lends authority at t: within its window and not
// revoked by then.
func (d *Delegation) Active(t time.Time) bool {
	return !t.Before(d.NotBefore) && t.Before(d.NotAfter) && (d.RevokedAt.IsZero() || t.Before(d.RevokedAt))
}

// covers reports whether d applies to policy name.
func (d *Delegation) covers(name string) bool {
	return len(d.Policies) == 0 || slices.Contains(d.Policies, name)
}

// DelegationQuery selects delegations. Zero fields match all.
type DelegationQuery struct {
	// From keeps the delegations of this delegator.
	From string
	// To keeps the delegations to this delegate.
	To string
	// ActiveAt keeps the delegations active then (see Delegation.Active).
	ActiveAt time.Time
	// After starts the listing after this ID (keyset pagination).
	After string
	// Limit bounds the delegations returned (see PageSize).
	Limit int
}

// Matches reports whether d is selected by q (not counting After and
// Limit): stores may use it to filter.
func (q *DelegationQuery) Matches(d *Delegation) bool {
	return (q.From == "" || d.From == q.From) && (q.To == "" || d.To == q.To) &&
		(q.ActiveAt.IsZero() || d.Active(q.ActiveAt)) && (q.After == "" || d.ID > q.After)
}

// Clone returns a deep copy of d.
func (d *Delegation) Clone() *Delegation {
	c := *d
	c.Policies = slices.Clone(d.Policies)
	return &c
}

// maxDelegationPolicies bounds Delegation.Policies.
const maxDelegationPolicies = 64

// Delegate stores d, granted by actor, and audits it
// (delegation.granted). It fills d's ID, CreatedBy, CreatedAt and, if
// zero, NotBefore, and returns the stored delegation. It returns
// ErrInvalidDecision for a delegation that cannot work (From or To not
// an identity, the same person, NotAfter not after NotBefore or already
// past, a policy name empty) or an actor that is not an identity, and
// ErrUnsupported if the store does not implement Delegations. The gate
// does not decide who may grant a delegation: the host authorises actor.
func (g *Gate) Delegate(ctx context.Context, actor string, d Delegation) (*Delegation, error) {
	ds, ok := g.store.(Delegations)
	if !ok {
		return nil, fmt.Errorf("approval: delegate: %w: the store does not implement approval.Delegations", ErrUnsupported)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("approval: delegate: %w: %s", ErrInvalidDecision, fmt.Sprintf(format, args...))
	}
	var err error
	if actor, err = CanonicalID(actor); err != nil {
		return nil, bad("actor: %v", err)
	}
	if d.From, err = CanonicalID(d.From); err != nil {
		return nil, bad("From: %v", err)
	}
	if d.To, err = CanonicalID(d.To); err != nil {
		return nil, bad("To: %v", err)
	}
	if d.From == d.To {
		return nil, bad("%s cannot delegate to themselves", d.From)
	}
	if err := checkString("reason", d.Reason, maxReasonBytes); err != nil {
		return nil, bad("%v", err)
	}
	if len(d.Policies) > maxDelegationPolicies {
		return nil, bad("%d policies in scope, at most %d", len(d.Policies), maxDelegationPolicies)
	}
	d.Policies = slices.Clone(d.Policies)
	for _, p := range d.Policies {
		if p == "" || checkString("policy", p, 256) != nil {
			return nil, bad("a policy in scope must be a name of 1 to 256 bytes")
		}
	}
	now := normalizeTime(g.now())
	if d.NotBefore.IsZero() {
		d.NotBefore = now
	}
	d.NotBefore, d.NotAfter = normalizeTime(d.NotBefore), normalizeTime(d.NotAfter)
	if !d.NotAfter.After(d.NotBefore) || !d.NotAfter.After(now) {
		return nil, bad("the window [%s, %s) is empty or over", d.NotBefore.Format(time.RFC3339), d.NotAfter.Format(time.RFC3339))
	}
	d.ID = "dlg_" + uuid.Must(uuid.NewV7()).String()
	d.CreatedBy, d.CreatedAt, d.RevokedBy, d.RevokedAt = actor, now, "", time.Time{}
	what := fmt.Sprintf("%s: %s delegates to %s from %s until %s", d.ID, d.From, d.To,
		d.NotBefore.Format(time.RFC3339), d.NotAfter.Format(time.RFC3339))
	if len(d.Policies) > 0 {
		what += fmt.Sprintf(" for %v", d.Policies)
	}
	if d.Reason != "" {
		what += ": " + d.Reason
	}
	events := []AuditEvent{{Type: EventDelegationGranted, Actor: actor, OnBehalfOf: d.From, Reason: auditSafe(what, maxReasonBytes), At: now}}
	if err := ds.CreateDelegation(ctx, &d, events); err != nil {
		return nil, fmt.Errorf("approval: delegate: %w", err)
	}
	g.afterCommit(ctx, events)
	return &d, nil
}

// RevokeDelegation ends delegation id now, on behalf of actor, audited
// (delegation.revoked). It returns ErrNotFound for an unknown ID,
// ErrConflict for one revoked already, ErrInvalidDecision for an actor
// that is not an identity, and ErrUnsupported if the store does not
// implement Delegations. Votes the delegate cast before stand.
func (g *Gate) RevokeDelegation(ctx context.Context, id, actor, reason string) (*Delegation, error) {
	ds, ok := g.store.(Delegations)
	if !ok {
		return nil, fmt.Errorf("approval: revoke delegation: %w: the store does not implement approval.Delegations", ErrUnsupported)
	}
	actor, err := CanonicalID(actor)
	if err != nil {
		return nil, fmt.Errorf("approval: revoke delegation %s: %w: actor: %w", text.Clip(id, maxEchoBytes), ErrInvalidDecision, err)
	}
	if err := checkString("reason", reason, maxReasonBytes); err != nil {
		return nil, fmt.Errorf("approval: revoke delegation %s: %w: %v", text.Clip(id, maxEchoBytes), ErrInvalidDecision, err)
	}
	now := normalizeTime(g.now())
	what := id
	if reason != "" {
		what += ": " + reason
	}
	events := []AuditEvent{{Type: EventDelegationRevoked, Actor: actor, Reason: auditSafe(what, maxReasonBytes), At: now}}
	d, err := ds.RevokeDelegation(ctx, id, now, actor, events)
	if err != nil {
		return nil, fmt.Errorf("approval: revoke delegation %s: %w", text.Clip(id, maxEchoBytes), err)
	}
	g.afterCommit(ctx, events)
	return d, nil
}

// ListDelegations returns the delegations matching q (see
// Delegations.ListDelegations), or ErrUnsupported.
func (g *Gate) ListDelegations(ctx context.Context, q DelegationQuery) ([]Delegation, error) {
	ds, ok := g.store.(Delegations)
	if !ok {
		return nil, fmt.Errorf("approval: list delegations: %w: the store does not implement approval.Delegations", ErrUnsupported)
	}
	var err error
	for _, f := range []*string{&q.From, &q.To} {
		if *f != "" {
			if *f, err = CanonicalID(*f); err != nil {
				return nil, fmt.Errorf("approval: list delegations: %w", err)
			}
		}
	}
	ds2, err := ds.ListDelegations(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("approval: list delegations: %w", err)
	}
	return ds2, nil
}

// activeDelegations lists the delegations to (or, with from set, from)
// who active at now; nil when the store keeps none.
func (g *Gate) activeDelegations(ctx context.Context, who string, from bool, now time.Time) ([]Delegation, error) {
	ds, ok := g.store.(Delegations)
	if !ok {
		return nil, nil
	}
	q := DelegationQuery{To: who, ActiveAt: now, Limit: MaxPageSize}
	if from {
		q = DelegationQuery{From: who, ActiveAt: now, Limit: MaxPageSize}
	}
	return ds.ListDelegations(ctx, q)
}

// delegationsTo lists the delegations to who active at now, in the order
// delegated tries them: by From, then ID.
func (g *Gate) delegationsTo(ctx context.Context, who string, now time.Time) ([]Delegation, error) {
	ds, err := g.activeDelegations(ctx, who, false, now)
	slices.SortFunc(ds, func(a, b Delegation) int {
		if a.From != b.From {
			return cmpString(a.From, b.From)
		}
		return cmpString(a.ID, b.ID)
	})
	return ds, err
}

// delegated finds a delegation through which who may decide r now, when
// who may not in their own right: the first (in From order) whose original
// may decide r at its current levels, within scope. It returns the
// original, the policies and counts of the vote, or "" if none applies.
// held, if not nil, holds who's delegations (delegationsTo), read once for
// many requests. The error is the store's or the directory's.
func (g *Gate) delegated(ctx context.Context, r *Request, who string, now time.Time, held *[]Delegation) (string, []string, []VoteCount, error) {
	var ds []Delegation
	if held != nil {
		ds = *held
	} else {
		var err error
		if ds, err = g.delegationsTo(ctx, who, now); err != nil {
			return "", nil, nil, err
		}
	}
	for i := range ds {
		d := &ds[i]
		names, counts, err := g.eligiblePolicies(ctx, r, d.From)
		if err != nil {
			return "", nil, nil, err
		}
		names, counts = scoped(d, names, counts)
		if len(names) > 0 {
			return d.From, names, counts, nil
		}
	}
	return "", nil, nil, nil
}

// scoped keeps the policies d covers.
func scoped(d *Delegation, names []string, counts []VoteCount) ([]string, []VoteCount) {
	if len(d.Policies) == 0 {
		return names, counts
	}
	var n []string
	var c []VoteCount
	for i, name := range names {
		if d.covers(name) {
			n = append(n, name)
			if counts != nil {
				c = append(c, counts[i])
			}
		}
	}
	return n, c
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// GrantDelegations grants, on behalf of actor, each of ds (a policy file's
// delegations) that is not granted yet, and returns those it granted. A
// delegation counts as granted when an unrevoked one with the same From,
// To, window end, scope and reason is stored (and, if ds gives one, the
// same window start), so running it at every start grants each once. One
// whose window is over is passed over. It stops at the first error, which
// is Delegate's; the ones granted before it stay granted, and a second run
// grants the rest.
func (g *Gate) GrantDelegations(ctx context.Context, actor string, ds []Delegation) ([]Delegation, error) {
	now := g.now()
	var out []Delegation
	for _, d := range ds {
		if !d.NotAfter.After(now) {
			continue
		}
		have, err := g.hasDelegation(ctx, &d)
		if err != nil {
			return out, err
		}
		if have {
			continue
		}
		got, err := g.Delegate(ctx, actor, d)
		if err != nil {
			return out, err
		}
		out = append(out, *got)
	}
	return out, nil
}

// hasDelegation reports whether a delegation like d is stored, unrevoked.
func (g *Gate) hasDelegation(ctx context.Context, d *Delegation) (bool, error) {
	from, err1 := CanonicalID(d.From)
	to, err2 := CanonicalID(d.To)
	if err1 != nil || err2 != nil {
		return false, nil // Delegate reports it
	}
	q := DelegationQuery{From: from, To: to, Limit: MaxPageSize}
	for {
		page, err := g.ListDelegations(ctx, q)
		if err != nil {
			return false, err
		}
		for _, s := range page {
			if s.RevokedAt.IsZero() && s.NotAfter.Equal(normalizeTime(d.NotAfter)) &&
				(d.NotBefore.IsZero() || s.NotBefore.Equal(normalizeTime(d.NotBefore))) &&
				slices.Equal(s.Policies, d.Policies) && s.Reason == d.Reason {
				return true, nil
			}
		}
		if len(page) < q.Limit {
			return false, nil
		}
		q.After = page[len(page)-1].ID
	}
}
