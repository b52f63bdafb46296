package policyfile_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	fx "github.com/signoff/approval/internal/fixture"
	"github.com/signoff/approval/internal/testkit"
	"github.com/signoff/approval/memstore"
)

// fixture is a gate over a memstore with a finance policy: transfers of
// 1,000 USD or more need two approvals from the finance group.
type fixture struct {
	t    *testing.T
	gate *approval.Gate
	ctx  context.Context
}

// financeDir lists its groups and roles, so the gate refuses policies
// naming others.
var financeDir = fx.FinanceDirectory()

// onDemand hides the listing capabilities of the Directory it wraps, as a
// directory that resolves groups on demand (LDAP) has none: the gate
// accepts any group or role name.
type onDemand struct{ approval.Directory }

// releaseDir resolves the release train's roles, on demand.
func releaseDir() approval.Directory {
	return onDemand{approval.StaticDirectory{Roles: map[string][]string{
		"team_lead": {"tl1", "tl2"}, "manager": {"m1", "m2"}, "director": {"d1"},
		"tech_lead": {"t1", "t2"}, "product_manager": {"p1", "p2"}, "security_team": {"s1", "s2"},
		"sre_lead": {"sre1"}, "security_lead": {"sec1"},
	}}}
}

func newFixture(t *testing.T, mod ...func(*approval.Config)) *fixture {
	t.Helper()
	_, priv, err := approval.GenerateKeys()
	require.NoError(t, err)
	clk := testkit.NewClock()
	f := &fixture{t: t, ctx: context.Background()}
	cfg := approval.Config{
		Store:      memstore.New(),
		SigningKey: priv,
		Directory:  financeDir,
		Now:        clk.Now,
		Logger:     slog.New(slog.DiscardHandler),
	}
	for _, m := range mod {
		m(&cfg)
	}
	f.gate = fx.NewGate(t, cfg, fx.HighSpend())
	return f
}

func transfer(amount float64) approval.Action { return fx.Transfer(amount) }

// pending guards a and requires a pending result.
func (f *fixture) pending(a approval.Action) string {
	f.t.Helper()
	res, err := f.gate.Guard(f.ctx, a)
	require.NoError(f.t, err)
	require.Equal(f.t, approval.OutcomePending, res.Status)
	require.NotEmpty(f.t, res.RequestID)
	return res.RequestID
}

func (f *fixture) decide(id, who string, v approval.Verdict) (*approval.Request, error) {
	return fx.Decide(f.gate, id, who, approval.Decision{Verdict: v})
}

func (f *fixture) get(id string) *approval.Request {
	f.t.Helper()
	r, err := f.gate.Get(f.ctx, id)
	require.NoError(f.t, err)
	return r
}

func mustGuard(t *testing.T, f *fixture, a approval.Action) approval.Result {
	t.Helper()
	res, err := f.gate.Guard(f.ctx, a)
	require.NoError(t, err)
	return res
}

func policyNames(g *approval.Gate) []string {
	var out []string
	for _, p := range g.Policies() {
		out = append(out, p.Name)
	}
	return out
}

func role(n string) []approval.Approver { return []approval.Approver{approval.Role(n)} }
