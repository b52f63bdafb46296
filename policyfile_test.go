package approval_test

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/memstore"
)

const releaseTrain = "testdata/policies/release_train.yaml"

// releaseDir is the chain directory with the release train's other roles.
func releaseDir() *chainDir {
	d := newChainDir()
	d.set("sre_lead", "sre1")
	d.set("security_lead", "sec1")
	return d
}

// loadedFixture is a gate over a memstore whose policies come from path.
func loadedFixture(t *testing.T, path string, opts ...func(*approval.Config)) *stepFixture {
	t.Helper()
	sf := &stepFixture{chat: &namedRecorder{name: "in_app"}, mail: &namedRecorder{name: "email"}}
	opts = append([]func(*approval.Config){inProcess, func(c *approval.Config) {
		c.Directory = releaseDir()
		c.Channels = []approval.Channel{sf.chat, sf.mail}
		c.BaseURL = "https://approvals.example.com"
	}}, opts...)
	sf.fixture = newFixture(t, opts...)
	require.NoError(t, sf.gate.LoadPolicyFile(path))
	return sf
}

// withDelegations undoes inProcess: the memstore with its capabilities.
func withDelegations(c *approval.Config) {
	if p, ok := c.Store.(plainStore); ok {
		c.Store = p.Store
	}
}

func policyNames(g *approval.Gate) []string {
	var out []string
	for _, p := range g.Policies() {
		out = append(out, p.Name)
	}
	return out
}

// TestPolicyFileReleaseTrain runs reference 003's release train from its
// YAML file: each example behaves as the reference describes it.
func TestPolicyFileReleaseTrain(t *testing.T) {
	t.Parallel()
	t.Run("the file replaces the policy set", func(t *testing.T) {
		sf := loadedFixture(t, releaseTrain)
		require.Equal(t, []string{"critical-or-ai-release", "production-release", "release-train", "stakeholder-approval"}, policyNames(sf.gate))
	})
	t.Run("SRE sign-off, and a security lead for critical or AI releases", func(t *testing.T) {
		sf := loadedFixture(t, releaseTrain)
		plain := sf.pending(approval.Action{Name: "release:web:production", RequestedBy: "rm"})
		r := sf.get(plain)
		require.Len(t, r.Policies, 1)
		require.Equal(t, "production-release", r.Policies[0].Name)
		require.Equal(t, "SRE sign-off required before releasing to production.", r.Reason)
		for _, md := range []map[string]string{{"priority": "critical"}, {"ai_generated": "true"}} {
			id := sf.pending(approval.Action{Name: "release:api:production", RequestedBy: "rm", Metadata: md})
			require.Len(t, sf.get(id).Policies, 2, "%v", md)
			_, err := sf.decide(id, "sre1", approval.VerdictApprove)
			require.NoError(t, err)
			require.Equal(t, approval.StatusPending, sf.get(id).Status)
			_, err = sf.decide(id, "sec1", approval.VerdictApprove)
			require.NoError(t, err)
			require.Equal(t, approval.StatusApproved, sf.get(id).Status)
		}
	})
	t.Run("chain: team lead, security when critical, all managers, director", func(t *testing.T) {
		sf := loadedFixture(t, releaseTrain)
		id := sf.pending(approval.Action{Name: "release:web:promote", RequestedBy: "rm",
			Metadata: map[string]string{"priority": "critical"}, Tags: []string{"security"}})
		for i, v := range []vote{
			{who: "m1", err: approval.ErrNotEligible},
			{who: "s1", err: approval.ErrNotEligible},
			{who: "tl2", level: 1},
			{who: "m1", err: approval.ErrNotEligible, level: 1},
			{who: "s1", level: 2},
			{who: "m1", level: 2},
			{who: "d1", err: approval.ErrNotEligible, level: 2},
			{who: "m2", level: 3},
			{who: "d1", status: approval.StatusApproved, level: 4},
		} {
			_, err := sf.decide(id, v.who, approval.VerdictApprove)
			if v.err != nil {
				require.ErrorIs(t, err, v.err, "vote %d", i)
			} else {
				require.NoError(t, err, "vote %d", i)
			}
			r := sf.get(id)
			want := v.status
			if want == "" {
				want = approval.StatusPending
			}
			require.Equal(t, want, r.Status, "vote %d", i)
			require.Equal(t, v.level, r.Policies[0].Progress.Level, "vote %d", i)
		}
		var trail []string
		for _, e := range sf.events() {
			if e.RequestID == id && strings.HasPrefix(string(e.Type), "request.level_") {
				trail = append(trail, string(e.Type)+" "+e.Reason)
			}
		}
		require.Equal(t, []string{
			"request.level_passed policy release-train: level 1 (Team Lead Review): met",
			"request.level_opened policy release-train: level 2 (Security Review)",
			"request.level_passed policy release-train: level 2 (Security Review): met",
			"request.level_opened policy release-train: level 3 (Manager Approval)",
			"request.level_passed policy release-train: level 3 (Manager Approval): met",
			"request.level_opened policy release-train: level 4 (Director Sign-off)",
			"request.level_passed policy release-train: level 4 (Director Sign-off): met",
		}, trail)

		// Not critical: the security review is skipped.
		other := sf.pending(approval.Action{Name: "release:api:promote", RequestedBy: "rm", Tags: []string{"security"}})
		require.Equal(t, []int{1}, sf.get(other).Policies[0].Skipped)
	})
	t.Run("escalation steps of the first level", func(t *testing.T) {
		sf := loadedFixture(t, releaseTrain)
		sf.id = sf.pending(approval.Action{Name: "release:web:promote", RequestedBy: "rm"})
		sf.tick(4 * time.Hour)
		require.Len(t, sf.eventsOf(approval.EventRequestReminded), 1)
		sf.tick(4 * time.Hour)
		require.Len(t, sf.eventsOf(approval.EventRequestEscalated), 1)
		// Escalated: a manager may decide at the first level now.
		_, err := sf.decide(sf.id, "m1", approval.VerdictApprove)
		require.NoError(t, err)
		require.Equal(t, 2, sf.get(sf.id).Policies[0].Progress.Level)
	})
	t.Run("auto-approve after 48h with the SLA reason", func(t *testing.T) {
		sf := loadedFixture(t, releaseTrain)
		sf.id = sf.pending(approval.Action{Name: "release:web:promote", RequestedBy: "rm"})
		sf.tick(24 * time.Hour)
		alerts := sf.eventsOf(approval.EventRequestAlerted)
		require.Len(t, alerts, 1)
		require.Contains(t, alerts[0].Reason, "director")
		sf.tick(24 * time.Hour)
		passed := sf.eventsOf(approval.EventLevelPassed)
		require.NotEmpty(t, passed)
		require.Contains(t, passed[0].Reason, "Auto-approved due to timeout - no response within SLA")
		// auto_approve passes the policy: this level and the ones after it.
		require.Equal(t, approval.StatusApproved, sf.get(sf.id).Status)
	})
	t.Run("parallel groups, AND", func(t *testing.T) {
		sf := loadedFixture(t, releaseTrain)
		id := sf.pending(approval.Action{Name: "roadmap:q3", RequestedBy: "rm", Tags: []string{"stakeholder-review"}})
		for _, who := range []string{"t1", "p1"} {
			_, err := sf.decide(id, who, approval.VerdictApprove)
			require.NoError(t, err)
			require.Equal(t, approval.StatusPending, sf.get(id).Status)
		}
		_, err := sf.decide(id, "p2", approval.VerdictApprove)
		require.NoError(t, err)
		require.Equal(t, approval.StatusApproved, sf.get(id).Status)
	})
	t.Run("delegation, granted once however often the file is applied", func(t *testing.T) {
		sf := loadedFixture(t, releaseTrain, withDelegations)
		fh, err := os.Open(releaseTrain)
		require.NoError(t, err)
		defer fh.Close()
		pf, err := approval.ParsePolicies(fh, nil)
		require.NoError(t, err)
		require.Len(t, pf.Delegations, 1)
		got, err := sf.gate.GrantDelegations(sf.ctx, "admin", pf.Delegations)
		require.NoError(t, err)
		require.Len(t, got, 1)
		again, err := sf.gate.GrantDelegations(sf.ctx, "admin", pf.Delegations)
		require.NoError(t, err)
		require.Empty(t, again)

		id := sf.pending(approval.Action{Name: "release:web:promote", RequestedBy: "rm"})
		_, err = sf.decide(id, "tl1", approval.VerdictApprove)
		require.NoError(t, err)
		_, err = sf.decide(id, "m1", approval.VerdictApprove)
		require.NoError(t, err)
		r, err := sf.decide(id, "m3", approval.VerdictApprove) // for m2
		require.NoError(t, err)
		require.Equal(t, "m2", r.Votes[len(r.Votes)-1].OnBehalfOf)
		require.Equal(t, 3, r.Policies[0].Progress.Level)
		// Out of scope: m3 may not stand in for m2 elsewhere.
		other := sf.pending(approval.Action{Name: "release:web:production", RequestedBy: "rm"})
		_, err = sf.decide(other, "m3", approval.VerdictApprove)
		require.ErrorIs(t, err, approval.ErrNotEligible)
	})
}

func TestPolicyFileRoundTrip(t *testing.T) {
	t.Parallel()
	sf := loadedFixture(t, releaseTrain)
	want := map[string]string{}
	for _, name := range policyNames(sf.gate) {
		want[name], _ = sf.gate.PolicyHash(name)
	}
	var buf bytes.Buffer
	require.NoError(t, approval.EncodePolicies(&buf, &approval.PolicyFile{Policies: sf.gate.Policies()}))

	other := newFixture(t, func(c *approval.Config) { c.Directory = releaseDir() })
	require.NoError(t, other.gate.LoadPolicies(bytes.NewReader(buf.Bytes())), buf.String())
	for name, h := range want {
		got, ok := other.gate.PolicyHash(name)
		require.True(t, ok, name)
		require.Equal(t, h, got, "policy %s:\n%s", name, buf.String())
	}

	// From Go, every kind of field and matcher.
	reg := approval.MatcherRegistry{"weekend": func(a approval.Action) (bool, error) { return a.Metadata["day"] == "sat", nil }}
	g := newFixture(t, func(c *approval.Config) { c.Directory = releaseDir(); c.Matchers = reg })
	ps := []approval.NamedPolicy{
		{Name: "everything", Policy: approval.Policy{
			Match: approval.All(approval.Name("Deploy:*"), approval.Not(approval.TagNone("prod", "eu")),
				approval.Any(approval.CostBetween(0.5, 1e21, "eur"), approval.CostBelow(-3, ""), approval.RiskAtLeast(approval.RiskHigh)),
				approval.TagAll("a"), approval.TagAny("b"), approval.Custom("weekend", reg["weekend"]),
				approval.Field("payload.env", approval.OpIn, []any{"prod", 3.25, true}), approval.Field("risk", approval.OpGe, "medium")),
			Reason: "everything: 'quoted' \"text\"", Approvers: []approval.Approver{approval.User("Alice"), approval.Group("finance")},
			RequiredApprovals: 2, Timeout: 90 * time.Minute, OnTimeout: approval.TimeoutApprove, AllowSelfApproval: true,
			Escalation: []approval.EscalationStep{
				{After: time.Hour, Action: approval.StepReminder, Channels: []string{"email"}},
				{Before: 10 * time.Minute, Action: approval.StepNotify, To: []approval.Approver{approval.Role("sre_lead")}, Reason: "soon"},
			},
			Redact: []string{"iban"}, ReminderInterval: 30 * time.Second, ApprovalTTL: 2 * time.Hour,
			RecommendationApprovesBelow: approval.RiskMedium, RecommendationMinConfidence: 0.8,
			MaxReuse: approval.Reuse{For: 15 * time.Minute, Uses: 4},
		}},
		{Name: "deny", Policy: approval.Policy{Match: approval.Name("drop:*"), Effect: approval.EffectDeny, Reason: "never"}},
		{Name: "chain", Policy: approval.Policy{Match: approval.Name("x"), Chain: []approval.Level{
			{Name: "one", Approvers: role("team_lead"), Require: approval.Threshold(2), Timeout: time.Hour,
				When: approval.Field("metadata.n", approval.OpLt, 10)},
			{Logic: approval.LogicOr, Groups: []approval.ParallelGroup{
				{Name: "a", Approvers: role("manager"), Require: approval.RequireAll},
				{Name: "b", Approvers: role("director")},
			}},
		}}},
	}
	require.NoError(t, g.gate.ReplacePolicies(ps))
	buf.Reset()
	require.NoError(t, approval.EncodePolicies(&buf, &approval.PolicyFile{Policies: ps}))
	h := newFixture(t, func(c *approval.Config) { c.Directory = releaseDir(); c.Matchers = reg })
	require.NoError(t, h.gate.LoadPolicies(&buf))
	for _, p := range ps {
		a, _ := g.gate.PolicyHash(p.Name)
		b, ok := h.gate.PolicyHash(p.Name)
		require.True(t, ok)
		require.Equal(t, a, b, p.Name)
	}
}

func TestPolicyFileJSON(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	require.NoError(t, f.gate.LoadPolicies(strings.NewReader(`{
  "version": 1,
  "policies": {
    "big-transfer": {
      "match": {"cost": {"at_least": 10000, "currency": "USD"}},
      "approvers": ["group:finance"],
      "required_approvals": 2,
      "timeout": "4h"
    }
  }
}`)))
	require.Equal(t, []string{"big-transfer"}, policyNames(f.gate))
	id := f.pending(transfer(20000))
	require.Equal(t, "big-transfer", f.get(id).Policies[0].Name)
	require.Equal(t, approval.OutcomeApproved, mustGuard(t, f, transfer(50)).Status)
}

func mustGuard(t *testing.T, f *fixture, a approval.Action) approval.Result {
	t.Helper()
	res, err := f.gate.Guard(f.ctx, a)
	require.NoError(t, err)
	return res
}

// TestPolicyFileErrors: each mistake is refused with its line, column and
// key path, and the registered policies stay as they were.
func TestPolicyFileErrors(t *testing.T) {
	t.Parallel()
	const ok = "version: 1\npolicies:\n  p:\n    match: {name: \"x\"}\n    approvers: [user:alice]\n    required_approvals: 1\n"
	for _, tc := range []struct {
		name, file, want string
		line             int
	}{
		{"unknown key", ok + "    approverz: [user:bob]\n", "policies.p.approverz: invalid policy: unknown key \"approverz\"", 7},
		{"wrong type", strings.Replace(ok, "required_approvals: 1", "required_approvals: two", 1), "policies.p.required_approvals: invalid policy: want a whole number, not a string", 6},
		{"bad duration", ok + "    timeout: 3 days\n", "policies.p.timeout: invalid policy: \"3 days\" is not a duration", 7},
		{"bare number duration", ok + "    timeout: 30\n", "want a duration such as 24h, 90m or 1h30m, not an integer", 7},
		{"unknown matcher", strings.Replace(ok, `{name: "x"}`, `{nme: "x"}`, 1), "policies.p.match.nme: invalid policy: unknown key", 4},
		{"two keys in a matcher", strings.Replace(ok, `{name: "x"}`, `{name: "x", risk: {at_least: high}}`, 1), "a matcher is a mapping of one key", 4},
		{"unknown custom", strings.Replace(ok, `{name: "x"}`, `{custom: weekend}`, 1), "policies.p.match.custom: invalid policy: no custom matcher \"weekend\"", 4},
		{"bad operator", strings.Replace(ok, `{name: "x"}`, `{field: {name: metadata.a, op: "~", value: 1}}`, 1), "unknown operator", 4},
		{"bad risk", strings.Replace(ok, `{name: "x"}`, `{risk: {at_least: severe}}`, 1), "policies.p.match.risk.at_least: invalid policy: unknown risk level \"severe\"", 4},
		{"bad approver", strings.Replace(ok, "user:alice", "team:alice", 1), "policies.p.approvers[0]: invalid policy: unknown approver type \"team\"", 5},
		{"duplicate key", ok + "    required_approvals: 2\n", "policies.p.required_approvals: invalid policy: key \"required_approvals\" is given twice", 7},
		{"does not validate", strings.Replace(ok, "required_approvals: 1", "required_approvals: 3", 1), "policies.p: approval: policy \"p\": invalid policy: 1 distinct named users can never reach RequiredApprovals 3", 4},
		{"alias", "version: 1\npolicies:\n  p: &x\n    match: {name: x}\n    approvers: [user:a]\n    required_approvals: 1\n  q: *x\n", "anchors and aliases are not supported", 3},
		{"version", strings.Replace(ok, "version: 1", "version: 2", 1), "version: invalid policy: version 2 is not supported", 1},
		{"no policies", "version: 1\n", "no policies key", 1},
		{"two documents", ok + "---\n" + ok, "more than one document", 7},
		{"syntax", "policies: [\n", "did not find expected node content", 0},
		{"empty", "", "the file is empty", 0},
		{"level order", ok + "    chain:\n      - level: 2\n        approvers: [user:a]\n", "policies.p.chain[0].level: invalid policy: level 2 is listed as level 1", 8},
		{"threshold without count", strings.Replace(ok, "    approvers: [user:alice]\n    required_approvals: 1\n", "    chain:\n      - approvers: [user:a, user:b]\n        required: threshold\n", 1), "policies.p.chain[0].required: invalid policy: threshold needs required_count", 7},
		{"unknown action", strings.Replace(ok, "    approvers", "    escalation:\n      - after: 1h\n        action: page\n    approvers", 1), "policies.p.escalation[0].action: invalid policy: unknown action \"page\"", 7},
		{"delegation out of file", ok + "delegations:\n  - {from: a, to: b, not_after: 2027-01-01, policies: [q]}\n", "delegations[0].policies: invalid policy: no policy \"q\" in this file", 8},
		{"delegation without end", ok + "delegations:\n  - {from: a, to: b}\n", "no not_after", 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			err := f.gate.LoadPolicies(strings.NewReader(tc.file))
			require.Error(t, err)
			require.ErrorIs(t, err, approval.ErrInvalidPolicy)
			var pe *approval.PolicyFileError
			require.True(t, errors.As(err, &pe), "%T", err)
			require.Contains(t, err.Error(), tc.want)
			require.Equal(t, tc.line, pe.Line, err.Error())
			require.Equal(t, []string{"high_spend"}, policyNames(f.gate), "nothing registered")
		})
	}
	t.Run("too large", func(t *testing.T) {
		f := newFixture(t)
		big := ok + "    reason: " + strings.Repeat("x", approval.MaxPolicyFileBytes) + "\n"
		err := f.gate.LoadPolicies(strings.NewReader(big))
		require.ErrorIs(t, err, approval.ErrInvalidPolicy)
		require.Contains(t, err.Error(), "larger than")
	})
	t.Run("a group approver needs a directory", func(t *testing.T) {
		_, priv, err := approval.GenerateKeys()
		require.NoError(t, err)
		g, err := approval.New(approval.Config{Store: memstore.New(), SigningKey: priv})
		require.NoError(t, err)
		err = g.LoadPolicies(strings.NewReader(strings.Replace(ok, "user:alice", "group:finance", 1)))
		require.ErrorIs(t, err, approval.ErrInvalidPolicy)
		require.Contains(t, err.Error(), "needs Config.Directory")
	})
	t.Run("a missing file", func(t *testing.T) {
		f := newFixture(t)
		err := f.gate.LoadPolicyFile("testdata/policies/nope.yaml")
		require.ErrorIs(t, err, os.ErrNotExist)
	})
}

// TestPolicyFileReplaceKeepsSnapshots: live requests keep the policy they
// were created under when a file replaces it.
func TestPolicyFileReplaceKeepsSnapshots(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.pending(transfer(5000)) // high_spend: two of finance
	require.NoError(t, f.gate.LoadPolicies(strings.NewReader(
		"policies:\n  small:\n    match: {cost: {at_least: 1, currency: usd}}\n    approvers: [user:erin]\n    required_approvals: 1\n")))
	require.Equal(t, []string{"small"}, policyNames(f.gate))
	_, err := f.decide(id, "alice", approval.VerdictApprove)
	require.NoError(t, err)
	r, err := f.decide(id, "bob", approval.VerdictApprove)
	require.NoError(t, err)
	require.Equal(t, approval.StatusApproved, r.Status)
	require.Equal(t, "high_spend", r.Policies[0].Name)
	require.Equal(t, "small", f.get(f.pending(transfer(7000))).Policies[0].Name)
}
