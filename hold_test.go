package approval_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// TestDenialIsHeard: after a person denies, a Guard of the identical action
// returns that denial (request ID and reason) instead of opening a new
// request and paging the approvers again, until the hold ends.
func TestDenialIsHeard(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := transfer(5000)
	id := f.Pending(a)
	_, err := f.gate.Decide(f.ctx, id, approval.Decision{
		Token: f.Token(id, "bob", approval.VerdictDeny), Verdict: approval.VerdictDeny, Reason: "unknown payee",
	})
	require.NoError(t, err)
	require.Equal(t, f.clock.Now().Add(approval.DefaultDenialHold), f.Get(id).HoldUntil)

	for range 3 {
		f.clock.Advance(10 * time.Minute)
		res, err := f.gate.Guard(f.ctx, a)
		require.NoError(t, err)
		require.Equal(t, approval.Result{Status: approval.OutcomeDenied, RequestID: id, Reason: "denied by bob: unknown payee"}, res)
	}
	page, err := f.gate.List(f.ctx, approval.RequestQuery{})
	require.NoError(t, err)
	require.Len(t, page.Requests, 1, "no new request while the denial holds")
	last := f.lastEvent()
	require.Equal(t, approval.EventRequestDeduplicated, last.Type)
	require.Equal(t, id, last.RequestID)
	require.Contains(t, last.Reason, "held: denied")

	// Another action (another payload) is not held.
	b := transfer(5000)
	b.Payload = []byte(`{"to":"elsewhere"}`)
	require.NotEqual(t, id, f.Pending(b))

	// When the hold ends, asking again opens a new request.
	f.clock.Advance(31 * time.Minute)
	again := f.Pending(a)
	require.NotEqual(t, id, again)
}

func TestTimeoutIsHeld(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *approval.Config) { c.DenialHold = 5 * time.Minute })
	a := transfer(5000)
	id := f.Pending(a)
	f.clock.Advance(25 * time.Hour)
	n, err := f.gate.Tick(f.ctx, 0)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	res, err := f.gate.Guard(f.ctx, a)
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeTimedOut, res.Status)
	require.Equal(t, id, res.RequestID)
	f.clock.Advance(5 * time.Minute)
	require.NotEqual(t, id, f.Pending(a), "Config.DenialHold sets the window")
}

func TestHoldOnlyForHumanAnswers(t *testing.T) {
	t.Parallel()
	t.Run("disabled", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, func(c *approval.Config) { c.DenialHold = -1 })
		id := f.Pending(transfer(5000))
		_, err := f.Decide(id, "bob", approval.VerdictDeny)
		require.NoError(t, err)
		require.True(t, f.Get(id).HoldUntil.IsZero())
		require.NotEqual(t, id, f.Pending(transfer(5000)))
	})
	t.Run("cancelled", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		id := f.Pending(transfer(5000))
		_, err := f.gate.Cancel(f.ctx, id, "user-1", "typo")
		require.NoError(t, err)
		require.NotEqual(t, id, f.Pending(transfer(5000)), "a cancellation is no one's no")
	})
	t.Run("timeout approves", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		require.NoError(t, f.gate.SetPolicy("high_spend", approval.Policy{
			Match: approval.CostAtLeast(1000, "USD"), Approvers: []approval.Approver{approval.Group("finance")},
			RequiredApprovals: 2, Timeout: time.Hour, OnTimeout: approval.TimeoutApprove,
		}))
		id := f.Pending(transfer(5000))
		f.clock.Advance(2 * time.Hour)
		_, err := f.gate.Tick(f.ctx, 0)
		require.NoError(t, err)
		res, err := f.gate.Guard(f.ctx, transfer(5000))
		require.NoError(t, err)
		require.NotEmpty(t, res.Artifact)
		art, err := approval.VerifyArtifactAt(res.Artifact, transfer(5000), f.pub(), f.clock.Now())
		require.NoError(t, err)
		require.Equal(t, "approved on timeout", art.Reason)
		require.Empty(t, art.Votes, "nobody voted")
		res.Artifact = nil
		require.Equal(t, approval.Result{Status: approval.OutcomeApproved, RequestID: id, Reason: "approved on timeout"}, res)
	})
}
