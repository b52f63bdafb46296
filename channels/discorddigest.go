// The Discord digest: one message whose embeds list the asks a digest
// window gathered.

package channels

import (
	"fmt"
	"strings"

	"github.com/signoff/approval"
)

// discordEmbedsMax is the most embeds a message may carry; together they
// keep within discordEmbedTotalMax characters
// (https://discord.com/developers/docs/resources/message#embed-object-embed-limits).
const discordEmbedsMax = 10

// discordDigestForm bounds the parts of a digest item's line. The forms
// are tried in order, until every item fits.
type discordDigestForm struct {
	name, who, reason int  // characters of each; 0 leaves it out
	deadline          bool // the deadline, as a relative time
	kind              bool // "reminder", "escalated"
}

var discordDigestForms = []discordDigestForm{
	{name: 80, who: 40, reason: 100, deadline: true, kind: true},
	{name: 48, who: 24, deadline: true, kind: true},
	{name: 40, deadline: true},
	{name: 40},
	{name: 24},
	{name: 16},
}

// discordDigestOf builds the message for a digest: embeds whose
// descriptions list one line per item (its markers, its action linked to
// its review page, the requester, the reason and the deadline, in the
// fullest form in which every item fits), and a button to the queue.
// Discord's limits (description 4096, 6000 across the embeds, 10 embeds)
// hold, at 50 items, every item in a compact form; beyond, the last line
// says how many more there are and links the queue. No Approve or Deny
// button: a digest is a summary.
func discordDigestOf(n approval.Notification) discordMessage {
	items, open := digestItems(n)
	queue := queueURL(items)
	if len(queue) > discordURLMax {
		queue = ""
	}
	title := digestHeadline(open)
	foot := []string{string(n.Type)}
	if n.Recipient != "" {
		foot = append(foot, "for "+discordPlain(n.Recipient, discordWhoMax))
	}
	footer := discordPlain(strings.Join(foot, " · "), discordFooterText)
	lead := discordEsc(digestLead(open, len(items)), 600, false) + " Open each to review it and decide there."
	budget := discordEmbedTotalMax - unitLen(title) - unitLen(footer)

	var descs []string
	for i, f := range discordDigestForms {
		lines := make([]string, 0, len(items)+1)
		lines = append(lines, lead)
		for _, it := range items {
			lines = append(lines, discordDigestLine(it, f))
		}
		if d, ok := discordPack(lines, budget); ok {
			descs = d
			break
		}
		if i < len(discordDigestForms)-1 {
			continue
		}
		// Even the shortest form does not fit: as many items as do, and
		// the count of the rest.
		for k := len(items) - 1; k >= 0; k-- {
			more := fmt.Sprintf("…and %d more, not listed: this message is at Discord's size limits.", len(items)-k)
			if queue != "" {
				more = fmt.Sprintf("…and %d more, not listed here (Discord's size limits): [open your queue](%s) to see them all.", len(items)-k, discordLinkURL(queue))
			}
			if d, ok := discordPack(append(lines[:1+k:1+k], more), budget); ok {
				descs = d
				break
			}
		}
	}
	embeds := make([]discordEmbed, len(descs))
	for i, d := range descs {
		embeds[i] = discordEmbed{Description: d, Color: discordColorOpen}
	}
	if open == 0 {
		for i := range embeds {
			embeds[i].Color = discordColorClosed
		}
	}
	if len(embeds) == 0 { // only when even the lead alone could not fit
		embeds = []discordEmbed{{Color: discordColorClosed}}
	}
	embeds[0].Title = title
	embeds[0].URL = queue
	last := &embeds[len(embeds)-1]
	last.Footer = &discordFooter{Text: footer}
	if !n.At.IsZero() {
		last.Timestamp = n.At.UTC().Format("2006-01-02T15:04:05.000Z")
	}
	var rows []discordRow
	if queue != "" {
		rows = []discordRow{{Type: discordActionRow, Components: []discordButton{
			{Type: discordTypeButton, Style: discordStyleLink, Label: "Open your queue", URL: queue}}}}
	}
	return discordMessage{Embeds: embeds, Components: rows, AllowedMentions: discordMentions{Parse: []string{}}}
}

// discordPack puts lines into embed descriptions, in order: each within
// discordDescriptionMax, at most discordEmbedsMax, and all within budget
// characters. It is false when they do not fit.
func discordPack(lines []string, budget int) ([]string, bool) {
	var out []string
	var cur strings.Builder
	curUnits := 0
	for _, l := range lines {
		u := unitLen(l)
		if curUnits > 0 && curUnits+1+u > discordDescriptionMax {
			if len(out)+1 == discordEmbedsMax {
				return nil, false
			}
			out = append(out, cur.String())
			cur.Reset()
			curUnits = 0
		}
		if u > discordDescriptionMax {
			return nil, false
		}
		if curUnits > 0 {
			cur.WriteByte('\n')
			curUnits++
			budget--
		}
		cur.WriteString(l)
		curUnits += u
		if budget -= u; budget < 0 {
			return nil, false
		}
	}
	if curUnits > 0 {
		out = append(out, cur.String())
	}
	return out, true
}

// discordDigestLine is one item of a digest in form f: "• **Urgent** ·
// *reminder* · [deploy](review) by alice · reason · due <t:…:R>", its
// text escaped.
func discordDigestLine(it approval.Notification, f discordDigestForm) string {
	var b strings.Builder
	b.WriteString("• ")
	for _, m := range digestMarkers(it) {
		switch {
		case m == "urgent":
			b.WriteString("**Urgent** · ")
		case !digestOpen(it) || f.kind:
			b.WriteString("*" + discordEsc(m, 40, false) + "* · ")
		}
	}
	name := discordEsc(digestName(it), f.name, false)
	if review, ok := reviewLink(it.ReviewURL, ""); ok && len(review) <= discordURLMax {
		b.WriteString("[" + name + "](" + discordLinkURL(review) + ")")
	} else {
		b.WriteString("**" + name + "**")
	}
	if who := it.Action.RequestedBy; who != "" && f.who > 0 {
		b.WriteString(" by " + discordEsc(who, f.who, false))
	}
	if it.Reason != "" && f.reason > 0 && digestOpen(it) {
		b.WriteString(" · " + discordEsc(it.Reason, f.reason, false))
	}
	if !it.Deadline.IsZero() && f.deadline && digestOpen(it) {
		fmt.Fprintf(&b, " · due <t:%d:R>", it.Deadline.Unix())
	}
	return b.String()
}

// discordLinkURL is u (a reviewLink, so http(s), percent-encoded) as the
// target of a masked link: its parentheses percent-encoded, so that none
// ends the link.
func discordLinkURL(u string) string {
	return strings.NewReplacer("(", "%28", ")", "%29").Replace(u)
}
