package approval

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Policy files hold policies (and delegations) in YAML, or in JSON, which
// is read as YAML. The format is in README.md ("Policy files"); in short:
//
//	version: 1
//	policies:
//	  wire-transfer:
//	    match: {all: [{name: "payments:*"}, {cost: {at_least: 10000, currency: USD}}]}
//	    approvers: [role:treasury]
//	    required_approvals: 2
//	    timeout: 4h
//
// Decoding is strict: an unknown key, a value of the wrong type, a bad
// duration or a policy that does not validate is an error naming the line,
// the column and the path of the key (a *PolicyFileError wrapping
// ErrInvalidPolicy), and nothing is registered unless the whole file is
// valid.

// MaxPolicyFileBytes bounds a policy file.
const MaxPolicyFileBytes = 1 << 20

// maxMatcherDepth bounds the nesting of a file's matchers.
const maxMatcherDepth = 32

// MatcherRegistry names the host's predicates for policy files: the
// matcher {custom: NAME} is Custom(NAME, registry[NAME]).
type MatcherRegistry map[string]func(Action) (bool, error)

// NamedPolicy is a policy with the name it is registered under.
type NamedPolicy struct {
	Name   string
	Policy Policy
}

// PolicyFile is what a policy file holds: its policies, in file order, and
// its delegations (see Gate.GrantDelegations).
type PolicyFile struct {
	Policies    []NamedPolicy
	Delegations []Delegation
}

// PolicyFileError locates what is wrong in a policy file: Line and Column
// (1-based; 0 when the file as a whole is wrong) and Path, the key's path
// ("policies.deploy.chain[1].required"). It wraps ErrInvalidPolicy.
type PolicyFileError struct {
	Line, Column int
	Path         string
	Err          error
}

func (e *PolicyFileError) Error() string {
	var b strings.Builder
	b.WriteString("approval: policy file: ")
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d, column %d: ", e.Line, e.Column)
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *PolicyFileError) Unwrap() error { return e.Err }

// ParsePolicies reads a policy file from r, resolving custom matchers in
// reg, and checks every policy as SetPolicy would (with a directory: group
// and role approvers are accepted). It returns a *PolicyFileError for
// anything wrong.
func ParsePolicies(r io.Reader, reg MatcherRegistry) (*PolicyFile, error) {
	f, _, err := parsePolicyFile(r, reg, true, nil)
	return f, err
}

// LoadPolicies replaces the gate's policies with those of the policy file
// read from r, custom matchers resolved in Config.Matchers: all of them, or,
// if anything in the file is wrong, none (the registered set is unchanged
// and the error is a *PolicyFileError). Policies not in the file are
// removed. Requests already open keep the snapshots they were created
// with. The file's delegations are parsed but not granted: see
// GrantDelegations. A policy naming a group or role the directory does not
// know is refused, if the directory can list them (see GroupLister).
func (g *Gate) LoadPolicies(r io.Reader) error {
	_, cps, err := parsePolicyFile(r, g.matchers, g.dir != nil, g.knownApprovers())
	if err != nil {
		return err
	}
	g.replacePolicies(cps)
	return nil
}

// LoadPolicyFile is LoadPolicies on the file at path.
func (g *Gate) LoadPolicyFile(path string) error {
	fh, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("approval: policy file: %w", err)
	}
	defer fh.Close()
	if err := g.LoadPolicies(fh); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// ReplacePolicies replaces the gate's policies with ps, atomically: if one
// of them does not validate, or two share a name, none is registered and
// the error wraps ErrInvalidPolicy. Requests already open keep their
// snapshots. A policy naming a group or role the directory does not know is
// refused, if the directory can list them (see GroupLister).
func (g *Gate) ReplacePolicies(ps []NamedPolicy) error {
	known := g.knownApprovers()
	cps := make([]*compiledPolicy, 0, len(ps))
	for i, np := range ps {
		if slices.ContainsFunc(ps[:i], func(o NamedPolicy) bool { return o.Name == np.Name }) {
			return fmt.Errorf("approval: policy %q: %w: registered twice", np.Name, ErrInvalidPolicy)
		}
		cp, err := compilePolicy(np.Name, np.Policy, g.dir != nil)
		if err != nil {
			return err
		}
		if err := known.check(&cp.def); err != nil {
			return fmt.Errorf("approval: policy %q: %w", np.Name, err)
		}
		cps = append(cps, cp)
	}
	g.replacePolicies(cps)
	return nil
}

func (g *Gate) replacePolicies(cps []*compiledPolicy) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.installPolicies(slices.Clone(cps))
}

// Policies returns the registered policies, by name, as registered (with
// defaults filled and user IDs in canonical form): EncodePolicies writes
// them back to a file.
func (g *Gate) Policies() []NamedPolicy {
	ps := *g.policies.Load()
	out := make([]NamedPolicy, len(ps))
	for i, p := range ps {
		def := p.def
		def.Approvers = cloneSlice(def.Approvers)
		def.Chain = cloneChain(def.Chain)
		def.Escalation = cloneSteps(def.Escalation)
		def.Redact = cloneSlice(def.Redact)
		out[i] = NamedPolicy{Name: p.name, Policy: def}
	}
	return out
}

// fileDecoder decodes one policy file.
type fileDecoder struct {
	reg MatcherRegistry
	// known, if not nil, refuses policies naming groups or roles the
	// directory does not know.
	known *knownApprovers
}

// fail returns a *PolicyFileError at n.
func fail(n *yaml.Node, path, format string, args ...any) error {
	e := &PolicyFileError{Path: path, Err: fmt.Errorf("%w: %s", ErrInvalidPolicy, fmt.Sprintf(format, args...))}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	return e
}

func parsePolicyFile(r io.Reader, reg MatcherRegistry, haveDirectory bool, known *knownApprovers) (*PolicyFile, []*compiledPolicy, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxPolicyFileBytes+1))
	if err != nil {
		return nil, nil, &PolicyFileError{Err: fmt.Errorf("%w: reading: %w", ErrInvalidPolicy, err)}
	}
	if len(b) > MaxPolicyFileBytes {
		return nil, nil, fail(nil, "", "the file is larger than %d bytes", MaxPolicyFileBytes)
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
	d := fileDecoder{reg: reg, known: known}
	return d.file(doc.Content[0], haveDirectory)
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
		return fail(n, "", "custom tag %q is not supported", clip(n.Tag, 32))
	}
	for _, c := range n.Content {
		if err := noAliases(c); err != nil {
			return err
		}
	}
	return nil
}

func (d *fileDecoder) file(n *yaml.Node, haveDirectory bool) (*PolicyFile, []*compiledPolicy, error) {
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
	f := &PolicyFile{}
	var cps []*compiledPolicy
	for i := 0; i < len(pn.Content); i += 2 {
		kn, vn := pn.Content[i], pn.Content[i+1]
		name, err := stringValue(kn, "policies")
		if err != nil {
			return nil, nil, err
		}
		path := "policies." + name
		if slices.ContainsFunc(f.Policies, func(p NamedPolicy) bool { return p.Name == name }) {
			return nil, nil, fail(kn, path, "policy %q is defined twice", clip(name, 64))
		}
		p, err := d.policy(vn, path)
		if err != nil {
			return nil, nil, err
		}
		cp, err := compilePolicy(name, p, haveDirectory)
		if err == nil {
			err = d.known.check(&cp.def)
		}
		if err != nil {
			return nil, nil, &PolicyFileError{Line: vn.Line, Column: vn.Column, Path: path, Err: err}
		}
		f.Policies = append(f.Policies, NamedPolicy{Name: name, Policy: p})
		cps = append(cps, cp)
	}
	if dn := m["delegations"]; dn != nil {
		if f.Delegations, err = d.delegations(dn, f.Policies); err != nil {
			return nil, nil, err
		}
	}
	return f, cps, nil
}

func (d *fileDecoder) policy(n *yaml.Node, path string) (Policy, error) {
	var p Policy
	m, err := fields(n, path, "match", "effect", "reason", "approvers", "required_approvals", "chain",
		"timeout", "on_timeout", "allow_self_approval", "escalation", "redact", "reminder_interval",
		"approval_ttl", "recommendation_approves_below", "recommendation_min_confidence", "max_reuse")
	if err != nil {
		return p, err
	}
	at := func(k string) string { return path + "." + k }
	if v := m["max_reuse"]; v != nil {
		if p.MaxReuse, err = reuseValue(v, at("max_reuse")); err != nil {
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
			p.Effect = EffectDeny
		default:
			return p, fail(v, at("effect"), "unknown effect %q (want require_approval or deny)", clip(s, 32))
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
			return p, fail(v, at("on_timeout"), "unknown timeout action %q (want deny or approve)", clip(s, 32))
		}
	}
	if v := m["allow_self_approval"]; v != nil {
		if p.AllowSelfApproval, err = boolValue(v, at("allow_self_approval")); err != nil {
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
func (d *fileDecoder) delegations(n *yaml.Node, ps []NamedPolicy) ([]Delegation, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, fail(n, "delegations", "want a list, not %s", kindName(n))
	}
	var out []Delegation
	for i, en := range n.Content {
		path := "delegations[" + strconv.Itoa(i) + "]"
		m, err := fields(en, path, "from", "to", "not_before", "not_after", "policies", "reason")
		if err != nil {
			return nil, err
		}
		var dl Delegation
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
			if *dst, err = CanonicalID(s); err != nil {
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
				if !slices.ContainsFunc(ps, func(p NamedPolicy) bool { return p.Name == name }) {
					return nil, fail(v.Content[j], path+".policies", "no policy %q in this file", clip(name, 64))
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

// GrantDelegations grants, on behalf of actor, each of ds (a policy file's
// delegations) that is not granted yet, and returns those it granted. A
// delegation counts as granted when an unrevoked one with the same From,
// To, window end, scope and reason is stored (and, if ds gives one, the
// same window start), so running it at every start grants each once. One
// whose window is over is passed over. It stops at the first error, which
// is Delegate's; the ones granted before it stay granted, and a second run
// grants the rest.
func (g *Gate) GrantDelegations(ctx context.Context, actor string, ds []Delegation) ([]Delegation, error) {
	now := g.now()
	var out []Delegation
	for _, d := range ds {
		if !d.NotAfter.After(now) {
			continue
		}
		have, err := g.hasDelegation(ctx, &d)
		if err != nil {
			return out, err
		}
		if have {
			continue
		}
		got, err := g.Delegate(ctx, actor, d)
		if err != nil {
			return out, err
		}
		out = append(out, *got)
	}
	return out, nil
}

// hasDelegation reports whether a delegation like d is stored, unrevoked.
func (g *Gate) hasDelegation(ctx context.Context, d *Delegation) (bool, error) {
	from, err1 := CanonicalID(d.From)
	to, err2 := CanonicalID(d.To)
	if err1 != nil || err2 != nil {
		return false, nil // Delegate reports it
	}
	q := DelegationQuery{From: from, To: to, Limit: MaxPageSize}
	for {
		page, err := g.ListDelegations(ctx, q)
		if err != nil {
			return false, err
		}
		for _, s := range page {
			if s.RevokedAt.IsZero() && s.NotAfter.Equal(normalizeTime(d.NotAfter)) &&
				(d.NotBefore.IsZero() || s.NotBefore.Equal(normalizeTime(d.NotBefore))) &&
				slices.Equal(s.Policies, d.Policies) && s.Reason == d.Reason {
				return true, nil
			}
		}
		if len(page) < q.Limit {
			return false, nil
		}
		q.After = page[len(page)-1].ID
	}
}

// reuseValue reads a policy's max_reuse: {for: DURATION, uses: N}, both
// required.
func reuseValue(n *yaml.Node, path string) (Reuse, error) {
	m, err := fields(n, path, "for", "uses")
	if err != nil {
		return Reuse{}, err
	}
	if m["for"] == nil || m["uses"] == nil {
		return Reuse{}, fail(n, path, "max_reuse needs both for (a duration) and uses (2 or more)")
	}
	var r Reuse
	if r.For, err = durationValue(m["for"], path+".for"); err != nil {
		return Reuse{}, err
	}
	if r.Uses, err = intValue(m["uses"], path+".uses"); err != nil {
		return Reuse{}, err
	}
	return r, nil
}
