package storetest

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// runAskLimitTests checks the optional approval.AskLimits capability, on
// stores that have it.
func runAskLimitTests(t *testing.T, newStore func(t *testing.T) approval.Store) {
	limited := func(t *testing.T) (approval.AskLimits, approval.Store) {
		t.Helper()
		s := newStore(t)
		al, ok := s.(approval.AskLimits)
		if !ok {
			t.Skip("the store does not implement approval.AskLimits")
		}
		return al, s
	}
	// limitedRequest is a pending request of requester under policy
	// "asks" with limit l, created at.
	limitedRequest := func(requester string, l approval.AskLimit, at time.Time) *approval.Request {
		r := newRequest()
		r.Action.RequestedBy = requester
		r.Policies[0].Name = "asks"
		r.Policies[0].Limit = &l
		r.CreatedAt, r.UpdatedAt = at, at
		return r
	}
	created := func(id string) approval.AuditEvent { return event(id, approval.EventRequestCreated, "alice") }

	// A cap of 2: two requests are admitted, the third is refused with an
	// AskLimitError naming the check and the count, and nothing of it is
	// written (no request, no event, no outbox message). Another person,
	// or the same person under another key, is not limited by it. Ending
	// one request (an Update out of the open states) frees a place.
	t.Run("ask limits: a cap on open requests", func(t *testing.T) {
		t.Parallel()
		al, s := limited(t)
		l := approval.AskLimit{MaxOpen: 2}
		at := now()
		var open []*approval.Request
		for range 2 {
			r := limitedRequest("alice", l, at)
			_, ok, err := al.CreateLimited(t.Context(), r, []approval.AuditEvent{created(r.ID)}, nil, r.AskChecks())
			require.NoError(t, err)
			require.True(t, ok)
			open = append(open, r)
		}
		before := len(fullTrail(t, s))
		third := limitedRequest("alice", l, at)
		msg := approval.OutboxMessage{ID: "msg_" + randomHex(), RequestID: third.ID, Type: approval.NotifyRequested,
			State: approval.OutboxPending, NextAttempt: at, CreatedAt: at}
		_, ok, err := al.CreateLimited(t.Context(), third, []approval.AuditEvent{created(third.ID)}, []approval.OutboxMessage{msg}, third.AskChecks())
		require.ErrorIs(t, err, approval.ErrAskLimited)
		require.False(t, ok)
		var lerr *approval.AskLimitError
		require.ErrorAs(t, err, &lerr)
		require.Equal(t, 2, lerr.Open)
		require.True(t, lerr.RetryAt.IsZero(), "a cap has no retry time")
		require.Equal(t, "alice", lerr.Check.Who)
		require.Equal(t, approval.AskRequester, lerr.Check.Role)
		_, err = s.Get(t.Context(), third.ID)
		require.ErrorIs(t, err, approval.ErrNotFound, "a refused request is not stored")
		require.Len(t, fullTrail(t, s), before, "a refused request writes no event")
		if ob, ok := s.(approval.Outbox); ok {
			page, err := ob.ListOutbox(t.Context(), approval.OutboxQuery{RequestID: third.ID})
			require.NoError(t, err)
			require.Empty(t, page.Messages, "a refused request queues no notification")
		}

		bob := limitedRequest("bob", l, at)
		_, ok, err = al.CreateLimited(t.Context(), bob, nil, nil, bob.AskChecks())
		require.NoError(t, err)
		require.True(t, ok, "another requester has a cap of their own")

		// Approving one (not open any more) frees a place.
		update(t, s, open[0].ID, func(r *approval.Request) { r.Status = approval.StatusApproved })
		_, ok, err = al.CreateLimited(t.Context(), third, nil, nil, third.AskChecks())
		require.NoError(t, err)
		require.True(t, ok)
		fourth := limitedRequest("alice", l, at)
		_, _, err = al.CreateLimited(t.Context(), fourth, nil, nil, fourth.AskChecks())
		require.ErrorIs(t, err, approval.ErrAskLimited)
	})

	// The initiator behind several agents has a cap of their own, across
	// the agents.
	t.Run("ask limits: the initiator's cap spans requesters", func(t *testing.T) {
		t.Parallel()
		al, _ := limited(t)
		l := approval.AskLimit{MaxOpen: 2}
		for i, agent := range []string{"agent-1", "agent-2", "agent-3"} {
			r := limitedRequest(agent, l, now())
			r.Action.Initiator = "carol"
			_, ok, err := al.CreateLimited(t.Context(), r, nil, nil, r.AskChecks())
			if i < 2 {
				require.NoError(t, err)
				require.True(t, ok)
				continue
			}
			var lerr *approval.AskLimitError
			require.ErrorAs(t, err, &lerr)
			require.Equal(t, approval.AskInitiator, lerr.Check.Role)
			require.Equal(t, "carol", lerr.Check.Who)
		}
	})

	// A rate of 3 an hour with a burst of 3: three at once, then one each
	// 20 minutes; the refusal says when.
	t.Run("ask limits: a rate", func(t *testing.T) {
		t.Parallel()
		al, _ := limited(t)
		l := approval.AskLimit{Rate: 3, Per: time.Hour}
		at := now()
		for range 3 {
			r := limitedRequest("alice", l, at)
			_, ok, err := al.CreateLimited(t.Context(), r, nil, nil, r.AskChecks())
			require.NoError(t, err)
			require.True(t, ok)
		}
		r := limitedRequest("alice", l, at.Add(time.Minute))
		_, _, err := al.CreateLimited(t.Context(), r, nil, nil, r.AskChecks())
		var lerr *approval.AskLimitError
		require.ErrorAs(t, err, &lerr)
		require.Equal(t, at.Add(20*time.Minute), lerr.RetryAt.UTC())
		r = limitedRequest("alice", l, at.Add(20*time.Minute))
		_, ok, err := al.CreateLimited(t.Context(), r, nil, nil, r.AskChecks())
		require.NoError(t, err)
		require.True(t, ok, "the bucket has refilled one")
	})

	// Deduplication comes first: asking again for a live request returns
	// it, whatever the limits, and takes nothing.
	t.Run("ask limits: deduplication is not limited", func(t *testing.T) {
		t.Parallel()
		al, _ := limited(t)
		l := approval.AskLimit{MaxOpen: 1, Rate: 1}
		first := limitedRequest("alice", l, now())
		_, ok, err := al.CreateLimited(t.Context(), first, nil, nil, first.AskChecks())
		require.NoError(t, err)
		require.True(t, ok)
		again := limitedRequest("alice", l, now())
		again.ActionHash = first.ActionHash
		for range 3 {
			got, ok, err := al.CreateLimited(t.Context(), again, nil, nil, again.AskChecks())
			require.NoError(t, err)
			require.False(t, ok)
			require.Equal(t, first.ID, got.ID)
		}
	})

	// RecordAskRefusal writes once per window, however many call at once.
	t.Run("ask limits: a refusal is audited once per window", func(t *testing.T) {
		t.Parallel()
		al, s := limited(t)
		at := now()
		key := (&approval.AskCheck{Policy: "asks", Role: approval.AskRequester, Who: "alice"}).Key()
		var wrote atomic.Int32
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				ev := []approval.AuditEvent{{Type: approval.EventAskLimited, Actor: "alice", At: at}}
				ok, err := al.RecordAskRefusal(context.Background(), key, at, at.Add(time.Hour), ev)
				if err != nil {
					t.Errorf("record: %v", err)
				}
				if ok {
					wrote.Add(1)
				}
			})
		}
		wg.Wait()
		require.EqualValues(t, 1, wrote.Load())
		ok, err := al.RecordAskRefusal(t.Context(), key, at.Add(59*time.Minute), at.Add(2*time.Hour),
			[]approval.AuditEvent{{Type: approval.EventAskLimited, Actor: "alice", At: at}})
		require.NoError(t, err)
		require.False(t, ok, "still in the window")
		ok, err = al.RecordAskRefusal(t.Context(), key, at.Add(time.Hour), at.Add(2*time.Hour),
			[]approval.AuditEvent{{Type: approval.EventAskLimited, Actor: "alice", At: at.Add(time.Hour)}})
		require.NoError(t, err)
		require.True(t, ok, "the next window")
		evs := trail(t, s, approval.AuditQuery{Type: approval.EventAskLimited})
		require.Len(t, evs, 2)
	})
}

// runAskLimitGateTests drives two gates over the stores: an agent that
// loops over a thousand distinct actions, through both gates at once,
// opens at most the cap, its reviewers are notified of those alone, and
// the trail has one refusal event.
func runAskLimitGateTests(t *testing.T, newStores func(t *testing.T) (approval.Store, approval.Store)) {
	t.Run("gate: a limit on asking holds across gates", func(t *testing.T) {
		t.Parallel()
		s1, s2 := newStores(t)
		if _, ok := s1.(approval.AskLimits); !ok {
			t.Skip("the store does not implement approval.AskLimits")
		}
		_, priv, err := approval.GenerateKeys()
		require.NoError(t, err)
		var sent atomic.Int32
		ch := countingChannel{sent: &sent}
		const cap = 5
		gates := make([]*approval.Gate, 2)
		for i, s := range []approval.Store{s1, s2} {
			g, err := approval.New(approval.Config{Store: s, SigningKey: priv, Channels: []approval.Channel{ch},
				PollInterval: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
			require.NoError(t, err)
			require.NoError(t, g.SetPolicy("agent-tools", approval.Policy{
				Match: approval.Name("storetest:*"), Approvers: []approval.Approver{approval.User("reviewer")}, RequiredApprovals: 1,
				Limit: &approval.AskLimit{MaxOpen: cap, Rate: 100, Per: time.Hour},
			}))
			t.Cleanup(func() { _ = g.Close(context.Background()) })
			gates[i] = g
		}
		const n = 1000
		var pending, limited atomic.Int32
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := w; i < n; i += 8 {
					a := approval.Action{Name: "storetest:tool", RequestedBy: "agent-7", Initiator: "dana",
						Payload: fmt.Appendf(nil, `{"call":%d}`, i)}
					res, err := gates[i%2].Guard(context.Background(), a)
					if err != nil {
						t.Errorf("guard %d: %v", i, err)
						return
					}
					switch {
					case res.Status == approval.OutcomePending:
						pending.Add(1)
					case res.Status == approval.OutcomeDenied && res.Denial != nil &&
						res.Denial.Code == approval.DenialAskLimit && res.Denial.Retry == approval.RetryLater:
						limited.Add(1)
					default:
						t.Errorf("guard %d: %+v", i, res)
					}
				}
			})
		}
		wg.Wait()
		require.EqualValues(t, cap, pending.Load(), "the agent opens at most the cap")
		require.EqualValues(t, n-cap, limited.Load(), "the rest are denied with retry advice")

		page, err := gates[0].List(context.Background(), approval.RequestQuery{})
		require.NoError(t, err)
		require.Len(t, page.Requests, cap)
		evs, err := gates[1].ListAudit(context.Background(), approval.AuditQuery{Type: approval.EventAskLimited})
		require.NoError(t, err)
		require.Len(t, evs.Events, 1, "one refusal event for the window, not one per refusal")
		require.Equal(t, "agent-7", evs.Events[0].Actor)
		require.Eventually(t, func() bool { return sent.Load() == cap }, 10*time.Second, 5*time.Millisecond,
			"the reviewer is notified of the admitted requests alone")

		// Deciding one frees a place, on either gate.
		id := page.Requests[0].ID
		tok, err := gates[0].IssueToken(id, "reviewer", approval.VerdictApprove, time.Hour)
		require.NoError(t, err)
		_, err = gates[1].Decide(context.Background(), id, approval.Decision{Token: tok, Verdict: approval.VerdictApprove})
		require.NoError(t, err)
		res, err := gates[1].Guard(context.Background(), approval.Action{Name: "storetest:tool", RequestedBy: "agent-7", Payload: []byte(`{"call":"next"}`)})
		require.NoError(t, err)
		require.Equal(t, approval.OutcomePending, res.Status)
		res, err = gates[0].Guard(context.Background(), approval.Action{Name: "storetest:tool", RequestedBy: "agent-7", Payload: []byte(`{"call":"after"}`)})
		require.NoError(t, err)
		require.Equal(t, approval.OutcomeDenied, res.Status)
		verifyTrail(t, gates[0])
	})
}

// countingChannel counts the notifications asking someone to decide.
type countingChannel struct{ sent *atomic.Int32 }

func (countingChannel) Name() string { return "count" }

func (c countingChannel) Send(_ context.Context, n approval.Notification) error {
	if n.Type == approval.NotifyRequested {
		c.sent.Add(1)
	}
	return nil
}
