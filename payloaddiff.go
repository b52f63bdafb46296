package approval

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/signoff/approval/internal/jsondiff"
)

// EditSummary is what a reviewer is shown of an edit (Request.Edit): who
// replaced the payload and when, the hashes of the payload asked for, and
// what changed. Notifications, the review pages and the API carry it, so
// that the next approver sees the payload their vote binds and how it
// differs from the one asked for.
type EditSummary struct {
	// By is the approver who edited the payload.
	By string `json:"by"`
	// At is when the edit was recorded.
	At time.Time `json:"at"`
	// OriginalActionHash is the hash of the action as asked for; the
	// approval binds the edited one.
	OriginalActionHash string `json:"original_action_hash"`
	// OriginalPayloadHash is the hash of the payload as asked for.
	OriginalPayloadHash string `json:"original_payload_hash,omitempty"`
	// Changes lists the differences between the two payloads when both
	// are JSON, redacted (see DiffPayloads); nil otherwise.
	Changes []PayloadChange `json:"changes,omitempty"`
	// NotJSON is set when either payload is not JSON, so no field-level
	// difference can be given: compare the hashes and the payloads whole.
	NotJSON bool `json:"not_json,omitempty"`
}

// EditSummary returns what a reviewer is shown of r's edit, with the values
// of the fields keys name masked (see Action.Redact); nil when no
// approver edited r.
func (r *Request) EditSummary(keys []string) *EditSummary {
	if r.Edit == nil {
		return nil
	}
	s := &EditSummary{By: r.Edit.By, At: r.Edit.At, OriginalActionHash: r.ActionHash, OriginalPayloadHash: r.PayloadHash}
	changes, err := DiffPayloads(r.Action.Payload, r.Edit.Payload, keys)
	if err != nil {
		s.NotJSON = true
	} else {
		s.Changes = changes
	}
	return s
}

// ChangeKind says how a payload field differs between two payloads.
type ChangeKind string

// Change kinds.
const (
	ChangeAdded   ChangeKind = "added"
	ChangeRemoved ChangeKind = "removed"
	ChangeChanged ChangeKind = "changed"
)

// PayloadChange is one difference between two JSON payloads.
type PayloadChange struct {
	// Path names the value: object members by name, array elements by
	// index, as in `to`, `lines[2].amount` or `["a.b"]` for a name that
	// is not a plain identifier. The empty path is the whole document.
	Path string `json:"path"`
	// Kind says whether the value was added, removed or changed.
	Kind ChangeKind `json:"kind"`
	// Old is the value before, compact JSON; empty for an added value. A
	// value under a redacted name is "[redacted]" on both sides: the
	// change is listed, the values are not shown.
	Old json.RawMessage `json:"old,omitempty"`
	// New is the value after, compact JSON; empty for a removed value.
	New json.RawMessage `json:"new,omitempty"`
	// Redacted is set when Old and New are masked.
	Redacted bool `json:"redacted,omitempty"`
}

// errNotJSONPayload is DiffPayloads' error for a payload that is not JSON.
var errNotJSONPayload = fmt.Errorf("%w: payload is not JSON", ErrInvalidAction)

// DiffPayloads returns the differences between two JSON payloads, in
// document order (object members sorted by name), with the values under
// any member keys name masked as Action.Redact masks them. Numbers are
// compared as written (1.0 and 1 differ: the bytes a vote binds do), key
// order and white space are not differences. It returns an error wrapping
// ErrInvalidAction when either payload is not JSON.
func DiffPayloads(old, new []byte, keys []string) ([]PayloadChange, error) {
	changes, err := jsondiff.Diff(old, new, keys)
	if err != nil {
		return nil, errNotJSONPayload
	}
	if len(changes) == 0 {
		return nil, nil
	}
	out := make([]PayloadChange, len(changes))
	for i, c := range changes {
		out[i] = PayloadChange{Path: c.Path, Kind: ChangeKind(c.Kind), Old: c.Old, New: c.New, Redacted: c.Redacted}
	}
	return out, nil
}

// String describes c on one line: `amount: 100 → 990000`.
func (c PayloadChange) String() string {
	p := c.Path
	if p == "" {
		p = "(whole payload)"
	}
	switch c.Kind {
	case ChangeAdded:
		return p + ": added " + string(c.New)
	case ChangeRemoved:
		return p + ": removed (was " + string(c.Old) + ")"
	}
	return p + ": " + string(c.Old) + " → " + string(c.New)
}
