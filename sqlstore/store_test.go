package sqlstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

func TestCreateGetRoundTrip(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		s := open(t, newDSN(t))
		r := newRequest()
		r.Action.Cost = &approval.Cost{Amount: 12.5, Currency: "EUR"}
		r.Action.Risk = approval.RiskCritical
		r.Action.Tags = []string{"prod"}
		r.Action.Metadata = map[string]string{"k": "v\u0000with a NUL"}
		r.Action.Payload = []byte(`{"a":1}`)
		r.Action.Message = "ünïcode \"quoted\""
		r.Votes = []approval.Vote{{Approver: "bob", Verdict: approval.VerdictDeny, TokenID: "t1", Policies: []string{"high_spend"}, At: now()}}
		r.Deadline = now().Add(time.Hour)
		r.DueAt = now().Add(time.Minute)
		r.OnTimeout = approval.TimeoutApprove

		stored, created, err := s.Create(t.Context(), r, nil)
		require.NoError(t, err)
		require.True(t, created)
		require.Equal(t, r, stored)

		got, err := s.Get(t.Context(), r.ID)
		require.NoError(t, err)
		require.Equal(t, r, got)

		got.Votes[0].Approver = "mallory" // the caller owns the copy
		again, err := s.Get(t.Context(), r.ID)
		require.NoError(t, err)
		require.Equal(t, "bob", again.Votes[0].Approver)
	})
}

func TestCreateNormalisesTimes(t *testing.T) {
	t.Parallel()
	s := open(t, sqliteDSN(t))
	r := newRequest()
	local := time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.FixedZone("X", 3600))
	r.CreatedAt, r.DueAt = local, local
	stored, _, err := s.Create(t.Context(), r, nil)
	require.NoError(t, err)
	want := local.UTC().Truncate(time.Microsecond)
	require.Equal(t, want, stored.CreatedAt)
	got, err := s.Get(t.Context(), r.ID)
	require.NoError(t, err)
	require.Equal(t, want, got.CreatedAt)
	require.Equal(t, want, got.DueAt)
	require.Equal(t, local, r.CreatedAt, "Create must not modify the caller's request")
}

func TestGetNotFound(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		s := open(t, newDSN(t))
		_, err := s.Get(t.Context(), "req_missing")
		require.ErrorIs(t, err, approval.ErrNotFound)
		require.EqualError(t, err, "sqlstore: get req_missing: not found")
	})
}

func TestCreateDeduplicates(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		s := open(t, newDSN(t))
		ctx := t.Context()
		first := newRequest()
		_, created, err := s.Create(ctx, first, []approval.AuditEvent{event(first.ID, approval.EventRequestCreated, "alice")})
		require.NoError(t, err)
		require.True(t, created)

		// A live request of the same action is returned, and nothing is
		// written, not even the events.
		dup := newRequest()
		dup.ActionHash = first.ActionHash
		evs := []approval.AuditEvent{event(dup.ID, approval.EventRequestCreated, "alice")}
		got, created, err := s.Create(ctx, dup, evs)
		require.NoError(t, err)
		require.False(t, created)
		require.Equal(t, first.ID, got.ID)
		require.Zero(t, evs[0].Seq)
		require.Len(t, fullTrail(t, s), 1)
		_, err = s.Get(ctx, dup.ID)
		require.ErrorIs(t, err, approval.ErrNotFound)

		// Approved is still live.
		approved := first.Clone()
		approved.Status = approval.StatusApproved
		approved.Version++
		require.NoError(t, s.Update(ctx, approval.Update{Request: approved}))
		_, created, err = s.Create(ctx, dup, nil)
		require.NoError(t, err)
		require.False(t, created)

		// Once the request is terminal, the action is free.
		consumed := approved.Clone()
		consumed.Status = approval.StatusConsumed
		consumed.Version++
		require.NoError(t, s.Update(ctx, approval.Update{Request: consumed}))
		_, created, err = s.Create(ctx, dup, nil)
		require.NoError(t, err)
		require.True(t, created)

		// A taken ID is a conflict.
		again := newRequest()
		again.ID = first.ID
		_, _, err = s.Create(ctx, again, nil)
		require.ErrorIs(t, err, approval.ErrConflict)
	})
}

func TestUpdateCompareAndSet(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		s := open(t, newDSN(t))
		ctx := t.Context()
		r := newRequest()
		_, _, err := s.Create(ctx, r, nil)
		require.NoError(t, err)

		v2 := vote(r, "bob", "tok-1")
		evs := []approval.AuditEvent{event(r.ID, approval.EventDecisionApprove, "bob")}
		require.NoError(t, s.Update(ctx, approval.Update{Request: v2, TokenID: "tok-1", Events: evs}))
		require.Equal(t, int64(1), evs[0].Seq)
		require.NotEmpty(t, evs[0].Hash)

		// A second update from version 1 lost the race: nothing is written,
		// not the token, not the events.
		stale := vote(r, "carol", "tok-2")
		staleEvs := []approval.AuditEvent{event(r.ID, approval.EventDecisionApprove, "carol")}
		err = s.Update(ctx, approval.Update{Request: stale, TokenID: "tok-2", Events: staleEvs})
		require.ErrorIs(t, err, approval.ErrConflict)
		require.Zero(t, staleEvs[0].Seq, "events are sealed only when the write commits")
		got, err := s.Get(ctx, r.ID)
		require.NoError(t, err)
		require.Equal(t, v2, got)
		require.Len(t, fullTrail(t, s), 1)
		// tok-2 was not recorded, so it still works.
		require.NoError(t, s.Update(ctx, approval.Update{Request: vote(got, "carol", "tok-2"), TokenID: "tok-2"}))

		missing := newRequest()
		missing.Version = 2
		err = s.Update(ctx, approval.Update{Request: missing, TokenID: "tok-3"})
		require.ErrorIs(t, err, approval.ErrNotFound)
	})
}

func TestUpdateTokenReplay(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		s := open(t, newDSN(t))
		ctx := t.Context()
		a, b := newRequest(), newRequest()
		for _, r := range []*approval.Request{a, b} {
			_, _, err := s.Create(ctx, r, nil)
			require.NoError(t, err)
		}
		require.NoError(t, s.Update(ctx, approval.Update{Request: vote(a, "bob", "tok"), TokenID: "tok"}))

		// The same token on another request: refused, nothing written.
		evs := []approval.AuditEvent{event(b.ID, approval.EventDecisionApprove, "bob")}
		err := s.Update(ctx, approval.Update{Request: vote(b, "bob", "tok"), TokenID: "tok", Events: evs})
		require.ErrorIs(t, err, approval.ErrTokenUsed)
		require.Zero(t, evs[0].Seq)
		got, err := s.Get(ctx, b.ID)
		require.NoError(t, err)
		require.Equal(t, int64(1), got.Version)
		require.Empty(t, fullTrail(t, s))
		page, err := s.List(ctx, approval.RequestQuery{Approver: "bob"})
		require.NoError(t, err)
		require.Len(t, page.Requests, 1, "the refused vote must not reach the approver index")
	})
}

func TestUpdateRevivingLiveActionConflicts(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		s := open(t, newDSN(t))
		ctx := t.Context()
		old := newRequest()
		old.Status = approval.StatusDenied
		_, _, err := s.Create(ctx, old, nil)
		require.NoError(t, err)
		live := newRequest()
		live.ActionHash = old.ActionHash
		_, created, err := s.Create(ctx, live, nil)
		require.NoError(t, err)
		require.True(t, created)

		revived := old.Clone()
		revived.Status = approval.StatusPending
		revived.Version++
		err = s.Update(ctx, approval.Update{Request: revived})
		require.ErrorIs(t, err, approval.ErrConflict)
	})
}

func TestCancelledContext(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		s := open(t, newDSN(t))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		r := newRequest()
		_, _, err := s.Create(ctx, r, nil)
		require.ErrorIs(t, err, context.Canceled)
		err = s.Update(ctx, approval.Update{Request: vote(r, "bob", "t")})
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorIs(t, s.AppendAudit(ctx, []approval.AuditEvent{event("", approval.EventNotificationSent, "x")}), context.Canceled)
		_, err = s.Get(ctx, r.ID)
		require.ErrorIs(t, err, context.Canceled)
		_, err = s.List(ctx, approval.RequestQuery{})
		require.ErrorIs(t, err, context.Canceled)
		_, err = s.ListDue(ctx, approval.DueQuery{Now: now(), Limit: 0})
		require.ErrorIs(t, err, context.Canceled)
		_, err = s.ListAudit(ctx, approval.AuditQuery{})
		require.ErrorIs(t, err, context.Canceled)

		_, err = s.Get(t.Context(), r.ID)
		require.ErrorIs(t, err, approval.ErrNotFound, "a cancelled Create must write nothing")
	})
}

func TestNilRequest(t *testing.T) {
	t.Parallel()
	s := open(t, sqliteDSN(t))
	_, _, err := s.Create(t.Context(), nil, nil)
	require.Error(t, err)
	require.Error(t, s.Update(t.Context(), approval.Update{}))
}

func TestErrorsWrapOperation(t *testing.T) {
	t.Parallel()
	s := open(t, sqliteDSN(t))
	r := newRequest()
	r.Version = 2
	err := s.Update(t.Context(), approval.Update{Request: r})
	require.EqualError(t, err, "sqlstore: update "+r.ID+": not found")
	require.True(t, errors.Is(err, approval.ErrNotFound))
}

func TestCreateTerminalBypassesDedup(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		s := open(t, newDSN(t))
		ctx := t.Context()
		live := newRequest()
		_, _, err := s.Create(ctx, live, nil)
		require.NoError(t, err)

		denied := newRequest()
		denied.ActionHash = live.ActionHash
		denied.Status = approval.StatusDenied
		_, created, err := s.Create(ctx, denied, nil)
		require.NoError(t, err)
		require.True(t, created, "a terminal request is stored whatever is live")

		// A terminal request whose ID is taken is a conflict, even though
		// a live request holds its ActionHash.
		again := denied.Clone()
		again.ID = live.ID
		_, _, err = s.Create(ctx, again, nil)
		require.ErrorIs(t, err, approval.ErrConflict)
	})
}
