package approval

import (
	"context"
	"fmt"
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
		n, err := g.countEligible(ctx, req, p, p.RequiredApprovals, nil)
		if err != nil {
			return "", err
		}
		if n < p.RequiredApprovals {
			return shortfall(p, n, req.SegregateRequester), nil
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

// countEligible counts the distinct people who may approve under p, other
// than a segregated requester, stopping at need (0: count all). If collect
// is not nil, every one found is added to it.
func (g *Gate) countEligible(ctx context.Context, req *Request, p *MatchedPolicy, need int, collect map[string]bool) (int, error) {
	var small [8]string
	seen := small[:0]
	levels := append([][]Approver{p.Approvers}, p.Escalation...)
	for _, as := range levels {
		for _, a := range as {
			members := []string{a.Name}
			if a.Kind != KindUser {
				if g.dir == nil {
					return 0, fmt.Errorf("approver %s needs a Directory", a)
				}
				ms, err := g.quorumMembers(ctx, a)
				if err != nil {
					return 0, fmt.Errorf("directory: %s: %w", a, err)
				}
				members = ms
			}
			for _, m := range members {
				id, err := CanonicalID(m)
				if err != nil || (req.SegregateRequester && sameID(id, req.Action.RequestedBy)) {
					continue
				}
				if collect != nil {
					collect[id] = true
					continue
				}
				if !containsID(seen, id) {
					seen = append(seen, id)
					if need > 0 && len(seen) >= need {
						return len(seen), nil
					}
				}
			}
		}
	}
	if collect != nil {
		return len(collect), nil
	}
	return len(seen), nil
}

func containsID(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// distinctShortfall checks the quorum when each person counts toward one
// policy only: every policy's seats must be filled by different people, a
// bipartite matching of seats to people (augmenting paths; seats are few).
func (g *Gate) distinctShortfall(ctx context.Context, req *Request) (string, error) {
	var seats []int // the policy index of each seat
	eligible := make([]map[string]bool, len(req.Policies))
	for i := range req.Policies {
		p := &req.Policies[i]
		eligible[i] = map[string]bool{}
		n, err := g.countEligible(ctx, req, p, 0, eligible[i])
		if err != nil {
			return "", err
		}
		if n < p.RequiredApprovals {
			return shortfall(p, n, req.SegregateRequester), nil
		}
		for range p.RequiredApprovals {
			seats = append(seats, i)
		}
	}
	holder := map[string]int{} // person -> seat
	var try func(s int, visited map[string]bool) bool
	try = func(s int, visited map[string]bool) bool {
		for person := range eligible[seats[s]] {
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
