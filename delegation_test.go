package approval_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// delegate grants a delegation from alice to erin (not a finance member)
// for the next day, scoped to policies, and returns it.
func (f *fixture) delegate(from, to string, policies ...string) *approval.Delegation {
	f.t.Helper()
	d, err := f.gate.Delegate(f.ctx, "admin", approval.Delegation{From: from, To: to,
		NotAfter: f.clock.Now().Add(24 * time.Hour), Policies: policies, Reason: "out of office"})
	require.NoError(f.t, err)
	return d
}

func TestDelegatedVoteCountsOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	d := f.delegate("Alice", "Erin")
	require.Equal(t, "alice", d.From)
	require.Equal(t, "erin", d.To)
	require.Equal(t, f.clock.Now(), d.NotBefore)
	granted := f.lastEvent()
	require.Equal(t, approval.EventDelegationGranted, granted.Type)
	require.Equal(t, "admin", granted.Actor)
	require.Equal(t, "alice", granted.OnBehalfOf)
	require.Contains(t, granted.Reason, d.ID+": alice delegates to erin from ")

	id := f.Pending(transfer(5000))
	r, err := f.Decide(id, "erin", approval.VerdictApprove)
	require.NoError(t, err)
	require.Equal(t, approval.StatusPending, r.Status, "one approval of two")
	require.Equal(t, "erin", r.Votes[0].Approver)
	require.Equal(t, "alice", r.Votes[0].OnBehalfOf)
	ev := f.lastEvent()
	require.Equal(t, approval.EventDecisionApprove, ev.Type)
	require.Equal(t, "erin", ev.Actor)
	require.Equal(t, "alice", ev.OnBehalfOf)

	// The original and the delegate count once; a second delegation of
	// the same original gives no second vote.
	_, err = f.Decide(id, "alice", approval.VerdictApprove)
	require.ErrorIs(t, err, approval.ErrAlreadyDecided)
	require.ErrorContains(t, err, "erin voted approve at 2026-03-01T09:00:00Z on behalf of alice")
	f.delegate("alice", "frank")
	_, err = f.Decide(id, "frank", approval.VerdictApprove)
	require.ErrorIs(t, err, approval.ErrAlreadyDecided)
	_, err = f.Decide(id, "erin", approval.VerdictApprove)
	require.ErrorIs(t, err, approval.ErrAlreadyDecided)

	r, err = f.Decide(id, "bob", approval.VerdictApprove)
	require.NoError(t, err)
	require.Equal(t, approval.StatusApproved, r.Status)

	// The original first: the delegate may not follow.
	id2 := f.Pending(transfer(6000))
	_, err = f.Decide(id2, "alice", approval.VerdictApprove)
	require.NoError(t, err)
	_, err = f.Decide(id2, "erin", approval.VerdictApprove)
	require.ErrorIs(t, err, approval.ErrAlreadyDecided)
}

func TestDelegationWindowAndScope(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	start := f.clock.Now().Add(time.Hour)
	_, err := f.gate.Delegate(f.ctx, "alice", approval.Delegation{From: "alice", To: "erin", NotBefore: start, NotAfter: start.Add(time.Hour)})
	require.NoError(t, err)
	f.delegate("bob", "frank", "other_policy")

	id := f.Pending(transfer(5000))
	_, err = f.Decide(id, "erin", approval.VerdictApprove)
	require.ErrorIs(t, err, approval.ErrNotEligible, "before the window")
	_, err = f.Decide(id, "frank", approval.VerdictApprove)
	require.ErrorIs(t, err, approval.ErrNotEligible, "outside the scope")

	f.clock.Advance(time.Hour) // at NotBefore: inclusive
	require.NoError(t, f.gate.CanDecide(f.ctx, f.Get(id), "erin"))
	f.clock.Advance(time.Hour) // at NotAfter: exclusive
	_, err = f.Decide(id, "erin", approval.VerdictApprove)
	require.ErrorIs(t, err, approval.ErrNotEligible, "after the window")

	// Scoped to the policy: it works.
	f.delegate("bob", "gina", "high_spend")
	_, err = f.Decide(id, "gina", approval.VerdictDeny)
	require.NoError(t, err)
	r := f.Get(id)
	require.Equal(t, approval.StatusDenied, r.Status)
	require.Equal(t, "denied by gina on behalf of bob", r.Reason)
}

// Segregation holds through a delegate: a delegate may not decide their
// own request, nor one the original requested.
func TestDelegationSegregation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.delegate("alice", "erin")
	own := transfer(5000)
	own.RequestedBy = "erin"
	id := f.Pending(own)
	_, err := f.Decide(id, "erin", approval.VerdictApprove)
	require.ErrorIs(t, err, approval.ErrSelfApproval)

	theirs := transfer(7000)
	theirs.RequestedBy = "alice"
	id = f.Pending(theirs)
	_, err = f.Decide(id, "erin", approval.VerdictApprove)
	require.ErrorIs(t, err, approval.ErrSelfApproval)
	require.ErrorContains(t, err, "erin would decide for alice, who requested it")

	agent := transfer(8000)
	agent.RequestedBy, agent.Initiator = "agent-7", "alice"
	id = f.Pending(agent)
	_, err = f.Decide(id, "erin", approval.VerdictApprove)
	require.ErrorIs(t, err, approval.ErrSelfApproval, "nor for the person an agent acts for")
	require.Equal(t, approval.EventDecisionRejected, f.lastEvent().Type)
}

func TestRevokeDelegation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	d := f.delegate("alice", "erin")
	id := f.Pending(transfer(5000))
	f.clock.Advance(time.Minute)
	rd, err := f.gate.RevokeDelegation(f.ctx, d.ID, "Alice", "back early")
	require.NoError(t, err)
	require.Equal(t, f.clock.Now(), rd.RevokedAt)
	require.Equal(t, "alice", rd.RevokedBy)
	ev := f.lastEvent()
	require.Equal(t, approval.EventDelegationRevoked, ev.Type)
	require.Equal(t, d.ID+": back early", ev.Reason)
	_, err = f.Decide(id, "erin", approval.VerdictApprove)
	require.ErrorIs(t, err, approval.ErrNotEligible)
	_, err = f.gate.RevokeDelegation(f.ctx, d.ID, "alice", "")
	require.ErrorIs(t, err, approval.ErrConflict)
	_, err = f.gate.RevokeDelegation(f.ctx, "dlg_nope", "alice", "")
	require.ErrorIs(t, err, approval.ErrNotFound)

	all, err := f.gate.ListDelegations(f.ctx, approval.DelegationQuery{From: "ALICE"})
	require.NoError(t, err)
	require.Len(t, all, 1)
	active, err := f.gate.ListDelegations(f.ctx, approval.DelegationQuery{From: "alice", ActiveAt: f.clock.Now()})
	require.NoError(t, err)
	require.Empty(t, active)
}

func TestDelegateRefusesWhatCannotWork(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	now := f.clock.Now()
	for name, d := range map[string]approval.Delegation{
		"to themselves":   {From: "alice", To: "Alice", NotAfter: now.Add(time.Hour)},
		"no end":          {From: "alice", To: "erin"},
		"over":            {From: "alice", To: "erin", NotBefore: now.Add(-2 * time.Hour), NotAfter: now.Add(-time.Hour)},
		"empty window":    {From: "alice", To: "erin", NotBefore: now.Add(2 * time.Hour), NotAfter: now.Add(time.Hour)},
		"bad from":        {From: "alice\x00", To: "erin", NotAfter: now.Add(time.Hour)},
		"empty policy":    {From: "alice", To: "erin", NotAfter: now.Add(time.Hour), Policies: []string{""}},
		"invalid reason":  {From: "alice", To: "erin", NotAfter: now.Add(time.Hour), Reason: "\xff"},
		"missing to":      {From: "alice", NotAfter: now.Add(time.Hour)},
		"missing from":    {To: "erin", NotAfter: now.Add(time.Hour)},
		"unicode spoofed": {From: "alice", To: "ａｌｉｃｅ", NotAfter: now.Add(time.Hour)},
	} {
		_, err := f.gate.Delegate(f.ctx, "admin", d)
		require.ErrorIs(t, err, approval.ErrInvalidDecision, name)
	}
	_, err := f.gate.Delegate(f.ctx, "", approval.Delegation{From: "alice", To: "erin", NotAfter: now.Add(time.Hour)})
	require.ErrorIs(t, err, approval.ErrInvalidDecision)
	require.Len(t, f.events(), 0, "nothing granted, nothing audited")

	// A store without the capability says so.
	g, err := approval.New(approval.Config{Store: plainStore{f.store}, SigningKey: f.priv})
	require.NoError(t, err)
	defer g.Close(context.Background())
	_, err = g.Delegate(f.ctx, "admin", approval.Delegation{From: "alice", To: "erin", NotAfter: now.Add(time.Hour)})
	require.ErrorIs(t, err, approval.ErrUnsupported)
}

// New requests notify the delegate too, with their own links, saying for
// whom.
func TestDelegateIsNotified(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	f := newFixture(t, func(c *approval.Config) {
		c.Channels = []approval.Channel{rec}
		c.BaseURL = "https://approvals.example.com"
	})
	f.delegate("alice", "erin")
	f.delegate("bob", "frank", "other_policy") // out of scope: not notified
	id := f.Pending(transfer(5000))
	require.NoError(t, f.gate.Close(context.Background()))
	got := map[string]approval.Notification{}
	for _, n := range rec.sent() {
		if n.RequestID == id && n.Type == approval.NotifyRequested {
			got[n.Recipient] = n
		}
	}
	require.Len(t, got, 5, "four finance members and erin")
	require.Equal(t, "alice", got["erin"].OnBehalfOf)
	require.Empty(t, got["alice"].OnBehalfOf)
	require.NotEmpty(t, got["erin"].ApproveURL)
	_, ok := got["frank"]
	require.False(t, ok)
}

// inProcessWithDelegations delivers from memory (no Outbox) but keeps the
// memstore's delegations.
type inProcessWithDelegations struct {
	approval.Store
	approval.Delegations
}

// TestDelegateStandsInForAnAllMember: at a level every member must
// approve, a member's delegate approving for them counts as the member,
// and the member is not reminded of what their delegate answered.
func TestDelegateStandsInForAnAllMember(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	f := newFixture(t, func(c *approval.Config) {
		ms := c.Store.(approval.Delegations)
		c.Store = inProcessWithDelegations{c.Store, ms}
		c.Directory = newChainDir()
		c.Channels = []approval.Channel{rec}
		c.BaseURL = "https://approvals.example.com"
	})
	require.NoError(t, f.gate.SetPolicy("release", approval.Policy{Match: approval.Name("release:*"), Chain: []approval.Level{{
		Approvers: group("pair"), Require: approval.RequireAll,
		Escalation: []approval.EscalationStep{{After: time.Hour, Action: approval.StepReminder}},
	}}}))
	f.delegate("bob", "erin")
	id := f.Pending(approval.Action{Name: "release:web", RequestedBy: "rm"})
	r, err := f.Decide(id, "erin", approval.VerdictApprove)
	require.NoError(t, err)
	require.Equal(t, "bob", r.Votes[0].OnBehalfOf)

	f.clock.Advance(time.Hour)
	_, err = f.gate.Tick(f.ctx, 0)
	require.NoError(t, err)
	require.NoError(t, f.gate.Close(context.Background()))
	var reminded []string
	for _, n := range rec.sent() {
		if n.Type == approval.NotifyReminder {
			reminded = append(reminded, n.Recipient)
		}
	}
	require.Equal(t, []string{"alice"}, reminded, "bob's delegate answered for him")

	r, err = f.Decide(id, "alice", approval.VerdictApprove)
	require.NoError(t, err)
	require.Equal(t, approval.StatusApproved, r.Status)
}

// TestGrantDelegations: a file's delegations are granted once, one whose
// window is over is passed over, and a store without delegations says so.
func TestGrantDelegations(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	now := f.clock.Now()
	ds := []approval.Delegation{
		{From: "alice", To: "erin", NotAfter: now.Add(time.Hour), Policies: []string{"high_spend"}},
		{From: "bob", To: "erin", NotAfter: now.Add(-time.Hour)}, // over
		{From: "carol", To: "dave", NotBefore: now.Add(time.Hour), NotAfter: now.Add(2 * time.Hour), Reason: "leave"},
	}
	got, err := f.gate.GrantDelegations(f.ctx, "admin", ds)
	require.NoError(t, err)
	require.Len(t, got, 2)
	again, err := f.gate.GrantDelegations(f.ctx, "admin", ds)
	require.NoError(t, err)
	require.Empty(t, again)

	// Another reason is another delegation; a bad one stops the run.
	ds[2].Reason = "parental leave"
	got, err = f.gate.GrantDelegations(f.ctx, "admin", append(ds, approval.Delegation{From: "x", To: "x", NotAfter: now.Add(time.Hour)}))
	require.ErrorIs(t, err, approval.ErrInvalidDecision)
	require.Len(t, got, 1)

	plain := newFixture(t, inProcess)
	_, err = plain.gate.GrantDelegations(plain.ctx, "admin", ds[:1])
	require.ErrorIs(t, err, approval.ErrUnsupported)
}
