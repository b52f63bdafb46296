package approval

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// VerifyAuditOptions tune VerifyAuditTrail.
type VerifyAuditOptions struct {
	// Anchors are heads kept outside the store (Checkpoint's results, or
	// the Head of an earlier report). The trail must still hold each one's
	// event, with the same hash: a trail that now ends before it was
	// truncated, and one whose event has another hash was rewritten.
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
}

// AuditReport is what VerifyAuditTrail verified.
type AuditReport struct {
	// Events is how many events were verified: the whole trail (or, for a
	// store that prunes its trail, the kept part) as it was read.
	Events int64
	// Head is the newest event verified; zero for an empty trail.
	Head AuditHead
	// Checkpoints is how many checkpoint signatures verified.
	Checkpoints int64
	// UnverifiedCheckpoints is how many checkpoints were signed by keys
	// unknown to the verifier (with VerifyAuditOptions.AllowUnknownKeys).
	UnverifiedCheckpoints int64
	// LastCheckpoint is the head of the newest checkpoint event; zero if
	// the trail has none.
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
	return VerifyAuditTrail(ctx, g.store, opts)
}

// VerifyAuditTrail reads the whole audit trail of store, page by page, and
// verifies, with no Gate and no private key:
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
// The requests are read first, then the trail: a request that changes
// meanwhile was explained by events already committed. Memory grows with
// the number of stored requests (their expected events), not with the
// trail. VerifyAuditChain checks the chain of events already in hand.
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
	// A store that prunes may drop the start of the trail while it is
	// read: then start over, a few times at most.
	for attempt := 0; ; attempt++ {
		v := &verifier{store: store, opts: &opts, keys: keys}
		err := v.run(ctx)
		var moved errAnchorMoved
		if !errors.As(err, &moved) || attempt == 3 {
			return v.report, err
		}
	}
}

// errAnchorMoved is the verifier's error when a PrunedAudit store pruned
// the events it was about to read.
type errAnchorMoved struct{ *AuditChainError }

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

	start   int64     // the first event's sequence number (after a prune)
	firstAt time.Time // and its time
	recent  [checkpointWindow]AuditHead
	expect  *expectations
}

func (v *verifier) run(ctx context.Context) error {
	var (
		last   *AuditEvent
		q      = AuditQuery{Limit: MaxPageSize}
		anchor string
	)
	v.start = 1
	pruned, prunes := v.store.(PrunedAudit)
	if prunes {
		seq, hash, err := pruned.AuditAnchor(ctx)
		if err != nil {
			return fmt.Errorf("approval: verify audit: %w", err)
		}
		v.start, anchor = seq+1, hash
	}
	exp, err := expectationsOf(ctx, v.store)
	if err != nil {
		return fmt.Errorf("approval: verify audit: %w", err)
	}
	v.expect, v.report.Requests = exp, exp.requests
	for {
		page, err := v.store.ListAudit(ctx, q)
		if err != nil {
			return fmt.Errorf("approval: verify audit: %w", err)
		}
		evs := page.Events
		if last != nil {
			evs = append([]AuditEvent{*last}, evs...)
		} else if len(evs) > 0 && (evs[0].Seq != v.start || evs[0].PrevHash != anchor) {
			err := &AuditChainError{Seq: v.start, Reason: fmt.Sprintf("trail starts at seq %d", evs[0].Seq)}
			if evs[0].Seq == v.start {
				err.Reason = "the first kept event does not continue from the store's anchor"
			}
			if prunes && evs[0].Seq > v.start {
				if seq, _, aerr := pruned.AuditAnchor(ctx); aerr == nil && seq+1 > v.start {
					return errAnchorMoved{err}
				}
			}
			return err
		}
		if err := VerifyAuditChain(evs); err != nil {
			return err
		}
		for i := range page.Events {
			if err := v.event(&page.Events[i]); err != nil {
				return err
			}
		}
		v.report.Events += int64(len(page.Events))
		if len(page.Events) > 0 {
			e := page.Events[len(page.Events)-1]
			last = &e
		}
		if page.Next == "" {
			break
		}
		q.Cursor = page.Next
	}
	if err := v.anchorsReached(); err != nil {
		return err
	}
	if prunes && v.start > 1 {
		// The events of requests made before the kept part may be gone.
		v.expect.forgetBefore(v.firstAt)
	}
	return v.expect.missing()
}

// event checks one event whose place in the chain is verified.
func (v *verifier) event(e *AuditEvent) error {
	if v.report.Events == 0 && v.firstAt.IsZero() {
		v.firstAt = e.At
	}
	v.recent[e.Seq%checkpointWindow] = AuditHead{Seq: e.Seq, Hash: e.Hash}
	v.report.Head = AuditHead{Seq: e.Seq, Hash: e.Hash}
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
	v.expect.saw(e)
	return nil
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
	// An event before the kept part of a pruned trail cannot be compared:
	// the signature still binds the checkpoint to what it signed.
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

// expectations are the events the stored requests need, counted down as
// the trail is read.
type expectations struct {
	need     map[expectKey]*expected
	requests int64
}

// expectKey names an event a request needs: of a type, and for a vote's
// event, by an actor.
type expectKey struct {
	id    string
	typ   EventType
	actor string
}

type expected struct {
	n       int
	status  Status
	created time.Time
	// actionHash and payloadHash, when set, are the hashes the event
	// must bind; wrongHash records that one came with others.
	actionHash, payloadHash string
	wrongHash               bool
}

// expectations reads every stored request and lists the events that
// must explain its state.
func expectationsOf(ctx context.Context, store Store) (*expectations, error) {
	x := &expectations{need: make(map[expectKey]*expected)}
	q := RequestQuery{Limit: MaxPageSize}
	for {
		page, err := store.List(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("list requests: %w", err)
		}
		for _, r := range page.Requests {
			x.add(r)
		}
		if page.Next == "" {
			return x, nil
		}
		q.Cursor = page.Next
	}
}

// add lists the events r's state needs.
func (x *expectations) add(r *Request) {
	x.requests++
	need := func(typ EventType, actor string) *expected {
		k := expectKey{id: r.ID, typ: typ, actor: actor}
		if e := x.need[k]; e != nil {
			e.n++
			return e
		}
		e := &expected{n: 1, status: r.Status, created: r.CreatedAt}
		x.need[k] = e
		return e
	}
	bound := func(typ EventType, actionHash, payloadHash string) {
		e := need(typ, "")
		e.actionHash, e.payloadHash = actionHash, payloadHash
	}
	bound(EventRequestCreated, r.ActionHash, r.PayloadHash)
	approved := func() {
		a, p := r.boundHashes()
		bound(EventRequestApproved, a, p)
	}
	uses := func(n int) {
		for range n {
			need(EventApprovalConsumed, "")
		}
	}
	switch r.Status {
	case StatusApproved:
		approved()
		uses(r.Uses)
	case StatusConsumed:
		approved()
		uses(max(r.Uses, 1))
	case StatusExpired:
		approved()
		uses(r.Uses)
		need(EventApprovalExpired, "")
	case StatusDenied:
		need(EventRequestDenied, "")
	case StatusCancelled:
		need(EventRequestCancelled, "")
	case StatusTimedOut:
		need(EventRequestTimedOut, "")
	}
	if r.Edit != nil {
		bound(EventPayloadEdited, r.Edit.ActionHash, r.Edit.PayloadHash)
	}
	for _, v := range r.Votes {
		switch {
		case v.BreakGlass:
			need(EventBreakGlass, v.Approver)
		case v.Verdict == VerdictDeny:
			need(EventDecisionDeny, v.Approver)
		default:
			need(EventDecisionApprove, v.Approver)
		}
	}
}

// saw counts e toward the requests that need it.
func (x *expectations) saw(e *AuditEvent) {
	if e.RequestID == "" || len(x.need) == 0 {
		return
	}
	if n := x.need[expectKey{id: e.RequestID, typ: e.Type}]; n != nil && n.n > 0 {
		if n.actionHash == e.ActionHash && n.payloadHash == e.PayloadHash {
			n.n--
		} else {
			n.wrongHash = true
		}
	}
	switch e.Type {
	case EventDecisionApprove, EventDecisionDeny, EventBreakGlass:
		if n := x.need[expectKey{id: e.RequestID, typ: e.Type, actor: e.Actor}]; n != nil && n.n > 0 {
			n.n--
		}
	}
}

// forgetBefore drops the needs of requests created at or before t: their
// events may be in the part of the trail a store pruned.
func (x *expectations) forgetBefore(t time.Time) {
	for k, e := range x.need {
		if !e.created.After(t) {
			delete(x.need, k)
		}
	}
}

// expectRank orders a request's missing events by how much they tell: no
// request.created says the whole row was written around the gate.
func expectRank(t EventType) int {
	switch t {
	case EventRequestCreated:
		return 0
	case EventRequestApproved, EventRequestDenied, EventRequestCancelled, EventRequestTimedOut:
		return 1
	}
	return 2
}

// missing returns an *AuditStateError for the first request (by ID) that
// needs an event the trail did not have, or nil.
func (x *expectations) missing() error {
	var keys []expectKey
	for k, e := range x.need {
		if e.n > 0 {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	k := slices.MinFunc(keys, func(a, b expectKey) int {
		return cmp.Or(strings.Compare(a.id, b.id), cmp.Compare(expectRank(a.typ), expectRank(b.typ)),
			strings.Compare(string(a.typ), string(b.typ)), strings.Compare(a.actor, b.actor))
	})
	what := string(k.typ)
	if k.actor != "" {
		what += " by " + k.actor
	}
	return &AuditStateError{RequestID: k.id, Status: x.need[k].status, Missing: what, WrongHashes: x.need[k].wrongHash}
}

// accounted checks that the trail holds the request.approved event of
// approved (or consumed) request r, bound to the hashes r approves (and
// that an edited payload's bytes have the hash approved), before the gate consumes it or signs
// its artifact. A request row written around the gate, forged as
// approved, has none: the gate audits audit.mismatch and refuses with an
// *AuditStateError (fail closed). A forged row together with a forged
// event breaks the hash chain, which VerifyAudit reports.
func (g *Gate) accounted(ctx context.Context, r *Request) error {
	page, err := g.store.ListAudit(ctx, AuditQuery{RequestID: r.ID, Type: EventRequestApproved, Limit: 1})
	if err != nil {
		return fmt.Errorf("approval: read the approval of %s from the audit trail: %w", r.ID, err)
	}
	actionHash, payloadHash := r.boundHashes()
	wrong := len(page.Events) == 1
	if wrong {
		e := &page.Events[0]
		if e.RequestID == r.ID && e.Type == EventRequestApproved && e.ComputeHash() == e.Hash &&
			e.ActionHash == actionHash && e.PayloadHash == payloadHash &&
			(r.Edit == nil || PayloadHash(r.Edit.Payload) == r.Edit.PayloadHash) {
			return nil
		}
	}
	serr := &AuditStateError{RequestID: r.ID, Status: r.Status, Missing: string(EventRequestApproved), WrongHashes: wrong}
	g.log.Error("approval: refused an approval the audit trail does not account for", "request", r.ID, "err", serr)
	ev := []AuditEvent{{RequestID: r.ID, Type: EventAuditMismatch, Actor: SystemActor, Policies: policyRefs(r.Policies),
		Reason: "refused: the request is " + string(r.Status) + " but the trail has no request.approved event for its action and payload", At: normalizeTime(g.now())}}
	if err := g.record(ctx, ev); err != nil {
		g.log.Error("approval: cannot audit an audit mismatch", "request", r.ID, "err", err)
	}
	return serr
}
