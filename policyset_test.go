package approval_test

import (
	"log/slog"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/memstore"
)

// TestPolicyError: each way of registering a policy says which one it
// refused with a *PolicyError, and the message is the one it always was.
func TestPolicyError(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ok := approval.Policy{Match: approval.Name("x"), Approvers: []approval.Approver{approval.User("a")}, RequiredApprovals: 1}
	unreachable := ok
	unreachable.RequiredApprovals = 3
	unknown := ok
	unknown.Approvers = []approval.Approver{approval.Group("finanse")}
	for _, tc := range []struct {
		name, policy, want string
		register           func() error
	}{
		{"SetPolicy, invalid", "p", `approval: policy "p": invalid policy: 1 distinct named users can never reach RequiredApprovals 3`,
			func() error { return f.gate.SetPolicy("p", unreachable) }},
		{"SetPolicy, unknown group", "p", `approval: policy "p": invalid policy: Approvers[0] names group "finanse", which the directory does not know`,
			func() error { return f.gate.SetPolicy("p", unknown) }},
		{"ReplacePolicies, the second invalid", "q", `approval: policy "q": invalid policy: 1 distinct named users`,
			func() error {
				return f.gate.ReplacePolicies([]approval.NamedPolicy{{Name: "p", Policy: ok}, {Name: "q", Policy: unreachable}})
			}},
		{"ReplacePolicies, unknown group", "q", `approval: policy "q": invalid policy: Approvers[0] names group "finanse"`,
			func() error {
				return f.gate.ReplacePolicies([]approval.NamedPolicy{{Name: "p", Policy: ok}, {Name: "q", Policy: unknown}})
			}},
		{"ReplacePolicies, twice", "p", `approval: policy "p": invalid policy: registered twice`,
			func() error {
				return f.gate.ReplacePolicies([]approval.NamedPolicy{{Name: "p", Policy: ok}, {Name: "p", Policy: ok}})
			}},
		{"Validate", "p", `approval: policy "p": invalid policy: 1 distinct named users`,
			func() error { return approval.NamedPolicy{Name: "p", Policy: unreachable}.Validate() }},
		{"Validate, a bad matcher", "p", `approval: policy "p": invalid policy: name glob "[": `,
			func() error {
				p := ok
				p.Match = approval.Name("[")
				return approval.NamedPolicy{Name: "p", Policy: p}.Validate()
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.register()
			require.ErrorIs(t, err, approval.ErrInvalidPolicy)
			var pe *approval.PolicyError
			require.ErrorAs(t, err, &pe)
			require.Equal(t, tc.policy, pe.Name)
			require.Contains(t, err.Error(), tc.want)
			require.Equal(t, []string{"high_spend"}, registered(f.gate), "nothing registered")
		})
	}

	t.Run("Config.Default", func(t *testing.T) {
		_, priv, err := approval.GenerateKeys()
		require.NoError(t, err)
		_, err = approval.New(approval.Config{Store: memstore.New(), SigningKey: priv, Default: &unreachable})
		require.ErrorIs(t, err, approval.ErrInvalidConfig)
		var pe *approval.PolicyError
		require.ErrorAs(t, err, &pe)
		require.Equal(t, "default", pe.Name)
	})
}

// TestNamedPolicyValidate: Validate checks the policy itself, as a gate
// with a directory that cannot list its names would, and registers nothing.
func TestNamedPolicyValidate(t *testing.T) {
	t.Parallel()
	byGroup := approval.Policy{Match: approval.Name("x"), Approvers: []approval.Approver{approval.Group("anyone")}, RequiredApprovals: 1}
	require.NoError(t, approval.NamedPolicy{Name: "p", Policy: byGroup}.Validate(), "a group needs a directory, which Validate assumes")
	require.Error(t, approval.NamedPolicy{Name: "", Policy: byGroup}.Validate(), "a policy has a name")
	require.Error(t, approval.NamedPolicy{Name: "p"}.Validate(), "and a Match")

	// A gate without a directory refuses the group; one that lists its
	// groups, the unknown one.
	_, priv, err := approval.GenerateKeys()
	require.NoError(t, err)
	g, err := approval.New(approval.Config{Store: memstore.New(), SigningKey: priv, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	require.ErrorContains(t, g.SetPolicy("p", byGroup), "needs Config.Directory")
	require.ErrorContains(t, newFixture(t).gate.SetPolicy("p", byGroup), `names group "anyone", which the directory does not know`)
	require.Empty(t, g.Policies())
}

func registered(g *approval.Gate) []string {
	var out []string
	for _, p := range g.Policies() {
		out = append(out, p.Name)
	}
	return out
}

// TestValidateMatcher: the construction errors of each matcher, reported
// as SetPolicy reports them, and none for a valid tree.
func TestValidateMatcher(t *testing.T) {
	t.Parallel()
	weekend := func(approval.Action) (bool, error) { return true, nil }
	require.NoError(t, approval.ValidateMatcher(approval.All(approval.Name("deploy:*"), approval.TagAny("prod"),
		approval.Not(approval.CostBetween(1, 2, "usd")), approval.RiskAtLeast(approval.RiskHigh),
		approval.Field("metadata.a", approval.OpIn, []any{"x", 1}), approval.Custom("weekend", weekend))))
	for _, tc := range []struct {
		name string
		m    approval.Matcher
		want string
	}{
		{"nil", nil, "nil matcher"},
		{"bad glob", approval.Name("["), `name glob "["`},
		{"name with a space", approval.Name("deploy prod"), `name glob "deploy prod"`},
		{"no tags", approval.TagAny(), "tag matcher without tags"},
		{"empty tag", approval.TagAll(""), "tag matcher with an empty tag"},
		{"empty cost range", approval.CostBetween(5, 5, ""), "empty range"},
		{"NaN cost", approval.CostAtLeast(math.NaN(), ""), "empty range"},
		{"bad currency", approval.CostAtLeast(5, "dollars"), "cost matcher: currency"},
		{"unknown risk", approval.RiskAtLeast(approval.RiskNone), "unknown level"},
		{"unknown field", approval.Field("nope", approval.OpEq, 1), "nope"},
		{"unknown operator", approval.Field("name", "~", "x"), "unknown operator"},
		{"custom without a name", approval.Custom("", weekend), "custom matcher without a name"},
		{"custom without a function", approval.Custom("weekend", nil), `custom matcher "weekend" without a function`},
		{"all without children", approval.All(), "all matcher without children"},
		{"nil child", approval.Any(approval.Name("x"), nil), "any matcher with a nil child"},
		{"not nil", approval.Not(nil), "not matcher with a nil child"},
		{"deep", approval.Not(approval.All(approval.Name("x"), approval.Not(approval.Name("[")))), `name glob "["`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := approval.ValidateMatcher(tc.m)
			require.ErrorIs(t, err, approval.ErrInvalidPolicy)
			require.Contains(t, err.Error(), tc.want)
			_, err = approval.CanonicalMatcher(tc.m)
			require.ErrorIs(t, err, approval.ErrInvalidPolicy, "no canonical form")
		})
	}
}

// TestCanonicalMatcher: a matcher described as data is its canonical form,
// the bytes its policy's hash covers: policies whose matchers describe
// alike hash alike.
func TestCanonicalMatcher(t *testing.T) {
	t.Parallel()
	weekend := func(approval.Action) (bool, error) { return true, nil }
	tree := approval.All(
		approval.Name("Deploy:*"),
		approval.Any(approval.TagAny("prod", "PII"), approval.TagAll("b", "a", "b"), approval.TagNone("test")),
		approval.CostAtLeast(1000, "usd"), approval.CostBelow(0.5, ""), approval.CostBetween(10, 1e21, "EUR"),
		approval.RiskAtLeast(approval.RiskHigh),
		approval.Field("payload.env", approval.OpIn, []any{"prod", 3.25, true}),
		approval.Not(approval.Custom("is-weekend", weekend)),
	)
	b, err := approval.CanonicalMatcher(tree)
	require.NoError(t, err)
	require.Equal(t, `{"all":[{"name":"deploy:*"},`+
		`{"any":[{"tag":{"any_of":["pii","prod"]}},{"tag":{"all_of":["a","b"]}},{"tag":{"none_of":["test"]}}]},`+
		`{"cost":{"at_least":1000,"currency":"USD"}},{"cost":{"below":0.5}},{"cost":{"at_least":10,"below":1e+21,"currency":"EUR"}},`+
		`{"risk":{"at_least":"high"}},`+
		`{"field":{"name":"payload.env","op":"in","value":["prod",3.25,true]}},`+
		`{"not":{"custom":"is-weekend"}}]}`, string(b))

	hash := func(m approval.Matcher) string {
		f := newFixture(t)
		require.NoError(t, f.gate.SetPolicy("p", approval.Policy{Match: m, Effect: approval.EffectDeny}))
		h, _ := f.gate.PolicyHash("p")
		return h
	}
	alike, other := approval.TagAny("PII", "prod", "pii"), approval.TagAny("pii")
	ba, err := approval.CanonicalMatcher(alike)
	require.NoError(t, err)
	bo, err := approval.CanonicalMatcher(other)
	require.NoError(t, err)
	require.Equal(t, `{"tag":{"any_of":["pii","prod"]}}`, string(ba))
	require.Equal(t, hash(approval.TagAny("prod", "pii")), hash(alike))
	require.NotEqual(t, string(ba), string(bo))
	require.NotEqual(t, hash(alike), hash(other))
}

// TestGateCustomMatcher: the gate hands out Config.Matchers by name, as
// Custom matchers that call the host's predicate.
func TestGateCustomMatcher(t *testing.T) {
	t.Parallel()
	called := 0
	f := newFixture(t, func(c *approval.Config) {
		c.Matchers = map[string]func(approval.Action) (bool, error){
			"weekend": func(a approval.Action) (bool, error) { called++; return a.Metadata["day"] == "sat", nil },
			"broken":  nil,
		}
	})
	m, ok := f.gate.CustomMatcher("weekend")
	require.True(t, ok)
	got, err := m.Match(&approval.Action{Metadata: map[string]string{"day": "sat"}})
	require.NoError(t, err)
	require.True(t, got)
	require.Equal(t, 1, called)
	b, err := approval.CanonicalMatcher(m)
	require.NoError(t, err)
	require.Equal(t, `{"custom":"weekend"}`, string(b))

	for _, name := range []string{"weekday", "broken", ""} {
		m, ok := f.gate.CustomMatcher(name)
		require.False(t, ok, name)
		require.Nil(t, m, name)
	}
}
