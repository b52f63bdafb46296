package approval

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// This file decodes the values of a policy file's nodes, strictly: each
// function takes the node and the path of its key, and fails there.

// fields returns mapping n's values by key, refusing a key not in known,
// a key given twice and a key that is not a string.
func fields(n *yaml.Node, path string, known ...string) (map[string]*yaml.Node, error) {
	if n.Kind != yaml.MappingNode {
		return nil, fail(n, path, "want a mapping, not %s", kindName(n))
	}
	m := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i < len(n.Content); i += 2 {
		kn := n.Content[i]
		if kn.Kind != yaml.ScalarNode || kn.Tag != "!!str" {
			return nil, fail(kn, path, "a key must be a string, not %s", kindName(kn))
		}
		k := kn.Value
		at := join(path, k)
		if !slices.Contains(known, k) {
			return nil, fail(kn, at, "unknown key %q (want one of %s)", clip(k, 64), strings.Join(known, ", "))
		}
		if m[k] != nil {
			return nil, fail(kn, at, "key %q is given twice", k)
		}
		m[k] = n.Content[i+1]
	}
	return m, nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// kindName describes a node for an error message.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!str":
			return "a string"
		case "!!int":
			return "an integer"
		case "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		case "!!null":
			return "null"
		case "!!timestamp":
			return "a timestamp"
		}
		return "a scalar"
	}
	return "nothing"
}

func stringValue(n *yaml.Node, path string) (string, error) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		return "", fail(n, path, "want a string, not %s", kindName(n))
	}
	return n.Value, nil
}

func optString(n *yaml.Node, path string) (string, error) {
	if n == nil {
		return "", nil
	}
	return stringValue(n, path)
}

func intValue(n *yaml.Node, path string) (int, error) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		return 0, fail(n, path, "want a whole number, not %s", kindName(n))
	}
	var v int64
	if err := n.Decode(&v); err != nil || v < 0 || v > math.MaxInt32 {
		return 0, fail(n, path, "%q is not a whole number from 0 to %d", clip(n.Value, 32), math.MaxInt32)
	}
	return int(v), nil
}

func floatValue(n *yaml.Node, path string) (float64, error) {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") {
		return 0, fail(n, path, "want a number, not %s", kindName(n))
	}
	var v float64
	if err := n.Decode(&v); err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fail(n, path, "%q is not a finite number", clip(n.Value, 32))
	}
	return v, nil
}

func boolValue(n *yaml.Node, path string) (bool, error) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		return false, fail(n, path, "want true or false, not %s", kindName(n))
	}
	var v bool
	if err := n.Decode(&v); err != nil {
		return false, fail(n, path, "want true or false")
	}
	return v, nil
}

// durationValue reads a Go duration ("24h", "1h30m", "90s"): a bare number
// is refused, as its unit would be a guess.
func durationValue(n *yaml.Node, path string) (time.Duration, error) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		return 0, fail(n, path, "want a duration such as 24h, 90m or 1h30m, not %s", kindName(n))
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 {
		return 0, fail(n, path, "%q is not a duration such as 24h, 90m or 1h30m", clip(n.Value, 32))
	}
	return v, nil
}

// timeValue reads an RFC 3339 time, or a date (midnight UTC).
func timeValue(n *yaml.Node, path string) (time.Time, error) {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!str" && n.Tag != "!!timestamp") {
		return time.Time{}, fail(n, path, "want a time such as 2026-12-24T18:00:00Z, not %s", kindName(n))
	}
	if t, err := time.Parse(time.RFC3339, n.Value); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, n.Value); err == nil {
		return t, nil
	}
	return time.Time{}, fail(n, path, "%q is not a time such as 2026-12-24T18:00:00Z or a date such as 2026-12-24", clip(n.Value, 40))
}

func riskValue(n *yaml.Node, path string) (Risk, error) {
	s, err := stringValue(n, path)
	if err != nil {
		return RiskNone, err
	}
	r, err := ParseRisk(s)
	if err != nil || r == RiskNone {
		return RiskNone, fail(n, path, "unknown risk level %q (want low, medium, high or critical)", clip(s, 32))
	}
	return r, nil
}

func stringList(n *yaml.Node, path string) ([]string, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, fail(n, path, "want a list of strings, not %s", kindName(n))
	}
	out := make([]string, 0, len(n.Content))
	for i, c := range n.Content {
		s, err := stringValue(c, index(path, i))
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

func optApprovers(n *yaml.Node, path string) ([]Approver, error) {
	if n == nil {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, fail(n, path, "want a list of approvers, not %s", kindName(n))
	}
	out := make([]Approver, 0, len(n.Content))
	for i, c := range n.Content {
		a, err := approverValue(c, index(path, i))
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// approverValue reads "kind:name" ("role:sre_lead") or a mapping
// {type: role, identifier: sre_lead}.
func approverValue(n *yaml.Node, path string) (Approver, error) {
	var kind, name string
	if n.Kind == yaml.MappingNode {
		m, err := fields(n, path, "type", "identifier")
		if err != nil {
			return Approver{}, err
		}
		if m["type"] == nil || m["identifier"] == nil {
			return Approver{}, fail(n, path, "an approver needs type and identifier")
		}
		if kind, err = stringValue(m["type"], path+".type"); err != nil {
			return Approver{}, err
		}
		if name, err = stringValue(m["identifier"], path+".identifier"); err != nil {
			return Approver{}, err
		}
	} else {
		s, err := stringValue(n, path)
		if err != nil {
			return Approver{}, fail(n, path, "want an approver such as role:sre_lead or user:alice, not %s", kindName(n))
		}
		var ok bool
		if kind, name, ok = strings.Cut(s, ":"); !ok {
			return Approver{}, fail(n, path, "%q is not an approver such as role:sre_lead or user:alice", clip(s, 64))
		}
	}
	a := Approver{Kind: ApproverKind(kind), Name: name}
	switch a.Kind {
	case KindUser, KindGroup, KindRole:
	default:
		return Approver{}, fail(n, path, "unknown approver type %q (want user, group or role)", clip(kind, 32))
	}
	if err := a.check(); err != nil {
		return Approver{}, fail(n, path, "%v", err)
	}
	return a, nil
}

// requirement reads required (any, all, threshold or threshold(n)) and
// required_count, of a level or a parallel group.
func requirement(m map[string]*yaml.Node, path string) (Requirement, error) {
	rn, cn := m["required"], m["required_count"]
	var s string
	if rn != nil {
		var err error
		if s, err = stringValue(rn, path+".required"); err != nil {
			return Requirement{}, err
		}
	}
	if s == "threshold" || (rn == nil && cn != nil) {
		if cn == nil {
			return Requirement{}, fail(rn, path+".required", "threshold needs required_count")
		}
		c, err := intValue(cn, path+".required_count")
		if err != nil {
			return Requirement{}, err
		}
		if c < 1 {
			return Requirement{}, fail(cn, path+".required_count", "at least 1")
		}
		return Threshold(c), nil
	}
	if cn != nil {
		return Requirement{}, fail(cn, path+".required_count", "only with required: threshold")
	}
	var r Requirement
	if rn == nil {
		return r, nil
	}
	if err := r.UnmarshalText([]byte(s)); err != nil || s == "" {
		return r, fail(rn, path+".required", "unknown requirement %q (want any, all or threshold with required_count)", clip(s, 32))
	}
	return r, nil
}

func (d *fileDecoder) chain(n *yaml.Node, path string) ([]Level, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, fail(n, path, "want a list of levels, not %s", kindName(n))
	}
	if len(n.Content) == 0 {
		return nil, fail(n, path, "an empty chain (leave chain out for a flat policy)")
	}
	if len(n.Content) > maxChainLevels {
		return nil, fail(n, path, "%d levels, at most %d", len(n.Content), maxChainLevels)
	}
	out := make([]Level, 0, len(n.Content))
	for i, ln := range n.Content {
		l, err := d.level(ln, index(path, i), i)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

func (d *fileDecoder) level(n *yaml.Node, path string, i int) (Level, error) {
	var l Level
	m, err := fields(n, path, "level", "name", "approvers", "required", "required_count",
		"parallel", "logic", "conditions", "when", "timeout", "escalation")
	if err != nil {
		return l, err
	}
	if v := m["level"]; v != nil {
		k, err := intValue(v, path+".level")
		if err != nil {
			return l, err
		}
		if k != i+1 {
			return l, fail(v, path+".level", "level %d is listed as level %d: list levels in order", k, i+1)
		}
	}
	if l.Name, err = optString(m["name"], path+".name"); err != nil {
		return l, err
	}
	if l.Approvers, err = optApprovers(m["approvers"], path+".approvers"); err != nil {
		return l, err
	}
	if pn := m["parallel"]; pn != nil {
		if m["approvers"] != nil || m["required"] != nil || m["required_count"] != nil {
			return l, fail(pn, path+".parallel", "a level has either approvers (and required) or parallel groups")
		}
		if l.Groups, err = groups(pn, path+".parallel"); err != nil {
			return l, err
		}
	} else {
		if m["approvers"] == nil {
			return l, fail(n, path, "a level needs approvers or parallel groups")
		}
		if l.Require, err = requirement(m, path); err != nil {
			return l, err
		}
	}
	if v := m["logic"]; v != nil {
		s, err := stringValue(v, path+".logic")
		if err != nil {
			return l, err
		}
		switch strings.ToLower(s) {
		case "and":
			l.Logic = LogicAnd
		case "or":
			l.Logic = LogicOr
		default:
			return l, fail(v, path+".logic", "unknown logic %q (want AND or OR)", clip(s, 16))
		}
		if l.Groups == nil {
			return l, fail(v, path+".logic", "logic combines parallel groups, and this level has none")
		}
	}
	cn, wn := m["conditions"], m["when"]
	switch {
	case cn != nil && wn != nil:
		return l, fail(wn, path+".when", "a level has conditions or when, not both")
	case cn != nil:
		if l.When, err = d.conditions(cn, path+".conditions"); err != nil {
			return l, err
		}
	case wn != nil:
		if l.When, err = d.matcher(wn, path+".when", 0); err != nil {
			return l, err
		}
	}
	if v := m["timeout"]; v != nil {
		if l.Timeout, err = durationValue(v, path+".timeout"); err != nil {
			return l, err
		}
	}
	if v := m["escalation"]; v != nil {
		if l.Escalation, err = steps(v, path+".escalation"); err != nil {
			return l, err
		}
	}
	return l, nil
}

func groups(n *yaml.Node, path string) ([]ParallelGroup, error) {
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		return nil, fail(n, path, "want a list of groups, not %s", kindName(n))
	}
	if len(n.Content) > maxGroups {
		return nil, fail(n, path, "%d groups, at most %d", len(n.Content), maxGroups)
	}
	out := make([]ParallelGroup, 0, len(n.Content))
	for i, gn := range n.Content {
		at := index(path, i)
		m, err := fields(gn, at, "group", "approvers", "required", "required_count")
		if err != nil {
			return nil, err
		}
		var g ParallelGroup
		if m["group"] == nil || m["approvers"] == nil {
			return nil, fail(gn, at, "a parallel group needs group (its name) and approvers")
		}
		if g.Name, err = stringValue(m["group"], at+".group"); err != nil {
			return nil, err
		}
		if g.Approvers, err = optApprovers(m["approvers"], at+".approvers"); err != nil {
			return nil, err
		}
		if g.Require, err = requirement(m, at); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}

// conditions reads a level's list of {field, operator, value}, all of
// which must hold for the level to apply.
func (d *fileDecoder) conditions(n *yaml.Node, path string) (Matcher, error) {
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		return nil, fail(n, path, "want a list of conditions, not %s", kindName(n))
	}
	ms := make([]Matcher, 0, len(n.Content))
	for i, cn := range n.Content {
		at := index(path, i)
		m, err := fields(cn, at, "field", "operator", "value")
		if err != nil {
			return nil, err
		}
		fm, err := fieldMatcherOf(cn, m, "field", "operator", at)
		if err != nil {
			return nil, err
		}
		ms = append(ms, fm)
	}
	if len(ms) == 1 {
		return ms[0], nil
	}
	return All(ms...), nil
}

// fieldMatcherOf builds a Field matcher from a mapping's name, operator
// and value keys.
func fieldMatcherOf(n *yaml.Node, m map[string]*yaml.Node, nameKey, opKey, path string) (Matcher, error) {
	if m[nameKey] == nil || m[opKey] == nil || m["value"] == nil {
		return nil, fail(n, path, "a condition needs %s, %s and value", nameKey, opKey)
	}
	name, err := stringValue(m[nameKey], path+"."+nameKey)
	if err != nil {
		return nil, err
	}
	op, err := stringValue(m[opKey], path+"."+opKey)
	if err != nil {
		return nil, err
	}
	vn := m["value"]
	var v any
	if vn.Kind == yaml.SequenceNode {
		list := make([]any, 0, len(vn.Content))
		for i, c := range vn.Content {
			x, err := scalarValue(c, index(path+".value", i))
			if err != nil {
				return nil, err
			}
			list = append(list, x)
		}
		v = list
	} else if v, err = scalarValue(vn, path+".value"); err != nil {
		return nil, err
	}
	fm := Field(name, Operator(op), v)
	if err := fm.check(); err != nil {
		return nil, fail(n, path, "%v", err)
	}
	return fm, nil
}

// scalarValue reads a condition's value: a string, a number or a bool.
func scalarValue(n *yaml.Node, path string) (any, error) {
	switch {
	case n.Kind != yaml.ScalarNode:
	case n.Tag == "!!str":
		return n.Value, nil
	case n.Tag == "!!bool":
		return boolValue(n, path)
	case n.Tag == "!!int" || n.Tag == "!!float":
		var f float64
		if err := n.Decode(&f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fail(n, path, "%q is not a finite number", clip(n.Value, 32))
		}
		return f, nil
	}
	return nil, fail(n, path, "want a string, a number or a boolean, not %s", kindName(n))
}

func steps(n *yaml.Node, path string) ([]EscalationStep, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, fail(n, path, "want a list of steps, not %s", kindName(n))
	}
	if len(n.Content) > maxSteps {
		return nil, fail(n, path, "%d steps, at most %d", len(n.Content), maxSteps)
	}
	out := make([]EscalationStep, 0, len(n.Content))
	for i, sn := range n.Content {
		at := index(path, i)
		m, err := fields(sn, at, "after", "before", "action", "to", "channels", "reason")
		if err != nil {
			return nil, err
		}
		var s EscalationStep
		if v := m["after"]; v != nil {
			if s.After, err = durationValue(v, at+".after"); err != nil {
				return nil, err
			}
		}
		if v := m["before"]; v != nil {
			if s.Before, err = durationValue(v, at+".before"); err != nil {
				return nil, err
			}
		}
		if (s.After == 0) == (s.Before == 0) {
			return nil, fail(sn, at, "a step needs after or before (not both, and not zero)")
		}
		an := m["action"]
		if an == nil {
			return nil, fail(sn, at, "a step needs an action")
		}
		a, err := stringValue(an, at+".action")
		if err != nil {
			return nil, err
		}
		switch EscalationAction(a) {
		case StepReminder, StepEscalate, StepReassign, StepNotify, StepAutoApprove, StepAutoDeny:
			s.Action = EscalationAction(a)
		case "notify_executive":
			s.Action = StepNotify
		default:
			return nil, fail(an, at+".action", "unknown action %q (want reminder, escalate, reassign, notify, auto_approve or auto_deny)", clip(a, 32))
		}
		if s.To, err = optApprovers(m["to"], at+".to"); err != nil {
			return nil, err
		}
		if v := m["channels"]; v != nil {
			if s.Channels, err = stringList(v, at+".channels"); err != nil {
				return nil, err
			}
		}
		if s.Reason, err = optString(m["reason"], at+".reason"); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}
