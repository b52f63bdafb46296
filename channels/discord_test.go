package channels_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/channels"
)

// The message Discord's Execute Webhook takes
// (https://discord.com/developers/docs/resources/webhook#execute-webhook:
// wait=true returns the message; with_components=true lets an
// application-owned webhook send interactive components), with one embed
// (https://discord.com/developers/docs/resources/message#embed-object-embed-limits:
// title 256, description 4096, 25 fields, field name 256 and value 1024,
// footer 2048, 6000 in all) and an action row of buttons
// (https://discord.com/developers/docs/components/reference#button:
// type 2, style 3 success, 4 danger, 5 link with a url; custom_id at most
// 100 characters), allowing no mentions
// (https://discord.com/developers/docs/resources/message#allowed-mentions-object).
type (
	discordMsg struct {
		Content string `json:"content"`
		Embeds  []struct {
			Title       string `json:"title"`
			Description string `json:"description"`
			URL         string `json:"url"`
			Color       int    `json:"color"`
			Timestamp   string `json:"timestamp"`
			Fields      []struct {
				Name   string `json:"name"`
				Value  string `json:"value"`
				Inline bool   `json:"inline"`
			} `json:"fields"`
			Footer *struct {
				Text string `json:"text"`
			} `json:"footer"`
		} `json:"embeds"`
		Components []struct {
			Type       int `json:"type"`
			Components []struct {
				Type     int    `json:"type"`
				Style    int    `json:"style"`
				Label    string `json:"label"`
				CustomID string `json:"custom_id"`
				URL      string `json:"url"`
			} `json:"components"`
		} `json:"components"`
		AllowedMentions *struct {
			Parse []string `json:"parse"`
		} `json:"allowed_mentions"`
	}
)

func decodeDiscord(t *testing.T, body []byte) discordMsg {
	t.Helper()
	var m discordMsg
	strictJSON(t, body, &m)
	require.Len(t, m.Embeds, 1)
	require.NotNil(t, m.AllowedMentions)
	require.NotNil(t, m.AllowedMentions.Parse, "an empty list, not null")
	require.Empty(t, m.AllowedMentions.Parse, "no mention notifies anyone")
	// Discord's limits.
	e := m.Embeds[0]
	total := utf16Units(e.Title) + utf16Units(e.Description)
	require.LessOrEqual(t, utf16Units(e.Title), 256)
	require.LessOrEqual(t, utf16Units(e.Description), 4096)
	require.LessOrEqual(t, len(e.Fields), 25)
	for _, f := range e.Fields {
		require.NotEmpty(t, f.Name)
		require.NotEmpty(t, f.Value)
		require.LessOrEqual(t, utf16Units(f.Name), 256)
		require.LessOrEqual(t, utf16Units(f.Value), 1024)
		total += utf16Units(f.Name) + utf16Units(f.Value)
	}
	if e.Footer != nil {
		require.LessOrEqual(t, utf16Units(e.Footer.Text), 2048)
		total += utf16Units(e.Footer.Text)
	}
	require.LessOrEqual(t, total, 6000)
	for _, row := range m.Components {
		require.Equal(t, 1, row.Type, "an action row")
		require.LessOrEqual(t, len(row.Components), 5)
		for _, b := range row.Components {
			require.Equal(t, 2, b.Type, "a button")
			require.LessOrEqual(t, len(b.CustomID), 100)
			require.LessOrEqual(t, utf16Units(b.Label), 80)
			if b.Style == 5 {
				require.NotEmpty(t, b.URL)
				require.Empty(t, b.CustomID)
			} else {
				require.Empty(t, b.URL)
				require.NotEmpty(t, b.CustomID)
			}
		}
	}
	return m
}

func (m discordMsg) field(name string) (string, bool) {
	for _, f := range m.Embeds[0].Fields {
		if f.Name == name || strings.HasPrefix(f.Name, name+",") {
			return f.Value, true
		}
	}
	return "", false
}

func (m discordMsg) buttons() map[string]string {
	out := map[string]string{}
	for _, row := range m.Components {
		for _, b := range row.Components {
			out[b.Label] = b.CustomID + b.URL
		}
	}
	return out
}

// discordServer stands in for Discord's Execute Webhook: it answers each
// POST of JSON to the webhook's path with status and answer.
func discordServer(t *testing.T, status int, answer string) (*httptest.Server, func() []*http.Request, func() [][]byte) {
	t.Helper()
	var mu sync.Mutex
	var reqs []*http.Request
	var bodies [][]byte
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/api/webhooks/123/hook-token" ||
			r.Header.Get("Content-Type") != "application/json; charset=utf-8" {
			http.Error(w, `{"message": "Unknown Webhook", "code": 10015}`, http.StatusNotFound)
			return
		}
		mu.Lock()
		reqs = append(reqs, r)
		bodies = append(bodies, body)
		mu.Unlock()
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "3")
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []*http.Request {
			mu.Lock()
			defer mu.Unlock()
			return append([]*http.Request(nil), reqs...)
		}, func() [][]byte {
			mu.Lock()
			defer mu.Unlock()
			return append([][]byte(nil), bodies...)
		}
}

const discordAccepted = `{"id":"1180000000000000001","type":0,"channel_id":"1170000000000000001","content":""}`

func newDiscord(t *testing.T, srv *httptest.Server) *channels.Discord {
	t.Helper()
	d, err := channels.NewDiscord(channels.DiscordConfig{WebhookURL: srv.URL + "/api/webhooks/123/hook-token", Client: srv.Client()})
	require.NoError(t, err)
	return d
}

func postDiscord(t *testing.T, n approval.Notification) discordMsg {
	t.Helper()
	srv, reqs, bodies := discordServer(t, http.StatusOK, discordAccepted)
	require.NoError(t, newDiscord(t, srv).Send(context.Background(), n))
	require.Len(t, bodies(), 1)
	q := reqs()[0].URL.Query()
	require.Equal(t, "true", q.Get("wait"), "Discord confirms the message")
	require.Equal(t, "true", q.Get("with_components"))
	require.NotContains(t, string(bodies()[0]), "token", "no recipient's bearer link")
	return decodeDiscord(t, bodies()[0])
}

func TestDiscordMessageForOpenRequest(t *testing.T) {
	t.Parallel()
	n := openNotification()
	n.Action.Payload = []byte(`{"to":"ACME","amount":5000,"memo":"` + "```" + `@everyone"}`)
	m := postDiscord(t, n)
	e := m.Embeds[0]
	require.Equal(t, "Approval needed: wire\\-transfer", e.Title)
	require.Equal(t, "Requested by **user\\-1**\n> Pay the March invoice", e.Description)
	require.Equal(t, "https://approvals.example.com/approvals/req_0195a1b2c3d47e8f9a0b1c2d3e4f5a6b", e.URL)
	require.Equal(t, "2026-03-01T09:00:00.000Z", e.Timestamp)
	for name, want := range map[string]string{
		"Reason":      "transfers of 1\\,000 USD or more",
		"Risk":        "high",
		"Cost":        "5000 USD",
		"Policies":    "high\\_spend",
		"Action hash": "`9f86d081884c`",
		"Request":     "`req_0195a1b2c3d47e8f9a0b1c2d3e4f5a6b`",
		"Deadline":    "<t:1772442000:f> (<t:1772442000:R>)",
	} {
		got, ok := m.field(name)
		require.True(t, ok, name)
		require.Equal(t, want, got, name)
	}
	payload, ok := m.field("Payload")
	require.True(t, ok)
	require.Equal(t, "```\n{\"to\":\"ACME\",\"amount\":5000,\"memo\":\"`\u200b`\u200b`\u200b@everyone\"}\n```", payload,
		"a code block the payload cannot close")
	require.Equal(t, "approval.requested · for alice", e.Footer.Text)

	b := m.buttons()
	require.Len(t, b, 3)
	require.Equal(t, "approval:approve:req_0195a1b2c3d47e8f9a0b1c2d3e4f5a6b:n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg", b["Approve"])
	require.Equal(t, "approval:deny:req_0195a1b2c3d47e8f9a0b1c2d3e4f5a6b:n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg", b["Deny"])
	require.Equal(t, "https://approvals.example.com/approvals/req_0195a1b2c3d47e8f9a0b1c2d3e4f5a6b", b["Review"])
}

// Text from the action or the host is escaped: no Markdown, mention,
// link, emoji or timestamp takes effect.
func TestDiscordHostileTextEscaped(t *testing.T) {
	t.Parallel()
	n := openNotification()
	n.Action.Name = "deploy **now** <@&123> @everyone"
	n.Action.RequestedBy = "[x](https://evil.example) :skull:"
	n.Action.Message = "# Approve\n> quoted\n<t:0:R> ||spoiler|| `code`"
	n.Recipient = "@here"
	n.Policies = []approval.PolicyRef{{Name: "~~p~~"}}
	m := postDiscord(t, n)
	e := m.Embeds[0]
	require.Equal(t, `Approval needed: deploy \*\*now\*\* \<\@\&123\> \@everyone`, e.Title)
	require.Equal(t, "Requested by **\\[x\\]\\(https\\:\\/\\/evil\\.example\\) \\:skull\\:**\n"+
		"> \\# Approve\n> \\> quoted\n> \\<t\\:0\\:R\\> \\|\\|spoiler\\|\\| \\`code\\`", e.Description)
	p, _ := m.field("Policies")
	require.Equal(t, `\~\~p\~\~`, p)
	require.Equal(t, "approval.requested · for @here", e.Footer.Text, "a footer shows no Markdown and mentions no one")
}

// A resolved request shows the outcome and a link to the request only.
func TestDiscordOutcomeMessage(t *testing.T) {
	t.Parallel()
	n := openNotification()
	n.Type = approval.NotifyResolved
	n.Status = approval.StatusApproved
	n.Reason = "approved by alice"
	n.Redacted = true
	m := postDiscord(t, n)
	e := m.Embeds[0]
	require.Equal(t, "Approved: wire\\-transfer", e.Title)
	require.Contains(t, e.Description, "\n**Outcome:** approved: approved by alice")
	_, ok := m.field("Deadline")
	require.False(t, ok)
	require.Contains(t, e.Footer.Text, "redacted")
	require.Equal(t, map[string]string{"View request": "https://approvals.example.com/approvals/req_0195a1b2c3d47e8f9a0b1c2d3e4f5a6b"}, m.buttons())
}

// Long text and a large payload are cut to Discord's limits, and the
// payload's field says how much it shows.
func TestDiscordClipsToLimits(t *testing.T) {
	t.Parallel()
	n := openNotification()
	n.Action.Name = strings.Repeat("*", 400)
	n.Action.Message = strings.Repeat("𝔘_", 5000)
	n.Reason = strings.Repeat("r", 3000)
	n.Note = strings.Repeat("n", 3000)
	n.OnBehalfOf = strings.Repeat("o", 3000)
	n.Policies = []approval.PolicyRef{{Name: strings.Repeat("p", 3000)}}
	n.Action.Payload = []byte(strings.Repeat("`x", 5000))
	m := postDiscord(t, n) // decodeDiscord checks every limit
	e := m.Embeds[0]
	require.True(t, strings.HasSuffix(e.Title, "…"))
	require.NotContains(t, strings.TrimSuffix(e.Title, "…")+"|", `\|`, "no cut inside an escape")
	require.True(t, strings.HasSuffix(e.Description, "…"))
	payload := ""
	for _, f := range e.Fields {
		if strings.HasPrefix(f.Name, "Payload") {
			require.Regexp(t, `^Payload, the first \d+ of 10000 characters \(the review page shows all\)$`, f.Name)
			payload = f.Value
		}
	}
	require.True(t, strings.HasPrefix(payload, "```\n`\u200bx`\u200bx"), "%q", payload)
	require.True(t, strings.HasSuffix(payload, "…\n```"), "%q", payload)
	_, ok := m.field("Request")
	require.True(t, ok, "the request ID always fits")
}

func TestDiscordAnswers(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		status int
		answer string
		want   sendOutcome
		wait   time.Duration
	}{
		"message":        {http.StatusOK, discordAccepted, sentOK, 0},
		"no message":     {http.StatusNoContent, "", sentPermanent, 0},
		"not a message":  {http.StatusOK, "<html>captive portal</html>", sentPermanent, 0},
		"bad request":    {http.StatusBadRequest, `{"message":"Invalid Form Body","code":50035}`, sentPermanent, 0},
		"rate limited":   {http.StatusTooManyRequests, `{"message":"You are being rate limited.","retry_after":3}`, sentTransient, 3 * time.Second},
		"discord outage": {http.StatusBadGateway, "", sentTransient, 0},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv, _, _ := discordServer(t, tc.status, tc.answer)
			err := newDiscord(t, srv).Send(context.Background(), openNotification())
			got, wait := sendOutcomeOf(t, err)
			require.Equal(t, tc.want, got, "%v", err)
			require.Equal(t, tc.wait, wait)
			if err != nil {
				require.NotContains(t, err.Error(), "hook-token", "the URL is a credential")
			}
		})
	}
	// A webhook Discord no longer knows.
	srv, _, _ := discordServer(t, http.StatusOK, discordAccepted)
	d, err := channels.NewDiscord(channels.DiscordConfig{WebhookURL: srv.URL + "/api/webhooks/999/gone", Client: srv.Client()})
	require.NoError(t, err)
	got, _ := sendOutcomeOf(t, d.Send(context.Background(), openNotification()))
	require.Equal(t, sentPermanent, got)
}

func TestNewDiscordValidatesConfig(t *testing.T) {
	t.Parallel()
	for name, raw := range map[string]string{
		"empty":      "",
		"plain http": "http://discord.com/api/webhooks/1/secret",
		"no host":    "https:///api/webhooks/1/secret",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := channels.NewDiscord(channels.DiscordConfig{WebhookURL: raw})
			require.ErrorIs(t, err, channels.ErrInvalidConfig)
			require.ErrorContains(t, err, "DiscordConfig.WebhookURL")
			require.NotContains(t, err.Error(), "secret")
		})
	}
	d, err := channels.NewDiscord(channels.DiscordConfig{WebhookURL: "https://discord.com/api/webhooks/1/secret"})
	require.NoError(t, err)
	require.Equal(t, "discord", d.Name())
}
