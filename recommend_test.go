package approval_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

func aiReview(verdict approval.Verdict, confidence float64) approval.Recommendation {
	return approval.Recommendation{By: "risk-reviewer", Verdict: verdict, Summary: "tests green, 3 files",
		Confidence: confidence, Context: map[string]string{"ci": "https://ci.example.com/run/7"}}
}

// A recommendation is shown, never counted: the request still needs its
// approvals.
func TestRecommendationIsNotAVote(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := transfer(5000)
	rec := aiReview(approval.VerdictApprove, 0.99)
	a.Recommendation = &rec
	id := f.Pending(a)
	r := f.Get(id)
	require.Nil(t, r.Action.Recommendation, "kept on the request")
	require.Len(t, r.Recommendations, 1)
	require.Equal(t, "risk-reviewer", r.Recommendations[0].By)
	require.Equal(t, f.clock.Now(), r.Recommendations[0].At)
	require.Empty(t, r.Votes)
	require.Contains(t, eventTypes(f.events()), approval.EventRequestRecommended)

	r, err := f.gate.Recommend(f.ctx, id, "agent-runtime", aiReview(approval.VerdictDeny, 0.6))
	require.NoError(t, err)
	require.Equal(t, approval.StatusPending, r.Status, "a deny recommendation denies nothing")
	require.Len(t, r.Recommendations, 2)
	ev := f.lastEvent()
	require.Equal(t, approval.EventRequestRecommended, ev.Type)
	require.Equal(t, "agent-runtime", ev.Actor)
	require.Equal(t, "risk-reviewer recommends deny (confidence 0.6): tests green, 3 files", ev.Reason)
	_, err = f.Decide(id, "alice", approval.VerdictApprove)
	require.NoError(t, err)
	r, err = f.Decide(id, "bob", approval.VerdictApprove)
	require.NoError(t, err)
	require.Equal(t, approval.StatusApproved, r.Status)
	require.Len(t, r.Votes, 2)
}

// A policy may let a recommendation to approve pass it, below a risk
// level and above a confidence only.
func TestRecommendationAutoApprovesBelowARisk(t *testing.T) {
	t.Parallel()
	policy := approval.Policy{Match: approval.Name("deploy:*"), Approvers: []approval.Approver{approval.Group("finance")}, RequiredApprovals: 1,
		RecommendationApprovesBelow: approval.RiskHigh, RecommendationMinConfidence: 0.9}
	for _, tc := range []struct {
		name       string
		risk       approval.Risk
		verdict    approval.Verdict
		confidence float64
		approved   bool
	}{
		{"low risk, confident", approval.RiskLow, approval.VerdictApprove, 0.95, true},
		{"medium risk, exactly confident enough", approval.RiskMedium, approval.VerdictApprove, 0.9, true},
		{"high risk", approval.RiskHigh, approval.VerdictApprove, 1, false},
		{"no risk given", approval.RiskNone, approval.VerdictApprove, 1, false},
		{"not confident enough", approval.RiskLow, approval.VerdictApprove, 0.89, false},
		{"a deny recommendation", approval.RiskLow, approval.VerdictDeny, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			require.NoError(t, f.gate.SetPolicy("deploys", policy))
			action := approval.Action{Name: "deploy:web", RequestedBy: "ci", Risk: tc.risk}

			// Attached by Guard: approved at once, or pending.
			withRec := action
			rec := aiReview(tc.verdict, tc.confidence)
			withRec.Recommendation = &rec
			res, err := f.gate.Guard(f.ctx, withRec)
			require.NoError(t, err)
			if tc.approved {
				require.Equal(t, approval.OutcomeApproved, res.Status)
				require.Equal(t, "approved on the recommendation of risk-reviewer", res.Reason)
				var passed string
				for _, e := range f.events() {
					if e.Type == approval.EventLevelPassed {
						passed = e.Reason
					}
				}
				require.Contains(t, passed, "policy deploys: passed on the recommendation of risk-reviewer (approve, confidence")
				require.Empty(t, f.Get(res.RequestID).Votes, "no vote was cast")
				return
			}
			require.Equal(t, approval.OutcomePending, res.Status)
			// Attached later: no different.
			r, err := f.gate.Recommend(f.ctx, res.RequestID, "agent", rec)
			require.NoError(t, err)
			require.Equal(t, approval.StatusPending, r.Status)
		})
	}
	// Attached later to a request it qualifies for: approved then.
	f := newFixture(t)
	require.NoError(t, f.gate.SetPolicy("deploys", policy))
	id := f.Pending(approval.Action{Name: "deploy:web", RequestedBy: "ci", Risk: approval.RiskLow})
	r, err := f.gate.Recommend(f.ctx, id, "agent", aiReview(approval.VerdictApprove, 0.97))
	require.NoError(t, err)
	require.Equal(t, approval.StatusApproved, r.Status)
	require.Equal(t, approval.EventRequestApproved, f.lastEvent().Type)
	_, err = f.gate.Recommend(f.ctx, id, "agent", aiReview(approval.VerdictApprove, 0.97))
	require.ErrorIs(t, err, approval.ErrNotPending)
}

// A recommendation passes only the policies that allow it.
func TestRecommendationLeavesOtherPolicies(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	require.NoError(t, f.gate.SetPolicy("deploys", approval.Policy{Match: approval.Name("deploy:*"), Approvers: []approval.Approver{approval.Group("finance")},
		RequiredApprovals: 1, RecommendationApprovesBelow: approval.RiskCritical}))
	require.NoError(t, f.gate.SetPolicy("sre", approval.Policy{Match: approval.Name("deploy:*"), Approvers: []approval.Approver{approval.Role("sre")}, RequiredApprovals: 1}))
	a := approval.Action{Name: "deploy:web", RequestedBy: "ci", Risk: approval.RiskLow}
	rec := aiReview(approval.VerdictApprove, 1)
	a.Recommendation = &rec
	id := f.Pending(a)
	r := f.Get(id)
	require.Equal(t, 1, r.Policies[0].Progress.Level, "deploys passed")
	require.Zero(t, r.Policies[1].Progress.Level)
	r, err := f.Decide(id, "sam", approval.VerdictApprove)
	require.NoError(t, err)
	require.Equal(t, approval.StatusApproved, r.Status)
}

func TestRecommendationValidation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.Pending(transfer(5000))
	for name, rec := range map[string]approval.Recommendation{
		"no by":           {Verdict: approval.VerdictApprove},
		"no verdict":      {By: "x"},
		"both":            {By: "x", Verdict: approval.VerdictBoth},
		"confidence high": {By: "x", Verdict: approval.VerdictApprove, Confidence: 1.5},
		"confidence neg":  {By: "x", Verdict: approval.VerdictApprove, Confidence: -0.1},
		"bad summary":     {By: "x", Verdict: approval.VerdictApprove, Summary: "\xff"},
	} {
		_, err := f.gate.Recommend(f.ctx, id, "agent", rec)
		require.ErrorIs(t, err, approval.ErrInvalidDecision, name)
		a := transfer(5001)
		a.Recommendation = &rec
		_, err = f.gate.Guard(f.ctx, a)
		require.ErrorIs(t, err, approval.ErrInvalidAction, name)
	}
	for range 16 {
		_, err := f.gate.Recommend(f.ctx, id, "agent", aiReview(approval.VerdictDeny, 0.5))
		require.NoError(t, err)
	}
	_, err := f.gate.Recommend(f.ctx, id, "agent", aiReview(approval.VerdictDeny, 0.5))
	require.ErrorIs(t, err, approval.ErrInvalidDecision, "at most 16 per request")

	err = f.gate.SetPolicy("p", approval.Policy{Match: approval.Name("*"), Approvers: []approval.Approver{approval.User("a")}, RequiredApprovals: 1,
		RecommendationApprovesBelow: approval.RiskHigh, RecommendationMinConfidence: 2})
	require.ErrorIs(t, err, approval.ErrInvalidPolicy)
}
