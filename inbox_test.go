package approval_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/memstore"
)

// TestListAwaiting: the inbox lists the open requests a person may decide
// and has not, page by page, whatever the spelling of their name.
func TestListAwaiting(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	require.NoError(t, f.gate.SetPolicy("leads", approval.Policy{
		Match: approval.TagAny("lead-only"), Approvers: []approval.Approver{approval.Group("finance-leads")}, RequiredApprovals: 1,
	}))
	guard := func(by string, amount float64, tags ...string) string {
		a := transfer(amount)
		a.RequestedBy, a.Tags = by, tags
		return f.Pending(a)
	}
	var want []string
	want = append(want, guard("user-1", 5000))
	byBob := guard("bob", 5001) // bob requested it: segregated
	voted := guard("user-2", 5002)
	_, err := f.Decide(voted, "bob", approval.VerdictApprove)
	require.NoError(t, err)
	want = append(want, guard("user-3", 5003))
	denied := guard("user-4", 5004)
	_, err = f.Decide(denied, "carol", approval.VerdictDeny)
	require.NoError(t, err)
	leadsOnly := guard("user-5", 5, "lead-only") // bob is not a lead
	want = append(want, guard("user-6", 5006))
	escalatedVote := guard("user-7", 5007)
	_, err = f.Decide(escalatedVote, "carol", approval.VerdictApprove) // carol's vote leaves it open for bob
	require.NoError(t, err)
	want = append(want, escalatedVote)
	want = append(want, guard("user-8", 5008))

	var got []string
	q := approval.RequestQuery{Awaiting: "Bob", Limit: 2}
	for range 10 {
		page, err := f.gate.List(f.ctx, q)
		require.NoError(t, err)
		require.LessOrEqual(t, len(page.Requests), 2)
		for _, r := range page.Requests {
			got = append(got, r.ID)
		}
		if page.Next == "" {
			break
		}
		q.Cursor = page.Next
	}
	require.ElementsMatch(t, want, got)
	require.NotContains(t, got, byBob)
	require.NotContains(t, got, leadsOnly)

	page, err := f.gate.List(f.ctx, approval.RequestQuery{Awaiting: "erin"})
	require.NoError(t, err)
	require.Len(t, page.Requests, 1)
	require.Equal(t, leadsOnly, page.Requests[0].ID)

	// Combined with other filters, and a status that is never open.
	page, err = f.gate.List(f.ctx, approval.RequestQuery{Awaiting: "bob", RequestedBy: "user-3"})
	require.NoError(t, err)
	require.Len(t, page.Requests, 1)
	page, err = f.gate.List(f.ctx, approval.RequestQuery{Awaiting: "bob", Status: []approval.Status{approval.StatusDenied}})
	require.NoError(t, err)
	require.Empty(t, page.Requests)

	// Past the deadline a request waits for no one.
	f.clock.Advance(25 * time.Hour)
	page, err = f.gate.List(f.ctx, approval.RequestQuery{Awaiting: "bob"})
	require.NoError(t, err)
	require.Empty(t, page.Requests)

	_, err = f.gate.List(f.ctx, approval.RequestQuery{Awaiting: "bob "})
	require.ErrorIs(t, err, approval.ErrInvalidIdentity)
}

// TestCanDecide: CanDecide answers with the error Decide would give, and
// nil exactly when Decide would count the vote.
func TestCanDecide(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := transfer(5000)
	a.RequestedBy = "bob"
	id := f.Pending(a)
	r := f.Get(id)
	for who, want := range map[string]error{
		"Alice": nil, "bob": approval.ErrSelfApproval, "erin": approval.ErrNotEligible, "bob ": approval.ErrInvalidIdentity,
	} {
		err := f.gate.CanDecide(f.ctx, r, who)
		if want == nil {
			require.NoError(t, err, who)
			continue
		}
		require.ErrorIs(t, err, want, who)
	}
	for who, want := range map[string]error{"bob": approval.ErrSelfApproval, "erin": approval.ErrNotEligible} {
		_, err := f.Decide(id, who, approval.VerdictApprove)
		require.ErrorIs(t, err, want, "Decide agrees for %s", who)
	}
	_, err := f.Decide(id, "alice", approval.VerdictApprove)
	require.NoError(t, err)
	r = f.Get(id)
	require.ErrorIs(t, f.gate.CanDecide(f.ctx, r, "alice"), approval.ErrAlreadyDecided)
	require.NoError(t, f.gate.CanDecide(f.ctx, r, "carol"))

	f.clock.Advance(25 * time.Hour) // past the deadline, not yet timed out by Tick
	require.ErrorIs(t, f.gate.CanDecide(f.ctx, r, "carol"), approval.ErrNotPending)
	_, err = f.Decide(id, "carol", approval.VerdictApprove)
	require.ErrorIs(t, err, approval.ErrNotPending)
	r = f.Get(id)
	require.Equal(t, approval.StatusTimedOut, r.Status)
	require.ErrorIs(t, f.gate.CanDecide(f.ctx, r, "carol"), approval.ErrNotPending)
}

// TestRefreshInbox: a request stored without a record of who may decide
// it (opened before the inbox was indexed) is missing from inboxes until
// RefreshInbox records it; a second run finds nothing to do.
func TestRefreshInbox(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.Pending(transfer(5000))
	kept := f.Pending(transfer(6000))
	awaiting := func(who string) []string {
		page, err := f.gate.List(f.ctx, approval.RequestQuery{Awaiting: who})
		require.NoError(t, err)
		var ids []string
		for _, r := range page.Requests {
			ids = append(ids, r.ID)
		}
		return ids
	}
	require.ElementsMatch(t, []string{id, kept}, awaiting("bob"))

	old := f.Get(id)
	require.Equal(t, []string{"alice", "bob", "carol", "dave"}, old.Deciders)
	old.Deciders, old.Policies[0].Progress.People = nil, nil
	old.Version++
	require.NoError(t, f.store.Update(f.ctx, approval.Update{Request: old}))
	require.Equal(t, []string{kept}, awaiting("bob"), "not indexed")

	n, err := f.gate.RefreshInbox(f.ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.ElementsMatch(t, []string{id, kept}, awaiting("bob"))
	require.Equal(t, []string{"alice", "bob", "carol", "dave"}, f.Get(id).Deciders)
	n, err = f.gate.RefreshInbox(f.ctx)
	require.NoError(t, err)
	require.Zero(t, n)
}

// countingStore counts the store calls an inbox page makes.
type countingStore struct {
	*memstore.Store
	calls map[string]int
}

func (s *countingStore) List(ctx context.Context, q approval.RequestQuery) (approval.RequestPage, error) {
	s.calls["List"]++
	return s.Store.List(ctx, q)
}

func (s *countingStore) ListInbox(ctx context.Context, q approval.InboxQuery) (approval.RequestPage, error) {
	s.calls["ListInbox"]++
	return s.Store.ListInbox(ctx, q)
}

func (s *countingStore) ListDelegations(ctx context.Context, q approval.DelegationQuery) ([]approval.Delegation, error) {
	s.calls["ListDelegations"]++
	return s.Store.ListDelegations(ctx, q)
}

func (s *countingStore) Get(ctx context.Context, id string) (*approval.Request, error) {
	s.calls["Get"]++
	return s.Store.Get(ctx, id)
}

// TestInboxRoundTrips: an inbox page costs the same two store calls (the
// reviewer's delegations, one page of the index) however many open
// requests the store holds and however many of them the reviewer may
// decide, directly or for someone who delegated to them.
func TestInboxRoundTrips(t *testing.T) {
	t.Parallel()
	for _, n := range []int{10, 400} {
		cs := &countingStore{Store: memstore.New(), calls: map[string]int{}}
		f := newFixture(t, func(c *approval.Config) { c.Store = cs })
		for i := range n {
			a := transfer(5000 + float64(i))
			if i%7 == 0 {
				a.Tags = []string{"lead-only"}
			}
			f.Pending(a)
		}
		_, err := f.gate.Delegate(f.ctx, "admin", approval.Delegation{From: "carol", To: "zoe", Reason: "away",
			NotBefore: f.clock.Now().Add(-time.Hour), NotAfter: f.clock.Now().Add(time.Hour)})
		require.NoError(t, err)
		for _, who := range []string{"bob", "zoe", "erin"} {
			clear(cs.calls)
			page, err := f.gate.List(f.ctx, approval.RequestQuery{Awaiting: who, Limit: 50})
			require.NoError(t, err)
			require.Equal(t, map[string]int{"ListDelegations": 1, "ListInbox": 1}, cs.calls, "%s at n=%d", who, n)
			if who == "erin" {
				require.Empty(t, page.Requests)
			} else {
				require.Len(t, page.Requests, min(n, 50), "%s at n=%d", who, n)
			}
		}
	}
}

// TestCanDecideEach: CanDecideEach answers as CanDecide does, request by
// request, with the reader's delegations read once for the whole page.
func TestCanDecideEach(t *testing.T) {
	t.Parallel()
	cs := &countingStore{Store: memstore.New(), calls: map[string]int{}}
	f := newFixture(t, func(c *approval.Config) { c.Store = cs })
	var rs []*approval.Request
	for i := range 6 {
		a := transfer(5000 + float64(i))
		if i == 1 {
			a.RequestedBy = "bob" // segregated
		}
		id := f.Pending(a)
		if i == 2 {
			_, err := f.Decide(id, "bob", approval.VerdictApprove)
			require.NoError(t, err)
		}
		rs = append(rs, f.Get(id))
	}
	_, err := f.gate.Delegate(f.ctx, "admin", approval.Delegation{From: "carol", To: "zoe", Reason: "away",
		NotBefore: f.clock.Now().Add(-time.Hour), NotAfter: f.clock.Now().Add(time.Hour)})
	require.NoError(t, err)
	for _, who := range []string{"bob", "zoe", "erin", "not an id\x00"} {
		clear(cs.calls)
		each := f.gate.CanDecideEach(f.ctx, rs, who)
		if who != "not an id\x00" {
			require.Equal(t, 1, cs.calls["ListDelegations"], who)
		}
		require.Len(t, each, len(rs))
		for i, r := range rs {
			one := f.gate.CanDecide(f.ctx, r, who)
			require.Equal(t, one == nil, each[i] == nil, "%s on request %d: %v / %v", who, i, one, each[i])
			if one != nil {
				require.Equal(t, one.Error(), each[i].Error())
			}
		}
	}
}
