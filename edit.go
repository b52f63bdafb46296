package approval

import (
	"fmt"
	"slices"
	"time"
)

// PayloadEdit is the payload an approver put in place of the one asked
// for (Decision.Payload), and the hashes it changes.
type PayloadEdit struct {
	// Payload is the approver's payload, the bytes the action runs with.
	Payload []byte `json:"payload"`
	// PayloadHash is the hash of Payload (see PayloadHash).
	PayloadHash string `json:"payload_hash"`
	// ActionHash is the hash of the action with Payload in place of the
	// original: what the approval binds.
	ActionHash string `json:"action_hash"`
	// By is the approver who made the edit.
	By string `json:"by"`
	// At is when the edit was recorded.
	At time.Time `json:"at"`
}

func (e *PayloadEdit) clone() *PayloadEdit {
	if e == nil {
		return nil
	}
	c := *e
	c.Payload = slices.Clone(e.Payload)
	return &c
}

// Approved returns the action r approves: its action, with the edited
// payload when an approver edited it.
func (r *Request) Approved() Action {
	a := r.Action.clone()
	if r.Edit != nil {
		a.Payload = slices.Clone(r.Edit.Payload)
	}
	return a
}

// boundHashes returns the action and payload hashes r's approval binds.
func (r *Request) boundHashes() (actionHash, payloadHash string) {
	if r.Edit != nil {
		return r.Edit.ActionHash, r.Edit.PayloadHash
	}
	return r.ActionHash, r.PayloadHash
}

// applyEdit checks an edited payload against r (no approval yet, within
// the limits) and records it on r, returning its audit event.
func (g *Gate) applyEdit(r *Request, payload []byte, by string, now time.Time) (AuditEvent, error) {
	for _, v := range r.Votes {
		if v.Verdict == VerdictApprove {
			return AuditEvent{}, fmt.Errorf("%w: %s approved the payload as it stands; an edit comes before any approval", ErrInvalidDecision, v.Approver)
		}
	}
	if len(payload) > g.limits.MaxPayloadBytes {
		return AuditEvent{}, fmt.Errorf("%w: edited payload of %d bytes exceeds the limit of %d", ErrInvalidDecision, len(payload), g.limits.MaxPayloadBytes)
	}
	a := r.Action.clone()
	a.Payload = slices.Clone(payload)
	actionHash, payloadHash, err := a.hashes()
	if err != nil {
		return AuditEvent{}, fmt.Errorf("%w: edited payload: %v", ErrInvalidDecision, err)
	}
	if payloadHash == r.PayloadHash {
		return AuditEvent{}, fmt.Errorf("%w: the edited payload is the payload asked for", ErrInvalidDecision)
	}
	r.Edit = &PayloadEdit{Payload: a.Payload, PayloadHash: payloadHash, ActionHash: actionHash, By: by, At: now}
	return AuditEvent{RequestID: r.ID, Type: EventPayloadEdited, Actor: by, Policies: policyRefs(r.Policies),
		Reason: "payload " + shortHash(r.PayloadHash) + " replaced by " + payloadHash, At: now}, nil
}

func shortHash(h string) string {
	if h == "" {
		return "(empty)"
	}
	return h
}
