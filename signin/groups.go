package signin

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/signoff/approval"
)

// GroupDirectory is an approval.Directory fed by sign-ins: the groups a
// person's claims named (Config.GroupsClaim) when they last signed in,
// for at most TTL after it, beside Base's memberships. Set it as
// Config.Groups, and give it (or a Directory built on it) to the gate.
//
// What it can answer: whether a person who signed in recently is in a
// group, and who those people are. What it cannot: the members of a
// group who have not signed in within TTL, whom only Base knows. So a
// group whose approvers must be notified before they sign in, or whose
// size decides a RequireAll level, needs Base (the provider's SCIM or
// LDAP directory, a StaticDirectory); a group whose members approve from
// the queue once signed in can live on claims alone. A removal at the
// provider takes effect at the person's next sign-in, or TTL after their
// last. It keeps memberships in this process's memory: replicas learn
// each from the sign-ins they serve.
//
// The zero value (no Base, TTL of DefaultGroupTTL) is ready to use. A
// GroupDirectory is safe for concurrent use.
type GroupDirectory struct {
	// Base is the directory the learned memberships add to. Nil: none.
	Base approval.Directory
	// TTL is how long a sign-in's groups count. Defaults to
	// DefaultGroupTTL.
	TTL time.Duration
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time

	mu   sync.Mutex
	seen map[string]learned // by canonical approver ID
}

// DefaultGroupTTL is GroupDirectory.TTL's default: a working day and
// then some, like a session.
const DefaultGroupTTL = 12 * time.Hour

type learned struct {
	groups []string
	at     time.Time
}

var _ approval.Directory = (*GroupDirectory)(nil)

// Learn records that who signed in now with groups (replacing what an
// earlier sign-in said). OIDC calls it at each sign-in when it is
// Config.Groups.
func (d *GroupDirectory) Learn(who string, groups []string) {
	id, err := approval.CanonicalID(who)
	if err != nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.seen == nil {
		d.seen = map[string]learned{}
	}
	d.seen[id] = learned{groups: slices.Clone(groups), at: d.now()}
}

func (d *GroupDirectory) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *GroupDirectory) ttl() time.Duration {
	if d.TTL > 0 {
		return d.TTL
	}
	return DefaultGroupTTL
}

// current returns who's learned groups, if their sign-in still counts.
// d.mu must be held.
func (d *GroupDirectory) current(l learned, now time.Time) bool {
	return now.Sub(l.at) < d.ttl()
}

// IsMember implements approval.Directory: a group the person's last
// sign-in named, within TTL, or a membership Base knows.
func (d *GroupDirectory) IsMember(ctx context.Context, a approval.Approver, user string) (bool, error) {
	if a.Kind == approval.KindGroup {
		if id, err := approval.CanonicalID(user); err == nil {
			d.mu.Lock()
			l, ok := d.seen[id]
			in := ok && d.current(l, d.now()) && slices.Contains(l.groups, a.Name)
			d.mu.Unlock()
			if in {
				return true, nil
			}
		}
	}
	if d.Base == nil {
		return false, nil
	}
	return d.Base.IsMember(ctx, a, user)
}

// Members implements approval.Directory: Base's members, and the people
// whose sign-in within TTL named the group, each once, sorted.
func (d *GroupDirectory) Members(ctx context.Context, a approval.Approver) ([]string, error) {
	var out []string
	if d.Base != nil {
		base, err := d.Base.Members(ctx, a)
		if err != nil {
			return nil, err
		}
		out = slices.Clone(base)
	}
	if a.Kind == approval.KindGroup {
		now := d.now()
		d.mu.Lock()
		for id, l := range d.seen {
			if d.current(l, now) && slices.Contains(l.groups, a.Name) {
				out = append(out, id)
			}
		}
		d.mu.Unlock()
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
