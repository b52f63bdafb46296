package approval

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/signoff/approval/internal/host"
)

// A request whose quorum no set of people could meet (five approvals from a
// group of two, a group the directory does not know, named users who are
// all the requester) would sit pending until it timed out. Guard detects it
// when it would create the request, and records the request as denied at
// once instead, with the reason. Every approver the policy could ever admit
// counts, escalation levels included, so the check never refuses a quorum
// that escalation could meet. A directory error leaves the request pending
// (and is logged): decisions still fail closed, so nothing is approved that
// should not be.

// quorumShortfall returns why req's quorum cannot be met, or "" if it can.
// Every level that applies is checked: each must be meetable by its own
// approvers and those its escalation steps could add.
func (g *Gate) quorumShortfall(ctx context.Context, req *Request) (string, error) {
	if req.DistinctApprovers && len(req.Policies) > 1 && !hasChain(req) {
		return g.distinctShortfall(ctx, req)
	}
	for i := range req.Policies {
		p := &req.Policies[i]
		for li := range levelCount(p) {
			if p.skipped(li) {
				continue
			}
			l := levelAt(p, li)
			reason, err := g.levelShortfall(ctx, req, p, &l, li)
			if reason != "" || err != nil {
				return reason, err
			}
		}
	}
	return "", nil
}

// levelShortfall returns why level l (index li) of p can never be met, or "".
func (g *Gate) levelShortfall(ctx context.Context, req *Request, p *MatchedPolicy, l *Level, li int) (string, error) {
	var extra []Approver
	for _, s := range l.Escalation {
		if s.Action == StepEscalate || s.Action == StepReassign {
			extra = append(extra, s.To...)
		}
	}
	var first string
	for u, end := units(l); u < end; u++ {
		as := l.Approvers
		if u >= 0 {
			as = l.Groups[u].Approvers
		}
		need := max(unitRequire(l, u).Count(), 1)
		var buf [8]string
		people, err := g.eligiblePeopleOf(ctx, req, as, need, buf[:0])
		if err == nil && len(people) < need {
			people, err = g.eligiblePeopleOf(ctx, req, extra, need, people)
		}
		if err != nil {
			return "", err
		}
		short := ""
		if len(people) < need {
			short = shortfall(p, l, li, u, need, len(people), req.SegregateRequester)
		}
		switch {
		case short == "" && u >= 0 && l.logic() == LogicOr:
			return "", nil // one group suffices
		case short != "" && (u < 0 || l.logic() == LogicAnd):
			return short, nil
		case short != "" && first == "":
			first = short
		}
	}
	return first, nil // with OR, every group fell short (or none did)
}

func shortfall(p *MatchedPolicy, l *Level, li, u, need, n int, segregated bool) string {
	who := "people can"
	if n == 1 {
		who = "person can"
	}
	approvals := "approvals"
	if need == 1 {
		approvals = "approval"
	}
	where := "policy " + p.Name
	if len(p.Chain) > 0 {
		where += " " + levelName(l, li)
	}
	if u >= 0 {
		where += " group " + l.Groups[u].Name
	}
	msg := fmt.Sprintf("quorum cannot be met: %s needs %d %s and %d %s give them", where, need, approvals, n, who)
	if segregated {
		msg += " (the requester may not)"
	}
	return msg
}

// eligiblePeople returns the distinct people who may approve under flat
// policy p, its escalation steps' approvers included (see
// eligiblePeopleOf).
func (g *Gate) eligiblePeople(ctx context.Context, req *Request, p *MatchedPolicy, need int, people []string) ([]string, error) {
	people, err := g.eligiblePeopleOf(ctx, req, p.Approvers, need, people)
	for _, s := range p.Escalation {
		if err != nil || (need > 0 && len(people) >= need) {
			break
		}
		if s.Action == StepEscalate || s.Action == StepReassign {
			people, err = g.eligiblePeopleOf(ctx, req, s.To, need, people)
		}
	}
	return people, err
}

// eligiblePeopleOf adds to people (the caller's buffer, so that the common
// case of a small quorum allocates nothing) the distinct people
// (canonical IDs) as names, other than a segregated requester, stopping
// once it has need of them (0: all).
func (g *Gate) eligiblePeopleOf(ctx context.Context, req *Request, as []Approver, need int, people []string) ([]string, error) {
	full := func() bool { return need > 0 && len(people) >= need }
	add := func(m string) {
		id, err := CanonicalID(m)
		if err != nil || (req.SegregateRequester && req.isRequester(id)) {
			return
		}
		if !slices.Contains(people, id) {
			people = append(people, id)
		}
	}
	for _, a := range as {
		if full() {
			return people, nil
		}
		if a.Kind == KindUser {
			add(a.Name)
			continue
		}
		if g.dir == nil {
			return nil, fmt.Errorf("approver %s needs a Directory", a)
		}
		ms, err := g.quorumMembers(ctx, a)
		if err != nil {
			return nil, fmt.Errorf("directory: %s: %w", a, err)
		}
		for _, m := range ms {
			if full() {
				return people, nil
			}
			add(m)
		}
	}
	return people, nil
}

// distinctShortfall checks the quorum when each person counts toward one
// policy only: every policy's seats must be filled by different people, a
// bipartite matching of seats to people (augmenting paths; seats are few).
func (g *Gate) distinctShortfall(ctx context.Context, req *Request) (string, error) {
	var seats []int // the policy index of each seat
	eligible := make([][]string, len(req.Policies))
	for i := range req.Policies {
		p := &req.Policies[i]
		people, err := g.eligiblePeople(ctx, req, p, 0, nil)
		if err != nil {
			return "", err
		}
		if len(people) < p.RequiredApprovals {
			l := levelAt(p, 0)
			return shortfall(p, &l, 0, -1, p.RequiredApprovals, len(people), req.SegregateRequester), nil
		}
		eligible[i] = people
		for range p.RequiredApprovals {
			seats = append(seats, i)
		}
	}
	holder := map[string]int{} // person -> seat
	var try func(s int, visited map[string]bool) bool
	try = func(s int, visited map[string]bool) bool {
		for _, person := range eligible[seats[s]] {
			if visited[person] {
				continue
			}
			visited[person] = true
			if h, taken := holder[person]; !taken || try(h, visited) {
				holder[person] = s
				return true
			}
		}
		return false
	}
	for s := range seats {
		if !try(s, map[string]bool{}) {
			p := &req.Policies[seats[s]]
			return fmt.Sprintf("quorum cannot be met: with each approver counted once, no one is left for policy %s's approvals", p.Name), nil
		}
	}
	return "", nil
}

// quorumCheckTimeout bounds one Directory.Members call of the quorum check:
// Guard waits for it, so a directory that hangs must not hold Guard long.
const quorumCheckTimeout = 2 * time.Second

// quorumPause is how long the quorum check skips the directory after a
// call that ran out of time, so that a hanging directory costs one Guard
// quorumCheckTimeout, not every Guard.
const quorumPause = time.Minute

// quorumMembers resolves a for the quorum check, through host.Call: a panic
// is an error, and a call that outlives quorumCheckTimeout is abandoned.
// StaticDirectory, which can neither hang nor panic, is called inline.
func (g *Gate) quorumMembers(ctx context.Context, a Approver) ([]string, error) {
	if d, ok := g.dir.(StaticDirectory); ok {
		return d.lookup(a), nil
	}
	now := g.now()
	if until, _ := g.quorumSkip.Load().(time.Time); now.Before(until) {
		return nil, fmt.Errorf("directory timed out on an earlier quorum check; skipped until %s", until.UTC().Format(time.RFC3339))
	}
	ctx, cancel := context.WithTimeout(ctx, quorumCheckTimeout)
	defer cancel()
	ms, err := host.Call(g.dirHost, ctx, "Members", func(ctx context.Context) ([]string, error) {
		return g.dir.Members(ctx, a)
	})
	if err != nil && host.TimedOut(err) {
		g.quorumSkip.Store(now.Add(quorumPause))
	}
	return ms, err
}
