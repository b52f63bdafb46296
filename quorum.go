package approval

import (
	"context"
	"fmt"
	"slices"
	"time"
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
func (g *Gate) quorumShortfall(ctx context.Context, req *Request) (string, error) {
	if req.DistinctApprovers && len(req.Policies) > 1 {
		return g.distinctShortfall(ctx, req)
	}
	for i := range req.Policies {
		p := &req.Policies[i]
		var buf [8]string
		people, err := g.eligiblePeople(ctx, req, p, p.RequiredApprovals, buf[:0])
		if err != nil {
			return "", err
		}
		if len(people) < p.RequiredApprovals {
			return shortfall(p, len(people), req.SegregateRequester), nil
		}
	}
	return "", nil
}

func shortfall(p *MatchedPolicy, n int, segregated bool) string {
	who := "people can"
	if n == 1 {
		who = "person can"
	}
	approvals := "approvals"
	if p.RequiredApprovals == 1 {
		approvals = "approval"
	}
	msg := fmt.Sprintf("quorum cannot be met: policy %s needs %d %s and %d %s give them", p.Name, p.RequiredApprovals, approvals, n, who)
	if segregated {
		msg += " (the requester may not)"
	}
	return msg
}

// eligiblePeople returns the distinct people (canonical IDs) who may
// approve under p, other than a segregated requester, stopping once it has
// need of them (0: all), every escalation level included. It appends
// them to people (the caller's buffer, so that the common case of a small
// quorum allocates nothing).
func (g *Gate) eligiblePeople(ctx context.Context, req *Request, p *MatchedPolicy, need int, people []string) ([]string, error) {
	var seen map[string]bool // for all of them; a few are looked through
	if need == 0 {
		seen = map[string]bool{}
	}
	add := func(m string) bool {
		id, err := CanonicalID(m)
		if err != nil || (req.SegregateRequester && sameID(id, req.Action.RequestedBy)) {
			return false
		}
		if seen != nil {
			if !seen[id] {
				seen[id] = true
				people = append(people, id)
			}
			return false
		}
		if !slices.Contains(people, id) {
			people = append(people, id)
		}
		return len(people) >= need
	}
	for lvl := -1; lvl < len(p.Escalation); lvl++ {
		as := p.Approvers
		if lvl >= 0 {
			as = p.Escalation[lvl]
		}
		for _, a := range as {
			if a.Kind == KindUser {
				if add(a.Name) {
					return people, nil
				}
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
				if add(m) {
					return people, nil
				}
			}
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
			return shortfall(p, len(people), req.SegregateRequester), nil
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

// quorumMembers resolves a for the quorum check, through callHost: a panic
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
	ms, err := callHost(g.dirHost, ctx, "Members", func(ctx context.Context) ([]string, error) {
		return g.dir.Members(ctx, a)
	})
	if err != nil && timedOut(err) {
		g.quorumSkip.Store(now.Add(quorumPause))
	}
	return ms, err
}
