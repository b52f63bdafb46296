package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// runContextTests checks that every method honours a cancelled context.
func runContextTests(t *testing.T, newStore func(t *testing.T) approval.Store) {
	// Every method called with a cancelled context returns an error
	// wrapping the context's error, and the writes write nothing.
	t.Run("cancelled context", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		req := create(t, s, newRequest())
		want := req.Clone()
		cancelled, cancel := context.WithCancel(t.Context())
		cancel()

		fresh := newRequest()
		_, _, err := s.Create(cancelled, fresh, []approval.AuditEvent{event(fresh.ID, approval.EventRequestCreated, "alice")})
		require.ErrorIs(t, err, context.Canceled, "Create")
		_, err = s.Get(cancelled, req.ID)
		require.ErrorIs(t, err, context.Canceled, "Get")
		next := req.Clone()
		next.Version = 2
		err = s.Update(cancelled, approval.Update{
			Request: next, TokenID: "tok_cancelled",
			Events: []approval.AuditEvent{event(req.ID, approval.EventRequestCancelled, "alice")},
		})
		require.ErrorIs(t, err, context.Canceled, "Update")
		_, err = s.List(cancelled, approval.RequestQuery{})
		require.ErrorIs(t, err, context.Canceled, "List")
		_, err = s.ListDue(cancelled, approval.DueQuery{Now: time.Now(), Limit: 10})
		require.ErrorIs(t, err, context.Canceled, "ListDue")
		err = s.AppendAudit(cancelled, []approval.AuditEvent{event("", approval.EventNotificationSent, approval.SystemActor)})
		require.ErrorIs(t, err, context.Canceled, "AppendAudit")
		_, err = s.ListAudit(cancelled, approval.AuditQuery{})
		require.ErrorIs(t, err, context.Canceled, "ListAudit")

		_, err = s.Get(t.Context(), fresh.ID)
		require.ErrorIs(t, err, approval.ErrNotFound, "Create wrote with a cancelled context")
		require.Equal(t, want, get(t, s, req.ID), "Update wrote with a cancelled context")
		require.Empty(t, fullTrail(t, s), "events were appended with a cancelled context")
		// Nor was the token recorded.
		require.NoError(t, s.Update(t.Context(), approval.Update{Request: next, TokenID: "tok_cancelled"}))
	})
}
