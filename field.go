package approval

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/signoff/approval/internal/canon"
	"github.com/signoff/approval/internal/ident"
	"github.com/signoff/approval/internal/scalar"
	"github.com/signoff/approval/internal/text"
)

// Operator compares an action's field with a value in a Field matcher.
type Operator string

// Operators.
const (
	OpEq       Operator = "="
	OpNe       Operator = "!="
	OpLt       Operator = "<"
	OpLe       Operator = "<="
	OpGt       Operator = ">"
	OpGe       Operator = ">="
	OpContains Operator = "contains"
	OpIn       Operator = "in"
)

// Field matches when the action's field compares with value under op: a
// metadata or payload condition, as conditional levels are written
// ("priority = critical", "labels contains security").
//
// field is one of name, requested_by, risk, cost (the amount),
// cost.currency, tags, run_id, step_id, provenance.source,
// provenance.created_by, metadata.KEY (a Metadata value), or
// payload.PATH (a value in a JSON object payload, PATH its keys joined by
// dots). value is a string, a number, a bool, or, for OpIn, a list of
// them. Names, identities and tags are compared in canonical form (see
// CanonicalID); risk levels by their order (low < critical).
//
// An action without the field does not match (as a cost matcher does not
// match an action without a cost), except under OpNe, which it matches. A
// comparison the field's value cannot take (a string ordered against a
// number, a payload that is not JSON) is an error, which applies the
// policy or level (fail closed). Ordering operators compare numbers, or
// risk levels; a metadata value is a number when it parses as one.
func Field(field string, op Operator, value any) Matcher {
	m := &fieldMatcher{field: field, op: op}
	m.err = m.init(value)
	return m
}

type fieldMatcher struct {
	field string
	op    Operator
	value any   // string, float64 or bool
	list  []any // OpIn
	err   error
}

func (m *fieldMatcher) init(value any) error {
	if err := checkFieldName(m.field); err != nil {
		return err
	}
	switch m.op {
	case OpEq, OpNe, OpLt, OpLe, OpGt, OpGe, OpContains:
	case OpIn:
		var items []any
		switch xs := value.(type) {
		case []any:
			items = xs
		case []string:
			for _, x := range xs {
				items = append(items, x)
			}
		case []float64:
			for _, x := range xs {
				items = append(items, x)
			}
		case []int:
			for _, x := range xs {
				items = append(items, x)
			}
		default:
			return fmt.Errorf("field %s: in needs a list, not %T", m.field, value)
		}
		if len(items) == 0 {
			return fmt.Errorf("field %s: in needs a list of at least one value", m.field)
		}
		for _, it := range items {
			v, err := scalar.Of(it)
			if err != nil {
				return fmt.Errorf("field %s: %v", m.field, err)
			}
			if v, err = m.fold(v); err != nil {
				return err
			}
			m.list = append(m.list, v)
		}
		return nil
	default:
		return fmt.Errorf("field %s: unknown operator %q (want = != < <= > >= contains in)", m.field, text.Clip(string(m.op), 16))
	}
	v, err := scalar.Of(value)
	if err != nil {
		return fmt.Errorf("field %s: %v", m.field, err)
	}
	if m.value, err = m.fold(v); err != nil {
		return err
	}
	switch m.op {
	case OpLt, OpLe, OpGt, OpGe:
		if _, ok := m.value.(float64); !ok && m.field != "risk" {
			return fmt.Errorf("field %s: %s needs a number", m.field, m.op)
		}
	}
	return nil
}

// fold writes a string value in the canonical form of the field's values.
func (m *fieldMatcher) fold(v any) (any, error) {
	s, ok := v.(string)
	if !ok {
		if m.field == "risk" {
			return nil, fmt.Errorf("field risk: a risk level is a name (low, medium, high, critical)")
		}
		return v, nil
	}
	var err error
	switch m.field {
	case "name":
		s, err = ident.Name(s)
	case "requested_by", "provenance.created_by":
		s, err = CanonicalID(s)
	case "tags":
		s, err = ident.Fold(s)
	case "cost.currency":
		s = strings.ToUpper(s)
	case "risk":
		var r Risk
		if r, err = ParseRisk(s); err == nil && r == RiskNone {
			err = errors.New("is not a level")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("field %s: value %q %v", m.field, text.Clip(s, 64), err)
	}
	return s, nil
}

func checkFieldName(f string) error {
	switch f {
	case "name", "requested_by", "risk", "cost", "cost.currency", "tags", "run_id", "step_id",
		"provenance.source", "provenance.created_by":
		return nil
	}
	for _, prefix := range []string{"metadata.", "payload."} {
		if rest, ok := strings.CutPrefix(f, prefix); ok && rest != "" && len(f) <= 256 {
			if prefix == "payload." && slices.Contains(strings.Split(rest, "."), "") {
				return fmt.Errorf("field %q: an empty key in the payload path", text.Clip(f, 64))
			}
			return nil
		}
	}
	return fmt.Errorf("unknown field %q (want name, requested_by, risk, cost, cost.currency, tags, run_id, step_id, provenance.source, provenance.created_by, metadata.KEY or payload.PATH)", text.Clip(f, 64))
}

func (m *fieldMatcher) check() error { return m.err }

// lookup returns the action's value of the field: a string, a float64, a
// bool, a []any (tags, a payload array), or nil when it has none.
func (m *fieldMatcher) lookup(a *Action) (any, error) {
	str := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	switch m.field {
	case "name":
		return str(a.Name), nil
	case "requested_by":
		return str(a.RequestedBy), nil
	case "risk":
		if a.Risk == RiskNone {
			return nil, nil
		}
		return a.Risk.String(), nil
	case "cost":
		if a.Cost == nil {
			return nil, nil
		}
		return a.Cost.Amount, nil
	case "cost.currency":
		if a.Cost == nil {
			return nil, nil
		}
		return str(a.Cost.Currency), nil
	case "tags":
		if len(a.Tags) == 0 {
			return nil, nil
		}
		out := make([]any, len(a.Tags))
		for i, t := range a.Tags {
			out[i] = t
		}
		return out, nil
	case "run_id":
		return str(a.RunID), nil
	case "step_id":
		return str(a.StepID), nil
	case "provenance.source", "provenance.created_by":
		if a.Provenance == nil {
			return nil, nil
		}
		if m.field == "provenance.source" {
			return str(a.Provenance.Source), nil
		}
		return str(a.Provenance.CreatedBy), nil
	}
	if key, ok := strings.CutPrefix(m.field, "metadata."); ok {
		v, ok := a.Metadata[key]
		if !ok {
			return nil, nil
		}
		return v, nil
	}
	return scalar.Lookup(a.Payload, strings.Split(strings.TrimPrefix(m.field, "payload."), "."))
}

func (m *fieldMatcher) Match(a *Action) (bool, error) {
	if m.err != nil {
		return false, m.err
	}
	got, err := m.lookup(a)
	if err != nil {
		return false, fmt.Errorf("field %s: %v", m.field, err)
	}
	if got == nil {
		return m.op == OpNe, nil
	}
	switch m.op {
	case OpEq, OpNe:
		eq := scalar.Equal(got, m.value)
		return eq == (m.op == OpEq), nil
	case OpIn:
		for _, v := range m.list {
			if scalar.Equal(got, v) {
				return true, nil
			}
		}
		return false, nil
	case OpContains:
		switch g := got.(type) {
		case []any:
			return slices.ContainsFunc(g, func(x any) bool { return scalar.Equal(x, m.value) }), nil
		case string:
			s, ok := m.value.(string)
			if !ok {
				return false, fmt.Errorf("field %s: contains a %T in a string", m.field, m.value)
			}
			return strings.Contains(g, s), nil
		}
		return false, fmt.Errorf("field %s: contains needs a list or a string, the action has a %T", m.field, got)
	}
	x, y, err := m.ordered(got)
	if err != nil {
		return false, err
	}
	switch m.op {
	case OpLt:
		return x < y, nil
	case OpLe:
		return x <= y, nil
	case OpGt:
		return x > y, nil
	}
	return x >= y, nil
}

// ordered returns the action's value and the matcher's as numbers.
func (m *fieldMatcher) ordered(got any) (float64, float64, error) {
	if m.field == "risk" {
		gr, _ := ParseRisk(got.(string))
		wr, _ := ParseRisk(m.value.(string))
		return float64(gr), float64(wr), nil
	}
	want := m.value.(float64)
	if g, ok := scalar.Number(got); ok {
		return g, want, nil
	}
	return 0, 0, fmt.Errorf("field %s: %s needs a number, the action has %s", m.field, m.op, scalar.Describe(got))
}

func (m *fieldMatcher) appendCanonical(b []byte) ([]byte, error) {
	b = append(b, '{')
	b = canon.AppendKey(b, "field")
	b = append(b, '{')
	b = canon.AppendKey(b, "name")
	b = canon.AppendString(b, m.field)
	b = append(b, ',')
	b = canon.AppendKey(b, "op")
	b = canon.AppendString(b, string(m.op))
	b = append(b, ',')
	b = canon.AppendKey(b, "value")
	if m.op == OpIn {
		b = append(b, '[')
		for i, v := range m.list {
			if i > 0 {
				b = append(b, ',')
			}
			b = scalar.AppendCanonical(b, v)
		}
		b = append(b, ']')
	} else {
		b = scalar.AppendCanonical(b, m.value)
	}
	return append(b, '}', '}'), nil
}
