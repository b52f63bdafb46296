package storetest

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// runInboxTests checks the optional approval.Inbox capability, on stores
// that have it: the index of Request.Deciders, kept in step with Create
// and Update.
func runInboxTests(t *testing.T, newStore func(t *testing.T) approval.Store) {
	inbox := func(t *testing.T) (approval.Inbox, approval.Store) {
		t.Helper()
		s := newStore(t)
		ib, ok := s.(approval.Inbox)
		if !ok {
			t.Skip("the store does not implement approval.Inbox")
		}
		return ib, s
	}
	withDeciders := func(people ...string) *approval.Request {
		r := newRequest()
		r.Deciders = slices.Sorted(slices.Values(people))
		return r
	}
	list := func(t *testing.T, ib approval.Inbox, limit int, people ...string) []string {
		t.Helper()
		var out []string
		q := approval.InboxQuery{People: people, Limit: limit}
		for range 100 {
			page, err := ib.ListInbox(t.Context(), q)
			require.NoError(t, err)
			require.LessOrEqual(t, len(page.Requests), approval.PageSize(limit))
			out = append(out, ids(page.Requests)...)
			if page.Next == "" {
				return out
			}
			q.Cursor = page.Next
		}
		t.Fatal("ListInbox never reached the last page")
		return nil
	}

	// ListInbox returns the requests whose Deciders name a person, each
	// once, in ID order, across pages; for several people, the union.
	t.Run("inbox lists by deciders", func(t *testing.T) {
		t.Parallel()
		ib, s := inbox(t)
		var bob, carol, both []*approval.Request
		for i := range 7 {
			var r *approval.Request
			switch i % 3 {
			case 0:
				r = create(t, s, withDeciders("bob"))
				bob = append(bob, r)
			case 1:
				r = create(t, s, withDeciders("carol", "dave"))
				carol = append(carol, r)
			default:
				r = create(t, s, withDeciders("bob", "carol"))
				both = append(both, r)
			}
		}
		create(t, s, withDeciders()) // nobody's
		require.Equal(t, sorted(append(slices.Clone(bob), both...)...), list(t, ib, 2, "bob"))
		require.Equal(t, sorted(append(slices.Clone(carol), both...)...), list(t, ib, 0, "carol"))
		require.Equal(t, sorted(append(append(slices.Clone(bob), carol...), both...)...), list(t, ib, 3, "bob", "carol"),
			"the union, each request once")
		require.Empty(t, list(t, ib, 0, "erin"))
		require.Empty(t, list(t, ib, 0))

		page, err := ib.ListInbox(t.Context(), approval.InboxQuery{People: []string{"bob"}, Limit: 1})
		require.NoError(t, err)
		require.Len(t, page.Requests, 1)
		want := get(t, s, page.Requests[0].ID)
		require.Equal(t, want, page.Requests[0], "the whole request")
		scribble(page.Requests[0]) // a copy, like every request a store returns
		require.Equal(t, want, get(t, s, want.ID))
	})

	// Update moves a request in the index: a person who leaves its
	// Deciders (a vote, a reassignment) no longer lists it, one who joins
	// does, and a request that ends (Deciders nil) leaves every inbox.
	t.Run("inbox follows updates", func(t *testing.T) {
		t.Parallel()
		ib, s := inbox(t)
		r := create(t, s, withDeciders("bob", "carol"))
		other := create(t, s, withDeciders("bob"))
		update(t, s, r.ID, func(r *approval.Request) { r.Deciders = []string{"carol", "erin"} })
		require.Equal(t, []string{other.ID}, list(t, ib, 0, "bob"))
		require.Equal(t, []string{r.ID}, list(t, ib, 0, "erin"))
		require.Equal(t, []string{r.ID}, list(t, ib, 0, "carol"))
		update(t, s, r.ID, func(r *approval.Request) {
			r.Status, r.Deciders = approval.StatusDenied, nil
		})
		require.Empty(t, list(t, ib, 0, "carol"))
		require.Empty(t, list(t, ib, 0, "erin"))
		require.Equal(t, []string{other.ID}, list(t, ib, 0, "bob", "carol", "erin"))
	})

	// A cursor between stored IDs continues after it; one past the last
	// ID ends the listing.
	t.Run("inbox cursor", func(t *testing.T) {
		t.Parallel()
		ib, s := inbox(t)
		var all []*approval.Request
		for range 5 {
			all = append(all, create(t, s, withDeciders("bob")))
		}
		want := sorted(all...)
		page, err := ib.ListInbox(t.Context(), approval.InboxQuery{People: []string{"bob"}, Cursor: want[1], Limit: 10})
		require.NoError(t, err)
		require.Equal(t, want[2:], ids(page.Requests))
		require.Empty(t, page.Next)
		page, err = ib.ListInbox(t.Context(), approval.InboxQuery{People: []string{"bob"}, Cursor: "req_~", Limit: 10})
		require.NoError(t, err)
		require.Empty(t, page.Requests)
	})
}

// runInboxGateTests drives a gate over a store with the Inbox capability:
// the inbox a reviewer sees (Gate.List with Awaiting) as levels open,
// votes land, delegations apply and steps reassign.
func runInboxGateTests(t *testing.T, newStores func(t *testing.T) (approval.Store, approval.Store)) {
	type clock struct {
		mu  sync.Mutex
		now time.Time
	}
	newGate := func(t *testing.T, p approval.Policy) (*approval.Gate, *clock) {
		t.Helper()
		s, _ := newStores(t)
		if _, ok := s.(approval.Inbox); !ok {
			t.Skip("the store does not implement approval.Inbox")
		}
		_, priv, err := approval.GenerateKeys()
		require.NoError(t, err)
		c := &clock{now: time.Now().UTC().Truncate(time.Second)}
		g, err := approval.New(approval.Config{
			Store: s, SigningKey: priv,
			Directory: approval.StaticDirectory{Groups: map[string][]string{
				"leads": {"lena", "leo"}, "finance": {"bob", "carol"},
			}},
			Now: func() time.Time {
				c.mu.Lock()
				defer c.mu.Unlock()
				return c.now
			},
			Logger: slog.New(slog.DiscardHandler),
		})
		require.NoError(t, err)
		t.Cleanup(func() { _ = g.Close(context.Background()) })
		p.Match = approval.Name("storetest:*")
		require.NoError(t, g.SetPolicy("gated", p))
		return g, c
	}
	awaiting := func(t *testing.T, g *approval.Gate, who string) []string {
		t.Helper()
		page, err := g.List(t.Context(), approval.RequestQuery{Awaiting: who})
		require.NoError(t, err)
		require.Empty(t, page.Next)
		return ids(page.Requests)
	}
	decide := func(t *testing.T, g *approval.Gate, id, who string) {
		t.Helper()
		_, err := g.Decide(t.Context(), id, approval.Decision{Token: issue(t, g, id, who), Verdict: approval.VerdictApprove})
		require.NoError(t, err)
	}

	// A level's people see the request once the level opens, not before;
	// a vote takes it out of the voter's inbox only.
	t.Run("gate: inbox after a level opens, and after a vote", func(t *testing.T) {
		t.Parallel()
		g, _ := newGate(t, approval.Policy{Chain: []approval.Level{
			{Approvers: []approval.Approver{approval.Group("leads")}, Require: approval.Threshold(1)},
			{Approvers: []approval.Approver{approval.Group("finance")}, Require: approval.Threshold(2)},
		}})
		id := guardPending(t, g)
		require.Equal(t, []string{id}, awaiting(t, g, "lena"))
		require.Equal(t, []string{id}, awaiting(t, g, "leo"))
		require.Empty(t, awaiting(t, g, "bob"), "level 2 has not opened")
		decide(t, g, id, "lena")
		require.Empty(t, awaiting(t, g, "leo"), "level 1 is met")
		require.Equal(t, []string{id}, awaiting(t, g, "bob"))
		require.Equal(t, []string{id}, awaiting(t, g, "carol"))
		decide(t, g, id, "bob")
		require.Empty(t, awaiting(t, g, "bob"), "bob voted")
		require.Equal(t, []string{id}, awaiting(t, g, "carol"))
		decide(t, g, id, "carol")
		require.Empty(t, awaiting(t, g, "carol"), "approved: in no inbox")
		verifyTrail(t, g)
	})

	// A delegate sees what the person who delegated to them may decide,
	// within the delegation's scope.
	t.Run("gate: inbox of a delegate", func(t *testing.T) {
		t.Parallel()
		g, _ := newGate(t, approval.Policy{
			Approvers: []approval.Approver{approval.Group("finance")}, RequiredApprovals: 1,
		})
		id := guardPending(t, g)
		require.Empty(t, awaiting(t, g, "dana"))
		_, err := g.Delegate(t.Context(), "admin", approval.Delegation{
			From: "bob", To: "dana", Reason: "holiday", NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour),
		})
		if err != nil {
			require.ErrorIs(t, err, approval.ErrUnsupported)
			t.Skip("the store does not implement approval.Delegations")
		}
		require.Equal(t, []string{id}, awaiting(t, g, "dana"))
		decide(t, g, id, "dana")
		require.Empty(t, awaiting(t, g, "dana"))
		require.Empty(t, awaiting(t, g, "carol"))
	})

	// A step that reassigns the level moves the request from its
	// approvers' inboxes to the new ones'.
	t.Run("gate: inbox after a reassignment", func(t *testing.T) {
		t.Parallel()
		g, c := newGate(t, approval.Policy{
			Approvers: []approval.Approver{approval.Group("finance")}, RequiredApprovals: 1,
			Escalation: []approval.EscalationStep{{After: time.Hour, Action: approval.StepReassign, To: []approval.Approver{approval.Group("leads")}}},
		})
		id := guardPending(t, g)
		require.Equal(t, []string{id}, awaiting(t, g, "bob"))
		require.Empty(t, awaiting(t, g, "leo"))
		c.mu.Lock()
		c.now = c.now.Add(2 * time.Hour)
		c.mu.Unlock()
		_, err := g.Tick(t.Context(), 0)
		require.NoError(t, err)
		require.Empty(t, awaiting(t, g, "bob"))
		require.Equal(t, []string{id}, awaiting(t, g, "leo"))
		require.Equal(t, []string{id}, awaiting(t, g, "lena"))
		verifyTrail(t, g)
	})
}
