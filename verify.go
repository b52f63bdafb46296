package approval

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"
)

// VerifyAuditOptions tune VerifyAuditTrail.
type VerifyAuditOptions struct {
	// Anchors are heads kept outside the store (Checkpoint's results, or
	// the Head of an earlier report). The trail must still hold each one's
	// event, with the same hash: a trail that now ends before it was
	// truncated, and one whose event has another hash was rewritten. With
	// From, an anchor before From.Seq is ErrInvalidConfig: only a run from
	// the start of the trail can check it.
	Anchors []AuditHead
	// Keys are the public keys whose checkpoints verify. Gate's
	// VerifyAuditTrail adds the gate's own (SigningKey and VerifyKeys);
	// pass the keys of retired gates here.
	Keys []ed25519.PublicKey
	// AllowUnknownKeys counts a checkpoint signed by a key not in Keys
	// as unverified (AuditReport.UnverifiedCheckpoints) instead
	// of failing: for a verifier that holds no keys. Its link to the chain
	// is still checked; only its signature is not.
	AllowUnknownKeys bool
	// From makes the run incremental: it starts at an event that an
	// earlier run verified (that run's AuditReport.Head or LastCheckpoint,
	// or an anchor kept outside the store) instead of at the start of the
	// trail. The trail must still hold that event, with From.Hash as its
	// hash and its content unchanged; the chain is verified from it to
	// the end. See VerifyAuditTrail for what such a run does not check.
	// The zero AuditHead verifies the whole trail; a From that is not a
	// well-formed head (a Seq from 1 and a hex SHA-256) is ErrInvalidHead.
	From AuditHead
	// Progress, if not nil, is called with how far the verification has
	// read: at most four times a second while the trail is read, and once
	// when it has been read. It is called on VerifyAuditTrail's goroutine
	// and should return at once.
	Progress func(AuditProgress)
}

// AuditProgress is how far a VerifyAuditTrail has read (see
// VerifyAuditOptions.Progress).
type AuditProgress struct {
	// Events is how many events have been verified so far.
	Events int64
	// Seq is the sequence number of the last of them.
	Seq int64
}

// progressInterval is the least time between two calls of
// VerifyAuditOptions.Progress while the trail is read.
var progressInterval = 250 * time.Millisecond

// AuditReport is what VerifyAuditTrail verified.
type AuditReport struct {
	// Events is how many events were verified: the whole trail (or, for a
	// store that prunes its trail, the kept part; for an incremental run,
	// the part from VerifyAuditOptions.From on) as it was read.
	Events int64
	// Head is the newest event verified; zero for an empty trail. Keep it
	// outside the store: the next run's From or one of its Anchors.
	Head AuditHead
	// Checkpoints is how many checkpoint signatures verified.
	Checkpoints int64
	// UnverifiedCheckpoints is how many checkpoints were signed by keys
	// unknown to the verifier (with VerifyAuditOptions.AllowUnknownKeys).
	UnverifiedCheckpoints int64
	// LastCheckpoint is the head of the newest checkpoint event; zero if
	// the trail has none (or, in an incremental run, none from From on).
	LastCheckpoint AuditHead
	// Requests is how many stored requests were checked against the
	// events that explain their state.
	Requests int64
}

// AuditStateError reports a stored request whose state the audit trail
// does not account for: a status, vote or edit without the event that the
// gate writes with it. It wraps ErrAuditChain.
type AuditStateError struct {
	// RequestID is the request whose state is not accounted for.
	RequestID string
	// Status is its stored status.
	Status Status
	// Missing names the event the trail lacks ("request.approved",
	// "decision.approve by alice").
	Missing string
	// WrongHashes: the trail has such an event, bound to another action
	// or payload (AuditEvent.ActionHash) than the request's: the row was
	// edited to another action.
	WrongHashes bool
}

func (e *AuditStateError) Error() string {
	if e.WrongHashes {
		return fmt.Sprintf("approval: request %s is %s but its %s event is for another action or payload", e.RequestID, e.Status, e.Missing)
	}
	return fmt.Sprintf("approval: request %s is %s but the audit trail has no %s event for it", e.RequestID, e.Status, e.Missing)
}

func (e *AuditStateError) Unwrap() error { return ErrAuditChain }

// VerifyAuditTrail verifies the audit trail of the gate's store with the
// gate's keys (its SigningKey's public half and VerifyKeys) and
// opts.Keys: VerifyAuditTrail over g's Store.
func (g *Gate) VerifyAuditTrail(ctx context.Context, opts VerifyAuditOptions) (AuditReport, error) {
	keys := make([]ed25519.PublicKey, 0, len(g.keys.verify)+len(opts.Keys))
	for _, pub := range g.keys.verify {
		keys = append(keys, pub)
	}
	opts.Keys = append(keys, opts.Keys...)
	rep, err := VerifyAuditTrail(ctx, g.store, opts)
	if err == nil {
		g.verified.Store(&VerifiedHead{Head: rep.Head, Events: rep.Events, At: g.now()})
	}
	return rep, err
}

// VerifyAuditTrail reads the whole audit trail of store, in one pass, and
// its requests, in another beside it, and verifies, with no Gate and no
// private key:
//
//   - its hash chain from the first event (or, for a store that prunes its
//     trail, see PrunedAudit, from the first kept event, which must
//     continue from the store's anchor);
//   - every checkpoint: its signature, by one of opts.Keys (see
//     AllowUnknownKeys), and that the event it signed is in the chain with
//     the hash signed;
//   - opts.Anchors;
//   - every stored request against the events that explain its state: its
//     request.created, the event of its status (request.approved for an
//     approved, consumed or expired request, and approval.consumed or
//     approval.expired; request.denied, request.cancelled or
//     request.timed_out), one decision (or break-glass) event by each
//     voter, and request.payload_edited for an edited payload; the
//     created, edited and approved events must bind the request's action
//     and payload hashes (AuditEvent.ActionHash).
//
// A broken chain, checkpoint or anchor is an *AuditChainError naming the
// first bad sequence number; a request the trail does not account for is
// an *AuditStateError (the one with the smallest ID, if several). Both
// wrap ErrAuditChain. A store's own check of its columns against the
// events (sqlstore's) fails the read with an *AuditChainError too. A key
// of the wrong size is ErrInvalidKey.
//
// The requests are read in ID order, which is the order they were
// created in, as the trail reaches them: a request is read before the
// first of its events is checked, and is checked off as its events go
// by, and forgotten at the last of those it needs. The requests created
// while the trail was read are read once it has been, and then the events
// appended meanwhile: each request is checked as it was read, against
// every event committed before. Memory grows with the requests open at
// once over the trail's history (read, and waiting for an event further
// on), plus one page of requests read ahead (MaxPageSize), the heads of
// the last 4,096 events (for the checkpoints) and what the store reads at
// once; not with the trail's length, nor with the stored requests. A
// request whose ID sorts ahead of its creation (a gate whose clock runs
// ahead of the others') makes the requests between read early. A store
// that does not list requests in byte order of their IDs (a collation
// other than byte order, and IDs that are not the gate's) is read again
// with every request first, memory then growing with the stored
// requests. A store that implements AuditStream is read without pages,
// and of each request only the part the trail accounts for is decoded.
//
// With opts.From, the run is incremental: it checks the chain, the
// checkpoints and the anchors from the event From names on, and the
// requests created after that event's time, against the events from it
// on. It does not check the events before From (the chain may have been
// rewritten there; From's own PrevHash is taken on trust), nor whether a
// checkpoint after From signed an event before it with the hash that
// event has (its signature is still verified), nor the requests created
// at or before From's event: their events may lie before it, so a row
// forged with an old creation time, or an old request edited since, is
// found only by a run from the start. A store that does not implement
// AuditStream is still read from the start of its trail (its cursors
// cannot start elsewhere); only the verification starts at From.
// VerifyAuditChain checks the chain of events already in hand.
func VerifyAuditTrail(ctx context.Context, store Store, opts VerifyAuditOptions) (AuditReport, error) {
	if store == nil {
		return AuditReport{}, fmt.Errorf("approval: verify audit: %w: the store is nil", ErrInvalidConfig)
	}
	keys := make(map[string]ed25519.PublicKey, len(opts.Keys))
	for _, pub := range opts.Keys {
		if len(pub) != ed25519.PublicKeySize {
			return AuditReport{}, fmt.Errorf("approval: verify audit: %w: a key has %d bytes, want %d", ErrInvalidKey, len(pub), ed25519.PublicKeySize)
		}
		keys[KeyID(pub)] = pub
	}
	if f := opts.From; f != (AuditHead{}) {
		if f.Seq < 1 || !isHexHash(f.Hash) {
			return AuditReport{}, fmt.Errorf("approval: verify audit: From: %w %d:%.80q: want a sequence number from 1 and 64 lowercase hex digits", ErrInvalidHead, f.Seq, f.Hash)
		}
		for _, a := range opts.Anchors {
			if a.Seq < f.Seq {
				return AuditReport{}, fmt.Errorf("approval: verify audit: %w: anchor %d is before From (seq %d): only a run from the start of the trail checks it", ErrInvalidConfig, a.Seq, f.Seq)
			}
		}
	}
	v, err := verify(ctx, store, &opts, keys)
	return v.report, err
}

// verify runs verifiers until one finishes.
func verify(ctx context.Context, store Store, opts *VerifyAuditOptions, keys map[string]ed25519.PublicKey) (*verifier, error) {
	requestsFirst := false
	for attempt := 0; ; attempt++ {
		v := &verifier{store: store, opts: opts, keys: keys, requestsFirst: requestsFirst}
		err := v.run(ctx)
		if errors.Is(err, errUnordered) && !requestsFirst {
			requestsFirst = true
			continue
		}
		// A store that prunes may drop the start of the trail while it
		// is read: then start over, a few times at most.
		var moved errAnchorMoved
		if !errors.As(err, &moved) || attempt == 3 {
			return v, err
		}
	}
}

// errAnchorMoved is the verifier's error when a PrunedAudit store pruned
// the events it was about to read.
type errAnchorMoved struct{ *AuditChainError }

// errUnordered is the verifier's error when the store lists requests in
// another order than their IDs' bytes: the run starts over, reading every
// request first.
var errUnordered = errors.New("approval: verify audit: the store does not list requests in byte order of their IDs")

// checkpointWindow is how far back a checkpoint may sign: the event it
// names must be among the checkpointWindow events before it. The gate
// appends a checkpoint just after reading the head, so only the appends
// of that moment come between.
const checkpointWindow = 4096

// verifier is one pass of VerifyAuditTrail.
type verifier struct {
	store  Store
	opts   *VerifyAuditOptions
	keys   map[string]ed25519.PublicKey
	report AuditReport

	// The trail: where it is read from, the first sequence number
	// verified (after a prune, or From), the hash the first event
	// continues from (a pruned store's anchor), the first event's time,
	// and the heads of the latest events, for the checkpoints.
	trail    trailReader
	start    int64
	anchor   string
	firstAt  time.Time
	recent   [checkpointWindow]AuditHead
	buf      []byte
	progress time.Time

	// The requests: where they are read from, the last ID read, whether
	// all were, and what the trail still owes the requests read.
	requestsFirst bool
	requests      requestReader
	lastID        string
	someRead      bool
	listed        bool
	owed          map[string]*owed
	owedPeak      int // the most requests in owed at once
}

func (v *verifier) run(ctx context.Context) error {
	v.start = 1
	pruned, prunes := v.store.(PrunedAudit)
	if prunes {
		seq, hash, err := pruned.AuditAnchor(ctx)
		if err != nil {
			return fmt.Errorf("approval: verify audit: %w", err)
		}
		v.start, v.anchor = seq+1, hash
	}
	if f := v.opts.From.Seq; f > 0 {
		if f < v.start {
			return &AuditChainError{Seq: f, Reason: fmt.Sprintf("the verification cannot start there: the store pruned its trail before seq %d", v.start)}
		}
		v.start = f
	}
	v.owed = make(map[string]*owed)
	if s, ok := v.store.(AuditStream); ok {
		v.trail = &streamedTrail{s: s, after: v.start - 1}
	} else {
		v.trail = &pagedTrail{s: v.store}
	}
	if v.opts.Progress != nil {
		v.progress = time.Now()
	}
	if err := v.trail.read(ctx, v.event); err != nil {
		return readErr(err)
	}
	if v.report.Events == 0 && v.opts.From.Seq > 0 {
		return &AuditChainError{Seq: v.opts.From.Seq, Reason: fmt.Sprintf("the trail was truncated: the verification starts at seq %d, which the trail no longer holds", v.opts.From.Seq)}
	}
	// Every request not read yet (created while the trail was read, or
	// with no event at all), then the events appended meanwhile: those
	// that explain the requests just read.
	if err := v.readRequests(ctx, "", true); err != nil {
		return readErr(err)
	}
	if err := v.trail.read(ctx, v.event); err != nil {
		return readErr(err)
	}
	if v.opts.Progress != nil {
		v.opts.Progress(AuditProgress{Events: v.report.Events, Seq: v.report.Head.Seq})
	}
	if err := v.anchorsReached(); err != nil {
		return err
	}
	return v.missing()
}

// readErr is err, from reading the store, as the verification returns
// it: its own findings as they are, the store's errors with context.
func readErr(err error) error {
	switch err.(type) {
	case *AuditChainError, *AuditStateError, errAnchorMoved:
		return err
	}
	if err == errUnordered {
		return err
	}
	return fmt.Errorf("approval: verify audit: %w", err)
}

// event verifies one event of the trail, the next in sequence order.
func (v *verifier) event(ctx context.Context, e *AuditEvent) error {
	if v.report.Events == 0 && e.Seq < v.opts.From.Seq {
		// A trail read through ListAudit is read from its start.
		return nil
	}
	if v.report.Events == 0 {
		if err := v.first(ctx, e); err != nil {
			return err
		}
	} else if prev := v.report.Head; e.Seq != prev.Seq+1 {
		// A gap names the first missing number; an event out of place (a
		// reordering or duplicate) names that event.
		return &AuditChainError{Seq: min(prev.Seq+1, e.Seq), Reason: fmt.Sprintf("expected seq %d, found %d", prev.Seq+1, e.Seq)}
	} else if e.PrevHash != prev.Hash {
		return &AuditChainError{Seq: e.Seq, Reason: "prev_hash does not match the previous event's hash"}
	}
	if !v.hashes(e) {
		return &AuditChainError{Seq: e.Seq, Reason: "hash does not match the event's content"}
	}
	v.recent[e.Seq%checkpointWindow] = AuditHead{Seq: e.Seq, Hash: e.Hash}
	v.report.Head = AuditHead{Seq: e.Seq, Hash: e.Hash}
	v.report.Events++
	for _, a := range v.opts.Anchors {
		if a.Seq == e.Seq && a.Hash != e.Hash {
			return &AuditChainError{Seq: e.Seq, Reason: fmt.Sprintf("the trail was rewritten: the event has hash %s, the anchor kept outside the store has %s", e.Hash, a.Hash)}
		}
	}
	if (e.Type == EventAuditCheckpoint) != (e.Checkpoint != nil) {
		return &AuditChainError{Seq: e.Seq, Reason: "a checkpoint without a signature, or a signature on another event"}
	}
	if e.Checkpoint != nil {
		if err := v.checkpoint(e); err != nil {
			return err
		}
	}
	if e.RequestID != "" && accountsFor(e.Type) {
		if !v.listed && (!v.someRead || e.RequestID > v.lastID) {
			if err := v.readRequests(ctx, e.RequestID, false); err != nil {
				return err
			}
		}
		if o := v.owed[e.RequestID]; o != nil && o.saw(e) {
			delete(v.owed, e.RequestID)
		}
	}
	if v.opts.Progress != nil && v.report.Events%1024 == 0 {
		if now := time.Now(); now.Sub(v.progress) >= progressInterval {
			v.progress = now
			v.opts.Progress(AuditProgress{Events: v.report.Events, Seq: e.Seq})
		}
	}
	return nil
}

// first checks that the first event read is where the verification
// starts, and reads every request first if the run must.
func (v *verifier) first(ctx context.Context, e *AuditEvent) error {
	if f := v.opts.From; f.Seq > 0 {
		switch {
		case e.Seq != f.Seq:
			return &AuditChainError{Seq: f.Seq, Reason: fmt.Sprintf("the trail no longer holds seq %d, where the verification starts: it continues with seq %d", f.Seq, e.Seq)}
		case e.Hash != f.Hash:
			return &AuditChainError{Seq: e.Seq, Reason: fmt.Sprintf("the trail was rewritten: the event has hash %s, the head verified before has %s", e.Hash, f.Hash)}
		}
	} else if e.Seq != v.start || e.PrevHash != v.anchor {
		err := &AuditChainError{Seq: v.start, Reason: fmt.Sprintf("trail starts at seq %d", e.Seq)}
		if e.Seq == v.start {
			err.Reason = "the first kept event does not continue from the store's anchor"
		}
		if pruned, ok := v.store.(PrunedAudit); ok && e.Seq > v.start {
			if seq, _, aerr := pruned.AuditAnchor(ctx); aerr == nil && seq+1 > v.start {
				return errAnchorMoved{err}
			}
		}
		return err
	}
	v.firstAt = e.At
	if v.requestsFirst {
		return v.readRequests(ctx, "", true)
	}
	return nil
}

// hashes reports whether e's hash is the hash of its content.
func (v *verifier) hashes(e *AuditEvent) bool {
	v.buf = e.appendCanonical(v.buf[:0])
	return hashIs(v.buf, e.Hash)
}

// checkpoint checks checkpoint event e: that it signs an event of the
// chain, by its hash, with a key the verifier knows.
func (v *verifier) checkpoint(e *AuditEvent) error {
	c := e.Checkpoint
	switch {
	case c.Seq < 0 || c.Seq >= e.Seq:
		return &AuditChainError{Seq: e.Seq, Reason: fmt.Sprintf("the checkpoint signs seq %d, not an event before it", c.Seq)}
	case c.Seq == 0:
		if c.Hash != "" {
			return &AuditChainError{Seq: e.Seq, Reason: "the checkpoint of an empty trail signs a hash"}
		}
	case c.Seq >= v.start:
		if e.Seq-c.Seq > checkpointWindow {
			return &AuditChainError{Seq: e.Seq, Reason: fmt.Sprintf("the checkpoint signs seq %d, more than %d events before it", c.Seq, checkpointWindow)}
		}
		if h := v.recent[c.Seq%checkpointWindow]; h.Seq != c.Seq || h.Hash != c.Hash {
			return &AuditChainError{Seq: c.Seq, Reason: fmt.Sprintf("the event's hash is not the one checkpoint %d signed: the chain was re-sealed", e.Seq)}
		}
	}
	// An event before the verified part of the trail (pruned, or before
	// From) cannot be compared: the signature still binds the checkpoint
	// to what it signed.
	pub, ok := v.keys[c.KeyID]
	switch {
	case !ok && v.opts.AllowUnknownKeys:
		v.report.UnverifiedCheckpoints++
	case !ok:
		return &AuditChainError{Seq: e.Seq, Reason: fmt.Sprintf("the checkpoint is signed by key %.40q, which the verifier does not know (pass its public key)", c.KeyID)}
	case !verifyCheckpointSignature(e, pub):
		return &AuditChainError{Seq: e.Seq, Reason: "the checkpoint's signature does not verify"}
	default:
		v.report.Checkpoints++
	}
	v.report.LastCheckpoint = AuditHead{Seq: e.Seq, Hash: e.Hash}
	return nil
}

// anchorsReached fails for an anchor past the verified trail's end, or
// before its kept part.
func (v *verifier) anchorsReached() error {
	for _, a := range v.opts.Anchors {
		switch {
		case a.Seq > v.report.Head.Seq:
			have := "it is empty"
			if v.report.Head.Seq > 0 {
				have = fmt.Sprintf("it now ends at seq %d", v.report.Head.Seq)
			}
			return &AuditChainError{Seq: v.report.Head.Seq + 1, Reason: fmt.Sprintf("the trail was truncated: the anchor kept outside the store is seq %d but %s", a.Seq, have)}
		case a.Seq < v.start:
			return &AuditChainError{Seq: a.Seq, Reason: fmt.Sprintf("the anchor cannot be checked: the store pruned its trail before seq %d", v.start)}
		}
	}
	return nil
}
