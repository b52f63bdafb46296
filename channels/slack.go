package channels

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/text"
)

// The action_id of each button of a Slack message. NewSlackInteractions
// decides on SlackActionApprove and SlackActionDeny only; a click on any
// other button is acknowledged and nothing more.
const (
	// SlackActionApprove and SlackActionDeny are the buttons of an
	// interactive message (SlackConfig.Interactive): they carry no link,
	// and decide through NewSlackInteractions as the user who clicked.
	SlackActionApprove = "approval_approve"
	SlackActionDeny    = "approval_deny"
	// SlackActionApproveLink and SlackActionDenyLink are the buttons of a
	// message with links: they open Notification.ApproveURL and DenyURL,
	// the review page's confirmation, which decides.
	SlackActionApproveLink = "approval_approve_link"
	SlackActionDenyLink    = "approval_deny_link"
	// SlackActionReview opens Notification.ReviewURL.
	SlackActionReview = "approval_review"
)

// Block Kit limits, in characters (counted here as UTF-16 code units, as
// Slack's clients count them, which is never fewer than Slack counts).
const (
	slackHeaderMax     = 150
	slackSectionMax    = 3000
	slackFieldMax      = 2000
	slackFieldsMax     = 10
	slackContextMax    = 10
	slackButtonTextMax = 75
	slackValueMax      = 2000
	slackURLMax        = 3000
	slackFallbackMax   = 3000
	slackConfirmTitle  = 100
	slackConfirmText   = 300
	slackConfirmButton = 30
	// slackNameMax and slackWhoMax bound an action name and a requester
	// within a longer text, so that what follows them still fits.
	slackNameMax = 200
	slackWhoMax  = 200
)

// SlackConfig configures NewSlack. WebhookURL is required.
type SlackConfig struct {
	// WebhookURL is the incoming-webhook URL of the Slack app
	// ("https://hooks.slack.com/services/..."); https only. The URL is a
	// credential: errors name only its host. Required.
	WebhookURL string
	// Interactive makes the Approve and Deny buttons decide in Slack: they
	// carry no link, and Slack posts the click to the app's Interactivity
	// Request URL, which NewSlackInteractions serves; it decides as the
	// Slack user who clicked, mapped to an approver by the host. Set it
	// whenever the webhook posts to a channel that more than the
	// recipient can read (see Slack).
	//
	// Defaults to false.
	Interactive bool
	// LinkButtons, without Interactive, puts the notification's ApproveURL
	// and DenyURL on the Approve and Deny buttons. Those links carry
	// tokens that decide as the recipient, whoever clicks: set it only
	// when the webhook posts to a place the recipient alone reads (a
	// direct message). Defaults to false: without Interactive the message
	// has only the Review button, whose page decides as the person signed
	// in, so one person in a shared channel cannot cast everyone's votes.
	LinkButtons bool
	// Client sends the POSTs; the Slack channel uses a copy whose
	// CheckRedirect refuses every redirect. Defaults to a client on
	// http.DefaultTransport.
	Client *http.Client
	// Name is the channel's name in the audit trail. Defaults to "slack".
	Name string
}

// Slack is an approval.Channel that posts each notification to a Slack
// incoming webhook as a Block Kit message: a header saying what happened
// (approval needed, reminder, escalated, or the outcome), the action and
// its message, fields with the requester, the policy reason, risk, cost,
// deadline, matched policies, a short action hash and the request ID, a
// context line, and, while the request is open, Approve, Deny and Review
// buttons (each with value the request ID). A resolved or timed-out
// request's message shows the outcome and a button to the request only.
// Text that comes from the action or the host is escaped (&, <, >), so it
// cannot mention @channel or forge a link, and clipped to Slack's limits.
//
// The gate sends one notification per recipient, each with that
// recipient's own approve and deny links, and an incoming webhook posts
// every one to the same Slack channel. Those links are bearer tokens:
// whoever opens one can decide as its recipient on the review page. Post
// with links only to a channel the recipient alone reads; for a shared
// channel set SlackConfig.Interactive, whose buttons decide as the person
// who clicks. Without either (the default) the message offers only the
// Review button.
//
// Slack answers 200 "ok" to a post it accepted. Any other answer is an
// error: a 4xx (invalid_payload, no_service, channel_not_found...) is
// permanent, a 429 or 5xx transient, with Retry-After honoured (see the
// package doc). Incoming webhooks take no idempotency key: a retry whose
// earlier attempt did reach Slack posts the message twice.
//
// A digest (approval.NotifyDigest) is one message: a header ("7
// requests await you"), then one line per request, several to a section
// (its markers, urgent, reminder or escalated, its action linked to its
// review page, the requester, the reason and the deadline), and a button
// to the reviewers' queue; no Approve or Deny button and no recipient's
// link, whatever the configuration says. Within Slack's limits (50
// blocks, 3000 characters a section) 50 requests fit, at the longest
// text shown; beyond what fits, the message says how many more there are
// and links the queue.
// The ask of an urgent policy (Notification.Urgent) has "Urgent:" in its
// header.
//
// Create a Slack with NewSlack; the zero value is not usable. It is safe
// for concurrent use.
type Slack struct {
	name        string
	interactive bool
	links       bool
	send        *sender
}

// NewSlack validates cfg, fills its defaults and returns the Slack
// channel. Errors wrap ErrInvalidConfig.
func NewSlack(cfg SlackConfig) (*Slack, error) {
	u, err := parseURL("SlackConfig.WebhookURL", cfg.WebhookURL, "https")
	if err != nil {
		return nil, fmt.Errorf("%w: %v (copy the app's incoming-webhook URL)", ErrInvalidConfig, err)
	}
	if cfg.Name == "" {
		cfg.Name = "slack"
	}
	return &Slack{name: cfg.Name, interactive: cfg.Interactive, links: cfg.LinkButtons, send: newSender("slack", u, cfg.Client, nil)}, nil
}

// Name implements approval.Channel.
func (s *Slack) Name() string { return s.name }

// Send implements approval.Channel: it posts n's message and classifies
// Slack's answer (see Slack). It returns when ctx ends.
func (s *Slack) Send(ctx context.Context, n approval.Notification) error {
	var msg slackPayload
	if n.Type == approval.NotifyDigest {
		msg = slackDigest(n)
	} else {
		msg = slackMessage(n, slackView{interactive: s.interactive, links: s.links})
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return approval.Permanent(fmt.Errorf("channels: slack: encode notification %s: %w", n.ID, err))
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("User-Agent", "signoff-approval-slack")
	return s.send.post(ctx, h, body, s.accept)
}

// accept checks a 2xx answer for Slack's "ok". Anything else is not
// Slack's incoming webhook answering: retrying cannot change it, and might
// post twice.
func (s *Slack) accept(_ int, peek []byte) error {
	if string(bytes.TrimSpace(peek)) == "ok" {
		return nil
	}
	return approval.Permanent(fmt.Errorf("channels: slack: %s answered 2xx without \"ok\"%s", s.send.where, quote(peek)))
}

// The JSON of a Slack message, as far as this package writes it.
type (
	slackPayload struct {
		Text        string       `json:"text"`
		Blocks      []slackBlock `json:"blocks"`
		UnfurlLinks bool         `json:"unfurl_links"`
		UnfurlMedia bool         `json:"unfurl_media"`
	}
	slackBlock struct {
		Type     string       `json:"type"`
		Text     *slackText   `json:"text,omitempty"`
		Fields   []*slackText `json:"fields,omitempty"`
		Elements []any        `json:"elements,omitempty"` // *slackText in a context, *slackButton in actions
	}
	slackText struct {
		Type     string `json:"type"` // "plain_text" or "mrkdwn"
		Text     string `json:"text"`
		Verbatim bool   `json:"verbatim,omitempty"`
	}
	slackButton struct {
		Type     string        `json:"type"` // "button"
		Text     *slackText    `json:"text"`
		ActionID string        `json:"action_id"`
		Value    string        `json:"value,omitempty"`
		URL      string        `json:"url,omitempty"`
		Style    string        `json:"style,omitempty"`
		Confirm  *slackConfirm `json:"confirm,omitempty"`
	}
	slackConfirm struct {
		Title   *slackText `json:"title"`
		Text    *slackText `json:"text"`
		Confirm *slackText `json:"confirm"`
		Deny    *slackText `json:"deny"`
		Style   string     `json:"style,omitempty"`
	}
)

// plainText is a plain_text object: Slack shows it as it is, so it needs
// no escaping; line breaks and control characters become spaces.
func plainText(s string, max int) *slackText {
	return &slackText{Type: "plain_text", Text: clipUnits(s, max, false, true)}
}

// mrkdwnText is a mrkdwn object of text already escaped and bounded.
// Verbatim stops Slack from linking URLs and channel names it finds in the
// text, and from parsing mentions it was not given as <!...>.
func mrkdwnText(s string) *slackText {
	return &slackText{Type: "mrkdwn", Text: s, Verbatim: true}
}

// esc escapes s for mrkdwn and cuts it to max UTF-16 code units (see
// clipUnits).
func esc(s string, max int) string { return clipUnits(s, max, true, false) }

// clipUnits returns s cut to at most max UTF-16 code units, a cut marked
// with "…". With escape it writes &, < and > as the entities mrkdwn wants
// and never cuts inside one; with flat, line breaks and tabs become
// spaces. Other control characters become spaces, invalid UTF-8 U+FFFD.
func clipUnits(s string, max int, escape, flat bool) string {
	piece := func(r rune) string {
		switch {
		case escape && r == '&':
			return "&amp;"
		case escape && r == '<':
			return "&lt;"
		case escape && r == '>':
			return "&gt;"
		case (r == '\n' || r == '\t') && !flat:
			return string(r)
		case unicode.IsControl(r):
			return " "
		}
		return string(r) // an invalid byte is utf8.RuneError here, written as U+FFFD
	}
	total := 0
	for _, r := range s {
		total += unitLen(piece(r))
	}
	limit := max
	if total > max {
		limit = max - 1 // room for the "…"
	}
	var b strings.Builder
	n := 0
	for _, r := range s {
		p := piece(r)
		if n+unitLen(p) > limit {
			break
		}
		n += unitLen(p)
		b.WriteString(p)
	}
	if total > max && max > 0 {
		b.WriteString("…")
	}
	return b.String()
}

// unitLen is the length of s in UTF-16 code units.
func unitLen(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// slackView says how a message is drawn: which buttons it has, and how
// the votes it lists were cast.
type slackView struct {
	interactive, links bool
	// via names the way approver's vote was cast ("Slack"), or "" to say
	// nothing; nil for a notification as sent.
	via func(approver string) string
}

// slackMessage builds the message for n: the one Send posts, and the one
// NewSlackInteractions redraws after a click.
func slackMessage(n approval.Notification, view slackView) slackPayload {
	a := n.Action
	name := a.Name
	if name == "" {
		name = "(unnamed action)"
	}
	open := isOpenType(n.Type) && n.Status.Open()
	label := askLabel(n)

	summary := "*" + esc(name, slackNameMax) + "* requested by *" + esc(a.RequestedBy, slackWhoMax) + "*"
	if !n.Status.Open() && n.Reason != "" {
		summary += "\n*Outcome:* " + esc(string(n.Status), 40) + ": " + esc(n.Reason, 1000)
	}
	if p := n.Prior; p != nil {
		// Before the requester's message, so that no cut of it hides this.
		summary += "\n:warning: *An identical action was approved and ran at " + slackDate(p.At) + ":* `" + esc(p.RequestID, 45) + "`"
	}
	if a.Message != "" {
		// Each line of the message a block quote: it is the requester's
		// text, not the gate's.
		msg := strings.ReplaceAll(esc(a.Message, slackSectionMax), "\n", "\n>")
		summary += "\n>" + msg
	}
	blocks := []slackBlock{
		{Type: "header", Text: plainText(label+": "+name, slackHeaderMax)},
		{Type: "section", Text: mrkdwnText(clipMarkup(summary, slackSectionMax))},
	}
	// An alert (NotifyAlert) asks for no decision but is about an open
	// request: it shows the reason and the deadline, not an outcome.
	if e := n.Edit; e != nil {
		// What a vote binds is the edited payload: say so before anything
		// else a reviewer reads, with what changed.
		text := "*Payload edited by " + esc(e.By, slackWhoMax) + "*: a vote binds the edited payload, not the one asked for."
		for i, c := range e.Changes {
			if i == maxChangesShown {
				text += fmt.Sprintf("\n• and %d more (see the review page)", len(e.Changes)-i)
				break
			}
			text += "\n• `" + esc(c.String(), 300) + "`"
		}
		blocks = append(blocks, slackBlock{Type: "section", Text: mrkdwnText(clipMarkup(text, slackSectionMax))})
	}
	if text := slackProgress(n, view.via); text != "" {
		blocks = append(blocks, slackBlock{Type: "section", Text: mrkdwnText(text)})
	}
	if fields := slackFields(n, n.Status.Open()); len(fields) > 0 {
		blocks = append(blocks, slackBlock{Type: "section", Fields: fields})
	}
	blocks = append(blocks, slackBlock{Type: "context", Elements: slackContext(n)})
	if buttons := slackButtons(n, open, view.interactive, view.links); len(buttons) > 0 {
		blocks = append(blocks, slackBlock{Type: "actions", Elements: buttons})
	}
	fallback := esc(label+": "+name+" requested by "+a.RequestedBy, slackFallbackMax-50)
	if n.RequestID != "" {
		fallback += " (" + esc(n.RequestID, 45) + ")"
	}
	return slackPayload{Text: fallback, Blocks: blocks}
}

// slackProgress is the section saying who has voted and where each
// policy stands ("Approved by alice via Slack", "deploys: 1 of 2
// approvals (alice)"); "" before anything is counted.
func slackProgress(n approval.Notification, via func(string) string) string {
	var text string
	for _, l := range voteLines(n, via) {
		text += "\n" + esc(l, 300)
	}
	if lines := progressLines(n); len(lines) > 0 && (len(n.Votes) > 0 || n.Status.Open()) {
		text += "\n*Progress*"
		for _, l := range lines {
			text += "\n• " + esc(l, 500)
		}
	}
	if text == "" {
		return ""
	}
	return clipMarkup(text[1:], slackSectionMax)
}

// clipMarkup bounds text that mixes markup and escaped text whose last
// part is escaped text: a cut ends in "…", and moves back before an "&"
// rather than split an entity.
func clipMarkup(s string, max int) string {
	if unitLen(s) <= max {
		return s
	}
	cut := 0
	n := 0
	for i, r := range s {
		u := utf16.RuneLen(r)
		if n+u > max-1 {
			break
		}
		n += u
		cut = i + len(string(r))
	}
	s = s[:cut]
	if amp := strings.LastIndexByte(s, '&'); amp >= 0 && !strings.Contains(s[amp:], ";") {
		s = s[:amp]
	}
	return s + "…"
}

// isOpenType reports whether notifications of type t ask for a decision.
func isOpenType(t approval.NotificationType) bool {
	switch t {
	case approval.NotifyRequested, approval.NotifyReminder, approval.NotifyEscalated:
		return true
	}
	return false
}

// slackLabel says what the message is about: the header's first words.
func slackLabel(n approval.Notification) string {
	switch n.Type {
	case approval.NotifyRequested:
		return "Approval needed"
	case approval.NotifyReminder:
		return "Reminder: approval needed"
	case approval.NotifyEscalated:
		return "Escalated: approval needed"
	case approval.NotifyAlert:
		return "For your information"
	case approval.NotifyTimedOut:
		return "Timed out"
	case approval.NotifyResolved:
		switch n.Status {
		case approval.StatusApproved, approval.StatusConsumed:
			return "Approved"
		case approval.StatusDenied:
			return "Denied"
		case approval.StatusCancelled:
			return "Cancelled"
		case approval.StatusTimedOut:
			return "Timed out"
		case approval.StatusExpired:
			return "Expired"
		}
		return "Resolved"
	}
	return "Approval notification"
}

// slackFields are the section fields: at most slackFieldsMax, each within
// slackFieldMax.
func slackFields(n approval.Notification, open bool) []*slackText {
	a := n.Action
	var fields []*slackText
	add := func(label, value string) {
		if value == "" || len(fields) == slackFieldsMax {
			return
		}
		head := "*" + label + "*\n"
		fields = append(fields, mrkdwnText(head+esc(value, slackFieldMax-unitLen(head))))
	}
	code := func(label, value string) {
		if value == "" || len(fields) == slackFieldsMax {
			return
		}
		head := "*" + label + "*\n`"
		fields = append(fields, mrkdwnText(head+esc(value, slackFieldMax-unitLen(head)-1)+"`"))
	}
	if n.OnBehalfOf != "" {
		add("On behalf of", n.OnBehalfOf)
	}
	add("Note", n.Note)
	add("Requested by", a.RequestedBy)
	if open {
		add("Reason", n.Reason)
	}
	if a.Risk != approval.RiskNone {
		add("Risk", a.Risk.String())
	}
	if a.Cost != nil {
		add("Cost", strings.TrimSpace(strconv.FormatFloat(a.Cost.Amount, 'f', -1, 64)+" "+a.Cost.Currency))
	}
	if open && !n.Deadline.IsZero() {
		fields = append(fields, mrkdwnText("*Deadline*\n"+slackDate(n.Deadline)))
	}
	names := make([]string, 0, len(n.Policies))
	for _, p := range n.Policies {
		names = append(names, p.Name)
	}
	add("Policies", strings.Join(names, ", "))
	code("Action hash", text.Cut(n.ActionHash, 12))
	code("Request", n.RequestID)
	return fields
}

// slackDate formats t for Slack to show in the reader's time zone, with a
// UTC fallback for clients that cannot.
func slackDate(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04 UTC"))
}

// slackContext is the context line: the notification type, who it is
// for, when it was made, and whether the action shown is redacted.
func slackContext(n approval.Notification) []any {
	line := "`" + esc(string(n.Type), 64) + "`"
	if n.Recipient != "" {
		line += " · for " + esc(n.Recipient, slackWhoMax)
	}
	if !n.At.IsZero() {
		line += " · " + slackDate(n.At)
	}
	elems := []any{mrkdwnText(line)}
	if n.Redacted {
		elems = append(elems, mrkdwnText("Some of the action's fields are redacted here; the review page shows what you may see."))
	}
	return elems[:min(len(elems), slackContextMax)]
}

// slackButtons are the actions block's buttons (none when there is nothing
// to click). Decisions are offered only while the request is open.
func slackButtons(n approval.Notification, open, interactive, links bool) []any {
	id := text.Cut(n.RequestID, slackValueMax)
	var out []any
	if open && interactive && id != "" {
		// A decision button binds the action this message shows: its value
		// is the request ID and the action hash, so a click after another
		// approver edited the payload decides nothing (see
		// approval.Decision.ActionHash).
		v := id
		if n.ActionHash != "" && len(id)+1+len(n.ActionHash) <= slackValueMax {
			v = id + " " + n.ActionHash
		}
		out = append(out,
			&slackButton{Type: "button", Text: plainText("Approve", slackButtonTextMax), ActionID: SlackActionApprove,
				Value: v, Style: "primary", Confirm: slackConfirmation(n, "Approve", "primary")},
			&slackButton{Type: "button", Text: plainText("Deny", slackButtonTextMax), ActionID: SlackActionDeny,
				Value: v, Style: "danger", Confirm: slackConfirmation(n, "Deny", "danger")})
	}
	if open && !interactive && links {
		if okURL(n.ApproveURL) {
			out = append(out, &slackButton{Type: "button", Text: plainText("Approve", slackButtonTextMax),
				ActionID: SlackActionApproveLink, Value: id, URL: n.ApproveURL, Style: "primary"})
		}
		if okURL(n.DenyURL) {
			out = append(out, &slackButton{Type: "button", Text: plainText("Deny", slackButtonTextMax),
				ActionID: SlackActionDenyLink, Value: id, URL: n.DenyURL, Style: "danger"})
		}
	}
	if okURL(n.ReviewURL) {
		text := "Review"
		if !open {
			text = "View request"
		}
		out = append(out, &slackButton{Type: "button", Text: plainText(text, slackButtonTextMax),
			ActionID: SlackActionReview, Value: id, URL: n.ReviewURL})
	}
	return out
}

// slackConfirmation is the dialog Slack shows before an interactive
// decision is sent.
func slackConfirmation(n approval.Notification, verb, style string) *slackConfirm {
	name := n.Action.Name
	if name == "" {
		name = "this action"
	}
	return &slackConfirm{
		Title:   plainText(verb+" this request?", slackConfirmTitle),
		Text:    plainText(verb+" "+name+" requested by "+n.Action.RequestedBy+"?", slackConfirmText),
		Confirm: plainText(verb, slackConfirmButton),
		Deny:    plainText("Cancel", slackConfirmButton),
		Style:   style,
	}
}

// okURL reports whether u can be a button's url: http or https, within
// Slack's limit. A longer link cut short would not work, so it is left out.
func okURL(u string) bool {
	return len(u) <= slackURLMax && (strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://"))
}
