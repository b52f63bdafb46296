package policyfile

import (
	"math"
	"strings"

	"github.com/signoff/approval/internal/text"

	"go.yaml.in/yaml/v3"

	"github.com/signoff/approval"
)

// This file decodes a policy's chain: its levels, their parallel groups and
// conditions, and escalation steps.

// requirement reads required (any, all, threshold or threshold(n)) and
// required_count, of a level or a parallel group.
func requirement(m map[string]*yaml.Node, path string) (approval.Requirement, error) {
	rn, cn := m["required"], m["required_count"]
	var s string
	if rn != nil {
		var err error
		if s, err = stringValue(rn, path+".required"); err != nil {
			return approval.Requirement{}, err
		}
	}
	if s == "threshold" || (rn == nil && cn != nil) {
		if cn == nil {
			return approval.Requirement{}, fail(rn, path+".required", "threshold needs required_count")
		}
		c, err := intValue(cn, path+".required_count")
		if err != nil {
			return approval.Requirement{}, err
		}
		if c < 1 {
			return approval.Requirement{}, fail(cn, path+".required_count", "at least 1")
		}
		return approval.Threshold(c), nil
	}
	if cn != nil {
		return approval.Requirement{}, fail(cn, path+".required_count", "only with required: threshold")
	}
	var r approval.Requirement
	if rn == nil {
		return r, nil
	}
	if err := r.UnmarshalText([]byte(s)); err != nil || s == "" {
		return r, fail(rn, path+".required", "unknown requirement %q (want any, all or threshold with required_count)", text.Clip(s, 32))
	}
	return r, nil
}

func (d *decoder) chain(n *yaml.Node, path string) ([]approval.Level, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, fail(n, path, "want a list of levels, not %s", kindName(n))
	}
	if len(n.Content) == 0 {
		return nil, fail(n, path, "an empty chain (leave chain out for a flat policy)")
	}
	if len(n.Content) > maxChainLevels {
		return nil, fail(n, path, "%d levels, at most %d", len(n.Content), maxChainLevels)
	}
	out := make([]approval.Level, 0, len(n.Content))
	for i, ln := range n.Content {
		l, err := d.level(ln, index(path, i), i)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

func (d *decoder) level(n *yaml.Node, path string, i int) (approval.Level, error) {
	var l approval.Level
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
			l.Logic = approval.LogicAnd
		case "or":
			l.Logic = approval.LogicOr
		default:
			return l, fail(v, path+".logic", "unknown logic %q (want AND or OR)", text.Clip(s, 16))
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

func groups(n *yaml.Node, path string) ([]approval.ParallelGroup, error) {
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		return nil, fail(n, path, "want a list of groups, not %s", kindName(n))
	}
	if len(n.Content) > maxGroups {
		return nil, fail(n, path, "%d groups, at most %d", len(n.Content), maxGroups)
	}
	out := make([]approval.ParallelGroup, 0, len(n.Content))
	for i, gn := range n.Content {
		at := index(path, i)
		m, err := fields(gn, at, "group", "approvers", "required", "required_count")
		if err != nil {
			return nil, err
		}
		var g approval.ParallelGroup
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
func (d *decoder) conditions(n *yaml.Node, path string) (approval.Matcher, error) {
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		return nil, fail(n, path, "want a list of conditions, not %s", kindName(n))
	}
	ms := make([]approval.Matcher, 0, len(n.Content))
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
	return approval.All(ms...), nil
}

// fieldMatcherOf builds a Field matcher from a mapping's name, operator
// and value keys.
func fieldMatcherOf(n *yaml.Node, m map[string]*yaml.Node, nameKey, opKey, path string) (approval.Matcher, error) {
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
	fm := approval.Field(name, approval.Operator(op), v)
	if err := approval.ValidateMatcher(fm); err != nil {
		return nil, failErr(n, path, err)
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
			return nil, fail(n, path, "%q is not a finite number", text.Clip(n.Value, 32))
		}
		return f, nil
	}
	return nil, fail(n, path, "want a string, a number or a boolean, not %s", kindName(n))
}

func steps(n *yaml.Node, path string) ([]approval.EscalationStep, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, fail(n, path, "want a list of steps, not %s", kindName(n))
	}
	if len(n.Content) > maxSteps {
		return nil, fail(n, path, "%d steps, at most %d", len(n.Content), maxSteps)
	}
	out := make([]approval.EscalationStep, 0, len(n.Content))
	for i, sn := range n.Content {
		at := index(path, i)
		m, err := fields(sn, at, "after", "before", "action", "to", "channels", "reason")
		if err != nil {
			return nil, err
		}
		var s approval.EscalationStep
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
		switch approval.EscalationAction(a) {
		case approval.StepReminder, approval.StepEscalate, approval.StepReassign, approval.StepNotify, approval.StepAutoApprove, approval.StepAutoDeny:
			s.Action = approval.EscalationAction(a)
		case "notify_executive":
			s.Action = approval.StepNotify
		default:
			return nil, fail(an, at+".action", "unknown action %q (want reminder, escalate, reassign, notify, auto_approve or auto_deny)", text.Clip(a, 32))
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
