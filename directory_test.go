package approval_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/testkit"
	"github.com/signoff/approval/memstore"
	"github.com/signoff/approval/policyfile"
)

// TestPolicyNamingUnknownApprover: a directory that lists its groups and
// roles (StaticDirectory) has a policy naming another refused as it is
// registered, wherever the policy names it, with ErrInvalidPolicy and the
// name; the policies registered before are unchanged.
func TestPolicyNamingUnknownApprover(t *testing.T) {
	t.Parallel()
	esc := func(to approval.Approver) []approval.EscalationStep {
		return []approval.EscalationStep{{After: time.Hour, Action: approval.StepEscalate, To: []approval.Approver{to}}}
	}
	finance := []approval.Approver{approval.Group("finance")}
	for _, tt := range []struct {
		name   string
		policy approval.Policy
		where  string // "" if the policy is registered
	}{
		{name: "known group, role and user", policy: approval.Policy{
			Approvers: []approval.Approver{approval.Group("finance"), approval.Role("sre"), approval.User("nobody-listed")}, RequiredApprovals: 1,
			Escalation: esc(approval.Group("finance-leads")),
		}},
		{name: "unknown group", policy: approval.Policy{
			Approvers: []approval.Approver{approval.Group("finance"), approval.Group("finanse")}, RequiredApprovals: 1,
		}, where: `Approvers[1] names group "finanse"`},
		{name: "unknown role", policy: approval.Policy{
			Approvers: []approval.Approver{approval.Role("sre-oncall")}, RequiredApprovals: 1,
		}, where: `Approvers[0] names role "sre-oncall"`},
		{name: "a group is not a role", policy: approval.Policy{
			Approvers: []approval.Approver{approval.Role("finance")}, RequiredApprovals: 1,
		}, where: `names role "finance"`},
		{name: "escalation step", policy: approval.Policy{
			Approvers: finance, RequiredApprovals: 1, Escalation: esc(approval.Group("finance-lead")),
		}, where: `Escalation[0].To[0] names group "finance-lead"`},
		{name: "chain level", policy: approval.Policy{Chain: []approval.Level{
			{Approvers: finance},
			{Approvers: []approval.Approver{approval.Role("cfo")}},
		}}, where: `Chain[1].Approvers[0] names role "cfo"`},
		{name: "chain parallel group", policy: approval.Policy{Chain: []approval.Level{
			{Logic: approval.LogicAnd, Groups: []approval.ParallelGroup{
				{Name: "money", Approvers: finance, Require: approval.RequireAny},
				{Name: "ops", Approvers: []approval.Approver{approval.Group("ops")}, Require: approval.RequireAny},
			}},
		}}, where: `Chain[0].Groups[1].Approvers[0] names group "ops"`},
		{name: "chain level escalation", policy: approval.Policy{Chain: []approval.Level{
			{Approvers: finance, Escalation: esc(approval.Role("director"))},
		}}, where: `Chain[0].Escalation[0].To[0] names role "director"`},
		{name: "deny policy names nobody", policy: approval.Policy{Effect: approval.EffectDeny}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			before, _ := f.gate.PolicyHash("high_spend")
			p := tt.policy
			p.Match = approval.Name("deploy")

			for _, register := range []func() error{
				func() error { return f.gate.SetPolicy("deploys", p) },
				func() error {
					return f.gate.ReplacePolicies([]approval.NamedPolicy{{Name: "deploys", Policy: p}})
				},
			} {
				err := register()
				if tt.where == "" {
					require.NoError(t, err)
					continue
				}
				require.ErrorIs(t, err, approval.ErrInvalidPolicy)
				require.Contains(t, err.Error(), `policy "deploys"`)
				require.Contains(t, err.Error(), tt.where+", which the directory does not know")
				_, ok := f.gate.PolicyHash("deploys")
				require.False(t, ok, "the policy is not registered")
				after, ok := f.gate.PolicyHash("high_spend")
				require.True(t, ok, "the policies registered before stay")
				require.Equal(t, before, after)
			}
		})
	}
}

// TestDynamicDirectoryPolicies: a directory that cannot list its groups
// and roles keeps the registration as it was: any name is accepted, and
// the directory is not asked.
func TestDynamicDirectoryPolicies(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *approval.Config) { c.Directory = dynamicDirectory{financeDir} })
	require.NoError(t, f.gate.SetPolicy("deploys", approval.Policy{
		Match:     approval.Name("deploy"),
		Approvers: []approval.Approver{approval.Group("resolved-later"), approval.Role("also-later")}, RequiredApprovals: 1,
	}))
	require.NoError(t, policyfile.Load(f.gate, strings.NewReader(`policies:
  release:
    match: {name: release}
    approvers: [group:ldap-only]
    required_approvals: 1
`)))
}

// listingDirectory lists what its functions return.
type listingDirectory struct {
	approval.StaticDirectory
	groups func(context.Context) ([]string, error)
}

func (d listingDirectory) GroupNames(ctx context.Context) ([]string, error) { return d.groups(ctx) }

// TestDirectoryListingFails: a directory whose listing fails or panics is
// not trusted to say a name is unknown: the policy is registered as it
// would be without the capability, and the failure logged.
func TestDirectoryListingFails(t *testing.T) {
	t.Parallel()
	for name, groups := range map[string]func(context.Context) ([]string, error){
		"error": func(context.Context) ([]string, error) { return nil, errors.New("ldap down") },
		"panic": func(context.Context) ([]string, error) { panic("listing bug") },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var log testkit.Buffer
			f := newFixture(t, func(c *approval.Config) {
				c.Directory = listingDirectory{StaticDirectory: financeDir, groups: groups}
				c.Logger = slog.New(slog.NewTextHandler(&log, nil))
			})
			require.NoError(t, f.gate.SetPolicy("deploys", approval.Policy{
				Match: approval.Name("deploy"), Approvers: []approval.Approver{approval.Group("unlisted")}, RequiredApprovals: 1,
			}))
			require.Contains(t, log.String(), "could not list")
			// Roles are still listed, and checked.
			err := f.gate.SetPolicy("deploys", approval.Policy{
				Match: approval.Name("deploy"), Approvers: []approval.Approver{approval.Role("unlisted")}, RequiredApprovals: 1,
			})
			require.ErrorIs(t, err, approval.ErrInvalidPolicy)
		})
	}
}

// TestDefaultPolicyNamingUnknownApprover: Config.Default is checked too;
// New fails with ErrInvalidConfig and ErrInvalidPolicy.
func TestDefaultPolicyNamingUnknownApprover(t *testing.T) {
	t.Parallel()
	_, priv, err := approval.GenerateKeys()
	require.NoError(t, err)
	cfg := approval.Config{
		Store: memstore.New(), SigningKey: priv, Directory: financeDir,
		Logger:  slog.New(slog.DiscardHandler),
		Default: &approval.Policy{Approvers: []approval.Approver{approval.Group("approvers")}, RequiredApprovals: 1},
	}
	_, err = approval.New(cfg)
	require.ErrorIs(t, err, approval.ErrInvalidConfig)
	require.ErrorIs(t, err, approval.ErrInvalidPolicy)
	require.Contains(t, err.Error(), `group "approvers"`)

	cfg.Default.Approvers = []approval.Approver{approval.Group("finance")}
	g, err := approval.New(cfg)
	require.NoError(t, err)
	require.NoError(t, g.Close(context.Background()))
}

// TestStaticDirectoryNames: StaticDirectory lists its groups and roles,
// sorted; the zero value lists none.
func TestStaticDirectoryNames(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	groups, err := financeDir.GroupNames(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"finance", "finance-leads"}, groups)
	roles, err := financeDir.RoleNames(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"sre"}, roles)
	groups, err = approval.StaticDirectory{}.GroupNames(ctx)
	require.NoError(t, err)
	require.Empty(t, groups)
}
