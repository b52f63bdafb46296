package channels

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/text"
)

// The custom_id of a Discord message's decision buttons begins with one
// of these, then ":", the request ID and, when it fits, ":" and the action
// hash the message showed (unpadded base64url). It carries no token: the
// click decides, through DiscordInteractions, as the Discord user who
// clicked.
const (
	DiscordCustomIDApprove = "approval:approve"
	DiscordCustomIDDeny    = "approval:deny"
)

// Discord's limits on a message, in characters (counted here as UTF-16
// code units, never fewer than Discord counts).
const (
	discordTitleMax       = 256
	discordDescriptionMax = 4096
	discordFieldNameMax   = 256
	discordFieldValueMax  = 1024
	discordFieldsMax      = 25
	discordFooterMax      = 2048
	discordEmbedTotalMax  = 6000
	discordLabelMax       = 80
	discordCustomIDMax    = 100
	discordURLMax         = 512
	// discordMessageMax and discordWhoMax bound the requester's message
	// and a user ID within the description, so that the rest still fits.
	discordMessageMax = 2000
	discordWhoMax     = 200
	discordNameMax    = 200
	discordFooterText = 300
	// discordDescriptionBudget bounds the description below Discord's
	// 4096, so that the fields keep room within the embed's 6000.
	discordDescriptionBudget = 2500
	// discordPayloadReserve is kept for the payload's field.
	discordPayloadReserve = 600
)

// Discord's component types, button styles and the color of an embed.
const (
	discordActionRow     = 1
	discordTypeButton    = 2
	discordStyleSuccess  = 3
	discordStyleDanger   = 4
	discordStyleLink     = 5
	discordColorOpen     = 0xF0B232
	discordColorApproved = 0x23A55A
	discordColorClosed   = 0x80848E
)

// DiscordConfig configures NewDiscord. WebhookURL is required.
type DiscordConfig struct {
	// WebhookURL is the URL of a Discord webhook owned by the application
	// whose Interactions Endpoint URL DiscordInteractions serves:
	// "https://discord.com/api/webhooks/{webhook.id}/{webhook.token}".
	// Discord delivers buttons that send interactions only from a webhook
	// its application created (Create Webhook, with the bot's token);
	// from any other webhook the message arrives without its Approve and
	// Deny buttons. https only. The URL is a credential: errors name only
	// its host. Required.
	WebhookURL string
	// Client sends the POSTs; the Discord channel uses a copy whose
	// CheckRedirect refuses every redirect. Defaults to a client on
	// http.DefaultTransport.
	Client *http.Client
	// Name is the channel's name in the audit trail. Defaults to
	// "discord".
	Name string
}

// Discord is an approval.Channel that posts each notification through a
// Discord webhook (Execute Webhook, with wait=true so that Discord
// confirms the message, and with_components=true) as a message with one
// embed: what happened and the action's name, the requester and their
// message, fields with the policy reason, risk, cost, deadline, matched
// policies, the action hash, the request ID and the payload (redacted by
// the matched policies, in a code block, cut to Discord's limits and
// saying so) and, while the request is open, Approve and Deny buttons
// with a Review link.
//
// The Approve and Deny buttons carry the request ID and the action hash
// in their custom_id, never a token: Discord posts the click to the
// application's Interactions Endpoint URL, which DiscordInteractions
// serves, and that decides as the Discord user who clicked, mapped to an
// approver by the host. The Review button opens Notification.ReviewURL,
// which decides as the reviewer signed in there. Notification.ApproveURL
// and DenyURL, bearer links for one recipient, never appear in a channel.
//
// Text from the action or the host is escaped (every ASCII punctuation
// character after a backslash, so no Markdown, mention, link or emoji
// takes effect), and the message allows no mentions at all
// (allowed_mentions with an empty parse list).
//
// Discord answers 200 and the message to a post it accepted. A 2xx
// without a message is a permanent error; a 4xx is permanent (a deleted
// webhook answers 404), a 429 or 5xx transient, with Retry-After honoured
// (see the package doc). Webhooks take no idempotency key: a retried
// message may appear twice.
//
// A digest (approval.NotifyDigest) is one message whose embeds (up to
// 10) list one line per request: its action as a link to its review page,
// the urgent ones marked, and, as far as Discord's 6000 characters across
// a message's embeds allow for every request, the requester, reason and
// deadline; fifty requests whose review links are of the usual length
// (BaseURL, "/approvals/" and the ID) fit with their names. Beyond, the
// last line says how many more there are and links the queue. A digest
// has an "Open your queue" button, never Approve or Deny.
//
// Create a Discord with NewDiscord; the zero value is not usable. It is
// safe for concurrent use.
type Discord struct {
	name string
	send *sender
}

// NewDiscord validates cfg, fills its defaults and returns the Discord
// channel. Errors wrap ErrInvalidConfig.
func NewDiscord(cfg DiscordConfig) (*Discord, error) {
	u, err := parseURL("DiscordConfig.WebhookURL", cfg.WebhookURL, "https")
	if err != nil {
		return nil, fmt.Errorf("%w: %v (copy the webhook's URL)", ErrInvalidConfig, err)
	}
	q := u.Query()
	q.Set("wait", "true")
	q.Set("with_components", "true")
	u.RawQuery = q.Encode()
	if cfg.Name == "" {
		cfg.Name = "discord"
	}
	return &Discord{name: cfg.Name, send: newSender("discord", u, cfg.Client, nil)}, nil
}

// Name implements approval.Channel.
func (d *Discord) Name() string { return d.name }

// Send implements approval.Channel: it posts n's message and classifies
// Discord's answer (see Discord). It returns when ctx ends.
func (d *Discord) Send(ctx context.Context, n approval.Notification) error {
	var msg discordMessage
	if n.Type == approval.NotifyDigest {
		msg = discordDigestOf(n)
	} else {
		msg = discordMessageOf(n)
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return approval.Permanent(fmt.Errorf("channels: discord: encode notification %s: %w", n.ID, err))
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("User-Agent", "signoff-approval-discord")
	return d.send.post(ctx, h, body, d.accept)
}

// accept checks a 2xx answer for the message Discord returns with
// wait=true.
func (d *Discord) accept(_ int, peek []byte) error {
	var m struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(peek, &m) == nil && m.ID != "" {
		return nil
	}
	return approval.Permanent(fmt.Errorf("channels: discord: %s answered 2xx without a message%s", d.send.where, quote(peek)))
}

// The JSON of a Discord message, as far as this package writes it.
type (
	discordMessage struct {
		Content         string          `json:"content,omitempty"`
		Embeds          []discordEmbed  `json:"embeds"`
		Components      []discordRow    `json:"components,omitempty"`
		AllowedMentions discordMentions `json:"allowed_mentions"`
	}
	discordMentions struct {
		Parse []string `json:"parse"` // empty: no mention notifies anyone
	}
	discordEmbed struct {
		Title       string         `json:"title,omitempty"` // a digest's embeds after the first have none
		Description string         `json:"description,omitempty"`
		URL         string         `json:"url,omitempty"`
		Color       int            `json:"color"`
		Fields      []discordField `json:"fields,omitempty"`
		Footer      *discordFooter `json:"footer,omitempty"`
		Timestamp   string         `json:"timestamp,omitempty"`
	}
	discordField struct {
		Name   string `json:"name"`
		Value  string `json:"value"`
		Inline bool   `json:"inline,omitempty"`
	}
	discordFooter struct {
		Text string `json:"text"`
	}
	discordRow struct {
		Type       int             `json:"type"` // discordActionRow
		Components []discordButton `json:"components"`
	}
	discordButton struct {
		Type     int    `json:"type"` // discordTypeButton
		Style    int    `json:"style"`
		Label    string `json:"label"`
		CustomID string `json:"custom_id,omitempty"`
		URL      string `json:"url,omitempty"`
	}
)

// discordEsc escapes s for Discord's Markdown and cuts it to max UTF-16
// code units, a cut marked with "…". With lines, line breaks stay.
func discordEsc(s string, max int, lines bool) string {
	return clipPieces(s, max, func(r rune) string {
		switch {
		case r < 0x80 && unicode.IsPunct(r) || r < 0x80 && unicode.IsSymbol(r):
			return `\` + string(r)
		case r == '\n' && lines:
			return "\n"
		case unicode.IsControl(r), unicode.Is(unicode.Bidi_Control, r):
			return " "
		}
		return string(r)
	})
}

// discordPlain is s for a place Discord shows without Markdown (a
// footer, a button's label): control characters as spaces, cut to max.
func discordPlain(s string, max int) string {
	return clipPieces(s, max, func(r rune) string {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return " "
		}
		return string(r)
	})
}

// discordCode is s for a code block: no Markdown applies there, but a run
// of backticks would end the block, so each backtick is followed by a
// zero-width space.
func discordCode(s string, max int) string {
	return clipPieces(s, max, func(r rune) string {
		switch {
		case r == '`':
			return "`\u200b"
		case r == '\n' || r == '\t':
			return string(r)
		case unicode.IsControl(r), unicode.Is(unicode.Bidi_Control, r):
			return " "
		}
		return string(r)
	})
}

// clipPieces writes each rune of s as piece(r) and cuts the result to at
// most max UTF-16 code units, never inside a piece; a cut ends in "…".
func clipPieces(s string, max int, piece func(rune) string) string {
	total := 0
	for _, r := range s {
		total += unitLen(piece(r))
	}
	if total <= max {
		var b strings.Builder
		for _, r := range s {
			b.WriteString(piece(r))
		}
		return b.String()
	}
	if max <= 0 {
		return ""
	}
	var b strings.Builder
	n := 0
	for _, r := range s {
		p := piece(r)
		if n+unitLen(p) > max-1 {
			break
		}
		n += unitLen(p)
		b.WriteString(p)
	}
	return b.String() + "…"
}

// discordEmbedBuilder keeps the embed within Discord's total of 6000
// characters: each field takes what is left.
type discordEmbedBuilder struct {
	embed discordEmbed
	left  int
	// reserve is kept, of left, for the short fields still to come (the
	// deadline, the action hash, the request ID), so that long text
	// before them cannot crowd them out.
	reserve int
}

func (b *discordEmbedBuilder) field(name, value string, inline bool) {
	if value == "" || len(b.embed.Fields) == discordFieldsMax {
		return
	}
	u := unitLen(name) + unitLen(value)
	if u > b.left {
		return // the review page shows it
	}
	b.left -= u
	b.embed.Fields = append(b.embed.Fields, discordField{Name: name, Value: value, Inline: inline})
}

// reserved adds a field that was counted in reserve.
func (b *discordEmbedBuilder) reserved(name, value string, inline bool) {
	b.reserve -= unitLen(name) + unitLen(value)
	b.field(name, value, inline)
}

// room is the most a field's value may use: Discord's limit, within what
// is left of the total once the reserve is kept.
func (b *discordEmbedBuilder) room(name string) int {
	return min(discordFieldValueMax, b.left-b.reserve-unitLen(name))
}

// discordMessageOf builds the message for n.
func discordMessageOf(n approval.Notification) discordMessage {
	a := n.Action
	name := a.Name
	if name == "" {
		name = "(unnamed action)"
	}
	open := isOpenType(n.Type) && n.Status.Open()
	label := askLabel(n)

	title := label + ": " + discordEsc(name, min(discordNameMax, discordTitleMax-unitLen(label+": ")), false)
	desc := "Requested by **" + discordEsc(a.RequestedBy, discordWhoMax, false) + "**"
	if !n.Status.Open() && n.Reason != "" {
		desc += "\n**Outcome:** " + discordEsc(string(n.Status), 40, false) + ": " + discordEsc(n.Reason, 1000, false)
	}
	if p := n.Prior; p != nil {
		// Before the requester's message, so that no cut of it hides this.
		desc += fmt.Sprintf("\n:warning: **An identical action was approved and ran at <t:%d:f>:** `%s`", p.At.Unix(), discordCode(p.RequestID, 45))
	}
	if e := n.Edit; e != nil {
		desc += "\n:warning: **Payload edited by " + discordEsc(e.By, discordWhoMax, false) + "**: a vote binds the edited payload, not the one asked for."
		for i, c := range e.Changes {
			if i == maxChangesShown {
				desc += fmt.Sprintf("\n• and %d more (see the review page)", len(e.Changes)-i)
				break
			}
			desc += "\n• " + discordEsc(c.String(), 200, false)
		}
	}
	if a.Message != "" {
		// Each line a block quote: the requester's text, not the gate's.
		desc += "\n> " + strings.ReplaceAll(discordEsc(a.Message, discordMessageMax, true), "\n", "\n> ")
	}
	desc = discordClipMarkup(desc, min(discordDescriptionBudget, discordDescriptionMax))

	var foot []string
	foot = append(foot, string(n.Type))
	if n.Recipient != "" {
		foot = append(foot, "for "+discordPlain(n.Recipient, discordWhoMax))
	}
	if n.Redacted {
		foot = append(foot, "some of the action's fields are redacted here; the review page shows what you may see")
	}
	footer := discordPlain(strings.Join(foot, " · "), discordFooterText)

	b := &discordEmbedBuilder{left: discordEmbedTotalMax - unitLen(title) - unitLen(desc) - unitLen(footer)}
	b.embed = discordEmbed{Title: title, Description: desc, Footer: &discordFooter{Text: footer}, Color: discordColor(n)}
	if u, ok := reviewLink(n.ReviewURL, ""); ok && len(u) <= discordURLMax {
		b.embed.URL = u
	}
	if !n.At.IsZero() {
		b.embed.Timestamp = n.At.UTC().Format("2006-01-02T15:04:05.000Z")
	}
	var deadline, hash, request string
	if open && !n.Deadline.IsZero() {
		deadline = fmt.Sprintf("<t:%d:f> (<t:%d:R>)", n.Deadline.Unix(), n.Deadline.Unix())
		b.reserve += unitLen("Deadline") + unitLen(deadline)
	}
	if n.ActionHash != "" {
		hash = "`" + discordCode(text.Cut(n.ActionHash, 12), 12) + "`"
		b.reserve += unitLen("Action hash") + unitLen(hash)
	}
	if n.RequestID != "" {
		request = "`" + discordCode(n.RequestID, 64) + "`"
		b.reserve += unitLen("Request") + unitLen(request)
	}
	if len(a.Payload) > 0 {
		b.reserve += discordPayloadReserve
	}
	add := func(name, value string, inline bool) {
		if value != "" {
			b.field(name, discordEsc(value, b.room(name), false), inline)
		}
	}
	add("On behalf of", n.OnBehalfOf, true)
	add("Note", n.Note, false)
	if open {
		add("Reason", n.Reason, false)
	}
	if a.Risk != approval.RiskNone {
		add("Risk", a.Risk.String(), true)
	}
	if a.Cost != nil {
		add("Cost", strings.TrimSpace(strconv.FormatFloat(a.Cost.Amount, 'f', -1, 64)+" "+a.Cost.Currency), true)
	}
	if deadline != "" {
		b.reserved("Deadline", deadline, true)
	}
	names := make([]string, 0, len(n.Policies))
	for _, p := range n.Policies {
		names = append(names, p.Name)
	}
	add("Policies", strings.Join(names, ", "), false)
	if lines := voteLines(n, nil); len(lines) > 0 {
		b.field("Votes", discordEsc(strings.Join(lines, "\n"), b.room("Votes"), true), false)
	}
	if len(n.Votes) > 0 || n.Status.Open() {
		if lines := progressLines(n); len(lines) > 0 {
			b.field("Progress", discordEsc(strings.Join(lines, "\n"), b.room("Progress"), true), false)
		}
	}
	if hash != "" {
		b.reserved("Action hash", hash, true)
	}
	if request != "" {
		b.reserved("Request", request, true)
	}
	if p := string(a.Payload); p != "" {
		b.reserve -= discordPayloadReserve
		b.payload(p)
	}
	return discordMessage{Embeds: []discordEmbed{b.embed}, Components: discordButtons(n, open),
		AllowedMentions: discordMentions{Parse: []string{}}}
}

// payload adds the payload field: a code block within the field's room,
// its name saying when it is cut.
func (b *discordEmbedBuilder) payload(p string) {
	const fence = "```\n"
	name := "Payload"
	room := b.room("Payload, the first 000000 of 000000000 characters (the review page shows all)") - 2*unitLen(fence)
	if room < 20 {
		b.field("Payload", "Too long for this message: the review page shows it.", false)
		return
	}
	shown := discordCode(p, room)
	if full := discordCode(p, 2*unitLen(p)); shown != full {
		kept := []rune(strings.TrimSuffix(strings.ReplaceAll(shown, "\u200b", ""), "…"))
		name = fmt.Sprintf("Payload, the first %d of %d characters (the review page shows all)", len(kept), len([]rune(p)))
	}
	b.field(name, fence+shown+"\n```", false)
}

// discordColor is the embed's color: amber while a decision is asked,
// green once approved, grey otherwise.
func discordColor(n approval.Notification) int {
	switch {
	case isOpenType(n.Type) && n.Status.Open():
		return discordColorOpen
	case n.Status == approval.StatusApproved || n.Status == approval.StatusConsumed:
		return discordColorApproved
	}
	return discordColorClosed
}

// discordButtons is the message's action row: Approve and Deny while the
// request is open (when their custom_id fits), and the review page.
func discordButtons(n approval.Notification, open bool) []discordRow {
	var row []discordButton
	if open {
		if approve, ok := discordCustomID(DiscordCustomIDApprove, n.RequestID, n.ActionHash); ok {
			deny, _ := discordCustomID(DiscordCustomIDDeny, n.RequestID, n.ActionHash)
			row = append(row,
				discordButton{Type: discordTypeButton, Style: discordStyleSuccess, Label: "Approve", CustomID: approve},
				discordButton{Type: discordTypeButton, Style: discordStyleDanger, Label: "Deny", CustomID: deny})
		}
	}
	if u, ok := reviewLink(n.ReviewURL, ""); ok && len(u) <= discordURLMax {
		label := "Review"
		if !open {
			label = "View request"
		}
		row = append(row, discordButton{Type: discordTypeButton, Style: discordStyleLink, Label: label, URL: u})
	}
	if len(row) == 0 {
		return nil
	}
	return []discordRow{{Type: discordActionRow, Components: row}}
}

// discordCustomID is a decision button's custom_id: prefix, the request
// ID and, when it fits, the action hash (hex, written as base64url to fit
// Discord's 100 characters). It is false when the request ID does not fit
// or holds a ":".
func discordCustomID(prefix, id, actionHash string) (string, bool) {
	if id == "" || strings.Contains(id, ":") {
		return "", false
	}
	s := prefix + ":" + id
	if len(s) > discordCustomIDMax {
		return "", false
	}
	if raw, err := hex.DecodeString(actionHash); err == nil && len(raw) > 0 {
		if h := s + ":" + base64.RawURLEncoding.EncodeToString(raw); len(h) <= discordCustomIDMax {
			s = h
		}
	}
	return s, true
}

// parseDiscordCustomID reads a decision button's custom_id: the verdict,
// the request ID ("" when the custom_id is malformed) and the action hash
// shown ("" for none). ok is false for a custom_id that is not a decision
// button's.
func parseDiscordCustomID(s string) (v approval.Verdict, id, shown string, ok bool) {
	var rest string
	switch {
	case strings.HasPrefix(s, DiscordCustomIDApprove+":"):
		v, rest = approval.VerdictApprove, strings.TrimPrefix(s, DiscordCustomIDApprove+":")
	case strings.HasPrefix(s, DiscordCustomIDDeny+":"):
		v, rest = approval.VerdictDeny, strings.TrimPrefix(s, DiscordCustomIDDeny+":")
	default:
		return "", "", "", false
	}
	id, enc, hasHash := strings.Cut(rest, ":")
	if hasHash {
		raw, err := base64.RawURLEncoding.DecodeString(enc)
		if err != nil || len(raw) == 0 {
			// A hash that does not decode binds nothing: never decide
			// without the check the button asked for.
			return v, "", "", true
		}
		shown = hex.EncodeToString(raw)
	}
	return v, id, shown, true
}

// discordClipMarkup bounds text that mixes Markdown and escaped text: a
// cut ends in "…", and never leaves a lone backslash before it.
func discordClipMarkup(s string, max int) string {
	if unitLen(s) <= max {
		return s
	}
	cut, n := 0, 0
	for i, r := range s {
		u := utf16.RuneLen(r)
		if n+u > max-1 {
			break
		}
		n += u
		cut = i + len(string(r))
	}
	s = s[:cut]
	if k := len(s) - len(strings.TrimRight(s, `\`)); k%2 == 1 {
		s = s[:len(s)-1]
	}
	return s + "…"
}
