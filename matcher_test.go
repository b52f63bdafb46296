package approval

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/gowebpki/jcs"
	"github.com/stretchr/testify/require"
)

type matchCase struct {
	name string
	m    Matcher
	a    Action
	want bool
}

func runMatchCases(t *testing.T, tests []matchCase) {
	t.Helper()
	for _, tt := range tests {
		require.NoError(t, tt.m.check(), tt.name)
		got, err := tt.m.Match(&tt.a)
		require.NoError(t, err, tt.name)
		require.Equal(t, tt.want, got, tt.name)
	}
}

func named(n string) Action { return Action{Name: n, RequestedBy: "r"} }

func TestMatcherName(t *testing.T) {
	t.Parallel()
	runMatchCases(t, []matchCase{
		{"literal", Name("wire-transfer"), named("wire-transfer"), true},
		{"literal is whole name", Name("wire-transfer"), named("wire-transfer-2"), false},
		{"literal is not a prefix", Name("wire-transfer"), named("wire"), false},
		{"literal is case sensitive", Name("wire-transfer"), named("Wire-Transfer"), false},
		{"literal with glob-free punctuation", Name("a,b!c-d"), named("a,b!c-d"), true},
		{"star matches everything", Name("*"), named("anything:at/all"), true},
		{"star crosses ':'", Name("deploy:*"), named("deploy:production:eu"), true},
		{"star crosses '/'", Name("deploy:*"), named("deploy:prod/eu-west/1"), true},
		{"star matches empty", Name("deploy:*"), named("deploy:"), true},
		{"star keeps literal prefix", Name("deploy:*"), named("deploy"), false},
		{"star in the middle", Name("db:*:drop"), named("db:users/eu:drop"), true},
		{"star in the middle, wrong suffix", Name("db:*:drop"), named("db:users:dropped"), false},
		{"two segments", Name("*/*"), named("a/b/c"), true},
		{"question mark", Name("deploy:?"), named("deploy:x"), true},
		{"question mark is one character", Name("deploy:?"), named("deploy:xy"), false},
		{"question mark is one rune", Name("caf?"), named("café"), true},
		{"question mark crosses '/'", Name("a?b"), named("a/b"), true},
		{"class", Name("[abc]x"), named("bx"), true},
		{"class miss", Name("[abc]x"), named("dx"), false},
		{"range", Name("v[0-9]"), named("v7"), true},
		{"negated class", Name("[!a]x"), named("bx"), true},
		{"negated class miss", Name("[!a]x"), named("ax"), false},
		{"alternatives", Name("{deploy,rollback}:prod"), named("rollback:prod"), true},
		{"alternatives miss", Name("{deploy,rollback}:prod"), named("restart:prod"), false},
		{"escaped star is literal", Name(`a\*b`), named("a*b"), true},
		{"escaped star does not glob", Name(`a\*b`), named("axb"), false},
	})
}

func TestMatcherNameInvalidGlob(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"[", "{a,b", "deploy:[", "[]", "a\\"} {
		m := Name(p)
		require.Error(t, m.check(), "pattern %q", p)
		ok, err := m.Match(&Action{Name: p})
		require.Error(t, err, "pattern %q", p)
		require.False(t, ok)

		_, err = compilePolicy("p", Policy{Match: m, Approvers: []Approver{User("a")}, RequiredApprovals: 1}, false)
		require.ErrorIs(t, err, ErrInvalidPolicy, "pattern %q", p)
		require.Contains(t, err.Error(), p)
	}
}

func TestMatcherTags(t *testing.T) {
	t.Parallel()
	tagged := Action{Name: "n", RequestedBy: "r", Tags: []string{"prod", "pii"}}
	untagged := named("n")
	runMatchCases(t, []matchCase{
		{"any: one of one", TagAny("prod"), tagged, true},
		{"any: second listed", TagAny("x", "pii"), tagged, true},
		{"any: none", TagAny("x", "y"), tagged, false},
		{"any: untagged", TagAny("prod"), untagged, false},
		{"any: case-insensitive", TagAny("PROD"), tagged, true},
		{"all: every one", TagAll("pii", "prod"), tagged, true},
		{"all: subset", TagAll("prod"), tagged, true},
		{"all: one missing", TagAll("prod", "x"), tagged, false},
		{"all: untagged", TagAll("prod"), untagged, false},
		{"none: absent", TagNone("x", "y"), tagged, true},
		{"none: one present", TagNone("x", "pii"), tagged, false},
		{"none: untagged", TagNone("prod"), untagged, true},
	})
	for _, m := range []Matcher{TagAny(), TagAll(), TagNone(), TagAny("a", ""), TagAll("")} {
		require.Error(t, m.check())
	}
}

func TestMatcherTagsCopyArguments(t *testing.T) {
	t.Parallel()
	tags := []string{"prod"}
	m := TagAny(tags...)
	tags[0] = "dev"
	ok, err := m.Match(&Action{Tags: []string{"prod"}})
	require.NoError(t, err)
	require.True(t, ok, "the matcher keeps its own copy of the tags")
}

func TestMatcherCost(t *testing.T) {
	t.Parallel()
	usd := func(x float64) Action {
		return Action{Name: "n", RequestedBy: "r", Cost: &Cost{Amount: x, Currency: "USD"}}
	}
	free := Action{Name: "n", RequestedBy: "r", Cost: &Cost{}}
	noCost := named("n")
	runMatchCases(t, []matchCase{
		{"at least: equal (inclusive)", CostAtLeast(1000, "USD"), usd(1000), true},
		{"at least: above", CostAtLeast(1000, "USD"), usd(1e9), true},
		{"at least: just below", CostAtLeast(1000, "USD"), usd(999.99), false},
		{"at least: other currency", CostAtLeast(1000, "EUR"), usd(5000), false},
		{"at least: any currency", CostAtLeast(1000, ""), usd(5000), true},
		{"at least: action without currency", CostAtLeast(1000, "USD"), Action{Cost: &Cost{Amount: 5000}}, false},
		{"at least: no cost", CostAtLeast(0, ""), noCost, false},
		{"at least zero: zero cost", CostAtLeast(0, ""), free, true},
		{"below: equal (exclusive)", CostBelow(1000, "USD"), usd(1000), false},
		{"below: just below", CostBelow(1000, "USD"), usd(999.99), true},
		{"below: zero", CostBelow(1, ""), free, true},
		{"below: other currency", CostBelow(1000, "EUR"), usd(1), false},
		{"below: no cost", CostBelow(1e9, ""), noCost, false},
		{"between: lower bound inclusive", CostBetween(100, 200, "USD"), usd(100), true},
		{"between: inside", CostBetween(100, 200, "USD"), usd(150), true},
		{"between: upper bound exclusive", CostBetween(100, 200, "USD"), usd(200), false},
		{"between: below", CostBetween(100, 200, "USD"), usd(99), false},
		{"between: other currency", CostBetween(100, 200, "GBP"), usd(150), false},
		{"between: no cost", CostBetween(0, 1, ""), noCost, false},
	})
	for _, m := range []Matcher{
		CostBetween(200, 100, ""), CostBetween(100, 100, ""),
		CostAtLeast(math.NaN(), ""), CostBelow(math.NaN(), ""), CostAtLeast(math.Inf(1), ""), CostBelow(math.Inf(-1), ""),
	} {
		require.Error(t, m.check(), "%#v", m)
	}
}

func TestMatcherRisk(t *testing.T) {
	t.Parallel()
	risky := func(r Risk) Action { return Action{Name: "n", RequestedBy: "r", Risk: r} }
	runMatchCases(t, []matchCase{
		{"same level", RiskAtLeast(RiskHigh), risky(RiskHigh), true},
		{"higher level", RiskAtLeast(RiskHigh), risky(RiskCritical), true},
		{"lower level", RiskAtLeast(RiskHigh), risky(RiskMedium), false},
		{"low matches low", RiskAtLeast(RiskLow), risky(RiskLow), true},
		{"no risk never matches", RiskAtLeast(RiskLow), risky(RiskNone), false},
	})
	for _, r := range []Risk{RiskNone, Risk(5), Risk(-1)} {
		require.Error(t, RiskAtLeast(r).check(), "level %d", r)
	}
}

var errBroken = errors.New("directory down")

func constMatcher(ok bool) Matcher {
	return Custom("const", func(Action) (bool, error) { return ok, nil })
}

func TestMatcherCustom(t *testing.T) {
	t.Parallel()
	a := Action{Name: "n", RequestedBy: "r", Tags: []string{"x"}}

	got, err := constMatcher(true).Match(&a)
	require.NoError(t, err)
	require.True(t, got)
	got, err = constMatcher(false).Match(&a)
	require.NoError(t, err)
	require.False(t, got)

	var seen Action
	_, err = Custom("sees", func(x Action) (bool, error) { seen = x; return false, nil }).Match(&a)
	require.NoError(t, err)
	require.Equal(t, a, seen, "the predicate sees the action")

	_, err = Custom("broken", func(Action) (bool, error) { return true, errBroken }).Match(&a)
	require.ErrorIs(t, err, errBroken)
	require.Contains(t, err.Error(), `"broken"`, "the error names the matcher")

	got, err = Custom("panics", func(Action) (bool, error) { panic("boom") }).Match(&a)
	require.Error(t, err)
	require.False(t, got)
	require.Contains(t, err.Error(), "boom")
	require.Contains(t, err.Error(), `"panics"`)

	got, err = Custom("nil deref", func(x Action) (bool, error) { return x.Cost.Amount > 0, nil }).Match(&a)
	require.Error(t, err, "a runtime panic is recovered too")
	require.False(t, got)

	require.Error(t, Custom("", func(Action) (bool, error) { return true, nil }).check())
	require.Error(t, Custom("nil", nil).check())
}

// counter counts its calls, so short-circuiting is observable.
func counter(n *int, ok bool) Matcher {
	return Custom("counter", func(Action) (bool, error) { *n++; return ok, nil })
}

func TestMatcherCombinators(t *testing.T) {
	t.Parallel()
	yes, no := constMatcher(true), constMatcher(false)
	broken := Custom("broken", func(Action) (bool, error) { return false, errBroken })
	a := named("n")

	tests := []struct {
		name    string
		m       Matcher
		want    bool
		wantErr bool
	}{
		{"all: every child", All(yes, yes, yes), true, false},
		{"all: one fails", All(yes, no, yes), false, false},
		{"all: single", All(no), false, false},
		{"any: one matches", Any(no, yes, no), true, false},
		{"any: none match", Any(no, no), false, false},
		{"any: single", Any(yes), true, false},
		{"not: true", Not(yes), false, false},
		{"not: false", Not(no), true, false},
		{"not not", Not(Not(yes)), true, false},
		{"nested", All(Any(no, yes), Not(no)), true, false},
		{"all: error propagates", All(yes, broken), false, true},
		{"any: error propagates", Any(no, broken), false, true},
		{"not: error propagates", Not(broken), false, true},
		{"nested error propagates", Not(Any(no, All(yes, broken))), false, true},
		// Evaluation stops once the answer is known; a later error is not reached.
		{"all: stops at first false", All(no, broken), false, false},
		{"any: stops at first true", Any(yes, broken), true, false},
	}
	for _, tt := range tests {
		require.NoError(t, tt.m.check(), tt.name)
		got, err := tt.m.Match(&a)
		if tt.wantErr {
			require.ErrorIs(t, err, errBroken, tt.name)
			require.False(t, got, tt.name)
			continue
		}
		require.NoError(t, err, tt.name)
		require.Equal(t, tt.want, got, tt.name)
	}

	var n int
	_, _ = All(no, counter(&n, true)).Match(&a)
	_, _ = Any(yes, counter(&n, true)).Match(&a)
	require.Zero(t, n, "children after the deciding one are not evaluated")
	_, _ = All(yes, counter(&n, true), counter(&n, true)).Match(&a)
	_, _ = Any(no, counter(&n, false)).Match(&a)
	require.Equal(t, 3, n)

	for name, m := range map[string]Matcher{
		"empty all":     All(),
		"empty any":     Any(),
		"nil child":     All(yes, nil),
		"nil not":       Not(nil),
		"bad grandkid":  Any(no, All(Name("["))),
		"bad under not": Not(TagAny()),
	} {
		require.Error(t, m.check(), name)
		_, err := compilePolicy("p", Policy{Match: m, Approvers: []Approver{User("a")}, RequiredApprovals: 1}, false)
		require.ErrorIs(t, err, ErrInvalidPolicy, name)
	}
}

func canonicalOf(t *testing.T, m Matcher) string {
	t.Helper()
	b, err := m.appendCanonical(nil)
	require.NoError(t, err)
	// Whatever it is, it is already in RFC 8785 form.
	c, err := jcs.Transform(b)
	require.NoError(t, err)
	require.Equal(t, string(c), string(b))
	return string(b)
}

func TestMatcherCanonical(t *testing.T) {
	t.Parallel()
	c := Custom("is-weekend", func(Action) (bool, error) { return false, nil })
	tree := func() Matcher {
		return All(
			Name("deploy:*"),
			Any(TagAny("prod", "pii"), TagAll("b", "a"), TagNone("test")),
			CostAtLeast(1000, "USD"),
			CostBelow(0.5, ""),
			CostBetween(10, 20, "EUR"),
			RiskAtLeast(RiskHigh),
			Not(c),
		)
	}
	want := `{"all":[{"name":"deploy:*"},` +
		`{"any":[{"tag":{"any_of":["pii","prod"]}},{"tag":{"all_of":["a","b"]}},{"tag":{"none_of":["test"]}}]},` +
		`{"cost":{"at_least":1000,"currency":"USD"}},` +
		`{"cost":{"below":0.5}},` +
		`{"cost":{"at_least":10,"below":20,"currency":"EUR"}},` +
		`{"risk":{"at_least":"high"}},` +
		`{"not":{"custom":"is-weekend"}}]}`
	require.Equal(t, want, canonicalOf(t, tree()))
	require.Equal(t, canonicalOf(t, tree()), canonicalOf(t, tree()), "stable")

	same := [][2]Matcher{
		{TagAny("a", "b"), TagAny("b", "a")},
		{TagAny("a", "b"), TagAny("a", "b", "a")},
		{TagNone("😀", "\ufb33"), TagNone("\ufb33", "😀")},
		{CostAtLeast(5, "USD"), CostBetween(5, math.Inf(1), "USD")},
		// Two predicates with one name are one matcher to the snapshot.
		{Custom("x", nil), Custom("x", func(Action) (bool, error) { return true, nil })},
	}
	for _, p := range same {
		require.Equal(t, canonicalOf(t, p[0]), canonicalOf(t, p[1]))
	}
	different := [][2]Matcher{
		{All(Name("a"), Name("b")), All(Name("b"), Name("a"))},
		{Any(Name("a"), Name("b")), Any(Name("b"), Name("a"))},
		{All(Name("a"), Name("b")), Any(Name("a"), Name("b"))},
		{TagAny("a"), TagAll("a")},
		{TagAll("a"), TagNone("a")},
		{TagAny("a"), TagAny("a", "b")},
		{CostAtLeast(5, ""), CostBelow(5, "")},
		{CostAtLeast(5, "USD"), CostAtLeast(5, "")},
		{CostAtLeast(5, "USD"), CostAtLeast(5.01, "USD")},
		{RiskAtLeast(RiskHigh), RiskAtLeast(RiskCritical)},
		{Name("a"), Not(Name("a"))},
		{Name("a*"), Name(`a\*`)},
		{Custom("x", nil), Custom("y", nil)},
		{Name("x"), Custom("x", nil)},
	}
	for _, p := range different {
		require.NotEqual(t, canonicalOf(t, p[0]), canonicalOf(t, p[1]))
	}
}

// validPolicy is the smallest valid policy; cases change one thing.
func validPolicy() Policy {
	return Policy{Match: Name("*"), Approvers: []Approver{User("alice")}, RequiredApprovals: 1}
}

func TestPolicyValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		policy  string
		mutate  func(p *Policy)
		haveDir bool
		ok      bool
	}{
		{"minimal", "p", func(p *Policy) {}, false, true},
		{"group with directory", "p", func(p *Policy) { p.Approvers = []Approver{Group("finance")}; p.RequiredApprovals = 3 }, true, true},
		{"role with directory", "p", func(p *Policy) { p.Approvers = []Approver{Role("sre")} }, true, true},
		{"enough users", "p", func(p *Policy) {
			p.Approvers = []Approver{User("a"), User("b")}
			p.RequiredApprovals = 2
		}, false, true},
		{"escalation can supply more users", "p", func(p *Policy) {
			p.RequiredApprovals = 2
			p.Escalation = []EscalationStep{{After: time.Hour, Action: StepEscalate, To: []Approver{User("bob")}}}
		}, false, true},
		{"deny needs no approvers", "p", func(p *Policy) {
			*p = Policy{Match: Name("rm:*"), Effect: EffectDeny, Reason: "never"}
		}, false, true},
		{"self approval allowed", "p", func(p *Policy) { p.AllowSelfApproval = true }, false, true},
		{"all durations", "p", func(p *Policy) {
			p.Timeout, p.ApprovalTTL, p.OnTimeout = time.Minute, time.Second, TimeoutApprove
		}, false, true},

		{"empty name", "", func(p *Policy) {}, false, false},
		{"nil Match", "p", func(p *Policy) { p.Match = nil }, false, false},
		{"invalid matcher", "p", func(p *Policy) { p.Match = Name("[") }, false, false},
		{"RequiredApprovals 0", "p", func(p *Policy) { p.RequiredApprovals = 0 }, false, false},
		{"RequiredApprovals negative", "p", func(p *Policy) { p.RequiredApprovals = -1 }, false, false},
		{"no approvers", "p", func(p *Policy) { p.Approvers = nil }, false, false},
		{"empty approvers", "p", func(p *Policy) { p.Approvers = []Approver{} }, true, false},
		{"group without directory", "p", func(p *Policy) { p.Approvers = []Approver{Group("finance")} }, false, false},
		{"role without directory", "p", func(p *Policy) { p.Approvers = []Approver{User("a"), Role("sre")} }, false, false},
		{"escalation group without directory", "p", func(p *Policy) {
			p.Escalation = []EscalationStep{{After: time.Hour, Action: StepEscalate, To: []Approver{Group("leads")}}}
		}, false, false},
		{"approver of unknown kind", "p", func(p *Policy) { p.Approvers = []Approver{{Kind: "team", Name: "x"}} }, true, false},
		{"approver without name", "p", func(p *Policy) { p.Approvers = []Approver{User("")} }, true, false},
		{"negative timeout", "p", func(p *Policy) { p.Timeout = -time.Second }, false, false},
		{"negative approval TTL", "p", func(p *Policy) { p.ApprovalTTL = -time.Second }, false, false},
		{"negative step after", "p", func(p *Policy) {
			p.Escalation = []EscalationStep{{After: -time.Hour, Action: StepEscalate, To: []Approver{User("bob")}}}
		}, false, false},
		{"step without after", "p", func(p *Policy) {
			p.Escalation = []EscalationStep{{Action: StepEscalate, To: []Approver{User("bob")}}}
		}, false, false},
		{"escalate without to", "p", func(p *Policy) {
			p.Escalation = []EscalationStep{{After: time.Hour, Action: StepEscalate}}
		}, false, false},
		{"reminder with to", "p", func(p *Policy) {
			p.Escalation = []EscalationStep{{After: time.Hour, Action: StepReminder, To: []Approver{User("bob")}}}
		}, false, false},
		{"unknown step action", "p", func(p *Policy) {
			p.Escalation = []EscalationStep{{After: time.Hour, Action: "notify_executive", To: []Approver{User("bob")}}}
		}, false, false},
		{"steps out of order", "p", func(p *Policy) {
			p.Escalation = []EscalationStep{{After: 2 * time.Hour, Action: StepReminder}, {After: time.Hour, Action: StepReminder}}
		}, false, false},
		{"invalid escalation approver", "p", func(p *Policy) {
			p.Escalation = []EscalationStep{{After: time.Hour, Action: StepEscalate, To: []Approver{User("")}}}
		}, true, false},
		{"unknown effect", "p", func(p *Policy) { p.Effect = Effect(2) }, false, false},
		{"unknown timeout action", "p", func(p *Policy) { p.OnTimeout = TimeoutAction(7) }, false, false},
		{"deny without matcher", "p", func(p *Policy) { *p = Policy{Effect: EffectDeny} }, false, false},
		{"too few users for quorum", "p", func(p *Policy) { p.RequiredApprovals = 2 }, false, false},
		// Approvals are counted per distinct person, so listing one user
		// twice does not make a quorum of two reachable.
		{"duplicate users for quorum", "p", func(p *Policy) {
			p.Approvers = []Approver{User("alice"), User("alice")}
			p.RequiredApprovals = 2
		}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := validPolicy()
			tt.mutate(&p)
			cp, err := compilePolicy(tt.policy, p, tt.haveDir)
			if tt.ok {
				require.NoError(t, err)
				require.Len(t, cp.hash, 64)
				return
			}
			require.ErrorIs(t, err, ErrInvalidPolicy)
			require.Nil(t, cp)
			require.True(t, strings.HasPrefix(err.Error(), `approval: policy "`+tt.policy+`": `), err.Error())
		})
	}
}

func TestPolicyDefaults(t *testing.T) {
	t.Parallel()
	approvers := []Approver{User("alice")}
	esc := []EscalationStep{{After: time.Hour, Action: StepEscalate, To: []Approver{User("bob")}}}
	cp, err := compilePolicy("spend", Policy{
		Match: Name("*"), Approvers: approvers, RequiredApprovals: 1,
		Escalation: esc,
	}, false)
	require.NoError(t, err)
	require.Equal(t, DefaultTimeout, cp.def.Timeout)
	require.Equal(t, DefaultApprovalTTL, cp.def.ApprovalTTL)
	require.Equal(t, "spend", cp.def.Reason)
	require.True(t, cp.segregate, "segregation is on by default")
	require.Equal(t, MatchedPolicy{
		Name: "spend", Hash: cp.hash, Approvers: approvers, RequiredApprovals: 1,
		Escalation: esc,
	}, cp.snapshot)

	// The compiled policy owns its approver lists.
	approvers[0] = User("mallory")
	esc[0].To[0] = User("mallory")
	require.Equal(t, User("alice"), cp.def.Approvers[0])
	require.Equal(t, User("bob"), cp.def.Escalation[0].To[0])
	require.Equal(t, User("alice"), cp.snapshot.Approvers[0])

	self, err := compilePolicy("self", Policy{Match: Name("*"), Approvers: []Approver{User("a")}, RequiredApprovals: 1, AllowSelfApproval: true}, false)
	require.NoError(t, err)
	require.False(t, self.segregate)
}

func policyHash(t *testing.T, name string, p Policy) string {
	t.Helper()
	cp, err := compilePolicy(name, p, true)
	require.NoError(t, err)
	return cp.hash
}

func TestPolicyHash(t *testing.T) {
	t.Parallel()
	full := func() Policy {
		return Policy{
			Match:             All(Name("wire-*"), CostAtLeast(1000, "USD"), TagAny("a", "b")),
			Reason:            "big spend",
			Approvers:         []Approver{Group("finance"), User("cfo")},
			RequiredApprovals: 2,
			Timeout:           12 * time.Hour,
			OnTimeout:         TimeoutDeny,
			Escalation: []EscalationStep{
				{After: 4 * time.Hour, Action: StepEscalate, To: []Approver{Group("finance-leads")}},
				{After: 8 * time.Hour, Action: StepEscalate, To: []Approver{User("ceo")}},
			},
			ApprovalTTL: 30 * time.Minute,
		}
	}
	base := policyHash(t, "high_spend", full())

	for name, mutate := range map[string]func(p *Policy){
		"same definition":       func(p *Policy) {},
		"tag order in matcher":  func(p *Policy) { p.Match = All(Name("wire-*"), CostAtLeast(1000, "USD"), TagAny("b", "a")) },
		"fresh approver slices": func(p *Policy) { p.Approvers = append([]Approver(nil), p.Approvers...) },
	} {
		p := full()
		mutate(&p)
		require.Equal(t, base, policyHash(t, "high_spend", p), name)
	}

	// Defaults are applied before hashing: spelling them out changes nothing.
	implicit := Policy{Match: Name("*"), Approvers: []Approver{User("a")}, RequiredApprovals: 1}
	explicit := implicit
	explicit.Timeout, explicit.ApprovalTTL, explicit.Reason, explicit.OnTimeout = DefaultTimeout, DefaultApprovalTTL, "p", TimeoutDeny
	require.Equal(t, policyHash(t, "p", implicit), policyHash(t, "p", explicit))

	seen := map[string]string{base: "base"}
	for _, tt := range []struct {
		name   string
		policy string
		mutate func(p *Policy)
	}{
		{"name", "high_spend_2", func(p *Policy) {}},
		{"matcher", "high_spend", func(p *Policy) { p.Match = All(Name("wire-*"), CostAtLeast(1001, "USD"), TagAny("a", "b")) }},
		{"matcher child order", "high_spend", func(p *Policy) { p.Match = All(CostAtLeast(1000, "USD"), Name("wire-*"), TagAny("a", "b")) }},
		{"effect", "high_spend", func(p *Policy) { p.Effect = EffectDeny }},
		{"reason", "high_spend", func(p *Policy) { p.Reason = "bigger spend" }},
		{"approver", "high_spend", func(p *Policy) { p.Approvers[1] = User("cto") }},
		{"approver kind", "high_spend", func(p *Policy) { p.Approvers[0] = Role("finance") }},
		{"approver added", "high_spend", func(p *Policy) { p.Approvers = append(p.Approvers, User("x")) }},
		{"required approvals", "high_spend", func(p *Policy) { p.RequiredApprovals = 3 }},
		{"timeout", "high_spend", func(p *Policy) { p.Timeout = 13 * time.Hour }},
		{"on timeout", "high_spend", func(p *Policy) { p.OnTimeout = TimeoutApprove }},
		{"allow self approval", "high_spend", func(p *Policy) { p.AllowSelfApproval = true }},
		{"escalation approver", "high_spend", func(p *Policy) { p.Escalation[1].To = []Approver{User("board")} }},
		{"escalation step added", "high_spend", func(p *Policy) {
			p.Escalation = append(p.Escalation, EscalationStep{After: 9 * time.Hour, Action: StepReminder})
		}},
		{"escalation steps merged", "high_spend", func(p *Policy) {
			p.Escalation = []EscalationStep{{After: 4 * time.Hour, Action: StepEscalate, To: []Approver{Group("finance-leads"), User("ceo")}}}
		}},
		{"escalation removed", "high_spend", func(p *Policy) { p.Escalation = nil }},
		{"escalation after", "high_spend", func(p *Policy) { p.Escalation[0].After = 5 * time.Hour }},
		{"escalation action", "high_spend", func(p *Policy) { p.Escalation[1].Action = StepReassign }},
		{"escalation reason", "high_spend", func(p *Policy) { p.Escalation[1].Reason = "SLA" }},
		{"escalation channels", "high_spend", func(p *Policy) { p.Escalation[1].Channels = []string{"email"} }},
		{"chain instead", "high_spend", func(p *Policy) {
			p.Approvers, p.RequiredApprovals, p.Escalation = nil, 0, nil
			p.Chain = []Level{{Approvers: []Approver{Group("finance")}, Require: Threshold(2)}}
		}},
		{"approval TTL", "high_spend", func(p *Policy) { p.ApprovalTTL = time.Hour }},
	} {
		p := full()
		tt.mutate(&p)
		h := policyHash(t, tt.policy, p)
		prev, dup := seen[h]
		require.False(t, dup, "%s: same hash as %s", tt.name, prev)
		seen[h] = tt.name
	}
}

func TestPolicyCanonicalIsRFC8785(t *testing.T) {
	t.Parallel()
	p := Policy{
		Match:             Any(Name("deploy:*"), RiskAtLeast(RiskCritical)),
		Reason:            "q\"\\\x01<>😀",
		Approvers:         []Approver{Group("sre"), User("\u05d3\u05bc") /* NFKC of U+FB33, canonical */},
		RequiredApprovals: 2,
		Timeout:           90 * time.Minute,
		Escalation:        []EscalationStep{{After: 15 * time.Minute, Action: StepEscalate, To: []Approver{Role("oncall")}, Channels: []string{"slack"}, Reason: "SLA"}},
	}
	cp, err := compilePolicy("prod-deploys", p, true)
	require.NoError(t, err)
	got, err := appendPolicyCanonical(nil, cp.name, &cp.def)
	require.NoError(t, err)

	approvers := func(as []Approver) []map[string]string {
		out := []map[string]string{}
		for _, a := range as {
			out = append(out, map[string]string{"kind": string(a.Kind), "name": a.Name})
		}
		return out
	}
	matchJSON, err := p.Match.appendCanonical(nil)
	require.NoError(t, err)
	raw, err := json.Marshal(map[string]any{
		"allow_self_approval": false,
		"approval_ttl":        "1h0m0s",
		"approvers":           approvers(p.Approvers),
		"effect":              "require_approval",
		"escalation": []map[string]any{{"action": "escalate", "after": "15m0s", "channels": []string{"slack"},
			"reason": "SLA", "to": approvers(p.Escalation[0].To)}},
		"match":              json.RawMessage(matchJSON),
		"name":               "prod-deploys",
		"on_timeout":         "deny",
		"reason":             p.Reason,
		"required_approvals": 2,
		"timeout":            "1h30m0s",
	})
	require.NoError(t, err)
	want, err := jcs.Transform(raw)
	require.NoError(t, err)
	require.Equal(t, string(want), string(got))
}

func requireApproval(t *testing.T, name string, m Matcher) *compiledPolicy {
	t.Helper()
	cp, err := compilePolicy(name, Policy{Match: m, Approvers: []Approver{User("alice")}, RequiredApprovals: 1}, false)
	require.NoError(t, err)
	return cp
}

func denyPolicy(t *testing.T, name string, m Matcher) *compiledPolicy {
	t.Helper()
	cp, err := compilePolicy(name, Policy{Match: m, Effect: EffectDeny, Reason: name + " is never allowed"}, false)
	require.NoError(t, err)
	return cp
}

func TestEvaluateNoMatchAllocatesNothing(t *testing.T) {
	var policies []*compiledPolicy
	for i, p := range []string{
		"wire-transfer", "deploy:*", "db:*:drop", "*:production", "payroll:?",
		"[xyz]*", "{rm,delete}:*", "*secret*", "refund", "admin/*/grant",
	} {
		policies = append(policies, requireApproval(t, string(rune('a'+i)), Name(p)))
	}
	a := &Action{Name: "read:report/quarterly", RequestedBy: "user-1", Tags: []string{"finance"}}
	m := evaluate(policies, a)
	require.Empty(t, m.policies)
	require.Nil(t, m.deny)
	// AllocsPerRun counts every goroutine's allocations, and goroutines
	// other tests left behind (a gate's notifier winding down) may
	// allocate meanwhile: an allocation of evaluate's own shows in every
	// attempt, theirs seldom twice.
	allocs := math.Inf(1)
	for range 3 {
		allocs = min(allocs, testing.AllocsPerRun(100, func() { m = evaluate(policies, a) }))
	}
	require.Zero(t, allocs)
}

func TestEvaluate(t *testing.T) {
	t.Parallel()
	boom := Custom("boom", func(Action) (bool, error) { return false, errBroken })
	panics := Custom("panics", func(Action) (bool, error) { panic("oops") })
	a := &Action{Name: "wire-transfer", RequestedBy: "user-1", Cost: &Cost{Amount: 5000, Currency: "USD"}}

	t.Run("no policies", func(t *testing.T) {
		t.Parallel()
		m := evaluate(nil, a)
		require.Empty(t, m.policies)
		require.Nil(t, m.deny)
	})

	t.Run("every matching policy applies, in order", func(t *testing.T) {
		t.Parallel()
		p1 := requireApproval(t, "spend", CostAtLeast(1000, "USD"))
		p2 := requireApproval(t, "other", Name("deploy:*"))
		p3 := requireApproval(t, "wires", Name("wire-*"))
		m := evaluate([]*compiledPolicy{p1, p2, p3}, a)
		require.Equal(t, []*compiledPolicy{p1, p3}, m.policies)
		require.Equal(t, []string{"", ""}, m.errs)
		require.Nil(t, m.deny)
	})

	t.Run("custom error applies the policy", func(t *testing.T) {
		t.Parallel()
		p1 := requireApproval(t, "broken", boom)
		p2 := requireApproval(t, "panicky", panics)
		p3 := requireApproval(t, "nested", Not(Any(Name("x"), boom)))
		m := evaluate([]*compiledPolicy{p1, p2, p3}, a)
		require.Equal(t, []*compiledPolicy{p1, p2, p3}, m.policies, "fail closed")
		require.Len(t, m.errs, 3)
		require.Contains(t, m.errs[0], errBroken.Error())
		require.Contains(t, m.errs[1], "oops")
		require.Contains(t, m.errs[2], errBroken.Error())
	})

	t.Run("deny policy", func(t *testing.T) {
		t.Parallel()
		req := requireApproval(t, "spend", CostAtLeast(1000, ""))
		d1 := denyPolicy(t, "no-wires", Name("wire-*"))
		d2 := denyPolicy(t, "no-spend", CostAtLeast(1, ""))
		miss := denyPolicy(t, "no-deploys", Name("deploy:*"))
		m := evaluate([]*compiledPolicy{miss, req, d1, d2}, a)
		require.Same(t, d1, m.deny, "the first matching deny policy is recorded")
		require.Empty(t, m.denyErr)
		require.Equal(t, []*compiledPolicy{req}, m.policies, "deny policies are not approval policies")
	})

	t.Run("deny policy with failing matcher denies", func(t *testing.T) {
		t.Parallel()
		d := denyPolicy(t, "maybe", boom)
		m := evaluate([]*compiledPolicy{d}, a)
		require.Same(t, d, m.deny)
		require.Contains(t, m.denyErr, errBroken.Error())
		require.Empty(t, m.policies)
	})
}
