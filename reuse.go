package approval

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Reuse is an approval that is not single-use: the identical action may
// run up to Uses times within For of the approval ("always allow this
// exact call for 30 minutes"). A reviewer grants it (Decision.Reuse)
// within the bounds the policies set (Policy.MaxReuse); the requester
// never can. The zero Reuse is none: the approval is used once.
//
// In JSON it is {"for": "30m0s", "uses": 5}, For as time.Duration's
// String (and ParseDuration on reading).
type Reuse struct {
	// For is how long after the approval the uses may come.
	For time.Duration
	// Uses is how many Guards of the action it approves, 2 or more.
	Uses int
}

type reuseJSON struct {
	For  string `json:"for"`
	Uses int    `json:"uses"`
}

// MarshalJSON implements json.Marshaler.
func (r Reuse) MarshalJSON() ([]byte, error) {
	return json.Marshal(reuseJSON{For: r.For.String(), Uses: r.Uses})
}

// UnmarshalJSON implements json.Unmarshaler.
func (r *Reuse) UnmarshalJSON(b []byte) error {
	var j reuseJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	d, err := time.ParseDuration(j.For)
	if err != nil {
		return fmt.Errorf("reuse: for: %w", err)
	}
	*r = Reuse{For: d, Uses: j.Uses}
	return nil
}

// IsZero reports whether r grants no reuse.
func (r Reuse) IsZero() bool { return r == Reuse{} }

// String returns "up to N uses within D", or "single use".
func (r Reuse) String() string {
	if r.IsZero() {
		return "single use"
	}
	return "up to " + strconv.Itoa(r.Uses) + " uses within " + r.For.String()
}

// maxReuseUses bounds Reuse.Uses.
const maxReuseUses = 1 << 20

// check validates r as a grant or a bound: zero, or both For and Uses set.
func (r Reuse) check(what string) error {
	if r.IsZero() {
		return nil
	}
	if r.For <= 0 || r.Uses < 2 || r.Uses > maxReuseUses {
		return fmt.Errorf("%s must have For > 0 and Uses from 2 to %d (got %s, %d)", what, maxReuseUses, r.For, r.Uses)
	}
	return nil
}

// within reports whether grant fits inside the bound max.
func (r Reuse) within(max Reuse) bool {
	return !max.IsZero() && r.For <= max.For && r.Uses <= max.Uses
}

// narrowest returns the grant within both a and b; zero if either is.
func narrowest(a, b Reuse) Reuse {
	if a.IsZero() || b.IsZero() {
		return Reuse{}
	}
	return Reuse{For: min(a.For, b.For), Uses: min(a.Uses, b.Uses)}
}

// checkReuse checks a reviewer's grant against the request's bound.
func checkReuse(d *Decision, req *Request) error {
	if d.Reuse == nil {
		return nil
	}
	switch {
	case d.Reuse.IsZero():
		return nil
	case req.MaxReuse.IsZero():
		return fmt.Errorf("%w: reuse %s: the request's policies allow no reuse (Policy.MaxReuse)", ErrInvalidDecision, d.Reuse)
	case !d.Reuse.within(req.MaxReuse):
		return fmt.Errorf("%w: reuse %s: beyond what the request's policies allow (%s)", ErrInvalidDecision, d.Reuse, req.MaxReuse)
	}
	return nil
}

// grantReuse sets the reuse of r, just approved by its votes: the
// narrowest grant of its approving votes, none if any gave none. An
// approval with reuse stays usable for its For, not ApprovalTTL.
func (r *Request) grantReuse(now time.Time) {
	var g Reuse
	first := true
	for i := range r.Votes {
		v := &r.Votes[i]
		if v.Verdict != VerdictApprove || v.BreakGlass {
			continue
		}
		var vr Reuse
		if v.Reuse != nil {
			vr = *v.Reuse
		}
		if first {
			g, first = vr, false
		} else {
			g = narrowest(g, vr)
		}
	}
	if first || g.IsZero() {
		return
	}
	r.Reuse = g
	r.Reason += " (reuse: " + g.String() + ")"
	r.ExpiresAt = now.Add(g.For)
	r.DueAt = r.ExpiresAt
}

// consume records one use of approved request r (a copy the caller
// owns): consumed at its last use, still approved before it. It returns
// the audit reason's suffix ("(use 2 of 5)") when r may be reused.
func (r *Request) consume(now time.Time) string {
	r.Uses++
	r.UpdatedAt = now
	r.Version++
	if r.Reuse.IsZero() || r.Uses >= r.Reuse.Uses {
		r.Status, r.DueAt = StatusConsumed, time.Time{}
	}
	if r.Reuse.IsZero() {
		return ""
	}
	return fmt.Sprintf("(use %d of %d)", r.Uses, r.Reuse.Uses)
}
