package storetest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// runListTests checks List and ListDue.
func runListTests(t *testing.T, newStore func(t *testing.T) approval.Store) {
	// List with no filter returns every request in ascending ID order,
	// whatever order they were created in.
	t.Run("list all in id order", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		f := newListFixture(t, s)
		require.Equal(t, sorted(f.all()...), ids(listAll(t, s, approval.RequestQuery{})))
	})

	// List keeps the requests whose status is any of q.Status.
	t.Run("list filter status", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		f := newListFixture(t, s)
		for _, c := range []struct {
			status []approval.Status
			want   []*approval.Request
		}{
			{[]approval.Status{approval.StatusPending}, []*approval.Request{f.a}},
			{[]approval.Status{approval.StatusPending, approval.StatusEscalated}, []*approval.Request{f.a, f.d}},
			{[]approval.Status{approval.StatusDenied, approval.StatusApproved, approval.StatusCancelled}, []*approval.Request{f.b, f.c, f.e}},
			{[]approval.Status{approval.StatusTimedOut}, nil},
		} {
			got := listAll(t, s, approval.RequestQuery{Status: c.status})
			require.Equal(t, sorted(c.want...), ids(got), "status %v", c.status)
		}
	})

	// List keeps the requests that matched the named policy.
	t.Run("list filter policy", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		f := newListFixture(t, s)
		require.Equal(t, sorted(f.a, f.b, f.e), ids(listAll(t, s, approval.RequestQuery{Policy: "high_spend"})))
		require.Equal(t, sorted(f.b, f.c), ids(listAll(t, s, approval.RequestQuery{Policy: "prod_deploys"})))
		require.Empty(t, listAll(t, s, approval.RequestQuery{Policy: "high"}))
	})

	// List keeps the requests whose action was requested by q.RequestedBy.
	t.Run("list filter requested by", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		f := newListFixture(t, s)
		require.Equal(t, sorted(f.a, f.c, f.e), ids(listAll(t, s, approval.RequestQuery{RequestedBy: "alice"})))
		require.Equal(t, sorted(f.b, f.d), ids(listAll(t, s, approval.RequestQuery{RequestedBy: "bob"})))
		require.Empty(t, listAll(t, s, approval.RequestQuery{RequestedBy: "carol"}))
	})

	// List keeps the requests on which q.Approver has voted.
	t.Run("list filter approver", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		f := newListFixture(t, s)
		require.Equal(t, sorted(f.b, f.c), ids(listAll(t, s, approval.RequestQuery{Approver: "carol"})))
		require.Equal(t, sorted(f.c, f.d), ids(listAll(t, s, approval.RequestQuery{Approver: "dave"})))
		require.Empty(t, listAll(t, s, approval.RequestQuery{Approver: "alice"}))
	})

	// List keeps the requests created at or after CreatedFrom and before
	// CreatedTo.
	t.Run("list filter created range", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		f := newListFixture(t, s)
		require.Equal(t, sorted(f.b, f.c), ids(listAll(t, s, approval.RequestQuery{
			CreatedFrom: f.base.Add(1 * time.Hour), CreatedTo: f.base.Add(3 * time.Hour),
		})))
		require.Equal(t, sorted(f.d, f.e), ids(listAll(t, s, approval.RequestQuery{CreatedFrom: f.base.Add(3 * time.Hour)})))
		require.Equal(t, sorted(f.a), ids(listAll(t, s, approval.RequestQuery{CreatedTo: f.base.Add(1 * time.Hour)})))
		require.Equal(t, sorted(f.c), ids(listAll(t, s, approval.RequestQuery{
			CreatedFrom: f.base.Add(2*time.Hour - time.Microsecond), CreatedTo: f.base.Add(2*time.Hour + time.Microsecond),
		})))
		require.Equal(t, sorted(f.all()...), ids(listAll(t, s, approval.RequestQuery{CreatedFrom: farPast, CreatedTo: farFuture})))
	})

	// A filter by text no request holds matches nothing, without error.
	t.Run("list filter odd text", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		newListFixture(t, s)
		for _, v := range oddText {
			for _, q := range []approval.RequestQuery{
				{RequestedBy: v}, {Policy: v}, {Approver: v}, {Status: []approval.Status{approval.Status(v)}},
			} {
				require.Empty(t, listAll(t, s, q), "query %+v", q)
			}
		}
	})

	// List applies every given filter at once.
	t.Run("list filters combined", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		f := newListFixture(t, s)
		got := listAll(t, s, approval.RequestQuery{
			Status:      []approval.Status{approval.StatusPending, approval.StatusDenied, approval.StatusCancelled},
			RequestedBy: "alice",
			Policy:      "high_spend",
		})
		require.Equal(t, sorted(f.a, f.e), ids(got))
		got = listAll(t, s, approval.RequestQuery{Approver: "dave", Policy: "prod_deploys", CreatedTo: f.base.Add(3 * time.Hour)})
		require.Equal(t, sorted(f.c), ids(got))
	})

	// List returns pages of at most q.Limit requests in ascending ID order;
	// following Next visits every request once, and Next is empty on the
	// last page.
	t.Run("list pages", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		var all []*approval.Request
		for range 25 {
			all = append(all, create(t, s, newRequest()))
		}
		want := sorted(all...)
		var got []string
		q := approval.RequestQuery{Limit: 10}
		for i, size := range []int{10, 10, 5} {
			page, err := s.List(t.Context(), q)
			require.NoError(t, err)
			require.Len(t, page.Requests, size, "page %d", i+1)
			got = append(got, ids(page.Requests)...)
			if i < 2 {
				require.NotEmpty(t, page.Next, "page %d", i+1)
			} else {
				require.Empty(t, page.Next, "last page")
			}
			q.Cursor = page.Next
		}
		require.Equal(t, want, got)
	})

	// A last page that is exactly full still has an empty Next, with or
	// without filters.
	t.Run("list full last page", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		var approved []*approval.Request
		for i := range 40 {
			r := newRequest()
			if i%2 == 0 {
				r.Status = approval.StatusApproved
				approved = append(approved, r)
			}
			create(t, s, r)
		}
		for _, q := range []approval.RequestQuery{
			{Limit: 20},
			{Limit: 10, Status: []approval.Status{approval.StatusApproved}},
		} {
			var got []string
			for i := range 2 {
				page, err := s.List(t.Context(), q)
				require.NoError(t, err)
				require.Len(t, page.Requests, q.Limit)
				got = append(got, ids(page.Requests)...)
				if i == 0 {
					require.NotEmpty(t, page.Next)
				} else {
					require.Empty(t, page.Next, "a full last page must not point to an empty one (%+v)", q)
				}
				q.Cursor = page.Next
			}
			if q.Status != nil {
				require.Equal(t, sorted(approved...), got)
			}
		}
	})

	// List with Limit 0 returns pages of approval.DefaultPageSize.
	t.Run("list default limit", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		for range approval.DefaultPageSize + 1 {
			create(t, s, newRequest())
		}
		page, err := s.List(t.Context(), approval.RequestQuery{})
		require.NoError(t, err)
		require.Len(t, page.Requests, approval.DefaultPageSize)
		require.NotEmpty(t, page.Next)
		page, err = s.List(t.Context(), approval.RequestQuery{Cursor: page.Next})
		require.NoError(t, err)
		require.Len(t, page.Requests, 1)
		require.Empty(t, page.Next)
	})

	// List returns copies: changing them does not change the stored
	// requests.
	t.Run("list returns copies", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		want := create(t, s, fullRequest()).Clone()
		page, err := s.List(t.Context(), approval.RequestQuery{})
		require.NoError(t, err)
		require.Equal(t, []*approval.Request{want}, page.Requests)
		scribble(page.Requests[0])
		require.Equal(t, want, get(t, s, want.ID))
	})

	// ListDue returns the requests that are not terminal and whose DueAt is
	// set and not after now, earliest DueAt first, at most limit of them.
	t.Run("list due", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		at := now()
		due := func(status approval.Status, dueAt time.Time) *approval.Request {
			r := newRequest()
			r.Status, r.DueAt = status, dueAt
			return create(t, s, r)
		}
		approved := due(approval.StatusApproved, at.Add(-3*time.Hour))
		pending := due(approval.StatusPending, at.Add(-2*time.Hour))
		escalated := due(approval.StatusEscalated, at.Add(-1*time.Hour))
		exactlyNow := due(approval.StatusPending, at)
		due(approval.StatusPending, at.Add(time.Microsecond))
		due(approval.StatusPending, time.Time{})
		for _, st := range []approval.Status{
			approval.StatusDenied, approval.StatusCancelled, approval.StatusTimedOut,
			approval.StatusConsumed, approval.StatusExpired,
		} {
			due(st, at.Add(-4*time.Hour))
		}

		got, err := s.ListDue(t.Context(), approval.DueQuery{Now: at, Limit: 10})
		require.NoError(t, err)
		require.Equal(t, ids([]*approval.Request{approved, pending, escalated, exactlyNow}), ids(got))
		require.Equal(t, approved, got[0])
		scribble(got[0]) // a copy, like every request a store returns
		require.Equal(t, approved, get(t, s, approved.ID))

		got, err = s.ListDue(t.Context(), approval.DueQuery{Now: at, Limit: 2})
		require.NoError(t, err)
		require.Equal(t, ids([]*approval.Request{approved, pending}), ids(got))

		got, err = s.ListDue(t.Context(), approval.DueQuery{Now: at.Add(-5 * time.Hour), Limit: 10})
		require.NoError(t, err)
		require.Empty(t, got)

		got, err = s.ListDue(t.Context(), approval.DueQuery{Now: farFuture, Limit: 10})
		require.NoError(t, err)
		require.Len(t, got, 5, "every live request with a DueAt")
	})

	// ListDue pages by (DueAt, ID) after q.After: ties in DueAt are split
	// by ID, and walking the pages visits every due request once.
	t.Run("list due pages after a position", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		at := now()
		var want []*approval.Request
		for i := range 7 {
			r := newRequest()
			r.DueAt = at.Add(-time.Duration(i/3) * time.Minute) // three ties per minute
			want = append(want, create(t, s, r))
		}
		slices.SortFunc(want, func(a, b *approval.Request) int {
			if c := a.DueAt.Compare(b.DueAt); c != 0 {
				return c
			}
			return strings.Compare(a.ID, b.ID)
		})
		var walked []*approval.Request
		after := approval.DuePosition{}
		for range 10 {
			page, err := s.ListDue(t.Context(), approval.DueQuery{Now: at, After: after, Limit: 2})
			require.NoError(t, err)
			walked = append(walked, page...)
			if len(page) < 2 {
				break
			}
			last := page[len(page)-1]
			after = approval.DuePosition{DueAt: last.DueAt, ID: last.ID}
		}
		require.Equal(t, ids(want), ids(walked))

		// A position between stored requests: everything after it.
		mid := want[3]
		page, err := s.ListDue(t.Context(), approval.DueQuery{Now: at, After: approval.DuePosition{DueAt: mid.DueAt, ID: mid.ID}, Limit: 10})
		require.NoError(t, err)
		require.Equal(t, ids(want[4:]), ids(page))
		page, err = s.ListDue(t.Context(), approval.DueQuery{Now: at, After: approval.DuePosition{DueAt: farFuture, ID: "req_"}, Limit: 10})
		require.NoError(t, err)
		require.Empty(t, page)
	})

	// ListDue reflects updates: a request leaves it when it becomes
	// terminal, its DueAt moves into the future or is cleared, and joins it
	// when its DueAt moves into the past.
	t.Run("list due follows updates", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		at := now()
		var rs []*approval.Request
		for i := range 3 {
			r := newRequest()
			r.DueAt = at.Add(time.Duration(i-1) * time.Hour) // past, now-ish, future
			rs = append(rs, create(t, s, r))
		}
		got, err := s.ListDue(t.Context(), approval.DueQuery{Now: at, Limit: 10})
		require.NoError(t, err)
		require.Equal(t, ids(rs[:2]), ids(got))

		update(t, s, rs[0].ID, func(r *approval.Request) { r.Status = approval.StatusTimedOut })
		update(t, s, rs[1].ID, func(r *approval.Request) { r.DueAt = at.Add(2 * time.Hour) })
		update(t, s, rs[2].ID, func(r *approval.Request) { r.DueAt = at.Add(-time.Minute) })
		got, err = s.ListDue(t.Context(), approval.DueQuery{Now: at, Limit: 10})
		require.NoError(t, err)
		require.Equal(t, ids(rs[2:]), ids(got))

		update(t, s, rs[2].ID, func(r *approval.Request) { r.DueAt = time.Time{} })
		got, err = s.ListDue(t.Context(), approval.DueQuery{Now: farFuture, Limit: 10})
		require.NoError(t, err)
		require.Equal(t, ids(rs[1:2]), ids(got))
	})
}

// listFixture is five requests with distinct statuses, requesters,
// policies, voters and creation times, created in an order unrelated to
// their IDs.
type listFixture struct {
	base          time.Time
	a, b, c, d, e *approval.Request
}

func (f *listFixture) all() []*approval.Request { return []*approval.Request{f.a, f.b, f.c, f.d, f.e} }

func newListFixture(t *testing.T, s approval.Store) *listFixture {
	t.Helper()
	f := &listFixture{base: now().Add(-24 * time.Hour)}
	mk := func(hours int, status approval.Status, requester string, policies []string, voters ...string) *approval.Request {
		r := newRequest()
		r.Status = status
		r.Action.RequestedBy = requester
		r.Policies = nil
		for _, p := range policies {
			r.Policies = append(r.Policies, approval.MatchedPolicy{
				Name: p, Hash: randomHex(), Approvers: []approval.Approver{approval.Group("finance")}, RequiredApprovals: 1,
			})
		}
		for _, v := range voters {
			r.Votes = append(r.Votes, approval.Vote{
				Approver: v, Verdict: approval.VerdictApprove, TokenID: "tok_" + randomHex(),
				Policies: policies[:1], At: r.CreatedAt,
			})
		}
		r.CreatedAt = f.base.Add(time.Duration(hours) * time.Hour)
		r.UpdatedAt = r.CreatedAt
		return r
	}
	f.a = mk(0, approval.StatusPending, "alice", []string{"high_spend"})
	f.b = mk(1, approval.StatusApproved, "bob", []string{"high_spend", "prod_deploys"}, "carol")
	f.c = mk(2, approval.StatusDenied, "alice", []string{"prod_deploys"}, "carol", "dave")
	f.d = mk(3, approval.StatusEscalated, "bob", []string{"other"}, "dave")
	f.e = mk(4, approval.StatusCancelled, "alice", []string{"high_spend"})
	for _, r := range []*approval.Request{f.d, f.b, f.e, f.a, f.c} {
		create(t, s, r)
	}
	return f
}
