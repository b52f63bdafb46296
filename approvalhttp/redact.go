package approvalhttp

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"

	"github.com/signoff/approval"
)

// Redaction masks, on the pages and in the API, the payload fields and
// metadata values that a matched policy (Policy.Redact) or the host
// (Options.Redact) names. A payload field is a JSON object member at any
// depth whose key equals a name case-insensitively (after JSON unescaping:
// "\u0069ban" is "iban"); its whole value, object or array included, is
// replaced by the string "[redacted]". A payload that is not JSON has no
// fields, so when any name applies it is not shown at all, only its size
// and hash. The hashes always cover the real bytes.

// redactedValue replaces a masked payload field or metadata value.
const redactedValue = "[redacted]"

// keysFor returns the names to mask on r: the host's and every matched
// policy's.
func (h *handler) keysFor(r *approval.Request) []string {
	keys := h.redact
	for _, p := range r.Policies {
		if len(p.Redact) > 0 {
			keys = append(slices.Clip(keys), p.Redact...) // never into h.redact
		}
	}
	return keys
}

func masked(keys []string, k string) bool {
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
	if len(keys) == 0 || len(md) == 0 {
		return md, false
	}
	var out map[string]string
	for k := range md {
		if !masked(keys, k) {
			continue
		}
		if out == nil {
			out = make(map[string]string, len(md))
			for k2, v := range md {
				out[k2] = v
			}
		}
		out[k] = redactedValue
	}
	if out == nil {
		return md, false
	}
	return out, true
}

// redactJSON returns src, which must be valid JSON, with the value of every
// object member named by keys replaced by "[redacted]", and how many were.
// The rest of src is kept byte for byte. Without a match it returns src.
func redactJSON(src []byte, keys []string) ([]byte, int) {
	if len(keys) == 0 {
		return src, 0
	}
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
				s.out = append(s.out, `"`+redactedValue+`"`...)
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
	var key string
	if bytes.IndexByte(quoted, '\\') < 0 {
		key = string(quoted[1 : len(quoted)-1])
	} else if json.Unmarshal(quoted, &key) != nil {
		return true // cannot happen in valid JSON; mask rather than show
	}
	return masked(s.keys, key)
}
