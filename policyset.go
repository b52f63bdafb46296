package approval

import (
	"fmt"
	"slices"
)

// NamedPolicy is a policy with the name it is registered under.
type NamedPolicy struct {
	// Name is the name the policy is registered under.
	Name string
	// Policy is its definition.
	Policy Policy
}

// Validate reports whether np would be registered by SetPolicy on a gate
// with a Directory that does not list its groups and roles: everything
// about the policy itself (a name, a valid Match, a quorum its approvers
// can reach, the bounds of its chain, ...) but not what depends on the
// gate (that group and role approvers need Config.Directory, and that a
// directory able to list its names knows them). The error is a
// *PolicyError wrapping ErrInvalidPolicy.
func (np NamedPolicy) Validate() error {
	_, err := compilePolicy(np.Name, np.Policy, true)
	return err
}

// PolicyError is why a policy was refused: SetPolicy, ReplacePolicies and
// NamedPolicy.Validate return it (wrapped in New's error for
// Config.Default), so that a caller registering many policies at once
// (policyfile.Load) can tell which one. Err wraps ErrInvalidPolicy.
type PolicyError struct {
	// Name is the refused policy's name.
	Name string
	// Err says why; it wraps ErrInvalidPolicy.
	Err error
}

func (e *PolicyError) Error() string {
	return fmt.Sprintf("approval: policy %q: %v", e.Name, e.Err)
}

func (e *PolicyError) Unwrap() error { return e.Err }

// ReplacePolicies replaces the gate's policies with ps, atomically: if one
// of them does not validate, or two share a name, none is registered and
// the error is a *PolicyError naming the first such policy, wrapping
// ErrInvalidPolicy. Requests already open keep their snapshots. A policy
// naming a group or role the directory does not know is refused, if the
// directory can list them (see GroupLister); the directory is asked once.
func (g *Gate) ReplacePolicies(ps []NamedPolicy) error {
	known := g.knownApprovers()
	cps := make([]*compiledPolicy, 0, len(ps))
	for i, np := range ps {
		if slices.ContainsFunc(ps[:i], func(o NamedPolicy) bool { return o.Name == np.Name }) {
			return &PolicyError{Name: np.Name, Err: fmt.Errorf("%w: registered twice", ErrInvalidPolicy)}
		}
		cp, err := compilePolicy(np.Name, np.Policy, g.dir != nil)
		if err != nil {
			return err
		}
		if err := known.check(&cp.def); err != nil {
			return &PolicyError{Name: np.Name, Err: err}
		}
		if err := g.checkStoreFor(&cp.def); err != nil {
			return &PolicyError{Name: np.Name, Err: err}
		}
		cps = append(cps, cp)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.installPolicies(cps)
	return nil
}

// Policies returns the registered policies, by name, as registered (with
// defaults filled and user IDs in canonical form): policyfile.Encode
// writes them back to a file.
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

// CustomMatcher returns Custom(name, fn) for the predicate fn that
// Config.Matchers holds under name, and false if it holds none: how a
// policy loader (policyfile.Load) resolves the matcher {custom: NAME}.
func (g *Gate) CustomMatcher(name string) (Matcher, bool) {
	fn := g.matchers[name]
	if fn == nil {
		return nil, false
	}
	return Custom(name, fn), true
}
