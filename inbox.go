package approval

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// maxInboxScan bounds the requests one Awaiting page examines on a store
// without the Inbox capability, so that a person eligible for little in a
// large queue gets short pages quickly rather than one slow full scan.
const maxInboxScan = 2000

// listAwaiting is Gate.List with q.Awaiting set: the open requests that
// person may decide and has not. On a store with the Inbox capability it
// reads one page of the index of Request.Deciders, for the person and
// those who delegated to them (their delegations read once), and checks
// each request as Decide would; otherwise it scans (scanAwaiting). Either
// way a page may hold fewer than the limit and still have a Next.
func (g *Gate) listAwaiting(ctx context.Context, q RequestQuery) (RequestPage, error) {
	ib, ok := g.store.(Inbox)
	if !ok {
		return g.scanAwaiting(ctx, q)
	}
	who, now := q.Awaiting, g.now()
	ds, err := g.delegationsTo(ctx, who, now)
	if err != nil {
		return RequestPage{}, fmt.Errorf("delegations: %w", err)
	}
	people := []string{who}
	for _, d := range ds {
		people = append(people, d.From)
	}
	slices.Sort(people)
	if people = slices.Compact(people); len(people) > MaxInboxPeople {
		return g.scanAwaiting(ctx, q)
	}
	sp, err := ib.ListInbox(ctx, InboxQuery{People: people, Cursor: q.Cursor, Limit: q.Limit})
	if err != nil {
		return RequestPage{}, err
	}
	page := RequestPage{Next: sp.Next}
	for _, r := range sp.Requests {
		if !q.keeps(r) {
			continue
		}
		ok, err := g.awaits(ctx, r, who, now, &ds)
		if err != nil {
			return RequestPage{}, err
		}
		if ok {
			page.Requests = append(page.Requests, r)
		}
	}
	return page, nil
}

// keeps reports whether r passes q's filters other than Awaiting.
func (q *RequestQuery) keeps(r *Request) bool {
	switch {
	case len(q.Status) > 0 && !slices.Contains(q.Status, r.Status),
		q.Policy != "" && !slices.ContainsFunc(r.Policies, func(p MatchedPolicy) bool { return p.Name == q.Policy }),
		q.RequestedBy != "" && r.Action.RequestedBy != q.RequestedBy,
		q.Approver != "" && !slices.ContainsFunc(r.Votes, func(v Vote) bool { return v.Approver == q.Approver }),
		!q.CreatedFrom.IsZero() && r.CreatedAt.Before(q.CreatedFrom),
		!q.CreatedTo.IsZero() && !r.CreatedAt.Before(q.CreatedTo):
		return false
	}
	return true
}

// scanAwaiting is listAwaiting on a store without the Inbox capability:
// the store lists the open requests and the gate filters them. Each store
// page is consumed whole (the gate asks for no more than the page still
// needs), so the store's own cursor continues the listing exactly; after
// maxInboxScan requests the page is returned short, with a Next.
func (g *Gate) scanAwaiting(ctx context.Context, q RequestQuery) (RequestPage, error) {
	who := q.Awaiting
	limit := PageSize(q.Limit)
	open := []Status{StatusPending, StatusEscalated}
	if len(q.Status) > 0 {
		open = slices.DeleteFunc(slices.Clone(q.Status), func(s Status) bool { return !s.Open() })
		if len(open) == 0 {
			return RequestPage{}, nil
		}
	}
	sq := q
	sq.Awaiting, sq.Status = "", open
	now := g.now()
	var page RequestPage
	for scanned := 0; ; {
		sq.Limit = limit - len(page.Requests)
		sp, err := g.store.List(ctx, sq)
		if err != nil {
			return RequestPage{}, err
		}
		for _, r := range sp.Requests {
			ok, err := g.awaits(ctx, r, who, now, nil)
			if err != nil {
				return RequestPage{}, err
			}
			if ok {
				page.Requests = append(page.Requests, r)
			}
		}
		scanned += len(sp.Requests)
		page.Next = sp.Next
		if sp.Next == "" || len(page.Requests) >= limit || scanned >= maxInboxScan {
			return page, nil
		}
		sq.Cursor = sp.Next
	}
}

// awaits reports whether r waits for who's decision: whether who may
// decide it now. held, if not nil, holds who's delegations. A Directory
// failure is returned, failing the listing.
func (g *Gate) awaits(ctx context.Context, r *Request, who string, now time.Time, held *[]Delegation) (bool, error) {
	if !r.Status.Open() {
		return false, nil // skip the Directory for what the store let through
	}
	_, err := g.decidableWith(ctx, r, who, now, held)
	if err != nil && errors.Is(err, errResolveApprovers) {
		return false, err
	}
	return err == nil, nil
}

// refreshDeciders sets r.Deciders before r is written: the people of each
// current level, resolved through the Directory for a level that opened
// or changed since the last write (the only Directory calls it makes),
// less the voters and a segregated requester. A level whose people the
// Directory cannot resolve now is left out of the index until the next
// write (logged): the inbox misses the request for its people meanwhile,
// while Decide, which asks the Directory itself, is not affected.
func (g *Gate) refreshDeciders(ctx context.Context, r *Request) {
	if !r.Status.Open() {
		r.Deciders = nil
		return
	}
	for i := range r.Policies {
		if err := g.resolvePeople(ctx, r, i); err != nil {
			g.log.Warn("approval: could not resolve who may decide a level; it joins the inbox at the request's next change",
				"request", r.ID, "policy", r.Policies[i].Name, "err", err)
		}
	}
	r.Deciders = deciders(r)
}

// resolvePeople records the people of policy pi's current level
// (LevelProgress.People) if they are not recorded yet.
func (g *Gate) resolvePeople(ctx context.Context, r *Request, pi int) error {
	p := &r.Policies[pi]
	if p.Progress.People != nil {
		return nil
	}
	if _, _, ok := p.currentLevel(); !ok {
		return nil
	}
	var people []string
	for _, as := range currentApprovers(p) {
		var err error
		if people, err = g.eligiblePeopleOf(ctx, r, as, 0, people); err != nil {
			return err
		}
	}
	slices.Sort(people)
	if people == nil {
		people = []string{} // resolved: nobody
	}
	p.Progress.People = people
	return nil
}

// deciders computes Request.Deciders from r alone.
func deciders(r *Request) []string {
	var out []string
	for i := range r.Policies {
		p := &r.Policies[i]
		if _, _, ok := p.currentLevel(); ok {
			out = append(out, p.Progress.People...)
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	return slices.DeleteFunc(out, func(id string) bool {
		if r.SegregateRequester && r.isRequester(id) {
			return true
		}
		_, voted := r.decidedBy(id)
		return voted
	})
}

// CanDecide reports whether who may decide r now: nil if a decision by who
// would be counted, or the error Decide would refuse it with, checked in
// Decide's order: ErrNotPending (r is not open, or its deadline passed),
// ErrNotEligible, ErrSelfApproval, ErrAlreadyDecided. who that is not a
// valid identity is ErrInvalidIdentity; a Directory failure is returned as
// it is (fail closed: the caller must not offer a decision).
//
// It reads r as given (the caller's copy, from Get or List) and changes
// nothing; Decide checks again, on the stored request, when the decision
// is made. Review pages use it to offer the approve and deny buttons only
// to a person who may press them.
func (g *Gate) CanDecide(ctx context.Context, r *Request, who string) error {
	who, err := CanonicalID(who)
	if err != nil {
		return fmt.Errorf("approval: can decide: %w", err)
	}
	_, err = g.decidable(ctx, r, who, g.now())
	if errors.Is(err, errTimedOut) {
		err = fmt.Errorf("%w: timed out", ErrNotPending)
	}
	if err != nil {
		return fmt.Errorf("approval: can decide %s: %w", r.ID, err)
	}
	return nil
}

// CanDecideEach is CanDecide for each of rs, with who's delegations read
// once for all of them rather than once for each: a page of requests
// marked with whether the reader may decide each. The errors are in rs's
// order, nil where who may decide.
func (g *Gate) CanDecideEach(ctx context.Context, rs []*Request, who string) []error {
	errs := make([]error, len(rs))
	who, err := CanonicalID(who)
	if err != nil {
		for i := range errs {
			errs[i] = fmt.Errorf("approval: can decide: %w", err)
		}
		return errs
	}
	now := g.now()
	var held *[]Delegation
	if ds, err := g.delegationsTo(ctx, who, now); err == nil {
		held = &ds
	} // else each check reads them, and reports the failure
	for i, r := range rs {
		_, err := g.decidableWith(ctx, r, who, now, held)
		if errors.Is(err, errTimedOut) {
			err = fmt.Errorf("%w: timed out", ErrNotPending)
		}
		if err != nil {
			errs[i] = fmt.Errorf("approval: can decide %s: %w", r.ID, err)
		}
	}
	return errs
}

// RefreshInbox records who may decide each open request that has no
// record of it yet: requests opened before the inbox was indexed (before
// version 0.4.0), and those whose level's people the Directory could not
// resolve when it opened. Until then such a request is missing from the
// inboxes of a Store with the Inbox capability (Decide is not affected).
// Run it once after upgrading a store that holds open requests; it reads
// every open request and writes those it records, and returns how many.
// A request that changes meanwhile is recorded by that change.
func (g *Gate) RefreshInbox(ctx context.Context) (int, error) {
	q := RequestQuery{Status: []Status{StatusPending, StatusEscalated}, Limit: MaxPageSize}
	n := 0
	for {
		page, err := g.store.List(ctx, q)
		if err != nil {
			return n, fmt.Errorf("approval: refresh inbox: %w", err)
		}
		for _, r := range page.Requests {
			if !unresolvedPeople(r) {
				continue
			}
			done, err := g.refreshRequest(ctx, r.ID)
			if err != nil {
				return n, fmt.Errorf("approval: refresh inbox: %s: %w", r.ID, err)
			}
			if done {
				n++
			}
		}
		if page.Next == "" {
			return n, nil
		}
		q.Cursor = page.Next
	}
}

// unresolvedPeople reports whether a current level of open request r has
// no People recorded.
func unresolvedPeople(r *Request) bool {
	if !r.Status.Open() {
		return false
	}
	for i := range r.Policies {
		p := &r.Policies[i]
		if _, _, ok := p.currentLevel(); ok && p.Progress.People == nil {
			return true
		}
	}
	return false
}

// refreshRequest writes request id again, its Deciders recorded, if it
// still needs it; it reports whether it wrote.
func (g *Gate) refreshRequest(ctx context.Context, id string) (bool, error) {
	for attempt := range maxAttempts {
		if err := backoff(ctx, attempt); err != nil {
			return false, err
		}
		r, err := g.store.Get(ctx, id)
		if err != nil || !unresolvedPeople(r) {
			return false, ignoreNotFound(err)
		}
		r.Version++
		err = g.update(ctx, Update{Request: r})
		if errors.Is(err, ErrConflict) {
			continue
		}
		return err == nil && !unresolvedPeople(r), err
	}
	return false, fmt.Errorf("%w: gave up after %d attempts", ErrConflict, maxAttempts)
}

func ignoreNotFound(err error) error {
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}
