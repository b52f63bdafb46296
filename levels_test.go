package approval_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// chainDir is a directory whose groups a test can change.
type chainDir struct {
	mu     sync.Mutex
	groups map[string][]string
}

func newChainDir() *chainDir {
	return &chainDir{groups: map[string][]string{
		"team_lead":       {"tl1", "tl2"},
		"manager":         {"m1", "m2"},
		"director":        {"d1"},
		"tech_lead":       {"t1", "t2"},
		"product_manager": {"p1", "p2"},
		"security_team":   {"s1", "s2"},
		"pair":            {"alice", "bob"},
		"trio":            {"t1", "t2", "t3"},
	}}
}

func (d *chainDir) set(group string, members ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.groups[group] = members
}

func (d *chainDir) Members(_ context.Context, a approval.Approver) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.groups[a.Name]), nil
}

func (d *chainDir) IsMember(ctx context.Context, a approval.Approver, user string) (bool, error) {
	ms, _ := d.Members(ctx, a)
	return slices.Contains(ms, user), nil
}

func role(n string) []approval.Approver  { return []approval.Approver{approval.Role(n)} }
func group(n string) []approval.Approver { return []approval.Approver{approval.Group(n)} }

// vote is one step of a chain table test: who decides, and what must
// follow (an error, the request's status, the level of the policy).
type vote struct {
	who     string
	verdict approval.Verdict // approve when empty
	err     error
	status  approval.Status // pending when empty
	level   int             // the policy's level after the vote
}

func TestChainEvaluation(t *testing.T) {
	t.Parallel()
	critical := approval.Field("metadata.priority", approval.OpEq, "critical")
	boom := approval.Custom("boom", func(approval.Action) (bool, error) { return false, errors.New("boom") })
	release := []approval.Level{
		{Name: "Team Lead Review", Approvers: role("team_lead"), Require: approval.RequireAny},
		{Name: "Manager Approval", Approvers: role("manager"), Require: approval.RequireAll},
		{Name: "Director Sign-off", Approvers: role("director"), Require: approval.RequireAll},
	}
	for _, tc := range []struct {
		name     string
		chain    []approval.Level
		metadata map[string]string
		votes    []vote
		skipped  []int
	}{
		{name: "any", chain: []approval.Level{{Approvers: role("team_lead")}},
			votes: []vote{{who: "tl2", status: approval.StatusApproved, level: 1}}},
		{name: "all", chain: []approval.Level{{Approvers: group("pair"), Require: approval.RequireAll}},
			votes: []vote{{who: "alice"}, {who: "bob", status: approval.StatusApproved, level: 1}}},
		{name: "threshold", chain: []approval.Level{{Approvers: group("trio"), Require: approval.Threshold(2)}},
			votes: []vote{{who: "t3"}, {who: "t3", err: approval.ErrAlreadyDecided}, {who: "t1", status: approval.StatusApproved, level: 1}}},
		{name: "sequential levels", chain: release, votes: []vote{
			{who: "m1", err: approval.ErrNotEligible},
			{who: "d1", err: approval.ErrNotEligible},
			{who: "tl1", level: 1},
			{who: "tl2", err: approval.ErrNotEligible, level: 1},
			{who: "m2", level: 1},
			{who: "d1", err: approval.ErrNotEligible, level: 1},
			{who: "m1", level: 2},
			{who: "d1", status: approval.StatusApproved, level: 3},
		}},
		{name: "a later level denies", chain: release, votes: []vote{
			{who: "tl1", level: 1},
			{who: "m1", verdict: approval.VerdictDeny, status: approval.StatusDenied, level: 1},
		}},
		{name: "a later level's approver cannot deny early", chain: release, votes: []vote{
			{who: "d1", verdict: approval.VerdictDeny, err: approval.ErrNotEligible},
		}},
		{name: "parallel AND", chain: []approval.Level{{Groups: []approval.ParallelGroup{
			{Name: "engineering", Approvers: role("tech_lead")},
			{Name: "product", Approvers: role("product_manager"), Require: approval.RequireAll},
		}}}, votes: []vote{{who: "t1"}, {who: "p1"}, {who: "t2"}, {who: "p2", status: approval.StatusApproved, level: 1}}},
		{name: "parallel OR", chain: []approval.Level{{Logic: approval.LogicOr, Groups: []approval.ParallelGroup{
			{Name: "engineering", Approvers: role("tech_lead"), Require: approval.Threshold(2)},
			{Name: "product", Approvers: role("product_manager")},
		}}}, votes: []vote{{who: "t1"}, {who: "p2", status: approval.StatusApproved, level: 1}}},
		{name: "parallel then sequential", chain: []approval.Level{
			{Groups: []approval.ParallelGroup{
				{Name: "engineering", Approvers: role("tech_lead")},
				{Name: "product", Approvers: role("product_manager")},
			}},
			{Approvers: role("director")},
		}, votes: []vote{{who: "p1"}, {who: "d1", err: approval.ErrNotEligible}, {who: "t2", level: 1}, {who: "d1", status: approval.StatusApproved, level: 2}}},
		{name: "conditional level skipped", chain: []approval.Level{
			{Approvers: role("team_lead")},
			{Name: "Security Review", Approvers: role("security_team"), When: critical},
		}, skipped: []int{1}, votes: []vote{{who: "s1", err: approval.ErrNotEligible}, {who: "tl1", status: approval.StatusApproved, level: 2}}},
		{name: "conditional level applies", metadata: map[string]string{"priority": "critical"}, chain: []approval.Level{
			{Approvers: role("team_lead")},
			{Name: "Security Review", Approvers: role("security_team"), When: critical},
		}, votes: []vote{{who: "tl1", level: 1}, {who: "s2", status: approval.StatusApproved, level: 2}}},
		{name: "first level skipped", chain: []approval.Level{
			{Approvers: role("security_team"), When: critical},
			{Approvers: role("team_lead")},
		}, skipped: []int{0}, votes: []vote{{who: "s1", err: approval.ErrNotEligible, level: 1}, {who: "tl1", status: approval.StatusApproved, level: 2}}},
		{name: "a failing condition applies its level", chain: []approval.Level{
			{Approvers: role("team_lead")},
			{Approvers: role("security_team"), When: boom},
		}, votes: []vote{{who: "tl1", level: 1}, {who: "s1", status: approval.StatusApproved, level: 2}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, func(c *approval.Config) { c.Directory = newChainDir() })
			require.NoError(t, f.gate.SetPolicy("release", approval.Policy{Match: approval.Name("release:*"), Chain: tc.chain}))
			id := f.Pending(approval.Action{Name: "release:web", RequestedBy: "rm", Metadata: tc.metadata})
			r := f.Get(id)
			require.Equal(t, tc.skipped, r.Policies[0].Skipped)
			for i, v := range tc.votes {
				verdict := v.verdict
				if verdict == "" {
					verdict = approval.VerdictApprove
				}
				_, err := f.Decide(id, v.who, verdict)
				if v.err != nil {
					require.ErrorIs(t, err, v.err, "vote %d by %s", i, v.who)
				} else {
					require.NoError(t, err, "vote %d by %s", i, v.who)
				}
				r := f.Get(id)
				want := v.status
				if want == "" {
					want = approval.StatusPending
				}
				require.Equal(t, want, r.Status, "after vote %d by %s", i, v.who)
				require.Equal(t, v.level, r.Policies[0].Progress.Level, "level after vote %d by %s", i, v.who)
			}
			requireLevelTrail(t, f.events(), id)
		})
	}
}

// requireLevelTrail checks that each level transition of request id is
// audited: every level passed or skipped has its event, in order, and
// every level opened after the first has one.
func requireLevelTrail(t *testing.T, evs []approval.AuditEvent, id string) {
	t.Helper()
	for _, e := range evs {
		if e.RequestID != id {
			continue
		}
		switch e.Type {
		case approval.EventLevelPassed, approval.EventLevelSkipped, approval.EventLevelOpened:
			require.True(t, strings.HasPrefix(e.Reason, "policy release: level "), e.Reason)
			require.Len(t, e.Policies, 1)
		}
	}
}

func TestChainAuditsTransitions(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *approval.Config) { c.Directory = newChainDir() })
	require.NoError(t, f.gate.SetPolicy("release", approval.Policy{Match: approval.Name("release:*"), Chain: []approval.Level{
		{Name: "Team Lead Review", Approvers: role("team_lead")},
		{Name: "Security Review", Approvers: role("security_team"), When: approval.TagAny("security")},
		{Name: "Manager Approval", Approvers: role("manager")},
	}}))
	id := f.Pending(approval.Action{Name: "release:web", RequestedBy: "rm"})
	_, err := f.Decide(id, "tl1", approval.VerdictApprove)
	require.NoError(t, err)
	_, err = f.Decide(id, "m2", approval.VerdictApprove)
	require.NoError(t, err)
	var got []string
	for _, e := range f.events() {
		if e.RequestID == id {
			got = append(got, string(e.Type)+" "+e.Actor+" "+e.Reason)
		}
	}
	require.Equal(t, []string{
		"request.created rm release",
		"decision.approve tl1 ",
		"request.level_passed tl1 policy release: level 1 (Team Lead Review): met",
		"request.level_skipped tl1 policy release: level 2 (Security Review): condition not met",
		"request.level_opened system policy release: level 3 (Manager Approval)",
		"decision.approve m2 ",
		"request.level_passed m2 policy release: level 3 (Manager Approval): met",
		"request.approved m2 quorum met",
	}, got)
}

// Only the current level's approvers are notified: the next level's hear
// when it opens, with their own links.
func TestChainNotifiesTheCurrentLevel(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	f := newFixture(t, inProcess, func(c *approval.Config) {
		c.Directory = newChainDir()
		c.Channels = []approval.Channel{rec}
		c.BaseURL = "https://approvals.example.com"
	})
	require.NoError(t, f.gate.SetPolicy("release", approval.Policy{Match: approval.Name("release:*"), Chain: []approval.Level{
		{Approvers: role("team_lead")},
		{Approvers: role("manager"), Require: approval.RequireAll},
	}}))
	id := f.Pending(approval.Action{Name: "release:web", RequestedBy: "rm"})
	recipients := func(typ approval.NotificationType) []string {
		var out []string
		for _, n := range rec.sent() {
			if n.Type == typ && n.RequestID == id {
				out = append(out, n.Recipient)
			}
		}
		slices.Sort(out)
		return out
	}
	require.Eventually(t, func() bool { return len(recipients(approval.NotifyRequested)) == 2 }, 5*time.Second, 5*time.Millisecond)
	require.Equal(t, []string{"tl1", "tl2"}, recipients(approval.NotifyRequested))
	_, err := f.Decide(id, "tl1", approval.VerdictApprove)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(recipients(approval.NotifyRequested)) == 4 }, 5*time.Second, 5*time.Millisecond)
	require.Equal(t, []string{"m1", "m2", "tl1", "tl2"}, recipients(approval.NotifyRequested))
	for _, n := range rec.sent() {
		require.NotEmpty(t, n.ApproveURL, "%s has a link", n.Recipient)
	}
}

// The members of a RequireAll level are those of its approvers when it
// opens: who joins later is not asked, who leaves is still asked.
func TestChainAllMembersFixedWhenTheLevelOpens(t *testing.T) {
	t.Parallel()
	dir := newChainDir()
	f := newFixture(t, func(c *approval.Config) { c.Directory = dir })
	require.NoError(t, f.gate.SetPolicy("release", approval.Policy{Match: approval.Name("release:*"), Chain: []approval.Level{
		{Approvers: role("team_lead")},
		{Approvers: group("pair"), Require: approval.RequireAll},
	}}))
	id := f.Pending(approval.Action{Name: "release:web", RequestedBy: "rm"})
	dir.set("pair", "alice", "bob", "carol")
	_, err := f.Decide(id, "tl1", approval.VerdictApprove)
	require.NoError(t, err)
	require.Equal(t, [][]string{{"alice", "bob", "carol"}}, f.Get(id).Policies[0].Progress.Members, "resolved when level 2 opened")

	dir.set("pair", "alice", "bob", "dan") // carol leaves, dan joins
	_, err = f.Decide(id, "dan", approval.VerdictApprove)
	require.ErrorIs(t, err, approval.ErrNotEligible)
	_, err = f.Decide(id, "alice", approval.VerdictApprove)
	require.NoError(t, err)
	_, err = f.Decide(id, "bob", approval.VerdictApprove)
	require.NoError(t, err)
	require.Equal(t, approval.StatusPending, f.Get(id).Status, "carol must still approve")
	r, err := f.Decide(id, "carol", approval.VerdictApprove)
	require.NoError(t, err)
	require.Equal(t, approval.StatusApproved, r.Status)
}

// A level that cannot be met is found when the request would be created.
func TestChainQuorumShortfall(t *testing.T) {
	t.Parallel()
	for name, chain := range map[string][]approval.Level{
		"threshold above the group": {{Approvers: role("team_lead")}, {Approvers: role("director"), Require: approval.Threshold(2)}},
		"AND of a group of nobody":  {{Groups: []approval.ParallelGroup{{Name: "a", Approvers: role("team_lead")}, {Name: "b", Approvers: role("nobody")}}}},
		"OR of groups of nobody": {{Logic: approval.LogicOr, Groups: []approval.ParallelGroup{
			{Name: "a", Approvers: role("nobody")}, {Name: "b", Approvers: role("nobody-either")}}}},
		"all of nobody":      {{Approvers: role("nobody"), Require: approval.RequireAll}},
		"only the requester": {{Approvers: []approval.Approver{approval.User("rm")}}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, func(c *approval.Config) { c.Directory = newChainDir() })
			require.NoError(t, f.gate.SetPolicy("release", approval.Policy{Match: approval.Name("release:*"), Chain: chain}))
			res, err := f.gate.Guard(f.ctx, approval.Action{Name: "release:web", RequestedBy: "rm"})
			require.NoError(t, err)
			require.Equal(t, approval.OutcomeDenied, res.Status)
			require.Contains(t, res.Reason, "quorum cannot be met: policy release")
		})
	}
	// An OR with one group that can be met is fine; so is a skipped level
	// that could not be.
	f := newFixture(t, func(c *approval.Config) { c.Directory = newChainDir() })
	require.NoError(t, f.gate.SetPolicy("release", approval.Policy{Match: approval.Name("release:*"), Chain: []approval.Level{
		{Logic: approval.LogicOr, Groups: []approval.ParallelGroup{{Name: "a", Approvers: role("nobody")}, {Name: "b", Approvers: role("team_lead")}}},
		{Approvers: role("nobody"), When: approval.TagAny("never")},
	}}))
	f.Pending(approval.Action{Name: "release:web", RequestedBy: "rm"})
}

// A chain whose every level is skipped needs nobody: Guard approves at
// once, and the trail says why.
func TestChainEveryLevelSkipped(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *approval.Config) { c.Directory = newChainDir() })
	require.NoError(t, f.gate.SetPolicy("release", approval.Policy{Match: approval.Name("release:*"), Chain: []approval.Level{
		{Approvers: role("security_team"), When: approval.TagAny("security")},
	}}))
	res, err := f.gate.Guard(f.ctx, approval.Action{Name: "release:web", RequestedBy: "rm"})
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeApproved, res.Status)
	require.Equal(t, "every level skipped", res.Reason)
	require.Equal(t, approval.StatusConsumed, f.Get(res.RequestID).Status)
	require.Equal(t, []approval.EventType{approval.EventRequestCreated, approval.EventLevelSkipped,
		approval.EventRequestApproved, approval.EventApprovalConsumed}, eventTypes(f.events()))
	// The next Guard of the same action is asked again (nothing is held).
	res, err = f.gate.Guard(f.ctx, approval.Action{Name: "release:web", RequestedBy: "rm"})
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeApproved, res.Status)
}

// Per-level timeouts: OnTimeout deny times the request out, approve passes
// the level and opens the next.
func TestChainLevelTimeout(t *testing.T) {
	t.Parallel()
	chain := []approval.Level{
		{Approvers: role("team_lead"), Timeout: time.Hour},
		{Approvers: role("manager"), Timeout: 2 * time.Hour},
	}
	t.Run("deny", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, func(c *approval.Config) { c.Directory = newChainDir() })
		require.NoError(t, f.gate.SetPolicy("release", approval.Policy{Match: approval.Name("release:*"), Chain: chain}))
		id := f.Pending(approval.Action{Name: "release:web", RequestedBy: "rm"})
		require.Equal(t, f.clock.Now().Add(time.Hour), f.Get(id).DueAt, "due when level 1 times out")
		f.clock.Advance(59 * time.Minute)
		n, err := f.gate.Tick(f.ctx, 0)
		require.NoError(t, err)
		require.Zero(t, n)
		f.clock.Advance(time.Minute)
		n, err = f.gate.Tick(f.ctx, 0)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		r := f.Get(id)
		require.Equal(t, approval.StatusTimedOut, r.Status)
		require.Equal(t, "policy release: level 1 timed out", r.Reason)
		require.Equal(t, approval.EventRequestTimedOut, f.lastEvent().Type)
	})
	t.Run("approve", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, func(c *approval.Config) { c.Directory = newChainDir() })
		require.NoError(t, f.gate.SetPolicy("release", approval.Policy{Match: approval.Name("release:*"), Chain: chain, OnTimeout: approval.TimeoutApprove}))
		id := f.Pending(approval.Action{Name: "release:web", RequestedBy: "rm"})
		f.clock.Advance(time.Hour)
		_, err := f.gate.Tick(f.ctx, 0)
		require.NoError(t, err)
		r := f.Get(id)
		require.Equal(t, approval.StatusPending, r.Status)
		require.Equal(t, 1, r.Policies[0].Progress.Level)
		require.Equal(t, f.clock.Now(), r.Policies[0].Progress.Since)
		require.Equal(t, f.clock.Now().Add(2*time.Hour), r.DueAt)
		_, err = f.Decide(id, "tl1", approval.VerdictApprove)
		require.ErrorIs(t, err, approval.ErrNotEligible, "level 1 is over")
		f.clock.Advance(2 * time.Hour)
		_, err = f.gate.Tick(f.ctx, 0)
		require.NoError(t, err)
		r = f.Get(id)
		require.Equal(t, approval.StatusApproved, r.Status)
		var passed []string
		for _, e := range f.events() {
			if e.Type == approval.EventLevelPassed {
				passed = append(passed, e.Reason)
			}
		}
		require.Equal(t, []string{
			"policy release: level 1: timed out; passed (on timeout: approve)",
			"policy release: level 2: timed out; passed (on timeout: approve)",
		}, passed)
	})
}

// Chains and flat policies matched together: each must be met.
func TestChainBesideAFlatPolicy(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *approval.Config) { c.Directory = newChainDir() })
	require.NoError(t, f.gate.SetPolicy("release", approval.Policy{Match: approval.Name("release:*"), Chain: []approval.Level{
		{Approvers: role("team_lead")}, {Approvers: role("manager")},
	}}))
	require.NoError(t, f.gate.SetPolicy("sre", approval.Policy{Match: approval.Name("release:*"), Approvers: group("trio"), RequiredApprovals: 1}))
	id := f.Pending(approval.Action{Name: "release:web", RequestedBy: "rm"})
	_, err := f.Decide(id, "tl1", approval.VerdictApprove)
	require.NoError(t, err)
	_, err = f.Decide(id, "m1", approval.VerdictApprove)
	require.NoError(t, err)
	r := f.Get(id)
	require.Equal(t, approval.StatusPending, r.Status, "the flat policy is not met")
	r, err = f.Decide(id, "t2", approval.VerdictApprove)
	require.NoError(t, err)
	require.Equal(t, approval.StatusApproved, r.Status)
	require.Equal(t, []approval.VoteCount{{Policy: "sre"}}, r.Votes[2].Counts)
}

func TestChainValidation(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *approval.Config) { c.Directory = newChainDir() })
	ok := []approval.Level{{Approvers: role("team_lead")}}
	for name, tc := range map[string]struct {
		p    approval.Policy
		want string
	}{
		"chain and approvers": {approval.Policy{Chain: ok, Approvers: role("x"), RequiredApprovals: 1}, "either a Chain or Approvers"},
		"chain and policy steps": {approval.Policy{Chain: ok, Escalation: []approval.EscalationStep{{After: time.Hour, Action: approval.StepReminder}}},
			"escalation steps belong to its levels"},
		"level without approvers":    {approval.Policy{Chain: []approval.Level{{}}}, "Chain[0] has no Approvers"},
		"approvers and groups":       {approval.Policy{Chain: []approval.Level{{Approvers: role("x"), Groups: []approval.ParallelGroup{{Name: "a", Approvers: role("y")}}}}}, "both Approvers and Groups"},
		"group without name":         {approval.Policy{Chain: []approval.Level{{Groups: []approval.ParallelGroup{{Approvers: role("y")}}}}}, "Groups[0].Name is empty"},
		"groups with the same name":  {approval.Policy{Chain: []approval.Level{{Groups: []approval.ParallelGroup{{Name: "a", Approvers: role("y")}, {Name: "a", Approvers: role("z")}}}}}, `Name "a" is also Groups[0]'s`},
		"unknown logic":              {approval.Policy{Chain: []approval.Level{{Logic: "xor", Groups: []approval.ParallelGroup{{Name: "a", Approvers: role("y")}}}}}, `Logic "xor"`},
		"logic without groups":       {approval.Policy{Chain: []approval.Level{{Logic: approval.LogicOr, Approvers: role("y")}}}, "Logic is for Groups"},
		"threshold zero":             {approval.Policy{Chain: []approval.Level{{Approvers: role("y"), Require: approval.Threshold(0)}}}, "at least 1"},
		"threshold above users":      {approval.Policy{Chain: []approval.Level{{Approvers: []approval.Approver{approval.User("a")}, Require: approval.Threshold(2)}}}, "can never reach threshold(2)"},
		"negative level timeout":     {approval.Policy{Chain: []approval.Level{{Approvers: role("y"), Timeout: -time.Second}}}, "Timeout is negative"},
		"bad condition":              {approval.Policy{Chain: []approval.Level{{Approvers: role("y"), When: approval.Field("colour", approval.OpEq, "red")}}}, `unknown field "colour"`},
		"escalate on parallel level": {approval.Policy{Chain: []approval.Level{{Groups: []approval.ParallelGroup{{Name: "a", Approvers: role("y")}}, Escalation: []approval.EscalationStep{{After: time.Hour, Action: approval.StepEscalate, To: role("z")}}}}}, "a level of parallel groups has none of its own"},
	} {
		t.Run(name, func(t *testing.T) {
			tc.p.Match = approval.Name("*")
			err := f.gate.SetPolicy("p", tc.p)
			require.ErrorIs(t, err, approval.ErrInvalidPolicy)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestRequirementText(t *testing.T) {
	t.Parallel()
	for _, r := range []approval.Requirement{approval.RequireAny, approval.RequireAll, approval.Threshold(3)} {
		b, err := r.MarshalText()
		require.NoError(t, err)
		var back approval.Requirement
		require.NoError(t, back.UnmarshalText(b))
		require.Equal(t, r, back)
	}
	var r approval.Requirement
	for _, bad := range []string{"most", "threshold(0)", "threshold(x)", "threshold(2", "ALL"} {
		require.ErrorIs(t, r.UnmarshalText([]byte(bad)), approval.ErrInvalidPolicy, bad)
	}
}

// Segregation follows the person an agent acts for: neither the agent nor
// its initiator may approve, and the quorum check counts them out.
func TestInitiatorIsSegregated(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := transfer(5000)
	a.RequestedBy, a.Initiator = "agent-7", "Alice"
	id := f.Pending(a)
	r := f.Get(id)
	require.Equal(t, "alice", r.Action.Initiator, "canonical")
	_, err := f.Decide(id, "alice", approval.VerdictApprove)
	require.ErrorIs(t, err, approval.ErrSelfApproval)
	require.ErrorContains(t, err, "alice requested it through agent-7 (the initiator)")
	_, err = f.Decide(id, "bob", approval.VerdictApprove)
	require.NoError(t, err)
	r, err = f.Decide(id, "carol", approval.VerdictApprove)
	require.NoError(t, err)
	require.Equal(t, approval.StatusApproved, r.Status)

	// The initiator is part of the action: the same call for another
	// person is another request.
	b := a
	b.Initiator = "bob"
	other := f.Pending(b)
	require.NotEqual(t, id, other)

	// Three finance members are left once alice is out: a quorum of four
	// is refused at once.
	require.NoError(t, f.gate.SetPolicy("high_spend", approval.Policy{
		Match: approval.CostAtLeast(1000, "USD"), Approvers: []approval.Approver{approval.Group("finance")}, RequiredApprovals: 4,
	}))
	c := transfer(7000)
	c.RequestedBy, c.Initiator = "agent-7", "alice"
	res, err := f.gate.Guard(f.ctx, c)
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeDenied, res.Status)
	require.Contains(t, res.Reason, "3 people can give them (the requester may not)")

	bad := transfer(1)
	bad.Initiator = "alice\x00"
	_, err = f.gate.Guard(f.ctx, bad)
	require.ErrorIs(t, err, approval.ErrInvalidAction)
}
