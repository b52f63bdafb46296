package sqlstore

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// TestUpdateSideTables changes a request's voters and policies through a
// Store that remembers the names of the version it replaces and through
// one that does not (see nameCache): List's Approver and Policy filters
// must follow either way, and an Update built on a version another Store
// has since replaced must fail with ErrConflict, changing nothing.
func TestUpdateSideTables(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		dsn := newDSN(t)
		warm, cold := open(t, dsn), open(t, dsn)
		ctx := t.Context()
		r := vote(vote(newRequest(), "bob", "t1"), "carol", "t2")
		r.Version = 1
		_, _, err := warm.Create(ctx, r, nil)
		require.NoError(t, err)
		list := func(q approval.RequestQuery) []string {
			page, err := cold.List(ctx, q)
			require.NoError(t, err)
			var ids []string
			for _, x := range page.Requests {
				ids = append(ids, x.ID)
			}
			return ids
		}
		set := func(s *Store, version int64, voters []string, policy string) error {
			next := r.Clone()
			next.Version = version
			next.Votes = nil
			for _, v := range voters {
				next.Votes = append(next.Votes, approval.Vote{Approver: v, Verdict: approval.VerdictApprove, At: now()})
			}
			next.Policies[0].Name = policy
			return s.Update(ctx, approval.Update{Request: next})
		}
		check := func(voters []string, policy string) {
			t.Helper()
			for _, v := range []string{"bob", "carol", "dave"} {
				want := []string(nil)
				for _, w := range voters {
					if w == v {
						want = []string{r.ID}
					}
				}
				require.Equal(t, want, list(approval.RequestQuery{Approver: v}), "approver %s", v)
			}
			for _, p := range []string{"high_spend", "prod_deploys"} {
				want := []string(nil)
				if p == policy {
					want = []string{r.ID}
				}
				require.Equal(t, want, list(approval.RequestQuery{Policy: p}), "policy %s", p)
			}
		}
		check([]string{"bob", "carol"}, "high_spend")

		_, cached := warm.names.get(r.ID, 1)
		require.True(t, cached)
		require.NoError(t, set(warm, 2, []string{"carol", "dave"}, "prod_deploys"))
		check([]string{"carol", "dave"}, "prod_deploys")

		_, cached = cold.names.get(r.ID, 2)
		require.False(t, cached)
		require.NoError(t, set(cold, 3, []string{"bob"}, "high_spend"))
		check([]string{"bob"}, "high_spend")

		// warm remembers version 2, which cold has replaced.
		require.ErrorIs(t, set(warm, 3, []string{"mallory"}, "prod_deploys"), approval.ErrConflict)
		check([]string{"bob"}, "high_spend")
		got, err := warm.Get(ctx, r.ID)
		require.NoError(t, err)
		require.Equal(t, int64(3), got.Version)
	})
}
