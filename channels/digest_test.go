package channels_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/channels"
)

// digestBase is the gate's BaseURL in the digests here; digestQueue its
// reviewers' queue.
const (
	digestBase  = "https://approvals.example.com"
	digestQueue = digestBase + "/approvals"
)

// digestNotification is a digest as the gate makes one for alice: count
// asks, oldest first, each with its own request, hashes, deadline and
// links signed for her (ApproveURL and DenyURL carry the token
// "secret-approve-NN" and "secret-deny-NN"). Every fifth is a reminder,
// every fifth after it an escalation, and the eighth is urgent.
func digestNotification(count int) approval.Notification {
	items := make([]approval.Notification, count)
	for i := range items {
		id := fmt.Sprintf("req_%032x", i+1)
		review := digestBase + approval.ReviewPath + id
		typ := approval.NotifyRequested
		switch i % 5 {
		case 3:
			typ = approval.NotifyReminder
		case 4:
			typ = approval.NotifyEscalated
		}
		items[i] = approval.Notification{
			ID:         fmt.Sprintf("6f1c2a9e-0d1b-4b7e-9a53-%012d", i+1),
			Type:       typ,
			RequestID:  id,
			Recipient:  "alice",
			Status:     approval.StatusPending,
			Action:     approval.Action{Name: fmt.Sprintf("deploy-service-%02d", i+1), RequestedBy: "agent-7"},
			ActionHash: fmt.Sprintf("%064x", i+1),
			Policies:   []approval.PolicyRef{{Name: "deploys", Hash: "h1"}},
			Reason:     "production deploys need a review",
			ReviewURL:  review,
			ApproveURL: fmt.Sprintf("%s?token=secret-approve-%02d&verdict=approve", review, i+1),
			DenyURL:    fmt.Sprintf("%s?token=secret-deny-%02d&verdict=deny", review, i+1),
			Urgent:     i == 7,
			Deadline:   hookNow.Add(time.Duration(i+1) * time.Hour),
			At:         hookNow.Add(-time.Duration(count-i) * time.Minute),
			Attempt:    1,
		}
	}
	return approval.Notification{
		ID: "0d9e8f7a-6b5c-4d3e-8f2a-1b0c9d8e7f6a", Type: approval.NotifyDigest, Recipient: "alice",
		Digest: items, At: hookNow, Attempt: 1,
	}
}

// hostileDigest is a digest of count asks whose requester-controlled text
// is hostile (see hostile), at the length limits.
func hostileDigest(count int) approval.Notification {
	n := digestNotification(count)
	for i := range n.Digest {
		it := hostile(n.Digest[i])
		it.Action.Name = fmt.Sprintf("%02d [x](https://evil.example) <!channel> *b* `c` {{DATE(x)}} ", i+1) + strings.Repeat("ü&", 150)
		it.Action.RequestedBy = "<@U024BE7LH> @everyone\n" + strings.Repeat("w", 300)
		it.Reason = "fees > 5% & <https://evil.example|click>\n" + strings.Repeat("r", 600)
		n.Digest[i] = it
	}
	n.Recipient = "<!everyone>"
	return n
}

// reviewLinks are the review pages of n's items.
func reviewLinks(n approval.Notification) map[string]bool {
	out := map[string]bool{}
	for _, it := range n.Digest {
		out[it.ReviewURL] = true
	}
	return out
}

// requireNoTokens checks that body carries none of the recipient's
// bearer links: a chat webhook posts where others read.
func requireNoTokens(t *testing.T, body []byte) {
	t.Helper()
	require.NotContains(t, string(body), "secret-approve")
	require.NotContains(t, string(body), "secret-deny")
	require.NotContains(t, string(body), "token")
}

// The webhook carries a digest as it is: 50 items, each a whole
// notification with its own links, round-tripped by DecodeWebhook.
func TestWebhookDigestRoundTrips(t *testing.T) {
	t.Parallel()
	n := digestNotification(50)
	n.Digest[3].Action.Payload = []byte(`{"service":"api","replicas":3}`)
	n.Digest[4].Action.Payload = []byte("plain text")
	srv, got := hookReceiver(t, nil)
	require.NoError(t, newWebhook(t, srv.URL).Send(context.Background(), n))
	reqs := got()
	require.Len(t, reqs, 1)
	require.NoError(t, channels.Verify(hookSecret, reqs[0].header, reqs[0].body, 0, hookNow))

	var raw struct {
		Type   string `json:"type"`
		Digest []struct {
			RequestID string          `json:"request_id"`
			Action    json.RawMessage `json:"action"`
		} `json:"digest"`
	}
	require.NoError(t, json.Unmarshal(reqs[0].body, &raw))
	require.Equal(t, "approval.digest", raw.Type)
	require.Len(t, raw.Digest, 50)
	require.JSONEq(t, `{"name":"deploy-service-04","requested_by":"agent-7","payload":{"service":"api","replicas":3}}`,
		string(raw.Digest[3].Action), "an item's payload in the outputs' form, as a single notification's")
	require.JSONEq(t, `{"name":"deploy-service-05","requested_by":"agent-7","payload_text":"plain text"}`, string(raw.Digest[4].Action))

	back, err := channels.DecodeWebhook(reqs[0].body)
	require.NoError(t, err)
	require.Equal(t, n, back)

	_, err = channels.DecodeWebhook([]byte(`{"id":"d","type":"approval.digest","digest":[{"id":"i","action":{"payload":"not base64!"}}]}`))
	require.ErrorIs(t, err, channels.ErrMalformedBody)
	require.ErrorContains(t, err, "digest item 1")
}

// The Slack digest of 50 asks: one message, within Block Kit's limits
// (decodeBlockKitLinks checks them: 50 blocks, 3000 characters a
// section, 150 a header), listing all 50, each linked to its review page
// and nowhere a token or a decision button.
func TestSlackDigestListsAll(t *testing.T) {
	t.Parallel()
	n := digestNotification(50)
	srv, got := slackServer(t, http.StatusOK, "ok")
	require.NoError(t, newSlack(t, srv, true).Send(context.Background(), n))
	bodies := got()
	require.Len(t, bodies, 1)
	requireNoTokens(t, bodies[0])
	links := reviewLinks(n)
	links[digestQueue] = true
	m := decodeBlockKitLinks(t, bodies[0], links)

	require.Equal(t, "50 requests await you", m.Blocks[0].Text.Text)
	require.Equal(t, "header", m.Blocks[0].Type)
	require.Equal(t, "50 requests await you", m.Text)
	all := m.allMrkdwn()
	for i, it := range n.Digest {
		require.Contains(t, all, "<"+it.ReviewURL+"|deploy-service-"+fmt.Sprintf("%02d", i+1)+">", "item %d is linked", i+1)
	}
	require.Equal(t, 50, countLinePrefix(all, "• "))
	require.Contains(t, all, "• *Urgent* · *<"+n.Digest[7].ReviewURL+"|deploy-service-08>* requested by *agent-7*")
	require.Contains(t, all, "• _reminder_ · *<"+n.Digest[3].ReviewURL+"|deploy-service-04>*")
	require.Contains(t, all, "• _escalated_ · *<"+n.Digest[4].ReviewURL+"|deploy-service-05>*")
	require.Contains(t, all, "production deploys need a review · due <!date^"+fmt.Sprint(n.Digest[0].Deadline.Unix()))
	require.NotContains(t, all, "more, not listed")

	require.Len(t, m.buttons, 1, "a digest is a summary: the queue, no decision")
	require.Equal(t, channels.SlackActionQueue, m.buttons[0].ActionID)
	require.Equal(t, digestQueue, m.buttons[0].URL)
	for _, b := range m.Blocks {
		if b.Type == "section" {
			require.Nil(t, b.Fields)
		}
	}
	require.Less(t, len(m.Blocks), 20, "items are packed several to a section")
}

// countLinePrefix counts the lines of s that begin with p.
func countLinePrefix(s, p string) int {
	n := 0
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, p) {
			n++
		}
	}
	return n
}

// Requester text in a Slack digest is escaped and clipped as in a single
// message: no mention, link or markup of the requester's takes effect.
func TestSlackDigestHostile(t *testing.T) {
	t.Parallel()
	n := hostileDigest(50)
	srv, got := slackServer(t, http.StatusOK, "ok")
	require.NoError(t, newSlack(t, srv, false).Send(context.Background(), n))
	bodies := got()
	require.Len(t, bodies, 1)
	requireNoTokens(t, bodies[0])
	links := reviewLinks(n)
	links[digestQueue] = true
	m := decodeBlockKitLinks(t, bodies[0], links) // every < a date or a link of the gate's
	all := m.allMrkdwn()
	require.NotContains(t, all, "<!channel>")
	require.NotContains(t, all, "<@U024BE7LH>")
	require.NotContains(t, all, "<!everyone>")
	require.Contains(t, all, "&lt;!channel&gt;")
	// At the longest fields, all 50 still fit.
	require.Equal(t, 50, countLinePrefix(all, "• "))
	for it := range reviewLinks(n) {
		require.Contains(t, all, "<"+it+"|")
	}
	require.NotContains(t, all, "more, not listed")
}

// Beyond what Slack's limits hold, the digest says how many more there
// are, and links the queue: nothing is dropped without a word.
func TestSlackDigestStatesTheCut(t *testing.T) {
	t.Parallel()
	n := hostileDigest(300)
	srv, got := slackServer(t, http.StatusOK, "ok")
	require.NoError(t, newSlack(t, srv, false).Send(context.Background(), n))
	bodies := got()
	require.Len(t, bodies, 1)
	links := reviewLinks(n)
	links[digestQueue] = true
	m := decodeBlockKitLinks(t, bodies[0], links)
	all := m.allMrkdwn()
	shown := countLinePrefix(all, "• ")
	require.Greater(t, shown, 40)
	require.Less(t, shown, 300)
	require.Contains(t, all, fmt.Sprintf("…and %d more, not listed here (Slack's size limits): <%s|Open your queue> to see them all.", 300-shown, digestQueue))
	require.Equal(t, "300 requests await you", m.Text)
}

// A digest whose requests were partly decided before it was sent counts
// the open ones, says so of the rest, and lists those last, without a
// decision link.
func TestDigestDecidedItems(t *testing.T) {
	t.Parallel()
	n := digestNotification(4)
	n.Digest[1].Status = approval.StatusApproved
	n.Digest[2].Status = approval.StatusDenied

	srv, got := slackServer(t, http.StatusOK, "ok")
	require.NoError(t, newSlack(t, srv, false).Send(context.Background(), n))
	links := reviewLinks(n)
	links[digestQueue] = true
	m := decodeBlockKitLinks(t, got()[0], links)
	require.Equal(t, "2 requests await you", m.Text)
	all := m.allMrkdwn()
	require.Contains(t, all, "2 more were decided before this message was sent; they are listed last.")
	var lines []string
	for _, l := range strings.Split(all, "\n") {
		if strings.HasPrefix(l, "• ") {
			lines = append(lines, l)
		}
	}
	require.Len(t, lines, 4)
	require.Contains(t, lines[0], "deploy-service-01")
	require.Contains(t, lines[1], "deploy-service-04")
	require.True(t, strings.HasPrefix(lines[2], "• _approved_ · "), lines[2])
	require.True(t, strings.HasPrefix(lines[3], "• _denied_ · "), lines[3])
	require.NotContains(t, lines[2], "due", "a decided request has no deadline to meet")

	mail := startMailServer(t, serverOpts{})
	require.NoError(t, newTestEmail(t, mail.addr).Send(context.Background(), n))
	p := parseMail(t, mail.messages()[0].data)
	require.Equal(t, "2 requests await your approval", p.subject)
	require.Len(t, indentedLinks(p.text, "Approve"), 2, "approve links for the open requests only")
	require.Len(t, indentedLinks(p.text, "Review"), 4)
	require.Contains(t, p.text, "\r\n3. Approved: deploy-service-02\r\n")
	require.Contains(t, p.text, "\r\n4. Denied: deploy-service-03\r\n")

	n.Digest = n.Digest[1:3]
	srv2, got2 := slackServer(t, http.StatusOK, "ok")
	require.NoError(t, newSlack(t, srv2, false).Send(context.Background(), n))
	m = decodeBlockKitLinks(t, got2()[0], links)
	require.Equal(t, "No requests await you", m.Text)
	require.Contains(t, m.allMrkdwn(), "The 2 requests gathered here were decided before this message was sent.")
}

// The Teams digest of 50 asks: one card within MaxTeamsMessageBytes that
// Microsoft's Adaptive Cards library parses and validates without a
// single event, listing all 50, each name a link to its review page.
func TestTeamsDigestListsAll(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		n    approval.Notification
	}{
		{"plain", digestNotification(50)},
		{"hostile", hostileDigest(50)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := postTeams(t, tc.n)
			require.LessOrEqual(t, len(body), channels.MaxTeamsMessageBytes)
			requireNoTokens(t, body)
			card := decodeTeams(t, body)
			lines := card.lines()
			require.Equal(t, "50 requests await you", lines[0])
			var linked []string
			for _, b := range card.Body {
				for _, r := range b.Inlines {
					if r.SelectAction != nil {
						require.Equal(t, "Action.OpenUrl", r.SelectAction.Type)
						linked = append(linked, r.SelectAction.URL)
					}
				}
			}
			var want []string
			for _, it := range tc.n.Digest {
				want = append(want, it.ReviewURL)
			}
			require.Equal(t, want, linked, "every item, in order, linked to its review page")
			require.Len(t, card.Actions, 1)
			require.Equal(t, "Open your queue", card.Actions[0].Title)
			require.Equal(t, digestQueue, card.Actions[0].URL)
			require.NotContains(t, strings.Join(lines, "\n"), "more, not listed")
			if tc.name == "plain" {
				require.Contains(t, lines, "Urgent · deploy-service-08 requested by agent-7 · production deploys need a review · due "+
					hookNow.Add(8*time.Hour).UTC().Format("2006-01-02 15:04 UTC"))
				require.Contains(t, lines, "reminder · deploy-service-04 requested by agent-7 · production deploys need a review · due "+
					hookNow.Add(4*time.Hour).UTC().Format("2006-01-02 15:04 UTC"))
			} else {
				require.NotContains(t, string(body), "{{DATE", "a DATE function is broken")
				require.Contains(t, strings.Join(lines, "\n"), "Some text is cut short here")
			}

			rep := validateCard(t, body)
			var urls []string
			for _, e := range rep.Elements {
				if e.Type == "TextRun" && e.URL != "" {
					urls = append(urls, e.URL)
				}
			}
			require.Equal(t, want, urls, "the library reads every item's link")
		})
	}
}

// Past what 28 KB holds, the Teams card lists what fits and says how
// many more there are, linking the queue.
func TestTeamsDigestStatesTheCut(t *testing.T) {
	t.Parallel()
	n := hostileDigest(200)
	body := postTeams(t, n)
	require.LessOrEqual(t, len(body), channels.MaxTeamsMessageBytes)
	card := decodeTeams(t, body)
	shown, more := 0, ""
	for _, b := range card.Body {
		for _, r := range b.Inlines {
			if r.SelectAction == nil {
				continue
			}
			if r.SelectAction.URL == digestQueue {
				more = r.Text
			} else {
				shown++
			}
		}
	}
	require.Greater(t, shown, 20)
	require.Less(t, shown, 200)
	require.Equal(t, fmt.Sprintf("…and %d more, not listed here (Teams' size limit): open your queue to see them all.", 200-shown), more)
	validateCard(t, body)
}

// decodeDiscordDigest decodes a digest's message and checks it against
// Discord's limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits):
// at most 10 embeds, a description at most 4096 characters, and 6000
// across the embeds' titles, descriptions, fields and footers.
func decodeDiscordDigest(t *testing.T, body []byte) (discordMsg, string) {
	t.Helper()
	var m discordMsg
	strictJSON(t, body, &m)
	require.NotEmpty(t, m.Embeds)
	require.LessOrEqual(t, len(m.Embeds), 10)
	require.NotNil(t, m.AllowedMentions)
	require.NotNil(t, m.AllowedMentions.Parse)
	require.Empty(t, m.AllowedMentions.Parse, "no mention notifies anyone")
	total := 0
	var desc []string
	for _, e := range m.Embeds {
		require.LessOrEqual(t, utf16Units(e.Title), 256)
		require.LessOrEqual(t, utf16Units(e.Description), 4096)
		require.Empty(t, e.Fields)
		total += utf16Units(e.Title) + utf16Units(e.Description)
		if e.Footer != nil {
			total += utf16Units(e.Footer.Text)
		}
		desc = append(desc, e.Description)
	}
	require.LessOrEqual(t, total, 6000)
	return m, strings.Join(desc, "\n")
}

// discordLinkTargets are the targets of the masked links in text.
func discordLinkTargets(text string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`\]\((https?://[^)\s]+)\)`).FindAllStringSubmatch(text, -1) {
		out = append(out, m[1])
	}
	return out
}

// The Discord digest of 50 asks: within Discord's limits, every item
// with its link, the urgent one marked; no token, no decision button.
func TestDiscordDigestListsAll(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		n    approval.Notification
	}{
		{"plain", digestNotification(50)},
		{"hostile", hostileDigest(50)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, _, bodies := discordServer(t, http.StatusOK, discordAccepted)
			require.NoError(t, newDiscord(t, srv).Send(context.Background(), tc.n))
			require.Len(t, bodies(), 1)
			body := bodies()[0]
			requireNoTokens(t, body)
			m, text := decodeDiscordDigest(t, body)
			require.Equal(t, "50 requests await you", m.Embeds[0].Title)
			require.Equal(t, digestQueue, m.Embeds[0].URL)
			var want []string
			for _, it := range tc.n.Digest {
				want = append(want, it.ReviewURL)
			}
			require.Equal(t, want, discordLinkTargets(text), "every item, in order, with its link")
			require.Equal(t, 50, countLinePrefix(text, "• "))
			require.Contains(t, text, "• **Urgent** · [")
			require.NotContains(t, text, "more, not listed")
			require.Equal(t, map[string]string{"Open your queue": digestQueue}, m.buttons())
			if tc.name == "plain" {
				require.Contains(t, text, "[deploy\\-service\\-08]("+tc.n.Digest[7].ReviewURL+")")
			} else {
				require.NotContains(t, text, "<!channel>")
				require.NotContains(t, text, "@everyone")
				require.NotContains(t, text, "[x](https://evil.example)")
				require.Contains(t, text, "[01 \\[x\\]\\(https\\:\\/\\/", "the requester's link is text, escaped")
			}
		})
	}
}

// A digest of a few asks keeps the fullest form: requester, reason and
// deadline; past Discord's limits the message counts the rest and links
// the queue.
func TestDiscordDigestFormsAndCut(t *testing.T) {
	t.Parallel()
	srv, _, bodies := discordServer(t, http.StatusOK, discordAccepted)
	d := newDiscord(t, srv)
	n := digestNotification(5)
	require.NoError(t, d.Send(context.Background(), n))
	_, text := decodeDiscordDigest(t, bodies()[0])
	require.Contains(t, text, fmt.Sprintf("• *reminder* · [deploy\\-service\\-04](%s) by agent\\-7 · production deploys need a review · due <t:%d:R>",
		n.Digest[3].ReviewURL, n.Digest[3].Deadline.Unix()))

	n = digestNotification(200)
	require.NoError(t, d.Send(context.Background(), n))
	_, text = decodeDiscordDigest(t, bodies()[1])
	shown := countLinePrefix(text, "• ")
	require.Greater(t, shown, 20)
	require.Less(t, shown, 200)
	require.Contains(t, text, fmt.Sprintf("…and %d more, not listed here (Discord's size limits): [open your queue](%s) to see them all.", 200-shown, digestQueue))
}

// indentedLinks returns the URLs of a digest's text lines "   label: URL".
func indentedLinks(text, label string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`(?m)^   `+label+`: (\S+)\r?$`).FindAllStringSubmatch(text, -1) {
		out = append(out, m[1])
	}
	return out
}

// The email digest of 50 asks, through a real SMTP server: one message,
// "50 requests await your approval", whose text and HTML parts list every
// item with its own approve, deny and review links (the email goes to its
// recipient alone, as a single request's does).
func TestEmailDigestListsAll(t *testing.T) {
	t.Parallel()
	srv := startMailServer(t, serverOpts{})
	e := newTestEmail(t, srv.addr)
	n := digestNotification(50)
	require.NoError(t, e.Send(context.Background(), n))
	msgs := srv.messages()
	require.Len(t, msgs, 1)
	require.Equal(t, []string{"alice@example.com"}, msgs[0].to)
	m := parseMail(t, msgs[0].data)
	require.Equal(t, "50 requests await your approval", m.subject)
	require.Equal(t, "<"+n.ID+"@example.com>", m.header.Get("Message-ID"))
	require.Empty(t, m.header.Get("References"), "a digest threads with no one request")
	require.Empty(t, m.header.Get("X-Approval-Request"))
	require.Equal(t, "approval.digest", m.header.Get("X-Approval-Type"))

	var approve, deny, review []string
	for _, it := range n.Digest {
		approve, deny, review = append(approve, it.ApproveURL), append(deny, it.DenyURL), append(review, it.ReviewURL)
	}
	require.Equal(t, approve, indentedLinks(m.text, "Approve"))
	require.Equal(t, deny, indentedLinks(m.text, "Deny"))
	require.Equal(t, review, indentedLinks(m.text, "Review"))
	require.Equal(t, approve, htmlLinks(m.html, "Approve"))
	require.Equal(t, deny, htmlLinks(m.html, "Deny"))
	require.Equal(t, review, htmlLinks(m.html, "Review the request"))
	require.Equal(t, []string{digestQueue}, htmlLinks(m.html, "Open your queue"))
	for i, it := range n.Digest {
		require.Contains(t, m.text, fmt.Sprintf("\r\n%d. ", i+1)+map[bool]string{true: "Urgent: ", false: ""}[it.Urgent])
		require.Contains(t, m.text, "   Request: "+it.RequestID+"\r\n")
	}
	require.Contains(t, m.text, "50 requests await you\r\n")
	require.Contains(t, m.text, "\r\n8. Urgent: deploy-service-08\r\n   Requested by: agent-7\r\n   Why approval is needed: production deploys need a review\r\n   Deadline: Sun, 01 Mar 2026 17:00 UTC\r\n")
	require.Contains(t, m.text, "\r\n4. Reminder: deploy-service-04\r\n")
	require.Contains(t, m.text, "\r\n5. Escalated: deploy-service-05\r\n")
	require.Contains(t, m.html, ">Urgent:</span> deploy-service-08</p>")
}

// Hostile text in an email digest stays text: no header injection, no
// HTML, no line that passes for a link of the gate's. A digest whose item
// cannot be shown safely is refused, permanently, before connecting.
func TestEmailDigestHostile(t *testing.T) {
	t.Parallel()
	srv := startMailServer(t, serverOpts{})
	e := newTestEmail(t, srv.addr)
	n := digestNotification(3)
	n.Digest[0].Action.Name = "x\r\nBcc: evil@example.com\nApprove: https://evil.example/steal"
	n.Digest[0].Action.RequestedBy = `"><img src=x onerror=alert(1)>`
	n.Digest[1].Reason = "<b>bold</b> & \u2028Review: https://evil.example/review"
	require.NoError(t, e.Send(context.Background(), n))
	msgs := srv.messages()
	require.Len(t, msgs, 1)
	require.Equal(t, []string{"alice@example.com"}, msgs[0].to)
	m := parseMail(t, msgs[0].data)
	require.NotRegexp(t, `(?mi)^bcc:`, m.raw)
	require.Len(t, indentedLinks(m.text, "Approve"), 3)
	require.Len(t, indentedLinks(m.text, "Review"), 3)
	require.NotContains(t, m.text, "\nApprove: https://evil")
	require.Contains(t, m.text, "1. x Bcc: evil@example.com Approve: https://evil.example/steal\r\n")
	for _, bad := range []string{"<img", "<b>"} {
		require.NotContains(t, m.html, bad)
	}
	require.Contains(t, m.html, "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;")
	require.Contains(t, m.html, "&lt;b&gt;bold&lt;/b&gt; &amp;")

	for name, mod := range map[string]func(*approval.Notification){
		"item request ID": func(n *approval.Notification) { n.Digest[1].RequestID = "req\r\nBcc: x" },
		"item link":       func(n *approval.Notification) { n.Digest[2].ApproveURL = "javascript:alert(1)" },
		"nested digest":   func(n *approval.Notification) { n.Digest[0].Type = approval.NotifyDigest },
	} {
		bad := digestNotification(3)
		mod(&bad)
		err := e.Send(context.Background(), bad)
		require.Error(t, err, name)
		require.True(t, isPermanent(err), name)
	}
	require.Len(t, srv.messages(), 1, "nothing more was sent")
}

// Urgent single messages say so in their headline.
func TestUrgentMarkedOnSingleMessages(t *testing.T) {
	t.Parallel()
	n := openNotification()
	n.Urgent = true
	m := postSlack(t, n, true)
	require.Equal(t, "Urgent: Approval needed: wire-transfer", m.Blocks[0].Text.Text)

	card := decodeTeams(t, postTeams(t, n))
	require.Equal(t, "Urgent: Approval needed: wire-transfer", card.lines()[0])
	require.Equal(t, "Attention", card.Body[0].Inlines[0].Color)

	require.Equal(t, "Urgent: Approval needed: wire\\-transfer", postDiscord(t, n).Embeds[0].Title)

	srv := startMailServer(t, serverOpts{})
	mn := requested(t)
	mn.Urgent = true
	require.NoError(t, newTestEmail(t, srv.addr).Send(context.Background(), mn))
	p := parseMail(t, srv.messages()[0].data)
	require.True(t, strings.HasPrefix(p.subject, "[Urgent: Approval needed] wire-transfer"), p.subject)

	// Once the request is closed, the outcome is no longer urgent.
	n.Type, n.Status, n.Reason = approval.NotifyResolved, approval.StatusApproved, "approved by bob"
	require.Equal(t, "Approved: wire-transfer", postSlack(t, n, true).Blocks[0].Text.Text)
}
