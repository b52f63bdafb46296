package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// runOutboxTests checks the optional approval.Outbox capability, on stores
// that have it.
func runOutboxTests(t *testing.T, newStore func(t *testing.T) approval.Store) {
	outbox := func(t *testing.T) approval.Outbox {
		t.Helper()
		ob, ok := newStore(t).(approval.Outbox)
		if !ok {
			t.Skip("the store does not implement approval.Outbox")
		}
		return ob
	}

	// A notice stored with Create is kept whole, pending.
	t.Run("outbox create stores notices", func(t *testing.T) {
		t.Parallel()
		ob := outbox(t)
		ctx := t.Context()
		r := newRequest()
		m := newNotice(r, now())
		m.Level, m.Body, m.LastError = 2, []byte(`{"id":"x"}`), "earlier"
		_, created, err := ob.CreateWithOutbox(ctx, r, nil, []approval.OutboxMessage{m})
		require.NoError(t, err)
		require.True(t, created)
		page, err := ob.ListOutbox(ctx, approval.OutboxQuery{})
		require.NoError(t, err)
		require.Equal(t, []approval.OutboxMessage{m}, page.Messages)
	})

	// A Create that finds the action live stores none of its notices.
	t.Run("outbox create deduplicated stores nothing", func(t *testing.T) {
		t.Parallel()
		ob := outbox(t)
		ctx := t.Context()
		r := newRequest()
		_, _, err := ob.CreateWithOutbox(ctx, r, nil, []approval.OutboxMessage{newNotice(r, now())})
		require.NoError(t, err)
		again := newRequest()
		again.ActionHash = r.ActionHash
		_, created, err := ob.CreateWithOutbox(ctx, again, nil, []approval.OutboxMessage{newNotice(again, now())})
		require.NoError(t, err)
		require.False(t, created)
		page, err := ob.ListOutbox(ctx, approval.OutboxQuery{})
		require.NoError(t, err)
		require.Len(t, page.Messages, 1)
		require.Equal(t, r.ID, page.Messages[0].RequestID)
	})

	// Update stores its notices only if it writes: not on a stale version
	// nor a used token.
	t.Run("outbox update atomic", func(t *testing.T) {
		t.Parallel()
		ob := outbox(t)
		s := ob.(approval.Store)
		ctx := t.Context()
		r := newRequest()
		_, _, err := s.Create(ctx, r, nil)
		require.NoError(t, err)
		next := r.Clone()
		next.Version = 2
		require.NoError(t, s.Update(ctx, approval.Update{Request: next, TokenID: "tok-1", Outbox: []approval.OutboxMessage{newNotice(r, now())}}))
		stale := r.Clone()
		stale.Version = 2
		require.ErrorIs(t, s.Update(ctx, approval.Update{Request: stale, Outbox: []approval.OutboxMessage{newNotice(r, now())}}), approval.ErrConflict)
		replay := next.Clone()
		replay.Version = 3
		require.ErrorIs(t, s.Update(ctx, approval.Update{Request: replay, TokenID: "tok-1", Outbox: []approval.OutboxMessage{newNotice(r, now())}}), approval.ErrTokenUsed)
		page, err := ob.ListOutbox(ctx, approval.OutboxQuery{RequestID: r.ID})
		require.NoError(t, err)
		require.Len(t, page.Messages, 1, "only the update that wrote stored its notice")
	})

	// A claim leases due messages of one channel, oldest first; no other
	// claim gets them until the lease ends; only the lease's owner
	// settles.
	t.Run("outbox claim lease", func(t *testing.T) {
		t.Parallel()
		ob := outbox(t)
		ctx := t.Context()
		at := now()
		r := newRequest()
		due1, due2, later, other := newDelivery(r, "hook", at.Add(-2*time.Second)), newDelivery(r, "hook", at.Add(-time.Second)),
			newDelivery(r, "hook", at.Add(time.Hour)), newDelivery(r, "email", at)
		_, _, err := ob.CreateWithOutbox(ctx, r, nil, []approval.OutboxMessage{later, due2, other, due1})
		require.NoError(t, err)

		got, err := ob.ClaimOutbox(ctx, approval.OutboxClaim{Owner: "w1", Channel: "hook", Now: at, Lease: time.Minute, Limit: 10})
		require.NoError(t, err)
		require.Equal(t, []string{due1.ID, due2.ID}, msgIDs(got))
		require.Equal(t, "w1", got[0].LeaseOwner)
		require.True(t, got[0].LeaseUntil.Equal(at.Add(time.Minute)))

		none, err := ob.ClaimOutbox(ctx, approval.OutboxClaim{Owner: "w2", Channel: "hook", Now: at.Add(59 * time.Second), Lease: time.Minute})
		require.NoError(t, err)
		require.Empty(t, none, "leased")

		// The lease of w1 ends; w2 takes one message over.
		took, err := ob.ClaimOutbox(ctx, approval.OutboxClaim{Owner: "w2", Channel: "hook", Now: at.Add(61 * time.Second), Lease: time.Minute, Limit: 1})
		require.NoError(t, err)
		require.Equal(t, []string{due1.ID}, msgIDs(took))
		err = ob.SettleOutbox(ctx, approval.OutboxSettle{ID: due1.ID, Owner: "w1", Outcome: approval.OutboxDone})
		require.ErrorIs(t, err, approval.ErrConflict, "w1 lost its lease")
		require.NoError(t, ob.SettleOutbox(ctx, approval.OutboxSettle{ID: due1.ID, Owner: "w2", Outcome: approval.OutboxDone}))
		// w1 still holds due2: its lease ended but nobody took it.
		require.NoError(t, ob.SettleOutbox(ctx, approval.OutboxSettle{ID: due2.ID, Owner: "w1", Outcome: approval.OutboxDone}))
		err = ob.SettleOutbox(ctx, approval.OutboxSettle{ID: due2.ID, Owner: "w1", Outcome: approval.OutboxDone})
		require.ErrorIs(t, err, approval.ErrNotFound)

		left, err := ob.ListOutbox(ctx, approval.OutboxQuery{})
		require.NoError(t, err)
		require.ElementsMatch(t, []string{later.ID, other.ID}, msgIDs(left.Messages))
	})

	// A claim for one recipient leases that person's due deliveries of the
	// channel alone.
	t.Run("outbox claim by recipient", func(t *testing.T) {
		t.Parallel()
		ob := outbox(t)
		ctx := t.Context()
		at := now()
		r := newRequest()
		a1, a2, b, later := newDelivery(r, "hook", at.Add(-2*time.Second)), newDelivery(r, "hook", at.Add(-time.Second)),
			newDelivery(r, "hook", at), newDelivery(r, "hook", at.Add(time.Hour))
		b.Recipient = "bob"
		_, _, err := ob.CreateWithOutbox(ctx, r, nil, []approval.OutboxMessage{a1, a2, b, later})
		require.NoError(t, err)
		got, err := ob.ClaimOutbox(ctx, approval.OutboxClaim{Owner: "w1", Channel: "hook", Recipient: "alice", Now: at, Lease: time.Minute})
		require.NoError(t, err)
		require.Equal(t, []string{a1.ID, a2.ID}, msgIDs(got))
		got, err = ob.ClaimOutbox(ctx, approval.OutboxClaim{Owner: "w1", Channel: "hook", Recipient: "carol", Now: at, Lease: time.Minute})
		require.NoError(t, err)
		require.Empty(t, got)
		got, err = ob.ClaimOutbox(ctx, approval.OutboxClaim{Owner: "w1", Channel: "hook", Now: at, Lease: time.Minute})
		require.NoError(t, err)
		require.Equal(t, []string{b.ID}, msgIDs(got))
	})

	// Retry keeps a message pending until its next attempt; a dead letter
	// is never claimed, is listed, and Redrive makes it pending again; a
	// notice settled done is replaced by its deliveries; the events of a
	// settlement are appended with it.
	t.Run("outbox settle outcomes", func(t *testing.T) {
		t.Parallel()
		ob := outbox(t)
		s := ob.(approval.Store)
		ctx := t.Context()
		at := now()
		r := newRequest()
		notice, d := newNotice(r, at), newDelivery(r, "hook", at)
		_, _, err := ob.CreateWithOutbox(ctx, r, nil, []approval.OutboxMessage{notice, d})
		require.NoError(t, err)
		claim := func(channel string, when time.Time) []approval.OutboxMessage {
			got, err := ob.ClaimOutbox(ctx, approval.OutboxClaim{Owner: "w", Channel: channel, Now: when, Lease: time.Minute})
			require.NoError(t, err)
			return got
		}

		require.Len(t, claim("hook", at), 1)
		ev := []approval.AuditEvent{{RequestID: r.ID, Type: approval.EventNotificationFailed, Actor: approval.SystemActor, Reason: "attempt 1", At: at}}
		require.NoError(t, ob.SettleOutbox(ctx, approval.OutboxSettle{ID: d.ID, Owner: "w", Outcome: approval.OutboxRetry,
			Attempts: 1, NextAttempt: at.Add(time.Hour), LastError: "503", Events: ev}))
		require.NotZero(t, ev[0].Seq, "sealed in place")
		require.Empty(t, claim("hook", at.Add(59*time.Minute)), "not before its next attempt")
		again := claim("hook", at.Add(time.Hour))
		require.Len(t, again, 1)
		require.Equal(t, 1, again[0].Attempts)
		require.Equal(t, "503", again[0].LastError)

		require.NoError(t, ob.SettleOutbox(ctx, approval.OutboxSettle{ID: d.ID, Owner: "w", Outcome: approval.OutboxDeadLetter, Attempts: 2, LastError: "410"}))
		require.Empty(t, claim("hook", at.Add(48*time.Hour)), "dead letters are not claimed")
		dead, err := ob.ListOutbox(ctx, approval.OutboxQuery{State: approval.OutboxDead})
		require.NoError(t, err)
		require.Len(t, dead.Messages, 1)
		require.Equal(t, approval.OutboxDead, dead.Messages[0].State)
		require.Equal(t, 2, dead.Messages[0].Attempts)
		require.Equal(t, "410", dead.Messages[0].LastError)

		red := approval.AuditEvent{Type: approval.EventNotificationRedriven, Actor: "ops", Reason: "redrive", At: at}
		require.NoError(t, ob.RedriveOutbox(ctx, d.ID, at.Add(2*time.Hour), &red))
		require.Equal(t, r.ID, red.RequestID)
		require.NotZero(t, red.Seq)
		require.ErrorIs(t, ob.RedriveOutbox(ctx, d.ID, at, nil), approval.ErrNotFound, "no longer dead")
		back := claim("hook", at.Add(2*time.Hour))
		require.Len(t, back, 1)
		require.Zero(t, back[0].Attempts)

		// The notice expands into its deliveries.
		require.Len(t, claim("", at), 1)
		add := []approval.OutboxMessage{newDelivery(r, "hook", at), newDelivery(r, "email", at)}
		require.NoError(t, ob.SettleOutbox(ctx, approval.OutboxSettle{ID: notice.ID, Owner: "w", Outcome: approval.OutboxDone, Add: add}))
		page, err := ob.ListOutbox(ctx, approval.OutboxQuery{})
		require.NoError(t, err)
		require.ElementsMatch(t, []string{d.ID, add[0].ID, add[1].ID}, msgIDs(page.Messages))

		trail, err := s.ListAudit(ctx, approval.AuditQuery{RequestID: r.ID})
		require.NoError(t, err)
		require.Len(t, trail.Events, 2)
	})

	// A settlement whose deliveries cannot be stored writes nothing.
	t.Run("outbox settle atomic", func(t *testing.T) {
		t.Parallel()
		ob := outbox(t)
		ctx := t.Context()
		at := now()
		r := newRequest()
		notice, d := newNotice(r, at), newDelivery(r, "hook", at)
		_, _, err := ob.CreateWithOutbox(ctx, r, nil, []approval.OutboxMessage{notice, d})
		require.NoError(t, err)
		_, err = ob.ClaimOutbox(ctx, approval.OutboxClaim{Owner: "w", Now: at, Lease: time.Minute})
		require.NoError(t, err)
		dup := d
		err = ob.SettleOutbox(ctx, approval.OutboxSettle{ID: notice.ID, Owner: "w", Outcome: approval.OutboxDone, Add: []approval.OutboxMessage{dup},
			Events: []approval.AuditEvent{{RequestID: r.ID, Type: approval.EventNotificationFailed, Actor: approval.SystemActor, At: at}}})
		require.ErrorIs(t, err, approval.ErrConflict, "a delivery ID that exists")
		page, err := ob.ListOutbox(ctx, approval.OutboxQuery{})
		require.NoError(t, err)
		require.ElementsMatch(t, []string{notice.ID, d.ID}, msgIDs(page.Messages), "the notice is still there")
		trail, err := ob.(approval.Store).ListAudit(ctx, approval.AuditQuery{RequestID: r.ID})
		require.NoError(t, err)
		require.Empty(t, trail.Events)
	})

	// ListOutbox filters and pages in ID order; a foreign cursor is an
	// error.
	t.Run("outbox list pages", func(t *testing.T) {
		t.Parallel()
		ob := outbox(t)
		ctx := t.Context()
		r := newRequest()
		var msgs []approval.OutboxMessage
		for i := range 25 {
			ch := "hook"
			if i%5 == 0 {
				ch = "email"
			}
			msgs = append(msgs, newDelivery(r, ch, now()))
		}
		_, _, err := ob.CreateWithOutbox(ctx, r, nil, msgs)
		require.NoError(t, err)
		var got []string
		for cur := ""; ; {
			page, err := ob.ListOutbox(ctx, approval.OutboxQuery{Channel: "hook", Cursor: cur, Limit: 6})
			require.NoError(t, err)
			got = append(got, msgIDs(page.Messages)...)
			if cur = page.Next; cur == "" {
				break
			}
		}
		require.Len(t, got, 20)
		require.IsIncreasing(t, got)
		other, err := ob.ListOutbox(ctx, approval.OutboxQuery{RequestID: newID()})
		require.NoError(t, err)
		require.Empty(t, other.Messages)
		_, err = ob.ListOutbox(ctx, approval.OutboxQuery{Cursor: "not-a-cursor"})
		require.ErrorIs(t, err, approval.ErrInvalidCursor)
	})

	// Concurrent claims by different owners take disjoint messages and,
	// together, all of them.
	t.Run("outbox concurrent claims disjoint", func(t *testing.T) {
		t.Parallel()
		ob := outbox(t)
		claimConcurrently(t, []approval.Outbox{ob, ob})
	})
}

// runSharedOutboxTests is "outbox concurrent claims disjoint" across two
// stores on one database.
func runSharedOutboxTests(t *testing.T, newStores func(t *testing.T) (approval.Store, approval.Store)) {
	t.Run("outbox: claims from two stores are disjoint", func(t *testing.T) {
		t.Parallel()
		s1, s2 := newStores(t)
		o1, ok1 := s1.(approval.Outbox)
		o2, ok2 := s2.(approval.Outbox)
		if !ok1 || !ok2 {
			t.Skip("the store does not implement approval.Outbox")
		}
		claimConcurrently(t, []approval.Outbox{o1, o2})
	})
}

func claimConcurrently(t *testing.T, obs []approval.Outbox) {
	ctx := t.Context()
	at := now()
	r := newRequest()
	var msgs []approval.OutboxMessage
	for range 200 {
		msgs = append(msgs, newDelivery(r, "hook", at))
	}
	_, _, err := obs[0].CreateWithOutbox(ctx, r, nil, msgs)
	require.NoError(t, err)
	var (
		mu  sync.Mutex
		got = map[string]string{}
		wg  sync.WaitGroup
	)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ob := obs[w%len(obs)]
			owner := fmt.Sprintf("worker-%d", w)
			for {
				claimed, err := ob.ClaimOutbox(context.Background(), approval.OutboxClaim{Owner: owner, Channel: "hook", Now: at, Lease: time.Hour, Limit: 7})
				if err != nil {
					t.Error(err)
					return
				}
				if len(claimed) == 0 {
					return
				}
				mu.Lock()
				for _, m := range claimed {
					if prev, dup := got[m.ID]; dup {
						t.Errorf("message %s claimed by %s and %s", m.ID, prev, owner)
					}
					got[m.ID] = owner
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.Len(t, got, 200)
}

func newOutboxID() string {
	h := randomHex()
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// newNotice returns a pending notice about r, due at at.
func newNotice(r *approval.Request, at time.Time) approval.OutboxMessage {
	return approval.OutboxMessage{ID: newOutboxID(), RequestID: r.ID, Type: approval.NotifyRequested,
		State: approval.OutboxPending, NextAttempt: at, CreatedAt: at}
}

// newDelivery returns a pending delivery about r through channel, due at
// at.
func newDelivery(r *approval.Request, channel string, at time.Time) approval.OutboxMessage {
	m := newNotice(r, at)
	m.Channel, m.Recipient, m.Body = channel, "alice", []byte(`{"id":"`+m.ID+`"}`)
	return m
}

func msgIDs(msgs []approval.OutboxMessage) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.ID
	}
	return out
}
