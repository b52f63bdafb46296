package approval

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/signoff/approval/internal/canon"
)

// Effect is what a matching policy does to an action.
type Effect uint8

// Policy effects.
const (
	// EffectRequireApproval (the zero value) holds the action until the
	// policy's quorum approves it.
	EffectRequireApproval Effect = iota
	// EffectDeny denies the action outright, with the policy's Reason.
	EffectDeny
)

func (e Effect) String() string {
	if e == EffectDeny {
		return "deny"
	}
	return "require_approval"
}

// TimeoutAction is what happens to an open request when its timeout passes.
type TimeoutAction uint8

// Timeout actions. TimeoutDeny is the zero value and the most restrictive.
const (
	// TimeoutDeny times the request out: it ends in StatusTimedOut and the action
	// does not run.
	TimeoutDeny TimeoutAction = iota
	// TimeoutApprove approves the request when the timeout passes (for low-risk
	// actions where silence means consent).
	TimeoutApprove
)

func (t TimeoutAction) String() string {
	if t == TimeoutApprove {
		return "approve"
	}
	return "deny"
}

// MarshalText implements encoding.TextMarshaler.
func (t TimeoutAction) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (t *TimeoutAction) UnmarshalText(b []byte) error {
	switch string(b) {
	case "deny", "":
		*t = TimeoutDeny
	case "approve":
		*t = TimeoutApprove
	default:
		return fmt.Errorf("%w: unknown timeout action %q (want deny or approve)", ErrInvalidPolicy, b)
	}
	return nil
}

// Policy says which actions need approval, from whom, and how many.
type Policy struct {
	// Match selects the actions the policy applies to. Required.
	Match Matcher
	// Effect is EffectRequireApproval (default) or EffectDeny.
	Effect Effect
	// Reason explains the policy to requesters and reviewers; for a deny
	// policy it is the denial reason. Defaults to the policy name.
	Reason string
	// Approvers are who may approve: the policy's one level. Required
	// unless Effect is EffectDeny or the policy has a Chain.
	Approvers []Approver
	// RequiredApprovals is how many distinct Approvers must approve.
	// Required (at least 1) unless Effect is EffectDeny or the policy has a
	// Chain.
	RequiredApprovals int
	// Chain, instead of Approvers and RequiredApprovals, makes the policy
	// a chain of levels, met one after the other (see Level).
	Chain []Level
	// Timeout bounds how long a request stays open. Defaults to 24h.
	Timeout time.Duration
	// OnTimeout is what happens when Timeout passes. Defaults to TimeoutDeny.
	OnTimeout TimeoutAction
	// AllowSelfApproval lets the requester count as an approver of their
	// own request. Defaults to false: requester segregation is on, and it
	// holds for a request if any policy it matched leaves this false.
	AllowSelfApproval bool
	// Escalation lists the steps run while a request of a flat policy is
	// open, each After that long since its creation (see EscalationStep).
	// A Chain's levels have their own (Level.Escalation).
	Escalation []EscalationStep
	// Redact names the payload fields (JSON object keys, at any depth) and
	// metadata keys that notifications and review surfaces (approvalhttp)
	// show masked (Action.Redact), so that approvers judge a request
	// without seeing the secret in it. The hashes still cover the real
	// bytes. Names compare case-insensitively. Defaults to none.
	Redact []string
	// ReminderInterval, if set, reminds the approvers who have not answered
	// (NotifyReminder), every interval while the request is open, counted
	// from its creation. Defaults to 0: no reminders.
	ReminderInterval time.Duration
	// ApprovalTTL is how long an approval stays usable before the next
	// Guard of the action consumes it. Defaults to 1h.
	ApprovalTTL time.Duration
	// RecommendationApprovesBelow, if set, lets a Recommendation to
	// approve, at least RecommendationMinConfidence confident, pass the
	// policy (every level) for an action whose risk is below it; an
	// action without a risk never qualifies. It is audited as a level
	// passed on the recommendation, never counted as a vote. Defaults to
	// RiskNone: recommendations only inform.
	RecommendationApprovesBelow Risk
	// RecommendationMinConfidence is the least Recommendation.Confidence
	// (0 to 1) with which a recommendation passes the policy under
	// RecommendationApprovesBelow. Defaults to 0: any confidence.
	RecommendationMinConfidence float64
	// MaxReuse is the most reuse a reviewer may grant an approval under
	// this policy ("always allow this exact call for 30 minutes", see
	// Reuse and Decision.Reuse). Defaults to none: every approval is
	// single-use. Where several policies match, the narrowest applies.
	MaxReuse Reuse
	// RequirePasskey makes each approval confirmed with the approver's
	// registered passkey (see Passkey, Decision.Passkey): an approval
	// without a valid assertion is refused (ErrPasskey) and audited. It
	// needs Config.Passkeys and a Store with Passkeys. Denials need none.
	// Defaults to false.
	RequirePasskey bool
	// Limit, if set, limits how often each requester and each initiator
	// may ask under this policy: open requests at once, and new ones per
	// period (see AskLimit). It needs a Store with AskLimits. Defaults to
	// nil: no limit.
	Limit *AskLimit
	// Urgent sends this policy's asks at once, never held for a digest
	// (DeliveryConfig.DigestWindow), and marks its notifications
	// (Notification.Urgent). Defaults to false.
	Urgent bool
}

// Defaults applied to policies.
const (
	DefaultTimeout     = 24 * time.Hour
	DefaultApprovalTTL = time.Hour
)

// compiledPolicy is a validated policy with its snapshot precomputed, so
// Guard does no hashing or copying of policy definitions.
type compiledPolicy struct {
	name      string
	def       Policy
	hash      string
	segregate bool
	snapshot  MatchedPolicy
}

func compilePolicy(name string, p Policy, haveDirectory bool) (*compiledPolicy, error) {
	// validatePolicy rewrites user IDs to canonical form: in copies, so the
	// caller's slices are never touched.
	p.Approvers = slices.Clone(p.Approvers)
	p.Escalation = cloneSteps(p.Escalation)
	p.Chain = cloneChain(p.Chain)
	p.Redact = slices.Clone(p.Redact)
	if err := validatePolicy(name, &p, haveDirectory); err != nil {
		return nil, &PolicyError{Name: name, Err: err}
	}
	if p.Timeout == 0 {
		p.Timeout = DefaultTimeout
	}
	if p.ApprovalTTL == 0 {
		p.ApprovalTTL = DefaultApprovalTTL
	}
	if p.Reason == "" {
		p.Reason = name
	}
	b, err := appendPolicyCanonical(nil, name, &p)
	if err != nil {
		return nil, &PolicyError{Name: name, Err: fmt.Errorf("%w: %v", ErrInvalidPolicy, err)}
	}
	sum := sha256.Sum256(b)
	cp := &compiledPolicy{
		name:      name,
		def:       p,
		hash:      hex.EncodeToString(sum[:]),
		segregate: !p.AllowSelfApproval,
	}
	cp.snapshot = MatchedPolicy{
		Name:              name,
		Hash:              cp.hash,
		Approvers:         p.Approvers,
		RequiredApprovals: p.RequiredApprovals,
		Escalation:        p.Escalation,
		ReminderInterval:  p.ReminderInterval,
		Redact:            p.Redact,

		RecommendationApprovesBelow: p.RecommendationApprovesBelow,
		RecommendationMinConfidence: p.RecommendationMinConfidence,
		RequirePasskey:              p.RequirePasskey,
		Urgent:                      p.Urgent,
	}
	if p.Limit != nil {
		l := *p.Limit
		cp.def.Limit, cp.snapshot.Limit = &l, &l
	}
	if len(p.Chain) > 0 {
		// The snapshot keeps no matcher: Skipped records what When said.
		cp.snapshot.Chain = cloneChain(p.Chain)
		for i := range cp.snapshot.Chain {
			cp.snapshot.Chain[i].When = nil
		}
	}
	return cp, nil
}

func validatePolicy(name string, p *Policy, haveDirectory bool) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidPolicy, fmt.Sprintf(format, args...))
	}
	if name == "" {
		return bad("empty name")
	}
	if p.Match == nil {
		return bad("Match is nil (use Name(\"*\") to match every action)")
	}
	if err := p.Match.check(); err != nil {
		return bad("%v", err)
	}
	if p.Effect > EffectDeny {
		return bad("unknown effect %d", p.Effect)
	}
	if p.OnTimeout > TimeoutApprove {
		return bad("unknown timeout action %d", p.OnTimeout)
	}
	if p.Timeout < 0 || p.ApprovalTTL < 0 || p.ReminderInterval < 0 {
		return bad("durations must be positive")
	}
	if p.RecommendationApprovesBelow < RiskNone || p.RecommendationApprovesBelow > RiskCritical {
		return bad("RecommendationApprovesBelow is not a risk level")
	}
	if err := p.MaxReuse.check("MaxReuse"); err != nil {
		return bad("%v", err)
	}
	if math.IsNaN(p.RecommendationMinConfidence) || p.RecommendationMinConfidence < 0 || p.RecommendationMinConfidence > 1 {
		return bad("RecommendationMinConfidence %v is not between 0 and 1", p.RecommendationMinConfidence)
	}
	if p.Limit != nil {
		if p.Effect == EffectDeny {
			return bad("a deny policy asks nobody: Limit has nothing to limit")
		}
		if err := p.Limit.check(); err != nil {
			return bad("%v", err)
		}
	}
	if p.Effect == EffectDeny {
		return nil
	}
	check := func(as []Approver) error {
		for i, a := range as {
			if err := a.check(); err != nil {
				return bad("%v", err)
			}
			if a.Kind == KindUser {
				id, err := CanonicalID(a.Name)
				if err != nil {
					return bad("approver %s: %v", a, err)
				}
				as[i].Name = id
			}
			if a.Kind != KindUser && !haveDirectory {
				return bad("approver %s needs Config.Directory to resolve it", a)
			}
		}
		return nil
	}
	if len(p.Chain) == 0 {
		if p.RequiredApprovals < 1 {
			return bad("RequiredApprovals is %d, want at least 1", p.RequiredApprovals)
		}
		if len(p.Approvers) == 0 {
			return bad("no Approvers")
		}
		if err := check(p.Approvers); err != nil {
			return err
		}
		// Approvals count once per person, so only distinct users can
		// meet a quorum made of named users alone (unless a step can add
		// approvers).
		users, onlyUsers := distinctUsers(p.Approvers)
		widened := slices.ContainsFunc(p.Escalation, func(s EscalationStep) bool {
			return s.Action == StepEscalate || s.Action == StepReassign
		})
		if onlyUsers && users < p.RequiredApprovals && !widened {
			return bad("%d distinct named users can never reach RequiredApprovals %d", users, p.RequiredApprovals)
		}
	}
	if err := validateChain(p, check, bad); err != nil {
		return err
	}
	for _, k := range p.Redact {
		if k == "" || !utf8.ValidString(k) || len(k) > 256 {
			return bad("Redact entries must be non-empty UTF-8 names of at most 256 bytes")
		}
	}
	return nil
}

// appendPolicyCanonical writes the policy's canonical JSON, the input of its
// snapshot hash. Keys are in JCS order.
func appendPolicyCanonical(b []byte, name string, p *Policy) ([]byte, error) {
	var err error
	b = append(b, '{')
	b = canon.AppendKey(b, "allow_self_approval")
	b = appendBool(b, p.AllowSelfApproval)
	b = append(b, ',')
	b = canon.AppendKey(b, "approval_ttl")
	b = canon.AppendString(b, p.ApprovalTTL.String())
	b = append(b, ',')
	b = canon.AppendKey(b, "approvers")
	b = appendApprovers(b, p.Approvers)
	b = append(b, ',')
	if len(p.Chain) > 0 {
		b = canon.AppendKey(b, "chain")
		if b, err = appendChainCanonical(b, p.Chain); err != nil {
			return b, err
		}
		b = append(b, ',')
	}
	b = canon.AppendKey(b, "effect")
	b = canon.AppendString(b, p.Effect.String())
	b = append(b, ',')
	b = canon.AppendKey(b, "escalation")
	b = appendStepsCanonical(b, p.Escalation)
	b = append(b, ',')
	if l := p.Limit; l != nil {
		// Written only when set, like reminder_interval; as given, before
		// defaults, in the spelling of Go's durations.
		b = canon.AppendKey(b, "limit")
		b = append(b, '{')
		b = canon.AppendKey(b, "burst")
		b = canon.AppendInt(b, int64(l.Burst))
		b = append(b, ',')
		b = canon.AppendKey(b, "max_open")
		b = canon.AppendInt(b, int64(l.MaxOpen))
		b = append(b, ',')
		b = canon.AppendKey(b, "per")
		b = canon.AppendString(b, l.Per.String())
		b = append(b, ',')
		b = canon.AppendKey(b, "rate")
		b = canon.AppendInt(b, int64(l.Rate))
		b = append(b, '}', ',')
	}
	b = canon.AppendKey(b, "match")
	if b, err = p.Match.appendCanonical(b); err != nil {
		return b, err
	}
	b = append(b, ',')
	if !p.MaxReuse.IsZero() {
		// Written only when set, like reminder_interval.
		b = canon.AppendKey(b, "max_reuse")
		b = append(b, '{')
		b = canon.AppendKey(b, "for")
		b = canon.AppendString(b, p.MaxReuse.For.String())
		b = append(b, ',')
		b = canon.AppendKey(b, "uses")
		b = canon.AppendInt(b, int64(p.MaxReuse.Uses))
		b = append(b, '}', ',')
	}
	b = canon.AppendKey(b, "name")
	b = canon.AppendString(b, name)
	b = append(b, ',')
	b = canon.AppendKey(b, "on_timeout")
	b = canon.AppendString(b, p.OnTimeout.String())
	b = append(b, ',')
	b = canon.AppendKey(b, "reason")
	b = canon.AppendString(b, p.Reason)
	b = append(b, ',')
	if p.RecommendationApprovesBelow != RiskNone {
		// Written only when set, like reminder_interval.
		b = canon.AppendKey(b, "recommendation_approves_below")
		b = canon.AppendString(b, p.RecommendationApprovesBelow.String())
		b = append(b, ',')
		b = canon.AppendKey(b, "recommendation_min_confidence")
		if b, err = canon.AppendFloat(b, p.RecommendationMinConfidence); err != nil {
			return b, err
		}
		b = append(b, ',')
	}
	if len(p.Redact) > 0 {
		// Written only when set, like reminder_interval.
		b = canon.AppendKey(b, "redact")
		b = append(b, '[')
		for i, k := range p.Redact {
			if i > 0 {
				b = append(b, ',')
			}
			b = canon.AppendString(b, k)
		}
		b = append(b, ']', ',')
	}
	if p.ReminderInterval != 0 {
		// Written only when set, so the hashes of policies without
		// reminders are what they were before reminders existed.
		b = canon.AppendKey(b, "reminder_interval")
		b = canon.AppendString(b, p.ReminderInterval.String())
		b = append(b, ',')
	}
	if p.RequirePasskey {
		// Written only when set, like reminder_interval.
		b = canon.AppendKey(b, "require_passkey")
		b = append(b, "true,"...)
	}
	b = canon.AppendKey(b, "required_approvals")
	b = canon.AppendInt(b, int64(p.RequiredApprovals))
	b = append(b, ',')
	b = canon.AppendKey(b, "timeout")
	b = canon.AppendString(b, p.Timeout.String())
	if p.Urgent {
		// Written only when set, like reminder_interval.
		b = append(b, ',')
		b = canon.AppendKey(b, "urgent")
		b = append(b, "true"...)
	}
	return append(b, '}'), nil
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, "true"...)
	}
	return append(b, "false"...)
}

// ReasonNoPolicyMatched is the Result.Reason of an action no policy matched.
const ReasonNoPolicyMatched = "no-policy-matched"

// match is the outcome of evaluating every registered policy on an action.
type match struct {
	policies []*compiledPolicy // require-approval policies that apply
	errs     []string          // matcher errors, parallel to policies ("" if none)
	deny     *compiledPolicy   // first deny policy that applies, if any
	denyErr  string
}

// names returns the names of the matched policies, the deny policy's
// first; nil if none matched.
func (m *match) names() []string {
	n := len(m.policies)
	if m.deny != nil {
		n++
	}
	if n == 0 {
		return nil
	}
	out := make([]string, 0, n)
	if m.deny != nil {
		out = append(out, m.deny.name)
	}
	for _, p := range m.policies {
		out = append(out, p.name)
	}
	return out
}

// evaluate runs every policy's matcher on a. It allocates nothing when no
// policy matches. A matcher error applies the policy (fail closed).
func evaluate(policies []*compiledPolicy, a *Action) match {
	var m match
	for _, p := range policies {
		ok, err := p.def.Match.Match(a)
		if !ok && err == nil {
			continue
		}
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if p.def.Effect == EffectDeny {
			if m.deny == nil {
				m.deny, m.denyErr = p, msg
			}
			continue
		}
		m.policies = append(m.policies, p)
		m.errs = append(m.errs, msg)
	}
	return m
}

// SetPolicy registers the policy under name, replacing any policy of that
// name. Requests already open keep the snapshot they were created with. It
// returns a *PolicyError wrapping ErrInvalidPolicy if def does not
// validate, or names a group or role the directory does not know when the
// directory can list them (see GroupLister).
func (g *Gate) SetPolicy(name string, def Policy) error {
	cp, err := compilePolicy(name, def, g.dir != nil)
	if err != nil {
		return err
	}
	if err := g.knownApprovers().check(&cp.def); err != nil {
		return &PolicyError{Name: name, Err: err}
	}
	if err := g.checkStoreFor(&cp.def); err != nil {
		return &PolicyError{Name: name, Err: err}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	old := *g.policies.Load()
	next := make([]*compiledPolicy, 0, len(old)+1)
	for _, p := range old {
		if p.name != name {
			next = append(next, p)
		}
	}
	g.installPolicies(append(next, cp))
	return nil
}

// installPolicies makes next, sorted by name, the registered set. The
// caller holds g.mu.
func (g *Gate) installPolicies(next []*compiledPolicy) {
	slices.SortFunc(next, func(a, b *compiledPolicy) int { return strings.Compare(a.name, b.name) })
	g.policies.Store(&next)
}

// RemovePolicy unregisters the named policy. Open requests keep their
// snapshot of it. It reports whether a policy was removed.
func (g *Gate) RemovePolicy(name string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	old := *g.policies.Load()
	i := slices.IndexFunc(old, func(p *compiledPolicy) bool { return p.name == name })
	if i < 0 {
		return false
	}
	next := slices.Delete(slices.Clone(old), i, i+1)
	g.policies.Store(&next)
	return true
}

// PolicyHash returns the snapshot hash of the registered policy name: the
// hex SHA-256 of its canonical definition, as stored on requests.
func (g *Gate) PolicyHash(name string) (string, bool) {
	for _, p := range *g.policies.Load() {
		if p.name == name {
			return p.hash, true
		}
	}
	return "", false
}

// checkStoreFor refuses a policy that needs what the gate cannot do:
// RequirePasskey without passkeys, a Limit without a store that keeps it.
func (g *Gate) checkStoreFor(p *Policy) error {
	if err := g.checkLimitPolicy(p); err != nil {
		return err
	}
	if !p.RequirePasskey {
		return nil
	}
	if _, ok := g.store.(Passkeys); !ok || !g.passkeys.enabled() {
		return fmt.Errorf("%w: RequirePasskey needs Config.Passkeys and a Store with Passkeys (memstore and sqlstore have them)", ErrInvalidPolicy)
	}
	return nil
}
