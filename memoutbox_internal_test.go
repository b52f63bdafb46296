package approval

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMemOutboxClaimLastsUntilSettled: in memory, a claim is not lost to
// the clock (no other process could take the message over), so a send
// that outlives its lease is not sent twice; only its owner settles it.
func TestMemOutboxClaimLastsUntilSettled(t *testing.T) {
	t.Parallel()
	ctx, now := context.Background(), time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	o := newMemOutbox(&Gate{now: time.Now, log: slog.New(slog.DiscardHandler)}, 10)
	o.add(&memMessage{OutboxMessage: OutboxMessage{ID: "m1", Channel: "c", NextAttempt: now}})
	claim := func(at time.Time) []OutboxMessage {
		got, err := o.ClaimOutbox(ctx, OutboxClaim{Owner: "a", Channel: "c", Now: at, Lease: time.Minute, Limit: 10})
		require.NoError(t, err)
		return got
	}
	require.Len(t, claim(now), 1)
	require.Empty(t, claim(now.Add(2*time.Hour)), "claimed until settled, lease or not")
	require.ErrorIs(t, o.SettleOutbox(ctx, OutboxSettle{ID: "m1", Owner: "b", Outcome: OutboxDone}), ErrConflict)
	require.ErrorIs(t, o.SettleOutbox(ctx, OutboxSettle{ID: "m2", Owner: "a", Outcome: OutboxDone}), ErrNotFound)
	require.NoError(t, o.SettleOutbox(ctx, OutboxSettle{ID: "m1", Owner: "a", Outcome: OutboxRetry, Attempts: 1, NextAttempt: now.Add(time.Hour)}))
	require.Empty(t, claim(now), "not due yet")
	got := claim(now.Add(time.Hour))
	require.Len(t, got, 1)
	require.Equal(t, 1, got[0].Attempts)
}

// TestMemOutboxKeepsTheNewestDeadLetters: at most limit dead letters are
// kept, the oldest dropped first; a dropped one cannot be redriven.
func TestMemOutboxKeepsTheNewestDeadLetters(t *testing.T) {
	t.Parallel()
	ctx, now := context.Background(), time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	o := newMemOutbox(&Gate{now: time.Now, log: slog.New(slog.DiscardHandler)}, 2)
	for _, id := range []string{"d1", "d2", "d3"} {
		o.add(&memMessage{OutboxMessage: OutboxMessage{ID: id, Channel: "c", NextAttempt: now}})
		_, err := o.ClaimOutbox(ctx, OutboxClaim{Owner: "a", Channel: "c", Now: now, Limit: 1})
		require.NoError(t, err)
		require.NoError(t, o.SettleOutbox(ctx, OutboxSettle{ID: id, Owner: "a", Outcome: OutboxDeadLetter, Attempts: 8}))
	}
	page, err := o.ListOutbox(ctx, OutboxQuery{State: OutboxDead})
	require.NoError(t, err)
	require.Len(t, page.Messages, 2)
	require.Equal(t, []string{"d2", "d3"}, []string{page.Messages[0].ID, page.Messages[1].ID})
	require.ErrorIs(t, o.RedriveOutbox(ctx, "d1", now, nil), ErrNotFound)
	require.NoError(t, o.RedriveOutbox(ctx, "d2", now, nil))
	page, err = o.ListOutbox(ctx, OutboxQuery{State: OutboxPending})
	require.NoError(t, err)
	require.Len(t, page.Messages, 1)
	require.Zero(t, page.Messages[0].Attempts, "a redrive counts attempts from zero")
	_, err = o.ListOutbox(ctx, OutboxQuery{Cursor: "not-an-id"})
	require.ErrorIs(t, err, ErrInvalidCursor)
}
