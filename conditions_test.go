package approval_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

func TestApproveWithConditions(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := transfer(5000)
	a.Constraints = []string{"max_amount <= 5000", "window <= 2h"}
	id := f.Pending(a)

	// A widening is refused, audited, and changes nothing.
	_, err := f.gate.Decide(f.ctx, id, approval.Decision{
		Token: f.Token(id, "alice", approval.VerdictApprove), Verdict: approval.VerdictApprove,
		Conditions: []string{"max_amount <= 9000"},
	})
	require.ErrorIs(t, err, approval.ErrInvalidCondition)
	require.ErrorIs(t, err, approval.ErrInvalidDecision)
	require.Empty(t, f.Get(id).Votes)
	ev := f.lastEvent()
	require.Equal(t, approval.EventDecisionRejected, ev.Type)
	require.Contains(t, ev.Reason, "widens")

	// Conditions come with an approval only.
	_, err = f.gate.Decide(f.ctx, id, approval.Decision{
		Token: f.Token(id, "alice", approval.VerdictDeny), Verdict: approval.VerdictDeny,
		Conditions: []string{"window <= 1h"},
	})
	require.ErrorIs(t, err, approval.ErrInvalidDecision)

	_, err = f.gate.Decide(f.ctx, id, approval.Decision{
		Token: f.Token(id, "alice", approval.VerdictApprove), Verdict: approval.VerdictApprove,
		Conditions: []string{"max_amount <= 2500", "window  <= 30m"},
	})
	require.NoError(t, err)
	ev = f.lastEvent()
	require.Equal(t, approval.EventDecisionApprove, ev.Type)
	require.Equal(t, []string{"max_amount <= 2500", "window <= 30m"}, ev.Conditions)
	_, err = f.gate.Decide(f.ctx, id, approval.Decision{
		Token: f.Token(id, "bob", approval.VerdictApprove), Verdict: approval.VerdictApprove,
		Conditions: []string{"window <= 30m", "dry_run = false"},
	})
	require.NoError(t, err)
	_, err = f.gate.VerifyAuditTrail(f.ctx, approval.VerifyAuditOptions{})
	require.NoError(t, err, "conditions are sealed in the chain")

	want := []string{"max_amount <= 2500", "window <= 30m", "dry_run = false"}
	res, err := f.gate.Guard(f.ctx, a)
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeApproved, res.Status)
	require.Equal(t, want, res.Conditions)
	got, err := approval.VerifyArtifactAt(res.Artifact, a, f.pub(), f.clock.Now())
	require.NoError(t, err)
	require.Equal(t, want, got.Conditions)
	again, err := f.gate.Artifact(f.ctx, id)
	require.NoError(t, err)
	require.Equal(t, res.Artifact, again)

	// The conditions are signed: dropping or loosening one breaks it.
	for _, edit := range [][2]string{
		{`"max_amount <= 2500",`, ``},
		{`max_amount <= 2500`, `max_amount <= 5000`},
	} {
		bad := strings.Replace(string(res.Artifact), edit[0], edit[1], 1)
		require.NotEqual(t, string(res.Artifact), bad)
		_, err := approval.VerifyArtifactAt([]byte(bad), a, f.pub(), f.clock.Now())
		require.ErrorIs(t, err, approval.ErrArtifactSignature, edit[0])
	}
	// An empty list is not a spelling the gate writes.
	bad := strings.Replace(string(res.Artifact), `"conditions":["max_amount <= 2500","window <= 30m","dry_run = false"]`, `"conditions":[]`, 1)
	_, err = approval.VerifyArtifactAt([]byte(bad), a, f.pub(), f.clock.Now())
	require.ErrorIs(t, err, approval.ErrArtifactMalformed)
}
