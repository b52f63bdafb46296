package approval_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/policyfile"
)

const releaseTrain = "policyfile/testdata/policies/release_train.yaml"

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
	require.NoError(t, policyfile.LoadFile(sf.gate, path))
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
		plain := sf.Pending(approval.Action{Name: "release:web:production", RequestedBy: "rm"})
		r := sf.Get(plain)
		require.Len(t, r.Policies, 1)
		require.Equal(t, "production-release", r.Policies[0].Name)
		require.Equal(t, "SRE sign-off required before releasing to production.", r.Reason)
		for _, md := range []map[string]string{{"priority": "critical"}, {"ai_generated": "true"}} {
			id := sf.Pending(approval.Action{Name: "release:api:production", RequestedBy: "rm", Metadata: md})
			require.Len(t, sf.Get(id).Policies, 2, "%v", md)
			_, err := sf.Decide(id, "sre1", approval.VerdictApprove)
			require.NoError(t, err)
			require.Equal(t, approval.StatusPending, sf.Get(id).Status)
			_, err = sf.Decide(id, "sec1", approval.VerdictApprove)
			require.NoError(t, err)
			require.Equal(t, approval.StatusApproved, sf.Get(id).Status)
		}
	})
	t.Run("chain: team lead, security when critical, all managers, director", func(t *testing.T) {
		sf := loadedFixture(t, releaseTrain)
		id := sf.Pending(approval.Action{Name: "release:web:promote", RequestedBy: "rm",
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
			_, err := sf.Decide(id, v.who, approval.VerdictApprove)
			if v.err != nil {
				require.ErrorIs(t, err, v.err, "vote %d", i)
			} else {
				require.NoError(t, err, "vote %d", i)
			}
			r := sf.Get(id)
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
		other := sf.Pending(approval.Action{Name: "release:api:promote", RequestedBy: "rm", Tags: []string{"security"}})
		require.Equal(t, []int{1}, sf.Get(other).Policies[0].Skipped)
	})
	t.Run("escalation steps of the first level", func(t *testing.T) {
		sf := loadedFixture(t, releaseTrain)
		sf.id = sf.Pending(approval.Action{Name: "release:web:promote", RequestedBy: "rm"})
		sf.tick(4 * time.Hour)
		require.Len(t, sf.eventsOf(approval.EventRequestReminded), 1)
		sf.tick(4 * time.Hour)
		require.Len(t, sf.eventsOf(approval.EventRequestEscalated), 1)
		// Escalated: a manager may decide at the first level now.
		_, err := sf.Decide(sf.id, "m1", approval.VerdictApprove)
		require.NoError(t, err)
		require.Equal(t, 2, sf.Get(sf.id).Policies[0].Progress.Level)
	})
	t.Run("auto-approve after 48h with the SLA reason", func(t *testing.T) {
		sf := loadedFixture(t, releaseTrain)
		sf.id = sf.Pending(approval.Action{Name: "release:web:promote", RequestedBy: "rm"})
		sf.tick(24 * time.Hour)
		alerts := sf.eventsOf(approval.EventRequestAlerted)
		require.Len(t, alerts, 1)
		require.Contains(t, alerts[0].Reason, "director")
		sf.tick(24 * time.Hour)
		passed := sf.eventsOf(approval.EventLevelPassed)
		require.NotEmpty(t, passed)
		require.Contains(t, passed[0].Reason, "Auto-approved due to timeout - no response within SLA")
		// auto_approve passes the policy: this level and the ones after it.
		require.Equal(t, approval.StatusApproved, sf.Get(sf.id).Status)
	})
	t.Run("parallel groups, AND", func(t *testing.T) {
		sf := loadedFixture(t, releaseTrain)
		id := sf.Pending(approval.Action{Name: "roadmap:q3", RequestedBy: "rm", Tags: []string{"stakeholder-review"}})
		for _, who := range []string{"t1", "p1"} {
			_, err := sf.Decide(id, who, approval.VerdictApprove)
			require.NoError(t, err)
			require.Equal(t, approval.StatusPending, sf.Get(id).Status)
		}
		_, err := sf.Decide(id, "p2", approval.VerdictApprove)
		require.NoError(t, err)
		require.Equal(t, approval.StatusApproved, sf.Get(id).Status)
	})
	t.Run("delegation, granted once however often the file is applied", func(t *testing.T) {
		sf := loadedFixture(t, releaseTrain, withDelegations)
		fh, err := os.Open(releaseTrain)
		require.NoError(t, err)
		defer fh.Close()
		pf, err := policyfile.Parse(fh, nil)
		require.NoError(t, err)
		require.Len(t, pf.Delegations, 1)
		got, err := sf.gate.GrantDelegations(sf.ctx, "admin", pf.Delegations)
		require.NoError(t, err)
		require.Len(t, got, 1)
		again, err := sf.gate.GrantDelegations(sf.ctx, "admin", pf.Delegations)
		require.NoError(t, err)
		require.Empty(t, again)

		id := sf.Pending(approval.Action{Name: "release:web:promote", RequestedBy: "rm"})
		_, err = sf.Decide(id, "tl1", approval.VerdictApprove)
		require.NoError(t, err)
		_, err = sf.Decide(id, "m1", approval.VerdictApprove)
		require.NoError(t, err)
		r, err := sf.Decide(id, "m3", approval.VerdictApprove) // for m2
		require.NoError(t, err)
		require.Equal(t, "m2", r.Votes[len(r.Votes)-1].OnBehalfOf)
		require.Equal(t, 3, r.Policies[0].Progress.Level)
		// Out of scope: m3 may not stand in for m2 elsewhere.
		other := sf.Pending(approval.Action{Name: "release:web:production", RequestedBy: "rm"})
		_, err = sf.Decide(other, "m3", approval.VerdictApprove)
		require.ErrorIs(t, err, approval.ErrNotEligible)
	})
}
