package approval

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/signoff/approval/internal/redact"
)

// EditSummary is what a reviewer is shown of an edit (Request.Edit): who
// replaced the payload and when, the hashes of the payload asked for, and
// what changed. Notifications, the review pages and the API carry it, so
// that the next approver sees the payload their vote binds and how it
// differs from the one asked for.
type EditSummary struct {
	By string    `json:"by"`
	At time.Time `json:"at"`
	// OriginalActionHash and OriginalPayloadHash are the hashes of the
	// action as asked for; the approval binds the edited ones.
	OriginalActionHash  string `json:"original_action_hash"`
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
	Path string     `json:"path"`
	Kind ChangeKind `json:"kind"`
	// Old and New are the values, compact JSON; Old is empty for an
	// added value and New for a removed one. A value under a redacted
	// name is "[redacted]" on both sides: the change is listed, the
	// values are not shown.
	Old json.RawMessage `json:"old,omitempty"`
	New json.RawMessage `json:"new,omitempty"`
	// Redacted is set when Old and New are masked.
	Redacted bool `json:"redacted,omitempty"`
}

// errNotJSONPayload is DiffPayloads' error for a payload that is not JSON.
var errNotJSONPayload = fmt.Errorf("%w: payload is not JSON", ErrInvalidAction)

// maxDiffChanges bounds the changes DiffPayloads lists; past it, the rest
// of the document is reported as one change at the deepest common path.
const maxDiffChanges = 1000

// DiffPayloads returns the differences between two JSON payloads, in
// document order (object members sorted by name), with the values under
// any member keys name masked as Action.Redact masks them. Numbers are
// compared as written (1.0 and 1 differ: the bytes a vote binds do), key
// order and white space are not differences. It returns an error wrapping
// ErrInvalidAction when either payload is not JSON.
func DiffPayloads(old, new []byte, keys []string) ([]PayloadChange, error) {
	a, err := decodeForDiff(old)
	if err != nil {
		return nil, err
	}
	b, err := decodeForDiff(new)
	if err != nil {
		return nil, err
	}
	d := differ{keys: keys}
	d.diff("", a, b, false)
	return d.out, nil
}

func decodeForDiff(p []byte) (any, error) {
	if len(bytes.TrimSpace(p)) == 0 {
		return nil, errNotJSONPayload
	}
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, errNotJSONPayload
	}
	if dec.More() {
		return nil, errNotJSONPayload
	}
	return v, nil
}

type differ struct {
	keys []string
	out  []PayloadChange
}

func (d *differ) add(path string, kind ChangeKind, old, new any, masked bool) {
	if len(d.out) >= maxDiffChanges {
		return
	}
	c := PayloadChange{Path: path, Kind: kind, Redacted: masked}
	if masked {
		if kind != ChangeAdded {
			c.Old = json.RawMessage(`"` + RedactedValue + `"`)
		}
		if kind != ChangeRemoved {
			c.New = json.RawMessage(`"` + RedactedValue + `"`)
		}
	} else {
		if kind != ChangeAdded {
			c.Old = d.encode(old)
		}
		if kind != ChangeRemoved {
			c.New = d.encode(new)
		}
	}
	d.out = append(d.out, c)
}

// encode writes v compactly, masking redacted members inside it.
func (d *differ) encode(v any) json.RawMessage {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // pages and messages escape for their own context
	if enc.Encode(v) != nil {
		return json.RawMessage(`null`)
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if len(d.keys) > 0 {
		b, _ = redact.JSON(b, d.keys)
	}
	return b
}

func (d *differ) diff(path string, a, b any, masked bool) {
	switch x := a.(type) {
	case map[string]any:
		if y, ok := b.(map[string]any); ok {
			names := make([]string, 0, len(x)+len(y))
			for k := range x {
				names = append(names, k)
			}
			for k := range y {
				if _, ok := x[k]; !ok {
					names = append(names, k)
				}
			}
			slices.Sort(names)
			for _, k := range names {
				p := memberPath(path, k)
				m := masked || redact.Match(d.keys, k)
				va, inA := x[k]
				vb, inB := y[k]
				switch {
				case !inA:
					d.add(p, ChangeAdded, nil, vb, m)
				case !inB:
					d.add(p, ChangeRemoved, va, nil, m)
				default:
					d.diff(p, va, vb, m)
				}
			}
			return
		}
	case []any:
		if y, ok := b.([]any); ok {
			for i := range max(len(x), len(y)) {
				p := path + "[" + strconv.Itoa(i) + "]"
				switch {
				case i >= len(x):
					d.add(p, ChangeAdded, nil, y[i], masked)
				case i >= len(y):
					d.add(p, ChangeRemoved, x[i], nil, masked)
				default:
					d.diff(p, x[i], y[i], masked)
				}
			}
			return
		}
	case json.Number:
		if y, ok := b.(json.Number); ok && x == y {
			return
		}
	case string, bool, nil:
		if a == b {
			return
		}
	}
	d.add(path, ChangeChanged, a, b, masked)
}

// memberPath appends object member k to path.
func memberPath(path, k string) string {
	plain := k != ""
	for i, c := range k {
		if !(c == '_' || c == '-' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			plain = false
			break
		}
	}
	if !plain {
		q, _ := json.Marshal(k)
		return path + "[" + string(q) + "]"
	}
	if path == "" {
		return k
	}
	return path + "." + k
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
