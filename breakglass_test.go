package approval_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

func breakGlassFixture(t *testing.T, second bool) (*fixture, *recorder) {
	rec := &recorder{}
	f := newFixture(t, func(c *approval.Config) {
		c.Channels = []approval.Channel{rec}
		c.BreakGlass = &approval.BreakGlass{
			Approvers: []approval.Approver{approval.Role("sre"), approval.User("erin")}, SecondPerson: second,
			Security: []approval.Approver{approval.User("secops")},
		}
	})
	return f, rec
}

func (f *fixture) breakGlass(id, who, reason string) (*approval.Request, error) {
	return f.gate.BreakGlass(f.ctx, id, approval.Decision{Token: f.Token(id, who, approval.VerdictApprove), Verdict: approval.VerdictApprove, Reason: reason})
}

func TestBreakGlass(t *testing.T) {
	t.Parallel()
	f, rec := breakGlassFixture(t, false)
	a := transfer(5000)
	id := f.Pending(a)

	// Refused without a reason, for a person without the role, and for the
	// requester; each refusal is audited and changes nothing.
	_, err := f.breakGlass(id, "sam", "")
	require.ErrorIs(t, err, approval.ErrInvalidDecision)
	_, err = f.breakGlass(id, "alice", "outage")
	require.ErrorIs(t, err, approval.ErrNotEligible)
	rejected, err := f.gate.ListAudit(f.ctx, approval.AuditQuery{Type: approval.EventDecisionRejected, RequestID: id})
	require.NoError(t, err)
	require.Len(t, rejected.Events, 2)
	require.Equal(t, "alice", rejected.Events[1].Actor)
	_, err = f.gate.BreakGlass(f.ctx, id, approval.Decision{Token: f.Token(id, "sam", approval.VerdictDeny), Verdict: approval.VerdictDeny, Reason: "x"})
	require.ErrorIs(t, err, approval.ErrInvalidDecision)
	require.Empty(t, f.Get(id).Votes)

	r, err := f.breakGlass(id, "sam", "payments are down, INC-4412")
	require.NoError(t, err)
	require.Equal(t, approval.StatusApproved, r.Status)
	require.Equal(t, "break-glass by sam: payments are down, INC-4412", r.Reason)
	require.True(t, r.Votes[0].BreakGlass)

	// Its own event, listable.
	page, err := f.gate.ListAudit(f.ctx, approval.AuditQuery{Type: approval.EventBreakGlass})
	require.NoError(t, err)
	require.Len(t, page.Events, 1)
	require.Equal(t, "sam", page.Events[0].Actor)
	require.Equal(t, id, page.Events[0].RequestID)
	require.Contains(t, page.Events[0].Reason, "INC-4412")

	// Marked in the artifact.
	res, err := f.gate.Guard(f.ctx, a)
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeApproved, res.Status)
	art, err := approval.VerifyArtifactAt(res.Artifact, a, f.pub(), f.clock.Now())
	require.NoError(t, err)
	require.True(t, art.BreakGlass)
	unmarked := strings.Replace(string(res.Artifact), `,"break_glass":true`, ``, 1)
	_, err = approval.VerifyArtifactAt([]byte(unmarked), a, f.pub(), f.clock.Now())
	require.ErrorIs(t, err, approval.ErrArtifactSignature, "the mark is signed")

	// Every approver and security were alerted.
	require.NoError(t, f.gate.Close(context.Background()))
	var alerted []string
	for _, n := range rec.sent() {
		if n.Type == approval.NotifyAlert {
			require.Contains(t, n.Note, "BREAK-GLASS")
			alerted = append(alerted, n.Recipient)
		}
	}
	slices.Sort(alerted)
	require.Equal(t, []string{"alice", "bob", "carol", "dave", "secops"}, alerted)
	_, err = f.gate.VerifyAuditTrail(f.ctx, approval.VerifyAuditOptions{})
	require.NoError(t, err)
}

func TestBreakGlassSecondPerson(t *testing.T) {
	t.Parallel()
	f, _ := breakGlassFixture(t, true)
	id := f.Pending(transfer(5000))
	r, err := f.breakGlass(id, "sam", "payments are down")
	require.NoError(t, err)
	require.Equal(t, approval.StatusPending, r.Status, "one person opens it")
	_, err = f.breakGlass(id, "sam", "again")
	require.ErrorIs(t, err, approval.ErrAlreadyDecided, "the second is another person")
	r, err = f.breakGlass(id, "erin", "confirmed with sam")
	require.NoError(t, err)
	require.Equal(t, approval.StatusApproved, r.Status)
	require.Equal(t, "break-glass by sam, confirmed by erin: confirmed with sam", r.Reason)
	page, err := f.gate.ListAudit(f.ctx, approval.AuditQuery{Type: approval.EventBreakGlass})
	require.NoError(t, err)
	require.Len(t, page.Events, 2)
}

func TestBreakGlassNotConfigured(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.Pending(transfer(5000))
	_, err := f.breakGlass(id, "sam", "outage")
	require.ErrorIs(t, err, approval.ErrNotEligible)
	_, err = approval.New(approval.Config{Store: f.store, BreakGlass: &approval.BreakGlass{}})
	require.ErrorIs(t, err, approval.ErrInvalidConfig)
}

func TestBreakGlassAfterDeadline(t *testing.T) {
	t.Parallel()
	f, _ := breakGlassFixture(t, false)
	id := f.Pending(transfer(5000))
	f.clock.Advance(25 * time.Hour)
	_, err := f.breakGlass(id, "sam", "too late")
	require.ErrorIs(t, err, approval.ErrNotPending)
	require.Equal(t, approval.StatusTimedOut, f.Get(id).Status, "the deadline ruled first")
}
