package sqlstore

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// listAll follows the cursors of q through every page.
func listAll(t *testing.T, s approval.Store, q approval.RequestQuery) []string {
	t.Helper()
	var ids []string
	for range 1000 {
		page, err := s.List(t.Context(), q)
		require.NoError(t, err)
		require.LessOrEqual(t, len(page.Requests), approval.PageSize(q.Limit))
		for _, r := range page.Requests {
			ids = append(ids, r.ID)
		}
		if page.Next == "" {
			return ids
		}
		require.Len(t, page.Requests, approval.PageSize(q.Limit), "only the last page may be short")
		q.Cursor = page.Next
	}
	t.Fatal("cursors did not end")
	return nil
}

func TestList(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		s := open(t, newDSN(t))
		ctx := t.Context()
		base := now().Add(-time.Hour)
		var all []*approval.Request
		for i := range 25 {
			r := newRequest()
			r.CreatedAt = base.Add(time.Duration(i) * time.Minute)
			if i%2 == 1 {
				r.Action.RequestedBy = "bob"
			}
			if i%3 == 0 {
				r.Policies = append(r.Policies, approval.MatchedPolicy{Name: "prod", Hash: "h"})
			}
			_, _, err := s.Create(ctx, r, nil)
			require.NoError(t, err)
			if i%5 == 0 {
				r = vote(r, "carol", "tok-"+r.ID)
				r.Status = approval.StatusApproved
				require.NoError(t, s.Update(ctx, approval.Update{Request: r, TokenID: "tok-" + r.ID}))
			}
			all = append(all, r)
		}
		want := func(keep func(i int, r *approval.Request) bool) []string {
			var ids []string
			for i, r := range all {
				if keep(i, r) {
					ids = append(ids, r.ID)
				}
			}
			slices.Sort(ids)
			return ids
		}

		require.Equal(t, want(func(int, *approval.Request) bool { return true }), listAll(t, s, approval.RequestQuery{Limit: 4}))
		require.Equal(t, want(func(int, *approval.Request) bool { return true }), listAll(t, s, approval.RequestQuery{}))
		require.Equal(t, want(func(i int, _ *approval.Request) bool { return i%2 == 1 }),
			listAll(t, s, approval.RequestQuery{RequestedBy: "bob", Limit: 3}))
		require.Equal(t, want(func(i int, _ *approval.Request) bool { return i%3 == 0 }),
			listAll(t, s, approval.RequestQuery{Policy: "prod", Limit: 2}))
		require.Equal(t, want(func(i int, _ *approval.Request) bool { return i%5 == 0 }),
			listAll(t, s, approval.RequestQuery{Approver: "carol"}))
		require.Equal(t, want(func(i int, _ *approval.Request) bool { return i%5 == 0 }),
			listAll(t, s, approval.RequestQuery{Status: []approval.Status{approval.StatusApproved, approval.StatusDenied}}))
		require.Equal(t, want(func(i int, _ *approval.Request) bool { return i%5 != 0 }),
			listAll(t, s, approval.RequestQuery{Status: []approval.Status{approval.StatusPending}, Limit: 7}))
		require.Equal(t, want(func(i int, _ *approval.Request) bool { return i >= 5 && i < 10 }),
			listAll(t, s, approval.RequestQuery{CreatedFrom: base.Add(5 * time.Minute), CreatedTo: base.Add(10 * time.Minute)}))
		// Bounds between microseconds select what comparing with them would.
		require.Equal(t, want(func(i int, _ *approval.Request) bool { return i >= 6 && i <= 10 }),
			listAll(t, s, approval.RequestQuery{CreatedFrom: base.Add(5*time.Minute + 1), CreatedTo: base.Add(10*time.Minute + 1)}))
		require.Equal(t, want(func(i int, _ *approval.Request) bool { return i%2 == 1 && i%3 == 0 && i%5 == 0 }),
			listAll(t, s, approval.RequestQuery{RequestedBy: "bob", Policy: "prod", Approver: "carol", Status: []approval.Status{approval.StatusApproved}}))
		require.Empty(t, listAll(t, s, approval.RequestQuery{Approver: "nobody"}))

		// Exactly one full page: Next is empty.
		page, err := s.List(ctx, approval.RequestQuery{Limit: 25})
		require.NoError(t, err)
		require.Len(t, page.Requests, 25)
		require.Empty(t, page.Next)
	})
}

func TestListDue(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		s := open(t, newDSN(t))
		ctx := t.Context()
		at := now()
		mk := func(due time.Duration, status approval.Status, never bool) *approval.Request {
			r := newRequest()
			r.Status = status
			if !never {
				r.DueAt = at.Add(due)
			}
			_, _, err := s.Create(ctx, r, nil)
			require.NoError(t, err)
			return r
		}
		late := mk(-time.Minute, approval.StatusPending, false)
		early := mk(-time.Hour, approval.StatusEscalated, false)
		exact := mk(0, approval.StatusApproved, false)
		mk(-2*time.Hour, approval.StatusDenied, false) // terminal
		mk(time.Second, approval.StatusPending, false) // not yet
		mk(0, approval.StatusPending, true)            // never due

		due, err := s.ListDue(ctx, approval.DueQuery{Now: at, Limit: 0})
		require.NoError(t, err)
		require.Equal(t, []string{early.ID, late.ID, exact.ID}, idsOf(due))
		due, err = s.ListDue(ctx, approval.DueQuery{Now: at, Limit: 2})
		require.NoError(t, err)
		require.Equal(t, []string{early.ID, late.ID}, idsOf(due))
		due, err = s.ListDue(ctx, approval.DueQuery{Now: at.Add(-time.Nanosecond), Limit: 10})
		require.NoError(t, err)
		require.Equal(t, []string{early.ID, late.ID}, idsOf(due), "due at exactly now is due; a nanosecond before is not")
	})
}

func idsOf(rs []*approval.Request) []string {
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.ID
	}
	return ids
}

// TestListInvalidCursor passes List a cursor no request ID can be (not
// valid UTF-8): it is an error, not a page, since a cursor comes from
// RequestPage.Next and this one did not.
func TestListInvalidCursor(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		s := open(t, newDSN(t))
		_, err := s.List(t.Context(), approval.RequestQuery{Cursor: "req_\xff"})
		require.ErrorContains(t, err, "invalid cursor")
	})
}
