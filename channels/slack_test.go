package channels_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/channels"
)

// The Block Kit structure of a message, as Slack documents it, for the
// parts a message may use here. Decoding refuses unknown fields.
type (
	bkMessage struct {
		Text        string    `json:"text"`
		Blocks      []bkBlock `json:"blocks"`
		UnfurlLinks *bool     `json:"unfurl_links"`
		UnfurlMedia *bool     `json:"unfurl_media"`
	}
	bkBlock struct {
		Type     string            `json:"type"`
		BlockID  string            `json:"block_id"`
		Text     *bkText           `json:"text"`
		Fields   []bkText          `json:"fields"`
		Elements []json.RawMessage `json:"elements"`
	}
	bkText struct {
		Type     string `json:"type"`
		Text     string `json:"text"`
		Emoji    *bool  `json:"emoji"`
		Verbatim *bool  `json:"verbatim"`
	}
	bkButton struct {
		Type     string     `json:"type"`
		Text     bkText     `json:"text"`
		ActionID string     `json:"action_id"`
		URL      string     `json:"url"`
		Value    string     `json:"value"`
		Style    string     `json:"style"`
		Confirm  *bkConfirm `json:"confirm"`
	}
	bkConfirm struct {
		Title   bkText `json:"title"`
		Text    bkText `json:"text"`
		Confirm bkText `json:"confirm"`
		Deny    bkText `json:"deny"`
		Style   string `json:"style"`
	}
)

// blockKitMessage is a message checked against Block Kit's structure and limits.
type blockKitMessage struct {
	bkMessage
	mrkdwn  []string   // every mrkdwn text, the fallback text among them
	plain   []string   // every plain_text
	buttons []bkButton // in order
}

func (d *blockKitMessage) blockTypes() []string {
	var out []string
	for _, b := range d.Blocks {
		out = append(out, b.Type)
	}
	return out
}

func (d *blockKitMessage) button(actionID string) (bkButton, bool) {
	for _, b := range d.buttons {
		if b.ActionID == actionID {
			return b, true
		}
	}
	return bkButton{}, false
}

func (d *blockKitMessage) allMrkdwn() string { return strings.Join(d.mrkdwn, "\n") }

func utf16Units(s string) int { return len(utf16.Encode([]rune(s))) }

func strictJSON(t *testing.T, raw []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(v), "%s", raw)
}

// decodeBlockKit decodes body and checks it against Block Kit: block
// types, text object types and lengths, field and element counts, button
// form, and that mrkdwn carries no control sequence but a date.
func decodeBlockKit(t *testing.T, body []byte) *blockKitMessage {
	t.Helper()
	return decodeBlockKitLinks(t, body, nil)
}

// decodeBlockKitLinks is decodeBlockKit for a message whose mrkdwn may
// link to the URLs in links, and to no other.
func decodeBlockKitLinks(t *testing.T, body []byte, links map[string]bool) *blockKitMessage {
	t.Helper()
	d := &blockKitMessage{}
	strictJSON(t, body, &d.bkMessage)
	require.NotEmpty(t, d.Text, "a message has a fallback text")
	require.LessOrEqual(t, utf16Units(d.Text), 40000)
	d.mrkdwn = append(d.mrkdwn, d.Text)
	require.NotNil(t, d.UnfurlLinks)
	require.False(t, *d.UnfurlLinks, "links in a message are not unfurled")
	require.NotEmpty(t, d.Blocks)
	require.LessOrEqual(t, len(d.Blocks), 50)
	text := func(o bkText, max int, kinds ...string) {
		t.Helper()
		require.Contains(t, kinds, o.Type)
		require.NotEmpty(t, o.Text)
		require.LessOrEqual(t, utf16Units(o.Text), max, "%q", o.Text)
		if o.Type == "mrkdwn" {
			require.Nil(t, o.Emoji, "emoji is for plain_text only")
			d.mrkdwn = append(d.mrkdwn, o.Text)
		} else {
			require.Nil(t, o.Verbatim, "verbatim is for mrkdwn only")
			d.plain = append(d.plain, o.Text)
		}
	}
	for _, b := range d.Blocks {
		require.LessOrEqual(t, len(b.BlockID), 255)
		switch b.Type {
		case "header":
			require.NotNil(t, b.Text)
			text(*b.Text, 150, "plain_text")
			require.Empty(t, b.Fields)
			require.Empty(t, b.Elements)
		case "section":
			require.True(t, b.Text != nil || len(b.Fields) > 0, "a section has text or fields")
			if b.Text != nil {
				text(*b.Text, 3000, "mrkdwn", "plain_text")
			}
			require.LessOrEqual(t, len(b.Fields), 10)
			for _, f := range b.Fields {
				text(f, 2000, "mrkdwn", "plain_text")
			}
			require.Empty(t, b.Elements)
		case "context":
			require.NotEmpty(t, b.Elements)
			require.LessOrEqual(t, len(b.Elements), 10)
			for _, raw := range b.Elements {
				var o bkText
				strictJSON(t, raw, &o)
				text(o, 3000, "mrkdwn", "plain_text")
			}
			require.Nil(t, b.Text)
		case "actions":
			require.NotEmpty(t, b.Elements)
			require.LessOrEqual(t, len(b.Elements), 25)
			ids := map[string]bool{}
			for _, raw := range b.Elements {
				var btn bkButton
				strictJSON(t, raw, &btn)
				require.Equal(t, "button", btn.Type)
				text(btn.Text, 75, "plain_text")
				require.LessOrEqual(t, len(btn.ActionID), 255)
				require.False(t, ids[btn.ActionID], "action_id %q is unique in its block", btn.ActionID)
				ids[btn.ActionID] = true
				require.LessOrEqual(t, len(btn.URL), 3000)
				if btn.URL != "" {
					require.Regexp(t, `^https?://`, btn.URL)
				}
				require.LessOrEqual(t, utf16Units(btn.Value), 2000)
				require.Contains(t, []string{"", "primary", "danger"}, btn.Style)
				if c := btn.Confirm; c != nil {
					text(c.Title, 100, "plain_text")
					text(c.Text, 300, "plain_text", "mrkdwn")
					text(c.Confirm, 30, "plain_text")
					text(c.Deny, 30, "plain_text")
					require.Contains(t, []string{"", "primary", "danger"}, c.Style)
				}
				d.buttons = append(d.buttons, btn)
			}
			require.Nil(t, b.Text)
		case "divider":
			require.Nil(t, b.Text)
			require.Empty(t, b.Fields)
			require.Empty(t, b.Elements)
		default:
			t.Fatalf("block type %q", b.Type)
		}
	}
	for _, m := range d.mrkdwn {
		requireEscapedLinks(t, m, links)
	}
	return d
}

// requireEscaped checks that every & in mrkdwn begins an entity and every
// < a date: no mention, link or broken entity can come from the text.
func requireEscaped(t *testing.T, m string) {
	t.Helper()
	requireEscapedLinks(t, m, nil)
}

// requireEscapedLinks is requireEscaped allowing links (<url|label>) to
// the URLs in links, each with an escaped label.
func requireEscapedLinks(t *testing.T, m string, links map[string]bool) {
	t.Helper()
	for i := range len(m) {
		if m[i] == '<' && !strings.HasPrefix(m[i:], "<!date^") && links != nil {
			end := strings.IndexByte(m[i:], '>')
			require.Positive(t, end, "an unclosed link at %d in %q", i, m)
			target, label, ok := strings.Cut(m[i+1:i+end], "|")
			require.True(t, ok, "a link without a label at %d in %q", i, m)
			require.True(t, links[strings.ReplaceAll(target, "&amp;", "&")], "a link to %q in %q", target, m)
			require.NotContains(t, label, "<")
			continue
		}
		switch m[i] {
		case '&':
			rest := m[i:]
			require.True(t, strings.HasPrefix(rest, "&amp;") || strings.HasPrefix(rest, "&lt;") || strings.HasPrefix(rest, "&gt;"),
				"a bare & at %d in %q", i, m)
		case '<':
			require.True(t, strings.HasPrefix(m[i:], "<!date^"), "a control sequence at %d in %q", i, m)
			end := strings.IndexByte(m[i:], '>')
			require.Positive(t, end)
			require.Regexp(t, `^<!date\^\d+\^\{date_short_pretty\} \{time\}\|[0-9: -]+UTC>$`, m[i:i+end+1])
		}
	}
}

// slackServer is a TLS receiver answering like Slack's incoming webhook.
func slackServer(t *testing.T, status int, answer string) (*httptest.Server, func() [][]byte) {
	t.Helper()
	var mu sync.Mutex
	var bodies [][]byte
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			http.Error(w, "invalid_payload", http.StatusBadRequest)
			return
		}
		mu.Lock()
		bodies = append(bodies, body)
		mu.Unlock()
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "30")
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	return srv, func() [][]byte {
		mu.Lock()
		defer mu.Unlock()
		return append([][]byte(nil), bodies...)
	}
}

func newSlack(t *testing.T, srv *httptest.Server, interactive bool) *channels.Slack {
	t.Helper()
	s, err := channels.NewSlack(channels.SlackConfig{WebhookURL: srv.URL + "/services/T0/B0/XXXX",
		Client: srv.Client(), Interactive: interactive, LinkButtons: !interactive})
	require.NoError(t, err)
	return s
}

// TestSlackDefaultHasNoBearerLinks: by default a Slack message offers only
// the Review button: an incoming webhook posts every recipient's message
// to one channel, and their approve links would let anyone there decide
// as each of them.
func TestSlackDefaultHasNoBearerLinks(t *testing.T) {
	t.Parallel()
	var body []byte
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ = io.ReadAll(r.Body)
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	s, err := channels.NewSlack(channels.SlackConfig{WebhookURL: srv.URL + "/services/T0/B0/XXXX", Client: srv.Client()})
	require.NoError(t, err)
	n := approval.Notification{ID: "n-1", Type: approval.NotifyRequested, RequestID: "req_0123456789abcdef0123456789abcdef",
		Recipient: "alice", Status: approval.StatusPending, Action: approval.Action{Name: "deploy"},
		ReviewURL:  "https://approvals.example.com/approvals/req_0123456789abcdef0123456789abcdef",
		ApproveURL: "https://approvals.example.com/approvals/req_0123456789abcdef0123456789abcdef?token=secret-approve&verdict=approve",
		DenyURL:    "https://approvals.example.com/approvals/req_0123456789abcdef0123456789abcdef?token=secret-deny&verdict=deny"}
	require.NoError(t, s.Send(t.Context(), n))
	require.NotContains(t, string(body), "secret-approve")
	require.NotContains(t, string(body), "secret-deny")
	require.Contains(t, string(body), channels.SlackActionReview)
}

// postSlack sends n through a Slack channel to a fresh server and returns
// the decoded message.
func postSlack(t *testing.T, n approval.Notification, interactive bool) *blockKitMessage {
	t.Helper()
	srv, got := slackServer(t, http.StatusOK, "ok")
	require.NoError(t, newSlack(t, srv, interactive).Send(context.Background(), n))
	bodies := got()
	require.Len(t, bodies, 1)
	return decodeBlockKit(t, bodies[0])
}

// hostile fills n with text that would mention, link or break mrkdwn.
func hostile(n approval.Notification) approval.Notification {
	n.Action.Name = "deploy:<!channel>"
	n.Action.RequestedBy = "<@U024BE7LH>"
	n.Action.Message = "Click <https://evil.example|here> & <!here>\nthen > quote"
	n.Reason = "fees > 5% & <https://evil.example|click>"
	n.Recipient = "<!everyone>"
	n.Policies = []approval.PolicyRef{{Name: "a&b"}, {Name: "<!subteam^S123>"}}
	return n
}

func TestSlackMessageForOpenRequest(t *testing.T) {
	t.Parallel()
	n := hostile(openNotification())
	d := postSlack(t, n, false)
	require.Equal(t, []string{"header", "section", "section", "context", "actions"}, d.blockTypes())
	require.Equal(t, "Approval needed: deploy:<!channel>", d.Blocks[0].Text.Text,
		"plain_text shows the name as it is: Slack parses nothing in it")

	all := d.allMrkdwn()
	for _, raw := range []string{"<!channel>", "<@U024BE7LH>", "<https://evil", "<!here>", "<!everyone>", "<!subteam", "& <"} {
		require.NotContains(t, all, raw)
	}
	for _, escaped := range []string{
		"deploy:&lt;!channel&gt;", "&lt;@U024BE7LH&gt;", "&lt;https://evil.example|here&gt; &amp; &lt;!here&gt;",
		"fees &gt; 5% &amp; &lt;https://evil.example|click&gt;", "for &lt;!everyone&gt;", "a&amp;b, &lt;!subteam^S123&gt;",
	} {
		require.Contains(t, all, escaped)
	}
	require.Contains(t, d.Blocks[1].Text.Text, "\n>Click", "the requester's message is quoted")
	require.Contains(t, d.Blocks[1].Text.Text, "\n>then &gt; quote", "each of its lines")
	for _, m := range []*bkText{d.Blocks[1].Text, &d.Blocks[2].Fields[0]} {
		require.NotNil(t, m.Verbatim)
		require.True(t, *m.Verbatim, "Slack links and mentions nothing on its own")
	}

	fields := map[string]string{}
	for _, f := range d.Blocks[2].Fields {
		label, value, ok := strings.Cut(f.Text, "\n")
		require.True(t, ok, "%q", f.Text)
		fields[label] = value
	}
	require.Equal(t, map[string]string{
		"*Requested by*": "&lt;@U024BE7LH&gt;",
		"*Reason*":       "fees &gt; 5% &amp; &lt;https://evil.example|click&gt;",
		"*Risk*":         "high",
		"*Cost*":         "5000 USD",
		"*Deadline*":     fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|2026-03-02 09:00 UTC>", n.Deadline.Unix()),
		"*Policies*":     "a&amp;b, &lt;!subteam^S123&gt;",
		"*Action hash*":  "`9f86d081884c`",
		"*Request*":      "`" + n.RequestID + "`",
	}, fields)
	var ctxLine bkText
	require.NoError(t, json.Unmarshal(d.Blocks[3].Elements[0], &ctxLine))
	require.Equal(t, fmt.Sprintf("`approval.requested` · for &lt;!everyone&gt; · <!date^%d^{date_short_pretty} {time}|2026-03-01 09:00 UTC>",
		n.At.Unix()), ctxLine.Text)

	approve, ok := d.button(channels.SlackActionApproveLink)
	require.True(t, ok)
	require.Equal(t, bkButton{Type: "button", Text: bkText{Type: "plain_text", Text: "Approve"},
		ActionID: channels.SlackActionApproveLink, URL: n.ApproveURL, Value: n.RequestID, Style: "primary"}, approve)
	deny, ok := d.button(channels.SlackActionDenyLink)
	require.True(t, ok)
	require.Equal(t, n.DenyURL, deny.URL)
	require.Equal(t, "danger", deny.Style)
	review, ok := d.button(channels.SlackActionReview)
	require.True(t, ok)
	require.Equal(t, n.ReviewURL, review.URL)
	require.Empty(t, review.Style)
	require.Len(t, d.buttons, 3)
	_, ok = d.button(channels.SlackActionApprove)
	require.False(t, ok, "a link button never decides through interactivity as well")
}

func TestSlackInteractiveButtons(t *testing.T) {
	t.Parallel()
	for _, typ := range []approval.NotificationType{approval.NotifyRequested, approval.NotifyReminder, approval.NotifyEscalated} {
		t.Run(string(typ), func(t *testing.T) {
			t.Parallel()
			n := openNotification()
			n.Type = typ
			d := postSlack(t, n, true)
			require.Len(t, d.buttons, 3)
			for _, tc := range []struct{ id, style, verb string }{
				{channels.SlackActionApprove, "primary", "Approve"},
				{channels.SlackActionDeny, "danger", "Deny"},
			} {
				b, ok := d.button(tc.id)
				require.True(t, ok, tc.id)
				require.Empty(t, b.URL, "an interactive button carries no link: it decides as whoever clicks")
				require.Equal(t, n.RequestID+" "+n.ActionHash, b.Value)
				require.Equal(t, tc.style, b.Style)
				require.Equal(t, tc.verb, b.Text.Text)
				require.NotNil(t, b.Confirm, "Slack asks before it decides")
				require.Equal(t, tc.verb, b.Confirm.Confirm.Text)
				require.Contains(t, b.Confirm.Text.Text, "wire-transfer")
			}
			review, ok := d.button(channels.SlackActionReview)
			require.True(t, ok)
			require.Equal(t, n.ReviewURL, review.URL)
		})
	}
	for _, label := range []struct {
		typ  approval.NotificationType
		want string
	}{
		{approval.NotifyReminder, "Reminder: approval needed: wire-transfer"},
		{approval.NotifyEscalated, "Escalated: approval needed: wire-transfer"},
	} {
		n := openNotification()
		n.Type = label.typ
		require.Equal(t, label.want, postSlack(t, n, true).Blocks[0].Text.Text)
	}
}

// A resolved or timed-out request's message shows the outcome, and offers
// no decision.
func TestSlackOutcomeMessages(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		typ    approval.NotificationType
		status approval.Status
		reason string
		header string
	}{
		{approval.NotifyResolved, approval.StatusApproved, "quorum met", "Approved: wire-transfer"},
		{approval.NotifyResolved, approval.StatusDenied, "denied by bob: <!channel> no", "Denied: wire-transfer"},
		{approval.NotifyResolved, approval.StatusCancelled, "cancelled by user-1", "Cancelled: wire-transfer"},
		{approval.NotifyTimedOut, approval.StatusTimedOut, "no decision within 24h", "Timed out: wire-transfer"},
		// An open type for a request no longer open (a race) shows no buttons either.
		{approval.NotifyReminder, approval.StatusApproved, "quorum met", "Reminder: approval needed: wire-transfer"},
	} {
		for _, interactive := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/%s/%v", tc.typ, tc.status, interactive), func(t *testing.T) {
				t.Parallel()
				n := openNotification()
				n.Type, n.Status, n.Reason = tc.typ, tc.status, tc.reason
				n.ApproveURL, n.DenyURL = "", "" // the gate sends no links for a closed request
				if interactive {
					n.ApproveURL = "https://approvals.example.com/stale-link" // and none is shown if it did
				}
				d := postSlack(t, n, interactive)
				require.Equal(t, tc.header, d.Blocks[0].Text.Text)
				require.Contains(t, d.Blocks[1].Text.Text, "*Outcome:* "+string(tc.status)+": ")
				require.NotContains(t, d.Blocks[1].Text.Text, "<!channel>")
				require.Len(t, d.buttons, 1, "only the way to the request")
				require.Equal(t, channels.SlackActionReview, d.buttons[0].ActionID)
				require.Equal(t, "View request", d.buttons[0].Text.Text)
				for _, f := range d.Blocks[2].Fields {
					require.NotContains(t, f.Text, "*Deadline*")
					require.NotContains(t, f.Text, "*Reason*", "the reason is the outcome's, in the summary")
				}
			})
		}
	}
}

// Without links a message offers only what works: interactive buttons,
// or none.
func TestSlackButtonsNeedLinksOrInteractivity(t *testing.T) {
	t.Parallel()
	n := openNotification()
	n.ReviewURL, n.ApproveURL, n.DenyURL = "", "", ""
	d := postSlack(t, n, false)
	require.Equal(t, []string{"header", "section", "section", "context"}, d.blockTypes(), "no actions block")

	d = postSlack(t, n, true)
	require.Len(t, d.buttons, 2)
	require.Equal(t, channels.SlackActionApprove, d.buttons[0].ActionID)
	require.Equal(t, channels.SlackActionDeny, d.buttons[1].ActionID)

	// A link longer than Slack takes would not work cut short: it is left out.
	n = openNotification()
	n.ApproveURL = "https://approvals.example.com/?t=" + strings.Repeat("a", 3000)
	n.DenyURL = "javascript:alert(1)"
	d = postSlack(t, n, false)
	require.Len(t, d.buttons, 1)
	require.Equal(t, channels.SlackActionReview, d.buttons[0].ActionID)
}

// Long text is clipped to Slack's limits, never inside an entity, and a
// cut is marked.
func TestSlackClipsToLimits(t *testing.T) {
	t.Parallel()
	n := openNotification()
	n.Action.Name = strings.Repeat("<n>", 2000)
	n.Action.RequestedBy = strings.Repeat("r&", 2000)
	n.Action.Message = strings.Repeat("a&b <c> ", 3000)
	n.Reason = strings.Repeat("😀", 3000) // two UTF-16 units each
	n.Recipient = strings.Repeat("x", 5000)
	n.ActionHash = strings.Repeat("&", 100)
	for i := range 400 {
		n.Policies = append(n.Policies, approval.PolicyRef{Name: "policy-" + strconv.Itoa(i)})
	}
	d := postSlack(t, n, true) // decodeBlockKit checks every limit and entity
	require.Equal(t, 150, utf16Units(d.Blocks[0].Text.Text))
	require.True(t, strings.HasSuffix(d.Blocks[0].Text.Text, "…"))
	require.True(t, strings.HasSuffix(d.Blocks[1].Text.Text, "…"))
	require.LessOrEqual(t, utf16Units(d.Blocks[1].Text.Text), 3000)
	require.Greater(t, utf16Units(d.Blocks[1].Text.Text), 2900, "the message fills the section")
	for _, f := range d.Blocks[2].Fields {
		if strings.HasPrefix(f.Text, "*Reason*") || strings.HasPrefix(f.Text, "*Policies*") {
			require.True(t, strings.HasSuffix(f.Text, "…"), "%.40q", f.Text)
			require.Greater(t, utf16Units(f.Text), 1990)
		}
	}
	approve, ok := d.button(channels.SlackActionApprove)
	require.True(t, ok)
	require.LessOrEqual(t, utf16Units(approve.Confirm.Text.Text), 300)
}

// Text of control characters and invalid UTF-8 arrives as spaces and
// U+FFFD, and a plain_text never breaks a line.
func TestSlackSanitizesControlCharacters(t *testing.T) {
	t.Parallel()
	n := openNotification()
	n.Action.Name = "deploy\n\x00now"
	n.Action.Message = "line one\nline\x1b two\xff"
	d := postSlack(t, n, false)
	require.Equal(t, "Approval needed: deploy  now", d.Blocks[0].Text.Text)
	require.Contains(t, d.Blocks[1].Text.Text, ">line one\n>line  two\uFFFD")
}

func TestSlackAnswers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status int
		body   string
		want   sendOutcome
		wait   time.Duration
	}{
		{200, "ok", sentOK, 0},
		{200, "ok\n", sentOK, 0},
		{200, "<html>captive portal</html>", sentPermanent, 0},
		{204, "", sentPermanent, 0},
		{400, "invalid_payload", sentPermanent, 0},
		{400, "invalid_blocks", sentPermanent, 0},
		{403, "action_prohibited", sentPermanent, 0},
		{404, "no_service", sentPermanent, 0},
		{404, "channel_not_found", sentPermanent, 0},
		{410, "channel_is_archived", sentPermanent, 0},
		{429, "rate_limited", sentTransient, 30 * time.Second},
		{500, "rollup_error", sentTransient, 0},
		{503, "", sentTransient, 0},
	} {
		t.Run(fmt.Sprintf("%d/%s", tc.status, tc.body), func(t *testing.T) {
			t.Parallel()
			srv, got := slackServer(t, tc.status, tc.body)
			err := newSlack(t, srv, false).Send(context.Background(), openNotification())
			kind, wait := sendOutcomeOf(t, err)
			require.Equal(t, tc.want, kind, "error: %v", err)
			require.Equal(t, tc.wait, wait)
			require.Len(t, got(), 1)
			if err != nil {
				require.NotContains(t, err.Error(), "XXXX", "the webhook URL's secret path is not in errors")
				if tc.body != "" {
					require.Contains(t, err.Error(), strings.TrimSpace(tc.body), "Slack's error code is in the error")
				}
			}
		})
	}
}

func TestSlackNetworkErrorHidesWebhookURL(t *testing.T) {
	t.Parallel()
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	s, err := channels.NewSlack(channels.SlackConfig{WebhookURL: srv.URL + "/services/T0/B0/s3cr3t", Client: srv.Client()})
	require.NoError(t, err)
	srv.Close()
	err = s.Send(context.Background(), openNotification())
	kind, _ := sendOutcomeOf(t, err)
	require.Equal(t, sentTransient, kind, "error: %v", err)
	require.NotContains(t, err.Error(), "s3cr3t")
	require.NotContains(t, err.Error(), "/services")
}

func TestNewSlackValidatesConfig(t *testing.T) {
	t.Parallel()
	for name, url := range map[string]string{
		"empty":     "",
		"http":      "http://hooks.slack.com/services/T0/B0/secret-path",
		"no host":   "https:///services/T0/B0/secret-path",
		"bad parse": "https://hooks.slack.com/%zz/secret-path",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := channels.NewSlack(channels.SlackConfig{WebhookURL: url})
			require.ErrorIs(t, err, channels.ErrInvalidConfig)
			require.ErrorContains(t, err, "SlackConfig.WebhookURL")
			require.NotContains(t, err.Error(), "secret-path")
		})
	}
	s, err := channels.NewSlack(channels.SlackConfig{WebhookURL: "https://hooks.slack.com/services/T0/B0/X"})
	require.NoError(t, err)
	require.Equal(t, "slack", s.Name())
	s, err = channels.NewSlack(channels.SlackConfig{WebhookURL: "https://hooks.slack.com/services/T0/B0/X", Name: "slack-ops"})
	require.NoError(t, err)
	require.Equal(t, "slack-ops", s.Name())
}

// Wired into a gate, the Slack channel posts a valid message per approver.
func TestSlackFromGate(t *testing.T) {
	t.Parallel()
	srv, got := slackServer(t, http.StatusOK, "ok")
	gate := newFixtureGate(t, func(c *approval.Config) {
		c.Channels = []approval.Channel{newSlack(t, srv, true)}
		c.BaseURL = "https://approvals.example.com"
	})
	id := guardDeploy(t, gate)
	require.NoError(t, gate.Close(context.Background()))
	bodies := got()
	require.Len(t, bodies, 2, "one message per approver")
	for _, b := range bodies {
		d := decodeBlockKit(t, b)
		require.Equal(t, "Approval needed: deploy:production", d.Blocks[0].Text.Text)
		require.Contains(t, d.Blocks[1].Text.Text, "Roll out &lt;!channel&gt; &amp; friends")
		approve, ok := d.button(channels.SlackActionApprove)
		require.True(t, ok)
		require.Equal(t, id+" "+requestOf(t, gate, id).ActionHash, approve.Value, "the button binds the action shown")
		review, ok := d.button(channels.SlackActionReview)
		require.True(t, ok)
		require.Equal(t, "https://approvals.example.com/approvals/"+id, review.URL)
	}
}

// TestSlackAlertAndDelegate: an alert shows the open request's reason and
// deadline, no outcome and no decision buttons; a delegate's message and
// a step's note have their fields.
func TestSlackAlertAndDelegate(t *testing.T) {
	t.Parallel()
	n := openNotification()
	n.Type, n.Note, n.OnBehalfOf = approval.NotifyAlert, "no answer within 24h", "alice"
	d := postSlack(t, n, true)
	require.True(t, strings.HasPrefix(d.Blocks[0].Text.Text, "For your information: "), d.Blocks[0].Text.Text)
	require.NotContains(t, d.Blocks[1].Text.Text, "*Outcome:*")
	require.Len(t, d.buttons, 1, "only the way to the request")
	require.Equal(t, channels.SlackActionReview, d.buttons[0].ActionID)
	var fields []string
	for _, f := range d.Blocks[2].Fields {
		fields = append(fields, f.Text)
	}
	joined := strings.Join(fields, "\n")
	require.Contains(t, joined, "*On behalf of*\nalice")
	require.Contains(t, joined, "*Note*\nno answer within 24h")
	require.Contains(t, joined, "*Reason*")
	require.Contains(t, joined, "*Deadline*")
}

func requestOf(t *testing.T, gate *approval.Gate, id string) *approval.Request {
	t.Helper()
	r, err := gate.Get(context.Background(), id)
	require.NoError(t, err)
	return r
}

// TestSlackPriorRun: a request whose identical action ran recently says
// so in its summary, with the time and the earlier request, before the
// requester's message; one without says nothing of it.
func TestSlackPriorRun(t *testing.T) {
	t.Parallel()
	n := openNotification()
	ranAt := time.Date(2026, 2, 28, 14, 3, 0, 0, time.UTC)
	n.Prior = &approval.PriorRun{RequestID: "req_0195a1b2c3d47e8f9a0b1c2d3e4f0000", At: ranAt}
	d := postSlack(t, n, false)
	summary := d.Blocks[1].Text.Text
	line := fmt.Sprintf(":warning: *An identical action was approved and ran at <!date^%d^{date_short_pretty} {time}|2026-02-28 14:03 UTC>:* `req_0195a1b2c3d47e8f9a0b1c2d3e4f0000`",
		ranAt.Unix())
	require.Contains(t, summary, line)
	require.Less(t, strings.Index(summary, line), strings.Index(summary, "\n>Pay the March invoice"), "before the requester's message")

	require.NotContains(t, postSlack(t, openNotification(), false).allMrkdwn(), "identical action")
}
