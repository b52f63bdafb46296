package approval

import (
	"bytes"
	"encoding/json"
	"strings"
)

// RedactedValue replaces a masked payload field or metadata value.
const RedactedValue = "[redacted]"

// RedactKeys returns the names the request's matched policies ask to mask
// (Policy.Redact), in policy order, possibly with repeats.
func (r *Request) RedactKeys() []string {
	var keys []string
	for _, p := range r.Policies {
		keys = append(keys, p.Redact...)
	}
	return keys
}

// Redact returns a copy of a with the payload fields and metadata values
// that keys name masked, and whether anything was masked or hidden. a
// itself is never modified.
//
// A metadata value is masked when its key equals a name case-insensitively.
// A payload field is a JSON object member, at any depth, whose key equals a
// name case-insensitively after JSON unescaping ("\u0069ban" is "iban");
// its whole value, object or array included, becomes the string
// "[redacted]" and the rest of the payload is kept byte for byte. A payload
// that is not JSON has no fields, so when keys is not empty it is dropped
// (Payload nil) rather than shown. With no keys a is returned as it is.
//
// The gate's hashes (Request.ActionHash, PayloadHash) cover the real
// bytes, so a redacted action still identifies the one that was approved.
// Notifications carry their request's action redacted by RedactKeys;
// approvalhttp adds the host's names (Options.Redact).
func (a Action) Redact(keys []string) (Action, bool) {
	if len(keys) == 0 {
		return a, false
	}
	var any bool
	a.Metadata, any = redactMetadata(a.Metadata, keys)
	switch {
	case len(a.Payload) == 0:
	case json.Valid(a.Payload):
		var n int
		a.Payload, n = redactJSON(a.Payload, keys)
		any = any || n > 0
	default:
		a.Payload, any = nil, true
	}
	return a, any
}

func redactedKey(keys []string, k string) bool {
	for _, m := range keys {
		if strings.EqualFold(m, k) {
			return true
		}
	}
	return false
}

// redactMetadata returns md with the values of masked keys replaced, and
// whether any was. md itself is never modified.
func redactMetadata(md map[string]string, keys []string) (map[string]string, bool) {
	var out map[string]string
	for k := range md {
		if !redactedKey(keys, k) {
			continue
		}
		if out == nil {
			out = make(map[string]string, len(md))
			for k2, v := range md {
				out[k2] = v
			}
		}
		out[k] = RedactedValue
	}
	if out == nil {
		return md, false
	}
	return out, true
}

// redactJSON returns src, which must be valid JSON, with the value of every
// object member named by keys replaced by "[redacted]", and how many were.
// Without a match it returns src.
func redactJSON(src []byte, keys []string) ([]byte, int) {
	s := jsonRedactor{src: src, keys: keys}
	s.value(0, true)
	if s.n == 0 {
		return src, 0
	}
	return append(s.out, src[s.last:]...), s.n
}

// jsonRedactor walks valid JSON, copying it to out with masked values
// replaced. It trusts the input to be valid (json.Valid first).
type jsonRedactor struct {
	src  []byte
	keys []string
	out  []byte
	last int // src[last:] is not yet copied to out
	n    int
}

func (s *jsonRedactor) ws(i int) int {
	for i < len(s.src) {
		switch s.src[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// value scans the value at src[i] (after white space) and returns where it
// ends. With mask false it only skips, so that nothing inside a value
// already replaced is replaced again.
func (s *jsonRedactor) value(i int, mask bool) int {
	src := s.src
	i = s.ws(i)
	switch src[i] {
	case '{':
		i = s.ws(i + 1)
		if src[i] == '}' {
			return i + 1
		}
		for {
			kEnd := s.str(i)
			key := src[i:kEnd]
			i = s.ws(kEnd) + 1 // ':'
			vStart := s.ws(i)
			if mask && s.maskedKey(key) {
				vEnd := s.value(vStart, false)
				s.out = append(s.out, src[s.last:vStart]...)
				s.out = append(s.out, `"`+RedactedValue+`"`...)
				s.last, s.n = vEnd, s.n+1
				i = vEnd
			} else {
				i = s.value(vStart, mask)
			}
			i = s.ws(i)
			if src[i] == '}' {
				return i + 1
			}
			i = s.ws(i + 1) // ','
		}
	case '[':
		i = s.ws(i + 1)
		if src[i] == ']' {
			return i + 1
		}
		for {
			i = s.ws(s.value(i, mask))
			if src[i] == ']' {
				return i + 1
			}
			i++ // ','
		}
	case '"':
		return s.str(i)
	}
	for i < len(src) {
		switch src[i] {
		case ',', ']', '}', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}

// str returns the end (after the closing quote) of the string at src[i].
func (s *jsonRedactor) str(i int) int {
	for i++; i < len(s.src); i++ {
		switch s.src[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

func (s *jsonRedactor) maskedKey(quoted []byte) bool {
	raw := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(raw, '\\') < 0 && asciiOnly(raw) {
		// The common case, without a copy of the key per member.
		for _, m := range s.keys {
			if equalFoldASCII(m, raw) {
				return true
			}
		}
		return false
	}
	var key string
	if json.Unmarshal(quoted, &key) != nil {
		return true // cannot happen in valid JSON; mask rather than show
	}
	return redactedKey(s.keys, key)
}

func asciiOnly(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// equalFoldASCII reports whether m and the ASCII bytes b are equal under
// strings.EqualFold: an ASCII b matches only an m of the same ASCII
// letters, but for the Kelvin sign and the long s, which fold to k and s.
func equalFoldASCII(m string, b []byte) bool {
	if len(m) != len(b) {
		return strings.EqualFold(m, string(b)) // K (U+212A) or ſ (U+017F) in m
	}
	for i := range len(b) {
		x, y := m[i], b[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
