package storetest

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// plainStore hides every optional capability of a Store, so that a gate
// over it takes the generic paths.
type plainStore struct{ approval.Store }

// runStatsTests checks the optional approval.OperatorStats capability,
// on stores that have it, through Gate.Stats: what the store's queries
// answer must be what the gate computes from the Store contract alone.
func runStatsTests(t *testing.T, newStore func(t *testing.T) approval.Store) {
	stats := func(t *testing.T) (approval.OperatorStats, approval.Store) {
		t.Helper()
		s := newStore(t)
		os, ok := s.(approval.OperatorStats)
		if !ok {
			t.Skip("the store does not implement approval.OperatorStats")
		}
		return os, s
	}

	// OpenByPolicy counts the pending and escalated requests under each
	// policy they matched, with the oldest's creation time; Resolutions
	// yields each resolution since a time once per policy of its request;
	// Gate.Stats over them agrees with Gate.Stats over the plain Store.
	t.Run("stats: open requests and decision times by policy", func(t *testing.T) {
		t.Parallel()
		_, s := stats(t)
		t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		var mu sync.Mutex
		now := t0
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		at := func(t time.Time) { mu.Lock(); now = t; mu.Unlock() }
		_, priv, err := approval.GenerateKeys()
		require.NoError(t, err)
		newGate := func(s approval.Store) *approval.Gate {
			g, err := approval.New(approval.Config{Store: s, SigningKey: priv, Now: clock, Logger: slog.New(slog.DiscardHandler)})
			require.NoError(t, err)
			require.NoError(t, g.SetPolicy("payments", approval.Policy{Match: approval.Name("pay:*"),
				Approvers: []approval.Approver{approval.User("alice"), approval.User("bob")}, RequiredApprovals: 1}))
			require.NoError(t, g.SetPolicy("deploys", approval.Policy{Match: approval.Name("deploy:*"),
				Approvers: []approval.Approver{approval.User("carol")}, RequiredApprovals: 1}))
			require.NoError(t, g.SetPolicy("audited", approval.Policy{Match: approval.Name("deploy:prod"),
				Approvers: []approval.Approver{approval.User("carol")}, RequiredApprovals: 1}))
			t.Cleanup(func() { _ = g.Close(context.Background()) })
			return g
		}
		g := newGate(s)
		open := func(name string, created time.Time) string {
			at(created)
			res, err := g.Guard(t.Context(), approval.Action{Name: name, RequestedBy: "requester"})
			require.NoError(t, err)
			require.Equal(t, approval.OutcomePending, res.Status, name)
			return res.RequestID
		}
		decide := func(id, who string, v approval.Verdict, when time.Time) {
			at(when)
			tok, err := g.IssueToken(id, who, v, 24*time.Hour)
			require.NoError(t, err)
			_, err = g.Decide(t.Context(), id, approval.Decision{Token: tok, Verdict: v})
			require.NoError(t, err)
		}
		// Resolved more than a week before t0: outside every window.
		old := open("pay:old", t0.Add(-8*24*time.Hour))
		decide(old, "alice", approval.VerdictApprove, t0.Add(-8*24*time.Hour+time.Hour))
		// Resolved 3 days before t0 (Daily[4]), after 10 minutes.
		p2 := open("pay:2", t0.Add(-3*24*time.Hour))
		decide(p2, "bob", approval.VerdictApprove, t0.Add(-3*24*time.Hour+10*time.Minute))
		// Resolved within the last day, after 30 and 20 minutes.
		p3 := open("pay:3", t0.Add(-2*time.Hour))
		decide(p3, "alice", approval.VerdictApprove, t0.Add(-90*time.Minute))
		p4 := open("pay:4", t0.Add(-time.Hour))
		decide(p4, "alice", approval.VerdictDeny, t0.Add(-40*time.Minute))
		// A production deploy matches two policies; cancelled after an hour.
		d3 := open("deploy:prod", t0.Add(-2*24*time.Hour))
		at(t0.Add(-2*24*time.Hour + time.Hour))
		_, err = g.Cancel(t.Context(), d3, "operator", "superseded")
		require.NoError(t, err)
		// Still open.
		open("deploy:web", t0.Add(-5*time.Hour))
		open("deploy:api", t0.Add(-time.Hour))
		open("pay:5", t0.Add(-30*time.Minute))
		at(t0)

		st, err := g.Stats(t.Context())
		require.NoError(t, err)
		require.Equal(t, t0, st.At)
		require.Equal(t, []approval.PolicyOpen{
			{Policy: "deploys", Count: 2, Oldest: t0.Add(-5 * time.Hour)},
			{Policy: "payments", Count: 1, Oldest: t0.Add(-30 * time.Minute)},
		}, utcOpen(st.Open))
		cancelled := approval.DecisionTimes{Count: 1, Cancelled: 1, P50: time.Hour, P90: time.Hour}
		var deploys approval.PolicyDecisions
		deploys.Week, deploys.Daily[5] = cancelled, cancelled
		deploys.Policy = "deploys"
		audited := deploys
		audited.Policy = "audited"
		payments := approval.PolicyDecisions{Policy: "payments",
			Day:  approval.DecisionTimes{Count: 2, Approved: 1, Denied: 1, P50: 20 * time.Minute, P90: 30 * time.Minute},
			Week: approval.DecisionTimes{Count: 3, Approved: 2, Denied: 1, P50: 20 * time.Minute, P90: 30 * time.Minute},
		}
		payments.Daily[6] = payments.Day
		payments.Daily[4] = approval.DecisionTimes{Count: 1, Approved: 1, P50: 10 * time.Minute, P90: 10 * time.Minute}
		require.Equal(t, []approval.PolicyDecisions{audited, deploys, payments}, st.Decisions)
		require.NotZero(t, st.Head.Seq)

		plain, err := newGate(plainStore{s}).Stats(t.Context())
		require.NoError(t, err)
		require.Equal(t, utcOpen(plain.Open), utcOpen(st.Open), "the store's OpenByPolicy against List")
		require.Equal(t, plain.Decisions, st.Decisions, "the store's Resolutions against ListAudit")
	})

	// OutboxByChannel counts each channel's pending messages (the oldest's
	// creation, how many failed at least once) and dead letters, with the
	// newest error, a pending message's before a dead letter's.
	t.Run("stats: outbox by channel", func(t *testing.T) {
		t.Parallel()
		os, s := stats(t)
		ob, ok := s.(approval.Outbox)
		if !ok {
			t.Skip("the store does not implement approval.Outbox")
		}
		empty, err := os.OutboxByChannel(t.Context())
		require.NoError(t, err)
		require.Empty(t, empty)
		t0 := time.Now().UTC().Truncate(time.Second)
		r := newRequest()
		msgs := []approval.OutboxMessage{
			newDelivery(r, "slack", t0.Add(-3*time.Minute)),
			newDelivery(r, "slack", t0.Add(-2*time.Minute)),
			newDelivery(r, "slack", t0.Add(-time.Minute)),
			newDelivery(r, "email", t0.Add(-4*time.Minute)),
			newDelivery(r, "email", t0.Add(-time.Minute)),
		}
		_, created, err := ob.CreateWithOutbox(t.Context(), r, nil, msgs)
		require.NoError(t, err)
		require.True(t, created)
		settle := func(channel string, n int, outcome approval.OutboxOutcome, msg string) {
			claimed, err := ob.ClaimOutbox(t.Context(), approval.OutboxClaim{Owner: "w", Channel: channel, Now: t0, Lease: time.Minute, Limit: n})
			require.NoError(t, err)
			require.Len(t, claimed, n)
			for _, m := range claimed {
				require.NoError(t, ob.SettleOutbox(t.Context(), approval.OutboxSettle{ID: m.ID, Owner: "w", Outcome: outcome,
					Attempts: 1, NextAttempt: t0.Add(time.Hour), LastError: msg}))
			}
		}
		// slack: the oldest dies, the next is retried; both failed.
		settle("slack", 1, approval.OutboxDeadLetter, "slack: 404 channel_not_found")
		settle("slack", 1, approval.OutboxRetry, "slack: 503 service unavailable")
		// email: the oldest is delivered, the other dies.
		settle("email", 1, approval.OutboxDone, "")
		settle("email", 1, approval.OutboxDeadLetter, "smtp: 550 mailbox unavailable")

		hs, err := os.OutboxByChannel(t.Context())
		require.NoError(t, err)
		for i := range hs {
			hs[i].OldestPending = hs[i].OldestPending.UTC()
		}
		require.Equal(t, []approval.ChannelHealth{
			{Channel: "email", Dead: 1, LastError: "smtp: 550 mailbox unavailable"},
			{Channel: "slack", Pending: 2, OldestPending: t0.Add(-2 * time.Minute), Retrying: 1, Dead: 1, LastError: "slack: 503 service unavailable"},
		}, hs)
	})
}

// utcOpen returns os with its times in UTC, for comparison.
func utcOpen(os []approval.PolicyOpen) []approval.PolicyOpen {
	out := make([]approval.PolicyOpen, len(os))
	for i, o := range os {
		o.Oldest = o.Oldest.UTC()
		out[i] = o
	}
	return out
}
