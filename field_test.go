package approval

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFieldMatcher(t *testing.T) {
	t.Parallel()
	a := &Action{
		Name: "deploy:prod", RequestedBy: "bob", Risk: RiskHigh, Cost: &Cost{Amount: 1500, Currency: "EUR"},
		Tags: []string{"production", "security"}, RunID: "run-7", StepID: "step-2",
		Metadata:   map[string]string{"priority": "critical", "replicas": "3", "ai_generated": "true"},
		Payload:    []byte(`{"db":{"name":"orders","rows":120000},"labels":["a","b"],"dry_run":false}`),
		Provenance: &Provenance{Source: "mcp", CreatedBy: "agent-7"},
	}
	for _, tc := range []struct {
		field string
		op    Operator
		value any
		want  bool
	}{
		{"name", OpEq, "Deploy:Prod", true},
		{"name", OpNe, "deploy:staging", true},
		{"name", OpContains, "prod", true},
		{"requested_by", OpEq, "BOB", true},
		{"requested_by", OpIn, []string{"alice", "bob"}, true},
		{"risk", OpGe, "high", true},
		{"risk", OpGt, "high", false},
		{"risk", OpLt, "critical", true},
		{"risk", OpEq, "high", true},
		{"cost", OpGe, 1500, true},
		{"cost", OpLt, 1500.5, true},
		{"cost", OpGt, 2000, false},
		{"cost.currency", OpEq, "eur", true},
		{"tags", OpContains, "Security", true},
		{"tags", OpContains, "staging", false},
		{"run_id", OpEq, "run-7", true},
		{"step_id", OpIn, []any{"step-1", "step-2"}, true},
		{"provenance.source", OpEq, "mcp", true},
		{"provenance.created_by", OpEq, "Agent-7", true},
		{"metadata.priority", OpEq, "critical", true},
		{"metadata.priority", OpIn, []string{"high", "critical"}, true},
		{"metadata.replicas", OpGe, 3, true},
		{"metadata.replicas", OpEq, 3, true},
		{"metadata.ai_generated", OpEq, true, true},
		{"metadata.missing", OpEq, "x", false},
		{"metadata.missing", OpNe, "x", true},
		{"payload.db.name", OpEq, "orders", true},
		{"payload.db.rows", OpGt, 100000, true},
		{"payload.labels", OpContains, "b", true},
		{"payload.dry_run", OpEq, false, true},
		{"payload.db.missing", OpEq, "x", false},
		{"payload.db.name.deeper", OpEq, "x", false},
	} {
		m := Field(tc.field, tc.op, tc.value)
		require.NoError(t, m.check(), "%s %s %v", tc.field, tc.op, tc.value)
		got, err := m.Match(a)
		require.NoError(t, err, "%s %s %v", tc.field, tc.op, tc.value)
		require.Equal(t, tc.want, got, "%s %s %v", tc.field, tc.op, tc.value)
	}

	// An action without the field: no match (but != matches).
	bare := &Action{Name: "x", RequestedBy: "y"}
	for _, f := range []string{"risk", "cost", "cost.currency", "tags", "run_id", "provenance.source", "payload.a"} {
		got, err := Field(f, OpEq, "low").Match(bare)
		if f == "cost" {
			got, err = Field(f, OpEq, 1).Match(bare)
		}
		require.NoError(t, err, f)
		require.False(t, got, f)
	}
}

// Comparisons the action's value cannot take are errors, so the policy
// or level applies (fail closed).
func TestFieldMatcherErrors(t *testing.T) {
	t.Parallel()
	a := &Action{Name: "x", RequestedBy: "y", Metadata: map[string]string{"priority": "critical"}, Payload: []byte("not json")}
	for _, m := range []Matcher{
		Field("metadata.priority", OpGt, 3),
		Field("payload.a", OpEq, "b"),
		Field("name", OpContains, 3),
	} {
		_, err := m.Match(a)
		require.Error(t, err)
	}
	// Construction errors are refused when the policy is set.
	for _, m := range []Matcher{
		Field("colour", OpEq, "red"),
		Field("metadata.", OpEq, "x"),
		Field("payload.a..b", OpEq, "x"),
		Field("cost", "~", 3),
		Field("cost", OpGt, "many"),
		Field("metadata.x", OpIn, "not a list"),
		Field("metadata.x", OpIn, []string{}),
		Field("metadata.x", OpEq, []int{1}),
		Field("risk", OpGe, "extreme"),
		Field("risk", OpGe, 2),
		Field("name", OpEq, "has space"),
	} {
		require.Error(t, m.check())
		_, err := compilePolicy("p", Policy{Match: m, Approvers: []Approver{User("a")}, RequiredApprovals: 1}, false)
		require.ErrorIs(t, err, ErrInvalidPolicy)
	}
}

func TestFieldMatcherCanonical(t *testing.T) {
	t.Parallel()
	b, err := Field("requested_by", OpIn, []any{"Bob", 2, true}).appendCanonical(nil)
	require.NoError(t, err)
	require.Equal(t, `{"field":{"name":"requested_by","op":"in","value":["bob",2,true]}}`, string(b))
	b, err = Field("cost", OpGe, 1000).appendCanonical(nil)
	require.NoError(t, err)
	require.Equal(t, `{"field":{"name":"cost","op":">=","value":1000}}`, string(b))
	// Spellings of one condition hash alike; different ones do not.
	h := func(m Matcher) string {
		cp, err := compilePolicy("p", Policy{Match: m, Approvers: []Approver{User("a")}, RequiredApprovals: 1}, false)
		require.NoError(t, err)
		return cp.hash
	}
	require.Equal(t, h(Field("name", OpEq, "Deploy")), h(Field("name", OpEq, "deploy")))
	require.Equal(t, h(Field("cost", OpGe, 1000)), h(Field("cost", OpGe, 1000.0)))
	require.NotEqual(t, h(Field("cost", OpGe, 1000)), h(Field("cost", OpGt, 1000)))
}
