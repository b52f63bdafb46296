package approval_test

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// reusable sets the fixture's policy to allow up to 3 uses within 30m.
func reusable(t *testing.T, f *fixture) {
	t.Helper()
	require.NoError(t, f.gate.SetPolicy("high_spend", approval.Policy{
		Match:             approval.CostAtLeast(1000, "USD"),
		Approvers:         []approval.Approver{approval.Group("finance")},
		RequiredApprovals: 2,
		Timeout:           24 * time.Hour,
		MaxReuse:          approval.Reuse{For: 30 * time.Minute, Uses: 3},
	}))
}

func (f *fixture) approveWith(id, who string, reuse *approval.Reuse) (*approval.Request, error) {
	return f.gate.Decide(f.ctx, id, approval.Decision{Token: f.Token(id, who, approval.VerdictApprove), Verdict: approval.VerdictApprove, Reuse: reuse})
}

// approvedFor has alice and bob approve a's new request, both granting
// reuse, and returns its ID.
func (f *fixture) approvedFor(a approval.Action, reuse approval.Reuse) string {
	f.t.Helper()
	id := f.Pending(a)
	for _, who := range []string{"alice", "bob"} {
		_, err := f.approveWith(id, who, &reuse)
		require.NoError(f.t, err)
	}
	return id
}

func TestReuseWithinTheGrant(t *testing.T) {
	f := newFixture(t)
	reusable(t, f)
	a := transfer(5000)
	id := f.Pending(a)
	_, err := f.approveWith(id, "alice", &approval.Reuse{For: 30 * time.Minute, Uses: 3})
	require.NoError(t, err)
	r, err := f.approveWith(id, "bob", &approval.Reuse{For: 10 * time.Minute, Uses: 2})
	require.NoError(t, err)
	require.Equal(t, approval.StatusApproved, r.Status)
	require.Equal(t, approval.Reuse{For: 10 * time.Minute, Uses: 2}, r.Reuse, "the narrowest grant")
	require.Equal(t, r.ResolvedAt.Add(10*time.Minute), r.ExpiresAt)
	require.Contains(t, r.Reason, "reuse: up to 2 uses within 10m0s")

	for use := 1; use <= 2; use++ {
		res, err := f.gate.Guard(f.ctx, a)
		require.NoError(t, err)
		require.Equal(t, approval.OutcomeApproved, res.Status, "use %d", use)
		require.Equal(t, id, res.RequestID)
		require.NotEmpty(t, res.Artifact)
		art, err := approval.VerifyArtifactAt(res.Artifact, a, []ed25519PublicKey{f.priv.Public().(ed25519PublicKey)}, f.clock.Now())
		require.NoError(t, err)
		require.Equal(t, 2, art.Uses, "the artifact says the approval serves two runs")
		require.Contains(t, string(res.Artifact), `"request_id":"`+id+`","uses":2,"v":1`)
		_, err = approval.VerifyArtifactAt([]byte(strings.Replace(string(res.Artifact), `"uses":2`, `"uses":9`, 1)), a,
			[]ed25519PublicKey{f.priv.Public().(ed25519PublicKey)}, f.clock.Now())
		require.ErrorIs(t, err, approval.ErrArtifactSignature)
		for _, bad := range []string{`"uses":1`, `"uses":-2`, `"uses":"2"`} {
			_, err = approval.VerifyArtifactAt([]byte(strings.Replace(string(res.Artifact), `"uses":2`, bad, 1)), a,
				[]ed25519PublicKey{f.priv.Public().(ed25519PublicKey)}, f.clock.Now())
			require.ErrorIs(t, err, approval.ErrArtifactMalformed, bad)
		}
		last := f.lastEvent()
		require.Equal(t, approval.EventApprovalConsumed, last.Type)
		require.True(t, strings.HasSuffix(last.Reason, "(use "+string(rune('0'+use))+" of 2)"), last.Reason)
	}
	require.Equal(t, approval.StatusConsumed, f.Get(id).Status)
	require.Equal(t, 2, f.Get(id).Uses)

	// Spent: the next Guard asks again.
	require.NotEqual(t, id, f.Pending(a))
	_, err = f.gate.VerifyAuditTrail(f.ctx, approval.VerifyAuditOptions{})
	require.NoError(t, err)
}

func TestReuseNeedsEveryApprover(t *testing.T) {
	f := newFixture(t)
	reusable(t, f)
	a := transfer(5000)
	id := f.Pending(a)
	_, err := f.approveWith(id, "alice", &approval.Reuse{For: 30 * time.Minute, Uses: 3})
	require.NoError(t, err)
	r, err := f.approveWith(id, "bob", nil)
	require.NoError(t, err)
	require.True(t, r.Reuse.IsZero())
	res, err := f.gate.Guard(f.ctx, a)
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeApproved, res.Status)
	require.Equal(t, approval.StatusConsumed, f.Get(id).Status, "single use")
}

func TestReuseRefused(t *testing.T) {
	f := newFixture(t)
	id := f.Pending(transfer(5000))
	grant := &approval.Reuse{For: 10 * time.Minute, Uses: 2}
	_, err := f.approveWith(id, "alice", grant)
	require.ErrorIs(t, err, approval.ErrInvalidDecision)
	require.Contains(t, err.Error(), "allow no reuse")
	require.Empty(t, f.Get(id).Votes)
	require.Equal(t, approval.EventDecisionRejected, f.lastEvent().Type)

	reusable(t, f)
	id = f.Pending(transfer(6000))
	for _, bad := range []approval.Reuse{{For: time.Hour, Uses: 2}, {For: time.Minute, Uses: 4}, {For: time.Minute, Uses: 1}, {Uses: 2}} {
		_, err := f.approveWith(id, "alice", &bad)
		require.ErrorIs(t, err, approval.ErrInvalidDecision, "%+v", bad)
	}
	_, err = f.gate.Decide(f.ctx, id, approval.Decision{Token: f.Token(id, "alice", approval.VerdictDeny), Verdict: approval.VerdictDeny, Reuse: grant})
	require.ErrorIs(t, err, approval.ErrInvalidDecision)
	require.Empty(t, f.Get(id).Votes)

	for _, bad := range []approval.Reuse{{For: time.Minute}, {Uses: 3}, {For: -time.Minute, Uses: 3}, {For: time.Minute, Uses: 1}} {
		err := f.gate.SetPolicy("other", approval.Policy{Match: approval.Name("x"), Approvers: []approval.Approver{approval.User("a")}, RequiredApprovals: 1, MaxReuse: bad})
		require.ErrorIs(t, err, approval.ErrInvalidPolicy, "%+v", bad)
	}
}

func TestReuseExpires(t *testing.T) {
	f := newFixture(t)
	reusable(t, f)
	a := transfer(5000)
	id := f.approvedFor(a, approval.Reuse{For: 10 * time.Minute, Uses: 3})
	res, err := f.gate.Guard(f.ctx, a)
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeApproved, res.Status)
	f.clock.Advance(11 * time.Minute)
	require.NotEqual(t, id, f.Pending(a))
	r := f.Get(id)
	require.Equal(t, approval.StatusExpired, r.Status)
	require.Equal(t, 1, r.Uses)
	_, err = f.gate.VerifyAuditTrail(f.ctx, approval.VerifyAuditOptions{})
	require.NoError(t, err)
}

func TestReuseConcurrentGuardsCountEveryUse(t *testing.T) {
	f := newFixture(t)
	reusable(t, f)
	a := transfer(5000)
	id := f.approvedFor(a, approval.Reuse{For: 30 * time.Minute, Uses: 3})
	var approved atomic.Int64
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			res, err := f.gate.Guard(f.ctx, a)
			if err == nil && res.Status == approval.OutcomeApproved {
				approved.Add(1)
			}
		})
	}
	wg.Wait()
	require.EqualValues(t, 3, approved.Load())
	require.Equal(t, 3, f.Get(id).Uses)
	_, err := f.gate.VerifyAuditTrail(f.ctx, approval.VerifyAuditOptions{})
	require.NoError(t, err)
}

func TestReuseForgedUsesAreReported(t *testing.T) {
	f := newFixture(t)
	reusable(t, f)
	a := transfer(5000)
	id := f.approvedFor(a, approval.Reuse{For: 30 * time.Minute, Uses: 3})
	_, err := f.gate.Guard(f.ctx, a)
	require.NoError(t, err)
	// Uses written back to 0 around the gate, to get the use again: the
	// trail holds the consumption.
	r := f.Get(id)
	require.Equal(t, 1, r.Uses)
	next := r.Clone()
	next.Version++
	next.Uses, next.Reuse.Uses = 2, 30
	require.NoError(t, f.store.Update(f.ctx, approval.Update{Request: next}))
	_, err = f.gate.VerifyAuditTrail(f.ctx, approval.VerifyAuditOptions{})
	var se *approval.AuditStateError
	require.ErrorAs(t, err, &se)
	require.Equal(t, "approval.consumed", se.Missing)
}
