// What every channel's digest (approval.NotifyDigest) shares: the items
// in the order a reader takes them, the headline, each item's markers,
// and the reviewers' queue.

package channels

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/signoff/approval"
)

// digestItems returns the notifications a digest gathers, those still
// asking for a decision first, each group in the gate's order (oldest
// first), and how many still ask.
func digestItems(n approval.Notification) (items []approval.Notification, open int) {
	items = make([]approval.Notification, 0, len(n.Digest))
	for _, it := range n.Digest {
		if digestOpen(it) {
			items = append(items, it)
		}
	}
	open = len(items)
	for _, it := range n.Digest {
		if !digestOpen(it) {
			items = append(items, it)
		}
	}
	return items, open
}

// digestOpen reports whether a digest's item still asks for a decision:
// an ask whose request was open when the digest was sent.
func digestOpen(it approval.Notification) bool { return isOpenType(it.Type) && it.Status.Open() }

// digestHeadline is a digest's headline: "7 requests await you".
func digestHeadline(open int) string {
	switch open {
	case 0:
		return "No requests await you"
	case 1:
		return "1 request awaits you"
	}
	return fmt.Sprintf("%d requests await you", open)
}

// digestLead says what the digest is, and what became of the requests
// decided before it was sent.
func digestLead(open, total int) string {
	s := "Gathered over your digest window, oldest first."
	switch closed := total - open; {
	case closed == 1 && open == 0:
		s += " The request gathered here was decided before this message was sent."
	case closed == 1:
		s += " 1 more was decided before this message was sent; it is listed last."
	case closed > 1 && open == 0:
		s += fmt.Sprintf(" The %d requests gathered here were decided before this message was sent.", closed)
	case closed > 1:
		s += fmt.Sprintf(" %d more were decided before this message was sent; they are listed last.", closed)
	}
	return s
}

// digestMarkers are the words that set an item apart, in plain text:
// "urgent" (Notification.Urgent), "reminder" or "escalated" (its type),
// and, for a request no longer open, its status ("approved").
func digestMarkers(it approval.Notification) []string {
	var out []string
	if !digestOpen(it) {
		return append(out, strings.ToLower(mailStatus(it.Status)))
	}
	if it.Urgent {
		out = append(out, "urgent")
	}
	switch it.Type {
	case approval.NotifyReminder:
		out = append(out, "reminder")
	case approval.NotifyEscalated:
		out = append(out, "escalated")
	}
	return out
}

// digestName is an item's action name, or a stand-in for none.
func digestName(it approval.Notification) string {
	if it.Action.Name == "" {
		return "(unnamed action)"
	}
	return it.Action.Name
}

// askLabel is slackLabel, with "Urgent: " first for an ask of an urgent
// policy (Notification.Urgent) whose request is open.
func askLabel(n approval.Notification) string {
	if n.Urgent && isOpenType(n.Type) && n.Status.Open() {
		return "Urgent: " + slackLabel(n)
	}
	return slackLabel(n)
}

// queueURL is the reviewers' queue (approval.Config.BaseURL + "/approvals",
// served by package approvalhttp), derived from the first item whose
// review page is a usable link; "" when none is.
func queueURL(items []approval.Notification) string {
	for _, it := range items {
		review, ok := reviewLink(it.ReviewURL, "")
		if !ok {
			continue
		}
		u, err := url.Parse(review)
		if err != nil {
			continue
		}
		i := strings.LastIndex(u.Path, approval.ReviewPath)
		if i < 0 {
			continue
		}
		u.Path = u.Path[:i] + strings.TrimSuffix(approval.ReviewPath, "/")
		u.RawPath, u.RawQuery, u.Fragment = "", "", ""
		return u.String()
	}
	return ""
}
