package channels_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/channels"
	"github.com/signoff/approval/internal/testkit"
	"github.com/signoff/approval/memstore"
)

const slackSigningSecret = "8f742231b10e8888abcd99yyyzzz85a5"

// slackApp is a gate behind NewSlackInteractions, served by a real server,
// with Slack users U_ALICE, U_BOB, U_CAROL and U_MALLORY of team T_ACME
// mapped to approver IDs (mallory approves nothing).
type slackApp struct {
	t    *testing.T
	gate *approval.Gate
	srv  *httptest.Server
	now  time.Time // the handler's clock
	logs *testkit.Buffer
	// hooks stands in for hooks.slack.com: the handler's client reaches it
	// for every response_url on that host.
	hooks   *httptest.Server
	posted  chan hookPost // what the handler posted to a response_url
	hookErr atomic.Int32  // when set, hooks answers with this status
	h       *channels.SlackInteractions
	// posts are those read from posted, in order; seen of them have been
	// looked at by ephemeral.
	posts []hookPost
	seen  int
}

// hookPost is one post to a response_url: its path and body.
type hookPost struct {
	path string
	body []byte
}

var slackUsers = map[string]string{"U_ALICE": "alice", "U_BOB": "bob", "U_CAROL": "carol", "U_MALLORY": "mallory",
	"U_BADID": "not a valid id\x00"}

func slackUserID(_ context.Context, user, team string) (string, error) {
	switch {
	case team != "T_ACME":
		return "", nil
	case user == "U_ERR":
		return "", errors.New("directory unavailable")
	case user == "U_PANIC":
		panic("lookup exploded")
	}
	return slackUsers[user], nil
}

func newSlackApp(t *testing.T, gate *approval.Gate, mod ...func(*channels.SlackInteractionsConfig)) *slackApp {
	t.Helper()
	if gate == nil {
		gate = newFixtureGate(t)
	}
	app := &slackApp{t: t, gate: gate, now: time.Now().Truncate(time.Second), logs: &testkit.Buffer{},
		posted: make(chan hookPost, 256)}
	app.hooks = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/actions/") || err != nil ||
			r.Header.Get("Content-Type") != "application/json; charset=utf-8" {
			http.Error(w, "not a response_url post", http.StatusBadRequest)
			return
		}
		if code := app.hookErr.Load(); code != 0 {
			http.Error(w, "no_service", int(code))
			return
		}
		app.posted <- hookPost{r.URL.Path, body}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(app.hooks.Close)
	cfg := channels.SlackInteractionsConfig{
		SigningSecret: slackSigningSecret,
		Gate:          gate,
		UserID:        slackUserID,
		Now:           func() time.Time { return app.now },
		Logger:        slog.New(slog.NewTextHandler(app.logs, nil)),
		Client:        hooksClient(app.hooks),
	}
	for _, m := range mod {
		m(&cfg)
	}
	h, err := channels.NewSlackInteractions(cfg)
	require.NoError(t, err)
	app.h = h
	app.srv = httptest.NewServer(h)
	t.Cleanup(func() {
		app.srv.Close()
		require.NoError(t, h.Close(context.Background()))
	})
	return app
}

// drain reads what has been posted so far into a.posts.
func (a *slackApp) drain() {
	for {
		select {
		case p := <-a.posted:
			a.posts = append(a.posts, p)
		default:
			return
		}
	}
}

// postsTo returns the posts to response_url path so far, once there are
// at least n: it waits for the handler's followers, failing the test
// after 10 seconds.
func (a *slackApp) postsTo(path string, n int) [][]byte {
	a.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		a.drain()
		var out [][]byte
		for _, p := range a.posts {
			if p.path == path {
				out = append(out, p.body)
			}
		}
		if len(out) >= n {
			return out
		}
		select {
		case p := <-a.posted:
			a.posts = append(a.posts, p)
		case <-timeout:
			a.t.Fatalf("%d posts to %s, want %d; log:\n%s", len(out), path, n, a.logs.String())
		}
	}
}

// hooksClient reaches srv for every address, as if it served Slack's
// hosts: the handler keeps its default ResponseHosts.
func hooksClient(srv *httptest.Server) *http.Client {
	tr := srv.Client().Transport.(*http.Transport).Clone()
	addr := srv.Listener.Addr().String()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	tr.TLSClientConfig.ServerName = "example.com" // in httptest's certificate
	return &http.Client{Transport: tr}
}

// responseURLs numbers the response_urls of clickBody: Slack gives each
// interaction its own.
var responseURLs atomic.Int64

// clickBody is the form Slack posts when user clicks a button, with a
// response_url of its own.
func clickBody(user, actionID, value string) []byte {
	return clickBodyURL(user, actionID, value, fmt.Sprintf("https://hooks.slack.com/actions/T_ACME/%d/abc", responseURLs.Add(1)))
}

// clickBodyURL is clickBody with the given response_url.
func clickBodyURL(user, actionID, value, responseURL string) []byte {
	payload := map[string]any{
		"type":         "block_actions",
		"user":         map[string]any{"id": user, "username": "someone", "team_id": "T_ACME"},
		"team":         map[string]any{"id": "T_ACME", "domain": "acme"},
		"api_app_id":   "A123",
		"container":    map[string]any{"type": "message", "message_ts": "1700000000.000100"},
		"channel":      map[string]any{"id": "C_APPROVALS", "name": "approvals"},
		"response_url": responseURL,
		"trigger_id":   "1.2.3",
		"actions": []map[string]any{{
			"type": "button", "action_id": actionID, "block_id": "b1", "value": value,
			"text": map[string]any{"type": "plain_text", "text": "Approve"}, "action_ts": "1700000001.000200",
		}},
	}
	raw, _ := json.Marshal(payload)
	return []byte(url.Values{"payload": {string(raw)}}.Encode())
}

// slackSign is Slack's v0 signature, computed here independently.
func slackSign(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("v0:" + ts + ":"))
	m.Write(body)
	return "v0=" + hex.EncodeToString(m.Sum(nil))
}

// post sends body with the given headers (nil values are left out).
func (a *slackApp) post(body []byte, header map[string]string) (int, http.Header, []byte) {
	a.t.Helper()
	return postTo(a.t, a.srv, "application/x-www-form-urlencoded", body, header)
}

// signed posts body as Slack would, signed at a.now.
func (a *slackApp) signed(body []byte) (int, []byte) {
	a.t.Helper()
	ts := strconv.FormatInt(a.now.Unix(), 10)
	status, _, got := a.post(body, map[string]string{
		"X-Slack-Request-Timestamp": ts,
		"X-Slack-Signature":         slackSign(slackSigningSecret, ts, body),
	})
	return status, got
}

// click posts a signed click and returns the ephemeral text shown.
func (a *slackApp) click(user, actionID, id string) string {
	a.t.Helper()
	status, body := a.signed(clickBody(user, actionID, id))
	return a.ephemeral(status, body)
}

// ephemeral returns the message the user who clicked is shown: posted to
// the response_url, or, when body is not empty, in the answer.
func (a *slackApp) ephemeral(status int, body []byte) string {
	a.t.Helper()
	require.Equal(a.t, http.StatusOK, status, "%s", body)
	if len(body) == 0 {
		// The handler posts before it ends the answer, so the post has
		// arrived by the time the answer has been read. Redraws of the
		// message (replace_original) may be among the posts.
		a.drain()
		var found [][]byte
		for _, p := range a.posts[a.seen:] {
			if bytes.Contains(p.body, []byte(`"response_type":"ephemeral"`)) {
				found = append(found, p.body)
			}
		}
		a.seen = len(a.posts)
		if len(found) != 1 {
			a.t.Fatalf("%d ephemeral posts to the response_url, want 1; log:\n%s", len(found), a.logs.String())
		}
		body = found[0]
	}
	var msg struct {
		ResponseType    string `json:"response_type"`
		Text            string `json:"text"`
		ReplaceOriginal *bool  `json:"replace_original"`
	}
	strictJSON(a.t, body, &msg)
	require.Equal(a.t, "ephemeral", msg.ResponseType)
	require.NotNil(a.t, msg.ReplaceOriginal)
	require.False(a.t, *msg.ReplaceOriginal, "the message with the buttons stays")
	requireEscaped(a.t, msg.Text)
	return msg.Text
}

func (a *slackApp) request(id string) *approval.Request {
	a.t.Helper()
	r, err := a.gate.Get(context.Background(), id)
	require.NoError(a.t, err)
	return r
}

// requireUntouched checks that request id is pending, without votes, and
// that its audit trail is still the given one.
func (a *slackApp) requireUntouched(id string, audit []approval.AuditEvent) {
	a.t.Helper()
	r := a.request(id)
	require.Equal(a.t, approval.StatusPending, r.Status)
	require.Empty(a.t, r.Votes)
	require.Equal(a.t, audit, auditOf(a.t, a.gate, id))
}

func TestSlackClickApproves(t *testing.T) {
	t.Parallel()
	app := newSlackApp(t, nil)
	id := guardDeploy(t, app.gate)

	text := app.click("U_ALICE", channels.SlackActionApprove, id)
	require.Equal(t, "You approved *deploy:production* (`"+id+"`). The request is approved.", text)

	requireApprovedBy(t, app.gate, id, "alice", "via Slack (user U_ALICE, team T_ACME)")
}

func TestSlackClickDenies(t *testing.T) {
	t.Parallel()
	app := newSlackApp(t, nil)
	id := guardDeploy(t, app.gate)
	text := app.click("U_BOB", channels.SlackActionDeny, id)
	require.Equal(t, "You denied *deploy:production* (`"+id+"`). The request is denied.", text)
	r := app.request(id)
	require.Equal(t, approval.StatusDenied, r.Status)
	require.Equal(t, "bob", r.Votes[0].Approver)
	require.Equal(t, approval.VerdictDeny, r.Votes[0].Verdict)
}

// A replayed click decides nothing more: on a request still open the
// approver has decided already; on a closed one it is no longer open.
func TestSlackReplayedClickDecidesNothingMore(t *testing.T) {
	t.Parallel()
	app := newSlackApp(t, nil)

	pair := guardAction(t, app.gate, "pair:rotate-keys", "ci")
	body := clickBody("U_ALICE", channels.SlackActionApprove, pair)
	text := app.ephemeral(app.signed(body))
	require.Equal(t, "Your approval of *pair:rotate-keys* (`"+pair+"`) is recorded. The request waits for further approvals.", text)
	text = app.ephemeral(app.signed(body))
	require.Equal(t, "You have already decided this request; your earlier answer stands.", text)
	r := app.request(pair)
	require.Equal(t, approval.StatusPending, r.Status)
	require.Len(t, r.Votes, 1, "no double vote")

	require.Contains(t, app.click("U_BOB", channels.SlackActionApprove, pair), "The request is approved.")
	text = app.ephemeral(app.signed(body))
	require.Equal(t, "This request is no longer open for decisions (it is approved), so nothing was recorded.", text)
	require.Len(t, app.request(pair).Votes, 2)

	deploy := guardDeploy(t, app.gate)
	body = clickBody("U_ALICE", channels.SlackActionApprove, deploy)
	require.Contains(t, app.ephemeral(app.signed(body)), "The request is approved.")
	require.Contains(t, app.ephemeral(app.signed(body)), "no longer open for decisions (it is approved)")
	require.Len(t, app.request(deploy).Votes, 1)
}

// Requests that are not Slack's, or not any more, are refused with 401
// before the gate is asked anything.
func TestSlackRefusesUnsignedAndStale(t *testing.T) {
	t.Parallel()
	app := newSlackApp(t, nil)
	id := guardDeploy(t, app.gate)
	audit := auditOf(t, app.gate, id)
	body := clickBody("U_ALICE", channels.SlackActionApprove, id)
	ts := strconv.FormatInt(app.now.Unix(), 10)
	at := func(d time.Duration) string { return strconv.FormatInt(app.now.Add(d).Unix(), 10) }
	tampered := clickBody("U_ALICE", channels.SlackActionApprove, id+" ")
	for name, tc := range map[string]struct {
		body   []byte
		header map[string]string
	}{
		"wrong secret": {body, map[string]string{"X-Slack-Request-Timestamp": ts,
			"X-Slack-Signature": slackSign("another-signing-secret-0123456789", ts, body)}},
		"tampered body": {tampered, map[string]string{"X-Slack-Request-Timestamp": ts,
			"X-Slack-Signature": slackSign(slackSigningSecret, ts, body)}},
		"another timestamp": {body, map[string]string{"X-Slack-Request-Timestamp": at(-time.Second),
			"X-Slack-Signature": slackSign(slackSigningSecret, ts, body)}},
		"no signature":    {body, map[string]string{"X-Slack-Request-Timestamp": ts}},
		"no timestamp":    {body, map[string]string{"X-Slack-Signature": slackSign(slackSigningSecret, ts, body)}},
		"no headers":      {body, nil},
		"other version":   {body, map[string]string{"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": "v1=" + strings.Repeat("ab", 32)}},
		"not hex":         {body, map[string]string{"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": "v0=" + strings.Repeat("zz", 32)}},
		"bad timestamp":   {body, map[string]string{"X-Slack-Request-Timestamp": "yesterday", "X-Slack-Signature": slackSign(slackSigningSecret, "yesterday", body)}},
		"old timestamp":   {body, map[string]string{"X-Slack-Request-Timestamp": at(-6 * time.Minute), "X-Slack-Signature": slackSign(slackSigningSecret, at(-6*time.Minute), body)}},
		"from the future": {body, map[string]string{"X-Slack-Request-Timestamp": at(6 * time.Minute), "X-Slack-Signature": slackSign(slackSigningSecret, at(6*time.Minute), body)}},
	} {
		t.Run(name, func(t *testing.T) {
			status, header, got := app.post(tc.body, tc.header)
			require.Equal(t, http.StatusUnauthorized, status, "%s", got)
			require.NotEmpty(t, header.Get("WWW-Authenticate"))
			app.requireUntouched(id, audit)
		})
	}
	// Within the window, either way, the same click is accepted.
	for _, d := range []time.Duration{-4 * time.Minute, 4 * time.Minute} {
		id := guardAction(t, app.gate, "pair:window-"+strconv.Itoa(int(d.Minutes()+10)), "ci")
		body := clickBody("U_ALICE", channels.SlackActionApprove, id)
		status, _, got := app.post(body, map[string]string{"X-Slack-Request-Timestamp": at(d),
			"X-Slack-Signature": slackSign(slackSigningSecret, at(d), body)})
		require.Contains(t, app.ephemeral(status, got), "is recorded")
	}
}

// A Slack user the host does not map to an approver decides nothing.
func TestSlackRefusesUnmappedUsers(t *testing.T) {
	t.Parallel()
	app := newSlackApp(t, nil)
	id := guardDeploy(t, app.gate)
	audit := auditOf(t, app.gate, id)
	for _, user := range []string{"U_NOBODY", "U_ERR", "U_PANIC", ""} {
		t.Run(user, func(t *testing.T) {
			text := app.click(user, channels.SlackActionApprove, id)
			if user == "" {
				require.Equal(t, "Slack did not say who clicked, so nothing was decided.", text)
			} else {
				require.Contains(t, text, "Your Slack account is not linked to an approver, so nothing was decided.")
			}
			app.requireUntouched(id, audit)
		})
	}
	t.Run("another team", func(t *testing.T) {
		body := bytes.ReplaceAll(clickBody("U_ALICE", channels.SlackActionApprove, id), []byte("T_ACME"), []byte("T_OTHER"))
		require.Contains(t, app.ephemeral(app.signed(body)), "not linked to an approver")
		app.requireUntouched(id, audit)
	})
	t.Run("invalid approver ID", func(t *testing.T) {
		text := app.click("U_BADID", channels.SlackActionApprove, id)
		require.Contains(t, text, "not linked to a valid approver")
		app.requireUntouched(id, audit)
	})
	require.Contains(t, app.logs.String(), "UserID panicked: lookup exploded", "the panic is logged")
}

// The gate's checks apply: a refusal is explained, changes nothing, and is
// audited by the gate.
func TestSlackRefusalsExplained(t *testing.T) {
	t.Parallel()
	app := newSlackApp(t, nil)

	id := guardDeploy(t, app.gate)
	text := app.click("U_MALLORY", channels.SlackActionApprove, id)
	require.Equal(t, "You are not an approver of this request, so nothing was recorded.", text)
	r := app.request(id)
	require.Equal(t, approval.StatusPending, r.Status)
	require.Empty(t, r.Votes)
	evs := auditOf(t, app.gate, id)
	last := evs[len(evs)-1]
	require.Equal(t, approval.EventDecisionRejected, last.Type)
	require.Equal(t, "mallory", last.Actor)

	self := guardAction(t, app.gate, "selfserve:reset-password", "carol")
	text = app.click("U_CAROL", channels.SlackActionApprove, self)
	require.Equal(t, "You requested this action, so you cannot decide it. Nothing was recorded.", text)
	require.Empty(t, app.request(self).Votes)

	text = app.click("U_ALICE", channels.SlackActionApprove, "req_"+strings.Repeat("0", 32))
	require.Equal(t, "This request no longer exists, so nothing was decided.", text)
	text = app.click("U_ALICE", channels.SlackActionDeny, "<!channel>")
	require.Equal(t, "This message names no request this server knows, so nothing was decided.", text)
}

// Clicks on link buttons and interactions of other kinds are
// acknowledged, and decide nothing.
func TestSlackAcknowledgesOtherInteractions(t *testing.T) {
	t.Parallel()
	app := newSlackApp(t, nil)
	id := guardDeploy(t, app.gate)
	audit := auditOf(t, app.gate, id)
	other, _ := json.Marshal(map[string]any{"type": "view_submission", "user": map[string]any{"id": "U_ALICE"}})
	noActions, _ := json.Marshal(map[string]any{"type": "block_actions", "user": map[string]any{"id": "U_ALICE"}})
	for name, body := range map[string][]byte{
		"review":       clickBody("U_ALICE", channels.SlackActionReview, id),
		"approve link": clickBody("U_ALICE", channels.SlackActionApproveLink, id),
		"deny link":    clickBody("U_ALICE", channels.SlackActionDenyLink, id),
		"foreign":      clickBody("U_ALICE", "someone_elses_button", id),
		"view":         []byte(url.Values{"payload": {string(other)}}.Encode()),
		"no actions":   []byte(url.Values{"payload": {string(noActions)}}.Encode()),
	} {
		t.Run(name, func(t *testing.T) {
			status, got := app.signed(body)
			require.Equal(t, http.StatusOK, status)
			require.Empty(t, got)
			app.requireUntouched(id, audit)
		})
	}
}

func TestSlackInteractionsHTTPErrors(t *testing.T) {
	t.Parallel()
	app := newSlackApp(t, nil)

	resp, err := app.srv.Client().Get(app.srv.URL)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	require.Equal(t, http.MethodPost, resp.Header.Get("Allow"))

	big := bytes.Repeat([]byte("a"), channels.MaxSlackInteractionBytes+1)
	status, _ := app.signed(big)
	require.Equal(t, http.StatusRequestEntityTooLarge, status)

	for name, body := range map[string][]byte{
		"no payload":   []byte("token=x"),
		"not JSON":     []byte("payload=%7Bnot-json"),
		"not a form":   []byte("%zz"),
		"JSON no form": []byte(`{"type":"block_actions"}`),
	} {
		status, got := app.signed(body)
		require.Equal(t, http.StatusBadRequest, status, "%s: %s", name, got)
	}
}

// failingStore fails Get, with a message that must not reach Slack, once
// fail is set.
type failingStore struct {
	approval.Store
	fail atomic.Bool
}

func (s *failingStore) Get(ctx context.Context, id string) (*approval.Request, error) {
	if s.fail.Load() {
		return nil, errors.New("dial tcp 10.0.0.5:5432: password=hunter2 refused")
	}
	return s.Store.Get(ctx, id)
}

func TestSlackInternalErrorsNotShown(t *testing.T) {
	t.Parallel()
	store := &failingStore{Store: memstore.New()}
	app := newSlackApp(t, newFixtureGate(t, func(c *approval.Config) { c.Store = store }))
	id := guardDeploy(t, app.gate)
	store.fail.Store(true)
	text := app.click("U_ALICE", channels.SlackActionApprove, id)
	require.Equal(t, "The decision could not be recorded because of a server error. Try again, or use the review page.", text)
	require.Contains(t, app.logs.String(), "hunter2", "the cause is logged")
	store.fail.Store(false)
	require.Empty(t, app.request(id).Votes)
}

func TestNewSlackInteractionsValidatesConfig(t *testing.T) {
	t.Parallel()
	gate := newFixtureGate(t)
	ok := channels.SlackInteractionsConfig{SigningSecret: slackSigningSecret, Gate: gate, UserID: slackUserID}
	for name, tc := range map[string]struct {
		mod  func(*channels.SlackInteractionsConfig)
		want string
	}{
		"no secret":    {func(c *channels.SlackInteractionsConfig) { c.SigningSecret = "" }, "SigningSecret has 0 bytes"},
		"short secret": {func(c *channels.SlackInteractionsConfig) { c.SigningSecret = "abc" }, "SigningSecret has 3 bytes"},
		"no gate":      {func(c *channels.SlackInteractionsConfig) { c.Gate = nil }, "Gate is nil"},
		"no UserID":    {func(c *channels.SlackInteractionsConfig) { c.UserID = nil }, "UserID is nil"},
		"negative age": {func(c *channels.SlackInteractionsConfig) { c.MaxAge = -time.Second }, "MaxAge is negative"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := ok
			tc.mod(&cfg)
			_, err := channels.NewSlackInteractions(cfg)
			require.ErrorIs(t, err, channels.ErrInvalidConfig)
			require.ErrorContains(t, err, tc.want)
		})
	}
	_, err := channels.NewSlackInteractions(ok)
	require.NoError(t, err)
}

// MaxAge narrows the replay window.
func TestSlackInteractionsMaxAge(t *testing.T) {
	t.Parallel()
	app := newSlackApp(t, nil, func(c *channels.SlackInteractionsConfig) { c.MaxAge = 30 * time.Second })
	id := guardDeploy(t, app.gate)
	body := clickBody("U_ALICE", channels.SlackActionApprove, id)
	ts := strconv.FormatInt(app.now.Add(-time.Minute).Unix(), 10)
	status, _, _ := app.post(body, map[string]string{"X-Slack-Request-Timestamp": ts,
		"X-Slack-Signature": slackSign(slackSigningSecret, ts, body)})
	require.Equal(t, http.StatusUnauthorized, status)
	require.Contains(t, app.click("U_ALICE", channels.SlackActionApprove, id), "The request is approved.")
}

// The whole loop: the gate notifies Slack, and the message's own Approve
// button, clicked, decides.
func TestSlackMessageButtonDecides(t *testing.T) {
	t.Parallel()
	slack, got := slackServer(t, http.StatusOK, "ok")
	gate := newFixtureGate(t, func(c *approval.Config) { c.Channels = []approval.Channel{newSlack(t, slack, true)} })
	app := newSlackApp(t, gate)
	id := guardDeploy(t, gate)
	require.Eventually(t, func() bool { return len(got()) == 2 }, 5*time.Second, 10*time.Millisecond)

	d := decodeBlockKit(t, got()[0])
	approve, ok := d.button(channels.SlackActionApprove)
	require.True(t, ok)
	text := app.click("U_BOB", approve.ActionID, approve.Value)
	require.Contains(t, text, "You approved *deploy:production*")
	require.Equal(t, approval.StatusApproved, app.request(id).Status)
}

// The outcome goes to the response_url only when it is https on one of
// Slack's hosts; otherwise it is in the answer, and the refusal logged.
// A response_url that fails is logged; the decision stands.
func TestSlackResponseURL(t *testing.T) {
	t.Parallel()
	app := newSlackApp(t, nil)
	for name, raw := range map[string]string{
		"foreign host": "https://hooks.evil.example/actions/T_ACME/1/abc",
		"plain http":   "http://hooks.slack.com/actions/T_ACME/1/abc",
		"userinfo":     "https://user:pw@hooks.slack.com/actions/T_ACME/1/abc",
		"lookalike":    "https://hooks.slack.com.evil.example/actions/T_ACME/1/abc",
		"port":         "https://hooks.slack.com:8443/actions/T_ACME/1/abc",
		"not a URL":    "https://hooks.slack.com/%zz",
	} {
		t.Run(name, func(t *testing.T) {
			id := guardAction(t, app.gate, "pair:url-"+strings.ReplaceAll(name, " ", "-"), "ci")
			body := clickBodyURL("U_ALICE", channels.SlackActionApprove, id, raw)
			status, got := app.signed(body)
			require.NotEmpty(t, got, "answered in the body")
			require.Contains(t, app.ephemeral(status, got), "is recorded")
			app.drain()
			require.Empty(t, app.posts, "nothing posted, nothing redrawn")
		})
	}
	require.Contains(t, app.logs.String(), "slack response_url refused; answering in the body")

	app.hookErr.Store(http.StatusNotFound)
	id := guardDeploy(t, app.gate)
	status, got := app.signed(clickBody("U_ALICE", channels.SlackActionApprove, id))
	require.Equal(t, http.StatusOK, status)
	require.Empty(t, got)
	require.Equal(t, approval.StatusApproved, app.request(id).Status, "the decision stands")
	require.Contains(t, app.logs.String(), `cannot post the outcome to slack's response_url" host=hooks.slack.com err="answered 404 Not Found: \"no_service\\n\""`)
	require.NotContains(t, app.logs.String(), "/actions/T_ACME", "the response_url is a credential")
}

// TestSlackClickBindsTheActionShown: a button's value carries the action
// hash its message showed; a click after another approver edited the
// payload decides nothing and says why, and a click on a message showing
// the edit counts.
func TestSlackClickBindsTheActionShown(t *testing.T) {
	t.Parallel()
	app := newSlackApp(t, nil)
	res, err := app.gate.Guard(context.Background(), approval.Action{Name: "pair:payout", RequestedBy: "ci", Payload: []byte(`{"to":"ACME","amount":100}`)})
	require.NoError(t, err)
	id := res.RequestID
	shown := app.request(id).ActionHash // the message alice received

	tok, err := app.gate.IssueToken(id, "bob", approval.VerdictApprove, time.Hour)
	require.NoError(t, err)
	_, err = app.gate.Decide(context.Background(), id, approval.Decision{Token: tok, Verdict: approval.VerdictApprove,
		Payload: []byte(`{"to":"EVE","amount":990000}`)})
	require.NoError(t, err)

	text := app.click("U_ALICE", channels.SlackActionApprove, id+" "+shown)
	require.Equal(t, "Another approver edited the payload since this message was sent, so nothing was recorded. Open the review page to see what you would approve.", text)
	r := app.request(id)
	require.Len(t, r.Votes, 1, "the stale click recorded nothing")
	evs := auditOf(t, app.gate, id)
	require.Equal(t, approval.EventDecisionRejected, evs[len(evs)-1].Type)

	text = app.click("U_ALICE", channels.SlackActionApprove, id+" "+r.Edit.ActionHash)
	require.Contains(t, text, "You approved")
	require.Equal(t, approval.StatusApproved, app.request(id).Status)
}
