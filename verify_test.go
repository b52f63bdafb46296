package approval_test

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/memstore"
)

// rewrittenStore is a Store whose trail an attacker with write access
// rewrote: ListAudit returns the stored trail passed through rewrite, in
// one page, filtered as the query asks.
type rewrittenStore struct {
	approval.Store
	mu      sync.Mutex
	rewrite func([]approval.AuditEvent) []approval.AuditEvent
}

func (s *rewrittenStore) set(f func([]approval.AuditEvent) []approval.AuditEvent) {
	s.mu.Lock()
	s.rewrite = f
	s.mu.Unlock()
}

func (s *rewrittenStore) ListAudit(ctx context.Context, q approval.AuditQuery) (approval.AuditPage, error) {
	s.mu.Lock()
	rewrite := s.rewrite
	s.mu.Unlock()
	if rewrite == nil {
		return s.Store.ListAudit(ctx, q)
	}
	var all []approval.AuditEvent
	for p := (approval.AuditQuery{Limit: approval.MaxPageSize}); ; {
		page, err := s.Store.ListAudit(ctx, p)
		if err != nil {
			return approval.AuditPage{}, err
		}
		all = append(all, page.Events...)
		if page.Next == "" {
			break
		}
		p.Cursor = page.Next
	}
	all = rewrite(all)
	return approval.AuditPage{Events: slices.DeleteFunc(all, func(e approval.AuditEvent) bool {
		return q.RequestID != "" && e.RequestID != q.RequestID || q.Type != "" && e.Type != q.Type
	})}, nil
}

// reseal recomputes the chain from index i on, as an attacker who edited
// event i would.
func reseal(evs []approval.AuditEvent, i int) {
	for ; i < len(evs); i++ {
		var prevSeq int64
		var prevHash string
		if i > 0 {
			prevSeq, prevHash = evs[i-1].Seq, evs[i-1].Hash
		}
		evs[i].Seal(prevSeq, prevHash)
	}
}

// newIntegrityFixture is a fixture whose store can be rewritten, with a
// trail of some decisions.
func newIntegrityFixture(t *testing.T, mod ...func(*approval.Config)) (*fixture, *rewrittenStore) {
	t.Helper()
	rs := &rewrittenStore{Store: memstore.New()}
	f := newFixture(t, append([]func(*approval.Config){func(c *approval.Config) { c.Store = rs }}, mod...)...)
	f.store = rs.Store
	id := f.Pending(transfer(5000))
	_, err := f.Decide(id, "alice", approval.VerdictApprove)
	require.NoError(t, err)
	_, err = f.Decide(id, "bob", approval.VerdictApprove)
	require.NoError(t, err)
	res, err := f.gate.Guard(f.ctx, transfer(5000))
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeApproved, res.Status)
	denied := transfer(7000)
	_, err = f.Decide(f.Pending(denied), "carol", approval.VerdictDeny)
	require.NoError(t, err)
	_, err = f.gate.Cancel(f.ctx, f.Pending(transfer(9000)), "user-1", "not needed")
	require.NoError(t, err)
	return f, rs
}

func TestVerifyAuditTrailAccountsForEveryRequest(t *testing.T) {
	f, _ := newIntegrityFixture(t)
	r, err := f.gate.VerifyAuditTrail(f.ctx, approval.VerifyAuditOptions{})
	require.NoError(t, err)
	require.EqualValues(t, 3, r.Requests)
	evs := f.events()
	require.Equal(t, int64(len(evs)), r.Events)
	last := evs[len(evs)-1]
	require.Equal(t, approval.AuditHead{Seq: last.Seq, Hash: last.Hash}, r.Head)
	require.Zero(t, r.Checkpoints)
	require.Zero(t, r.LastCheckpoint)
}

func TestCheckpoint(t *testing.T) {
	f, _ := newIntegrityFixture(t)
	before := f.lastEvent()

	h, err := f.gate.Checkpoint(f.ctx)
	require.NoError(t, err)
	cp := f.lastEvent()
	require.Equal(t, approval.AuditHead{Seq: cp.Seq, Hash: cp.Hash}, h)
	require.Equal(t, approval.EventAuditCheckpoint, cp.Type)
	require.Equal(t, approval.SystemActor, cp.Actor)
	require.NotNil(t, cp.Checkpoint)
	require.Equal(t, before.Seq, cp.Checkpoint.Seq)
	require.Equal(t, before.Hash, cp.Checkpoint.Hash)
	require.Equal(t, approval.KeyID(f.priv.Public().(ed25519.PublicKey)), cp.Checkpoint.KeyID)

	r, err := f.gate.VerifyAuditTrail(f.ctx, approval.VerifyAuditOptions{Anchors: []approval.AuditHead{h}})
	require.NoError(t, err)
	require.EqualValues(t, 1, r.Checkpoints)
	require.Equal(t, h, r.LastCheckpoint)
	require.Equal(t, h, r.Head)

	// The trail goes on: the anchor still holds.
	f.Pending(transfer(12000))
	_, err = f.gate.VerifyAuditTrail(f.ctx, approval.VerifyAuditOptions{Anchors: []approval.AuditHead{h}})
	require.NoError(t, err)

	// A gate that only verifies cannot sign.
	pub := f.priv.Public().(ed25519.PublicKey)
	verifier, err := approval.New(approval.Config{Store: f.store, VerifyKeys: []ed25519.PublicKey{pub}, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	_, err = verifier.Checkpoint(f.ctx)
	require.ErrorIs(t, err, approval.ErrUnsupported)
	// It verifies the checkpoint with the public key.
	r, err = verifier.VerifyAuditTrail(f.ctx, approval.VerifyAuditOptions{})
	require.NoError(t, err)
	require.EqualValues(t, 1, r.Checkpoints)

	_, err = f.gate.VerifyAuditTrail(f.ctx, approval.VerifyAuditOptions{Keys: []ed25519.PublicKey{pub[:31]}})
	require.ErrorIs(t, err, approval.ErrInvalidKey)
}

func TestCheckpointOfAnEmptyTrail(t *testing.T) {
	f := newFixture(t)
	h, err := f.gate.Checkpoint(f.ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, h.Seq)
	require.Zero(t, f.lastEvent().Checkpoint.Seq)
	r, err := f.gate.VerifyAuditTrail(f.ctx, approval.VerifyAuditOptions{})
	require.NoError(t, err)
	require.EqualValues(t, 1, r.Checkpoints)
}

// chainError requires err to be an *AuditChainError at seq whose reason
// contains reason.
func chainError(t *testing.T, err error, seq int64, reason string) {
	t.Helper()
	require.ErrorIs(t, err, approval.ErrAuditChain)
	var ce *approval.AuditChainError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, seq, ce.Seq, "%v", err)
	require.Contains(t, ce.Reason, reason)
}

func TestVerifyAuditDetectsAResealedChain(t *testing.T) {
	f, rs := newIntegrityFixture(t)
	// Without a checkpoint, an edit re-sealed through every later hash is
	// a valid chain: only a copy of a later hash kept elsewhere shows it.
	edit := func(evs []approval.AuditEvent) []approval.AuditEvent {
		evs[1].Reason = "nothing to see"
		reseal(evs, 1)
		return evs
	}
	rs.set(edit)
	_, err := f.gate.VerifyAuditTrail(f.ctx, approval.VerifyAuditOptions{})
	require.NoError(t, err)
	rs.set(nil)

	h, err := f.gate.Checkpoint(f.ctx)
	require.NoError(t, err)
	f.Pending(transfer(12000))

	rs.set(edit)
	_, err = f.gate.VerifyAuditTrail(f.ctx, approval.VerifyAuditOptions{})
	chainError(t, err, h.Seq-1, "re-sealed")
	// The anchor kept outside shows it too.
	_, err = f.gate.VerifyAuditTrail(f.ctx, approval.VerifyAuditOptions{Anchors: []approval.AuditHead{h}})
	require.ErrorIs(t, err, approval.ErrAuditChain)

	// Re-sealing after the checkpoint leaves it standing, but not the
	// anchor of the newest event.
	rs.set(nil)
	head, err := f.gate.VerifyAuditTrail(f.ctx, approval.VerifyAuditOptions{})
	require.NoError(t, err)
	rs.set(func(evs []approval.AuditEvent) []approval.AuditEvent {
		evs[len(evs)-1].Reason = "edited"
		reseal(evs, len(evs)-1)
		return evs
	})
	_, err = f.gate.VerifyAuditTrail(f.ctx, approval.VerifyAuditOptions{})
	require.NoError(t, err)
	_, err = f.gate.VerifyAuditTrail(f.ctx, approval.VerifyAuditOptions{Anchors: []approval.AuditHead{head.Head}})
	chainError(t, err, head.Head.Seq, "rewritten")

	// Dropping the checkpoint and re-sealing over the gap: only the
	// anchor shows it.
	rs.set(func(evs []approval.AuditEvent) []approval.AuditEvent {
		i := slices.IndexFunc(evs, func(e approval.AuditEvent) bool { return e.Type == approval.EventAuditCheckpoint })
		evs = slices.Delete(evs, i, i+1)
		evs[1].Reason = "nothing to see"
		reseal(evs, 1)
		return evs
	})
	_, err = f.gate.VerifyAuditTrail(f.ctx, approval.VerifyAuditOptions{})
	require.NoError(t, err)
	_, err = f.gate.VerifyAuditTrail(f.ctx, approval.VerifyAuditOptions{Anchors: []approval.AuditHead{h}})
	chainError(t, err, h.Seq, "rewritten")
}

func TestVerifyAuditChecksCheckpointSignatures(t *testing.T) {
	f, rs := newIntegrityFixture(t)
	_, err := f.gate.Checkpoint(f.ctx)
	require.NoError(t, err)
	at := func(evs []approval.AuditEvent) int {
		return slices.IndexFunc(evs, func(e approval.AuditEvent) bool { return e.Type == approval.EventAuditCheckpoint })
	}

	t.Run("forged signature", func(t *testing.T) {
		rs.set(func(evs []approval.AuditEvent) []approval.AuditEvent {
			i := at(evs)
			c := *evs[i].Checkpoint
			c.Signature = c.Signature[:10] + "A" + c.Signature[11:]
			if c.Signature == evs[i].Checkpoint.Signature {
				c.Signature = c.Signature[:10] + "B" + c.Signature[11:]
			}
			evs[i].Checkpoint = &c
			reseal(evs, i)
			return evs
		})
		defer rs.set(nil)
		_, err := f.gate.VerifyAuditTrail(f.ctx, approval.VerifyAuditOptions{})
		chainError(t, err, f.lastEvent().Seq, "signature does not verify")
	})
	t.Run("another key", func(t *testing.T) {
		_, other, err := approval.GenerateKeys()
		require.NoError(t, err)
		forger, err := approval.New(approval.Config{Store: memstore.New(), SigningKey: other, Logger: slog.New(slog.DiscardHandler)})
		require.NoError(t, err)
		_, err = forger.Checkpoint(f.ctx)
		require.NoError(t, err)
		page, err := forger.ListAudit(f.ctx, approval.AuditQuery{})
		require.NoError(t, err)
		forged := page.Events[0].Checkpoint
		rs.set(func(evs []approval.AuditEvent) []approval.AuditEvent {
			i := at(evs)
			c := *forged
			c.Seq, c.Hash = evs[i-1].Seq, evs[i-1].Hash
			evs[i].Checkpoint = &c
			reseal(evs, i)
			return evs
		})
		defer rs.set(nil)
		_, err = f.gate.VerifyAuditTrail(f.ctx, approval.VerifyAuditOptions{})
		chainError(t, err, f.lastEvent().Seq, "does not know")

		r, err := f.gate.VerifyAuditTrail(f.ctx, approval.VerifyAuditOptions{AllowUnknownKeys: true})
		require.NoError(t, err)
		require.EqualValues(t, 1, r.UnverifiedCheckpoints)
		require.Zero(t, r.Checkpoints)

		// Known, the key's signature does not cover the new head.
		_, err = f.gate.VerifyAuditTrail(f.ctx, approval.VerifyAuditOptions{Keys: []ed25519.PublicKey{other.Public().(ed25519.PublicKey)}})
		chainError(t, err, f.lastEvent().Seq, "signature does not verify")
	})
	t.Run("signature on another event", func(t *testing.T) {
		rs.set(func(evs []approval.AuditEvent) []approval.AuditEvent {
			i := at(evs)
			evs[i].Type = approval.EventAuditSinkFailed
			reseal(evs, i)
			return evs
		})
		defer rs.set(nil)
		_, err := f.gate.VerifyAuditTrail(f.ctx, approval.VerifyAuditOptions{})
		chainError(t, err, f.lastEvent().Seq, "signature on another event")
	})
}

func TestVerifyAuditDetectsTruncationAgainstAnAnchor(t *testing.T) {
	f, rs := newIntegrityFixture(t)
	_, err := f.gate.Checkpoint(f.ctx)
	require.NoError(t, err)
	h, err := f.gate.Checkpoint(f.ctx)
	require.NoError(t, err)
	rs.set(func(evs []approval.AuditEvent) []approval.AuditEvent { return evs[:len(evs)-1] })
	// The shorter trail is a valid chain...
	_, err = f.gate.VerifyAuditTrail(f.ctx, approval.VerifyAuditOptions{})
	require.NoError(t, err)
	// ...that does not reach the anchor.
	_, err = f.gate.VerifyAuditTrail(f.ctx, approval.VerifyAuditOptions{Anchors: []approval.AuditHead{h}})
	chainError(t, err, h.Seq, "truncated")

	// Cutting deeper takes the events of a request with it.
	rs.set(func(evs []approval.AuditEvent) []approval.AuditEvent { return evs[:len(evs)-3] })
	_, err = f.gate.VerifyAuditTrail(f.ctx, approval.VerifyAuditOptions{})
	var se *approval.AuditStateError
	require.ErrorAs(t, err, &se)
	require.Equal(t, "request.cancelled", se.Missing)
}

func TestForgedRequestRow(t *testing.T) {
	f, _ := newIntegrityFixture(t)
	// A request written around the gate, straight into the store, as
	// approved: no event explains it.
	a := transfer(50000)
	pendingID := f.Pending(a)
	real := f.Get(pendingID)
	_, err := f.gate.Cancel(f.ctx, pendingID, "user-1", "make room")
	require.NoError(t, err)
	forged := real.Clone()
	forged.ID = pendingID[:len(pendingID)-1] + map[bool]string{true: "0", false: "1"}[pendingID[len(pendingID)-1] != '0']
	forged.Status = approval.StatusApproved
	forged.Votes = []approval.Vote{{Approver: "mallory", Verdict: approval.VerdictApprove, TokenID: "t", At: real.CreatedAt}}
	_, created, err := f.store.Create(f.ctx, forged, nil)
	require.NoError(t, err)
	require.True(t, created)

	_, err = f.gate.VerifyAuditTrail(f.ctx, approval.VerifyAuditOptions{})
	var se *approval.AuditStateError
	require.ErrorAs(t, err, &se)
	require.ErrorIs(t, err, approval.ErrAuditChain)
	require.Equal(t, forged.ID, se.RequestID)
	require.Equal(t, approval.StatusApproved, se.Status)
	require.Equal(t, "request.created", se.Missing, "the most telling missing event first")

	// Guard does not consume it, and says why in the trail.
	res, err := f.gate.Guard(f.ctx, a)
	require.ErrorIs(t, err, approval.ErrAuditChain)
	require.NotEqual(t, approval.OutcomeApproved, res.Status)
	require.Equal(t, approval.StatusApproved, f.Get(forged.ID).Status, "the forged request was consumed")
	last := f.lastEvent()
	require.Equal(t, approval.EventAuditMismatch, last.Type)
	require.Equal(t, forged.ID, last.RequestID)
	_, err = f.gate.Artifact(f.ctx, forged.ID)
	require.ErrorIs(t, err, approval.ErrAuditChain)
}

func TestForgedVote(t *testing.T) {
	f, _ := newIntegrityFixture(t)
	id := f.Pending(transfer(50000))
	r := f.Get(id)
	next := r.Clone()
	next.Version++
	next.Votes = append(next.Votes, approval.Vote{Approver: "mallory", Verdict: approval.VerdictApprove, TokenID: "t", At: r.CreatedAt})
	require.NoError(t, f.store.Update(f.ctx, approval.Update{Request: next}))

	_, err := f.gate.VerifyAuditTrail(f.ctx, approval.VerifyAuditOptions{})
	var se *approval.AuditStateError
	require.ErrorAs(t, err, &se)
	require.Equal(t, approval.AuditStateError{RequestID: id, Status: approval.StatusPending, Missing: "decision.approve by mallory"}, *se)
	require.Equal(t, "approval: request "+id+" is pending but the audit trail has no decision.approve by mallory event for it", se.Error())
}

func TestTickCheckpoints(t *testing.T) {
	f, _ := newIntegrityFixture(t, func(c *approval.Config) { c.CheckpointInterval = time.Hour })
	count := func() int {
		n := 0
		for _, e := range f.events() {
			if e.Type == approval.EventAuditCheckpoint {
				n++
			}
		}
		return n
	}
	_, err := f.gate.Tick(f.ctx, 0)
	require.NoError(t, err)
	require.Equal(t, 1, count())
	f.Pending(transfer(12000))
	_, err = f.gate.Tick(f.ctx, 0)
	require.NoError(t, err)
	require.Equal(t, 1, count(), "checkpointed before the interval")

	f.clock.Advance(time.Hour)
	_, err = f.gate.Tick(f.ctx, 0)
	require.NoError(t, err)
	require.Equal(t, 2, count())
	// Nothing new since: no checkpoint of a checkpoint.
	f.clock.Advance(time.Hour)
	_, err = f.gate.Tick(f.ctx, 0)
	require.NoError(t, err)
	require.Equal(t, 2, count())

	_, err = approval.New(approval.Config{Store: memstore.New(), SigningKey: f.priv, CheckpointInterval: -time.Second})
	require.ErrorIs(t, err, approval.ErrInvalidConfig)
}

func TestParseAuditHead(t *testing.T) {
	h := approval.AuditHead{Seq: 42, Hash: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
	got, err := approval.ParseAuditHead(" " + h.String() + "\n")
	require.NoError(t, err)
	require.Equal(t, h, got)
	for _, bad := range []string{"", "42", "42:", "0:" + h.Hash, "-1:" + h.Hash, "x:" + h.Hash, "42:" + h.Hash[1:], "42:" + h.Hash[:63] + "G", "42:" + h.Hash + "0"} {
		_, err := approval.ParseAuditHead(bad)
		require.ErrorIs(t, err, approval.ErrInvalidHead, "%q", bad)
	}
}

// TestSwappedActionRow: an approved request's row edited to another
// action (its payload and hashes) no longer matches the events that bound
// the approval to the first one.
func TestSwappedActionRow(t *testing.T) {
	f, _ := newIntegrityFixture(t)
	asked := transfer(50000)
	id := f.Pending(asked)
	for _, who := range []string{"alice", "bob"} {
		_, err := f.Decide(id, who, approval.VerdictApprove)
		require.NoError(t, err)
	}
	_, err := f.gate.VerifyAuditTrail(f.ctx, approval.VerifyAuditOptions{})
	require.NoError(t, err)

	evil := asked
	evil.Payload = []byte(`{"to":"attacker","amount":50000}`)
	actionHash, payloadHash, err := evil.Hashes()
	require.NoError(t, err)
	r := f.Get(id)
	next := r.Clone()
	next.Version++
	next.Action.Payload, next.ActionHash, next.PayloadHash = evil.Payload, actionHash, payloadHash
	require.NoError(t, f.store.Update(f.ctx, approval.Update{Request: next}))

	_, err = f.gate.VerifyAuditTrail(f.ctx, approval.VerifyAuditOptions{})
	var se *approval.AuditStateError
	require.ErrorAs(t, err, &se)
	require.Equal(t, id, se.RequestID)
	require.True(t, se.WrongHashes)
	require.Contains(t, se.Error(), "event is for another action or payload")

	res, err := f.gate.Guard(f.ctx, evil)
	require.ErrorIs(t, err, approval.ErrAuditChain)
	require.NotEqual(t, approval.OutcomeApproved, res.Status)
	require.Equal(t, approval.StatusApproved, f.Get(id).Status, "Guard consumed the swapped approval")
	_, err = f.gate.Artifact(f.ctx, id)
	require.ErrorIs(t, err, approval.ErrAuditChain)
}

// TestSwappedEditedPayload: the bytes of an approved edit replaced, its
// hash kept, are not handed to the requester.
func TestSwappedEditedPayload(t *testing.T) {
	f, _ := newIntegrityFixture(t)
	asked := transfer(50000)
	id := f.Pending(asked)
	edited := []byte(`{"to":"DE89 3704 0044 0532 0130 00","amount":40000}`)
	_, err := f.gate.Decide(f.ctx, id, approval.Decision{Token: f.Token(id, "alice", approval.VerdictApprove), Verdict: approval.VerdictApprove, Payload: edited})
	require.NoError(t, err)
	_, err = f.Decide(id, "bob", approval.VerdictApprove)
	require.NoError(t, err)
	_, err = f.gate.VerifyAuditTrail(f.ctx, approval.VerifyAuditOptions{})
	require.NoError(t, err)

	r := f.Get(id)
	next := r.Clone()
	next.Version++
	next.Edit.Payload = []byte(`{"to":"attacker","amount":40000}`)
	require.NoError(t, f.store.Update(f.ctx, approval.Update{Request: next}))
	res, err := f.gate.Guard(f.ctx, asked)
	require.ErrorIs(t, err, approval.ErrAuditChain)
	require.Nil(t, res.Payload)
	require.Equal(t, approval.StatusApproved, f.Get(id).Status)
}

func TestEventsBindTheHashes(t *testing.T) {
	f := newFixture(t)
	a := transfer(5000)
	actionHash, payloadHash, err := a.Hashes()
	require.NoError(t, err)
	id := f.Pending(a)
	for _, who := range []string{"alice", "bob"} {
		_, err := f.Decide(id, who, approval.VerdictApprove)
		require.NoError(t, err)
	}
	bound := 0
	for _, e := range f.events() {
		switch e.Type {
		case approval.EventRequestCreated, approval.EventRequestApproved:
			require.Equal(t, actionHash, e.ActionHash, "%s", e.Type)
			require.Equal(t, payloadHash, e.PayloadHash, "%s", e.Type)
			bound++
		default:
			require.Empty(t, e.ActionHash, "%s", e.Type)
		}
	}
	require.Equal(t, 2, bound)
}

// TestVerifyAuditTrailWithoutAGate: an auditor verifies a store with its
// public keys alone: no gate, no private key. Without the key a
// checkpoint fails unless AllowUnknownKeys counts it as unverified.
func TestVerifyAuditTrailWithoutAGate(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.Pending(transfer(5000))
	_, err := f.Decide(id, "alice", approval.VerdictApprove)
	require.NoError(t, err)
	h, err := f.gate.Checkpoint(f.ctx)
	require.NoError(t, err)

	pub := f.priv.Public().(ed25519PublicKey)
	rep, err := approval.VerifyAuditTrail(f.ctx, f.store, approval.VerifyAuditOptions{Keys: []ed25519PublicKey{pub}, Anchors: []approval.AuditHead{h}})
	require.NoError(t, err)
	require.Equal(t, h, rep.Head)
	require.EqualValues(t, 1, rep.Checkpoints)
	require.EqualValues(t, 1, rep.Requests)

	_, err = approval.VerifyAuditTrail(f.ctx, f.store, approval.VerifyAuditOptions{})
	require.ErrorIs(t, err, approval.ErrAuditChain, "a checkpoint by a key not given")
	rep, err = approval.VerifyAuditTrail(f.ctx, f.store, approval.VerifyAuditOptions{AllowUnknownKeys: true})
	require.NoError(t, err)
	require.EqualValues(t, 1, rep.UnverifiedCheckpoints)

	_, err = approval.VerifyAuditTrail(f.ctx, f.store, approval.VerifyAuditOptions{Keys: []ed25519PublicKey{pub[:5]}})
	require.ErrorIs(t, err, approval.ErrInvalidKey)
	_, err = approval.VerifyAuditTrail(f.ctx, nil, approval.VerifyAuditOptions{})
	require.ErrorIs(t, err, approval.ErrInvalidConfig)
}
