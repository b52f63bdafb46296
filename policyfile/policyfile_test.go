package policyfile_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/memstore"
	"github.com/signoff/approval/policyfile"
)

const releaseTrain = "testdata/policies/release_train.yaml"

func TestPolicyFileRoundTrip(t *testing.T) {
	t.Parallel()
	sf := newFixture(t, func(c *approval.Config) { c.Directory = releaseDir() })
	require.NoError(t, policyfile.LoadFile(sf.Gate, releaseTrain))
	want := map[string]string{}
	for _, name := range policyNames(sf.Gate) {
		want[name], _ = sf.Gate.PolicyHash(name)
	}
	var buf bytes.Buffer
	require.NoError(t, policyfile.Encode(&buf, &policyfile.File{Policies: sf.Gate.Policies()}))

	other := newFixture(t, func(c *approval.Config) { c.Directory = releaseDir() })
	require.NoError(t, policyfile.Load(other.Gate, bytes.NewReader(buf.Bytes())), buf.String())
	for name, h := range want {
		got, ok := other.Gate.PolicyHash(name)
		require.True(t, ok, name)
		require.Equal(t, h, got, "policy %s:\n%s", name, buf.String())
	}

	// From Go, every kind of field and matcher.
	reg := policyfile.MatcherRegistry{"weekend": func(a approval.Action) (bool, error) { return a.Metadata["day"] == "sat", nil }}
	passkeys := approval.PasskeyConfig{RPID: "ops.example.com", Origins: []string{"https://ops.example.com"}}
	g := newFixture(t, func(c *approval.Config) { c.Directory = releaseDir(); c.Matchers = reg; c.Passkeys = passkeys })
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
			MaxReuse: approval.Reuse{For: 15 * time.Minute, Uses: 4}, RequirePasskey: true,
			Limit: &approval.AskLimit{MaxOpen: 3, Rate: 10, Per: 30 * time.Minute, Burst: 4}, Urgent: true,
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
	require.NoError(t, g.Gate.ReplacePolicies(ps))
	buf.Reset()
	require.NoError(t, policyfile.Encode(&buf, &policyfile.File{Policies: ps}))
	h := newFixture(t, func(c *approval.Config) { c.Directory = releaseDir(); c.Matchers = reg; c.Passkeys = passkeys })
	require.NoError(t, policyfile.Load(h.Gate, &buf))
	for _, p := range ps {
		a, _ := g.Gate.PolicyHash(p.Name)
		b, ok := h.Gate.PolicyHash(p.Name)
		require.True(t, ok)
		require.Equal(t, a, b, p.Name)
	}
}

func TestPolicyFileJSON(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	require.NoError(t, policyfile.Load(f.Gate, strings.NewReader(`{
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
	require.Equal(t, []string{"big-transfer"}, policyNames(f.Gate))
	id := f.Pending(transfer(20000))
	require.Equal(t, "big-transfer", f.Get(id).Policies[0].Name)
	require.Equal(t, approval.OutcomeApproved, mustGuard(t, f, transfer(50)).Status)
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
			err := policyfile.Load(f.Gate, strings.NewReader(tc.file))
			require.Error(t, err)
			require.ErrorIs(t, err, approval.ErrInvalidPolicy)
			var pe *policyfile.Error
			require.True(t, errors.As(err, &pe), "%T", err)
			require.Contains(t, err.Error(), tc.want)
			require.Equal(t, tc.line, pe.Line, err.Error())
			require.Equal(t, []string{"high_spend"}, policyNames(f.Gate), "nothing registered")
		})
	}
	t.Run("too large", func(t *testing.T) {
		f := newFixture(t)
		big := ok + "    reason: " + strings.Repeat("x", policyfile.MaxBytes) + "\n"
		err := policyfile.Load(f.Gate, strings.NewReader(big))
		require.ErrorIs(t, err, approval.ErrInvalidPolicy)
		require.Contains(t, err.Error(), "larger than")
	})
	t.Run("a group approver needs a directory", func(t *testing.T) {
		_, priv, err := approval.GenerateKeys()
		require.NoError(t, err)
		g, err := approval.New(approval.Config{Store: memstore.New(), SigningKey: priv})
		require.NoError(t, err)
		err = policyfile.Load(g, strings.NewReader(strings.Replace(ok, "user:alice", "group:finance", 1)))
		require.ErrorIs(t, err, approval.ErrInvalidPolicy)
		require.Contains(t, err.Error(), "needs Config.Directory")
	})
	t.Run("a missing file", func(t *testing.T) {
		f := newFixture(t)
		err := policyfile.LoadFile(f.Gate, "testdata/policies/nope.yaml")
		require.ErrorIs(t, err, os.ErrNotExist)
	})
}

// TestPolicyFileReplaceKeepsSnapshots: live requests keep the policy they
// were created under when a file replaces it.
func TestPolicyFileReplaceKeepsSnapshots(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.Pending(transfer(5000)) // high_spend: two of finance
	require.NoError(t, policyfile.Load(f.Gate, strings.NewReader(
		"policies:\n  small:\n    match: {cost: {at_least: 1, currency: usd}}\n    approvers: [user:erin]\n    required_approvals: 1\n")))
	require.Equal(t, []string{"small"}, policyNames(f.Gate))
	_, err := f.Decide(id, "alice", approval.VerdictApprove)
	require.NoError(t, err)
	r, err := f.Decide(id, "bob", approval.VerdictApprove)
	require.NoError(t, err)
	require.Equal(t, approval.StatusApproved, r.Status)
	require.Equal(t, "high_spend", r.Policies[0].Name)
	require.Equal(t, "small", f.Get(f.Pending(transfer(7000))).Policies[0].Name)
}

// TestPolicyFileNamingUnknownApprover: Load refuses a file with a
// policy naming a group the directory does not know, in a chain level, as
// an *Error at the policy, and registers none of its policies.
func TestPolicyFileNamingUnknownApprover(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	file := `version: 1
policies:
  small:
    match: {name: deploy}
    approvers: [group:finance]
    required_approvals: 1
  release:
    match: {name: release}
    chain:
      - approvers: [group:finance]
      - name: sign-off
        approvers: [role:sre, group:release-managers]
`
	err := policyfile.Load(f.Gate, strings.NewReader(file))
	require.ErrorIs(t, err, approval.ErrInvalidPolicy)
	var pfe *policyfile.Error
	require.ErrorAs(t, err, &pfe)
	require.Equal(t, "policies.release", pfe.Path)
	require.Equal(t, 8, pfe.Line)
	require.Contains(t, err.Error(), `Chain[1].Approvers[1] names group "release-managers", which the directory does not know`)
	names := func() []string {
		var out []string
		for _, p := range f.Gate.Policies() {
			out = append(out, p.Name)
		}
		return out
	}
	require.Equal(t, []string{"high_spend"}, names(), "nothing in the file is registered")

	require.NoError(t, policyfile.Load(f.Gate, strings.NewReader(strings.Replace(file, "release-managers", "finance-leads", 1))))
	require.Equal(t, []string{"release", "small"}, names())
}

func TestPolicyFileMaxReuse(t *testing.T) {
	f := newFixture(t)
	require.NoError(t, policyfile.Load(f.Gate, strings.NewReader(`
version: 1
policies:
  deploys:
    match: {name: "deploy:*"}
    approvers: [user:alice]
    required_approvals: 1
    max_reuse: {for: 30m, uses: 5}
`)))
	var got approval.Policy
	for _, p := range f.Gate.Policies() {
		if p.Name == "deploys" {
			got = p.Policy
		}
	}
	require.Equal(t, approval.Reuse{For: 30 * time.Minute, Uses: 5}, got.MaxReuse)
	for _, bad := range []string{"{for: 30m}", "{uses: 5}", "{for: 30m, uses: 1}", "{for: 30m, uses: 5, count: 2}"} {
		err := policyfile.Load(f.Gate, strings.NewReader("version: 1\npolicies:\n  deploys:\n    match: {name: \"deploy:*\"}\n    approvers: [user:alice]\n    required_approvals: 1\n    max_reuse: "+bad+"\n"))
		require.ErrorIs(t, err, approval.ErrInvalidPolicy, bad)
	}
}

func TestPolicyFileLimit(t *testing.T) {
	f := newFixture(t)
	require.NoError(t, policyfile.Load(f.Gate, strings.NewReader(`
version: 1
policies:
  agent-tools:
    match: {name: "tool:*"}
    approvers: [user:alice]
    required_approvals: 1
    limit: {max_open: 5, rate: 20, per: 1h}
`)))
	var got approval.Policy
	for _, p := range f.Gate.Policies() {
		if p.Name == "agent-tools" {
			got = p.Policy
		}
	}
	require.Equal(t, &approval.AskLimit{MaxOpen: 5, Rate: 20, Per: time.Hour}, got.Limit)
	for _, bad := range []string{"{}", "{max_open: -1}", "{burst: 3}", "{rate: 5, per: 10ms}", "{max_open: 2, every: 1h}", "5"} {
		err := policyfile.Load(f.Gate, strings.NewReader("version: 1\npolicies:\n  t:\n    match: {name: \"tool:*\"}\n    approvers: [user:alice]\n    required_approvals: 1\n    limit: "+bad+"\n"))
		require.ErrorIs(t, err, approval.ErrInvalidPolicy, bad)
	}
}

// TestLoadLocatesGateErrors: what depends on the gate (a directory to
// resolve groups, and one that knows them) is refused at the policy that
// names the group, after the whole file decoded, and nothing changes.
func TestLoadLocatesGateErrors(t *testing.T) {
	t.Parallel()
	const file = "version: 1\npolicies:\n  ok:\n    match: {name: a}\n    approvers: [user:alice]\n    required_approvals: 1\n" +
		"  grouped:\n    match: {name: b}\n    approvers: [group:finance, group:nobody]\n    required_approvals: 1\n"
	_, priv, err := approval.GenerateKeys()
	require.NoError(t, err)
	bare, err := approval.New(approval.Config{Store: memstore.New(), SigningKey: priv})
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		gate *approval.Gate
		want string
	}{
		{"no directory", bare, `policies.grouped: approval: policy "grouped": invalid policy: approver group:finance needs Config.Directory`},
		{"unknown group", newFixture(t).Gate, `policies.grouped: approval: policy "grouped": invalid policy: Approvers[1] names group "nobody", which the directory does not know`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := policyNames(tc.gate)
			err := policyfile.Load(tc.gate, strings.NewReader(file))
			require.ErrorIs(t, err, approval.ErrInvalidPolicy)
			var pe *policyfile.Error
			require.ErrorAs(t, err, &pe)
			require.Equal(t, 8, pe.Line)
			require.Equal(t, 5, pe.Column)
			require.Equal(t, "policies.grouped", pe.Path)
			require.Contains(t, err.Error(), "line 8, column 5: "+tc.want)
			var ae *approval.PolicyError
			require.ErrorAs(t, err, &ae, "the gate's error, unwrapped")
			require.Equal(t, "grouped", ae.Name)
			require.Equal(t, before, policyNames(tc.gate), "nothing registered")
		})
	}
	t.Run("Parse accepts both", func(t *testing.T) {
		f, err := policyfile.Parse(strings.NewReader(file), nil)
		require.NoError(t, err)
		require.Len(t, f.Policies, 2)
	})
}

// TestLoadDoesNotGrantDelegations: Load parses a file's delegations and
// grants none; Parse returns them for GrantDelegations.
func TestLoadDoesNotGrantDelegations(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const file = "policies:\n  p:\n    match: {name: a}\n    approvers: [group:finance]\n    required_approvals: 1\n" +
		"delegations:\n  - {from: alice, to: erin, not_after: 2027-01-01, policies: [p], reason: leave}\n"
	require.NoError(t, policyfile.Load(f.Gate, strings.NewReader(file)))
	ds, err := f.Gate.ListDelegations(f.Ctx, approval.DelegationQuery{From: "alice"})
	require.NoError(t, err)
	require.Empty(t, ds)

	pf, err := policyfile.Parse(strings.NewReader(file), nil)
	require.NoError(t, err)
	require.Equal(t, []approval.Delegation{{From: "alice", To: "erin", NotAfter: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
		Policies: []string{"p"}, Reason: "leave"}}, pf.Delegations)
	got, err := f.Gate.GrantDelegations(f.Ctx, "admin", pf.Delegations)
	require.NoError(t, err)
	require.Len(t, got, 1)
}

// TestParseCustomMatchers: {custom: NAME} resolves in the registry given
// to Parse, and in Config.Matchers for Load.
func TestParseCustomMatchers(t *testing.T) {
	t.Parallel()
	const file = "policies:\n  p:\n    match: {custom: weekend}\n    effect: deny\n"
	for _, reg := range []policyfile.MatcherRegistry{nil, {"weekday": func(approval.Action) (bool, error) { return true, nil }}} {
		_, err := policyfile.Parse(strings.NewReader(file), reg)
		require.ErrorContains(t, err, `line 3, column 21: policies.p.match.custom: invalid policy: no custom matcher "weekend"`)
	}
	weekend := func(a approval.Action) (bool, error) { return a.Metadata["day"] == "sat", nil }
	pf, err := policyfile.Parse(strings.NewReader(file), policyfile.MatcherRegistry{"weekend": weekend})
	require.NoError(t, err)
	ok, err := pf.Policies[0].Policy.Match.Match(&approval.Action{Metadata: map[string]string{"day": "sat"}})
	require.NoError(t, err)
	require.True(t, ok)

	f := newFixture(t, func(c *approval.Config) { c.Matchers = policyfile.MatcherRegistry{"weekend": weekend} })
	require.NoError(t, policyfile.Load(f.Gate, strings.NewReader(file)))
	res := mustGuard(t, f, approval.Action{Name: "x", RequestedBy: "u", Metadata: map[string]string{"day": "sat"}})
	require.Equal(t, approval.OutcomeDenied, res.Status)
}

// TestEncode: matchers are written in their canonical form, and what has
// none is an error rather than a file that would not read back.
func TestEncode(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	require.NoError(t, policyfile.Encode(&buf, &policyfile.File{Policies: []approval.NamedPolicy{{Name: "p", Policy: approval.Policy{
		Match:  approval.Any(approval.TagNone("Prod", "eu", "prod"), approval.Field("metadata.n", approval.OpIn, []any{1e21, "x", false})),
		Effect: approval.EffectDeny,
	}}}}))
	require.Equal(t, `version: 1
policies:
  p:
    match:
      any:
        - tag:
            none_of: [eu, prod]
        - field: {name: metadata.n, op: in, value: [1.0e+21, x, false]}
    effect: deny
`, buf.String())

	for name, p := range map[string]approval.Policy{
		"nil Match":     {},
		"bad glob":      {Match: approval.Name("[")},
		"nil child":     {Match: approval.All(approval.Name("x"), nil)},
		"bad When":      {Match: approval.Name("x"), Chain: []approval.Level{{Approvers: role("r"), When: approval.TagAny()}}},
		"custom, no fn": {Match: approval.Custom("weekend", nil)},
	} {
		err := policyfile.Encode(&bytes.Buffer{}, &policyfile.File{Policies: []approval.NamedPolicy{{Name: "p", Policy: p}}})
		require.ErrorIs(t, err, approval.ErrInvalidPolicy, name)
		require.ErrorContains(t, err, `approval: encode policy "p"`, name)
	}
}

// TestLoadFile names the file in its errors.
func TestLoadFile(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	path := filepath.Join(t.TempDir(), "policies.yaml")
	require.NoError(t, os.WriteFile(path, []byte("version: 2\npolicies: {}\n"), 0o600))
	err := policyfile.LoadFile(f.Gate, path)
	require.ErrorIs(t, err, approval.ErrInvalidPolicy)
	require.True(t, strings.HasPrefix(err.Error(), path+": approval: policy file: line 1, column 10: version:"), err.Error())
	require.NoError(t, os.WriteFile(path, []byte("version: 1\npolicies: {}\n"), 0o600))
	require.NoError(t, policyfile.LoadFile(f.Gate, path))
	require.Empty(t, policyNames(f.Gate), "an empty file removes every policy")
}
