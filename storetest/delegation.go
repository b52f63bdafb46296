package storetest

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/fixture"
)

// newDelegation returns a valid delegation from alice to bob for a day.
var newDelegation = fixture.NewDelegation

func delegationEvent(typ approval.EventType) []approval.AuditEvent {
	return []approval.AuditEvent{{Type: typ, Actor: "admin", OnBehalfOf: "alice", Reason: "granted", At: now()}}
}

// runDelegationTests checks the optional approval.Delegations capability,
// on stores that have it.
func runDelegationTests(t *testing.T, newStore func(t *testing.T) approval.Store) {
	delegations := func(t *testing.T) (approval.Delegations, approval.Store) {
		t.Helper()
		s := newStore(t)
		ds, ok := s.(approval.Delegations)
		if !ok {
			t.Skip("the store does not implement approval.Delegations")
		}
		return ds, s
	}

	// A delegation is stored whole, with its audit event, and listed.
	t.Run("delegation create then list", func(t *testing.T) {
		t.Parallel()
		ds, s := delegations(t)
		ctx := t.Context()
		d := newDelegation()
		evs := delegationEvent(approval.EventDelegationGranted)
		require.NoError(t, ds.CreateDelegation(ctx, d, evs))
		require.NotEmpty(t, evs[0].Hash, "sealed in place")
		got, err := ds.ListDelegations(ctx, approval.DelegationQuery{})
		require.NoError(t, err)
		require.Equal(t, []approval.Delegation{*d}, got)
		trail := fullTrail(t, s)
		require.Len(t, trail, 1)
		require.Equal(t, approval.EventDelegationGranted, trail[0].Type)
		require.Equal(t, "alice", trail[0].OnBehalfOf)

		require.ErrorIs(t, ds.CreateDelegation(ctx, d, delegationEvent(approval.EventDelegationGranted)), approval.ErrConflict)
		require.Len(t, fullTrail(t, s), 1, "a refused create writes nothing")
	})

	// Filters select by From, To and the window; revoked ones are not
	// active after they were revoked.
	t.Run("delegation filters", func(t *testing.T) {
		t.Parallel()
		ds, _ := delegations(t)
		ctx := t.Context()
		a := newDelegation()
		b := newDelegation()
		b.From, b.To, b.Policies = "carol", "bob", nil
		b.NotBefore, b.NotAfter = a.NotAfter, a.NotAfter.Add(time.Hour)
		c := newDelegation()
		c.From, c.To = "alice", "dave"
		for _, d := range []*approval.Delegation{a, b, c} {
			require.NoError(t, ds.CreateDelegation(ctx, d, nil))
		}
		ids := func(q approval.DelegationQuery) []string {
			got, err := ds.ListDelegations(ctx, q)
			require.NoError(t, err)
			var out []string
			for _, d := range got {
				out = append(out, d.ID)
			}
			return out
		}
		sorted := func(ds ...*approval.Delegation) []string {
			var out []string
			for _, d := range ds {
				out = append(out, d.ID)
			}
			return sortedStrings(out)
		}
		require.Equal(t, sorted(a, b), ids(approval.DelegationQuery{To: "bob"}))
		require.Equal(t, sorted(a, c), ids(approval.DelegationQuery{From: "alice"}))
		require.Equal(t, sorted(a), ids(approval.DelegationQuery{To: "bob", ActiveAt: a.NotBefore}))
		require.Equal(t, sorted(b), ids(approval.DelegationQuery{To: "bob", ActiveAt: a.NotAfter}), "NotAfter is exclusive, NotBefore inclusive")
		require.Empty(t, ids(approval.DelegationQuery{To: "bob", ActiveAt: b.NotAfter}))
		require.Empty(t, ids(approval.DelegationQuery{To: "bob", ActiveAt: a.NotBefore.Add(-time.Microsecond)}))
		require.Empty(t, ids(approval.DelegationQuery{To: "nobody"}))
		all := sorted(a, b, c)
		require.Equal(t, all[1:], ids(approval.DelegationQuery{After: all[0]}))
		require.Equal(t, all[:2], ids(approval.DelegationQuery{Limit: 2}))

		mid := a.NotBefore.Add(time.Hour)
		revoked, err := ds.RevokeDelegation(ctx, a.ID, mid, "alice", nil)
		require.NoError(t, err)
		require.Equal(t, mid, revoked.RevokedAt)
		require.Equal(t, "alice", revoked.RevokedBy)
		require.Equal(t, sorted(a), ids(approval.DelegationQuery{To: "bob", ActiveAt: mid.Add(-time.Microsecond)}), "active until revoked")
		require.Empty(t, ids(approval.DelegationQuery{To: "bob", ActiveAt: mid}))
		require.Equal(t, sorted(a, b), ids(approval.DelegationQuery{To: "bob"}), "revoked ones are still listed")
	})

	// Revoking is once: a second revoke, or one of an unknown ID, writes
	// nothing.
	t.Run("delegation revoke once", func(t *testing.T) {
		t.Parallel()
		ds, s := delegations(t)
		ctx := t.Context()
		d := newDelegation()
		require.NoError(t, ds.CreateDelegation(ctx, d, nil))
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Go(func() {
				_, errs[i] = ds.RevokeDelegation(ctx, d.ID, now(), "admin", delegationEvent(approval.EventDelegationRevoked))
			})
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
			} else {
				require.ErrorIs(t, err, approval.ErrConflict)
			}
		}
		require.Equal(t, 1, ok, "exactly one revoke wins")
		require.Len(t, fullTrail(t, s), 1, "and only its event is written")
		_, err := ds.RevokeDelegation(ctx, "dlg_"+randomHex(), now(), "admin", delegationEvent(approval.EventDelegationRevoked))
		require.ErrorIs(t, err, approval.ErrNotFound)
		for _, id := range oddText {
			_, err := ds.RevokeDelegation(ctx, id, now(), "admin", nil)
			require.ErrorIs(t, err, approval.ErrNotFound)
		}
		require.Len(t, fullTrail(t, s), 1)
	})

	// The store keeps no reference to what it was given or returned.
	t.Run("delegation copies", func(t *testing.T) {
		t.Parallel()
		ds, _ := delegations(t)
		ctx := t.Context()
		d := newDelegation()
		want := *d.Clone()
		require.NoError(t, ds.CreateDelegation(ctx, d, nil))
		d.Policies[0] = "scribbled"
		got, err := ds.ListDelegations(ctx, approval.DelegationQuery{})
		require.NoError(t, err)
		require.Equal(t, []approval.Delegation{want}, got)
		got[0].Policies[0] = "scribbled"
		again, err := ds.ListDelegations(ctx, approval.DelegationQuery{})
		require.NoError(t, err)
		require.Equal(t, []approval.Delegation{want}, again)
	})
}

func sortedStrings(s []string) []string {
	slices.Sort(s)
	return s
}
