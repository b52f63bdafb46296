package canon

import (
	"strings"
	"unicode/utf8"
)

// Reader reads a JSON object of a fixed shape, in exactly the form this
// package writes it: members in the caller's order, strings as
// AppendString writes them, integers as AppendInt does. Any other spelling
// of the same value is refused, so that one value has one encoding. A
// fixed-form reader is a smaller attack surface than encoding/json, and
// several times faster, which matters on the paths that read signed
// payloads (a decision's token).
//
// Its methods record the first failure (Failed); Done reports whether
// every read succeeded and the input is used up.
//
// It reads a string, so that what it returns shares memory with that
// string and with nothing else: a caller with bytes converts them once
// (string(b), one allocation) and keeps its buffer to itself.
type Reader struct {
	p  string
	i  int
	ok bool
}

// NewReader returns a Reader of p.
func NewReader(p string) Reader { return Reader{p: p, ok: true} }

// Done reports whether every read succeeded and nothing is left to read.
func (d *Reader) Done() bool { return d.ok && d.i == len(d.p) }

// Failed reports whether a read failed.
func (d *Reader) Failed() bool { return !d.ok }

// Fail marks the input malformed: a value read well but not allowed.
func (d *Reader) Fail() { d.ok = false }

// Pos is the offset of the next byte to read.
func (d *Reader) Pos() int { return d.i }

// Opt reads the literal s if the input continues with it (an optional
// member), and reports whether it did.
func (d *Reader) Opt(s string) bool {
	if !d.ok || len(d.p)-d.i < len(s) || d.p[d.i:d.i+len(s)] != s {
		return false
	}
	d.i += len(s)
	return true
}

// More reports whether a list goes on: no read failed and the next byte
// is not end.
func (d *Reader) More(end byte) bool { return d.ok && d.i < len(d.p) && d.p[d.i] != end }

// Lit reads the literal s (punctuation and keys: `{"act":`, `,"exp":`).
func (d *Reader) Lit(s string) {
	if !d.ok || len(d.p)-d.i < len(s) || d.p[d.i:d.i+len(s)] != s {
		d.ok = false
		return
	}
	d.i += len(s)
}

// Str reads a string in the form AppendString writes: the only escapes
// are \" \\ \b \f \n \r \t, and \u00xx in lower-case hex for the other
// control characters. Any other escape is another spelling of the same
// string, and malformed. A string without escapes is a part of the
// Reader's input: reading it allocates nothing.
func (d *Reader) Str() string {
	if !d.ok || d.i >= len(d.p) || d.p[d.i] != '"' {
		d.ok = false
		return ""
	}
	d.i++
	start, escaped := d.i, false
	for ; d.i < len(d.p); d.i++ {
		switch c := d.p[d.i]; {
		case c == '\\':
			escaped = true
			d.i++ // an escaped quote does not end the string
		case c < 0x20:
			d.ok = false
			return ""
		case c == '"':
			raw := d.p[start:d.i]
			d.i++
			// Escapes are ASCII, so raw is valid UTF-8 exactly when the
			// string it spells is.
			if !utf8.ValidString(raw) {
				d.ok = false
				return ""
			}
			if !escaped {
				return raw
			}
			s, ok := unescape(raw)
			d.ok = ok
			return s
		}
	}
	d.ok = false
	return ""
}

// unescape decodes the body of a string with at least one escape,
// accepting only canonical escapes (see Str).
func unescape(raw string) (string, bool) {
	var b strings.Builder
	b.Grow(len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		if i++; i == len(raw) {
			return "", false
		}
		switch raw[i] {
		case '"', '\\':
			c = raw[i]
		case 'b':
			c = '\b'
		case 'f':
			c = '\f'
		case 'n':
			c = '\n'
		case 'r':
			c = '\r'
		case 't':
			c = '\t'
		case 'u':
			if len(raw)-i < 5 || raw[i+1] != '0' || raw[i+2] != '0' || (raw[i+3] != '0' && raw[i+3] != '1') {
				return "", false
			}
			lo := strings.IndexByte(hexDigits, raw[i+4])
			if lo < 0 {
				return "", false
			}
			c = (raw[i+3]-'0')<<4 | byte(lo)
			if c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t' {
				return "", false // these have a short form
			}
			i += 4
		default:
			return "", false
		}
		b.WriteByte(c)
	}
	return b.String(), true
}

// Int reads an integer of at most 18 digits in canonical form: no leading
// zeros, no "-0".
func (d *Reader) Int() int64 {
	if !d.ok {
		return 0
	}
	neg := d.i < len(d.p) && d.p[d.i] == '-'
	if neg {
		d.i++
	}
	digits := d.i
	var n int64
	for d.i < len(d.p) && d.p[d.i] >= '0' && d.p[d.i] <= '9' {
		n = n*10 + int64(d.p[d.i]-'0')
		d.i++
	}
	switch l := d.i - digits; {
	case l == 0 || l > 18:
	case d.p[digits] == '0' && (l > 1 || neg):
	case neg:
		return -n
	default:
		return n
	}
	d.ok = false
	return 0
}
