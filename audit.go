package approval

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/signoff/approval/internal/canon"
	"github.com/signoff/approval/internal/host"
)

// EventType names an audit event.
type EventType string

// Audit event types.
const (
	EventRequestCreated      EventType = "request.created"
	EventRequestDeduplicated EventType = "request.deduplicated"
	EventNotificationSent    EventType = "notification.sent"
	EventNotificationFailed  EventType = "notification.failed"
	// EventNotificationDeadLettered: an outbox message failed its last
	// attempt, or was refused for good, and waits for Gate.Redrive.
	EventNotificationDeadLettered EventType = "notification.dead_lettered"
	// EventNotificationRedriven: an operator sent a dead letter again.
	EventNotificationRedriven EventType = "notification.redriven"
	EventDecisionApprove      EventType = "decision.approve"
	EventDecisionDeny         EventType = "decision.deny"
	// EventDecisionRejected is a security event: a decision was refused (bad
	// token, ineligible approver, self-approval, a Directory that failed...)
	// and changed nothing.
	EventDecisionRejected EventType = "decision.rejected"
	// EventRequestEscalated: an escalation step added approvers.
	EventRequestEscalated EventType = "request.escalated"
	// EventRequestReassigned: an escalation step replaced a level's
	// approvers.
	EventRequestReassigned EventType = "request.reassigned"
	// EventRequestAlerted: an escalation step alerted people who do not
	// decide.
	EventRequestAlerted EventType = "request.alerted"
	// EventRequestReminded: the approvers who had not answered were
	// reminded (Policy.ReminderInterval, or an escalation step).
	EventRequestReminded EventType = "request.reminded"
	// EventLevelPassed: a level of a policy's chain was met, passed on
	// its timeout, or passed by an auto_approve step; the reason says
	// which.
	EventLevelPassed EventType = "request.level_passed"
	// EventLevelSkipped: a conditional level did not apply to the action.
	EventLevelSkipped EventType = "request.level_skipped"
	// EventLevelOpened: a policy's next level became current; its
	// approvers are notified.
	EventLevelOpened      EventType = "request.level_opened"
	EventRequestTimedOut  EventType = "request.timed_out"
	EventRequestApproved  EventType = "request.approved"
	EventRequestDenied    EventType = "request.denied"
	EventRequestCancelled EventType = "request.cancelled"
	// EventDeadlineMoved: someone moved an open request's deadline
	// (Gate.MoveDeadline); the reason gives both times and why.
	EventDeadlineMoved    EventType = "request.deadline_moved"
	EventApprovalConsumed EventType = "approval.consumed"
	EventApprovalExpired  EventType = "approval.expired"
	// EventPolicyError records a custom matcher that failed and so applied
	// its policy (fail closed).
	EventPolicyError EventType = "policy.error"
	// EventAuditSinkFailed records that Config.Audit failed, panicked or
	// did not return in time, with the sink's error as reason and the
	// sequence numbers of the events it may have missed. It is written to
	// the store only: it is never mirrored to the sink.
	EventAuditSinkFailed EventType = "audit.sink_failed"
)

// AuditEvent is one entry of the append-only audit trail. Events form a
// SHA-256 hash chain: each event's Hash covers its content and PrevHash, the
// Hash of the event before it, so any edit, deletion or reordering breaks
// the chain (see VerifyAuditChain).
type AuditEvent struct {
	// Seq is the event's position in the trail, from 1, without gaps.
	Seq int64 `json:"seq"`
	// RequestID is the request the event is about; empty for events about
	// no request (delegations, checkpoints, sink failures).
	RequestID string `json:"request_id,omitempty"`
	// Type says what happened (see the EventType constants).
	Type EventType `json:"type"`
	// Actor is who caused the event: a requester, an approver, or "system"
	// for timeouts and expiry. For a rejected token it is the subject the
	// token claimed, which may be forged.
	Actor string `json:"actor,omitempty"`
	// OnBehalfOf names the original approver when a delegate acted.
	OnBehalfOf string `json:"on_behalf_of,omitempty"`
	// Policies are the names and snapshot hashes of the request's policies.
	Policies []PolicyRef `json:"policies,omitempty"`
	// Verdict is a decision event's answer.
	Verdict Verdict `json:"verdict,omitempty"`
	// Reason explains the event in words: a decision's reason, why a
	// request was denied or escalated, an error.
	Reason string `json:"reason,omitempty"`
	// Conditions are the limits an approval was given under (a
	// decision.approve with Decision.Conditions).
	Conditions []string `json:"conditions,omitempty"`
	// ActionHash and PayloadHash bind request.created (the hashes asked
	// for), request.payload_edited (the edited ones) and request.approved
	// (those approved) to the action, so that a request row edited to
	// another action no longer matches its events (see VerifyAuditTrail).
	ActionHash string `json:"action_hash,omitempty"`
	// PayloadHash is the payload's, beside ActionHash.
	PayloadHash string `json:"payload_hash,omitempty"`
	// Passkey is, on a decision confirmed with a passkey, the digest of
	// the vote's assertion (PasskeyProof.Digest): the vote's
	// Vote.Passkey, bound into the chain.
	Passkey string `json:"passkey,omitempty"`
	// Checkpoint is the signed head of an audit.checkpoint event (see
	// Gate.Checkpoint); nil on every other event.
	Checkpoint *AuditCheckpoint `json:"checkpoint,omitempty"`
	// At is the event time, in UTC with microsecond precision so that every
	// store round-trips it exactly.
	At time.Time `json:"at"`
	// PrevHash is the Hash of the event before this one; empty for the
	// first event of a trail.
	PrevHash string `json:"prev_hash"`
	// Hash is the SHA-256 of the event's canonical form, PrevHash
	// included, in lower-case hex (docs/FORMATS.md).
	Hash string `json:"hash"`
}

// Clone returns a copy of e that shares no memory with it.
func (e AuditEvent) Clone() AuditEvent {
	e.Policies = slices.Clone(e.Policies)
	e.Conditions = slices.Clone(e.Conditions)
	if e.Checkpoint != nil {
		c := *e.Checkpoint
		e.Checkpoint = &c
	}
	return e
}

// PolicyRef names a policy snapshot.
type PolicyRef struct {
	// Name is the policy's name.
	Name string `json:"name"`
	// Hash is the SHA-256 of the policy's canonical definition when the
	// request matched it.
	Hash string `json:"hash"`
}

// appendPolicyRefs writes refs as a canonical JSON array.
func appendPolicyRefs(b []byte, refs []PolicyRef) []byte {
	b = append(b, '[')
	for i, p := range refs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		b = canon.AppendKey(b, "hash")
		b = canon.AppendString(b, p.Hash)
		b = append(b, ',')
		b = canon.AppendKey(b, "name")
		b = canon.AppendString(b, p.Name)
		b = append(b, '}')
	}
	return append(b, ']')
}

// SystemActor is the actor of events the gate causes by itself.
const SystemActor = "system"

// Seal places e in the chain: it sets e.Seq and e.PrevHash, normalises e.At
// to UTC microseconds and computes e.Hash. Stores call it while appending, with the sequence number and hash
// of the event before (0 and "" for the first event).
func (e *AuditEvent) Seal(prevSeq int64, prevHash string) {
	e.Seq = prevSeq + 1
	e.PrevHash = prevHash
	e.At = normalizeTime(e.At)
	e.Hash = e.ComputeHash()
}

// ComputeHash returns the hex SHA-256 of the event's canonical JSON (RFC
// 8785) form, which holds every field except Hash itself.
func (e *AuditEvent) ComputeHash() string {
	bp := bufPool.Get().(*[]byte)
	b := e.appendCanonical((*bp)[:0])
	sum := sha256.Sum256(b)
	*bp = b
	bufPool.Put(bp)
	return hex.EncodeToString(sum[:])
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// appendCanonical writes the hashed fields with keys in JCS order. Empty
// optional fields are left out, exactly as encoding/json's omitempty would.
func (e *AuditEvent) appendCanonical(b []byte) []byte {
	b = append(b, '{')
	if e.ActionHash != "" {
		b = canon.AppendKey(b, "action_hash")
		b = canon.AppendString(b, e.ActionHash)
		b = append(b, ',')
	}
	if e.Actor != "" {
		b = canon.AppendKey(b, "actor")
		b = canon.AppendString(b, e.Actor)
		b = append(b, ',')
	}
	b = canon.AppendKey(b, "at")
	b = appendTime(b, e.At)
	if e.Checkpoint != nil {
		b = append(b, ',')
		b = canon.AppendKey(b, "checkpoint")
		b = e.Checkpoint.appendCanonical(b)
	}
	if len(e.Conditions) > 0 {
		b = append(b, ',')
		b = canon.AppendKey(b, "conditions")
		b = canon.AppendStrings(b, e.Conditions)
	}
	if e.OnBehalfOf != "" {
		b = append(b, ',')
		b = canon.AppendKey(b, "on_behalf_of")
		b = canon.AppendString(b, e.OnBehalfOf)
	}
	if e.Passkey != "" {
		b = append(b, ',')
		b = canon.AppendKey(b, "passkey")
		b = canon.AppendString(b, e.Passkey)
	}
	if e.PayloadHash != "" {
		b = append(b, ',')
		b = canon.AppendKey(b, "payload_hash")
		b = canon.AppendString(b, e.PayloadHash)
	}
	if len(e.Policies) > 0 {
		b = append(b, ',')
		b = canon.AppendKey(b, "policies")
		b = appendPolicyRefs(b, e.Policies)
	}
	b = append(b, ',')
	b = canon.AppendKey(b, "prev_hash")
	b = canon.AppendString(b, e.PrevHash)
	if e.Reason != "" {
		b = append(b, ',')
		b = canon.AppendKey(b, "reason")
		b = canon.AppendString(b, e.Reason)
	}
	if e.RequestID != "" {
		b = append(b, ',')
		b = canon.AppendKey(b, "request_id")
		b = canon.AppendString(b, e.RequestID)
	}
	b = append(b, ',')
	b = canon.AppendKey(b, "seq")
	b = canon.AppendInt(b, e.Seq)
	b = append(b, ',')
	b = canon.AppendKey(b, "type")
	b = canon.AppendString(b, string(e.Type))
	if e.Verdict != "" {
		b = append(b, ',')
		b = canon.AppendKey(b, "verdict")
		b = canon.AppendString(b, string(e.Verdict))
	}
	return append(b, '}')
}

// timeLayout is RFC 3339 in UTC with exactly six fractional digits.
const timeLayout = "2006-01-02T15:04:05.000000Z07:00"

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// appendTime appends t as a canonical JSON string in timeLayout, which
// has nothing to escape. Every event's hash writes one: the digits of the
// years 0 to 9999 are written here, the rest by AppendFormat.
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		b = append(b, '"')
		b = t.AppendFormat(b, timeLayout)
		return append(b, '"')
	}
	hour, minute, sec := t.Clock()
	us := t.Nanosecond() / 1000
	two := func(b []byte, n int) []byte { return append(b, byte('0'+n/10), byte('0'+n%10)) }
	b = append(b, '"', byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-')
	b = append(two(b, int(month)), '-')
	b = append(two(b, day), 'T')
	b = append(two(b, hour), ':')
	b = append(two(b, minute), ':')
	b = append(two(b, sec), '.')
	b = two(b, us/10000)
	b = two(b, us/100%100)
	b = two(b, us%100)
	return append(b, 'Z', '"')
}

// normalizeTime returns t in UTC truncated to microseconds, the precision
// every built-in store keeps.
func normalizeTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// AuditChainError reports the first event at which a trail fails
// verification. It wraps ErrAuditChain.
type AuditChainError struct {
	// Seq is the sequence number of the first bad event, or the number that
	// was expected where an event is missing.
	Seq int64
	// Reason says what is wrong there ("hash does not match the event's
	// content").
	Reason string
}

func (e *AuditChainError) Error() string {
	return fmt.Sprintf("approval: audit chain broken at seq %d: %s", e.Seq, e.Reason)
}

func (e *AuditChainError) Unwrap() error { return ErrAuditChain }

// VerifyAuditChain checks that events, in the order given, form an unbroken
// hash chain: sequence numbers increase by one, each PrevHash equals the
// Hash before it, and each Hash matches the event's content. The first
// event may start anywhere in a trail (its PrevHash is taken on trust), so a
// page can be verified on its own; to detect removal of the oldest events,
// start from Seq 1. Removal of the newest events leaves a valid shorter
// chain: compare the last Seq and Hash with a copy kept elsewhere to detect
// it. It returns nil or an *AuditChainError.
func VerifyAuditChain(events []AuditEvent) error {
	for i := range events {
		e := &events[i]
		if i > 0 {
			prev := &events[i-1]
			if e.Seq != prev.Seq+1 {
				// A gap names the first missing number; an event out of
				// place (a reordering or duplicate) names that event.
				return &AuditChainError{Seq: min(prev.Seq+1, e.Seq), Reason: fmt.Sprintf("expected seq %d, found %d", prev.Seq+1, e.Seq)}
			}
			if e.PrevHash != prev.Hash {
				return &AuditChainError{Seq: e.Seq, Reason: "prev_hash does not match the previous event's hash"}
			}
		} else if e.Seq < 1 {
			return &AuditChainError{Seq: e.Seq, Reason: "sequence numbers start at 1"}
		} else if e.Seq == 1 && e.PrevHash != "" {
			return &AuditChainError{Seq: 1, Reason: "first event has a prev_hash"}
		}
		if e.ComputeHash() != e.Hash {
			return &AuditChainError{Seq: e.Seq, Reason: "hash does not match the event's content"}
		}
	}
	return nil
}

// AuditSink receives a copy of every audit event after the store has
// committed it, for shipping to a SIEM, a log pipeline or a second trail.
// The store's own trail stays the record of truth: a sink's failure does
// not undo the committed change, and Guard, Decide and the rest return
// their result all the same. The gate calls Append synchronously, after
// the commit and before Guard or Decide returns, so events reach the sink
// in the order each caller caused them; a sink that does slow I/O should
// buffer. Append may be called concurrently.
//
// Append gets the caller's context, capped at 5s: a sink never holds a
// caller past its deadline. A sink that returns an error, panics or does
// not return in time is logged and recorded in the store as an
// audit.sink_failed event (which is not mirrored to the sink); a call that
// does not return is abandoned, still running, so it may deliver its
// events after later ones. At most 100 abandoned calls may be running;
// beyond that the sink is not called until one returns.
type AuditSink interface {
	Append(ctx context.Context, events []AuditEvent) error
}

// AuditSinkFunc adapts a function to AuditSink.
type AuditSinkFunc func(ctx context.Context, events []AuditEvent) error

// Append calls f.
func (f AuditSinkFunc) Append(ctx context.Context, events []AuditEvent) error { return f(ctx, events) }

// ListAudit returns a page of audit events matching q, in sequence order.
func (g *Gate) ListAudit(ctx context.Context, q AuditQuery) (AuditPage, error) {
	p, err := g.store.ListAudit(ctx, q)
	if err != nil {
		return AuditPage{}, fmt.Errorf("approval: list audit: %w", err)
	}
	return p, nil
}

// appendAudit writes events that change no request.
func (g *Gate) appendAudit(ctx context.Context, events []AuditEvent) error {
	if err := g.store.AppendAudit(ctx, events); err != nil {
		return err
	}
	g.afterCommit(ctx, events)
	return nil
}

// record writes events that change no request and must be kept even when
// the caller's ctx has ended (a refused decision, a notification not
// queued): the store write outlives ctx, bounded by auditTimeout, while the
// sink is called with ctx, so that it never holds the caller past its
// deadline.
func (g *Gate) record(ctx context.Context, events []AuditEvent) error {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
	defer cancel()
	if err := g.store.AppendAudit(sctx, events); err != nil {
		return err
	}
	g.afterCommit(ctx, events)
	return nil
}

const (
	// sinkTimeout caps one AuditSink.Append call.
	sinkTimeout = 5 * time.Second
	// sinkFailureTimeout bounds the store write that records a sink's
	// failure, made after the caller's context may have ended.
	sinkFailureTimeout = time.Second
)

// afterCommit mirrors committed events to the optional sink, with ctx
// capped at sinkTimeout. A failure is recorded in the store as
// audit.sink_failed and not mirrored again.
func (g *Gate) afterCommit(ctx context.Context, events []AuditEvent) {
	if g.sink == nil || len(events) == 0 {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, sinkTimeout)
	_, err := host.Call(g.sinkHost, sctx, "Append", func(ctx context.Context) (struct{}, error) {
		return struct{}{}, g.sink.Append(ctx, events)
	})
	cancel()
	if err == nil {
		return
	}
	first, last := events[0].Seq, events[len(events)-1].Seq
	g.log.Error("approval: audit sink failed; the store's trail has the events",
		"first_seq", first, "last_seq", last, "err", err)
	ev := []AuditEvent{{Type: EventAuditSinkFailed, Actor: SystemActor, At: normalizeTime(g.now()),
		Reason: auditSafe(fmt.Sprintf("audit sink missed events %d to %d: %v", first, last, err), maxReasonBytes)}}
	if !slices.ContainsFunc(events, func(e AuditEvent) bool { return e.RequestID != events[0].RequestID }) {
		ev[0].RequestID = events[0].RequestID
	}
	// The caller's ctx may have ended (that may be why the sink failed):
	// the record of the failure gets a short time of its own.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sinkFailureTimeout)
	defer cancel()
	if err := g.store.AppendAudit(actx, ev); err != nil {
		g.log.Error("approval: cannot audit an audit sink failure", "err", err)
	}
}

// EventBreakGlass: a person approved a request on the emergency path
// (Gate.BreakGlass), bypassing its policies, with the reason they gave.
// With BreakGlass.SecondPerson the first such event opens the break-glass
// and the second, by another person, approves. List them with
// AuditQuery{Type: EventBreakGlass}.
const EventBreakGlass EventType = "request.break_glass"

// EventAuditCheckpoint: a gate signed the head of the trail with its key
// (Gate.Checkpoint, or Tick every Config.CheckpointInterval). The event's
// Checkpoint holds the signature.
const EventAuditCheckpoint EventType = "audit.checkpoint"

// EventPayloadEdited: an approver replaced the payload under review
// (Decision.Payload); the reason gives both payload hashes.
const EventPayloadEdited EventType = "request.payload_edited"

// EventAuditMismatch is a security event: the gate found a request whose
// state no audit event accounts for (a row written around the gate, by
// someone with write access to the database) and refused to act on it:
// Guard did not consume it, Artifact did not sign it.
const EventAuditMismatch EventType = "audit.mismatch"

// EventRequestRecommended: a recommendation was attached to a request.
const EventRequestRecommended EventType = "request.recommended"

// Delegation audit events (their RequestID is empty).
const (
	EventDelegationGranted EventType = "delegation.granted"
	EventDelegationRevoked EventType = "delegation.revoked"
)

// stampHashes binds r's events that need it to r's hashes (see
// AuditEvent.ActionHash), before they are written with r.
func stampHashes(r *Request, events []AuditEvent) {
	for i := range events {
		e := &events[i]
		if e.RequestID != r.ID {
			continue
		}
		switch e.Type {
		case EventRequestCreated:
			e.ActionHash, e.PayloadHash = r.ActionHash, r.PayloadHash
		case EventPayloadEdited:
			if r.Edit != nil {
				e.ActionHash, e.PayloadHash = r.Edit.ActionHash, r.Edit.PayloadHash
			}
		case EventRequestApproved:
			e.ActionHash, e.PayloadHash = r.boundHashes()
		}
	}
}

// hashIs reports whether hash is the hex SHA-256 of canonical, without
// making a string of it.
func hashIs(canonical []byte, hash string) bool {
	if len(hash) != 2*sha256.Size {
		return false
	}
	sum := sha256.Sum256(canonical)
	var h [2 * sha256.Size]byte
	hex.Encode(h[:], sum[:])
	return string(h[:]) == hash
}
