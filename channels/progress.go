package channels

import (
	"fmt"
	"strings"

	"github.com/signoff/approval"
)

// maxProgressShown bounds the policies and the votes a message lists;
// the review page shows the rest.
const maxProgressShown = 10

// progressLines says where n's request stands, one line per matched
// policy that needs approvals, in plain text for each channel to escape:
// "deploys: 1 of 2 approvals (alice)", "release, level 2 of 3 (security):
// 0 of 1 approvals", "pair: met (alice, bob)". Nil when n carries no
// progress. It is what the message tells the reader, never what a vote
// binds.
func progressLines(n approval.Notification) []string {
	var out []string
	shown := 0
	for _, s := range n.Progress {
		if s.Refuses {
			continue // a deny policy: the outcome says what it did
		}
		if shown == maxProgressShown {
			out = append(out, "and more (see the review page)")
			break
		}
		shown++
		head := s.Policy
		if s.Levels > 1 && s.Level < s.Levels {
			head += fmt.Sprintf(", level %d of %d", s.Level+1, s.Levels)
			if s.LevelName != "" {
				head += " (" + s.LevelName + ")"
			}
		}
		if s.Met || len(s.Units) == 0 {
			line := head + ": met"
			if len(s.ApprovedBy) > 0 {
				line += " (" + strings.Join(s.ApprovedBy, ", ") + ")"
			}
			out = append(out, line)
			continue
		}
		parts := make([]string, 0, len(s.Units))
		for _, u := range s.Units {
			parts = append(parts, unitProgress(u))
		}
		if len(s.Units) > 1 {
			if s.Logic == approval.LogicOr {
				head += ", any one group"
			} else {
				head += ", every group"
			}
		}
		out = append(out, head+": "+strings.Join(parts, "; "))
	}
	return out
}

// unitProgress is one level's, or one group's, count: "1 of 2 approvals
// (alice)", "finance: 0 of all 3 approvals".
func unitProgress(u approval.UnitStanding) string {
	var b strings.Builder
	if u.Group != "" {
		b.WriteString(u.Group + ": ")
	}
	have := len(u.ApprovedBy)
	switch {
	case u.All && u.Need == 0:
		fmt.Fprintf(&b, "%d approvals, all of the approvers needed", have)
	case u.All:
		fmt.Fprintf(&b, "%d of all %d approvals", have, u.Need)
	default:
		fmt.Fprintf(&b, "%d of %d approvals", have, u.Need)
	}
	if have > 0 {
		b.WriteString(" (" + strings.Join(u.ApprovedBy, ", ") + ")")
	}
	if u.Met {
		b.WriteString(", met")
	}
	return b.String()
}

// voteLines says who has voted, in plain text: "Approved by alice",
// "Denied by carol for dave", and " via Slack" after a vote via names.
// Nil before the first vote.
func voteLines(n approval.Notification, via func(approver string) string) []string {
	var out []string
	for i, v := range n.Votes {
		if i == maxProgressShown {
			out = append(out, fmt.Sprintf("and %d more (see the review page)", len(n.Votes)-i))
			break
		}
		line := "Voted by "
		switch v.Verdict {
		case approval.VerdictApprove:
			line = "Approved by "
		case approval.VerdictDeny:
			line = "Denied by "
		}
		line += v.Approver
		if v.OnBehalfOf != "" {
			line += " for " + v.OnBehalfOf
		}
		if via != nil {
			if w := via(v.Approver); w != "" {
				line += " via " + w
			}
		}
		out = append(out, line)
	}
	return out
}
