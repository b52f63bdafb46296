package approval_test

import (
	"context"
	"crypto/ed25519"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/memstore"
)

// incrementalFixture is an integrity fixture verified once, whose head
// that run reported is from, with more requests made a minute later: one
// approved (the first of later), one pending.
func incrementalFixture(t *testing.T) (f *fixture, rs *rewrittenStore, from approval.AuditHead, later []string) {
	t.Helper()
	f, rs = newIntegrityFixture(t)
	rep, err := f.gate.VerifyAuditTrail(f.ctx, approval.VerifyAuditOptions{})
	require.NoError(t, err)
	from = rep.Head
	f.clock.Advance(time.Minute)
	approved := f.Pending(transfer(20000))
	for _, who := range []string{"alice", "bob"} {
		_, err := f.Decide(approved, who, approval.VerdictApprove)
		require.NoError(t, err)
	}
	return f, rs, from, []string{approved, f.Pending(transfer(30000))}
}

// TestVerifyAuditIncremental: a run from a head verified before checks the
// events from it on, and the requests made since, through AuditStream
// (memstore) and through pages (ListAudit and List) alike.
func TestVerifyAuditIncremental(t *testing.T) {
	f, rs, from, _ := incrementalFixture(t)
	head := f.lastEvent()
	pub := f.priv.Public().(ed25519.PublicKey)
	for name, s := range map[string]approval.Store{"stream": f.store, "pages": rs} {
		rep, err := approval.VerifyAuditTrail(f.ctx, s, approval.VerifyAuditOptions{From: from, Keys: []ed25519.PublicKey{pub}})
		require.NoError(t, err, name)
		require.Equal(t, head.Seq-from.Seq+1, rep.Events, name)
		require.Equal(t, approval.AuditHead{Seq: head.Seq, Hash: head.Hash}, rep.Head, name)
		require.EqualValues(t, 2, rep.Requests, "%s: the requests made since", name)

		// From the newest event: that event alone.
		rep, err = approval.VerifyAuditTrail(f.ctx, s, approval.VerifyAuditOptions{From: rep.Head})
		require.NoError(t, err, name)
		require.EqualValues(t, 1, rep.Events, name)
		require.Zero(t, rep.Requests, name)

		// Anchors from From on are checked; one before it cannot be.
		_, err = approval.VerifyAuditTrail(f.ctx, s, approval.VerifyAuditOptions{From: from, Anchors: []approval.AuditHead{from, rep.Head}})
		require.NoError(t, err, name)
		_, err = approval.VerifyAuditTrail(f.ctx, s, approval.VerifyAuditOptions{From: from, Anchors: []approval.AuditHead{{Seq: from.Seq + 1, Hash: from.Hash}}})
		chainError(t, err, from.Seq+1, "rewritten")
		_, err = approval.VerifyAuditTrail(f.ctx, s, approval.VerifyAuditOptions{From: from, Anchors: []approval.AuditHead{{Seq: 1, Hash: from.Hash}}})
		require.ErrorIs(t, err, approval.ErrInvalidConfig, name)
		require.NotErrorIs(t, err, approval.ErrAuditChain, name)

		// A head the trail does not hold.
		_, err = approval.VerifyAuditTrail(f.ctx, s, approval.VerifyAuditOptions{From: approval.AuditHead{Seq: head.Seq + 1, Hash: head.Hash}})
		chainError(t, err, head.Seq+1, "truncated")
		for _, bad := range []approval.AuditHead{{Seq: 0, Hash: from.Hash}, {Seq: -1, Hash: from.Hash}, {Seq: 3}, {Seq: 3, Hash: strings.ToUpper(from.Hash)}} {
			_, err = approval.VerifyAuditTrail(f.ctx, s, approval.VerifyAuditOptions{From: bad})
			require.ErrorIs(t, err, approval.ErrInvalidHead, "%s %v", name, bad)
		}
	}
}

// TestVerifyAuditIncrementalTamperingAfterTheStart: what a run from the
// start finds after From, a run from From finds too.
func TestVerifyAuditIncrementalTamperingAfterTheStart(t *testing.T) {
	f, rs, from, later := incrementalFixture(t)
	verify := func() error {
		_, err := f.gate.VerifyAuditTrail(f.ctx, approval.VerifyAuditOptions{From: from})
		return err
	}
	after := int(from.Seq) // the index of the event after From

	// An edit, not re-sealed.
	rs.set(func(evs []approval.AuditEvent) []approval.AuditEvent {
		evs[after+1].Reason = "nothing to see"
		return evs
	})
	chainError(t, verify(), from.Seq+2, "hash does not match")

	// An event dropped, the rest renumbered and re-sealed: the request
	// whose event it was is not accounted for.
	rs.set(func(evs []approval.AuditEvent) []approval.AuditEvent {
		i := slices.IndexFunc(evs, func(e approval.AuditEvent) bool {
			return e.RequestID == later[0] && e.Type == approval.EventDecisionApprove
		})
		require.Greater(t, i, after)
		evs = slices.Delete(evs, i, i+1)
		for j := i; j < len(evs); j++ {
			evs[j].Seq--
		}
		reseal(evs, i)
		return evs
	})
	var se *approval.AuditStateError
	require.ErrorAs(t, verify(), &se)
	require.Equal(t, later[0], se.RequestID)
	require.Contains(t, se.Missing, "decision.approve by")

	// A re-sealed edit before a checkpoint made after From.
	rs.set(nil)
	cp, err := f.gate.Checkpoint(f.ctx)
	require.NoError(t, err)
	rs.set(func(evs []approval.AuditEvent) []approval.AuditEvent {
		evs[after+1].Reason = "nothing to see"
		reseal(evs, after+1)
		return evs
	})
	chainError(t, verify(), cp.Seq-1, "re-sealed")

	// A request row forged since From.
	rs.set(nil)
	forged := f.Get(later[1]).Clone()
	forged.ID = later[1][:len(later[1])-1] + map[bool]string{true: "0", false: "1"}[later[1][len(later[1])-1] != '0']
	forged.ActionHash = strings.Repeat("ab", 32)
	forged.Status = approval.StatusApproved
	_, created, err := f.store.Create(f.ctx, forged, nil)
	require.NoError(t, err)
	require.True(t, created)
	require.ErrorAs(t, verify(), &se)
	require.Equal(t, forged.ID, se.RequestID)
	require.Equal(t, "request.created", se.Missing)
}

// TestVerifyAuditIncrementalTamperingBeforeTheStart: a run from From
// finds a rewrite that reaches From, and not one that stops short of it
// (a run from the start does); nor a request made before From and edited
// since.
func TestVerifyAuditIncrementalTamperingBeforeTheStart(t *testing.T) {
	f, rs, from, _ := incrementalFixture(t)
	full := func() error {
		_, err := f.gate.VerifyAuditTrail(f.ctx, approval.VerifyAuditOptions{})
		return err
	}
	incremental := func() error {
		_, err := f.gate.VerifyAuditTrail(f.ctx, approval.VerifyAuditOptions{From: from})
		return err
	}

	// An edit before From, not re-sealed: the chain before From is not
	// checked.
	rs.set(func(evs []approval.AuditEvent) []approval.AuditEvent {
		evs[1].Reason = "nothing to see"
		return evs
	})
	chainError(t, full(), 2, "hash does not match")
	require.NoError(t, incremental())

	// Re-sealed through From: From's event has another hash.
	rs.set(func(evs []approval.AuditEvent) []approval.AuditEvent {
		evs[1].Reason = "nothing to see"
		reseal(evs, 1)
		return evs
	})
	require.NoError(t, full(), "no checkpoint, no anchor: a re-sealed chain verifies")
	chainError(t, incremental(), from.Seq, "rewritten")

	// From's own event edited, its hash kept.
	rs.set(func(evs []approval.AuditEvent) []approval.AuditEvent {
		evs[from.Seq-1].Reason = "nothing to see"
		return evs
	})
	chainError(t, incremental(), from.Seq, "hash does not match the event's content")

	// Cut before From.
	rs.set(func(evs []approval.AuditEvent) []approval.AuditEvent { return evs[:from.Seq-1] })
	chainError(t, incremental(), from.Seq, "truncated")
	// Or From's event dropped, and the rest renumbered.
	rs.set(func(evs []approval.AuditEvent) []approval.AuditEvent {
		evs = slices.Delete(evs, int(from.Seq-1), int(from.Seq))
		for j := int(from.Seq - 1); j < len(evs); j++ {
			evs[j].Seq--
		}
		reseal(evs, int(from.Seq-1))
		return evs
	})
	chainError(t, incremental(), from.Seq, "rewritten")

	// A vote forged on a request made before From.
	rs.set(nil)
	page, err := f.store.List(f.ctx, approval.RequestQuery{Status: []approval.Status{approval.StatusDenied}})
	require.NoError(t, err)
	require.Len(t, page.Requests, 1)
	r := page.Requests[0]
	next := r.Clone()
	next.Version++
	next.Votes = append(next.Votes, approval.Vote{Approver: "mallory", Verdict: approval.VerdictDeny, TokenID: "t", At: r.CreatedAt})
	require.NoError(t, f.store.Update(f.ctx, approval.Update{Request: next}))
	require.NoError(t, incremental(), "a request made before From is not checked")
	var se *approval.AuditStateError
	require.ErrorAs(t, full(), &se)
	require.Equal(t, r.ID, se.RequestID)
}

// TestVerifyAuditProgress: Progress hears how far the run has read, in
// order, and last of all how much it verified.
func TestVerifyAuditProgress(t *testing.T) {
	defer approval.SetProgressInterval(0)()
	s := memstore.New()
	for range 3 {
		batch := make([]approval.AuditEvent, 1000)
		for i := range batch {
			batch[i] = approval.AuditEvent{Type: approval.EventNotificationSent, Actor: approval.SystemActor, At: time.Now()}
		}
		require.NoError(t, s.AppendAudit(t.Context(), batch))
	}
	for name, store := range map[string]approval.Store{"stream": s, "pages": plainStore{s}} {
		var calls []approval.AuditProgress
		rep, err := approval.VerifyAuditTrail(t.Context(), store, approval.VerifyAuditOptions{
			Progress: func(p approval.AuditProgress) { calls = append(calls, p) },
		})
		require.NoError(t, err, name)
		require.Equal(t, []approval.AuditProgress{{Events: 1024, Seq: 1024}, {Events: 2048, Seq: 2048}, {Events: 3000, Seq: 3000}}, calls, name)
		require.Equal(t, approval.AuditProgress{Events: rep.Events, Seq: rep.Head.Seq}, calls[len(calls)-1])

		calls = nil
		_, err = approval.VerifyAuditTrail(t.Context(), store, approval.VerifyAuditOptions{
			From:     approval.AuditHead{Seq: 1000, Hash: fullTrailOf(t, s)[999].Hash},
			Progress: func(p approval.AuditProgress) { calls = append(calls, p) },
		})
		require.NoError(t, err, name)
		require.Equal(t, []approval.AuditProgress{{Events: 1024, Seq: 2023}, {Events: 2001, Seq: 3000}}, calls, name)
	}
}

// fullTrailOf returns the trail of s.
func fullTrailOf(t *testing.T, s approval.Store) []approval.AuditEvent {
	t.Helper()
	var all []approval.AuditEvent
	for q := (approval.AuditQuery{Limit: approval.MaxPageSize}); ; {
		page, err := s.ListAudit(t.Context(), q)
		require.NoError(t, err)
		all = append(all, page.Events...)
		if page.Next == "" {
			return all
		}
		q.Cursor = page.Next
	}
}

// TestVerifyAuditForgetsExplainedRequests: the run holds on to a request
// only until its last event, so many requests made one after another
// take no more memory than one page of them read ahead.
func TestVerifyAuditForgetsExplainedRequests(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const n = 2500
	for i := range n {
		id := f.Pending(transfer(float64(1000 + i)))
		_, err := f.gate.Cancel(f.ctx, id, "user-1", "not needed")
		require.NoError(t, err)
	}
	for name, s := range map[string]approval.Store{"stream": f.store, "pages": plainStore{f.store}} {
		rep, peak, err := approval.VerifyAuditTrailPeak(f.ctx, s, approval.VerifyAuditOptions{})
		require.NoError(t, err, name)
		require.EqualValues(t, n, rep.Requests, name)
		require.LessOrEqual(t, peak, approval.MaxPageSize+1, name)
	}
	// A store that lists its requests in another order is read with all
	// of them first.
	rep, peak, err := approval.VerifyAuditTrailPeak(f.ctx, reversedList{f.store}, approval.VerifyAuditOptions{})
	require.NoError(t, err)
	require.EqualValues(t, n, rep.Requests)
	require.Equal(t, n, peak)
}

// reversedList is a Store whose List returns every request in one page,
// newest first: not in the order of their IDs.
type reversedList struct{ approval.Store }

func (s reversedList) List(ctx context.Context, q approval.RequestQuery) (approval.RequestPage, error) {
	var all []*approval.Request
	for {
		page, err := s.Store.List(ctx, q)
		if err != nil {
			return approval.RequestPage{}, err
		}
		all = append(all, page.Requests...)
		if page.Next == "" {
			break
		}
		q.Cursor = page.Next
	}
	slices.Reverse(all)
	return approval.RequestPage{Requests: all}, nil
}

// TestVerifyAuditUnorderedStoreStillFindsForgeries: read with every
// request first, a forged row is found as before.
func TestVerifyAuditUnorderedStoreStillFindsForgeries(t *testing.T) {
	t.Parallel()
	f, _ := newIntegrityFixture(t)
	r := f.Get(f.Pending(transfer(40000)))
	forged := r.Clone()
	forged.ID = strings.Repeat("z", len(r.ID))
	forged.ActionHash = strings.Repeat("cd", 32)
	forged.Status = approval.StatusApproved
	_, _, err := f.store.Create(f.ctx, forged, nil)
	require.NoError(t, err)
	_, err = approval.VerifyAuditTrail(f.ctx, reversedList{f.store}, approval.VerifyAuditOptions{})
	var se *approval.AuditStateError
	require.ErrorAs(t, err, &se)
	require.Equal(t, forged.ID, se.RequestID)
}
