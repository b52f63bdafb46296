// Package redact masks the values a reviewer must not see: metadata values
// and JSON object members whose names are on a list, compared
// case-insensitively. The JSON redactor streams over the bytes, so that
// everything it does not mask is kept byte for byte (the approval package's
// Action.Redact and the payload differ's masked values).
package redact

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Value replaces a masked metadata value or JSON member's value.
const Value = "[redacted]"

// Match reports whether k is one of keys, compared under strings.EqualFold.
func Match(keys []string, k string) bool {
	for _, m := range keys {
		if strings.EqualFold(m, k) {
			return true
		}
	}
	return false
}

// Metadata returns md with the values of masked keys replaced, and
// whether any was. md itself is never modified.
func Metadata(md map[string]string, keys []string) (map[string]string, bool) {
	var out map[string]string
	for k := range md {
		if !Match(keys, k) {
			continue
		}
		if out == nil {
			out = make(map[string]string, len(md))
			for k2, v := range md {
				out[k2] = v
			}
		}
		out[k] = Value
	}
	if out == nil {
		return md, false
	}
	return out, true
}

// JSON returns src, which must be valid JSON, with the value of every
// object member named by keys replaced by "[redacted]", and how many were.
// Without a match it returns src.
func JSON(src []byte, keys []string) ([]byte, int) {
	s := redactor{src: src, keys: keys}
	s.value(0, true)
	if s.n == 0 {
		return src, 0
	}
	return append(s.out, src[s.last:]...), s.n
}

// redactor walks valid JSON, copying it to out with masked values
// replaced. It trusts the input to be valid (json.Valid first).
type redactor struct {
	src  []byte
	keys []string
	out  []byte
	last int // src[last:] is not yet copied to out
	n    int
}

func (s *redactor) ws(i int) int {
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
func (s *redactor) value(i int, mask bool) int {
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
				s.out = append(s.out, `"`+Value+`"`...)
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
func (s *redactor) str(i int) int {
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

func (s *redactor) maskedKey(quoted []byte) bool {
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
	return Match(s.keys, key)
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
