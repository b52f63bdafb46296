package policyfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/signoff/approval/internal/text"

	"go.yaml.in/yaml/v3"

	"github.com/signoff/approval"
)

// decoder decodes one policy file.
type decoder struct {
	// custom resolves the matcher {custom: NAME}.
	custom func(name string) (approval.Matcher, bool)
}

// fail returns an *Error at n.
func fail(n *yaml.Node, path, format string, args ...any) error {
	return failErr(n, path, fmt.Errorf("%w: %s", approval.ErrInvalidPolicy, fmt.Sprintf(format, args...)))
}

// failErr returns an *Error at n wrapping err.
func failErr(n *yaml.Node, path string, err error) error {
	e := &Error{Path: path, Err: err}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	return e
}

// parse decodes a policy file, returning with it the node of each policy
// by name.
func parse(r io.Reader, custom func(string) (approval.Matcher, bool)) (*File, map[string]*yaml.Node, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxBytes+1))
	if err != nil {
		return nil, nil, &Error{Err: fmt.Errorf("%w: reading: %w", approval.ErrInvalidPolicy, err)}
	}
	if len(b) > MaxBytes {
		return nil, nil, fail(nil, "", "the file is larger than %d bytes", MaxBytes)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, fail(nil, "", "the file is empty")
		}
		return nil, nil, fail(nil, "", "%s", yamlMessage(err))
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, nil, fail(&more, "", "the file holds more than one document")
	}
	if err := noAliases(&doc); err != nil {
		return nil, nil, err
	}
	d := decoder{custom: custom}
	return d.file(doc.Content[0])
}

// yamlMessage trims the yaml package's prefix from a syntax error.
func yamlMessage(err error) string {
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

// noAliases refuses anchors, aliases and tags other than the core
// schema's: a file says what it means where it says it.
func noAliases(n *yaml.Node) error {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return fail(n, "", "anchors and aliases are not supported")
	}
	if n.Tag != "" && !strings.HasPrefix(n.Tag, "!!") {
		return fail(n, "", "custom tag %q is not supported", text.Clip(n.Tag, 32))
	}
	for _, c := range n.Content {
		if err := noAliases(c); err != nil {
			return err
		}
	}
	return nil
}

func (d *decoder) file(n *yaml.Node) (*File, map[string]*yaml.Node, error) {
	m, err := fields(n, "", "version", "policies", "delegations")
	if err != nil {
		return nil, nil, err
	}
	if v := m["version"]; v != nil {
		ver, err := intValue(v, "version")
		if err != nil {
			return nil, nil, err
		}
		if ver != 1 {
			return nil, nil, fail(v, "version", "version %d is not supported (want 1)", ver)
		}
	}
	pn := m["policies"]
	if pn == nil {
		return nil, nil, fail(n, "", "no policies key (write policies: {} for none)")
	}
	if pn.Kind != yaml.MappingNode {
		return nil, nil, fail(pn, "policies", "want a mapping of policy names to policies, not %s", kindName(pn))
	}
	f := &File{}
	at := make(map[string]*yaml.Node, len(pn.Content)/2)
	for i := 0; i < len(pn.Content); i += 2 {
		kn, vn := pn.Content[i], pn.Content[i+1]
		name, err := stringValue(kn, "policies")
		if err != nil {
			return nil, nil, err
		}
		path := "policies." + name
		if at[name] != nil {
			return nil, nil, fail(kn, path, "policy %q is defined twice", text.Clip(name, 64))
		}
		p, err := d.policy(vn, path)
		if err != nil {
			return nil, nil, err
		}
		np := approval.NamedPolicy{Name: name, Policy: p}
		if err := np.Validate(); err != nil {
			return nil, nil, failErr(vn, path, err)
		}
		f.Policies = append(f.Policies, np)
		at[name] = vn
	}
	if dn := m["delegations"]; dn != nil {
		if f.Delegations, err = d.delegations(dn, at); err != nil {
			return nil, nil, err
		}
	}
	return f, at, nil
}

func (d *decoder) policy(n *yaml.Node, path string) (approval.Policy, error) {
	var p approval.Policy
	m, err := fields(n, path, "match", "effect", "reason", "approvers", "required_approvals", "chain",
		"timeout", "on_timeout", "allow_self_approval", "escalation", "redact", "reminder_interval",
		"approval_ttl", "recommendation_approves_below", "recommendation_min_confidence", "max_reuse", "require_passkey", "limit", "urgent")
	if err != nil {
		return p, err
	}
	at := func(k string) string { return path + "." + k }
	if v := m["max_reuse"]; v != nil {
		if p.MaxReuse, err = reuseValue(v, at("max_reuse")); err != nil {
			return p, err
		}
	}
	if v := m["limit"]; v != nil {
		if p.Limit, err = askLimitValue(v, at("limit")); err != nil {
			return p, err
		}
	}
	mn := m["match"]
	if mn == nil {
		return p, fail(n, path, "no match (write match: {name: \"*\"} to match every action)")
	}
	if p.Match, err = d.matcher(mn, at("match"), 0); err != nil {
		return p, err
	}
	if v := m["effect"]; v != nil {
		s, err := stringValue(v, at("effect"))
		if err != nil {
			return p, err
		}
		switch s {
		case "require_approval":
		case "deny":
			p.Effect = approval.EffectDeny
		default:
			return p, fail(v, at("effect"), "unknown effect %q (want require_approval or deny)", text.Clip(s, 32))
		}
	}
	if p.Reason, err = optString(m["reason"], at("reason")); err != nil {
		return p, err
	}
	if p.Approvers, err = optApprovers(m["approvers"], at("approvers")); err != nil {
		return p, err
	}
	if v := m["required_approvals"]; v != nil {
		if p.RequiredApprovals, err = intValue(v, at("required_approvals")); err != nil {
			return p, err
		}
	}
	if v := m["chain"]; v != nil {
		if p.Chain, err = d.chain(v, at("chain")); err != nil {
			return p, err
		}
	}
	for _, f := range []struct {
		key string
		dst *time.Duration
	}{{"timeout", &p.Timeout}, {"reminder_interval", &p.ReminderInterval}, {"approval_ttl", &p.ApprovalTTL}} {
		if v := m[f.key]; v != nil {
			if *f.dst, err = durationValue(v, at(f.key)); err != nil {
				return p, err
			}
		}
	}
	if v := m["on_timeout"]; v != nil {
		s, err := stringValue(v, at("on_timeout"))
		if err != nil {
			return p, err
		}
		if err := p.OnTimeout.UnmarshalText([]byte(s)); err != nil || s == "" {
			return p, fail(v, at("on_timeout"), "unknown timeout action %q (want deny or approve)", text.Clip(s, 32))
		}
	}
	if v := m["allow_self_approval"]; v != nil {
		if p.AllowSelfApproval, err = boolValue(v, at("allow_self_approval")); err != nil {
			return p, err
		}
	}
	if v := m["urgent"]; v != nil {
		if p.Urgent, err = boolValue(v, at("urgent")); err != nil {
			return p, err
		}
	}
	if v := m["require_passkey"]; v != nil {
		if p.RequirePasskey, err = boolValue(v, at("require_passkey")); err != nil {
			return p, err
		}
	}
	if v := m["escalation"]; v != nil {
		if p.Escalation, err = steps(v, at("escalation")); err != nil {
			return p, err
		}
	}
	if v := m["redact"]; v != nil {
		if p.Redact, err = stringList(v, at("redact")); err != nil {
			return p, err
		}
	}
	if v := m["recommendation_approves_below"]; v != nil {
		if p.RecommendationApprovesBelow, err = riskValue(v, at("recommendation_approves_below")); err != nil {
			return p, err
		}
	}
	if v := m["recommendation_min_confidence"]; v != nil {
		if p.RecommendationMinConfidence, err = floatValue(v, at("recommendation_min_confidence")); err != nil {
			return p, err
		}
	}
	return p, nil
}

// delegations decodes the delegations list; each scope must name policies
// of the file.
func (d *decoder) delegations(n *yaml.Node, policies map[string]*yaml.Node) ([]approval.Delegation, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, fail(n, "delegations", "want a list, not %s", kindName(n))
	}
	var out []approval.Delegation
	for i, en := range n.Content {
		path := "delegations[" + strconv.Itoa(i) + "]"
		m, err := fields(en, path, "from", "to", "not_before", "not_after", "policies", "reason")
		if err != nil {
			return nil, err
		}
		var dl approval.Delegation
		for _, f := range []struct {
			k   string
			dst *string
		}{{"from", &dl.From}, {"to", &dl.To}} {
			k, dst := f.k, f.dst
			v := m[k]
			if v == nil {
				return nil, fail(en, path, "no %s", k)
			}
			s, err := stringValue(v, path+"."+k)
			if err != nil {
				return nil, err
			}
			if *dst, err = approval.CanonicalID(s); err != nil {
				return nil, fail(v, path+"."+k, "%v", err)
			}
		}
		if dl.From == dl.To {
			return nil, fail(en, path, "%s cannot delegate to themselves", dl.From)
		}
		if m["not_after"] == nil {
			return nil, fail(en, path, "no not_after: a delegation ends")
		}
		for _, f := range []struct {
			k   string
			dst *time.Time
		}{{"not_before", &dl.NotBefore}, {"not_after", &dl.NotAfter}} {
			if v := m[f.k]; v != nil {
				if *f.dst, err = timeValue(v, path+"."+f.k); err != nil {
					return nil, err
				}
			}
		}
		if !dl.NotBefore.IsZero() && !dl.NotAfter.After(dl.NotBefore) {
			return nil, fail(m["not_after"], path+".not_after", "not_after is not after not_before")
		}
		if v := m["policies"]; v != nil {
			if dl.Policies, err = stringList(v, path+".policies"); err != nil {
				return nil, err
			}
			for j, name := range dl.Policies {
				if policies[name] == nil {
					return nil, fail(v.Content[j], path+".policies", "no policy %q in this file", text.Clip(name, 64))
				}
			}
		}
		if dl.Reason, err = optString(m["reason"], path+".reason"); err != nil {
			return nil, err
		}
		out = append(out, dl)
	}
	return out, nil
}

// askLimitValue reads a policy's limit: {max_open: N, rate: N, per:
// DURATION, burst: N}, each optional (the gate checks that one of max_open
// and rate is set).
func askLimitValue(n *yaml.Node, path string) (*approval.AskLimit, error) {
	m, err := fields(n, path, "max_open", "rate", "per", "burst")
	if err != nil {
		return nil, err
	}
	var l approval.AskLimit
	for _, f := range []struct {
		key string
		dst *int
	}{{"max_open", &l.MaxOpen}, {"rate", &l.Rate}, {"burst", &l.Burst}} {
		if v := m[f.key]; v != nil {
			if *f.dst, err = intValue(v, path+"."+f.key); err != nil {
				return nil, err
			}
		}
	}
	if v := m["per"]; v != nil {
		if l.Per, err = durationValue(v, path+".per"); err != nil {
			return nil, err
		}
	}
	return &l, nil
}

// reuseValue reads a policy's max_reuse: {for: DURATION, uses: N}, both
// required.
func reuseValue(n *yaml.Node, path string) (approval.Reuse, error) {
	m, err := fields(n, path, "for", "uses")
	if err != nil {
		return approval.Reuse{}, err
	}
	if m["for"] == nil || m["uses"] == nil {
		return approval.Reuse{}, fail(n, path, "max_reuse needs both for (a duration) and uses (2 or more)")
	}
	var r approval.Reuse
	if r.For, err = durationValue(m["for"], path+".for"); err != nil {
		return approval.Reuse{}, err
	}
	if r.Uses, err = intValue(m["uses"], path+".uses"); err != nil {
		return approval.Reuse{}, err
	}
	return r, nil
}
