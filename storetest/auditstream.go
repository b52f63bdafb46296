package storetest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// runAuditStreamTests checks the optional AuditStream capability.
func runAuditStreamTests(t *testing.T, newStore func(t *testing.T) approval.Store) {
	stream := func(t *testing.T) (approval.Store, approval.AuditStream) {
		t.Helper()
		s := newStore(t)
		as, ok := s.(approval.AuditStream)
		if !ok {
			t.Skip("the store does not implement approval.AuditStream")
		}
		return s, as
	}

	// StreamAudit calls fn with every event after the given sequence
	// number, in order, equal to what ListAudit returns, across as many
	// reads as a long trail takes; it reads none after the end. fn may call
	// the store while the stream runs, and its error stops the stream and
	// is returned unchanged.
	t.Run("stream audit", func(t *testing.T) {
		t.Parallel()
		s, as := stream(t)
		ctx := t.Context()
		req := create(t, s, newRequest(), event("", approval.EventRequestCreated, "alice"))
		update(t, s, req.ID, func(r *approval.Request) { r.Status = approval.StatusCancelled },
			event(req.ID, approval.EventRequestCancelled, "alice"))
		const n = 2*approval.MaxPageSize + 500 // more than a store reads at once
		batch := make([]approval.AuditEvent, n)
		for i := range batch {
			batch[i] = event(newID(), approval.EventNotificationSent, approval.SystemActor)
			batch[i].Reason = strings.Repeat("x", i%7)
		}
		batch[3].Checkpoint, batch[3].Type = &approval.AuditCheckpoint{Seq: 2, Hash: "ab", KeyID: "kid", Signature: "sig"}, approval.EventAuditCheckpoint
		batch[4].Conditions = []string{"amount <= 10", `"quoted" <b>`}
		require.NoError(t, s.AppendAudit(ctx, batch))
		want := fullTrail(t, s)
		require.Len(t, want, n+2)

		collect := func(after int64) []approval.AuditEvent {
			var got []approval.AuditEvent
			require.NoError(t, as.StreamAudit(ctx, after, func(e *approval.AuditEvent) error {
				got = append(got, e.Clone())
				return nil
			}))
			return got
		}
		require.Equal(t, want, collect(0))
		require.Equal(t, want[1:], collect(1))
		require.Equal(t, want[n-10:], collect(int64(n-10)))
		require.Empty(t, collect(int64(n+2)))
		require.Empty(t, collect(int64(n+100)))

		// fn reads the store, and stops the stream.
		stop := errors.New("enough")
		calls := 0
		err := as.StreamAudit(ctx, 0, func(e *approval.AuditEvent) error {
			calls++
			if _, err := as.AuditedRequests(ctx, approval.AuditedRequestQuery{}); err != nil {
				return err
			}
			if _, err := s.ListAudit(ctx, approval.AuditQuery{RequestID: e.RequestID, Limit: 1}); err != nil {
				return err
			}
			if calls == approval.MaxPageSize+1 {
				return stop
			}
			return nil
		})
		require.Equal(t, stop, err)
		require.Equal(t, approval.MaxPageSize+1, calls)

	})

	// A cancelled context stops StreamAudit and AuditedRequests with its
	// error.
	t.Run("stream audit context", func(t *testing.T) {
		t.Parallel()
		s, as := stream(t)
		require.NoError(t, s.AppendAudit(t.Context(), []approval.AuditEvent{event("", approval.EventPolicyError, approval.SystemActor)}))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		err := as.StreamAudit(ctx, 0, func(*approval.AuditEvent) error { return nil })
		require.ErrorIs(t, err, context.Canceled)
		_, err = as.AuditedRequests(ctx, approval.AuditedRequestQuery{})
		require.ErrorIs(t, err, context.Canceled)
	})

	// AuditedRequests lists the part of each request its events account
	// for (Request.Audited of what Get returns), in ascending ID order, a
	// page at a time from after the ID given; a page shorter than the limit
	// is the last. CreatedFrom keeps the requests created at or after it.
	t.Run("audited requests", func(t *testing.T) {
		t.Parallel()
		s, as := stream(t)
		ctx := t.Context()
		base := now().Add(-time.Hour)
		var made []*approval.Request
		for i := range 7 {
			r := newRequest()
			r.CreatedAt, r.UpdatedAt = base.Add(time.Duration(i)*time.Minute), base.Add(time.Duration(i)*time.Minute)
			if i == 2 {
				r.PayloadHash = randomHex() + randomHex()
			}
			made = append(made, create(t, s, r))
		}
		update(t, s, made[1].ID, func(r *approval.Request) {
			r.Votes = []approval.Vote{
				{Approver: "bob", Verdict: approval.VerdictApprove, TokenID: "t1", Policies: []string{"high_spend"}, At: now()},
				{Approver: "carol", Verdict: approval.VerdictDeny, TokenID: "t2", Policies: []string{"high_spend"}, At: now()},
				{Approver: "erin", Verdict: approval.VerdictApprove, BreakGlass: true, TokenID: "t3", At: now()},
			}
			r.Status, r.Uses = approval.StatusConsumed, 2
		})
		update(t, s, made[4].ID, func(r *approval.Request) {
			r.Edit = &approval.PayloadEdit{Payload: []byte(`{"to":"x"}`), PayloadHash: randomHex() + randomHex(), ActionHash: randomHex() + randomHex(), By: "bob", At: now()}
		})
		full := fullRequest()
		full.Action.IdempotencyKey = ""
		made = append(made, create(t, s, full))

		var want []approval.AuditedRequest
		for _, r := range listAll(t, s, approval.RequestQuery{}) {
			want = append(want, get(t, s, r.ID).Audited())
		}
		require.Len(t, want, len(made))
		require.True(t, slices.IsSortedFunc(want, func(a, b approval.AuditedRequest) int { return strings.Compare(a.ID, b.ID) }))
		require.True(t, slices.ContainsFunc(want, func(a approval.AuditedRequest) bool { return a.Edited && len(a.Votes) == 1 && a.Votes[0].BreakGlass }))

		all, err := as.AuditedRequests(ctx, approval.AuditedRequestQuery{})
		require.NoError(t, err)
		require.Equal(t, want, all)
		var paged []approval.AuditedRequest
		q := approval.AuditedRequestQuery{Limit: 3}
		for i := range 4 {
			page, err := as.AuditedRequests(ctx, q)
			require.NoError(t, err)
			paged = append(paged, page...)
			if len(page) < 3 {
				require.Equal(t, 2, i, "a short page before the end")
				break
			}
			q.After = page[len(page)-1].ID
		}
		require.Equal(t, want, paged)
		rest, err := as.AuditedRequests(ctx, approval.AuditedRequestQuery{After: want[len(want)-1].ID})
		require.NoError(t, err)
		require.Empty(t, rest)

		from := base.Add(3 * time.Minute)
		var recent []approval.AuditedRequest
		for _, a := range want {
			if !a.CreatedAt.Before(from) {
				recent = append(recent, a)
			}
		}
		require.Len(t, recent, 5)
		got, err := as.AuditedRequests(ctx, approval.AuditedRequestQuery{CreatedFrom: from})
		require.NoError(t, err)
		require.Equal(t, recent, got)
		got, err = as.AuditedRequests(ctx, approval.AuditedRequestQuery{CreatedFrom: from, After: recent[0].ID, Limit: 2})
		require.NoError(t, err)
		require.Equal(t, recent[1:3], got)
	})
}
