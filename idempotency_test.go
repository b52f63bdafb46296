package approval_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// payment is the fixture's transfer under the idempotency key of its
// payment instruction.
func payment(key string) approval.Action {
	a := transfer(5000)
	a.IdempotencyKey = key
	return a
}

// approved has alice and bob approve request id.
func (f *fixture) approved(id string) {
	f.t.Helper()
	for _, who := range []string{"alice", "bob"} {
		_, err := f.Decide(id, who, approval.VerdictApprove)
		require.NoError(f.t, err)
	}
}

// requests returns every stored request.
func (f *fixture) requests() []*approval.Request {
	f.t.Helper()
	page, err := f.gate.List(f.ctx, approval.RequestQuery{})
	require.NoError(f.t, err)
	return page.Requests
}

// TestIdempotencyKeyAlreadyRan: once a payment's approval was consumed
// under its key, a Guard with the key returns that outcome
// (StatusConsumed, the request, its reason and a verifying artifact),
// audited, and opens nothing new; when the window has passed, the key is
// free again.
func TestIdempotencyKeyAlreadyRan(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	f := newFixture(t, func(c *approval.Config) { c.Channels = []approval.Channel{rec} })
	a := payment("INSTR-1")
	id := f.Pending(a)
	f.approved(id)
	res, err := f.gate.Guard(f.ctx, a)
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeApproved, res.Status)
	ranAt := f.clock.Now()
	r := f.Get(id)
	require.Equal(t, approval.StatusConsumed, r.Status)
	require.Equal(t, ranAt.Add(approval.DefaultIdempotencyWindow), r.HoldUntil, "the key is held for the window")

	// Notifications are delivered in the background, so their events may
	// land after a Guard's: look at the deduplication events alone.
	dedups := func() []approval.AuditEvent {
		var out []approval.AuditEvent
		for _, e := range f.events() {
			if e.Type == approval.EventRequestDeduplicated {
				out = append(out, e)
			}
		}
		return out
	}
	for i := range 3 {
		f.clock.Advance(time.Hour)
		again, err := f.gate.Guard(f.ctx, a)
		require.NoError(t, err)
		require.Equal(t, approval.OutcomeAlreadyRan, again.Status)
		require.Equal(t, id, again.RequestID)
		require.Equal(t, res.Reason, again.Reason)
		art, err := approval.VerifyArtifactAt(again.Artifact, a, []ed25519PublicKey{f.priv.Public().(ed25519PublicKey)}, ranAt)
		require.NoError(t, err)
		require.Equal(t, id, art.RequestID)
		ds := dedups()
		require.Len(t, ds, i+1, "each answer is audited")
		last := ds[i]
		require.Equal(t, id, last.RequestID)
		require.Equal(t, "user-1", last.Actor)
		require.Contains(t, last.Reason, "already ran at "+ranAt.Format(time.RFC3339))
		require.Contains(t, last.Reason, `"INSTR-1"`)
	}
	require.Len(t, f.requests(), 1, "nothing new while the key holds")
	report, err := f.gate.VerifyAuditTrail(f.ctx, approval.VerifyAuditOptions{})
	require.NoError(t, err, "%+v", report)

	f.clock.Advance(approval.DefaultIdempotencyWindow)
	next := f.Pending(a)
	require.NotEqual(t, id, next, "after the window the key is free")
	require.Nil(t, f.Get(next).Prior, "and the run is out of the window too")
	require.NoError(t, f.gate.Close(f.ctx))
	for _, n := range rec.sent() {
		require.Contains(t, []string{id, next}, n.RequestID)
	}
}

// TestIdempotencyKeyDo: approval.Do runs the function once; a later Do
// with the key returns a *NotApprovedError wrapping ErrAlreadyRan with the
// earlier request, and does not run the function.
func TestIdempotencyKeyDo(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := payment("INSTR-1")
	runs := 0
	fn := func(context.Context, approval.Result) error { runs++; return nil }
	res, err := approval.Do(f.ctx, f.gate, a, approval.DoOptions{}, fn)
	require.ErrorIs(t, err, approval.ErrPending)
	id := res.RequestID
	f.approved(id)
	_, err = approval.Do(f.ctx, f.gate, a, approval.DoOptions{}, fn)
	require.NoError(t, err)
	require.Equal(t, 1, runs)

	res, err = approval.Do(f.ctx, f.gate, a, approval.DoOptions{Wait: time.Minute}, fn)
	require.ErrorIs(t, err, approval.ErrAlreadyRan)
	require.NotErrorIs(t, err, approval.ErrDenied)
	var na *approval.NotApprovedError
	require.ErrorAs(t, err, &na)
	require.Equal(t, approval.OutcomeAlreadyRan, na.Result.Status)
	require.Equal(t, id, na.Result.RequestID)
	require.Equal(t, res, na.Result)
	require.NotEmpty(t, res.Artifact)
	require.Equal(t, "approval: wire-transfer: already ran (request "+id+"): quorum met", err.Error())
	require.Equal(t, 1, runs, "the function does not run again")
}

// TestIdempotencyKeyOtherAction: a key names one action. Another action
// under it (other bytes, or another requester: keys are global) is
// ErrInvalidAction naming the key and the request, while the request is
// open, held, or has run; nothing is stored.
func TestIdempotencyKeyOtherAction(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := payment("INSTR-1")
	id := f.Pending(a)
	otherBytes := payment("INSTR-1")
	otherBytes.Payload = []byte(`{"to":"elsewhere","amount":5000}`)
	otherRequester := payment("INSTR-1")
	otherRequester.RequestedBy = "user-2"
	otherName := payment("INSTR-1")
	otherName.Name = "refund"
	refused := func() {
		t.Helper()
		for _, b := range []approval.Action{otherBytes, otherRequester, otherName} {
			res, err := f.gate.Guard(f.ctx, b)
			require.ErrorIs(t, err, approval.ErrInvalidAction)
			require.ErrorContains(t, err, `idempotency key "INSTR-1" belongs to request `+id+", for another action")
			require.Equal(t, approval.Result{Status: approval.OutcomeDenied}, res)
		}
		require.Len(t, f.requests(), 1)
	}
	refused() // open
	f.approved(id)
	refused() // approved, not used
	res, err := f.gate.Guard(f.ctx, a)
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeApproved, res.Status)
	refused() // ran

	// Under keys of their own they are actions of their own.
	otherBytes.IdempotencyKey = "INSTR-2"
	require.NotEqual(t, id, f.Pending(otherBytes))
}

// TestIdempotencyKeyPending: while the key's request is open, a Guard with
// the key returns it, pending. The same bytes without the key, or under
// another key, are other operations: requests of their own.
func TestIdempotencyKeyPending(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := payment("INSTR-1")
	id := f.Pending(a)
	require.Equal(t, id, f.Pending(a))
	require.Equal(t, approval.EventRequestDeduplicated, f.lastEvent().Type)
	unkeyed := transfer(5000)
	plain := f.Pending(unkeyed)
	require.NotEqual(t, id, plain)
	require.Equal(t, plain, f.Pending(unkeyed))
	require.NotEqual(t, id, f.Pending(payment("INSTR-2")))
	require.Len(t, f.requests(), 3)

	// The keyless request's approval is not the payment's.
	f.approved(plain)
	res, err := f.gate.Guard(f.ctx, a)
	require.NoError(t, err)
	require.Equal(t, approval.Result{Status: approval.OutcomePending, RequestID: id, Reason: "high_spend"}, res)
}

// TestIdempotencyKeyAfterNoRun: a key whose request ended without running
// is held as before (a person's denial, for Config.DenialHold) or free at
// once (cancelled, expired unused): nothing ran under it.
func TestIdempotencyKeyAfterNoRun(t *testing.T) {
	t.Parallel()
	t.Run("denied", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		a := payment("INSTR-1")
		id := f.Pending(a)
		_, err := f.Decide(id, "bob", approval.VerdictDeny)
		require.NoError(t, err)
		res, err := f.gate.Guard(f.ctx, a)
		require.NoError(t, err)
		require.Equal(t, approval.OutcomeDenied, res.Status)
		require.Equal(t, id, res.RequestID)
		other := payment("INSTR-1")
		other.Payload = []byte(`{}`)
		_, err = f.gate.Guard(f.ctx, other)
		require.ErrorIs(t, err, approval.ErrInvalidAction, "the key is held by the denial")
		f.clock.Advance(approval.DefaultDenialHold)
		require.NotEqual(t, id, f.Pending(a))
	})
	t.Run("cancelled", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		a := payment("INSTR-1")
		id := f.Pending(a)
		_, err := f.gate.Cancel(f.ctx, id, "user-1", "wrong account")
		require.NoError(t, err)
		require.NotEqual(t, id, f.Pending(a))
	})
	t.Run("expired", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		a := payment("INSTR-1")
		id := f.Pending(a)
		f.approved(id)
		f.clock.Advance(approval.DefaultApprovalTTL)
		_, err := f.gate.Tick(f.ctx, 0)
		require.NoError(t, err)
		require.Equal(t, approval.StatusExpired, f.Get(id).Status)
		require.NotEqual(t, id, f.Pending(a))
	})
}

// TestIdempotencyKeyApprovedAtOnce: an action approved as it is created
// (every level of its chain skipped) runs once under its key too: the
// request is stored approved and consumed in a second write, and the next
// Guard with the key learns that it ran.
func TestIdempotencyKeyApprovedAtOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	require.NoError(t, f.gate.SetPolicy("high_spend", approval.Policy{
		Match: approval.CostAtLeast(1000, "USD"),
		Chain: []approval.Level{{Approvers: []approval.Approver{approval.Group("finance")},
			When: approval.Field("metadata.country", approval.OpEq, "KP")}},
	}))
	a := payment("INSTR-1")
	res, err := f.gate.Guard(f.ctx, a)
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeApproved, res.Status)
	require.NotEmpty(t, res.Artifact)
	again, err := f.gate.Guard(f.ctx, a)
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeAlreadyRan, again.Status)
	require.Equal(t, res.RequestID, again.RequestID)
	r := f.Get(res.RequestID)
	require.Equal(t, approval.StatusConsumed, r.Status)
	require.Equal(t, 1, r.Uses)
	require.False(t, r.HoldUntil.IsZero())
	var types []approval.EventType
	for _, e := range f.events() {
		if e.RequestID == res.RequestID {
			types = append(types, e.Type)
		}
	}
	require.Equal(t, []approval.EventType{approval.EventRequestCreated, approval.EventLevelSkipped, approval.EventRequestApproved,
		approval.EventApprovalConsumed, approval.EventRequestDeduplicated}, types)
	_, err = f.gate.VerifyAuditTrail(f.ctx, approval.VerifyAuditOptions{})
	require.NoError(t, err)

	// Without a key it is consumed as it is created, as before.
	plain, err := f.gate.Guard(f.ctx, transfer(5000))
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeApproved, plain.Status)
	require.NotEqual(t, res.RequestID, plain.RequestID)
}

// TestIdempotencyKeyNoReuse: an approval under a key is single use, so a
// reviewer cannot grant reuse whatever the policy allows.
func TestIdempotencyKeyNoReuse(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	reusable(t, f)
	id := f.Pending(payment("INSTR-1"))
	require.True(t, f.Get(id).MaxReuse.IsZero())
	_, err := f.approveWith(id, "alice", &approval.Reuse{For: 10 * time.Minute, Uses: 2})
	require.ErrorIs(t, err, approval.ErrInvalidDecision)
}

// TestIdempotencyKeyChecks: a key longer than MaxIdempotencyKeyBytes, or
// not text, is ErrInvalidAction; a store without IdempotencyKeys refuses a
// key (ErrUnsupported) rather than ignore it; a negative window is an
// invalid Config.
func TestIdempotencyKeyChecks(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, key := range []string{strings.Repeat("k", approval.MaxIdempotencyKeyBytes+1), "bad\x00key", "\xff"} {
		res, err := f.gate.Guard(f.ctx, payment(key))
		require.ErrorIs(t, err, approval.ErrInvalidAction)
		require.Equal(t, approval.OutcomeDenied, res.Status)
	}
	id := f.Pending(payment(strings.Repeat("k", approval.MaxIdempotencyKeyBytes)))
	require.NotEmpty(t, id)

	plain := newFixture(t, inProcess)
	res, err := plain.gate.Guard(plain.ctx, payment("INSTR-1"))
	require.ErrorIs(t, err, approval.ErrUnsupported)
	require.ErrorContains(t, err, "IdempotencyKeys")
	require.Equal(t, approval.OutcomeDenied, res.Status)
	require.Empty(t, plain.requests())
	// An action no policy matches needs no request, and no store support.
	res, err = plain.gate.Guard(plain.ctx, approval.Action{Name: "read", RequestedBy: "user-1", IdempotencyKey: "INSTR-1"})
	require.NoError(t, err)
	require.Equal(t, approval.ReasonNoPolicyMatched, res.Reason)

	_, err = approval.New(approval.Config{Store: plain.store, SigningKey: f.priv, IdempotencyWindow: -time.Second})
	require.ErrorIs(t, err, approval.ErrInvalidConfig)
	require.ErrorContains(t, err, "IdempotencyWindow")
}

// TestPriorRun: a new request for an action identical to one that ran
// within Config.IdempotencyWindow names that run (Request.Prior), and so
// does every notification about it; one for an action that never ran, or
// ran before the window, names none.
func TestPriorRun(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	f := newFixture(t, func(c *approval.Config) {
		c.Channels = []approval.Channel{rec}
		c.IdempotencyWindow = 2 * time.Hour
	})
	a := transfer(5000)
	first := f.Pending(a)
	require.Nil(t, f.Get(first).Prior)
	f.approved(first)
	f.clock.Advance(time.Minute)
	res, err := f.gate.Guard(f.ctx, a)
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeApproved, res.Status)
	ranAt := f.clock.Now()

	f.clock.Advance(2*time.Hour - time.Second)
	second := f.Pending(a)
	want := &approval.PriorRun{RequestID: first, At: ranAt}
	require.Equal(t, want, f.Get(second).Prior)
	other := transfer(7000)
	require.Nil(t, f.Get(f.Pending(other)).Prior, "another action never ran")
	_, err = f.gate.Cancel(f.ctx, second, "user-1", "duplicate")
	require.NoError(t, err)
	f.clock.Advance(time.Second + time.Microsecond)
	third := f.Pending(a)
	require.Nil(t, f.Get(third).Prior, "the run is out of the window")

	require.NoError(t, f.gate.Close(f.ctx))
	seen := 0
	for _, n := range rec.sent() {
		switch n.RequestID {
		case second:
			require.Equal(t, want, n.Prior, "%s to %s", n.Type, n.Recipient)
			seen++
		default:
			require.Nil(t, n.Prior, "%s about %s", n.Type, n.RequestID)
		}
	}
	require.Positive(t, seen)
}

// failingRuns is a store whose PriorRuns fails.
type failingRuns struct{ approval.Store }

func (failingRuns) LastRun(context.Context, string, time.Time) (approval.PriorRun, bool, error) {
	return approval.PriorRun{}, false, errors.New("replica down")
}

// TestPriorRunLookupFails: a store that cannot say whether the action ran
// fails the Guard (closed), creating nothing: the approvers would
// otherwise decide without the warning.
func TestPriorRunLookupFails(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *approval.Config) { c.Store = failingRuns{c.Store} })
	res, err := f.gate.Guard(f.ctx, transfer(5000))
	require.ErrorContains(t, err, "replica down")
	require.Equal(t, approval.OutcomeDenied, res.Status)
	require.Empty(t, f.requests())
}
