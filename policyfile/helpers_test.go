package policyfile_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	fx "github.com/signoff/approval/internal/fixture"
)

// fixture is the shared harness: a gate over a memstore with the finance
// directory and the high_spend policy.
type fixture = fx.Harness

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
	return fx.NewHarness(t, mod...)
}

func transfer(amount float64) approval.Action { return fx.Transfer(amount) }

func mustGuard(t *testing.T, f *fixture, a approval.Action) approval.Result {
	t.Helper()
	res, err := f.Gate.Guard(f.Ctx, a)
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
