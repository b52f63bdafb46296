// The Slack digest: one Block Kit message listing the asks a digest
// window gathered.

package channels

import (
	"fmt"
	"strings"

	"github.com/signoff/approval"
)

// SlackActionQueue is the button of a digest that opens the reviewers'
// queue. Like SlackActionReview it only opens a page.
const SlackActionQueue = "approval_queue"

// Slack's message limits a digest keeps to
// (https://docs.slack.dev/reference/block-kit/blocks): at most 50 blocks,
// a section's text at most 3000 characters (slackSectionMax), a header's
// 150; and Slack truncates a message of more than 40,000 characters
// (https://docs.slack.dev/reference/methods/chat.postMessage#truncating),
// which the items' lines stay well within.
const (
	slackBlocksMax = 50
	// slackDigestTextMax bounds the characters of the items' lines in all.
	slackDigestTextMax = 36_000
	// Bounds on the parts of an item's line: with them, 50 items of the
	// longest fields still fit within slackDigestTextMax.
	slackDigestNameMax   = 80
	slackDigestWhoMax    = 60
	slackDigestReasonMax = 160
	slackDigestURLMax    = 300
)

// slackDigest builds the message for a digest: a header ("7 requests
// await you"), what it is, one line per item (its markers, its action
// linked to its review page, the requester, the policy reason and the
// deadline) packed into as few sections as Slack's limits allow, the
// context line, and a button to the queue. A digest is a summary, and
// posted where others may read: it carries no Approve or Deny button and
// no recipient's token. Items that cannot fit are counted, with a link
// to the queue, never dropped without a word.
func slackDigest(n approval.Notification) slackPayload {
	items, open := digestItems(n)
	head := digestHeadline(open)
	queue := queueURL(items)
	blocks := []slackBlock{
		{Type: "header", Text: plainText(head, slackHeaderMax)},
		{Type: "section", Text: mrkdwnText(esc(digestLead(open, len(items)), slackSectionMax) +
			" Open each to review it and decide there.")},
	}
	tail := []slackBlock{{Type: "context", Elements: slackContext(n)}}
	if okURL(queue) {
		tail = append(tail, slackBlock{Type: "actions", Elements: []any{&slackButton{Type: "button",
			Text: plainText("Open your queue", slackButtonTextMax), ActionID: SlackActionQueue, URL: queue}}})
	}
	// The sections the items may use: the blocks left, less one for the
	// line saying how many did not fit.
	room := slackBlocksMax - len(blocks) - len(tail) - 1
	var sections []string
	var cur strings.Builder
	used, shown := 0, 0
	for _, it := range items {
		line := slackDigestLine(it)
		u := unitLen(line) + 1
		if used+u > slackDigestTextMax {
			break
		}
		if cur.Len() > 0 && unitLen(cur.String())+u > slackSectionMax {
			if len(sections)+1 >= room {
				break
			}
			sections = append(sections, cur.String())
			cur.Reset()
		}
		if cur.Len() > 0 {
			cur.WriteByte('\n')
		}
		cur.WriteString(line)
		used += u
		shown++
	}
	if cur.Len() > 0 {
		sections = append(sections, cur.String())
	}
	if rest := len(items) - shown; rest > 0 {
		more := fmt.Sprintf("…and %d more, not listed: this message is at Slack's size limits.", rest)
		if link, ok := slackLink(queue, "Open your queue"); ok {
			more = fmt.Sprintf("…and %d more, not listed here (Slack's size limits): %s to see them all.", rest, link)
		}
		sections = append(sections, more)
	}
	for _, s := range sections {
		blocks = append(blocks, slackBlock{Type: "section", Text: mrkdwnText(s)})
	}
	return slackPayload{Text: head, Blocks: append(blocks, tail...)}
}

// slackDigestLine is one item of a digest, in mrkdwn: "• *Urgent* ·
// reminder · <review|*deploy*> requested by *alice* · reason · due
// <date>". Its text is escaped and bounded; only its link and date are
// markup.
func slackDigestLine(it approval.Notification) string {
	var b strings.Builder
	b.WriteString("• ")
	for _, m := range digestMarkers(it) {
		if m == "urgent" {
			b.WriteString("*Urgent* · ")
			continue
		}
		b.WriteString("_" + escLine(m, 40) + "_ · ")
	}
	name := "*" + escLine(digestName(it), slackDigestNameMax) + "*"
	if review, ok := reviewLink(it.ReviewURL, ""); ok {
		if link, ok := slackLink(review, digestName(it)); ok {
			name = "*" + link + "*"
		}
	}
	b.WriteString(name)
	if who := it.Action.RequestedBy; who != "" {
		b.WriteString(" requested by *" + escLine(who, slackDigestWhoMax) + "*")
	}
	if it.OnBehalfOf != "" {
		b.WriteString(", you stand in for *" + escLine(it.OnBehalfOf, slackDigestWhoMax) + "*")
	}
	if it.Reason != "" && digestOpen(it) {
		b.WriteString(" · " + escLine(it.Reason, slackDigestReasonMax))
	}
	if !it.Deadline.IsZero() && digestOpen(it) {
		b.WriteString(" · due " + slackDate(it.Deadline))
	}
	return b.String()
}

// slackLink is a mrkdwn link to u labelled with label, escaped and cut to
// slackDigestNameMax. It is false for a URL that is not http(s), longer
// than slackDigestURLMax, or holds a character that would end the link.
func slackLink(u, label string) (string, bool) {
	if len(u) > slackDigestURLMax || !okURL(u) || strings.ContainsAny(u, "<>| \t\r\n") {
		return "", false
	}
	return "<" + strings.ReplaceAll(u, "&", "&amp;") + "|" + escLine(label, slackDigestNameMax) + ">", true
}

// escLine is esc for text on one line: line breaks and tabs become
// spaces.
func escLine(s string, max int) string { return clipUnits(s, max, true, true) }
