package approval

import (
	"math"

	"go.yaml.in/yaml/v3"
)

// A matcher in a policy file is a mapping of one key, in the shape of its
// canonical form:
//
//	{name: "deploy:*"}
//	{tag: {any_of: [prod]}}          (or all_of, none_of)
//	{cost: {at_least: 1000, below: 5000, currency: USD}}
//	{risk: {at_least: high}}
//	{field: {name: metadata.priority, op: "=", value: critical}}
//	{custom: NAME}                   (from the MatcherRegistry)
//	{all: [...]}, {any: [...]}, {not: {...}}

func (d *fileDecoder) matcher(n *yaml.Node, path string, depth int) (Matcher, error) {
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
	var out Matcher
	for k, v := range m { // one key
		at := join(path, k)
		switch k {
		case "name":
			s, err := stringValue(v, at)
			if err != nil {
				return nil, err
			}
			out = Name(s)
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
					out = TagAny(tags...)
				case "all_of":
					out = TagAll(tags...)
				default:
					out = TagNone(tags...)
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
			out = CostBetween(lo, hi, cur)
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
			out = RiskAtLeast(r)
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
			fn := d.reg[s]
			if fn == nil {
				return nil, fail(v, at, "no custom matcher %q (the host registers it in Config.Matchers)", clip(s, 64))
			}
			out = Custom(s, fn)
		case "all", "any":
			if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
				return nil, fail(v, at, "want a non-empty list of matchers, not %s", kindName(v))
			}
			ms := make([]Matcher, 0, len(v.Content))
			for i, c := range v.Content {
				cm, err := d.matcher(c, index(at, i), depth+1)
				if err != nil {
					return nil, err
				}
				ms = append(ms, cm)
			}
			if k == "all" {
				out = All(ms...)
			} else {
				out = Any(ms...)
			}
		case "not":
			c, err := d.matcher(v, at, depth+1)
			if err != nil {
				return nil, err
			}
			out = Not(c)
		}
		if err := out.check(); err != nil {
			return nil, fail(v, at, "%v", err)
		}
	}
	return out, nil
}

// matcherNode writes m in the file form.
func matcherNode(m Matcher) *yaml.Node {
	switch x := m.(type) {
	case *nameMatcher:
		return mapNode("name", strNode(x.pattern))
	case *tagMatcher:
		return mapNode("tag", mapNode(tagModeKeys[x.mode], strListNode(x.tags)))
	case *costMatcher:
		c := &yaml.Node{Kind: yaml.MappingNode}
		if !math.IsInf(x.min, -1) {
			c.Content = append(c.Content, strNode("at_least"), floatNode(x.min))
		}
		if !math.IsInf(x.max, 1) {
			c.Content = append(c.Content, strNode("below"), floatNode(x.max))
		}
		if x.currency != "" {
			c.Content = append(c.Content, strNode("currency"), strNode(x.currency))
		}
		return mapNode("cost", c)
	case riskMatcher:
		return mapNode("risk", mapNode("at_least", strNode(Risk(x).String())))
	case *fieldMatcher:
		var v *yaml.Node
		if x.op == OpIn {
			v = &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
			for _, it := range x.list {
				v.Content = append(v.Content, scalarNode(it))
			}
		} else {
			v = scalarNode(x.value)
		}
		f := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle, Content: []*yaml.Node{
			strNode("name"), strNode(x.field), strNode("op"), strNode(string(x.op)), strNode("value"), v,
		}}
		return mapNode("field", f)
	case *customMatcher:
		return mapNode("custom", strNode(x.name))
	case *listMatcher:
		l := &yaml.Node{Kind: yaml.SequenceNode}
		for _, c := range x.ms {
			l.Content = append(l.Content, matcherNode(c))
		}
		return mapNode(x.key(), l)
	case notMatcher:
		return mapNode("not", matcherNode(x.m))
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
}
