package approval

import (
	"context"
	"fmt"
	"slices"
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
	Kind ApproverKind `json:"kind"`
	Name string       `json:"name"`
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
	Groups map[string][]string
	Roles  map[string][]string
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
