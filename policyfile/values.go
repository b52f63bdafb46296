package policyfile

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/signoff/approval/internal/text"

	"go.yaml.in/yaml/v3"

	"github.com/signoff/approval"
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
			return nil, fail(kn, at, "unknown key %q (want one of %s)", text.Clip(k, 64), strings.Join(known, ", "))
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
		return 0, fail(n, path, "%q is not a whole number from 0 to %d", text.Clip(n.Value, 32), math.MaxInt32)
	}
	return int(v), nil
}

func floatValue(n *yaml.Node, path string) (float64, error) {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") {
		return 0, fail(n, path, "want a number, not %s", kindName(n))
	}
	var v float64
	if err := n.Decode(&v); err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fail(n, path, "%q is not a finite number", text.Clip(n.Value, 32))
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
		return 0, fail(n, path, "%q is not a duration such as 24h, 90m or 1h30m", text.Clip(n.Value, 32))
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
	return time.Time{}, fail(n, path, "%q is not a time such as 2026-12-24T18:00:00Z or a date such as 2026-12-24", text.Clip(n.Value, 40))
}

func riskValue(n *yaml.Node, path string) (approval.Risk, error) {
	s, err := stringValue(n, path)
	if err != nil {
		return approval.RiskNone, err
	}
	r, err := approval.ParseRisk(s)
	if err != nil || r == approval.RiskNone {
		return approval.RiskNone, fail(n, path, "unknown risk level %q (want low, medium, high or critical)", text.Clip(s, 32))
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

func optApprovers(n *yaml.Node, path string) ([]approval.Approver, error) {
	if n == nil {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, fail(n, path, "want a list of approvers, not %s", kindName(n))
	}
	out := make([]approval.Approver, 0, len(n.Content))
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
func approverValue(n *yaml.Node, path string) (approval.Approver, error) {
	var kind, name string
	if n.Kind == yaml.MappingNode {
		m, err := fields(n, path, "type", "identifier")
		if err != nil {
			return approval.Approver{}, err
		}
		if m["type"] == nil || m["identifier"] == nil {
			return approval.Approver{}, fail(n, path, "an approver needs type and identifier")
		}
		if kind, err = stringValue(m["type"], path+".type"); err != nil {
			return approval.Approver{}, err
		}
		if name, err = stringValue(m["identifier"], path+".identifier"); err != nil {
			return approval.Approver{}, err
		}
	} else {
		s, err := stringValue(n, path)
		if err != nil {
			return approval.Approver{}, fail(n, path, "want an approver such as role:sre_lead or user:alice, not %s", kindName(n))
		}
		var ok bool
		if kind, name, ok = strings.Cut(s, ":"); !ok {
			return approval.Approver{}, fail(n, path, "%q is not an approver such as role:sre_lead or user:alice", text.Clip(s, 64))
		}
	}
	a := approval.Approver{Kind: approval.ApproverKind(kind), Name: name}
	switch a.Kind {
	case approval.KindUser, approval.KindGroup, approval.KindRole:
	default:
		return approval.Approver{}, fail(n, path, "unknown approver type %q (want user, group or role)", text.Clip(kind, 32))
	}
	if a.Name == "" {
		// As the approval package words it: an approver names someone.
		return approval.Approver{}, fail(n, path, "%s approver without a name", a.Kind)
	}
	return a, nil
}
