package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// runUpdateTests checks Update: compare-and-set, token replay, contention.
func runUpdateTests(t *testing.T, newStore func(t *testing.T) approval.Store) {
	// Update with Version one above the stored version replaces the stored
	// request with exactly the new state and appends its events.
	t.Run("update next version", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		req := create(t, s, newRequest())
		next := fullRequest()
		next.ID, next.ActionHash, next.Version = req.ID, req.ActionHash, 2
		ev := []approval.AuditEvent{event(req.ID, approval.EventRequestEscalated, approval.SystemActor)}
		require.NoError(t, s.Update(t.Context(), approval.Update{Request: next.Clone(), Events: ev}))
		require.Equal(t, next, get(t, s, req.ID))
		require.Equal(t, ev, fullTrail(t, s))
	})

	// Update whose Version is not the stored version + 1 returns an error
	// wrapping ErrConflict and writes nothing: not the request, not its
	// events, not its token.
	t.Run("update stale version", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		req := create(t, s, newRequest())
		want := update(t, s, req.ID, func(r *approval.Request) { r.Reason = "v2" })
		before := fullTrail(t, s)
		for _, version := range []int64{1, 2, 4} {
			stale := want.Clone()
			stale.Version = version
			stale.Status = approval.StatusDenied
			err := s.Update(t.Context(), approval.Update{
				Request: stale,
				TokenID: "tok_stale",
				Events:  []approval.AuditEvent{event(req.ID, approval.EventDecisionDeny, "bob")},
			})
			require.ErrorIs(t, err, approval.ErrConflict, "version %d over stored 2", version)
		}
		require.Equal(t, want, get(t, s, req.ID))
		require.Equal(t, before, fullTrail(t, s))
		// The token of a lost race was not recorded, so the retry may use it.
		next := want.Clone()
		next.Version = 3
		require.NoError(t, s.Update(t.Context(), approval.Update{Request: next, TokenID: "tok_stale"}))
	})

	// Update of an ID that is not stored returns an error wrapping
	// ErrNotFound and writes nothing.
	t.Run("update unknown id", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ghost := newRequest()
		ghost.Version = 2
		err := s.Update(t.Context(), approval.Update{
			Request: ghost,
			TokenID: "tok_ghost",
			Events:  []approval.AuditEvent{event(ghost.ID, approval.EventDecisionApprove, "bob")},
		})
		require.ErrorIs(t, err, approval.ErrNotFound)
		_, err = s.Get(t.Context(), ghost.ID)
		require.ErrorIs(t, err, approval.ErrNotFound)
		require.Empty(t, fullTrail(t, s))
		// Nor did it record the token.
		req := create(t, s, newRequest())
		req.Version++
		require.NoError(t, s.Update(t.Context(), approval.Update{Request: req, TokenID: "tok_ghost"}))
		for _, id := range oddText {
			odd := newRequest()
			odd.ID, odd.Version = id, 2
			err := s.Update(t.Context(), approval.Update{Request: odd})
			require.ErrorIs(t, err, approval.ErrNotFound, "Update(%q)", id)
		}
	})

	// Update keeps its own copy: changing u.Request afterwards does not
	// change the stored request.
	t.Run("update copies the request", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		req := create(t, s, newRequest())
		next := fullRequest()
		next.ID, next.ActionHash, next.Version = req.ID, req.ActionHash, 2
		want := next.Clone()
		require.NoError(t, s.Update(t.Context(), approval.Update{Request: next}))
		scribble(next)
		require.Equal(t, want, get(t, s, req.ID))
	})

	// A token ID recorded by one Update makes every later Update carrying
	// it, on the same request or any other, return an error wrapping
	// ErrTokenUsed and write nothing.
	t.Run("update token replay", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		a := create(t, s, newRequest())
		b := create(t, s, newRequest())
		tok := "tok_" + randomHex()
		a = vote(t, s, a.ID, "bob", tok)
		before := fullTrail(t, s)

		for _, id := range []string{a.ID, b.ID} {
			r := get(t, s, id)
			want := r.Clone()
			r.Votes = append(r.Votes, approval.Vote{Approver: "carol", Verdict: approval.VerdictApprove, TokenID: tok, Policies: []string{"high_spend"}, At: now()})
			r.Version++
			err := s.Update(t.Context(), approval.Update{
				Request: r,
				TokenID: tok,
				Events:  []approval.AuditEvent{event(id, approval.EventDecisionApprove, "carol")},
			})
			require.ErrorIs(t, err, approval.ErrTokenUsed)
			require.Equal(t, want, get(t, s, id))
		}
		require.Equal(t, before, fullTrail(t, s))
	})

	// Updates without a token ID record none: any number of them succeed.
	t.Run("update without token", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		req := create(t, s, newRequest())
		for i := range 3 {
			update(t, s, req.ID, func(r *approval.Request) { r.Reason = fmt.Sprint(i) })
		}
		require.Equal(t, int64(4), get(t, s, req.ID).Version)
	})

	// Concurrent read-modify-write loops that retry on ErrConflict never
	// lose or double an update: 64 approvers voting at once leave 64 votes,
	// Version 65 and 64 audit events.
	t.Run("update contention", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		req := create(t, s, newRequest())
		const n = 64
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				errs[i] = voteRetrying(t, s, req.ID, fmt.Sprintf("approver-%02d", i), "tok_"+randomHex())
			})
		}
		close(start)
		wg.Wait()
		for _, err := range errs {
			require.NoError(t, err)
		}

		got := get(t, s, req.ID)
		require.Equal(t, int64(n+1), got.Version)
		require.Len(t, got.Votes, n)
		approvers := make([]string, n)
		for i, v := range got.Votes {
			approvers[i] = v.Approver
		}
		slices.Sort(approvers)
		for i := range n {
			require.Equal(t, fmt.Sprintf("approver-%02d", i), approvers[i])
		}
		events := fullTrail(t, s)
		require.Len(t, events, n)
		// Votes and events were written together, in the same order.
		for i, v := range got.Votes {
			require.Equal(t, v.Approver, events[i].Actor)
		}
	})
}

// vote records an approval by approver with token tok on request id, as the
// next version, and returns the new state.
func vote(t *testing.T, s approval.Store, id, approver, tok string) *approval.Request {
	t.Helper()
	require.NoError(t, voteRetrying(t, s, id, approver, tok))
	return get(t, s, id)
}

// voteRetrying adds approver's vote to request id, retrying on ErrConflict.
// It may run in any goroutine: it reports failures as errors.
func voteRetrying(t *testing.T, s approval.Store, id, approver, tok string) error {
	for range 10_000 {
		r, err := s.Get(t.Context(), id)
		if err != nil {
			return err
		}
		at := now()
		r.Votes = append(r.Votes, approval.Vote{
			Approver: approver, Verdict: approval.VerdictApprove, TokenID: tok,
			Policies: []string{"high_spend"}, At: at,
		})
		r.UpdatedAt = at
		r.Version++
		ev := event(id, approval.EventDecisionApprove, approver)
		ev.Verdict = approval.VerdictApprove
		err = s.Update(t.Context(), approval.Update{Request: r, TokenID: tok, Events: []approval.AuditEvent{ev}})
		if errors.Is(err, approval.ErrConflict) {
			time.Sleep(time.Duration(len(r.Votes)) * time.Microsecond)
			continue
		}
		return err
	}
	return fmt.Errorf("vote by %s: still conflicting after 10000 attempts", approver)
}
