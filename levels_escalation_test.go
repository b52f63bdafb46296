package approval_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// namedRecorder is a recorder with a name of its own.
type namedRecorder struct {
	recorder
	name string
}

func (r *namedRecorder) Name() string { return r.name }

// stepFixture is a gate whose "release" policy is a flat policy of the
// team leads (one approval) with the given steps, notifying through two
// channels, "chat" and "mail", from the gate's in-memory outbox.
type stepFixture struct {
	*fixture
	chat, mail *namedRecorder
	id         string
}

func newStepFixture(t *testing.T, p approval.Policy) *stepFixture {
	t.Helper()
	sf := &stepFixture{chat: &namedRecorder{name: "chat"}, mail: &namedRecorder{name: "mail"}}
	sf.fixture = newFixture(t, inProcess, func(c *approval.Config) {
		c.Directory = newChainDir()
		c.Channels = []approval.Channel{sf.chat, sf.mail}
		c.BaseURL = "https://approvals.example.com"
	})
	if p.Chain == nil && p.Approvers == nil {
		p.Approvers, p.RequiredApprovals = role("team_lead"), 1
	}
	p.Match = approval.Name("release:*")
	require.NoError(t, sf.gate.SetPolicy("release", p))
	sf.id = sf.Pending(approval.Action{Name: "release:web", RequestedBy: "rm"})
	return sf
}

// tick advances the clock by d and ticks, returning how many requests
// changed.
func (sf *stepFixture) tick(d time.Duration) int {
	sf.t.Helper()
	sf.clock.Advance(d)
	n, err := sf.gate.Tick(sf.ctx, 0)
	require.NoError(sf.t, err)
	return n
}

// sent returns "type recipient" of what channel c sent about the request,
// once delivery has caught up (Close waits for it).
func (sf *stepFixture) sent(c *namedRecorder) []string {
	sf.t.Helper()
	require.NoError(sf.t, sf.gate.Close(context.Background()))
	var out []string
	for _, n := range c.sent() {
		if n.RequestID == sf.id {
			out = append(out, string(n.Type)+" "+n.Recipient)
		}
	}
	slices.Sort(out)
	return out
}

func (sf *stepFixture) eventsOf(typ approval.EventType) []approval.AuditEvent {
	var out []approval.AuditEvent
	for _, e := range sf.events() {
		if e.Type == typ && e.RequestID == sf.id {
			out = append(out, e)
		}
	}
	return out
}

func TestStepReminder(t *testing.T) {
	t.Parallel()
	sf := newStepFixture(t, approval.Policy{Escalation: []approval.EscalationStep{
		{After: 4 * time.Hour, Action: approval.StepReminder, Channels: []string{"mail"}, Reason: "SLA: 4h"},
	}})
	require.Equal(t, sf.clock.Now().Add(4*time.Hour), sf.Get(sf.id).DueAt)
	_, err := sf.Decide(sf.id, "tl1", approval.VerdictDeny)
	require.NoError(t, err)
	// A denied request runs no step; start again with one that stays open.
	sf = newStepFixture(t, approval.Policy{Approvers: role("team_lead"), RequiredApprovals: 2, Escalation: []approval.EscalationStep{
		{After: 4 * time.Hour, Action: approval.StepReminder, Channels: []string{"mail"}, Reason: "SLA: 4h"},
	}})
	_, err = sf.Decide(sf.id, "tl1", approval.VerdictApprove)
	require.NoError(t, err)
	require.Zero(t, sf.tick(4*time.Hour-time.Second))
	require.Equal(t, 1, sf.tick(time.Second))
	require.Zero(t, sf.tick(time.Hour), "a step runs once")
	evs := sf.eventsOf(approval.EventRequestReminded)
	require.Len(t, evs, 1)
	require.Equal(t, "policy release: step 1 (reminder after 4h0m0s): SLA: 4h", evs[0].Reason)
	require.Equal(t, approval.SystemActor, evs[0].Actor)
	require.Equal(t, []string{"approval.reminder tl2", "approval.requested tl1", "approval.requested tl2"}, sf.sent(sf.mail),
		"the reminder goes to whoever has not answered, by mail only")
	require.Equal(t, []string{"approval.requested tl1", "approval.requested tl2"}, sf.sent(sf.chat))
	var note string
	for _, n := range sf.mail.sent() {
		if n.Type == approval.NotifyReminder {
			note = n.Note
		}
	}
	require.Equal(t, "SLA: 4h", note)
}

func TestStepEscalate(t *testing.T) {
	t.Parallel()
	sf := newStepFixture(t, approval.Policy{Escalation: []approval.EscalationStep{
		{After: 8 * time.Hour, Action: approval.StepEscalate, To: role("manager"), Reason: "no answer"},
	}})
	_, err := sf.Decide(sf.id, "m1", approval.VerdictApprove)
	require.ErrorIs(t, err, approval.ErrNotEligible, "not before the step")
	require.Equal(t, 1, sf.tick(8*time.Hour))
	r := sf.Get(sf.id)
	require.Equal(t, approval.StatusEscalated, r.Status)
	require.Equal(t, 1, r.EscalationLevel)
	require.Equal(t, role("manager"), r.Policies[0].Progress.Added)
	require.Equal(t, r.Deadline, r.DueAt, "no step left")
	evs := sf.eventsOf(approval.EventRequestEscalated)
	require.Len(t, evs, 1)
	require.Equal(t, "policy release: step 1 (escalate after 8h0m0s): no answer; added role:manager", evs[0].Reason)
	r, err = sf.Decide(sf.id, "m1", approval.VerdictApprove)
	require.NoError(t, err)
	require.Equal(t, approval.StatusApproved, r.Status)
	require.Equal(t, []string{"approval.escalated m1", "approval.escalated m2", "approval.requested tl1", "approval.requested tl2",
		"approval.resolved m1", "approval.resolved rm"}, sf.sent(sf.chat))
}

// An escalated approver stands in for a member who did not answer at a
// level requiring all.
func TestStepEscalateAtAnAllLevel(t *testing.T) {
	t.Parallel()
	sf := newStepFixture(t, approval.Policy{Chain: []approval.Level{{Approvers: group("pair"), Require: approval.RequireAll,
		Escalation: []approval.EscalationStep{{After: time.Hour, Action: approval.StepEscalate, To: role("director")}}}}})
	_, err := sf.Decide(sf.id, "alice", approval.VerdictApprove)
	require.NoError(t, err)
	sf.tick(time.Hour)
	r, err := sf.Decide(sf.id, "d1", approval.VerdictApprove)
	require.NoError(t, err)
	require.Equal(t, approval.StatusApproved, r.Status, "d1 stands in for bob")
}

func TestStepReassign(t *testing.T) {
	t.Parallel()
	sf := newStepFixture(t, approval.Policy{Approvers: role("team_lead"), RequiredApprovals: 2, Escalation: []approval.EscalationStep{
		{After: time.Hour, Action: approval.StepReassign, To: role("manager")},
	}})
	_, err := sf.Decide(sf.id, "tl1", approval.VerdictApprove)
	require.NoError(t, err)
	require.Equal(t, 1, sf.tick(time.Hour))
	_, err = sf.Decide(sf.id, "tl2", approval.VerdictApprove)
	require.ErrorIs(t, err, approval.ErrNotEligible, "the replaced approvers may no longer decide")
	r, err := sf.Decide(sf.id, "m2", approval.VerdictApprove)
	require.NoError(t, err)
	require.Equal(t, approval.StatusApproved, r.Status, "tl1's vote stays counted")
	require.Len(t, sf.eventsOf(approval.EventRequestReassigned), 1)
	require.Contains(t, sf.sent(sf.chat), "approval.requested m1")
}

func TestStepNotify(t *testing.T) {
	t.Parallel()
	sf := newStepFixture(t, approval.Policy{Escalation: []approval.EscalationStep{
		{After: 24 * time.Hour, Action: approval.StepNotify, To: role("director"), Channels: []string{"chat"}, Reason: "executive alert"},
	}, Timeout: 48 * time.Hour})
	require.Equal(t, 1, sf.tick(24*time.Hour))
	r := sf.Get(sf.id)
	require.Equal(t, approval.StatusPending, r.Status, "approvers unchanged")
	_, err := sf.Decide(sf.id, "d1", approval.VerdictApprove)
	require.ErrorIs(t, err, approval.ErrNotEligible, "an alerted person does not decide")
	require.Len(t, sf.eventsOf(approval.EventRequestAlerted), 1)
	require.Contains(t, sf.sent(sf.chat), "approval.alert d1")
	require.NotContains(t, sf.sent(sf.mail), "approval.alert d1")
	for _, n := range sf.chat.sent() {
		if n.Type == approval.NotifyAlert {
			require.Empty(t, n.ApproveURL, "no decision links")
			require.Empty(t, n.DenyURL)
			require.NotEmpty(t, n.ReviewURL)
			require.Equal(t, "executive alert", n.Note)
		}
	}
}

func TestStepAutoApprove(t *testing.T) {
	t.Parallel()
	sf := newStepFixture(t, approval.Policy{Chain: []approval.Level{
		{Approvers: role("team_lead")},
		{Approvers: role("manager"), Escalation: []approval.EscalationStep{{After: 48 * time.Hour, Action: approval.StepAutoApprove, Reason: "no response within SLA"}}},
	}, Timeout: 72 * time.Hour})
	_, err := sf.Decide(sf.id, "tl1", approval.VerdictApprove)
	require.NoError(t, err)
	require.Zero(t, sf.tick(47*time.Hour))
	require.Equal(t, 1, sf.tick(time.Hour))
	r := sf.Get(sf.id)
	require.Equal(t, approval.StatusApproved, r.Status)
	require.Equal(t, "every policy met", r.Reason)
	passed := sf.eventsOf(approval.EventLevelPassed)
	require.Equal(t, "policy release level 2: step 1 (auto_approve after 48h0m0s): no response within SLA; policy passed", passed[len(passed)-1].Reason)
	require.Contains(t, sf.sent(sf.chat), "approval.resolved rm")
}

// One policy's auto_approve does not approve past another policy.
func TestStepAutoApproveLeavesOtherPolicies(t *testing.T) {
	t.Parallel()
	sf := newStepFixture(t, approval.Policy{Escalation: []approval.EscalationStep{{After: time.Hour, Action: approval.StepAutoApprove}}})
	require.NoError(t, sf.gate.SetPolicy("security", approval.Policy{Match: approval.Name("release:*"), Approvers: role("security_team"), RequiredApprovals: 1}))
	id := sf.Pending(approval.Action{Name: "release:api", RequestedBy: "rm"})
	sf.tick(time.Hour)
	r := sf.Get(id)
	require.Equal(t, approval.StatusPending, r.Status)
	require.Equal(t, 1, r.Policies[0].Progress.Level, "release passed")
	r, err := sf.Decide(id, "s1", approval.VerdictApprove)
	require.NoError(t, err)
	require.Equal(t, approval.StatusApproved, r.Status)
}

func TestStepAutoDeny(t *testing.T) {
	t.Parallel()
	sf := newStepFixture(t, approval.Policy{Escalation: []approval.EscalationStep{
		{After: time.Hour, Action: approval.StepReminder},
		{After: 2 * time.Hour, Action: approval.StepAutoDeny, Reason: "stale"},
	}})
	// Both steps are due by the first Tick: they run in order, once.
	require.Equal(t, 1, sf.tick(3*time.Hour))
	r := sf.Get(sf.id)
	require.Equal(t, approval.StatusDenied, r.Status)
	require.Equal(t, "denied by an escalation step: policy release: step 2 (auto_deny after 2h0m0s): stale", r.Reason)
	require.False(t, r.HoldUntil.IsZero(), "held like a person's denial")
	require.Len(t, sf.eventsOf(approval.EventRequestReminded), 1)
	require.Len(t, sf.eventsOf(approval.EventRequestDenied), 1)
	require.Zero(t, sf.tick(time.Hour))
	require.Contains(t, sf.sent(sf.chat), "approval.resolved rm")
}

// A step after the level's timeout never runs: the level ends first.
func TestStepAfterLevelTimeoutNeverRuns(t *testing.T) {
	t.Parallel()
	sf := newStepFixture(t, approval.Policy{Chain: []approval.Level{{Approvers: role("team_lead"), Timeout: time.Hour,
		Escalation: []approval.EscalationStep{{After: 2 * time.Hour, Action: approval.StepAutoApprove}}}}})
	sf.tick(3 * time.Hour)
	r := sf.Get(sf.id)
	require.Equal(t, approval.StatusTimedOut, r.Status)
	require.Empty(t, sf.eventsOf(approval.EventLevelPassed))
}

// Steps count from the level's opening: a later level's steps start
// when it opens.
func TestStepsCountFromTheLevel(t *testing.T) {
	t.Parallel()
	sf := newStepFixture(t, approval.Policy{Chain: []approval.Level{
		{Approvers: role("team_lead")},
		{Approvers: role("manager"), Escalation: []approval.EscalationStep{{After: 4 * time.Hour, Action: approval.StepReminder}}},
	}})
	sf.clock.Advance(3 * time.Hour)
	_, err := sf.Decide(sf.id, "tl2", approval.VerdictApprove)
	require.NoError(t, err)
	require.Equal(t, sf.clock.Now().Add(4*time.Hour), sf.Get(sf.id).DueAt)
	require.Zero(t, sf.tick(time.Hour))
	require.Equal(t, 1, sf.tick(3*time.Hour))
	require.Equal(t, []string{"approval.reminder m1", "approval.reminder m2", "approval.requested m1", "approval.requested m2",
		"approval.requested tl1", "approval.requested tl2"}, sf.sent(sf.chat))
}

// A moved deadline is audited, and what counts from the deadline moves
// with it: the timeout, steps Before it, Tick's next look.
func TestMoveDeadline(t *testing.T) {
	t.Parallel()
	sf := newStepFixture(t, approval.Policy{Timeout: 10 * time.Hour, Escalation: []approval.EscalationStep{
		{Before: 2 * time.Hour, Action: approval.StepReminder, Reason: "two hours left"},
	}})
	start := sf.clock.Now()
	require.Equal(t, start.Add(8*time.Hour), sf.Get(sf.id).DueAt)

	r, err := sf.gate.MoveDeadline(sf.ctx, sf.id, "Ops-Lead", start.Add(20*time.Hour), "waiting for the vendor")
	require.NoError(t, err)
	require.Equal(t, start.Add(20*time.Hour), r.Deadline)
	require.Equal(t, start.Add(18*time.Hour), r.DueAt, "the reminder moved with the deadline")
	ev := sf.lastEvent()
	require.Equal(t, approval.EventDeadlineMoved, ev.Type)
	require.Equal(t, "ops-lead", ev.Actor)
	require.Equal(t, "from 2026-03-01T19:00:00Z to 2026-03-02T05:00:00Z: waiting for the vendor", ev.Reason)

	require.Zero(t, sf.tick(12*time.Hour), "not timed out at the old deadline")
	require.Equal(t, approval.StatusPending, sf.Get(sf.id).Status)
	require.Equal(t, 1, sf.tick(6*time.Hour))
	require.Len(t, sf.eventsOf(approval.EventRequestReminded), 1)

	// Shorter, too; not into the past.
	_, err = sf.gate.MoveDeadline(sf.ctx, sf.id, "ops-lead", sf.clock.Now(), "")
	require.ErrorIs(t, err, approval.ErrInvalidDeadline)
	_, err = sf.gate.MoveDeadline(sf.ctx, sf.id, "ops-lead", sf.clock.Now().Add(time.Minute), "")
	require.NoError(t, err)
	require.Equal(t, 1, sf.tick(time.Minute))
	require.Equal(t, approval.StatusTimedOut, sf.Get(sf.id).Status)

	_, err = sf.gate.MoveDeadline(sf.ctx, sf.id, "ops-lead", sf.clock.Now().Add(time.Hour), "")
	require.ErrorIs(t, err, approval.ErrNotPending)
	_, err = sf.gate.MoveDeadline(sf.ctx, "req_nope", "ops-lead", sf.clock.Now().Add(time.Hour), "")
	require.ErrorIs(t, err, approval.ErrNotFound)
	_, err = sf.gate.MoveDeadline(sf.ctx, sf.id, "", sf.clock.Now().Add(time.Hour), "")
	require.ErrorIs(t, err, approval.ErrInvalidDecision)
}
