package approval

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// LevelProgress is where a request stands in one matched policy's chain.
// The gate keeps it on MatchedPolicy; stores keep it with the request.
type LevelProgress struct {
	// Level is the current level, from 0; the number of levels once the
	// policy is met.
	Level int `json:"level,omitempty"`
	// Since is when the current level opened: its Timeout and its
	// escalation steps count from then.
	Since time.Time `json:"since,omitzero"`
	// Steps counts the current level's escalation steps run so far.
	Steps int `json:"steps,omitempty"`
	// Added are the approvers escalation steps added to the current level.
	Added []Approver `json:"added,omitempty"`
	// Assigned, when Reassigned, replaces the current level's approvers.
	Assigned []Approver `json:"assigned,omitempty"`
	// Reassigned is set once a step reassigned the current level.
	Reassigned bool `json:"reassigned,omitempty"`
	// Members are, for a RequireAll level (or each RequireAll group,
	// by group index; index 0 for a level without groups), the people it
	// resolved to when it opened. Nil until resolved.
	Members [][]string `json:"members,omitempty"`
	// Widened is set once a step escalated or reassigned the level: a
	// RequireAll unit then needs as many approvals as it has members.
	Widened bool `json:"widened,omitempty"`
	// People are who may decide at the current level, as its approvers
	// resolved (named users, the members of its groups and roles, those
	// steps added) when it opened or a step changed them: canonical IDs,
	// sorted. They make up Request.Deciders, the inbox's index; Decide
	// asks the Directory itself. Nil until resolved.
	People []string `json:"people,omitempty"`
}

func (lp LevelProgress) clone() LevelProgress {
	lp.Added = slices.Clone(lp.Added)
	lp.Assigned = slices.Clone(lp.Assigned)
	// People are copied by Request.Clone, into one array with Deciders.
	if lp.Members != nil {
		ms := make([][]string, len(lp.Members))
		for i, m := range lp.Members {
			ms[i] = slices.Clone(m)
		}
		lp.Members = ms
	}
	return lp
}

// VoteCount says what a vote counts toward in one matched policy.
type VoteCount struct {
	// Policy is the matched policy's name.
	Policy string `json:"policy"`
	// Level is the policy's level that was current when the vote was cast.
	Level int `json:"level"`
	// Groups are the parallel groups of that level the voter belonged to.
	Groups []int `json:"groups,omitempty"`
}

// countFor returns what v counts toward in policy name.
func (v *Vote) countFor(name string) (VoteCount, bool) {
	if v.Counts == nil {
		// A vote on a request of flat policies: level 0 of each it names.
		return VoteCount{Policy: name}, slices.Contains(v.Policies, name)
	}
	for _, c := range v.Counts {
		if c.Policy == name {
			return c, true
		}
	}
	return VoteCount{}, false
}

// hasChain reports whether any of r's policies has a chain.
func hasChain(r *Request) bool {
	for i := range r.Policies {
		if len(r.Policies[i].Chain) > 0 {
			return true
		}
	}
	return false
}

// policyMet reports whether policy p of r is met: its one level, for a
// flat policy; every level skipped, met or passed, for a chain.
func policyMet(r *Request, p *MatchedPolicy) bool {
	if len(p.Chain) == 0 {
		return levelMet(r, p) // true too once a step passed it
	}
	return p.Progress.Level >= len(p.Chain)
}

// currentLevel returns p's current level and its index, or false once a
// chain is done. A flat policy's one level is current while its request
// is open.
func (p *MatchedPolicy) currentLevel() (Level, int, bool) {
	n := levelCount(p)
	if p.Progress.Level >= n {
		return Level{}, n, false
	}
	return levelAt(p, p.Progress.Level), p.Progress.Level, true
}

// skipped reports whether level i of p was skipped by its condition.
func (p *MatchedPolicy) skipped(i int) bool { return slices.Contains(p.Skipped, i) }

// unitApprovers returns who may decide in unit grp (-1: the level itself)
// of p's current level l, besides the approvers steps added.
func (p *MatchedPolicy) unitApprovers(l *Level, grp int) []Approver {
	if grp >= 0 {
		return l.Groups[grp].Approvers
	}
	if p.Progress.Reassigned {
		return p.Progress.Assigned
	}
	return l.Approvers
}

func unitRequire(l *Level, grp int) Requirement {
	if grp >= 0 {
		return l.Groups[grp].Require
	}
	return l.Require
}

// members returns the frozen members of unit grp, nil if unresolved.
func (p *MatchedPolicy) members(grp int) []string {
	i := max(grp, 0)
	if i < len(p.Progress.Members) {
		return p.Progress.Members[i]
	}
	return nil
}

// units returns the unit indices of level l, [from, to): -1 alone, or
// each group.
func units(l *Level) (from, to int) {
	if len(l.Groups) == 0 {
		return -1, 0
	}
	return 0, len(l.Groups)
}

// unitMet reports whether unit grp of policy p's current level l is met
// by the approvals on r.
func unitMet(r *Request, p *MatchedPolicy, l *Level, grp int) bool {
	approvedBy := func(v *Vote) bool {
		if v.Verdict != VerdictApprove {
			return false
		}
		c, ok := v.countFor(p.Name)
		return ok && c.Level == p.Progress.Level && (grp < 0 || slices.Contains(c.Groups, grp))
	}
	n := 0
	for i := range r.Votes {
		if approvedBy(&r.Votes[i]) {
			n++
		}
	}
	req := unitRequire(l, grp)
	if !req.IsAll() {
		return n >= req.Count()
	}
	members := p.members(grp)
	if len(members) == 0 {
		return false // unresolved, or nobody: never met by default
	}
	if p.Progress.Widened {
		return n >= len(members)
	}
	for _, m := range members {
		v, ok := r.decidedBy(m)
		if !ok || !approvedBy(&v) {
			return false
		}
	}
	return true
}

// levelMet reports whether p's current level is met.
func levelMet(r *Request, p *MatchedPolicy) bool {
	l, _, ok := p.currentLevel()
	if !ok {
		return true
	}
	if len(l.Groups) == 0 {
		return unitMet(r, p, &l, -1)
	}
	for j := range l.Groups {
		met := unitMet(r, p, &l, j)
		if met && l.logic() == LogicOr {
			return true
		}
		if !met && l.logic() == LogicAnd {
			return false
		}
	}
	return l.logic() == LogicAnd
}

// openLevel makes level lvl of policy pi current at now: fresh progress,
// and the members of its RequireAll units resolved if the directory
// answers (if not, they are resolved at the first decision).
func (g *Gate) openLevel(ctx context.Context, r *Request, pi, lvl int, now time.Time) {
	p := &r.Policies[pi]
	p.Progress = LevelProgress{Level: lvl, Since: now}
	if lvl >= levelCount(p) || p.skipped(lvl) {
		return
	}
	if err := g.resolveMembers(ctx, r, pi); err != nil {
		g.log.Warn("approval: could not resolve the members of a level requiring all; resolved at the first decision",
			"request", r.ID, "policy", p.Name, "level", lvl+1, "err", err)
	}
}

// resolveMembers records the members of the RequireAll units of policy
// pi's current level that have none yet.
func (g *Gate) resolveMembers(ctx context.Context, r *Request, pi int) error {
	p := &r.Policies[pi]
	l, _, ok := p.currentLevel()
	if !ok {
		return nil
	}
	for u, end := units(&l); u < end; u++ {
		if !unitRequire(&l, u).IsAll() || p.members(u) != nil {
			continue
		}
		var people []string
		people, err := g.eligiblePeopleOf(ctx, r, p.unitApprovers(&l, u), 0, people)
		if err != nil {
			return err
		}
		if people == nil {
			people = []string{}
		}
		i := max(u, 0)
		for len(p.Progress.Members) <= i {
			p.Progress.Members = append(p.Progress.Members, nil)
		}
		p.Progress.Members[i] = people
	}
	return nil
}

// needsMembers reports whether a current level of r requires all and
// has no members recorded yet.
func needsMembers(r *Request) bool {
	for i := range r.Policies {
		p := &r.Policies[i]
		l, _, ok := p.currentLevel()
		if !ok {
			continue
		}
		for u, end := units(&l); u < end; u++ {
			if unitRequire(&l, u).IsAll() && p.members(u) == nil {
				return true
			}
		}
	}
	return false
}

// resolveAllMembers is resolveMembers for every policy of r; an error
// wraps errResolveApprovers.
func (g *Gate) resolveAllMembers(ctx context.Context, r *Request) error {
	for i := range r.Policies {
		if err := g.resolveMembers(ctx, r, i); err != nil {
			return fmt.Errorf("%w: %w", errResolveApprovers, err)
		}
	}
	return nil
}

// settle moves every policy of r past the levels that are skipped or met,
// opening the next, and returns the audit events of the transitions and
// the indices of the policies that opened a level a person must decide.
func (g *Gate) settle(ctx context.Context, r *Request, actor string, now time.Time) ([]AuditEvent, []int) {
	if r.DistinctApprovers && !hasChain(r) {
		return nil, nil // counted by quorumDistinct (outcome)
	}
	var events []AuditEvent
	var opened []int
	for pi := range r.Policies {
		p := &r.Policies[pi]
		if len(p.Chain) == 0 {
			continue // one level, met or not: policyMet asks it
		}
		ls := p.Chain
		moved := false
		for p.Progress.Level < len(ls) {
			lvl := p.Progress.Level
			var reason string
			typ := EventLevelPassed
			switch {
			case p.skipped(lvl):
				typ, reason = EventLevelSkipped, "condition not met"
			case levelMet(r, p):
				reason = "met"
			}
			if reason == "" {
				break
			}
			events = append(events, g.levelEvent(r, pi, typ, actor, fmt.Sprintf("%s: %s", levelName(&ls[lvl], lvl), reason), now))
			g.openLevel(ctx, r, pi, lvl+1, now)
			moved = true
		}
		if moved && p.Progress.Level < len(ls) {
			opened = append(opened, pi)
			events = append(events, g.levelEvent(r, pi, EventLevelOpened, SystemActor, levelName(&ls[p.Progress.Level], p.Progress.Level), now))
		}
	}
	return events, opened
}

// levelEvent is an audit event about a level of policy pi of r.
func (g *Gate) levelEvent(r *Request, pi int, typ EventType, actor, what string, now time.Time) AuditEvent {
	p := &r.Policies[pi]
	return AuditEvent{RequestID: r.ID, Type: typ, Actor: actor, Policies: []PolicyRef{{Name: p.Name, Hash: p.Hash}},
		Reason: auditSafe("policy "+p.Name+": "+what, maxReasonBytes), At: now}
}

// allMet reports whether every policy of r is met.
func allMet(r *Request) bool {
	for i := range r.Policies {
		if !policyMet(r, &r.Policies[i]) {
			return false
		}
	}
	return true
}

// eligibleAt reports whether user may decide at policy p's current level,
// and in which of its parallel groups.
func (g *Gate) eligibleAt(ctx context.Context, p *MatchedPolicy, user string) (bool, []int, error) {
	l, _, ok := p.currentLevel()
	if !ok {
		return false, nil, nil
	}
	var groups []int
	eligible := false
	for u, end := units(&l); u < end; u++ {
		in, err := g.inUnit(ctx, p, &l, u, user)
		if err != nil {
			return false, nil, err
		}
		if in {
			eligible = true
			if u >= 0 {
				groups = append(groups, u)
			}
		}
	}
	return eligible, groups, nil
}

// inUnit reports whether user may decide in unit u of p's current level l:
// a member, for a RequireAll unit with members; otherwise one of the
// unit's approvers; or one a step added.
func (g *Gate) inUnit(ctx context.Context, p *MatchedPolicy, l *Level, u int, user string) (bool, error) {
	if members := p.members(u); unitRequire(l, u).IsAll() && members != nil {
		if slices.ContainsFunc(members, func(m string) bool { return sameID(m, user) }) {
			return true, nil
		}
	} else {
		ok, err := g.isApprover(ctx, p.unitApprovers(l, u), user)
		if ok || err != nil {
			return ok, err
		}
	}
	if u >= 0 || len(p.Progress.Added) == 0 {
		return false, nil
	}
	return g.isApprover(ctx, p.Progress.Added, user)
}

// PolicyStanding says where one matched policy of a request stands: the
// progress a reviewer is shown ("1 of 2 from group:finance; bob
// approved"). It is computed from the request alone (Request.Standing).
type PolicyStanding struct {
	// Policy is the matched policy's name.
	Policy string `json:"policy"`
	// Level is the current level, from 0; it equals Levels once the policy
	// is met.
	Level int `json:"level"`
	// Levels is how many levels the policy has (1 for a flat policy).
	Levels int `json:"levels"`
	// LevelName is the current level's name, if it has one.
	LevelName string `json:"level_name,omitempty"`
	// Met is set once the policy's every level is met.
	Met bool `json:"met"`
	// Refuses is set for a policy that needs no approvals because it
	// refuses the action (a deny policy).
	Refuses bool `json:"refuses,omitempty"`
	// Logic says how the current level's groups combine, when it has
	// parallel groups.
	Logic GroupLogic `json:"logic,omitempty"`
	// Units are the current level's parts: one for a level without
	// parallel groups, else one per group; nil once the policy is met.
	Units []UnitStanding `json:"units,omitempty"`
	// ApprovedBy are the people whose approvals count toward the policy,
	// at any level, in vote order.
	ApprovedBy []string `json:"approved_by,omitempty"`
}

// UnitStanding is the standing of one level, or one parallel group of it.
type UnitStanding struct {
	// Group is the parallel group's name; empty for a level without
	// groups.
	Group string `json:"group,omitempty"`
	// Approvers are who may approve in the unit, escalation's additions
	// and reassignments included.
	Approvers []Approver `json:"approvers"`
	// Need is how many approvals the unit needs. For a unit that needs
	// all (All), it is the number of people it resolved to when the
	// level opened, 0 while they are not resolved.
	Need int `json:"need"`
	// All is set for a unit that needs every one of its people.
	All bool `json:"all,omitempty"`
	// ApprovedBy are the people whose approvals count toward the unit, in
	// vote order.
	ApprovedBy []string `json:"approved_by,omitempty"`
	// Met is set once the unit has its approvals.
	Met bool `json:"met"`
}

// Standing returns where each of r's matched policies stands, in policy
// order.
func (r *Request) Standing() []PolicyStanding {
	out := make([]PolicyStanding, len(r.Policies))
	for i := range r.Policies {
		p := &r.Policies[i]
		s := PolicyStanding{Policy: p.Name, Level: p.Progress.Level, Levels: levelCount(p)}
		for j := range r.Votes {
			if v := &r.Votes[j]; v.Verdict == VerdictApprove {
				if _, ok := v.countFor(p.Name); ok {
					s.ApprovedBy = append(s.ApprovedBy, voter(v))
				}
			}
		}
		if len(p.Chain) == 0 && p.RequiredApprovals == 0 {
			s.Refuses = true
			out[i] = s
			continue
		}
		s.Met = policyMet(r, p)
		l, li, ok := p.currentLevel()
		if !ok || (s.Met && len(p.Chain) == 0) {
			s.Level = s.Levels
			out[i] = s
			continue
		}
		s.LevelName = l.Name
		if len(l.Groups) > 0 {
			s.Logic = l.logic()
		}
		from, to := units(&l)
		for u := from; u < to; u++ {
			us := UnitStanding{Approvers: p.unitApprovers(&l, u)}
			if u >= 0 {
				us.Group = l.Groups[u].Name
			} else if len(p.Progress.Added) > 0 {
				us.Approvers = append(slices.Clip(us.Approvers), p.Progress.Added...)
			}
			req := unitRequire(&l, u)
			if req.IsAll() {
				us.All, us.Need = true, len(p.members(u))
			} else {
				us.Need = req.Count()
			}
			for j := range r.Votes {
				v := &r.Votes[j]
				if v.Verdict != VerdictApprove {
					continue
				}
				if c, ok := v.countFor(p.Name); ok && c.Level == li && (u < 0 || slices.Contains(c.Groups, u)) {
					us.ApprovedBy = append(us.ApprovedBy, voter(v))
				}
			}
			us.Met = unitMet(r, p, &l, u)
			s.Units = append(s.Units, us)
		}
		out[i] = s
	}
	return out
}

// voter names who cast v: the approver, or "delegate for approver".
func voter(v *Vote) string {
	if v.OnBehalfOf != "" {
		return v.Approver + " for " + v.OnBehalfOf
	}
	return v.Approver
}
