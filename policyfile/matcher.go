package policyfile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/signoff/approval/internal/text"

	"go.yaml.in/yaml/v3"

	"github.com/signoff/approval"
)

// A matcher in a policy file is a mapping of one key, in the shape of its
// canonical form (approval.CanonicalMatcher, which Encode writes):
//
//	{name: "deploy:*"}
//	{tag: {any_of: [prod]}}          (or all_of, none_of)
//	{cost: {at_least: 1000, below: 5000, currency: USD}}
//	{risk: {at_least: high}}
//	{field: {name: metadata.priority, op: "=", value: critical}}
//	{custom: NAME}                   (from the MatcherRegistry)
//	{all: [...]}, {any: [...]}, {not: {...}}

func (d *decoder) matcher(n *yaml.Node, path string, depth int) (approval.Matcher, error) {
	if depth >= maxMatcherDepth {
		return nil, fail(n, path, "matchers nested deeper than %d", maxMatcherDepth)
	}
	if n.Kind != yaml.MappingNode || len(n.Content) != 2 {
		return nil, fail(n, path, "a matcher is a mapping of one key (name, tag, cost, risk, field, custom, all, any or not)")
	}
	m, err := fields(n, path, "name", "tag", "cost", "risk", "field", "custom", "all", "any", "not")
	if err != nil {
		return nil, err
	}
	var out approval.Matcher
	for k, v := range m { // one key
		at := join(path, k)
		switch k {
		case "name":
			s, err := stringValue(v, at)
			if err != nil {
				return nil, err
			}
			out = approval.Name(s)
		case "tag":
			tm, err := fields(v, at, "any_of", "all_of", "none_of")
			if err != nil {
				return nil, err
			}
			if len(tm) != 1 {
				return nil, fail(v, at, "a tag matcher has one of any_of, all_of and none_of")
			}
			for mode, ln := range tm {
				tags, err := stringList(ln, join(at, mode))
				if err != nil {
					return nil, err
				}
				switch mode {
				case "any_of":
					out = approval.TagAny(tags...)
				case "all_of":
					out = approval.TagAll(tags...)
				default:
					out = approval.TagNone(tags...)
				}
			}
		case "cost":
			cm, err := fields(v, at, "at_least", "below", "currency")
			if err != nil {
				return nil, err
			}
			lo, hi := math.Inf(-1), math.Inf(1)
			if x := cm["at_least"]; x != nil {
				if lo, err = floatValue(x, at+".at_least"); err != nil {
					return nil, err
				}
			}
			if x := cm["below"]; x != nil {
				if hi, err = floatValue(x, at+".below"); err != nil {
					return nil, err
				}
			}
			if cm["at_least"] == nil && cm["below"] == nil {
				return nil, fail(v, at, "a cost matcher needs at_least or below")
			}
			cur, err := optString(cm["currency"], at+".currency")
			if err != nil {
				return nil, err
			}
			out = approval.CostBetween(lo, hi, cur)
		case "risk":
			rm, err := fields(v, at, "at_least")
			if err != nil {
				return nil, err
			}
			if rm["at_least"] == nil {
				return nil, fail(v, at, "a risk matcher needs at_least")
			}
			r, err := riskValue(rm["at_least"], at+".at_least")
			if err != nil {
				return nil, err
			}
			out = approval.RiskAtLeast(r)
		case "field":
			fm, err := fields(v, at, "name", "op", "value")
			if err != nil {
				return nil, err
			}
			if out, err = fieldMatcherOf(v, fm, "name", "op", at); err != nil {
				return nil, err
			}
		case "custom":
			s, err := stringValue(v, at)
			if err != nil {
				return nil, err
			}
			cm, ok := d.custom(s)
			if !ok {
				return nil, fail(v, at, "no custom matcher %q (the host registers it in Config.Matchers)", text.Clip(s, 64))
			}
			out = cm
		case "all", "any":
			if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
				return nil, fail(v, at, "want a non-empty list of matchers, not %s", kindName(v))
			}
			ms := make([]approval.Matcher, 0, len(v.Content))
			for i, c := range v.Content {
				cm, err := d.matcher(c, index(at, i), depth+1)
				if err != nil {
					return nil, err
				}
				ms = append(ms, cm)
			}
			if k == "all" {
				out = approval.All(ms...)
			} else {
				out = approval.Any(ms...)
			}
		case "not":
			c, err := d.matcher(v, at, depth+1)
			if err != nil {
				return nil, err
			}
			out = approval.Not(c)
		}
		if err := approval.ValidateMatcher(out); err != nil {
			return nil, failErr(v, at, err)
		}
	}
	return out, nil
}

// matcherNode writes m in the file form: its canonical form, as YAML.
func matcherNode(m approval.Matcher) (*yaml.Node, error) {
	b, err := approval.CanonicalMatcher(m)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // numbers exactly as written
	var form any
	if err := dec.Decode(&form); err != nil {
		return nil, err
	}
	n, ok := formNode(form)
	if !ok {
		return nil, fmt.Errorf("a matcher's canonical form is not one a policy file knows: %s", text.Clip(string(b), 256))
	}
	return n, nil
}

// formNode writes a matcher's canonical form (decoded from JSON) as the
// file writes it. It reports false for a form it does not know.
func formNode(form any) (*yaml.Node, bool) {
	obj, ok := form.(map[string]any)
	if !ok || len(obj) != 1 {
		return nil, false
	}
	for k, v := range obj { // one key
		switch k {
		case "name", "custom":
			s, ok := v.(string)
			return mapNode(k, strNode(s)), ok
		case "tag":
			tm, ok := v.(map[string]any)
			if !ok || len(tm) != 1 {
				return nil, false
			}
			for mode, list := range tm {
				tags, ok := stringsOf(list)
				return mapNode("tag", mapNode(mode, strListNode(tags))), ok
			}
		case "cost":
			cm, ok := v.(map[string]any)
			if !ok {
				return nil, false
			}
			c := &yaml.Node{Kind: yaml.MappingNode}
			for _, bound := range []string{"at_least", "below"} {
				if x, ok := cm[bound]; ok {
					f, ok := number(x)
					if !ok {
						return nil, false
					}
					c.Content = append(c.Content, strNode(bound), floatNode(f))
				}
			}
			if x, ok := cm["currency"]; ok {
				cur, ok := x.(string)
				if !ok {
					return nil, false
				}
				c.Content = append(c.Content, strNode("currency"), strNode(cur))
			}
			return mapNode("cost", c), true
		case "risk":
			rm, ok := v.(map[string]any)
			if !ok {
				return nil, false
			}
			r, ok := rm["at_least"].(string)
			return mapNode("risk", mapNode("at_least", strNode(r))), ok
		case "field":
			fm, ok := v.(map[string]any)
			if !ok {
				return nil, false
			}
			name, ok1 := fm["name"].(string)
			op, ok2 := fm["op"].(string)
			if !ok1 || !ok2 {
				return nil, false
			}
			var vn *yaml.Node
			if list, isList := fm["value"].([]any); isList {
				vn = &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
				for _, it := range list {
					in, ok := scalarNode(it)
					if !ok {
						return nil, false
					}
					vn.Content = append(vn.Content, in)
				}
			} else if vn, ok = scalarNode(fm["value"]); !ok {
				return nil, false
			}
			f := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle, Content: []*yaml.Node{
				strNode("name"), strNode(name), strNode("op"), strNode(op), strNode("value"), vn,
			}}
			return mapNode("field", f), true
		case "all", "any":
			list, ok := v.([]any)
			if !ok {
				return nil, false
			}
			l := &yaml.Node{Kind: yaml.SequenceNode}
			for _, c := range list {
				cn, ok := formNode(c)
				if !ok {
					return nil, false
				}
				l.Content = append(l.Content, cn)
			}
			return mapNode(k, l), true
		case "not":
			cn, ok := formNode(v)
			return mapNode("not", cn), ok
		}
	}
	return nil, false
}

// stringsOf reads a form's list of strings.
func stringsOf(v any) ([]string, bool) {
	list, ok := v.([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, ok := x.(string)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// number reads a form's number.
func number(v any) (float64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(n), 64)
	return f, err == nil
}

// scalarNode writes a field matcher's value: a string, a number or a
// bool.
func scalarNode(v any) (*yaml.Node, bool) {
	switch x := v.(type) {
	case string:
		return strNode(x), true
	case bool:
		return boolNode(x), true
	case json.Number:
		f, ok := number(x)
		return floatNode(f), ok
	}
	return nil, false
}
