// Package jsondiff lists the differences between two JSON documents, field
// by field, with the values under named members masked: what a reviewer
// is shown of an edited payload (the approval package's DiffPayloads
// converts its changes). Numbers are compared as written, key order and
// white space are not differences, and the list is capped at MaxChanges.
package jsondiff

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strconv"

	"github.com/signoff/approval/internal/redact"
)

// Kind says how a value differs between two documents.
type Kind string

// Kinds of change.
const (
	Added   Kind = "added"
	Removed Kind = "removed"
	Changed Kind = "changed"
)

// Change is one difference between two JSON documents.
type Change struct {
	// Path names the value: object members by name, array elements by
	// index, as in `to`, `lines[2].amount` or `["a.b"]` for a name that
	// is not a plain identifier. The empty path is the whole document.
	Path string
	// Kind says whether the value was added, removed or changed.
	Kind Kind
	// Old is the value before, compact JSON; empty for an added value.
	// Under a masked name it is "[redacted]" (redact.Value).
	Old json.RawMessage
	// New is the value after, compact JSON; empty for a removed value;
	// "[redacted]" under a masked name.
	New json.RawMessage
	// Redacted is set when Old and New are masked.
	Redacted bool
}

// ErrNotJSON is Diff's error for a document that is not JSON.
var ErrNotJSON = errors.New("not JSON")

// MaxChanges bounds the changes Diff lists; past it, the rest of the
// differences are left out.
const MaxChanges = 1000

// Diff returns the differences between the JSON documents old and new, in
// document order (object members sorted by name), with the values under
// any member keys name (redact.Match) masked, or ErrNotJSON when either is
// not one JSON value. Without a difference it returns nil.
func Diff(old, new []byte, keys []string) ([]Change, error) {
	a, err := decode(old)
	if err != nil {
		return nil, err
	}
	b, err := decode(new)
	if err != nil {
		return nil, err
	}
	d := differ{keys: keys}
	d.diff("", a, b, false)
	return d.out, nil
}

func decode(p []byte) (any, error) {
	if len(bytes.TrimSpace(p)) == 0 {
		return nil, ErrNotJSON
	}
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, ErrNotJSON
	}
	if dec.More() {
		return nil, ErrNotJSON
	}
	return v, nil
}

type differ struct {
	keys []string
	out  []Change
}

func (d *differ) add(path string, kind Kind, old, new any, masked bool) {
	if len(d.out) >= MaxChanges {
		return
	}
	c := Change{Path: path, Kind: kind, Redacted: masked}
	if masked {
		if kind != Added {
			c.Old = json.RawMessage(`"` + redact.Value + `"`)
		}
		if kind != Removed {
			c.New = json.RawMessage(`"` + redact.Value + `"`)
		}
	} else {
		if kind != Added {
			c.Old = d.encode(old)
		}
		if kind != Removed {
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
					d.add(p, Added, nil, vb, m)
				case !inB:
					d.add(p, Removed, va, nil, m)
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
					d.add(p, Added, nil, y[i], masked)
				case i >= len(y):
					d.add(p, Removed, x[i], nil, masked)
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
	d.add(path, Changed, a, b, masked)
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
