package approval

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// AskLimit limits how often one person, or one agent, may ask under a
// policy (Policy.Limit): a reviewer paged fifty times an hour by one
// agent learns to approve without reading. Each requester
// (Action.RequestedBy) and, separately, each initiator (Action.Initiator,
// the person behind an agent) has a cap on the requests they have open
// under the policy at once, and a rate at which they may open new ones.
//
// A Guard that would open a request beyond either is denied at once:
// nothing is stored and no reviewer is notified. Its Result carries a
// Denial with Code DenialAskLimit, Retry RetryLater and, when the rate
// refused, RetryAt: when one more request will be allowed. Asking again
// for a request that is already open is never limited (it answers with
// that request), nor is an action a deny policy refuses, nor one approved
// as it is created.
//
// Refusals are audited (EventAskLimited) once per person, policy and
// window of Per, not once each: an agent looping over a thousand actions
// leaves one event an hour, not a thousand. The limits are kept by the
// Store (AskLimits) in the same atomic step as the request they admit, so
// they hold across every gate sharing the store.
type AskLimit struct {
	// MaxOpen caps the requests each requester, and each initiator, may
	// have open (pending or escalated) under the policy at once. A
	// request stops counting when it is decided, times out or is
	// cancelled. 0: no cap.
	MaxOpen int `json:"max_open,omitempty"`
	// Rate is how many requests each requester, and each initiator, may
	// open under the policy per Per, on average: a token bucket of Burst
	// tokens that refills at Rate per Per (computed as GCRA, the generic
	// cell rate algorithm, from one stored time per person). 0: no rate.
	Rate int `json:"rate,omitempty"`
	// Per is the period of Rate, and the window in which refusals are
	// audited once. Defaults to an hour.
	Per time.Duration `json:"per,omitempty"`
	// Burst is how many requests may be opened at once after a quiet
	// time. Defaults to Rate.
	Burst int `json:"burst,omitempty"`
}

// DenialAskLimit is the Denial.Code of a Guard denied by a Policy.Limit.
const DenialAskLimit = "ask-limit"

// EventAskLimited: a Guard was denied because its requester or initiator
// asked beyond a policy's Limit. It has no request (none was opened); its
// Actor is the person limited and its Policies the limiting policy. It is
// written once per person, policy and window of AskLimit.Per: further
// refusals in the window are not audited.
const EventAskLimited EventType = "guard.limited"

// Who an AskCheck limits.
const (
	// AskRequester limits Action.RequestedBy.
	AskRequester = "requester"
	// AskInitiator limits Action.Initiator.
	AskInitiator = "initiator"
)

// AskCheck is one limit a new request must fit within: a policy's
// AskLimit applied to one person. The gate hands them to the Store
// (AskLimits.CreateLimited), which keeps their state under Key.
type AskCheck struct {
	// Policy is the limiting policy's name.
	Policy string
	// Role is AskRequester or AskInitiator.
	Role string
	// Who is the person limited, in canonical form.
	Who string
	// Limit is the policy's, with its defaults applied.
	Limit AskLimit
}

// Key identifies the check's state in a store: the role, the length of
// the policy's name in bytes, the name and the person, separated by
// spaces ("requester 6 deploy alice"), so that no two checks share a key
// whatever their names hold.
func (c *AskCheck) Key() string {
	return c.Role + " " + strconv.Itoa(len(c.Policy)) + " " + c.Policy + " " + c.Who
}

// interval is the rate's emission interval: Per / Rate.
func (c *AskCheck) interval() time.Duration { return c.Limit.Per / time.Duration(c.Limit.Rate) }

// Take applies the rate to one new request at now, given the stored
// theoretical arrival time tat (zero for a person never limited before):
// whether it is allowed, the tat to store if it is, and, if it is not,
// when one more will be.
func (c *AskCheck) Take(tat, now time.Time) (next time.Time, ok bool, retryAt time.Time) {
	if c.Limit.Rate <= 0 {
		return tat, true, time.Time{}
	}
	t := c.interval()
	if tat.Before(now) {
		tat = now
	}
	next = tat.Add(t)
	if allowAt := next.Add(-time.Duration(c.Limit.Burst) * t); allowAt.After(now) {
		return time.Time{}, false, allowAt
	}
	return next, true, time.Time{}
}

// AskLimitError is the error a Store returns from CreateLimited when a
// check refuses the request. It wraps ErrAskLimited.
type AskLimitError struct {
	// Check is the first check that refused.
	Check AskCheck
	// Open is how many requests Check.Who has open under the policy, when
	// the cap refused.
	Open int
	// RetryAt is when the rate allows one more request; zero when the
	// cap refused (one more is allowed when an open one ends).
	RetryAt time.Time
}

func (e *AskLimitError) Error() string {
	c := &e.Check
	if e.RetryAt.IsZero() {
		return fmt.Sprintf("%s: %s %s has %d requests open under policy %q (at most %d)",
			ErrAskLimited, c.Role, c.Who, e.Open, c.Policy, c.Limit.MaxOpen)
	}
	return fmt.Sprintf("%s: %s %s asked more than %d times per %s under policy %q; retry at %s",
		ErrAskLimited, c.Role, c.Who, c.Limit.Rate, c.Limit.Per, c.Policy, e.RetryAt.Format(time.RFC3339))
}

func (e *AskLimitError) Unwrap() error { return ErrAskLimited }

// defaultAskPer is AskLimit.Per's default.
const defaultAskPer = time.Hour

func (l *AskLimit) check() error {
	if l.MaxOpen < 0 || l.Rate < 0 || l.Burst < 0 || l.Per < 0 {
		return errors.New("Limit: MaxOpen, Rate, Burst and Per must not be negative")
	}
	if l.MaxOpen == 0 && l.Rate == 0 {
		return errors.New("Limit: set MaxOpen, Rate or both")
	}
	if l.Burst > 0 && l.Rate == 0 {
		return errors.New("Limit: Burst needs a Rate")
	}
	if l.Per != 0 && l.Per < time.Second {
		return errors.New("Limit: Per must be at least a second")
	}
	if d := l.withDefaults(); d.Rate > 0 && d.Per/time.Duration(d.Rate) < time.Microsecond {
		return errors.New("Limit: Rate is more than one per microsecond of Per")
	}
	return nil
}

// withDefaults returns l with Per and Burst defaulted.
func (l AskLimit) withDefaults() AskLimit {
	if l.Per == 0 {
		l.Per = defaultAskPer
	}
	if l.Burst == 0 {
		l.Burst = l.Rate
	}
	return l
}

// AskChecks returns the limits a new request r must fit within: for each
// matched policy with a Limit, one check for its requester and one for
// its initiator (when it has one other than the requester). Nil when no
// policy limits asking.
func (r *Request) AskChecks() []AskCheck {
	var out []AskCheck
	for i := range r.Policies {
		p := &r.Policies[i]
		if p.Limit == nil {
			continue
		}
		l := p.Limit.withDefaults()
		out = append(out, AskCheck{Policy: p.Name, Role: AskRequester, Who: r.Action.RequestedBy, Limit: l})
		if in := r.Action.Initiator; in != "" && in != r.Action.RequestedBy {
			out = append(out, AskCheck{Policy: p.Name, Role: AskInitiator, Who: in, Limit: l})
		}
	}
	return out
}

// CountsOpen reports whether r counts against a cap on open requests
// (AskLimit.MaxOpen) while it is open: a store with AskLimits stops
// counting it in the Update that makes it not open.
func (r *Request) CountsOpen() bool {
	for i := range r.Policies {
		if l := r.Policies[i].Limit; l != nil && l.MaxOpen > 0 {
			return true
		}
	}
	return false
}

// checkLimitPolicy refuses a policy with a Limit on a gate whose store
// cannot keep one.
func (g *Gate) checkLimitPolicy(p *Policy) error {
	if p.Limit == nil {
		return nil
	}
	if g.asks == nil {
		return fmt.Errorf("%w: Limit needs a Store with AskLimits (memstore and sqlstore have them)", ErrInvalidPolicy)
	}
	return nil
}

// askLimited answers a Guard whose new request lerr refused: denied, with
// the retry advice, and audited once per window of the limit's Per.
func (g *Gate) askLimited(ctx context.Context, req *Request, lerr *AskLimitError, now time.Time) (Result, error) {
	c := &lerr.Check
	d := &Denial{Code: DenialAskLimit, Retry: RetryLater, RetryAt: lerr.RetryAt}
	var reason string
	if lerr.RetryAt.IsZero() {
		reason = fmt.Sprintf("%s %s has %d requests open under policy %s, the most it allows", c.Role, c.Who, lerr.Open, c.Policy)
		d.Hint = "ask again once one of the open requests is decided"
	} else {
		reason = fmt.Sprintf("%s %s asked more than %d times in %s under policy %s", c.Role, c.Who, c.Limit.Rate, c.Limit.Per, c.Policy)
		d.Hint = "ask again after " + lerr.RetryAt.Format(time.RFC3339)
	}
	ref := PolicyRef{Name: c.Policy}
	for _, p := range req.Policies {
		if p.Name == c.Policy {
			ref.Hash = p.Hash
		}
	}
	until := now.Add(c.Limit.Per)
	ev := []AuditEvent{{Type: EventAskLimited, Actor: c.Who, Policies: []PolicyRef{ref}, At: now,
		Reason: auditSafe(reason+"; action "+strconv.Quote(req.Action.Name)+"; further refusals of "+c.Who+" under "+c.Policy+
			" until "+until.Format(time.RFC3339)+" are not audited", maxReasonBytes)}}
	ev[0].ActionHash = req.ActionHash // the action refused (the first of the window)
	recorded, err := g.asks.RecordAskRefusal(ctx, c.Key(), now, until, ev)
	if err != nil {
		// Fail closed: the Guard is denied either way; say why it was not
		// audited.
		return Result{}, fmt.Errorf("audit a refusal under policy %s's limit: %w", c.Policy, err)
	}
	if recorded {
		g.afterCommit(ctx, ev)
	}
	return Result{Status: OutcomeDenied, Reason: reason, Denial: d}, nil
}
