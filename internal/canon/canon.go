// Package canon writes RFC 8785 (JSON Canonicalization Scheme) output for the
// fixed shapes the approval package hashes: actions, policies and audit
// events. Callers emit object members in sorted key order; this package gets
// strings, numbers and key ordering exactly right. Arbitrary JSON (payloads)
// goes through gowebpki/jcs. Reader reads the fixed shapes back (tokens,
// artifacts), refusing any spelling but the one written.
package canon

import (
	"sort"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/gowebpki/jcs"
)

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JCS string literal: only '"', '\\' and control
// characters are escaped, everything else is written as UTF-8. s must be
// valid UTF-8 (callers validate input first).
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	if !needsEscape(s) {
		// Most strings (hashes, IDs, names) have nothing to escape.
		b = append(b, s...)
		return append(b, '"')
	}
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"':
			b = append(b, '\\', '"')
		case '\\':
			b = append(b, '\\', '\\')
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// needsEscape reports whether s has a byte AppendString escapes: a
// control character, '"' or '\\'. It looks at eight bytes at a time.
func needsEscape(s string) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		// A byte below 0x20 borrows and keeps its high bit clear in x; a
		// quote or backslash is a zero byte once xored with its own.
		q, bs := x^('"'*ones), x^('\\'*ones)
		if (x-0x20*ones)&^x&highs != 0 || (q-ones)&^q&highs != 0 || (bs-ones)&^bs&highs != 0 {
			return true
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' {
			return true
		}
	}
	return false
}

// AppendKey appends a member name and the colon that follows it.
func AppendKey(b []byte, key string) []byte {
	return append(AppendString(b, key), ':')
}

// AppendInt appends an integer. Integers up to 2^53 are exact in JCS.
func AppendInt(b []byte, n int64) []byte {
	return strconv.AppendInt(b, n, 10)
}

// AppendFloat appends f in the ECMAScript number format JCS requires.
// NaN and infinities are rejected.
func AppendFloat(b []byte, f float64) ([]byte, error) {
	s, err := jcs.NumberToJSON(f)
	if err != nil {
		return b, err
	}
	return append(b, s...), nil
}

// AppendJSON appends the canonical form of arbitrary JSON text.
func AppendJSON(b []byte, raw []byte) ([]byte, error) {
	out, err := jcs.Transform(raw)
	if err != nil {
		return b, err
	}
	return append(b, out...), nil
}

// AppendStrings appends a JSON array of strings in the given order.
func AppendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendString(b, s)
	}
	return append(b, ']')
}

// AppendStringMap appends a JSON object of string values with keys in JCS
// order (UTF-16 code units).
func AppendStringMap(b []byte, m map[string]string) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	SortKeys(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendKey(b, k)
		b = AppendString(b, m[k])
	}
	return append(b, '}')
}

// SortKeys sorts member names as JCS requires: by UTF-16 code units.
func SortKeys(keys []string) {
	sort.Slice(keys, func(i, j int) bool { return Less(keys[i], keys[j]) })
}

// Less compares two strings by their UTF-16 code units. It equals byte order
// except where characters outside the Basic Multilingual Plane meet
// characters in U+E000..U+FFFF.
func Less(a, b string) bool {
	for a != "" && b != "" {
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		if ra != rb {
			ua, ub := unit(ra), unit(rb)
			if ua != ub {
				return ua < ub
			}
			return ra < rb
		}
		a, b = a[na:], b[nb:]
	}
	return len(a) < len(b)
}

// unit returns the first UTF-16 code unit of r.
func unit(r rune) rune {
	if r >= 0x10000 {
		hi, _ := utf16.EncodeRune(r)
		return hi
	}
	return r
}
