package approvalmcp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/text"
)

// payload is the action payload of a call's arguments: absent or null
// arguments are the empty object, so that either spelling is one call.
func payload(args json.RawMessage) []byte {
	if t := bytes.TrimSpace(args); len(t) == 0 || string(t) == "null" {
		return []byte("{}")
	}
	return args
}

// checkArgs refuses arguments that are not a JSON object (absent and null
// are the empty object); objects with a key twice at any depth: JSON
// parsers disagree on which value counts, so a reviewer could approve one
// reading and the tool run another; and values a tool would not receive as
// they are. A tool added with mcp.AddTool never sees the arguments' bytes:
// the SDK decodes them into a map, numbers as float64 and strings as valid
// UTF-8, and encodes that again for the tool's input type. So a number a
// float64 does not hold exactly (9007199254740993 arrives as
// 9007199254740992), invalid UTF-8 and half a surrogate pair (\ud800,
// which arrives as U+FFFD) are refused, at any depth; whatever else passes
// reaches the tool with the value approved. The middleware cannot tell a
// typed tool from one that reads the raw arguments, so it refuses them for
// every gated tool.
func checkArgs(args json.RawMessage) error {
	if t := bytes.TrimSpace(args); len(t) == 0 || string(t) == "null" {
		return nil
	} else if t[0] != '{' || !json.Valid(t) {
		return fmt.Errorf("%w: the arguments are not a JSON object", approval.ErrInvalidAction)
	}
	if !utf8.Valid(args) {
		return fmt.Errorf("%w: the arguments hold a string that is not valid UTF-8, which the tool would receive changed", approval.ErrInvalidAction)
	}
	if loneSurrogate(args) {
		return fmt.Errorf("%w: the arguments hold a \\u escape of half a UTF-16 surrogate pair, which the tool would receive as U+FFFD", approval.ErrInvalidAction)
	}
	dec := json.NewDecoder(bytes.NewReader(args))
	dec.UseNumber()
	type frame struct {
		keys    map[string]bool // nil in an array
		wantKey bool
	}
	var open []frame
	// valueDone marks the value of the innermost object's last key read.
	valueDone := func() {
		if n := len(open); n > 0 && open[n-1].keys != nil {
			open[n-1].wantKey = true
		}
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: the arguments are not valid JSON: %v", approval.ErrInvalidAction, err)
		}
		if n := len(open); n > 0 && open[n-1].wantKey {
			if k, ok := tok.(string); ok {
				if open[n-1].keys[k] {
					return fmt.Errorf("%w: the arguments hold the key %q twice in one object", approval.ErrInvalidAction, text.Cut(k, 64))
				}
				open[n-1].keys[k] = true
				open[n-1].wantKey = false
				continue
			}
		}
		if n, ok := tok.(json.Number); ok {
			if err := checkNumber(string(n)); err != nil {
				return err
			}
		}
		switch tok {
		case json.Delim('{'):
			open = append(open, frame{keys: map[string]bool{}, wantKey: true})
		case json.Delim('['):
			open = append(open, frame{})
		case json.Delim('}'), json.Delim(']'):
			open = open[:len(open)-1]
			valueDone()
		default:
			valueDone()
		}
	}
}

// checkNumber refuses the JSON number lit unless a tool receives it with
// its value: the SDK reads it as a float64 and writes that float back
// (encoding/json's shortest form), so the two must be one decimal value.
func checkNumber(lit string) error {
	if len(lit) <= 300 && !strings.ContainsAny(lit, "eE") && significantDigits(lit) <= 15 {
		// Up to 15 significant digits, in the range of normal floats,
		// round-trip exactly: no parse needed for the usual number.
		return nil
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil {
		return fmt.Errorf("%w: the arguments hold the number %s, which a 64-bit float cannot hold, as the tool would read it; send it as a string", approval.ErrInvalidAction, text.Cut(lit, 64))
	}
	got, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("%w: the arguments hold the number %s: %v", approval.ErrInvalidAction, text.Cut(lit, 64), err)
	}
	if !sameDecimal(lit, string(got)) {
		return fmt.Errorf("%w: the arguments hold the number %s, which the tool would receive as %s (it reads numbers as 64-bit floats); send it as a string, or as a number a float holds exactly", approval.ErrInvalidAction, text.Cut(lit, 64), got)
	}
	return nil
}

// significantDigits counts the digits of a JSON number literal without an
// exponent, leading zeros left out.
func significantDigits(lit string) int {
	n := 0
	for i := 0; i < len(lit); i++ {
		if c := lit[i]; '1' <= c && c <= '9' || c == '0' && n > 0 {
			n++
		}
	}
	return n
}

// sameDecimal reports whether the JSON numbers a and b are one value,
// compared as decimals: exactly, and without building either (an exponent
// of a million digits costs nothing).
func sameDecimal(a, b string) bool {
	na, da, ea, ok1 := decimal(a)
	nb, db, eb, ok2 := decimal(b)
	return ok1 && ok2 && na == nb && ea == eb && da == db
}

// decimal returns the JSON number lit as its sign, its significant digits
// (no leading or trailing zeros) and the exponent e of its value, which is
// 0.digits × 10^e. Zero is positive, without digits, exponent 0. ok is
// false for an exponent too large to count.
func decimal(lit string) (neg bool, digits string, exp int, ok bool) {
	mant, e := lit, ""
	if i := strings.IndexAny(lit, "eE"); i >= 0 {
		mant, e = lit[:i], lit[i+1:]
	}
	mant, neg = strings.CutPrefix(mant, "-")
	whole, frac, _ := strings.Cut(mant, ".")
	all := whole + frac
	lead := len(all) - len(strings.TrimLeft(all, "0"))
	digits = strings.TrimRight(all[lead:], "0")
	if digits == "" {
		return false, "", 0, true
	}
	exp = len(whole) - lead
	if e != "" {
		x, err := strconv.Atoi(e)
		if err != nil || x > 1<<40 || x < -1<<40 {
			return false, "", 0, false
		}
		exp += x
	}
	return neg, digits, exp, true
}

// loneSurrogate reports whether the JSON text b, valid JSON, escapes half
// a UTF-16 surrogate pair ("\ud800" alone): decoders read it as U+FFFD.
func loneSurrogate(b []byte) bool {
	for i := bytes.IndexByte(b, '\\'); i >= 0 && i+1 < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		i++ // the escaped character: a backslash escaping one is skipped
		if b[i] != 'u' {
			continue
		}
		r := hex4(b[i+1:])
		i += 4
		if !utf16.IsSurrogate(r) {
			continue
		}
		if r < 0xdc00 && i+6 < len(b) && b[i+1] == '\\' && b[i+2] == 'u' {
			if lo := hex4(b[i+3:]); 0xdc00 <= lo && lo < 0xe000 {
				i += 6
				continue
			}
		}
		return true
	}
	return false
}

// hex4 reads the four hex digits of a \u escape.
func hex4(h []byte) rune {
	var r rune
	for _, c := range h[:4] {
		r <<= 4
		switch {
		case '0' <= c && c <= '9':
			r |= rune(c - '0')
		case 'a' <= c && c <= 'f':
			r |= rune(c - 'a' + 10)
		case 'A' <= c && c <= 'F':
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}
