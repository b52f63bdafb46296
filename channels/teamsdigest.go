// The Teams digest: one Adaptive Card listing the asks a digest window
// gathered.

package channels

import (
	"encoding/json"
	"fmt"

	"github.com/signoff/approval"
)

// Bounds on the text of a digest item on a Teams card, in characters,
// before the card is fitted to MaxTeamsMessageBytes.
const (
	teamsDigestNameMax   = 120
	teamsDigestWhoMax    = 80
	teamsDigestReasonMax = 200
	// teamsDigestTextMin is the least an item's text is cut to before
	// items are left off the card.
	teamsDigestTextMin = 24
)

// teamsDigestMessage encodes a digest's card within MaxTeamsMessageBytes:
// every item with its text as long as fits (down to
// teamsDigestTextMin characters each), and only when even that does not
// fit, as many items as fit, the card saying how many more there are and
// linking the queue.
func teamsDigestMessage(n approval.Notification) ([]byte, error) {
	items, open := digestItems(n)
	fits := func(text, shown int) ([]byte, bool, error) {
		b, err := json.Marshal(teamsDigestBuild(n, items, open, text, shown))
		return b, err == nil && len(b) <= MaxTeamsMessageBytes, err
	}
	if b, ok, err := fits(teamsDigestReasonMax, len(items)); ok || err != nil {
		return b, err
	}
	// The largest limit that fits, by bisection: fits is monotone in each.
	largest := func(lo, hi int, ok func(int) bool) (int, bool) {
		if !ok(lo) {
			return 0, false
		}
		for lo < hi { // lo fits, hi+1 does not
			mid := lo + (hi-lo+1)/2
			if ok(mid) {
				lo = mid
			} else {
				hi = mid - 1
			}
		}
		return lo, true
	}
	if k, ok := largest(teamsDigestTextMin, teamsDigestReasonMax, func(k int) bool {
		_, ok, _ := fits(k, len(items))
		return ok
	}); ok {
		b, _, err := fits(k, len(items))
		return b, err
	}
	if k, ok := largest(0, len(items), func(k int) bool {
		_, ok, _ := fits(teamsDigestTextMin, k)
		return ok
	}); ok {
		b, _, err := fits(teamsDigestTextMin, k)
		return b, err
	}
	return nil, fmt.Errorf("the digest's card does not fit in %d bytes", MaxTeamsMessageBytes)
}

// teamsDigestBuild builds a digest's card: the headline, what it is, the
// first shown items, each a line whose action name opens its review page
// (a TextRun's selectAction, an Action.OpenUrl, never a link with a
// token), and a button to the queue. Text within each item is cut to
// text characters.
func teamsDigestBuild(n approval.Notification, items []approval.Notification, open, text, shown int) teamsPayload {
	b := &teamsCardBuilder{limit: text}
	queue, hasQueue := reviewLink(queueURL(items), "")

	head := run(digestHeadline(open), "Bolder")
	head.Size = "Large"
	b.add(head)
	b.add(run(digestLead(open, len(items))+" Open each to review it and decide there.", ""))
	for i, it := range items[:shown] {
		var runs []teamsRun
		for _, m := range digestMarkers(it) {
			r := run(m+" · ", "Bolder")
			if m == "urgent" {
				r.Text = "Urgent · "
				r.Color = "Attention"
			}
			runs = append(runs, r)
		}
		name := run(b.plain(digestName(it), teamsDigestNameMax, false), "Bolder")
		if review, ok := reviewLink(it.ReviewURL, ""); ok {
			name.SelectAction = &teamsOpenURL{Type: "Action.OpenUrl", URL: review}
		}
		runs = append(runs, name)
		meta := ""
		if who := it.Action.RequestedBy; who != "" {
			meta += " requested by " + b.plain(who, teamsDigestWhoMax, false)
		}
		if it.OnBehalfOf != "" {
			meta += ", you stand in for " + b.plain(it.OnBehalfOf, teamsDigestWhoMax, false)
		}
		if it.Reason != "" && digestOpen(it) {
			meta += " · " + b.plain(it.Reason, teamsDigestReasonMax, false)
		}
		if !it.Deadline.IsZero() && digestOpen(it) {
			meta += " · due " + teamsDate(it.Deadline)
		}
		if meta != "" {
			runs = append(runs, run(meta, ""))
		}
		b.add(runs...).Separator = i == 0
	}
	if rest := len(items) - shown; rest > 0 {
		more := run(fmt.Sprintf("…and %d more, not listed: this card is at Teams' size limit.", rest), "Bolder")
		if hasQueue {
			more.Text = fmt.Sprintf("…and %d more, not listed here (Teams' size limit): open your queue to see them all.", rest)
			more.SelectAction = &teamsOpenURL{Type: "Action.OpenUrl", URL: queue}
		}
		b.add(more).Separator = true
	}
	var foot []string
	if b.cut {
		foot = append(foot, "Some text is cut short here (…); each review page shows all of it.")
	}
	b.footer(n, foot)
	var actions []teamsAction
	if hasQueue {
		actions = []teamsAction{{Type: "Action.OpenUrl", Title: "Open your queue", URL: queue}}
	}
	return teamsPayload{Type: "message", Attachments: []teamsAttachment{{
		ContentType: teamsContentType,
		Content: teamsCard{Schema: teamsCardSchema, Type: "AdaptiveCard", Version: teamsCardVersion,
			Body: b.blocks, Actions: actions, MSTeams: map[string]string{"width": "Full"}},
	}}}
}
