package channels_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/channels"
)

// The message a Teams Workflows webhook ("When a Teams webhook request is
// received", then "Post card in a chat or channel") takes: a "message"
// whose attachments hold the Adaptive Card, with contentType
// "application/vnd.microsoft.card.adaptive" and contentUrl null. See
// https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using
// (Send Adaptive Cards using an Incoming Webhook; Workflows support
// Adaptive Cards only) and
// https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/add-incoming-webhook
// ("The message size limit is 28 KB"; the Workflows connector's known
// issues at https://learn.microsoft.com/en-us/connectors/teams/ say the
// same of a posted card: "Request Entity too large"). Adaptive Card text:
// TextBlock and Fact take a Markdown subset, RichTextBlock does not
// (https://learn.microsoft.com/en-us/adaptive-cards/create/textfeatures,
// https://learn.microsoft.com/en-us/microsoftteams/platform/task-modules-and-cards/cards/cards-format).
type (
	teamsMsg struct {
		Type        string `json:"type"`
		Attachments []struct {
			ContentType string    `json:"contentType"`
			ContentURL  *string   `json:"contentUrl"`
			Content     teamsCard `json:"content"`
		} `json:"attachments"`
	}
	teamsCard struct {
		Schema  string            `json:"$schema"`
		Type    string            `json:"type"`
		Version string            `json:"version"`
		MSTeams map[string]string `json:"msteams"`
		Body    []struct {
			Type      string     `json:"type"`
			Separator bool       `json:"separator"`
			Inlines   []teamsRun `json:"inlines"`
		} `json:"body"`
		Actions []struct {
			Type  string `json:"type"`
			Title string `json:"title"`
			URL   string `json:"url"`
			Style string `json:"style"`
		} `json:"actions"`
	}
	teamsRun struct {
		Type     string `json:"type"`
		Text     string `json:"text"`
		Size     string `json:"size"`
		Weight   string `json:"weight"`
		Color    string `json:"color"`
		FontType string `json:"fontType"`
		IsSubtle bool   `json:"isSubtle"`
		// SelectAction links the run (a digest's item names).
		SelectAction *struct {
			Type string `json:"type"`
			URL  string `json:"url"`
		} `json:"selectAction"`
	}
)

// card is the card of a Teams message, strictly decoded.
func decodeTeams(t *testing.T, body []byte) teamsCard {
	t.Helper()
	var m teamsMsg
	strictJSON(t, body, &m)
	require.Equal(t, "message", m.Type)
	require.Len(t, m.Attachments, 1)
	require.Equal(t, "application/vnd.microsoft.card.adaptive", m.Attachments[0].ContentType)
	require.Nil(t, m.Attachments[0].ContentURL)
	c := m.Attachments[0].Content
	require.Equal(t, "AdaptiveCard", c.Type)
	require.Equal(t, "1.4", c.Version)
	return c
}

// lines are the card's blocks, each its runs' text joined.
func (c teamsCard) lines() []string {
	var out []string
	for _, b := range c.Body {
		var s strings.Builder
		for _, r := range b.Inlines {
			s.WriteString(r.Text)
		}
		out = append(out, s.String())
	}
	return out
}

// cardReport is what testdata/teams/validate.js prints: what Microsoft's
// Adaptive Cards library reported parsing and validating the card, and
// the elements it understood.
type cardReport struct {
	Type        string `json:"type"`
	ContentType string `json:"contentType"`
	Version     string `json:"version"`
	Events      []struct {
		Phase   int    `json:"phase"`
		Event   int    `json:"event"`
		Message string `json:"message"`
	} `json:"events"`
	Failures []struct {
		Phase   int    `json:"phase"`
		Event   int    `json:"event"`
		Message string `json:"message"`
	} `json:"failures"`
	Elements []struct {
		Type  string `json:"type"`
		Text  string `json:"text"`
		URL   string `json:"url"`
		Title string `json:"title"`
	} `json:"elements"`
}

// validateCard runs Microsoft's Adaptive Cards library (npm adaptivecards)
// on the message body and requires that it parsed and validated the card
// without a single event.
func validateCard(t *testing.T, body []byte) cardReport {
	t.Helper()
	node := adaptiveCardsOrSkip(t)
	out := runNode(t, node, teamsNodeDir, "validate.js", body)
	var rep cardReport
	require.NoError(t, json.Unmarshal(out, &rep), "%s", out)
	require.Empty(t, rep.Events, "the library's parse events")
	require.Empty(t, rep.Failures, "the library's validation failures")
	require.Equal(t, "1.4", rep.Version)
	require.Equal(t, "message", rep.Type)
	require.Equal(t, "application/vnd.microsoft.card.adaptive", rep.ContentType)
	return rep
}

// The validator reports what is wrong with a card: an element type the
// library does not know, a value outside an enumeration, a required
// property missing. (validateCard requires that it reports nothing.)
func TestAdaptiveCardsValidatorReportsErrors(t *testing.T) {
	t.Parallel()
	node := adaptiveCardsOrSkip(t)
	broken := []byte(`{"type":"message","attachments":[{"contentType":"application/vnd.microsoft.card.adaptive","content":
		{"type":"AdaptiveCard","version":"1.4","body":[{"type":"Bogus"},{"type":"TextBlock","text":"x","size":"Huge"}],
		 "actions":[{"type":"Action.OpenUrl","title":"Approve"}]}}]}`)
	var rep cardReport
	require.NoError(t, json.Unmarshal(runNode(t, node, teamsNodeDir, "validate.js", broken), &rep))
	var msgs []string
	for _, e := range rep.Events {
		msgs = append(msgs, e.Message)
	}
	for _, e := range rep.Failures {
		msgs = append(msgs, e.Message)
	}
	joined := strings.Join(msgs, "\n")
	require.Contains(t, joined, `Unknown element type "Bogus"`)
	require.Contains(t, joined, `Invalid value "Huge" for property "size"`)
	require.Contains(t, joined, `Property "url" must be set`)
}

// teamsServer stands in for a Workflows webhook: it answers every POST
// of JSON with status and answer, and keeps the bodies.
func teamsServer(t *testing.T, status int, answer string) (*httptest.Server, func() [][]byte) {
	t.Helper()
	var mu sync.Mutex
	var bodies [][]byte
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json; charset=utf-8" ||
			r.URL.Query().Get("sig") != "flow-signature" {
			http.Error(w, `{"error":{"code":"InvalidRequest"}}`, http.StatusBadRequest)
			return
		}
		mu.Lock()
		bodies = append(bodies, body)
		mu.Unlock()
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "7")
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

func newTeams(t *testing.T, srv *httptest.Server) *channels.Teams {
	t.Helper()
	tm, err := channels.NewTeams(channels.TeamsConfig{
		WebhookURL: srv.URL + "/workflows/abc/triggers/manual/paths/invoke?api-version=1&sig=flow-signature",
		Client:     srv.Client()})
	require.NoError(t, err)
	return tm
}

// postTeams sends n to a fresh webhook and returns the body it received.
func postTeams(t *testing.T, n approval.Notification) []byte {
	t.Helper()
	srv, got := teamsServer(t, http.StatusAccepted, "")
	require.NoError(t, newTeams(t, srv).Send(context.Background(), n))
	bodies := got()
	require.Len(t, bodies, 1)
	return bodies[0]
}

func TestTeamsCardForOpenRequest(t *testing.T) {
	t.Parallel()
	n := openNotification()
	n.Action.Payload = []byte(`{"to":"ACME","amount":5000}`)
	body := postTeams(t, n)
	card := decodeTeams(t, body)
	require.Equal(t, []string{
		"Approval needed: wire-transfer",
		"Requested by user-1",
		"Message from the requester: Pay the March invoice",
		"Reason: transfers of 1,000 USD or more",
		"Risk: high",
		"Cost: 5000 USD",
		"Deadline: " + hookNow.Add(24*time.Hour).UTC().Format("2006-01-02 15:04 UTC"),
		"Policies: high_spend",
		"Action hash: 9f86d081884c",
		"Request: req_0195a1b2c3d47e8f9a0b1c2d3e4f5a6b",
		"Payload:",
		`{"to":"ACME","amount":5000}`,
		"approval.requested · for alice · " + hookNow.UTC().Format("2006-01-02 15:04 UTC"),
	}, card.lines(), "what a reviewer reads, in order")
	require.Equal(t, "Monospace", card.Body[11].Inlines[0].FontType, "the payload")

	review := "https://approvals.example.com/approvals/req_0195a1b2c3d47e8f9a0b1c2d3e4f5a6b"
	require.Len(t, card.Actions, 3)
	for i, want := range []struct{ title, url, style string }{
		{"Approve", review + "?verdict=approve", "positive"},
		{"Deny", review + "?verdict=deny", "destructive"},
		{"Review", review, ""},
	} {
		a := card.Actions[i]
		require.Equal(t, "Action.OpenUrl", a.Type)
		require.Equal(t, want.title, a.Title)
		require.Equal(t, want.url, a.URL)
		require.Equal(t, want.style, a.Style)
	}
	// The recipient's bearer links are never on a card a channel reads.
	require.NotContains(t, string(body), "token")
	require.NotContains(t, string(body), "t1")
	require.NotContains(t, string(body), "t2")

	rep := validateCard(t, body)
	var texts, urls []string
	for _, e := range rep.Elements {
		if e.Type == "TextRun" {
			texts = append(texts, e.Text)
		}
		if e.Type == "Action.OpenUrl" {
			urls = append(urls, e.URL)
		}
	}
	require.Contains(t, texts, "Pay the March invoice", "the library read the message")
	require.Contains(t, texts, `{"to":"ACME","amount":5000}`, "and the payload")
	require.Equal(t, []string{review + "?verdict=approve", review + "?verdict=deny", review}, urls)
}

// A review URL that carries a token (it should not) loses it.
func TestTeamsReviewLinkDropsToken(t *testing.T) {
	t.Parallel()
	n := openNotification()
	n.ReviewURL += "?token=leaked&tab=votes"
	card := decodeTeams(t, postTeams(t, n))
	for _, a := range card.Actions {
		u, err := url.Parse(a.URL)
		require.NoError(t, err)
		require.Empty(t, u.Query().Get("token"), a.Title)
		require.Equal(t, "votes", u.Query().Get("tab"))
	}
	n.ReviewURL = "javascript:alert(1)"
	require.Empty(t, decodeTeams(t, postTeams(t, n)).Actions, "no button without a usable review page")
}

// Text from the requester is inert: it lands only in TextRuns, which
// Adaptive Cards render without Markdown, and "{{" cannot start a DATE
// function.
func TestTeamsHostileTextInert(t *testing.T) {
	t.Parallel()
	n := openNotification()
	n.Action.Name = "deploy **now** [here](https://evil.example)"
	n.Action.RequestedBy = "_admin_ {{DATE(2017-02-14T06:08:39Z, LONG)}}"
	n.Action.Message = "Approve [this](https://evil.example/phish)\r\n- item\n1. two\n\u202eevil\x00"
	n.Reason = "**urgent**"
	n.Recipient = "<at>everyone</at>"
	n.Policies = []approval.PolicyRef{{Name: "[p](https://evil.example)"}}
	body := postTeams(t, n)
	card := decodeTeams(t, body)
	for _, b := range card.Body {
		require.Equal(t, "RichTextBlock", b.Type, "no element that reads Markdown")
		for _, r := range b.Inlines {
			require.Equal(t, "TextRun", r.Type)
			require.NotContains(t, r.Text, "{{")
			require.NotContains(t, r.Text, "\u202e")
			require.NotContains(t, r.Text, "\x00")
			require.NotContains(t, r.Text, "\r")
		}
	}
	lines := card.lines()
	require.Equal(t, "Approval needed: deploy **now** [here](https://evil.example)", lines[0], "shown as written")
	require.Equal(t, "Requested by _admin_ {\u200b{DATE(2017-02-14T06:08:39Z, LONG)}}", lines[1])
	require.Equal(t, "Message from the requester: Approve [this](https://evil.example/phish)\n- item\n1. two\n evil ", lines[2])
	for _, a := range card.Actions {
		require.True(t, strings.HasPrefix(a.URL, "https://approvals.example.com/"), "no link but the review page: %s", a.URL)
	}
	rep := validateCard(t, body)
	for _, e := range rep.Elements {
		require.Contains(t, []string{"RichTextBlock", "TextRun", "Action.OpenUrl"}, e.Type)
	}
}

// A payload too large for a Teams message is cut to fit, and the card
// says how much it shows; text too long for the card is cut and marked.
func TestTeamsCutsToFit(t *testing.T) {
	t.Parallel()
	n := openNotification()
	payload := `{"rows":[` + strings.Repeat(`{"id":1,"note":"ünïcode \"quoted\""},`, 4000) + `{}]}`
	n.Action.Payload = []byte(payload)
	body := postTeams(t, n)
	require.LessOrEqual(t, len(body), channels.MaxTeamsMessageBytes)
	require.Greater(t, len(body), channels.MaxTeamsMessageBytes-200, "as much as fits")
	card := decodeTeams(t, body)
	lines := card.lines()
	var label, shown string
	for i, l := range lines {
		if strings.HasPrefix(l, "Payload, cut to fit a Teams message: the first ") {
			label, shown = l, lines[i+1]
		}
	}
	total := len([]rune(payload))
	require.Regexp(t, `^Payload, cut to fit a Teams message: the first \d+ of `+strconv.Itoa(total)+` characters\. The review page shows all of it\.$`, label)
	require.True(t, strings.HasPrefix(payload, shown), "a prefix of the payload")
	require.Contains(t, label, " "+strconv.Itoa(len([]rune(shown)))+" of ")
	require.Contains(t, lines, "Request: req_0195a1b2c3d47e8f9a0b1c2d3e4f5a6b", "the facts stay")
	first := body

	// Text longer than the card's bounds, in four-byte characters: cut,
	// marked, and the whole still fits.
	n.Action.Message = strings.Repeat("𝔘", 10000)
	n.Reason = strings.Repeat("𝔯", 5000)
	n.Action.Name = strings.Repeat("𝔫", 1000)
	body = postTeams(t, n)
	require.LessOrEqual(t, len(body), channels.MaxTeamsMessageBytes)
	lines = decodeTeams(t, body).lines()
	require.Contains(t, lines, "Some text is cut short here (…); the review page shows all of it.")
	require.True(t, strings.HasSuffix(lines[0], "…"))
	validateCard(t, first)
	validateCard(t, body)
}

// A resolved request's card shows the outcome and a button to the
// request, no decision.
func TestTeamsOutcomeCard(t *testing.T) {
	t.Parallel()
	n := openNotification()
	n.Type = approval.NotifyResolved
	n.Status = approval.StatusDenied
	n.Reason = "not this quarter"
	n.Redacted = true
	body := postTeams(t, n)
	card := decodeTeams(t, body)
	lines := card.lines()
	require.Equal(t, "Denied: wire-transfer", lines[0])
	require.Equal(t, "Outcome: denied: not this quarter", lines[2])
	require.NotContains(t, strings.Join(lines, "\n"), "Deadline")
	require.Contains(t, lines, "Some of the action's fields are redacted here; the review page shows what you may see.")
	require.Len(t, card.Actions, 1)
	require.Equal(t, "View request", card.Actions[0].Title)
	validateCard(t, body)
}

func TestTeamsAnswers(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		status int
		answer string
		want   sendOutcome
		wait   time.Duration
	}{
		"workflow accepted":   {http.StatusAccepted, "", sentOK, 0},
		"connector ok":        {http.StatusOK, "1", sentOK, 0},
		"connector failure":   {http.StatusOK, "Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error 413", sentPermanent, 0},
		"too large":           {http.StatusRequestEntityTooLarge, "Request Entity too large", sentPermanent, 0},
		"flow disabled":       {http.StatusNotFound, `{"error":{"code":"WorkflowNotFound"}}`, sentPermanent, 0},
		"throttled":           {http.StatusTooManyRequests, "", sentTransient, 7 * time.Second},
		"service unavailable": {http.StatusServiceUnavailable, "", sentTransient, 0},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv, _ := teamsServer(t, tc.status, tc.answer)
			err := newTeams(t, srv).Send(context.Background(), openNotification())
			got, wait := sendOutcomeOf(t, err)
			require.Equal(t, tc.want, got, "%v", err)
			require.Equal(t, tc.wait, wait)
			if err != nil {
				require.NotContains(t, err.Error(), "flow-signature", "the URL is a credential")
				require.NotContains(t, err.Error(), "/workflows/")
			}
		})
	}
}

func TestNewTeamsValidatesConfig(t *testing.T) {
	t.Parallel()
	for name, raw := range map[string]string{
		"empty":      "",
		"plain http": "http://prod-00.westus.logic.azure.com/workflows/abc?sig=x",
		"no host":    "https:///workflows/abc",
		"not a URL":  "https://%zz",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := channels.NewTeams(channels.TeamsConfig{WebhookURL: raw})
			require.ErrorIs(t, err, channels.ErrInvalidConfig)
			require.ErrorContains(t, err, "TeamsConfig.WebhookURL")
			require.NotContains(t, err.Error(), "sig=x")
		})
	}
	tm, err := channels.NewTeams(channels.TeamsConfig{WebhookURL: "https://prod-00.westus.logic.azure.com/workflows/abc?sig=x"})
	require.NoError(t, err)
	require.Equal(t, "teams", tm.Name())
}

// The gate's own notifications, through Teams: one card per approver,
// none carrying its recipient's token.
func TestTeamsFromGate(t *testing.T) {
	t.Parallel()
	srv, got := teamsServer(t, http.StatusAccepted, "")
	gate := newFixtureGate(t, func(c *approval.Config) {
		c.Channels = []approval.Channel{newTeams(t, srv)}
		c.BaseURL = "https://approvals.example.com"
	})
	id := guardDeploy(t, gate)
	require.NoError(t, gate.Close(context.Background()))
	bodies := got()
	require.Len(t, bodies, 2, "one card per approver")
	for _, b := range bodies {
		require.NotContains(t, string(b), "token")
		card := decodeTeams(t, b)
		lines := card.lines()
		require.Equal(t, "Approval needed: deploy:production", lines[0])
		require.Equal(t, "Message from the requester: Roll out <!channel> & friends", lines[2])
		require.Equal(t, "https://approvals.example.com/approvals/"+id+"?verdict=approve", card.Actions[0].URL)
		validateCard(t, b)
	}
}
