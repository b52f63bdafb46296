package approval

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/signoff/approval/internal/canon"
	"github.com/signoff/approval/internal/text"
)

// The level engine: levels.go holds a policy's levels (Level,
// Requirement, parallel groups) and their validation and canonical form;
// levels_progress.go where a request stands in them and when a level is
// met; levels_escalation.go the escalation steps and level timeouts;
// levels_quorum.go whether a quorum can be met at all.
//
// A policy's approvals come in levels (Policy.Chain): level 1 must be met
// before level 2 opens, and so on; the policy is met when its last level
// is. Only the current level's approvers may decide and are notified. A
// policy without a Chain is one level: its Approvers, needing
// RequiredApprovals of them.

// Requirement says how many of a level's (or a parallel group's)
// approvers must approve. The zero value is RequireAny.
type Requirement struct {
	kind requireKind
	n    int
}

type requireKind uint8

const (
	requireAny requireKind = iota
	requireAll
	requireThreshold
)

// Requirements.
var (
	// RequireAny is met by one approval.
	RequireAny = Requirement{}
	// RequireAll is met when every member approved: the people the
	// level's approvers resolve to when the level opens (see Level).
	RequireAll = Requirement{kind: requireAll}
)

// Threshold is met by n approvals from distinct approvers.
func Threshold(n int) Requirement { return Requirement{kind: requireThreshold, n: n} }

// IsAll reports whether r is RequireAll.
func (r Requirement) IsAll() bool { return r.kind == requireAll }

// Count returns how many approvals r needs: 1 for RequireAny, n for
// Threshold(n), 0 for RequireAll (which depends on the members).
func (r Requirement) Count() int {
	switch r.kind {
	case requireAny:
		return 1
	case requireThreshold:
		return r.n
	}
	return 0
}

// String returns "any", "all" or "threshold(n)", the form MarshalText
// writes and policy files use.
func (r Requirement) String() string {
	switch r.kind {
	case requireAll:
		return "all"
	case requireThreshold:
		return "threshold(" + strconv.Itoa(r.n) + ")"
	}
	return "any"
}

// MarshalText implements encoding.TextMarshaler.
func (r Requirement) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler: "any", "all" or
// "threshold(n)".
func (r *Requirement) UnmarshalText(b []byte) error {
	s := string(b)
	switch {
	case s == "any" || s == "":
		*r = RequireAny
	case s == "all":
		*r = RequireAll
	case strings.HasPrefix(s, "threshold(") && strings.HasSuffix(s, ")"):
		n, err := strconv.Atoi(s[len("threshold(") : len(s)-1])
		if err != nil || n < 1 {
			return fmt.Errorf("%w: requirement %q: the threshold must be a whole number of at least 1", ErrInvalidPolicy, text.Clip(s, 32))
		}
		*r = Threshold(n)
	default:
		return fmt.Errorf("%w: unknown requirement %q (want any, all or threshold(n))", ErrInvalidPolicy, text.Clip(s, 32))
	}
	return nil
}

// GroupLogic combines the parallel groups of a level.
type GroupLogic string

// Group logics. The empty GroupLogic is LogicAnd.
const (
	// LogicAnd: every group must be met.
	LogicAnd GroupLogic = "and"
	// LogicOr: one group met is enough.
	LogicOr GroupLogic = "or"
)

// Level is one step of an approval chain.
//
// A level has either Approvers and Require, or Groups (parallel groups,
// each with its own approvers and requirement) combined by Logic. When
// RequireAll, the members are the people the approvers resolve to when
// the level opens; they are recorded on the request and stay the members:
// someone who joins a group later is not asked (and may not decide at that
// level), someone who leaves it is still asked. If the directory fails when
// the level opens, the members are resolved at the first decision instead
// (a failure then refuses the decision: fail closed).
type Level struct {
	// Name labels the level for reviewers and the audit trail ("Team Lead
	// Review"). Defaults to "level N".
	Name string `json:"name,omitempty"`
	// Approvers may decide at this level.
	Approvers []Approver `json:"approvers,omitempty"`
	// Require says how many of Approvers must approve.
	Require Requirement `json:"require"`
	// Groups are parallel groups, instead of Approvers: each is met by its
	// own requirement. A person in several groups counts in each.
	Groups []ParallelGroup `json:"groups,omitempty"`
	// Logic says how the groups combine: every one (LogicAnd, the
	// default) or any one (LogicOr).
	Logic GroupLogic `json:"logic,omitempty"`
	// When makes the level conditional: it is skipped (audited) for an
	// action When does not match. Evaluated once, when the request is
	// created (an action does not change); a matcher error applies the
	// level (fail closed). Nil: always.
	When Matcher `json:"-"`
	// Timeout bounds how long the level may stay current. When it passes,
	// the policy's OnTimeout applies to the level: TimeoutDeny times the
	// request out, TimeoutApprove passes the level (audited) and opens the
	// next. Zero: only the request's Timeout applies.
	Timeout time.Duration `json:"timeout,omitempty"`
	// Escalation lists the steps run while the level is current, each
	// After that long since the level opened (see EscalationStep).
	Escalation []EscalationStep `json:"escalation,omitempty"`
}

// ParallelGroup is one of a level's parallel groups.
type ParallelGroup struct {
	// Name labels the group ("engineering"). Required, unique in the level.
	Name string `json:"name"`
	// Approvers may decide in the group.
	Approvers []Approver `json:"approvers"`
	// Require says how many of them must approve for the group to be met.
	Require Requirement `json:"require"`
}

// EscalationAction is what an escalation step does.
type EscalationAction string

// Escalation actions.
const (
	// StepReminder reminds the current approvers who have not answered
	// (approval.reminder; audited request.reminded).
	StepReminder EscalationAction = "reminder"
	// StepEscalate adds To to the level's approvers, keeping the others,
	// and notifies them (approval.escalated; request.escalated). At a
	// RequireAll level, from then on an approval by anyone eligible
	// stands in for a member who has not answered: the level needs as many
	// approvals as it has members.
	StepEscalate EscalationAction = "escalate"
	// StepReassign replaces the level's approvers with To and notifies
	// them (approval.requested; request.reassigned). Votes already cast
	// at the level stay counted: they were decisions of people eligible
	// when they made them. The replaced approvers may no longer decide. At
	// a RequireAll level, To's members become the members.
	StepReassign EscalationAction = "reassign"
	// StepNotify alerts To without changing who may decide
	// (approval.alert, without decision links; request.alerted).
	StepNotify EscalationAction = "notify"
	// StepAutoApprove passes the policy: this level and the ones after it
	// (request.level_passed). The request is approved if its other
	// matched policies are met too: one policy's step cannot approve past
	// another policy.
	StepAutoApprove EscalationAction = "auto_approve"
	// StepAutoDeny denies the request (request.denied, held like a
	// person's denial).
	StepAutoDeny EscalationAction = "auto_deny"
)

// EscalationStep is something the gate does (Tick runs it) when a level
// has been current for After (or its request's deadline is Before away)
// and the request is still open. Each step runs once per request, even
// when several gates tick one store at once, and is audited. Steps run in
// their order, each once its time has come; a level that is passed before
// a step is due never runs it.
type EscalationStep struct {
	// After is how long after the level opened the step runs. One of
	// After and Before is required.
	After time.Duration `json:"after,omitempty"`
	// Before, instead of After, is how long before the request's deadline
	// the step runs (so a moved deadline moves the step).
	Before time.Duration `json:"before,omitempty"`
	// Action is what the step does. Required.
	Action EscalationAction `json:"action"`
	// To are the approvers StepEscalate adds, StepReassign assigns and
	// StepNotify alerts. Required for those; refused for the others.
	To []Approver `json:"to,omitempty"`
	// Channels restricts the step's notifications to the named channels
	// (Channel.Name). Defaults to every channel but the Pagers: a Pager
	// gets a step's notice, once, only when named here (see Pager).
	Channels []string `json:"channels,omitempty"`
	// Reason is recorded in the audit trail and shown to the notified.
	Reason string `json:"reason,omitempty"`
}

// levelCount returns how many levels p has: its Chain's, or the one of a
// flat policy.
func levelCount(p *MatchedPolicy) int {
	if len(p.Chain) > 0 {
		return len(p.Chain)
	}
	return 1
}

// levelAt returns level i of p (i < levelCount(p)): a copy, built for a
// flat policy, so that nothing allocates.
func levelAt(p *MatchedPolicy, i int) Level {
	if len(p.Chain) > 0 {
		return p.Chain[i]
	}
	return Level{Approvers: p.Approvers, Require: Threshold(p.RequiredApprovals), Escalation: p.Escalation}
}

// levelName returns level i's name for messages.
func levelName(l *Level, i int) string {
	if l.Name != "" {
		return fmt.Sprintf("level %d (%s)", i+1, l.Name)
	}
	return fmt.Sprintf("level %d", i+1)
}

// maxChainLevels and maxSteps bound a policy's chain, so that a policy
// file cannot make every request carry an unbounded snapshot.
const (
	maxChainLevels = 32
	maxSteps       = 32
	maxGroups      = 16
)

// validateChain checks p's chain and escalation steps, rewriting user IDs
// to canonical form in place (p's slices are the caller's copies). check
// validates one approver list.
func validateChain(p *Policy, check func([]Approver) error, bad func(string, ...any) error) error {
	if len(p.Chain) == 0 {
		return validateSteps(p.Escalation, "Escalation", check, bad)
	}
	if len(p.Approvers) > 0 || p.RequiredApprovals != 0 {
		return bad("a policy has either a Chain or Approvers and RequiredApprovals, not both")
	}
	if len(p.Escalation) > 0 {
		return bad("with a Chain, escalation steps belong to its levels (Level.Escalation)")
	}
	if len(p.Chain) > maxChainLevels {
		return bad("Chain has %d levels, at most %d", len(p.Chain), maxChainLevels)
	}
	for i := range p.Chain {
		l := &p.Chain[i]
		at := fmt.Sprintf("Chain[%d]", i)
		if err := checkLabel(l.Name); err != nil {
			return bad("%s.Name: %v", at, err)
		}
		if l.Timeout < 0 {
			return bad("%s.Timeout is negative", at)
		}
		if l.When != nil {
			if err := l.When.check(); err != nil {
				return bad("%s.When: %v", at, err)
			}
		}
		switch {
		case len(l.Groups) > 0 && len(l.Approvers) > 0:
			return bad("%s has both Approvers and Groups", at)
		case len(l.Groups) > 0:
			if l.Require != RequireAny {
				return bad("%s: with Groups, each group has its Require, the level none", at)
			}
			if l.Logic != "" && l.Logic != LogicAnd && l.Logic != LogicOr {
				return bad("%s.Logic %q (want and or or)", at, text.Clip(string(l.Logic), 16))
			}
			if len(l.Groups) > maxGroups {
				return bad("%s has %d groups, at most %d", at, len(l.Groups), maxGroups)
			}
			for j := range l.Groups {
				gr := &l.Groups[j]
				gat := fmt.Sprintf("%s.Groups[%d]", at, j)
				if gr.Name == "" {
					return bad("%s.Name is empty", gat)
				}
				if err := checkLabel(gr.Name); err != nil {
					return bad("%s.Name: %v", gat, err)
				}
				for k := range j {
					if l.Groups[k].Name == gr.Name {
						return bad("%s.Name %q is also Groups[%d]'s", gat, gr.Name, k)
					}
				}
				if err := checkUnit(gr.Approvers, gr.Require, gat, check, bad); err != nil {
					return err
				}
			}
		default:
			if l.Logic != "" {
				return bad("%s.Logic is for Groups", at)
			}
			if err := checkUnit(l.Approvers, l.Require, at, check, bad); err != nil {
				return err
			}
		}
		if err := validateSteps(l.Escalation, at+".Escalation", check, bad); err != nil {
			return err
		}
		if len(l.Groups) > 0 {
			for j, s := range l.Escalation {
				if s.Action == StepEscalate || s.Action == StepReassign {
					return bad("%s.Escalation[%d]: %s changes a level's approvers, and a level of parallel groups has none of its own", at, j, s.Action)
				}
			}
		}
	}
	return nil
}

// checkUnit checks the approvers and requirement of a level or group.
func checkUnit(as []Approver, r Requirement, at string, check func([]Approver) error, bad func(string, ...any) error) error {
	if len(as) == 0 {
		return bad("%s has no Approvers", at)
	}
	if r.kind > requireThreshold || (r.kind == requireThreshold && r.n < 1) {
		return bad("%s.Require %s: a threshold must be at least 1", at, r)
	}
	if err := check(as); err != nil {
		return err
	}
	if r.kind == requireThreshold {
		users, onlyUsers := distinctUsers(as)
		if onlyUsers && users < r.n {
			return bad("%s: %d distinct named users can never reach %s", at, users, r)
		}
	}
	return nil
}

// distinctUsers counts the distinct users in as, and reports whether as
// names users only.
func distinctUsers(as []Approver) (int, bool) {
	seen := map[string]bool{}
	for _, a := range as {
		if a.Kind != KindUser {
			return len(seen), false
		}
		seen[a.Name] = true
	}
	return len(seen), true
}

func validateSteps(steps []EscalationStep, at string, check func([]Approver) error, bad func(string, ...any) error) error {
	if len(steps) > maxSteps {
		return bad("%s has %d steps, at most %d", at, len(steps), maxSteps)
	}
	for i := range steps {
		s := &steps[i]
		sat := fmt.Sprintf("%s[%d]", at, i)
		switch {
		case s.After < 0 || s.Before < 0:
			return bad("%s: After and Before must be positive", sat)
		case (s.After == 0) == (s.Before == 0):
			return bad("%s needs one of After and Before", sat)
		}
		if i > 0 && s.After > 0 && s.After < steps[i-1].After {
			return bad("%s.After %s is before the step above's %s: list steps in order", sat, s.After, steps[i-1].After)
		}
		if i > 0 && s.Before > 0 && steps[i-1].Before > 0 && s.Before > steps[i-1].Before {
			return bad("%s.Before %s is earlier than the step above's %s: list steps in order", sat, s.Before, steps[i-1].Before)
		}
		switch s.Action {
		case StepEscalate, StepReassign, StepNotify:
			if len(s.To) == 0 {
				return bad("%s: %s needs To", sat, s.Action)
			}
			if err := check(s.To); err != nil {
				return err
			}
		case StepReminder, StepAutoApprove, StepAutoDeny:
			if len(s.To) > 0 {
				return bad("%s: %s takes no To", sat, s.Action)
			}
		default:
			return bad("%s.Action %q (want reminder, escalate, reassign, notify, auto_approve or auto_deny)", sat, text.Clip(string(s.Action), 32))
		}
		for _, c := range s.Channels {
			if c == "" || !utf8.ValidString(c) || len(c) > 64 {
				return bad("%s.Channels: a channel name is 1 to 64 bytes of UTF-8", sat)
			}
		}
		if err := checkLabel(s.Reason); err != nil {
			return bad("%s.Reason: %v", sat, err)
		}
	}
	return nil
}

// checkLabel checks a name or reason given in a policy.
func checkLabel(s string) error {
	if !utf8.ValidString(s) || len(s) > 1024 || strings.ContainsRune(s, 0) {
		return fmt.Errorf("must be UTF-8 text of at most 1 KiB")
	}
	return nil
}

// appendApprovers writes as in canonical form.
func appendApprovers(b []byte, as []Approver) []byte {
	b = append(b, '[')
	for i, a := range as {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		b = canon.AppendKey(b, "kind")
		b = canon.AppendString(b, string(a.Kind))
		b = append(b, ',')
		b = canon.AppendKey(b, "name")
		b = canon.AppendString(b, a.Name)
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendStepsCanonical writes steps in canonical form (keys in JCS order).
func appendStepsCanonical(b []byte, steps []EscalationStep) []byte {
	b = append(b, '[')
	for i, s := range steps {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		b = canon.AppendKey(b, "action")
		b = canon.AppendString(b, string(s.Action))
		b = append(b, ',')
		b = canon.AppendKey(b, "after")
		b = canon.AppendString(b, s.After.String())
		b = append(b, ',')
		if s.Before > 0 {
			b = canon.AppendKey(b, "before")
			b = canon.AppendString(b, s.Before.String())
			b = append(b, ',')
		}
		b = canon.AppendKey(b, "channels")
		b = canon.AppendStrings(b, s.Channels)
		b = append(b, ',')
		b = canon.AppendKey(b, "reason")
		b = canon.AppendString(b, s.Reason)
		b = append(b, ',')
		b = canon.AppendKey(b, "to")
		b = appendApprovers(b, s.To)
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendChainCanonical writes a chain in canonical form.
func appendChainCanonical(b []byte, chain []Level) ([]byte, error) {
	var err error
	b = append(b, '[')
	for i := range chain {
		l := &chain[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		b = canon.AppendKey(b, "approvers")
		b = appendApprovers(b, l.Approvers)
		b = append(b, ',')
		b = canon.AppendKey(b, "escalation")
		b = appendStepsCanonical(b, l.Escalation)
		b = append(b, ',')
		b = canon.AppendKey(b, "groups")
		b = append(b, '[')
		for j, gr := range l.Groups {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, '{')
			b = canon.AppendKey(b, "approvers")
			b = appendApprovers(b, gr.Approvers)
			b = append(b, ',')
			b = canon.AppendKey(b, "name")
			b = canon.AppendString(b, gr.Name)
			b = append(b, ',')
			b = canon.AppendKey(b, "require")
			b = canon.AppendString(b, gr.Require.String())
			b = append(b, '}')
		}
		b = append(b, ']', ',')
		b = canon.AppendKey(b, "logic")
		b = canon.AppendString(b, string(l.logic()))
		b = append(b, ',')
		b = canon.AppendKey(b, "name")
		b = canon.AppendString(b, l.Name)
		b = append(b, ',')
		b = canon.AppendKey(b, "require")
		b = canon.AppendString(b, l.Require.String())
		b = append(b, ',')
		b = canon.AppendKey(b, "timeout")
		b = canon.AppendString(b, l.Timeout.String())
		b = append(b, ',')
		b = canon.AppendKey(b, "when")
		if l.When == nil {
			b = append(b, "null"...)
		} else if b, err = l.When.appendCanonical(b); err != nil {
			return b, err
		}
		b = append(b, '}')
	}
	return append(b, ']'), nil
}

// logic returns l's group logic, LogicAnd when unset.
func (l *Level) logic() GroupLogic {
	if l.Logic == "" {
		return LogicAnd
	}
	return l.Logic
}

// cloneChain deep-copies a chain (matchers are immutable and shared).
func cloneChain(chain []Level) []Level {
	if chain == nil {
		return nil
	}
	out := make([]Level, len(chain))
	for i, l := range chain {
		l.Approvers = cloneSlice(l.Approvers)
		if l.Groups != nil {
			gs := make([]ParallelGroup, len(l.Groups))
			for j, gr := range l.Groups {
				gr.Approvers = cloneSlice(gr.Approvers)
				gs[j] = gr
			}
			l.Groups = gs
		}
		l.Escalation = cloneSteps(l.Escalation)
		out[i] = l
	}
	return out
}

func cloneSteps(steps []EscalationStep) []EscalationStep {
	if steps == nil {
		return nil
	}
	out := make([]EscalationStep, len(steps))
	for i, s := range steps {
		s.To = cloneSlice(s.To)
		s.Channels = cloneSlice(s.Channels)
		out[i] = s
	}
	return out
}

// cloneSlice is slices.Clone that keeps an empty slice nil.
func cloneSlice[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return append([]T(nil), s...)
}

// stepAt returns when step s of a level opened at since is due on r.
func stepAt(r *Request, since time.Time, s *EscalationStep) time.Time {
	if s.Before > 0 {
		if r.Deadline.IsZero() {
			return time.Time{} // no deadline: never
		}
		return r.Deadline.Add(-s.Before)
	}
	return since.Add(s.After)
}
