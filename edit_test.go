package approval_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

func TestModifyThenApprove(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := transfer(5000)
	id := f.Pending(a)
	edited := []byte(`{"to":"DE89 3704 0044 0532 0130 00","amount":500}`)
	decide := func(who string, v approval.Verdict, payload []byte) error {
		_, err := f.gate.Decide(f.ctx, id, approval.Decision{Token: f.Token(id, who, approval.VerdictBoth), Verdict: v, Payload: payload})
		return err
	}
	require.ErrorIs(t, decide("alice", approval.VerdictDeny, edited), approval.ErrInvalidDecision, "an edit comes with an approval")
	require.ErrorIs(t, decide("alice", approval.VerdictApprove, a.Payload), approval.ErrInvalidDecision, "an edit changes the payload")
	require.ErrorIs(t, decide("alice", approval.VerdictApprove, make([]byte, 300<<10)), approval.ErrInvalidDecision, "within the payload limit")
	require.Nil(t, f.Get(id).Edit)

	require.NoError(t, decide("alice", approval.VerdictApprove, edited))
	r := f.Get(id)
	require.Equal(t, edited, r.Edit.Payload)
	require.Equal(t, "alice", r.Edit.By)
	require.Equal(t, approval.PayloadHash(edited), r.Edit.PayloadHash)
	require.Equal(t, a.Payload, r.Action.Payload, "the request keeps what was asked")
	require.ErrorIs(t, decide("bob", approval.VerdictApprove, []byte(`{"amount":1}`)), approval.ErrInvalidDecision, "no edit after an approval")
	require.NoError(t, decide("bob", approval.VerdictApprove, nil))

	var types []approval.EventType
	for _, e := range f.events() {
		types = append(types, e.Type)
	}
	require.Contains(t, types, approval.EventPayloadEdited)

	// The requester's Guard of the original payload is not approved: it
	// learns the edited payload, bound by the artifact.
	res, err := f.gate.Guard(f.ctx, a)
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeModified, res.Status)
	require.Equal(t, id, res.RequestID)
	require.Equal(t, edited, res.Payload)
	_, err = approval.VerifyArtifactAt(res.Artifact, a, f.pub(), f.clock.Now())
	require.ErrorIs(t, err, approval.ErrArtifactPayloadMismatch, "the original payload is not approved")
	run := a
	run.Payload = res.Payload
	art, err := approval.VerifyArtifactAt(res.Artifact, run, f.pub(), f.clock.Now())
	require.NoError(t, err)
	require.Equal(t, approval.PayloadHash(a.Payload), art.EditedFrom)
	require.Equal(t, approval.PayloadHash(edited), art.PayloadHash)
	require.Equal(t, run, f.Get(id).Approved())

	// Consumed once: the next Guard of the original asks anew.
	res, err = f.gate.Guard(f.ctx, a)
	require.NoError(t, err)
	require.Equal(t, approval.OutcomePending, res.Status)
	require.NotEqual(t, id, res.RequestID)
	_, err = f.gate.VerifyAuditTrail(f.ctx, approval.VerifyAuditOptions{})
	require.NoError(t, err)
}
