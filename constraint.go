package approval

import (
	"fmt"
	"slices"
	"strings"

	"github.com/signoff/approval/internal/limit"
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

// checkConditions validates conds against the action's constraints and
// returns them in their normal spelling (single spaces).
func checkConditions(conds, constraints []string) ([]string, error) {
	if len(conds) == 0 {
		return nil, nil
	}
	if len(conds) > maxConditions {
		return nil, fmt.Errorf("%w: %d conditions (at most %d)", ErrInvalidCondition, len(conds), maxConditions)
	}
	byKey := map[string][]limit.Limit{}
	for _, s := range constraints {
		if l, ok := limit.Parse(s); ok {
			byKey[l.Key] = append(byKey[l.Key], l)
		}
	}
	out := make([]string, len(conds))
	for i, s := range conds {
		if err := checkString("condition", s, 256); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidCondition, err)
		}
		c, ok := limit.Parse(s)
		if !ok {
			return nil, fmt.Errorf("%w: %q is not KEY OP VALUE (OP one of < <= > >= = in)", ErrInvalidCondition, text.Clip(s, 64))
		}
		bounds := byKey[c.Key]
		for _, b := range bounds {
			if b.Kind() != c.Kind() {
				return nil, fmt.Errorf("%w: %q: the constraint on %s is %s, the condition %s", ErrInvalidCondition, s, c.Key, b.Kind(), c.Kind())
			}
		}
		if !c.Within(bounds) {
			return nil, fmt.Errorf("%w: %q widens what was asked (%s)", ErrInvalidCondition, s, strings.Join(constraintsOf(constraints, c.Key), "; "))
		}
		out[i] = strings.Join(strings.Fields(s), " ")
	}
	return out, nil
}

// constraintsOf returns the constraints in the limit form on key.
func constraintsOf(constraints []string, key string) []string {
	var out []string
	for _, s := range constraints {
		if l, ok := limit.Parse(s); ok && l.Key == key {
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
