package sqlstore

import (
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/signoff/approval"
)

// The body columns hold what encoding/json wrote. Reading an audit event's
// body with encoding/json costs more than reading its row and hashing it
// do, and VerifyAuditTrail reads every one; so the bodies are read by
// bodyReader first, which takes them in the form encoding/json writes
// (members without whitespace between them, each key spelled as its
// struct tag and given once, strings without invalid UTF-8) and gives up
// on anything else. What it gives up on goes to encoding/json, which
// decides: so an event body that bodyReader reads decodes to exactly what
// encoding/json would make of it (FuzzReadEvent checks that), and any
// other body decodes, or fails, as it did before.
//
// Of a request's body, readAudited decodes only the members its audit
// events account for (AuditedRequest), alike (FuzzReadAudited), and checks
// that the others are well-formed JSON without decoding them: a body
// whose other members have values their fields cannot take (a string for
// a number, a time that does not parse) is read, where a whole decode
// fails. Get and List still decode, and fail on, the whole body.

// bodyReader reads one JSON body. Its methods record the first failure;
// the strings it returns share memory with the body when they hold no
// escapes.
type bodyReader struct {
	p  string
	i  int
	ok bool
}

func (r *bodyReader) fail() { r.ok = false }

// next reports whether the input continues with c, and consumes it if so.
func (r *bodyReader) next(c byte) bool {
	if r.ok && r.i < len(r.p) && r.p[r.i] == c {
		r.i++
		return true
	}
	return false
}

// want consumes c, or fails.
func (r *bodyReader) want(c byte) {
	if !r.next(c) {
		r.fail()
	}
}

// done reports whether every read succeeded and the input is used up.
func (r *bodyReader) done() bool { return r.ok && r.i == len(r.p) }

// members reads an object, calling member with the key of each member;
// member reads the value and returns the key's bit, or 0 for a key it
// does not know. members fails for a key member does not know, or one
// given twice.
func (r *bodyReader) members(member func(key string) uint64) {
	r.want('{')
	if r.next('}') {
		return
	}
	var seen uint64
	for r.ok {
		bit := member(r.key())
		if bit == 0 || seen&bit != 0 {
			r.fail()
			return
		}
		seen |= bit
		if !r.next(',') {
			r.want('}')
			return
		}
	}
}

// skipKnown skips the value of member key if it is one of known (a
// struct's JSON names, by bit), and returns its bit, or 0.
func (r *bodyReader) skipKnown(known map[string]uint64, key string) uint64 {
	bit := known[key]
	if bit != 0 {
		r.skip()
	}
	return bit
}

// key reads a member's name, up to the first quote, and its colon.
func (r *bodyReader) key() string {
	r.want('"')
	if !r.ok {
		return ""
	}
	end := strings.IndexByte(r.p[r.i:], '"')
	if end < 0 {
		r.fail()
		return ""
	}
	// A key with an escape or an odd byte is no field's name: the
	// callers give up on it.
	k := r.p[r.i : r.i+end]
	r.i += end + 1
	r.want(':')
	return k
}

// plain reports whether s is printable ASCII other than a backslash. It
// looks at eight bytes at a time.
func plain(s string) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		bs := x ^ ('\\' * ones) // a zero byte where s has a backslash
		if x&highs != 0 || (x-0x20*ones)&^x&highs != 0 || (bs-ones)&^bs&highs != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '\\' {
			return false
		}
	}
	return true
}

// escapes reports whether s has a control character or a backslash. It
// looks at eight bytes at a time.
func escapes(s string) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		bs := x ^ ('\\' * ones)
		if (x-0x20*ones)&^x&highs != 0 || (bs-ones)&^bs&highs != 0 {
			return true
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '\\' {
			return true
		}
	}
	return false
}

// str reads a string. It fails on what encoding/json would change as it
// decodes (invalid UTF-8, a lone surrogate), which it leaves to it.
func (r *bodyReader) str() string {
	r.want('"')
	if !r.ok {
		return ""
	}
	// Most strings hold no escape and are ASCII: find the end, check, done.
	if end := strings.IndexByte(r.p[r.i:], '"'); end >= 0 {
		if raw := r.p[r.i : r.i+end]; plain(raw) {
			r.i += end + 1
			return raw
		}
	}
	start, escaped := r.i, false
	for r.ok && r.i < len(r.p) {
		c := r.p[r.i]
		switch {
		case c == '"':
			raw := r.p[start:r.i]
			r.i++
			if !escaped {
				if !utf8.ValidString(raw) {
					r.fail()
				}
				return raw
			}
			s, ok := unquote(raw)
			if !ok {
				r.fail()
			}
			return s
		case c == '\\':
			escaped = true
			r.i += 2
		case c < 0x20:
			r.fail()
		default:
			r.i++
		}
	}
	r.fail()
	return ""
}

// unquote decodes the escapes of a string's body, as encoding/json does,
// but fails on a surrogate and on invalid UTF-8.
func unquote(raw string) (string, bool) {
	var b strings.Builder
	b.Grow(len(raw))
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			j := i + 1
			for j < len(raw) && raw[j] != '\\' {
				j++
			}
			if !utf8.ValidString(raw[i:j]) {
				return "", false
			}
			b.WriteString(raw[i:j])
			i = j
			continue
		}
		if i+1 >= len(raw) {
			return "", false
		}
		switch raw[i+1] {
		case '"', '\\', '/':
			b.WriteByte(raw[i+1])
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			if i+6 > len(raw) {
				return "", false
			}
			n, err := strconv.ParseUint(raw[i+2:i+6], 16, 16)
			if err != nil || utf16.IsSurrogate(rune(n)) {
				return "", false
			}
			b.WriteRune(rune(n))
			i += 6
			continue
		default:
			return "", false
		}
		i += 2
	}
	return b.String(), true
}

// int reads an integer that fits in an int64, as encoding/json reads one
// into an integer field.
func (r *bodyReader) int() int64 {
	start := r.i
	r.next('-')
	digits := r.i
	for r.i < len(r.p) && r.p[r.i] >= '0' && r.p[r.i] <= '9' {
		r.i++
	}
	if !r.ok || r.i == digits || r.p[digits] == '0' && r.i > digits+1 ||
		r.i < len(r.p) && (r.p[r.i] == '.' || r.p[r.i] == 'e' || r.p[r.i] == 'E') {
		r.fail()
		return 0
	}
	n, err := strconv.ParseInt(r.p[start:r.i], 10, 64)
	if err != nil {
		r.fail()
	}
	return n
}

// bool reads true or false.
func (r *bodyReader) bool() bool {
	switch {
	case !r.ok:
	case strings.HasPrefix(r.p[r.i:], "true"):
		r.i += 4
		return true
	case strings.HasPrefix(r.p[r.i:], "false"):
		r.i += 5
		return false
	}
	r.fail()
	return false
}

// time reads a time as time.Time's MarshalJSON writes one in UTC:
// RFC 3339, up to nine fractional digits, and Z. It reads it as
// Time.UnmarshalJSON does, to time.Date of its fields in UTC, and fails
// for a field out of its range.
func (r *bodyReader) time() time.Time {
	s := r.str()
	if !r.ok || len(s) < 20 || s[len(s)-1] != 'Z' || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		r.fail()
		return time.Time{}
	}
	num := func(from, to int) int {
		n := 0
		for i := from; i < to; i++ {
			c := s[i]
			if c < '0' || c > '9' {
				r.fail()
				return 0
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	year, month, day := num(0, 4), num(5, 7), num(8, 10)
	hour, minute, sec := num(11, 13), num(14, 16), num(17, 19)
	nsec := 0
	if frac := s[19 : len(s)-1]; frac != "" {
		if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 {
			r.fail()
			return time.Time{}
		}
		nsec = num(20, len(s)-1)
		for range 10 - len(frac) {
			nsec *= 10
		}
	}
	if !r.ok || month < 1 || month > 12 || day < 1 || day > daysIn(time.Month(month), year) ||
		hour > 23 || minute > 59 || sec > 59 {
		r.fail()
		return time.Time{}
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
}

// daysIn returns the number of days of month in year.
func daysIn(month time.Month, year int) int {
	return time.Date(year, month+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// skip reads a JSON value of any kind, checking that it is well-formed.
func (r *bodyReader) skip() {
	r.space()
	if !r.ok || r.i >= len(r.p) {
		r.fail()
		return
	}
	switch c := r.p[r.i]; {
	case c == '{':
		r.i++
		if r.space(); r.next('}') {
			return
		}
		for r.ok {
			r.space()
			r.skipString()
			r.space()
			r.want(':')
			r.skip()
			if r.space(); !r.next(',') {
				r.want('}')
				return
			}
		}
	case c == '[':
		r.i++
		if r.space(); r.next(']') {
			return
		}
		for r.ok {
			r.skip()
			if r.space(); !r.next(',') {
				r.want(']')
				return
			}
		}
	case c == '"':
		r.skipString()
	case c == '-' || c >= '0' && c <= '9':
		r.skipNumber()
	case strings.HasPrefix(r.p[r.i:], "true"):
		r.i += 4
	case strings.HasPrefix(r.p[r.i:], "false"):
		r.i += 5
	case strings.HasPrefix(r.p[r.i:], "null"):
		r.i += 4
	default:
		r.fail()
	}
}

func (r *bodyReader) space() {
	for r.i < len(r.p) && (r.p[r.i] == ' ' || r.p[r.i] == '\t' || r.p[r.i] == '\n' || r.p[r.i] == '\r') {
		r.i++
	}
}

// skipString reads a well-formed string (invalid UTF-8 is well-formed:
// encoding/json replaces it).
func (r *bodyReader) skipString() {
	r.want('"')
	if !r.ok {
		return
	}
	if end := strings.IndexByte(r.p[r.i:], '"'); end >= 0 && !escapes(r.p[r.i:r.i+end]) {
		r.i += end + 1
		return
	}
	for r.ok && r.i < len(r.p) {
		switch c := r.p[r.i]; {
		case c == '"':
			r.i++
			return
		case c < 0x20:
			r.fail()
		case c == '\\':
			if r.i+1 >= len(r.p) {
				r.fail()
				return
			}
			switch r.p[r.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				r.i += 2
			case 'u':
				if r.i+6 > len(r.p) {
					r.fail()
					return
				}
				for _, h := range []byte(r.p[r.i+2 : r.i+6]) {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						r.fail()
					}
				}
				r.i += 6
			default:
				r.fail()
			}
		default:
			r.i++
		}
	}
	r.fail()
}

// skipNumber reads a number in JSON's grammar.
func (r *bodyReader) skipNumber() {
	digits := func() int {
		start := r.i
		for r.i < len(r.p) && r.p[r.i] >= '0' && r.p[r.i] <= '9' {
			r.i++
		}
		return r.i - start
	}
	r.next('-')
	start := r.i
	switch n := digits(); {
	case n == 0, n > 1 && r.p[start] == '0':
		r.fail()
		return
	}
	if r.next('.') && digits() == 0 {
		r.fail()
		return
	}
	if r.next('e') || r.next('E') {
		if !r.next('+') {
			r.next('-')
		}
		if digits() == 0 {
			r.fail()
		}
	}
}

// jsonKeys returns the JSON names encoding/json gives the fields of
// struct type t, each with a bit of its own.
func jsonKeys(t reflect.Type) map[string]uint64 {
	names := make(map[string]uint64)
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || f.Anonymous {
			panic("sqlstore: jsonKeys: unexported or embedded field " + f.Name + " in " + t.Name())
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		names[name] = 1 << len(names)
	}
	if len(names) > 64 {
		panic("sqlstore: jsonKeys: more than 64 fields in " + t.Name())
	}
	return names
}

var (
	requestKeys = jsonKeys(reflect.TypeFor[approval.Request]())
	editKeys    = jsonKeys(reflect.TypeFor[approval.PayloadEdit]())
	voteKeys    = jsonKeys(reflect.TypeFor[approval.Vote]())
)

// readEvent reads an audit event's body into e, a zero event, and
// reports whether it could; see bodyReader.
func readEvent(body string, e *approval.AuditEvent) bool {
	r := bodyReader{p: body, ok: true}
	r.want('{')
	if r.next('}') {
		return r.done()
	}
	var seen uint32
	for r.ok {
		var bit uint32
		switch r.key() {
		case "seq":
			bit, e.Seq = 1<<0, r.int()
		case "request_id":
			bit, e.RequestID = 1<<1, r.str()
		case "type":
			bit, e.Type = 1<<2, approval.EventType(r.str())
		case "actor":
			bit, e.Actor = 1<<3, r.str()
		case "on_behalf_of":
			bit, e.OnBehalfOf = 1<<4, r.str()
		case "policies":
			bit = 1 << 5
			e.Policies = []approval.PolicyRef{}
			r.list(func() {
				var p approval.PolicyRef
				r.members(func(key string) uint64 {
					switch key {
					case "name":
						p.Name = r.str()
						return 1
					case "hash":
						p.Hash = r.str()
						return 2
					}
					return 0
				})
				e.Policies = append(e.Policies, p)
			})
		case "verdict":
			bit, e.Verdict = 1<<6, approval.Verdict(r.str())
		case "reason":
			bit, e.Reason = 1<<7, r.str()
		case "conditions":
			bit = 1 << 8
			e.Conditions = []string{}
			r.list(func() { e.Conditions = append(e.Conditions, r.str()) })
		case "action_hash":
			bit, e.ActionHash = 1<<9, r.str()
		case "payload_hash":
			bit, e.PayloadHash = 1<<10, r.str()
		case "checkpoint":
			bit = 1 << 11
			c := new(approval.AuditCheckpoint)
			r.members(func(key string) uint64 {
				switch key {
				case "seq":
					c.Seq = r.int()
					return 1
				case "hash":
					c.Hash = r.str()
					return 2
				case "kid":
					c.KeyID = r.str()
					return 4
				case "sig":
					c.Signature = r.str()
					return 8
				}
				return 0
			})
			e.Checkpoint = c
		case "at":
			bit, e.At = 1<<12, r.time()
		case "prev_hash":
			bit, e.PrevHash = 1<<13, r.str()
		case "hash":
			bit, e.Hash = 1<<14, r.str()
		case "passkey":
			bit, e.Passkey = 1<<15, r.str()
		default:
			// Another spelling of a field's name, or a field added to
			// AuditEvent and not read here: encoding/json reads it.
			return false
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		if !r.next(',') {
			r.want('}')
			break
		}
	}
	return r.done()
}

// list reads an array, calling item for each element.
func (r *bodyReader) list(item func()) {
	r.want('[')
	if r.next(']') {
		return
	}
	for r.ok {
		item()
		if !r.next(',') {
			r.want(']')
			return
		}
	}
}

// readAudited reads the part of a request's body that its audit events
// account for into a, and reports whether it could; see bodyReader. The
// other members are checked to be well-formed JSON, not decoded.
func readAudited(body string, a *approval.AuditedRequest) bool {
	r := bodyReader{p: body, ok: true}
	r.members(func(key string) uint64 {
		switch key {
		case "id":
			a.ID = r.str()
		case "status":
			a.Status = approval.Status(r.str())
		case "action_hash":
			a.ActionHash = r.str()
		case "payload_hash":
			a.PayloadHash = r.str()
		case "uses":
			n := r.int()
			a.Uses = int(n)
			if int64(a.Uses) != n {
				r.fail()
			}
		case "created_at":
			a.CreatedAt = r.time()
		case "edit":
			a.Edited = true
			r.members(func(key string) uint64 {
				switch key {
				case "action_hash":
					a.EditActionHash = r.str()
				case "payload_hash":
					a.EditPayloadHash = r.str()
				default:
					return r.skipKnown(editKeys, key)
				}
				return editKeys[key]
			})
		case "votes":
			a.Votes = nil
			r.list(func() {
				var v approval.AuditedVote
				r.members(func(key string) uint64 {
					switch key {
					case "approver":
						v.Approver = r.str()
					case "verdict":
						v.Verdict = approval.Verdict(r.str())
					case "break_glass":
						v.BreakGlass = r.bool()
					default:
						return r.skipKnown(voteKeys, key)
					}
					return voteKeys[key]
				})
				a.Votes = append(a.Votes, v)
			})
		default:
			return r.skipKnown(requestKeys, key)
		}
		return requestKeys[key]
	})
	return r.done()
}
