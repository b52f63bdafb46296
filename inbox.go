package approval

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// maxInboxScan bounds the requests one Awaiting page examines, so that a
// person eligible for little in a large queue gets short pages quickly
// rather than one slow full scan.
const maxInboxScan = 2000

// listAwaiting is Gate.List with q.Awaiting set: the open requests that
// person may decide and has not. Eligibility needs the Directory, so the
// store lists the open requests and the gate filters them. Each store page
// is consumed whole (the gate asks for no more than the page still needs),
// so the store's own cursor continues the listing exactly; after
// maxInboxScan requests the page is returned short, with a Next.
func (g *Gate) listAwaiting(ctx context.Context, q RequestQuery) (RequestPage, error) {
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
			ok, err := g.awaits(ctx, r, who, now)
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
// decide it now. A Directory failure is returned, failing the listing.
func (g *Gate) awaits(ctx context.Context, r *Request, who string, now time.Time) (bool, error) {
	if !r.Status.Open() {
		return false, nil // skip the Directory for what the store let through
	}
	_, err := g.decidable(ctx, r, who, now)
	if err != nil && errors.Is(err, errResolveApprovers) {
		return false, err
	}
	return err == nil, nil
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
