package policyfile

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/signoff/approval"
)

// Encode writes f as a YAML policy file that Parse reads back to the same
// policies (the same snapshot hashes) and delegations. Only fields that
// differ from their zero value are written; matchers are written in their
// canonical form (see approval.CanonicalMatcher). A policy whose Match is
// nil or a matcher that does not validate is an error.
func Encode(w io.Writer, f *File) error {
	root := &yaml.Node{Kind: yaml.MappingNode}
	root.Content = append(root.Content, strNode("version"), intNode(1))
	ps := &yaml.Node{Kind: yaml.MappingNode}
	for _, np := range f.Policies {
		n, err := policyNode(&np.Policy)
		if err != nil {
			return fmt.Errorf("approval: encode policy %q: %w", np.Name, err)
		}
		ps.Content = append(ps.Content, strNode(np.Name), n)
	}
	root.Content = append(root.Content, strNode("policies"), ps)
	if len(f.Delegations) > 0 {
		ds := &yaml.Node{Kind: yaml.SequenceNode}
		for i := range f.Delegations {
			ds.Content = append(ds.Content, delegationNode(&f.Delegations[i]))
		}
		root.Content = append(root.Content, strNode("delegations"), ds)
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}); err != nil {
		return fmt.Errorf("approval: encode policies: %w", err)
	}
	return enc.Close()
}

func policyNode(p *approval.Policy) (*yaml.Node, error) {
	if p.Match == nil {
		return nil, fmt.Errorf("%w: Match is nil", approval.ErrInvalidPolicy)
	}
	n := &yaml.Node{Kind: yaml.MappingNode}
	add := func(k string, v *yaml.Node) { n.Content = append(n.Content, strNode(k), v) }
	mn, err := matcherNode(p.Match)
	if err != nil {
		return nil, err
	}
	add("match", mn)
	if p.Effect == approval.EffectDeny {
		add("effect", strNode("deny"))
	}
	if p.Reason != "" {
		add("reason", strNode(p.Reason))
	}
	if len(p.Approvers) > 0 {
		add("approvers", approversNode(p.Approvers))
	}
	if p.RequiredApprovals != 0 {
		add("required_approvals", intNode(p.RequiredApprovals))
	}
	if len(p.Chain) > 0 {
		c := &yaml.Node{Kind: yaml.SequenceNode}
		for i := range p.Chain {
			ln, err := levelNode(&p.Chain[i])
			if err != nil {
				return nil, fmt.Errorf("chain[%d]: %w", i, err)
			}
			c.Content = append(c.Content, ln)
		}
		add("chain", c)
	}
	if p.Timeout != 0 {
		add("timeout", durationNode(p.Timeout))
	}
	if p.OnTimeout == approval.TimeoutApprove {
		add("on_timeout", strNode("approve"))
	}
	if p.AllowSelfApproval {
		add("allow_self_approval", boolNode(true))
	}
	if p.RequirePasskey {
		add("require_passkey", boolNode(true))
	}
	if p.Urgent {
		add("urgent", boolNode(true))
	}
	if len(p.Escalation) > 0 {
		add("escalation", stepsNode(p.Escalation))
	}
	if len(p.Redact) > 0 {
		add("redact", strListNode(p.Redact))
	}
	if p.ReminderInterval != 0 {
		add("reminder_interval", durationNode(p.ReminderInterval))
	}
	if p.ApprovalTTL != 0 {
		add("approval_ttl", durationNode(p.ApprovalTTL))
	}
	if p.RecommendationApprovesBelow != approval.RiskNone {
		add("recommendation_approves_below", strNode(p.RecommendationApprovesBelow.String()))
	}
	if p.RecommendationMinConfidence != 0 {
		add("recommendation_min_confidence", floatNode(p.RecommendationMinConfidence))
	}
	if !p.MaxReuse.IsZero() {
		add("max_reuse", &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
			strNode("for"), durationNode(p.MaxReuse.For), strNode("uses"), intNode(p.MaxReuse.Uses),
		}})
	}
	if l := p.Limit; l != nil {
		ln := &yaml.Node{Kind: yaml.MappingNode}
		for _, f := range []struct {
			key string
			v   int
		}{{"max_open", l.MaxOpen}, {"rate", l.Rate}, {"burst", l.Burst}} {
			if f.v != 0 {
				ln.Content = append(ln.Content, strNode(f.key), intNode(f.v))
			}
		}
		if l.Per != 0 {
			ln.Content = append(ln.Content, strNode("per"), durationNode(l.Per))
		}
		add("limit", ln)
	}
	return n, nil
}

func levelNode(l *approval.Level) (*yaml.Node, error) {
	n := &yaml.Node{Kind: yaml.MappingNode}
	add := func(k string, v *yaml.Node) { n.Content = append(n.Content, strNode(k), v) }
	if l.Name != "" {
		add("name", strNode(l.Name))
	}
	if len(l.Groups) > 0 {
		gs := &yaml.Node{Kind: yaml.SequenceNode}
		for _, g := range l.Groups {
			gn := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
				strNode("group"), strNode(g.Name), strNode("approvers"), approversNode(g.Approvers),
			}}
			gn.Content = append(gn.Content, requirementNodes(g.Require)...)
			gs.Content = append(gs.Content, gn)
		}
		logic := l.Logic
		if logic == "" {
			logic = approval.LogicAnd
		}
		add("parallel", gs)
		add("logic", strNode(strings.ToUpper(string(logic))))
	} else {
		add("approvers", approversNode(l.Approvers))
		n.Content = append(n.Content, requirementNodes(l.Require)...)
	}
	if l.When != nil {
		wn, err := matcherNode(l.When)
		if err != nil {
			return nil, err
		}
		add("when", wn)
	}
	if l.Timeout != 0 {
		add("timeout", durationNode(l.Timeout))
	}
	if len(l.Escalation) > 0 {
		add("escalation", stepsNode(l.Escalation))
	}
	return n, nil
}

func requirementNodes(r approval.Requirement) []*yaml.Node {
	switch {
	case r == approval.RequireAny:
		return []*yaml.Node{strNode("required"), strNode("any")}
	case r.IsAll():
		return []*yaml.Node{strNode("required"), strNode("all")}
	}
	return []*yaml.Node{strNode("required"), strNode("threshold"), strNode("required_count"), intNode(r.Count())}
}

func stepsNode(steps []approval.EscalationStep) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode}
	for _, s := range steps {
		sn := &yaml.Node{Kind: yaml.MappingNode}
		add := func(k string, v *yaml.Node) { sn.Content = append(sn.Content, strNode(k), v) }
		if s.After != 0 {
			add("after", durationNode(s.After))
		}
		if s.Before != 0 {
			add("before", durationNode(s.Before))
		}
		add("action", strNode(string(s.Action)))
		if len(s.To) > 0 {
			add("to", approversNode(s.To))
		}
		if len(s.Channels) > 0 {
			add("channels", strListNode(s.Channels))
		}
		if s.Reason != "" {
			add("reason", strNode(s.Reason))
		}
		n.Content = append(n.Content, sn)
	}
	return n
}

func delegationNode(d *approval.Delegation) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	add := func(k string, v *yaml.Node) { n.Content = append(n.Content, strNode(k), v) }
	add("from", strNode(d.From))
	add("to", strNode(d.To))
	if !d.NotBefore.IsZero() {
		add("not_before", strNode(d.NotBefore.UTC().Format(time.RFC3339Nano)))
	}
	add("not_after", strNode(d.NotAfter.UTC().Format(time.RFC3339Nano)))
	if len(d.Policies) > 0 {
		add("policies", strListNode(d.Policies))
	}
	if d.Reason != "" {
		add("reason", strNode(d.Reason))
	}
	return n
}

func approversNode(as []approval.Approver) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
	for _, a := range as {
		n.Content = append(n.Content, strNode(a.String()))
	}
	return n
}

func mapNode(k string, v *yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{strNode(k), v}}
}

func strNode(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

func strListNode(ss []string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
	for _, s := range ss {
		n.Content = append(n.Content, strNode(s))
	}
	return n
}

func intNode(i int) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(i)}
}

func boolNode(b bool) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(b)}
}

// floatNode writes x so that it reads back as exactly x.
func floatNode(x float64) *yaml.Node {
	s := strconv.FormatFloat(x, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eE") {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: s}
	}
	if strings.ContainsAny(s, "eE") && !strings.Contains(s, ".") {
		// YAML's core schema wants a dot in the mantissa: 1e+21 is a
		// string to it, 1.0e+21 a number.
		i := strings.IndexAny(s, "eE")
		s = s[:i] + ".0" + s[i:]
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: s}
}

// durationNode writes d the short way: 24h, not 24h0m0s.
func durationNode(d time.Duration) *yaml.Node {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return strNode(s)
}
