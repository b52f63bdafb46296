package approval

import (
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/signoff/approval/internal/text"
)

// Conditions: an approver may approve while narrowing what the action may
// do (Decision.Conditions). A condition is a limit in the one form the
// gate can compare:
//
//	KEY OP VALUE
//
// KEY is a name of letters, digits, '_', '-' and '.'; OP is one of <, <=,
// >, >=, = and in; VALUE is a number (200, 1.5), a duration (30m, 2h), a
// time (RFC 3339), a word, or, after in, a list of them in brackets
// ([eu-west-1, eu-central-1]). Numbers, durations and times are ordered;
// words only compare equal.
//
// A condition must narrow: every value it allows must be allowed by the
// action's Constraints of the same key that are in this form (all of
// them at once). So "max_lines_changed <= 200" narrows
// "max_lines_changed <= 500" and "max_lines_changed <= 800" widens it;
// "region = eu-west-1" narrows "region in [eu-west-1, us-east-1]". A
// condition on a key no constraint names adds a limit, which narrows too.
// Constraints in any other form are free text the gate does not read, and
// a condition cannot refer to them. A condition that does not parse, or
// that widens, is ErrInvalidCondition, and the decision changes nothing.
//
// Conditions are kept on the vote, written in the audit event of the
// decision, bound into the artifact, and returned by Guard
// (Result.Conditions): the host enforces them with Action.Constraints.

// maxConditions bounds Decision.Conditions.
const maxConditions = 32

// limit is a parsed condition or constraint.
type limit struct {
	key  string
	op   string
	vals []limitValue // one, or the list after "in"
}

type valueKind int

const (
	kindNumber valueKind = iota + 1
	kindDuration
	kindTime
	kindWord
)

func (k valueKind) String() string {
	return [...]string{"", "a number", "a duration", "a time", "a word"}[k]
}

type limitValue struct {
	kind valueKind
	num  *big.Rat
	dur  time.Duration
	at   time.Time
	word string
}

// cmp orders two values of one ordered kind.
func (v limitValue) cmp(w limitValue) int {
	switch v.kind {
	case kindNumber:
		return v.num.Cmp(w.num)
	case kindDuration:
		return cmpInt(int64(v.dur), int64(w.dur))
	case kindTime:
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

// parseLimit parses s in the KEY OP VALUE form; ok is false for anything
// else.
func parseLimit(s string) (l limit, ok bool) {
	f := strings.Fields(s)
	if len(f) < 3 || !isLimitKey(f[0]) {
		return limit{}, false
	}
	l.key, l.op = f[0], f[1]
	rest := strings.Join(f[2:], " ")
	switch l.op {
	case "<", "<=", ">", ">=", "=":
		if len(f) != 3 {
			return limit{}, false
		}
		v, ok := parseLimitValue(rest)
		if !ok || (l.op != "=" && v.kind == kindWord) {
			return limit{}, false
		}
		l.vals = []limitValue{v}
	case "in":
		if !strings.HasPrefix(rest, "[") || !strings.HasSuffix(rest, "]") {
			return limit{}, false
		}
		for item := range strings.SplitSeq(rest[1:len(rest)-1], ",") {
			v, ok := parseLimitValue(strings.TrimSpace(item))
			if !ok || (len(l.vals) > 0 && v.kind != l.vals[0].kind) {
				return limit{}, false
			}
			l.vals = append(l.vals, v)
		}
	default:
		return limit{}, false
	}
	return l, true
}

func isLimitKey(s string) bool {
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

func parseLimitValue(s string) (limitValue, bool) {
	if s == "" || len(s) > 128 || strings.ContainsAny(s, " []\t") {
		return limitValue{}, false
	}
	if r, ok := new(big.Rat).SetString(s); ok && !strings.ContainsAny(s, "/") {
		return limitValue{kind: kindNumber, num: r}, true
	}
	if d, err := time.ParseDuration(s); err == nil {
		return limitValue{kind: kindDuration, dur: d}, true
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return limitValue{kind: kindTime, at: t}, true
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_-.:/@", c)) {
			return limitValue{}, false
		}
	}
	return limitValue{kind: kindWord, word: s}, true
}

// allows reports whether l admits v (of l's kind).
func (l *limit) allows(v limitValue) bool {
	if l.op == "in" || l.op == "=" {
		return slices.ContainsFunc(l.vals, func(w limitValue) bool { return w.cmp(v) == 0 })
	}
	c := v.cmp(l.vals[0])
	switch l.op {
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	}
	return c >= 0
}

// within reports whether c relaxes none of bounds (all of c's key and
// kind): a finite c admits only values every bound admits; a half-line c
// ends no later than each bound facing its way.
func (c *limit) within(bounds []limit) bool {
	if c.op == "in" || c.op == "=" {
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
		if b.op == "in" || b.op == "=" {
			return false
		}
		if upward(b.op) != upward(c.op) {
			continue
		}
		cmp := c.vals[0].cmp(b.vals[0])
		if upward(c.op) {
			cmp = -cmp
		}
		// Downward (<, <=): c's end must be below b's, or equal with c no
		// less strict.
		if cmp > 0 || cmp == 0 && strict(b.op) && !strict(c.op) {
			return false
		}
	}
	return true
}

func upward(op string) bool { return op == ">" || op == ">=" }
func strict(op string) bool { return op == "<" || op == ">" }

// checkConditions validates conds against the action's constraints and
// returns them in their normal spelling (single spaces).
func checkConditions(conds, constraints []string) ([]string, error) {
	if len(conds) == 0 {
		return nil, nil
	}
	if len(conds) > maxConditions {
		return nil, fmt.Errorf("%w: %d conditions (at most %d)", ErrInvalidCondition, len(conds), maxConditions)
	}
	byKey := map[string][]limit{}
	for _, s := range constraints {
		if l, ok := parseLimit(s); ok {
			byKey[l.key] = append(byKey[l.key], l)
		}
	}
	out := make([]string, len(conds))
	for i, s := range conds {
		if err := checkString("condition", s, 256); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidCondition, err)
		}
		c, ok := parseLimit(s)
		if !ok {
			return nil, fmt.Errorf("%w: %q is not KEY OP VALUE (OP one of < <= > >= = in)", ErrInvalidCondition, text.Clip(s, 64))
		}
		bounds := byKey[c.key]
		for _, b := range bounds {
			if b.vals[0].kind != c.vals[0].kind {
				return nil, fmt.Errorf("%w: %q: the constraint on %s is %s, the condition %s", ErrInvalidCondition, s, c.key, b.vals[0].kind, c.vals[0].kind)
			}
		}
		if !c.within(bounds) {
			return nil, fmt.Errorf("%w: %q widens what was asked (%s)", ErrInvalidCondition, s, strings.Join(constraintsOf(constraints, c.key), "; "))
		}
		out[i] = strings.Join(strings.Fields(s), " ")
	}
	return out, nil
}

// constraintsOf returns the constraints in the limit form on key.
func constraintsOf(constraints []string, key string) []string {
	var out []string
	for _, s := range constraints {
		if l, ok := parseLimit(s); ok && l.key == key {
			out = append(out, s)
		}
	}
	return out
}

// Conditions returns the conditions the approvers of r set, in the order
// of their votes, each once: with Action.Constraints, the limits the
// approved action runs under.
func (r *Request) Conditions() []string {
	var out []string
	for _, v := range r.Votes {
		if v.Verdict != VerdictApprove {
			continue
		}
		for _, c := range v.Conditions {
			if !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	return out
}
