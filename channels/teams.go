package channels

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/text"
)

// MaxTeamsMessageBytes bounds the body Teams posts: Microsoft documents a
// message size limit of 28 KB for incoming webhooks and for the Workflows
// actions that post a card, and refuses a larger message ("Request Entity
// too large"). The card is cut to fit within this many bytes.
const MaxTeamsMessageBytes = 28_000

// Bounds on the text of a Teams card, in characters. Adaptive Cards set no
// limit of their own; these keep one field from crowding out the rest.
const (
	teamsNameMax    = 200
	teamsWhoMax     = 200
	teamsMessageMax = 3000
	teamsReasonMax  = 1000
	teamsFieldMax   = 500
	teamsChangeMax  = 300
	teamsURLMax     = 2048
	teamsCardSchema = "http://adaptivecards.io/schemas/adaptive-card.json"
	// teamsCardVersion is the newest schema Teams renders in every client
	// that a Workflows webhook posts to.
	teamsCardVersion = "1.4"
	// teamsContentType is the attachment's content type for an Adaptive
	// Card.
	teamsContentType = "application/vnd.microsoft.card.adaptive"
)

// TeamsConfig configures NewTeams. WebhookURL is required.
type TeamsConfig struct {
	// WebhookURL is the URL of the Teams webhook: the HTTP POST URL of a
	// Workflows flow started by "When a Teams webhook request is
	// received" that posts the card it receives to a channel or chat (the
	// "Post to a channel when a webhook request is received" template), or
	// of a legacy Incoming Webhook connector; https only. The URL is a
	// credential (its query carries the flow's signature): errors name only
	// its host. Required.
	WebhookURL string
	// Client sends the POSTs; the Teams channel uses a copy whose
	// CheckRedirect refuses every redirect. Defaults to a client on
	// http.DefaultTransport.
	Client *http.Client
	// Name is the channel's name in the audit trail. Defaults to "teams".
	Name string
}

// Teams is an approval.Channel that posts each notification to a
// Microsoft Teams webhook as an Adaptive Card (schema 1.4): what happened
// and the action's name, the requester, their message, the policy reason,
// risk, cost, deadline, matched policies, the action hash and request ID,
// the payload as the notification carries it (redacted by the matched
// policies) and, while the request is open, Approve and Deny buttons.
//
// The buttons are Action.OpenUrl actions that open the request's review
// page (Notification.ReviewURL, with verdict=approve or verdict=deny to
// put that answer first), which decides as the reviewer signed in there.
// A Teams webhook posts to a channel or group chat that more people than
// the recipient read, so the card never carries Notification.ApproveURL or
// DenyURL: those links are bearer tokens that decide as the recipient,
// whoever opens them. Without a ReviewURL (approval.Config.BaseURL unset)
// the card has no buttons.
//
// The card puts every piece of text that comes from the action or the
// host in a TextRun of a RichTextBlock, which Adaptive Cards render
// without Markdown, so a requester cannot forge a link or emphasis; "{{",
// which starts a DATE or TIME function in card text, is broken with a
// zero-width space. Control characters become spaces. Long text is cut,
// ending in "…", and the card says so; the payload is cut to what fits
// within MaxTeamsMessageBytes, and the card says how much it shows.
//
// Teams answers 2xx to a post it accepted (a Workflows webhook 202, a
// legacy connector 200 "1"). A 2xx whose body reports a failed delivery
// (legacy connectors answer 200 "Webhook message delivery failed...") is
// a permanent error; other answers are classified as the package doc says.
// Teams takes no idempotency key: a retried message may appear twice.
//
// A digest (approval.NotifyDigest) is one card: the headline ("7
// requests await you"), then one line per request whose action name opens
// its review page (a TextRun's selectAction, Action.OpenUrl), with its
// markers (urgent, reminder, escalated), requester, reason and deadline,
// and an "Open your queue" button. Its text is cut before any request is
// left off; within MaxTeamsMessageBytes 50 requests fit; beyond, the
// card says how many more there are and links the queue.
//
// Create a Teams with NewTeams; the zero value is not usable. It is safe
// for concurrent use.
type Teams struct {
	name string
	send *sender
}

// NewTeams validates cfg, fills its defaults and returns the Teams
// channel. Errors wrap ErrInvalidConfig.
func NewTeams(cfg TeamsConfig) (*Teams, error) {
	u, err := parseURL("TeamsConfig.WebhookURL", cfg.WebhookURL, "https")
	if err != nil {
		return nil, fmt.Errorf("%w: %v (copy the HTTP POST URL of the workflow's webhook trigger)", ErrInvalidConfig, err)
	}
	if cfg.Name == "" {
		cfg.Name = "teams"
	}
	return &Teams{name: cfg.Name, send: newSender("teams", u, cfg.Client, nil)}, nil
}

// Name implements approval.Channel.
func (t *Teams) Name() string { return t.name }

// Send implements approval.Channel: it posts n's card and classifies the
// answer (see Teams). It returns when ctx ends.
func (t *Teams) Send(ctx context.Context, n approval.Notification) error {
	var body []byte
	var err error
	if n.Type == approval.NotifyDigest {
		body, err = teamsDigestMessage(n)
	} else {
		body, err = teamsMessage(n)
	}
	if err != nil {
		return approval.Permanent(fmt.Errorf("channels: teams: encode notification %s: %w", n.ID, err))
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("User-Agent", "signoff-approval-teams")
	return t.send.post(ctx, h, body, t.accept)
}

// accept checks a 2xx answer for a legacy connector's report of a failed
// delivery, which it sends with 200.
func (t *Teams) accept(_ int, peek []byte) error {
	if bytes.Contains(peek, []byte("delivery failed")) || bytes.Contains(peek, []byte("returned HTTP error")) {
		return approval.Permanent(fmt.Errorf("channels: teams: %s answered 2xx with a failure%s", t.send.where, quote(peek)))
	}
	return nil
}

// The JSON of a Teams message, as far as this package writes it.
type (
	teamsPayload struct {
		Type        string            `json:"type"` // "message"
		Attachments []teamsAttachment `json:"attachments"`
	}
	teamsAttachment struct {
		ContentType string    `json:"contentType"`
		ContentURL  *string   `json:"contentUrl"` // null, as in Microsoft's examples
		Content     teamsCard `json:"content"`
	}
	teamsCard struct {
		Schema  string            `json:"$schema"`
		Type    string            `json:"type"` // "AdaptiveCard"
		Version string            `json:"version"`
		Body    []teamsBlock      `json:"body"`
		Actions []teamsAction     `json:"actions,omitempty"`
		MSTeams map[string]string `json:"msteams,omitempty"`
	}
	// teamsBlock is a RichTextBlock: the only element the card uses, so
	// that no text on it is read as Markdown.
	teamsBlock struct {
		Type      string     `json:"type"` // "RichTextBlock"
		Inlines   []teamsRun `json:"inlines"`
		Separator bool       `json:"separator,omitempty"`
	}
	teamsRun struct {
		Type     string `json:"type"` // "TextRun"
		Text     string `json:"text"`
		Size     string `json:"size,omitempty"`
		Weight   string `json:"weight,omitempty"`
		Color    string `json:"color,omitempty"`
		FontType string `json:"fontType,omitempty"`
		IsSubtle bool   `json:"isSubtle,omitempty"`
		// SelectAction makes the run a link (Adaptive Cards 1.2 and
		// later): a digest's item names open their review pages.
		SelectAction *teamsOpenURL `json:"selectAction,omitempty"`
	}
	teamsOpenURL struct {
		Type string `json:"type"` // "Action.OpenUrl"
		URL  string `json:"url"`
	}
	teamsAction struct {
		Type  string `json:"type"` // "Action.OpenUrl"
		Title string `json:"title"`
		URL   string `json:"url"`
		Style string `json:"style,omitempty"`
	}
)

// teamsLimits bound the parts of a card that may be cut to fit.
type teamsLimits struct {
	payload int // characters of the payload shown
	text    int // characters of each other text from the action or host
}

// teamsMessage encodes n's message within MaxTeamsMessageBytes: the
// payload is cut first, then, if it is still too large, the other text.
func teamsMessage(n approval.Notification) ([]byte, error) {
	payload := []rune(teamsPlain(string(n.Action.Payload), true))
	fits := func(l teamsLimits) ([]byte, bool, error) {
		b, err := json.Marshal(teamsBuild(n, payload, l))
		return b, err == nil && len(b) <= MaxTeamsMessageBytes, err
	}
	full := teamsLimits{payload: min(len(payload), MaxTeamsMessageBytes), text: teamsMessageMax}
	if b, ok, err := fits(full); ok || err != nil {
		return b, err
	}
	// The largest limit that fits, by bisection: fits is monotone in each.
	search := func(hi int, at func(int) teamsLimits) (int, bool) {
		lo := -1 // lo fits (or is -1), hi+1 does not
		for lo < hi {
			mid := lo + (hi-lo+1)/2
			if _, ok, _ := fits(at(mid)); ok {
				lo = mid
			} else {
				hi = mid - 1
			}
		}
		return lo, lo >= 0
	}
	if k, ok := search(full.payload, func(k int) teamsLimits { return teamsLimits{payload: k, text: full.text} }); ok {
		b, _, err := fits(teamsLimits{payload: k, text: full.text})
		return b, err
	}
	if k, ok := search(full.text, func(k int) teamsLimits { return teamsLimits{payload: 0, text: k} }); ok {
		b, _, err := fits(teamsLimits{payload: 0, text: k})
		return b, err
	}
	return nil, fmt.Errorf("the card does not fit in %d bytes", MaxTeamsMessageBytes)
}

// teamsCardBuilder collects the card's blocks, and whether any text was
// cut.
type teamsCardBuilder struct {
	blocks []teamsBlock
	cut    bool
	limit  int
}

// plain returns s as a TextRun's text, within max characters (and the
// builder's limit).
func (b *teamsCardBuilder) plain(s string, max int, lines bool) string {
	s = teamsPlain(s, lines)
	max = min(max, b.limit)
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	b.cut = true
	if max <= 0 {
		return "…"
	}
	r := []rune(s)
	return string(r[:max-1]) + "…"
}

func (b *teamsCardBuilder) add(runs ...teamsRun) *teamsBlock {
	b.blocks = append(b.blocks, teamsBlock{Type: "RichTextBlock", Inlines: runs})
	return &b.blocks[len(b.blocks)-1]
}

// fact adds "label: value" when value is not empty.
func (b *teamsCardBuilder) fact(label, value string, max int) {
	if value == "" {
		return
	}
	b.add(run(label+": ", "Bolder"), run(b.plain(value, max, false), ""))
}

// progress adds who has voted and where each policy stands, when there
// is anything to say.
func (b *teamsCardBuilder) progress(n approval.Notification) {
	votes := voteLines(n, nil)
	var lines []string
	if len(n.Votes) > 0 || n.Status.Open() {
		lines = progressLines(n)
	}
	if len(votes) == 0 && len(lines) == 0 {
		return
	}
	b.add(run("Progress", "Bolder")).Separator = true
	for _, l := range votes {
		b.add(run(b.plain(l, teamsFieldMax, false), ""))
	}
	for _, l := range lines {
		b.add(run("• ", ""), run(b.plain(l, teamsFieldMax, false), ""))
	}
}

// footer adds the card's small print: the notes in foot, then the
// notification's type, recipient and time.
func (b *teamsCardBuilder) footer(n approval.Notification, foot []string) {
	line := string(n.Type)
	if n.Recipient != "" {
		line += " · for " + b.plain(n.Recipient, teamsWhoMax, false)
	}
	if !n.At.IsZero() {
		line += " · " + teamsDate(n.At)
	}
	for _, s := range append(foot, line) {
		r := run(s, "")
		r.IsSubtle = true
		r.Size = "Small"
		b.add(r)
	}
}

func run(s, weight string) teamsRun { return teamsRun{Type: "TextRun", Text: s, Weight: weight} }

// teamsBuild builds n's message with the payload's first l.payload
// characters and other text within l.text.
func teamsBuild(n approval.Notification, payload []rune, l teamsLimits) teamsPayload {
	a := n.Action
	b := &teamsCardBuilder{limit: l.text}
	name := a.Name
	if name == "" {
		name = "(unnamed action)"
	}
	open := isOpenType(n.Type) && n.Status.Open()

	head := run(askLabel(n)+": "+b.plain(name, teamsNameMax, false), "Bolder")
	head.Size = "Large"
	if n.Urgent && open {
		head.Color = "Attention"
	}
	b.add(head)
	b.add(run("Requested by ", ""), run(b.plain(a.RequestedBy, teamsWhoMax, false), "Bolder"))
	if !n.Status.Open() && n.Reason != "" {
		b.add(run("Outcome: ", "Bolder"), run(string(n.Status)+": "+b.plain(n.Reason, teamsReasonMax, true), ""))
	}
	if p := n.Prior; p != nil {
		// Before the requester's message, so that no cut of it hides this.
		w := run("An identical action was approved and ran at "+teamsDate(p.At)+": "+b.plain(p.RequestID, 64, false), "Bolder")
		w.Color = "Attention"
		b.add(w)
	}
	if a.Message != "" {
		msg := run(b.plain(a.Message, teamsMessageMax, true), "")
		msg.IsSubtle = true
		blk := b.add(run("Message from the requester: ", "Bolder"), msg)
		blk.Separator = true
	}
	if e := n.Edit; e != nil {
		// What a vote binds is the edited payload: say so before the facts.
		w := run("Payload edited by "+b.plain(e.By, teamsWhoMax, false)+": a vote binds the edited payload, not the one asked for.", "Bolder")
		w.Color = "Warning"
		b.add(w).Separator = true
		for i, c := range e.Changes {
			if i == maxChangesShown {
				b.add(run(fmt.Sprintf("and %d more (see the review page)", len(e.Changes)-i), ""))
				break
			}
			c := run(b.plain(c.String(), teamsChangeMax, false), "")
			c.FontType = "Monospace"
			b.add(run("• ", ""), c)
		}
	}
	first := len(b.blocks)
	b.fact("On behalf of", n.OnBehalfOf, teamsWhoMax)
	b.fact("Note", n.Note, teamsFieldMax)
	if open {
		b.fact("Reason", n.Reason, teamsReasonMax)
	}
	if a.Risk != approval.RiskNone {
		b.fact("Risk", a.Risk.String(), 40)
	}
	if a.Cost != nil {
		b.fact("Cost", strings.TrimSpace(strconv.FormatFloat(a.Cost.Amount, 'f', -1, 64)+" "+a.Cost.Currency), 80)
	}
	if open && !n.Deadline.IsZero() {
		b.fact("Deadline", teamsDate(n.Deadline), 40)
	}
	names := make([]string, 0, len(n.Policies))
	for _, p := range n.Policies {
		names = append(names, p.Name)
	}
	b.fact("Policies", strings.Join(names, ", "), teamsFieldMax)
	b.fact("Action hash", text.Cut(n.ActionHash, 12), 12)
	b.fact("Request", n.RequestID, 64)
	if len(b.blocks) > first {
		b.blocks[first].Separator = true
	}
	b.progress(n)
	if len(payload) > 0 {
		shown := min(l.payload, len(payload))
		label := "Payload:"
		if shown < len(payload) {
			label = fmt.Sprintf("Payload, cut to fit a Teams message: the first %d of %d characters. The review page shows all of it.", shown, len(payload))
		}
		b.add(run(label, "Bolder")).Separator = true
		if shown > 0 {
			p := run(string(payload[:shown]), "")
			p.FontType = "Monospace"
			b.add(p)
		}
	}
	var foot []string
	if n.Redacted {
		foot = append(foot, "Some of the action's fields are redacted here; the review page shows what you may see.")
	}
	if b.cut {
		foot = append(foot, "Some text is cut short here (…); the review page shows all of it.")
	}
	b.footer(n, foot)
	return teamsPayload{Type: "message", Attachments: []teamsAttachment{{
		ContentType: teamsContentType,
		Content: teamsCard{Schema: teamsCardSchema, Type: "AdaptiveCard", Version: teamsCardVersion,
			Body: b.blocks, Actions: teamsActions(n, open), MSTeams: map[string]string{"width": "Full"}},
	}}}
}

// teamsActions are the card's buttons: each opens the review page, never
// a link with a token (see Teams).
func teamsActions(n approval.Notification, open bool) []teamsAction {
	review, ok := reviewLink(n.ReviewURL, "")
	if !ok {
		return nil
	}
	if !open {
		return []teamsAction{{Type: "Action.OpenUrl", Title: "View request", URL: review}}
	}
	approve, _ := reviewLink(n.ReviewURL, approval.VerdictApprove)
	deny, _ := reviewLink(n.ReviewURL, approval.VerdictDeny)
	return []teamsAction{
		{Type: "Action.OpenUrl", Title: "Approve", URL: approve, Style: "positive"},
		{Type: "Action.OpenUrl", Title: "Deny", URL: deny, Style: "destructive"},
		{Type: "Action.OpenUrl", Title: "Review", URL: review},
	}
}

// reviewLink returns the review page's URL, with verdict v first when v
// is set, and any token removed: the review page decides as the reviewer
// signed in. It is false for a URL that is not http(s) or too long.
func reviewLink(raw string, v approval.Verdict) (string, bool) {
	if len(raw) > teamsURLMax || !(strings.HasPrefix(raw, "https://") || strings.HasPrefix(raw, "http://")) {
		return "", false
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil {
		return "", false
	}
	q := u.Query()
	q.Del("token")
	q.Del("verdict")
	if v != "" {
		q.Set("verdict", string(v))
	}
	u.RawQuery = q.Encode()
	return u.String(), true
}

// teamsDate formats t in UTC. The card's DATE and TIME functions would
// show it in the reader's zone, but a card that fails to parse them shows
// the raw text: plain UTC always reads.
func teamsDate(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// teamsPlain makes s safe for a TextRun: valid UTF-8, control characters
// (and, without lines, line breaks) as spaces, and "{{" broken so that no
// renderer reads a DATE or TIME function in it.
func teamsPlain(s string, lines bool) string {
	if lines {
		s = strings.ReplaceAll(s, "\r\n", "\n")
	}
	var b strings.Builder
	prev := rune(0)
	for _, r := range s {
		switch {
		case r == '\n' && lines:
		case r == '\r' && lines:
			r = '\n'
		case unicode.IsControl(r), unicode.Is(unicode.Bidi_Control, r):
			r = ' '
		case r == '{' && prev == '{':
			b.WriteRune('\u200b')
		}
		b.WriteRune(r)
		prev = r
	}
	return b.String()
}
