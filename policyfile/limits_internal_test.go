package policyfile

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// TestLimitsAreTheRoots pins the decoder's bounds on a chain to the
// approval package's: a policy at each bound validates, one past it does
// not, so the decoder never refuses what the gate would register.
func TestLimitsAreTheRoots(t *testing.T) {
	t.Parallel()
	user := []approval.Approver{approval.User("a")}
	levels := func(n int) approval.Policy {
		p := approval.Policy{Match: approval.Name("x")}
		for range n {
			p.Chain = append(p.Chain, approval.Level{Approvers: user})
		}
		return p
	}
	steps := func(n int) approval.Policy {
		p := approval.Policy{Match: approval.Name("x"), Approvers: user, RequiredApprovals: 1}
		for i := range n {
			p.Escalation = append(p.Escalation, approval.EscalationStep{After: time.Duration(i+1) * time.Minute, Action: approval.StepReminder})
		}
		return p
	}
	groups := func(n int) approval.Policy {
		l := approval.Level{}
		for i := range n {
			l.Groups = append(l.Groups, approval.ParallelGroup{Name: "g" + strconv.Itoa(i), Approvers: user})
		}
		return approval.Policy{Match: approval.Name("x"), Chain: []approval.Level{l}}
	}
	for _, tc := range []struct {
		name  string
		limit int
		make  func(int) approval.Policy
	}{
		{"chain levels", maxChainLevels, levels},
		{"escalation steps", maxSteps, steps},
		{"parallel groups", maxGroups, groups},
	} {
		require.NoError(t, approval.NamedPolicy{Name: "p", Policy: tc.make(tc.limit)}.Validate(), tc.name)
		require.ErrorIs(t, approval.NamedPolicy{Name: "p", Policy: tc.make(tc.limit + 1)}.Validate(), approval.ErrInvalidPolicy, tc.name)
	}
}
