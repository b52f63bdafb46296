// Package policyfile reads and writes policy files: a gate's policies (and
// delegations) in YAML, or in JSON, which is read as YAML. It is the only
// package of the module that imports a YAML parser; the approval package
// itself compiles none. The format is in README.md ("Policy files"); in
// short:
//
//	version: 1
//	policies:
//	  wire-transfer:
//	    match: {all: [{name: "payments:*"}, {cost: {at_least: 10000, currency: USD}}]}
//	    approvers: [role:treasury]
//	    required_approvals: 2
//	    timeout: 4h
//
// Load replaces a gate's policies with a file's; Parse reads a file into a
// File without a gate, and Encode writes one. Decoding is strict: an
// unknown key, a value of the wrong type, a bad duration or a policy that
// does not validate is an error naming the line, the column and the path
// of the key (an *Error wrapping approval.ErrInvalidPolicy), and nothing is
// registered unless the whole file is valid.
package policyfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/signoff/approval"
)

// MaxBytes bounds a policy file.
const MaxBytes = 1 << 20

// maxMatcherDepth bounds the nesting of a file's matchers.
const maxMatcherDepth = 32

// These bound a policy's chain as the approval package does (a test pins
// them to it); the decoder checks them first, to name the list at fault.
const (
	maxChainLevels = 32
	maxSteps       = 32
	maxGroups      = 16
)

// MatcherRegistry names the host's predicates for policy files: the
// matcher {custom: NAME} is approval.Custom(NAME, registry[NAME]). Parse
// takes one; Load resolves in the gate's approval.Config.Matchers, to
// which a MatcherRegistry assigns.
type MatcherRegistry map[string]func(approval.Action) (bool, error)

// File is what a policy file holds: its policies, in file order, and its
// delegations (see approval.Gate.GrantDelegations).
type File struct {
	// Policies are the file's policies, in file order.
	Policies []approval.NamedPolicy
	// Delegations are the file's delegations, in file order.
	Delegations []approval.Delegation
}

// Error locates what is wrong in a policy file.
type Error struct {
	// Line is the line of the file, from 1; 0 when the file as a whole is
	// wrong.
	Line int
	// Column is the column on that line, from 1; 0 with Line.
	Column int
	// Path is the key's path ("policies.deploy.chain[1].required").
	Path string
	// Err says what is wrong; it wraps approval.ErrInvalidPolicy.
	Err error
}

func (e *Error) Error() string {
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

func (e *Error) Unwrap() error { return e.Err }

// Parse reads a policy file from r, resolving custom matchers in reg, and
// checks every policy as approval.NamedPolicy.Validate does (as SetPolicy
// would on a gate with a directory: group and role approvers are
// accepted). It returns an *Error for anything wrong.
func Parse(r io.Reader, reg MatcherRegistry) (*File, error) {
	f, _, err := parse(r, func(name string) (approval.Matcher, bool) {
		fn := reg[name]
		if fn == nil {
			return nil, false
		}
		return approval.Custom(name, fn), true
	})
	return f, err
}

// Load replaces g's policies with those of the policy file read from r,
// custom matchers resolved in g's Config.Matchers: all of them, or, if
// anything in the file is wrong, none (the registered set is unchanged and
// the error is an *Error). Policies not in the file are removed. Requests
// already open keep the snapshots they were created with. The file's
// delegations are parsed but not granted: see
// approval.Gate.GrantDelegations. A policy naming a group or role g's
// directory does not know is refused, at the policy, if the directory can
// list them (see approval.GroupLister); so is one naming a group or role
// when g has no directory.
func Load(g *approval.Gate, r io.Reader) error {
	f, at, err := parse(r, g.CustomMatcher)
	if err != nil {
		return err
	}
	if err := g.ReplacePolicies(f.Policies); err != nil {
		// What depends on the gate (its directory) is checked here, once
		// for the whole file: locate the policy it refused.
		e := &Error{Err: err}
		var pe *approval.PolicyError
		if errors.As(err, &pe) && at[pe.Name] != nil {
			n := at[pe.Name]
			e.Line, e.Column, e.Path = n.Line, n.Column, "policies."+pe.Name
		}
		return e
	}
	return nil
}

// LoadFile is Load on the file at path.
func LoadFile(g *approval.Gate, path string) error {
	fh, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("approval: policy file: %w", err)
	}
	defer fh.Close()
	if err := Load(g, fh); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
