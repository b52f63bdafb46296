package approval

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/signoff/approval/internal/host"
	"github.com/signoff/approval/internal/text"
)

// ApproverKind says how an Approver names people.
type ApproverKind string

// Approver kinds.
const (
	KindUser  ApproverKind = "user"
	KindGroup ApproverKind = "group"
	KindRole  ApproverKind = "role"
)

// Approver names who may decide: one user, or every member of a group or
// role as the Directory resolves it at decision time.
type Approver struct {
	// Kind says what Name names: a user, a group or a role.
	Kind ApproverKind `json:"kind"`
	// Name is the user's canonical ID (see CanonicalID), or the group's or
	// role's name as the Directory knows it.
	Name string `json:"name"`
}

// User is the single person with the given ID.
func User(id string) Approver { return Approver{Kind: KindUser, Name: id} }

// Group is every member of the named group.
func Group(name string) Approver { return Approver{Kind: KindGroup, Name: name} }

// Role is every holder of the named role.
func Role(name string) Approver { return Approver{Kind: KindRole, Name: name} }

// String returns "kind:name", for example "group:finance".
func (a Approver) String() string { return string(a.Kind) + ":" + a.Name }

func (a Approver) check() error {
	switch a.Kind {
	case KindUser, KindGroup, KindRole:
	default:
		return fmt.Errorf("approver %q has unknown kind %q", a.Name, a.Kind)
	}
	if a.Name == "" {
		return fmt.Errorf("%s approver without a name", a.Kind)
	}
	return nil
}

// Directory resolves groups and roles to people. The gate asks it at
// decision time (is this approver a member?) and at notification time (who
// are the members?), so membership changes take effect on live requests.
// Implementations must be safe for concurrent use. An error fails closed:
// the decision is refused, never counted, and audited as
// decision.rejected; Decide returns the error.
//
// A method that panics is recovered and counts as an error. IsMember gets
// Decide's context: when that context can end, a call still running at
// its end is abandoned and the decision refused. Members is called off the
// request path, with 10s to resolve one notification's recipients; after
// three calls in a row that ran out of time, notifications stop asking it
// (their recipients fail, audited as notification.failed) except for one
// probe a minute, until a probe returns in time. At most 100 abandoned
// calls may be running; beyond that the directory is not called (and
// fails) until one returns.
//
// Identities are compared in canonical form (see CanonicalID): the user
// IsMember receives is canonical, and the IDs Members returns are
// canonicalized by the gate (an ID that is not a valid identity is skipped
// and logged). A directory must therefore treat IDs that differ only in case
// or Unicode form as one person, as LDAP and most identity providers do;
// StaticDirectory compares canonical forms. Whatever the directory does,
// the gate counts a person once and keeps a requester from approving under
// another spelling, because it compares the canonical forms itself.
type Directory interface {
	// IsMember reports whether user (canonical) belongs to the group or
	// role a. An unknown group or role has no members.
	IsMember(ctx context.Context, a Approver, user string) (bool, error)
	// Members returns the user IDs in the group or role a. The caller does
	// not modify the returned slice.
	Members(ctx context.Context, a Approver) ([]string, error)
}

// StaticDirectory is a Directory held in memory: group and role names to
// user IDs. It must not be modified while a gate uses it; build a new one
// and a new gate instead. The zero value is an empty directory.
type StaticDirectory struct {
	// Groups maps a group name to its members' user IDs.
	Groups map[string][]string
	// Roles maps a role name to the user IDs that hold it.
	Roles map[string][]string
}

// IsMember implements Directory. Members are compared in canonical form.
func (d StaticDirectory) IsMember(_ context.Context, a Approver, user string) (bool, error) {
	return slices.ContainsFunc(d.lookup(a), func(m string) bool { return sameID(m, user) }), nil
}

// Members implements Directory.
func (d StaticDirectory) Members(_ context.Context, a Approver) ([]string, error) {
	return d.lookup(a), nil
}

func (d StaticDirectory) lookup(a Approver) []string {
	switch a.Kind {
	case KindGroup:
		return d.Groups[a.Name]
	case KindRole:
		return d.Roles[a.Name]
	}
	return nil
}

// GroupLister is an optional Directory capability, found by type
// assertion: a directory that can list every group it knows. With it, a
// policy that names a group the directory does not list, as an approver,
// an escalation step's To, or a chain level's or parallel group's
// approver, is refused when it is registered (SetPolicy, ReplacePolicies,
// policyfile.Load, Config.Default in New) with an error wrapping
// ErrInvalidPolicy that names the group: a misspelt group fails at load
// instead of leaving requests that nobody can approve.
//
// A directory without it (one that resolves groups on demand, from LDAP or
// an identity provider) is not asked: such a policy is registered, and a
// group without members is found when Guard checks that a request's quorum
// can be met. If GroupNames fails, panics or takes more than 10 seconds,
// the policy is registered unchecked and the failure is logged.
// StaticDirectory implements it.
type GroupLister interface {
	// GroupNames returns the name of every group the directory knows, in
	// any order. It is called once per registration, never on the
	// request path.
	GroupNames(ctx context.Context) ([]string, error)
}

// RoleLister is GroupLister for roles: with it, a policy naming a role the
// directory does not list is refused when it is registered. StaticDirectory
// implements it.
type RoleLister interface {
	// RoleNames returns the name of every role the directory knows, in
	// any order.
	RoleNames(ctx context.Context) ([]string, error)
}

var (
	_ GroupLister = StaticDirectory{}
	_ RoleLister  = StaticDirectory{}
)

// GroupNames implements GroupLister: the keys of Groups.
func (d StaticDirectory) GroupNames(context.Context) ([]string, error) {
	return slices.Sorted(maps.Keys(d.Groups)), nil
}

// RoleNames implements RoleLister: the keys of Roles.
func (d StaticDirectory) RoleNames(context.Context) ([]string, error) {
	return slices.Sorted(maps.Keys(d.Roles)), nil
}

// listTimeout bounds a GroupNames or RoleNames call.
const listTimeout = 10 * time.Second

// knownApprovers is what a directory lists of the groups and roles it
// knows, for the registration check; a nil set was not listed (the
// directory cannot list it, or failed to), and is not checked.
type knownApprovers struct {
	groups, roles map[string]bool
}

// knownApprovers asks the gate's directory for the groups and roles it
// knows, if it can list them.
func (g *Gate) knownApprovers() *knownApprovers {
	if g.dir == nil {
		return nil
	}
	list := func(what string, fn func(context.Context) ([]string, error)) map[string]bool {
		ctx, cancel := context.WithTimeout(context.Background(), listTimeout)
		defer cancel()
		names, err := host.Call(g.dirHost, ctx, what, fn)
		if err != nil {
			g.log.Warn("approval: the directory could not list its names; policies are registered without checking the ones they name",
				"call", what, "err", err)
			return nil
		}
		set := make(map[string]bool, len(names))
		for _, n := range names {
			set[n] = true
		}
		return set
	}
	var k knownApprovers
	if l, ok := g.dir.(GroupLister); ok {
		k.groups = list("GroupNames", l.GroupNames)
	}
	if l, ok := g.dir.(RoleLister); ok {
		k.roles = list("RoleNames", l.RoleNames)
	}
	if k.groups == nil && k.roles == nil {
		return nil
	}
	return &k
}

// check refuses p if it names a group or role the directory does not
// list: its approvers, its escalation steps' To, and those of each chain
// level and parallel group. A nil k checks nothing, and so does a deny
// policy (it names no approvers).
func (k *knownApprovers) check(p *Policy) error {
	if k == nil || p.Effect == EffectDeny {
		return nil
	}
	known := func(at string, as []Approver) error {
		for i, a := range as {
			var set map[string]bool
			switch a.Kind {
			case KindGroup:
				set = k.groups
			case KindRole:
				set = k.roles
			}
			if set != nil && !set[a.Name] {
				return fmt.Errorf("%w: %s[%d] names %s %q, which the directory does not know", ErrInvalidPolicy, at, i, a.Kind, text.Clip(a.Name, maxEchoBytes))
			}
		}
		return nil
	}
	steps := func(at string, ss []EscalationStep) error {
		for i, s := range ss {
			if err := known(fmt.Sprintf("%s[%d].To", at, i), s.To); err != nil {
				return err
			}
		}
		return nil
	}
	if err := known("Approvers", p.Approvers); err != nil {
		return err
	}
	if err := steps("Escalation", p.Escalation); err != nil {
		return err
	}
	for i, l := range p.Chain {
		at := fmt.Sprintf("Chain[%d]", i)
		if err := known(at+".Approvers", l.Approvers); err != nil {
			return err
		}
		for j, gr := range l.Groups {
			if err := known(fmt.Sprintf("%s.Groups[%d].Approvers", at, j), gr.Approvers); err != nil {
				return err
			}
		}
		if err := steps(at+".Escalation", l.Escalation); err != nil {
			return err
		}
	}
	return nil
}
