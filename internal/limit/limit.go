// Package limit reads and compares the one form of limit the gate
// understands in conditions and constraints, KEY OP VALUE (see
// approval.Decision.Conditions): OP one of < <= > >= = in, VALUE a number,
// a duration, an RFC 3339 time, a word, or after in a bracketed list of
// one kind. It does no I/O and knows nothing of requests.
package limit

import (
	"math/big"
	"slices"
	"strings"
	"time"
)

// Limit is a parsed condition or constraint: KEY OP VALUE.
type Limit struct {
	// Key is what is limited ("amount", "env").
	Key string
	// Op is the comparison: "<", "<=", "=", ">=", ">" or "in".
	Op   string
	vals []value // one, or the list after "in"
}

// Kind is the kind of a limit's values.
type Kind int

// Kinds of value.
const (
	Number Kind = iota + 1
	Duration
	Time
	Word
)

// String names the kind for messages: "a number", "a duration", ...
func (k Kind) String() string {
	return [...]string{"", "a number", "a duration", "a time", "a word"}[k]
}

type value struct {
	kind Kind
	num  *big.Rat
	dur  time.Duration
	at   time.Time
	word string
}

// cmp orders two values of one ordered kind.
func (v value) cmp(w value) int {
	switch v.kind {
	case Number:
		return v.num.Cmp(w.num)
	case Duration:
		return cmpInt(int64(v.dur), int64(w.dur))
	case Time:
		return v.at.Compare(w.at)
	}
	return strings.Compare(v.word, w.word)
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Parse parses s in the KEY OP VALUE form; ok is false for anything
// else.
func Parse(s string) (l Limit, ok bool) {
	f := strings.Fields(s)
	if len(f) < 3 || !IsKey(f[0]) {
		return Limit{}, false
	}
	l.Key, l.Op = f[0], f[1]
	rest := strings.Join(f[2:], " ")
	switch l.Op {
	case "<", "<=", ">", ">=", "=":
		if len(f) != 3 {
			return Limit{}, false
		}
		v, ok := parseValue(rest)
		if !ok || (l.Op != "=" && v.kind == Word) {
			return Limit{}, false
		}
		l.vals = []value{v}
	case "in":
		if !strings.HasPrefix(rest, "[") || !strings.HasSuffix(rest, "]") {
			return Limit{}, false
		}
		for item := range strings.SplitSeq(rest[1:len(rest)-1], ",") {
			v, ok := parseValue(strings.TrimSpace(item))
			if !ok || (len(l.vals) > 0 && v.kind != l.vals[0].kind) {
				return Limit{}, false
			}
			l.vals = append(l.vals, v)
		}
	default:
		return Limit{}, false
	}
	return l, true
}

// IsKey reports whether s is a key: at most 64 letters, digits, '_', '-'
// and '.'.
func IsKey(s string) bool {
	if len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func parseValue(s string) (value, bool) {
	if s == "" || len(s) > 128 || strings.ContainsAny(s, " []\t") {
		return value{}, false
	}
	if r, ok := new(big.Rat).SetString(s); ok && !strings.ContainsAny(s, "/") {
		return value{kind: Number, num: r}, true
	}
	if d, err := time.ParseDuration(s); err == nil {
		return value{kind: Duration, dur: d}, true
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return value{kind: Time, at: t}, true
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_-.:/@", c)) {
			return value{}, false
		}
	}
	return value{kind: Word, word: s}, true
}

// allows reports whether l admits v (of l's kind).
func (l *Limit) allows(v value) bool {
	if l.Op == "in" || l.Op == "=" {
		return slices.ContainsFunc(l.vals, func(w value) bool { return w.cmp(v) == 0 })
	}
	c := v.cmp(l.vals[0])
	switch l.Op {
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	}
	return c >= 0
}

// Within reports whether c relaxes none of bounds (all of c's key and
// kind): a finite c admits only values every bound admits; a half-line c
// ends no later than each bound facing its way.
func (c *Limit) Within(bounds []Limit) bool {
	if c.Op == "in" || c.Op == "=" {
		for _, v := range c.vals {
			for i := range bounds {
				if !bounds[i].allows(v) {
					return false
				}
			}
		}
		return true
	}
	// c is a half-line: no finite set contains it, and it must be at
	// least as strict as each bound facing its way. A bound facing the
	// other way still applies beside it (the host enforces both), so c
	// relaxes nothing there.
	for i := range bounds {
		b := &bounds[i]
		if b.Op == "in" || b.Op == "=" {
			return false
		}
		if upward(b.Op) != upward(c.Op) {
			continue
		}
		cmp := c.vals[0].cmp(b.vals[0])
		if upward(c.Op) {
			cmp = -cmp
		}
		// Downward (<, <=): c's end must be below b's, or equal with c no
		// less strict.
		if cmp > 0 || cmp == 0 && strict(b.Op) && !strict(c.Op) {
			return false
		}
	}
	return true
}

func upward(op string) bool { return op == ">" || op == ">=" }
func strict(op string) bool { return op == "<" || op == ">" }

// Kind returns the kind of l's values.
func (l *Limit) Kind() Kind { return l.vals[0].kind }
