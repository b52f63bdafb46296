package channels_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/channels"
)

// responseKind tells an ephemeral answer from a redraw of the message.
func responseKind(t *testing.T, body []byte) string {
	t.Helper()
	var m struct {
		ResponseType    string `json:"response_type"`
		ReplaceOriginal bool   `json:"replace_original"`
	}
	require.NoError(t, json.Unmarshal(body, &m), "%s", body)
	switch {
	case m.ReplaceOriginal && m.ResponseType == "":
		return "replace"
	case !m.ReplaceOriginal && m.ResponseType == "ephemeral":
		return "ephemeral"
	}
	t.Fatalf("neither an ephemeral answer nor a redraw: %s", body)
	return ""
}

// redrawn decodes a redraw of the message, checked as Block Kit.
func redrawn(t *testing.T, body []byte) *blockKitMessage {
	t.Helper()
	require.Equal(t, "replace", responseKind(t, body))
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(body, &m))
	delete(m, "replace_original")
	rest, err := json.Marshal(m)
	require.NoError(t, err)
	return decodeBlockKit(t, rest)
}

func kinds(t *testing.T, posts [][]byte) []string {
	t.Helper()
	out := make([]string, len(posts))
	for i, p := range posts {
		out[i] = responseKind(t, p)
	}
	return out
}

// clickAt posts a signed click with the given response_url and returns
// the answer's status.
func (a *slackApp) clickAt(user, actionID, value, responseURL string) int {
	a.t.Helper()
	status, got := a.signed(clickBodyURL(user, actionID, value, responseURL))
	require.Empty(a.t, got, "the answer is an empty acknowledgement")
	return status
}

// decideAs records verdict v of approver on request id through the gate,
// as the review page would.
func decideAs(t *testing.T, gate *approval.Gate, id, approver string, v approval.Verdict) *approval.Request {
	t.Helper()
	tok, err := gate.IssueToken(id, approver, v, time.Hour)
	require.NoError(t, err)
	r, err := gate.Decide(context.Background(), id, approval.Decision{Token: tok, Verdict: v})
	require.NoError(t, err)
	return r
}

const testResponseURL = "https://hooks.slack.com/actions/T_ACME/900/abc"

// A click that resolves the request: the clicker's answer, then the
// message redrawn with the outcome and who decided, without buttons.
func TestSlackClickRedrawsTheMessage(t *testing.T) {
	t.Parallel()
	app := newSlackApp(t, nil)
	id := guardDeploy(t, app.gate)
	require.Equal(t, http.StatusOK, app.clickAt("U_ALICE", channels.SlackActionApprove, id, testResponseURL))
	require.NoError(t, app.h.Close(context.Background()))

	posts := app.postsTo("/actions/T_ACME/900/abc", 2)
	require.Equal(t, []string{"ephemeral", "replace"}, kinds(t, posts))
	require.Contains(t, string(posts[0]), "You approved *deploy:production*")

	d := redrawn(t, posts[1])
	require.Equal(t, "Approved: deploy:production", d.plain[0])
	text := d.allMrkdwn()
	require.Contains(t, text, "Approved by alice via Slack")
	require.Contains(t, text, "*Outcome:* approved")
	_, ok := d.button(channels.SlackActionApprove)
	require.False(t, ok, "a resolved request's message has no decision buttons")
	require.NotContains(t, d.blockTypes(), "actions")
	app.drain()
	require.Len(t, app.posts, 2, "nothing more: the request is resolved")
}

// A click on a request that needs two approvals: the message keeps its
// buttons and shows the progress; when the second approver decides
// elsewhere, the follower redraws it with the outcome.
func TestSlackFollowsTheOutcome(t *testing.T) {
	t.Parallel()
	app := newSlackApp(t, nil)
	id := guardAction(t, app.gate, "pair:rotate-keys", "ci")
	hash := app.request(id).ActionHash
	require.Equal(t, http.StatusOK, app.clickAt("U_ALICE", channels.SlackActionApprove, id+" "+hash, testResponseURL))

	posts := app.postsTo("/actions/T_ACME/900/abc", 2)
	require.Equal(t, []string{"ephemeral", "replace"}, kinds(t, posts))
	d := redrawn(t, posts[1])
	require.Equal(t, "Approval needed: pair:rotate-keys", d.plain[0])
	text := d.allMrkdwn()
	require.Contains(t, text, "Approved by alice via Slack")
	require.Contains(t, text, "pair: 1 of 2 approvals (alice)")
	approve, ok := d.button(channels.SlackActionApprove)
	require.True(t, ok, "others can still vote")
	require.Equal(t, id+" "+hash, approve.Value, "the buttons bind the action the message shows")
	deny, ok := d.button(channels.SlackActionDeny)
	require.True(t, ok)
	require.Equal(t, id+" "+hash, deny.Value)

	decideAs(t, app.gate, id, "bob", approval.VerdictApprove)
	posts = app.postsTo("/actions/T_ACME/900/abc", 3)
	require.Equal(t, []string{"ephemeral", "replace", "replace"}, kinds(t, posts))
	d = redrawn(t, posts[2])
	require.Equal(t, "Approved: pair:rotate-keys", d.plain[0])
	text = d.allMrkdwn()
	require.Contains(t, text, "Approved by alice via Slack\nApproved by bob\n", "bob decided on the review page")
	require.NotContains(t, d.blockTypes(), "actions")

	require.NoError(t, app.h.Close(context.Background()))
	app.drain()
	require.Len(t, app.posts, 3)
}

// A click on the same message by another approver hands its fresher
// response_url to the follower, which redraws the outcome there once.
func TestSlackFollowerTakesTheFresherURL(t *testing.T) {
	t.Parallel()
	app := newSlackApp(t, nil)
	id := guardAction(t, app.gate, "pair:move-follower", "ci")
	first, second := testResponseURL, "https://hooks.slack.com/actions/T_ACME/901/abc"
	app.clickAt("U_ALICE", channels.SlackActionApprove, id, first)
	require.Len(t, app.postsTo("/actions/T_ACME/900/abc", 2), 2)
	app.clickAt("U_BOB", channels.SlackActionApprove, id, second)
	app.postsTo("/actions/T_ACME/901/abc", 2)
	require.NoError(t, app.h.Close(context.Background()))
	app.drain()
	posts := app.postsTo("/actions/T_ACME/901/abc", 2)
	require.Len(t, posts, 2, "the outcome is redrawn once, by the click or by the follower")
	k := kinds(t, posts)
	require.ElementsMatch(t, []string{"ephemeral", "replace"}, k)
	outcome := posts[0]
	if k[1] == "replace" {
		outcome = posts[1]
	}
	require.Contains(t, redrawn(t, outcome).allMrkdwn(), "Approved by alice via Slack\nApproved by bob via Slack")
	require.Len(t, app.postsTo("/actions/T_ACME/900/abc", 2), 2, "nothing more to the first")
}

// Refusals are told to the clicker alone: the message is not redrawn.
func TestSlackRefusalsDoNotRedraw(t *testing.T) {
	t.Parallel()
	app := newSlackApp(t, nil)
	deploy := guardDeploy(t, app.gate)
	self := guardAction(t, app.gate, "selfserve:reset-password", "carol")
	decided := guardAction(t, app.gate, "deploy:staging", "ci")
	decideAs(t, app.gate, decided, "bob", approval.VerdictApprove)
	for i, c := range []struct{ user, id, want string }{
		{"U_MALLORY", deploy, "You are not an approver"},
		{"U_NOBODY", deploy, "not linked to an approver"},
		{"U_CAROL", self, "You requested this action"},
		{"U_ALICE", decided, "no longer open for decisions (it is approved)"},
		{"U_ALICE", "req_" + strings.Repeat("0", 32), "no longer exists"},
	} {
		path := "/actions/T_ACME/" + strconv.Itoa(1000+i) + "/abc"
		app.clickAt(c.user, channels.SlackActionApprove, c.id, "https://hooks.slack.com"+path)
		posts := app.postsTo(path, 1)
		require.Equal(t, []string{"ephemeral"}, kinds(t, posts), c.want)
		require.Contains(t, string(posts[0]), c.want)
	}
	require.NoError(t, app.h.Close(context.Background()))
	app.drain()
	require.Len(t, app.posts, 5, "one answer per click, no redraw")
}

// The answer reaches Slack before the click is decided: UserID blocks
// until the test has the 200, and would run out of its 2 seconds if the
// handler waited for it before answering.
func TestSlackAcknowledgesBeforeDeciding(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var expired atomic.Bool
	app := newSlackApp(t, nil, func(c *channels.SlackInteractionsConfig) {
		c.UserID = func(ctx context.Context, user, team string) (string, error) {
			select {
			case <-release:
			case <-ctx.Done():
				expired.Store(true)
				return "", ctx.Err()
			}
			return slackUserID(ctx, user, team)
		}
	})
	id := guardDeploy(t, app.gate)
	body := clickBodyURL("U_ALICE", channels.SlackActionApprove, id, testResponseURL)
	ts := strconv.FormatInt(app.now.Unix(), 10)
	req, err := http.NewRequest(http.MethodPost, app.srv.URL, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", slackSign(slackSigningSecret, ts, body))
	resp, err := app.srv.Client().Do(req) // returns with the status line
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Empty(t, app.request(id).Votes, "acknowledged before deciding")
	close(release)
	rest, err := io.ReadAll(resp.Body) // ends when the handler does
	require.NoError(t, err)
	require.Empty(t, rest)
	require.False(t, expired.Load(), "UserID did not wait for its deadline")
	require.Equal(t, approval.StatusApproved, app.request(id).Status)
	require.Equal(t, []string{"ephemeral", "replace"}, kinds(t, app.postsTo("/actions/T_ACME/900/abc", 2)))
}

// Many clicks on one response_url never make more than Slack's 5 posts,
// and the last is kept for the outcome.
func TestSlackResponseURLBudget(t *testing.T) {
	t.Parallel()
	app := newSlackApp(t, nil)
	id := guardAction(t, app.gate, "pair:budget", "ci")
	app.clickAt("U_ALICE", channels.SlackActionApprove, id, testResponseURL)
	require.Len(t, app.postsTo("/actions/T_ACME/900/abc", 2), 2)

	// Replays, at once: each answered 200; their refusals take what the
	// budget has left but the last post.
	body := clickBodyURL("U_ALICE", channels.SlackActionApprove, id, testResponseURL)
	ts := strconv.FormatInt(app.now.Unix(), 10)
	var wg sync.WaitGroup
	statuses := make([]int, 8)
	for i := range statuses {
		wg.Go(func() {
			req, err := http.NewRequest(http.MethodPost, app.srv.URL, bytes.NewReader(body))
			if err != nil {
				return
			}
			req.Header.Set("X-Slack-Request-Timestamp", ts)
			req.Header.Set("X-Slack-Signature", slackSign(slackSigningSecret, ts, body))
			resp, err := app.srv.Client().Do(req)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		})
	}
	wg.Wait()
	for _, s := range statuses {
		require.Equal(t, http.StatusOK, s)
	}
	posts := app.postsTo("/actions/T_ACME/900/abc", 4)
	require.Equal(t, []string{"ephemeral", "replace", "ephemeral", "ephemeral"}, kinds(t, posts))
	require.Contains(t, app.logs.String(), "response_url budget spent: 4 of 5 posts made")

	decideAs(t, app.gate, id, "bob", approval.VerdictApprove)
	posts = app.postsTo("/actions/T_ACME/900/abc", 5)
	require.NoError(t, app.h.Close(context.Background()))
	app.drain()
	posts = app.postsTo("/actions/T_ACME/900/abc", 5)
	require.Len(t, posts, 5, "never more than Slack allows")
	require.Equal(t, "replace", kinds(t, posts)[4])
	require.Equal(t, "Approved: pair:budget", redrawn(t, posts[4]).plain[0], "the last post is the outcome")

	// The budget is spent: a click on that response_url posts nothing.
	another := guardAction(t, app.gate, "deploy:another", "ci")
	app.clickAt("U_ALICE", channels.SlackActionApprove, another, testResponseURL)
	app.drain()
	require.Len(t, app.postsTo("/actions/T_ACME/900/abc", 5), 5)
	require.Equal(t, approval.StatusApproved, app.request(another).Status, "the decision stands")
}

// Close stops following: nothing is posted after it returns.
func TestSlackCloseStopsFollowing(t *testing.T) {
	t.Parallel()
	app := newSlackApp(t, nil)
	id := guardAction(t, app.gate, "pair:closing", "ci")
	app.clickAt("U_ALICE", channels.SlackActionApprove, id, testResponseURL)
	require.Len(t, app.postsTo("/actions/T_ACME/900/abc", 2), 2)
	require.NoError(t, app.h.Close(context.Background()))
	decideAs(t, app.gate, id, "bob", approval.VerdictApprove)
	app.drain()
	require.Len(t, app.posts, 2, "the follower had returned")

	// After Close, a click is still decided and its message redrawn.
	other := guardAction(t, app.gate, "pair:after-close", "ci")
	app.clickAt("U_BOB", channels.SlackActionApprove, other, "https://hooks.slack.com/actions/T_ACME/902/abc")
	require.Equal(t, []string{"ephemeral", "replace"}, kinds(t, app.postsTo("/actions/T_ACME/902/abc", 2)))
}

// MaxFollowed bounds the messages followed at once.
func TestSlackMaxFollowed(t *testing.T) {
	t.Parallel()
	app := newSlackApp(t, nil, func(c *channels.SlackInteractionsConfig) { c.MaxFollowed = 1 })
	first := guardAction(t, app.gate, "pair:first", "ci")
	second := guardAction(t, app.gate, "pair:second", "ci")
	app.clickAt("U_ALICE", channels.SlackActionApprove, first, testResponseURL)
	app.clickAt("U_ALICE", channels.SlackActionApprove, second, "https://hooks.slack.com/actions/T_ACME/903/abc")
	require.Contains(t, app.logs.String(), "slack message not followed: MaxFollowed messages are")
	decideAs(t, app.gate, second, "bob", approval.VerdictApprove)
	decideAs(t, app.gate, first, "bob", approval.VerdictApprove)
	require.Len(t, app.postsTo("/actions/T_ACME/900/abc", 3), 3, "the followed message shows the outcome")
	require.NoError(t, app.h.Close(context.Background()))
	app.drain()
	require.Len(t, app.postsTo("/actions/T_ACME/903/abc", 2), 2, "the other was redrawn once, at the click")
}

// The follower gives up at the request's deadline (and a minute for the
// gate to time it out) or the end of Slack's window, whichever is first:
// with the handler's clock past the deadline, it stops at once and the
// outcome decided later is not redrawn.
func TestSlackFollowerBoundedByDeadline(t *testing.T) {
	t.Parallel()
	app := newSlackApp(t, nil)
	id := guardAction(t, app.gate, "pair:deadline", "ci")
	deadline := app.request(id).Deadline
	require.False(t, deadline.IsZero())
	app.now = deadline.Add(2 * time.Minute).Truncate(time.Second) // before any request to the handler
	app.clickAt("U_ALICE", channels.SlackActionApprove, id, testResponseURL)
	require.Len(t, app.postsTo("/actions/T_ACME/900/abc", 2), 2)
	require.Eventually(t, func() bool {
		return strings.Contains(app.logs.String(), "channels: slack message no longer followed")
	}, 10*time.Second, time.Millisecond, "the follower stops by itself")
	decideAs(t, app.gate, id, "bob", approval.VerdictApprove)
	require.NoError(t, app.h.Close(context.Background()))
	app.drain()
	require.Len(t, app.posts, 2)
}
