package channels_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
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

// Discord's interactions, as the developer docs describe them:
// https://discord.com/developers/docs/interactions/overview#setting-up-an-endpoint
// (PING answered with type 1; X-Signature-Ed25519 over
// X-Signature-Timestamp and the raw body, checked with the application's
// public key, 401 when it fails) and
// https://discord.com/developers/docs/interactions/receiving-and-responding
// (type 3 MESSAGE_COMPONENT with data.custom_id, member.user in a server
// and user in a DM; response type 4 CHANNEL_MESSAGE_WITH_SOURCE, 6
// DEFERRED_UPDATE_MESSAGE; flag 64 EPHEMERAL; an answer within 3 seconds).

// discordApp is a gate behind DiscordInteractions, served by a real
// server, with Discord users 111 (alice), 222 (bob), 333 (carol) and 444
// (mallory, who approves nothing) mapped to approver IDs.
type discordApp struct {
	t    *testing.T
	gate *approval.Gate
	srv  *httptest.Server
	priv ed25519.PrivateKey
	now  time.Time
	logs *testkit.Buffer
	seq  atomic.Int64
}

var discordUsers = map[string]string{"111": "alice", "222": "bob", "333": "carol", "444": "mallory", "555": "not a valid id\x00"}

func discordUserID(_ context.Context, user string) (string, error) {
	switch user {
	case "900":
		return "", errors.New("directory unavailable")
	case "901":
		panic("lookup exploded")
	}
	return discordUsers[user], nil
}

func newDiscordApp(t *testing.T, gate *approval.Gate, pub ed25519.PublicKey, mod ...func(*channels.DiscordInteractionsConfig)) *discordApp {
	t.Helper()
	if gate == nil {
		gate = newFixtureGate(t)
	}
	app := &discordApp{t: t, gate: gate, now: time.Now().Truncate(time.Second), logs: &testkit.Buffer{}}
	if pub == nil {
		var err error
		pub, app.priv, err = ed25519.GenerateKey(nil)
		require.NoError(t, err)
	}
	cfg := channels.DiscordInteractionsConfig{
		PublicKey: hex.EncodeToString(pub),
		Gate:      gate,
		UserID:    discordUserID,
		Now:       func() time.Time { return app.now },
		Logger:    slog.New(slog.NewTextHandler(app.logs, nil)),
	}
	for _, m := range mod {
		m(&cfg)
	}
	h, err := channels.NewDiscordInteractions(cfg)
	require.NoError(t, err)
	app.srv = httptest.NewServer(h)
	t.Cleanup(app.srv.Close)
	return app
}

// discordClick is the interaction Discord posts when a user clicks a
// button, in a server (member.user) or, with dm, in a direct message
// (user).
func discordClick(interactionID, user, customID string, dm bool) []byte {
	in := map[string]any{
		"id": interactionID, "application_id": "1100000000000000001", "type": 3, "version": 1,
		"token":      "interaction-token",
		"channel_id": "1170000000000000001",
		"data":       map[string]any{"custom_id": customID, "component_type": 2},
		"message":    map[string]any{"id": "1180000000000000001", "content": ""},
		"locale":     "en-US",
	}
	if dm {
		in["user"] = map[string]any{"id": user, "username": "someone"}
	} else {
		in["guild_id"] = "G1"
		in["member"] = map[string]any{"user": map[string]any{"id": user, "username": "someone"}, "roles": []string{}}
	}
	b, _ := json.Marshal(in)
	return b
}

// post sends body with the given headers.
func (a *discordApp) post(body []byte, header map[string]string) (int, http.Header, []byte) {
	a.t.Helper()
	return postTo(a.t, a.srv, "application/json", body, header)
}

func discordSign(priv ed25519.PrivateKey, ts string, body []byte) string {
	return hex.EncodeToString(ed25519.Sign(priv, append([]byte(ts), body...)))
}

// signed posts body as Discord would, signed at a.now.
func (a *discordApp) signed(body []byte) (int, []byte) {
	a.t.Helper()
	ts := strconv.FormatInt(a.now.Unix(), 10)
	status, _, got := a.post(body, map[string]string{
		"X-Signature-Timestamp": ts,
		"X-Signature-Ed25519":   discordSign(a.priv, ts, body),
	})
	return status, got
}

// nextID is a fresh interaction ID.
func (a *discordApp) nextID() string { return "1190000000000" + strconv.FormatInt(a.seq.Add(1), 10) }

// click posts a signed click and returns the ephemeral message shown.
func (a *discordApp) click(user, customID string) string {
	a.t.Helper()
	return a.ephemeral(a.signed(discordClick(a.nextID(), user, customID, false)))
}

// ephemeral checks an answer of type 4, ephemeral, mentioning no one, and
// returns its content.
func (a *discordApp) ephemeral(status int, body []byte) string {
	a.t.Helper()
	require.Equal(a.t, http.StatusOK, status, "%s", body)
	var msg struct {
		Type int `json:"type"`
		Data struct {
			Content         string `json:"content"`
			Flags           int    `json:"flags"`
			AllowedMentions struct {
				Parse []string `json:"parse"`
			} `json:"allowed_mentions"`
		} `json:"data"`
	}
	strictJSON(a.t, body, &msg)
	require.Equal(a.t, 4, msg.Type, "CHANNEL_MESSAGE_WITH_SOURCE")
	require.Equal(a.t, 64, msg.Data.Flags, "EPHEMERAL")
	require.NotNil(a.t, msg.Data.AllowedMentions.Parse)
	require.Empty(a.t, msg.Data.AllowedMentions.Parse)
	return msg.Data.Content
}

func (a *discordApp) request(id string) *approval.Request {
	a.t.Helper()
	r, err := a.gate.Get(context.Background(), id)
	require.NoError(a.t, err)
	return r
}

func (a *discordApp) requireUntouched(id string, audit []approval.AuditEvent) {
	a.t.Helper()
	r := a.request(id)
	require.Equal(a.t, approval.StatusPending, r.Status)
	require.Empty(a.t, r.Votes)
	require.Equal(a.t, audit, auditOf(a.t, a.gate, id))
}

func approveID(id string) string { return channels.DiscordCustomIDApprove + ":" + id }

func TestDiscordPing(t *testing.T) {
	t.Parallel()
	app := newDiscordApp(t, nil, nil)
	ts := strconv.FormatInt(app.now.Unix(), 10)
	body := []byte(`{"id":"1","application_id":"2","type":1,"token":"t","version":1}`)
	status, header, got := app.post(body, map[string]string{"X-Signature-Timestamp": ts, "X-Signature-Ed25519": discordSign(app.priv, ts, body)})
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "application/json", header.Get("Content-Type"))
	require.JSONEq(t, `{"type":1}`, string(got))

	// Discord's check of an endpoint: the same PING with a bad signature.
	status, _, _ = app.post(body, map[string]string{"X-Signature-Timestamp": ts, "X-Signature-Ed25519": strings.Repeat("00", 64)})
	require.Equal(t, http.StatusUnauthorized, status)
}

func TestDiscordClickApproves(t *testing.T) {
	t.Parallel()
	app := newDiscordApp(t, nil, nil)
	id := guardDeploy(t, app.gate)

	text := app.click("111", approveID(id))
	require.Equal(t, "You approved **deploy\\:production** (`"+id+"`). The request is approved.", text)
	// The vote is the mapped approver's.
	requireApprovedBy(t, app.gate, id, "alice", "via Discord (user 111, guild G1)")

	// In a direct message Discord sends user, not member.
	deny := guardAction(t, app.gate, "deploy:staging", "ci")
	text = app.ephemeral(app.signed(discordClick(app.nextID(), "222", channels.DiscordCustomIDDeny+":"+deny, true)))
	require.Equal(t, "You denied **deploy\\:staging** (`"+deny+"`). The request is denied.", text)
	require.Equal(t, "bob", app.request(deny).Votes[0].Approver)
	require.Equal(t, "via Discord (user 222)", app.request(deny).Votes[0].Reason)
}

// A signature made by an independent implementation, Node's crypto with
// Ed25519, verifies; the handler's check is Discord's scheme, not merely
// the Go library agreeing with itself.
func TestDiscordSignatureFromNode(t *testing.T) {
	t.Parallel()
	node := nodeOrSkip(t)
	sign := func(ts string, body []byte) (pub ed25519.PublicKey, sig string) {
		in, _ := json.Marshal(map[string]string{"timestamp": ts, "body": string(body)})
		out := runNode(t, node, "testdata/discord", "sign.js", in)
		var got struct {
			PublicKey string `json:"public_key"`
			Signature string `json:"signature"`
		}
		require.NoError(t, json.Unmarshal(out, &got), "%s", out)
		key, err := hex.DecodeString(got.PublicKey)
		require.NoError(t, err)
		return key, got.Signature
	}
	gate := newFixtureGate(t)
	id := guardDeploy(t, gate)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	body := discordClick("1191", "111", approveID(id), false)
	pub, sig := sign(ts, body)
	app := newDiscordApp(t, gate, pub, func(c *channels.DiscordInteractionsConfig) { c.Now = time.Now })

	// Another key's signature, and Node's over another body, are refused.
	_, other := sign(ts, body)
	status, _, _ := app.post(body, map[string]string{"X-Signature-Timestamp": ts, "X-Signature-Ed25519": other})
	require.Equal(t, http.StatusUnauthorized, status)
	tampered := bytes.Replace(body, []byte(`"111"`), []byte(`"222"`), 1)
	status, _, _ = app.post(tampered, map[string]string{"X-Signature-Timestamp": ts, "X-Signature-Ed25519": sig})
	require.Equal(t, http.StatusUnauthorized, status)
	require.Empty(t, app.request(id).Votes)

	status, _, got := app.post(body, map[string]string{"X-Signature-Timestamp": ts, "X-Signature-Ed25519": sig})
	require.Contains(t, app.ephemeral(status, got), "The request is approved.")
	require.Equal(t, "alice", app.request(id).Votes[0].Approver)
}

// Requests that are not Discord's, or not any more, are refused with 401
// before the gate is asked anything.
func TestDiscordRefusesBadSignatures(t *testing.T) {
	t.Parallel()
	app := newDiscordApp(t, nil, nil)
	id := guardDeploy(t, app.gate)
	audit := auditOf(t, app.gate, id)
	body := discordClick("1192", "111", approveID(id), false)
	ts := strconv.FormatInt(app.now.Unix(), 10)
	at := func(d time.Duration) string { return strconv.FormatInt(app.now.Add(d).Unix(), 10) }
	_, otherKey, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	good := discordSign(app.priv, ts, body)
	for name, tc := range map[string]struct {
		body   []byte
		header map[string]string
	}{
		"another key":       {body, map[string]string{"X-Signature-Timestamp": ts, "X-Signature-Ed25519": discordSign(otherKey, ts, body)}},
		"tampered body":     {bytes.Replace(body, []byte(`"111"`), []byte(`"222"`), 1), map[string]string{"X-Signature-Timestamp": ts, "X-Signature-Ed25519": good}},
		"another timestamp": {body, map[string]string{"X-Signature-Timestamp": at(-time.Second), "X-Signature-Ed25519": good}},
		"no signature":      {body, map[string]string{"X-Signature-Timestamp": ts}},
		"no timestamp":      {body, map[string]string{"X-Signature-Ed25519": good}},
		"no headers":        {body, nil},
		"not hex":           {body, map[string]string{"X-Signature-Timestamp": ts, "X-Signature-Ed25519": strings.Repeat("zz", 64)}},
		"short":             {body, map[string]string{"X-Signature-Timestamp": ts, "X-Signature-Ed25519": good[:126]}},
		"bad timestamp":     {body, map[string]string{"X-Signature-Timestamp": "now", "X-Signature-Ed25519": discordSign(app.priv, "now", body)}},
		"old timestamp":     {body, map[string]string{"X-Signature-Timestamp": at(-6 * time.Minute), "X-Signature-Ed25519": discordSign(app.priv, at(-6*time.Minute), body)}},
		"from the future":   {body, map[string]string{"X-Signature-Timestamp": at(6 * time.Minute), "X-Signature-Ed25519": discordSign(app.priv, at(6*time.Minute), body)}},
	} {
		t.Run(name, func(t *testing.T) {
			status, _, got := app.post(tc.body, tc.header)
			require.Equal(t, http.StatusUnauthorized, status, "%s", got)
			app.requireUntouched(id, audit)
		})
	}
	// The same request, untouched, is accepted: the refusals were the
	// signature's.
	status, _, got := app.post(body, map[string]string{"X-Signature-Timestamp": ts, "X-Signature-Ed25519": good})
	require.Contains(t, app.ephemeral(status, got), "The request is approved.")
}

// A replayed interaction decides nothing: the same signed request, or the
// same interaction ID signed again, is refused while its ID is kept.
func TestDiscordReplayRefused(t *testing.T) {
	t.Parallel()
	app := newDiscordApp(t, nil, nil)
	pair := guardAction(t, app.gate, "pair:rotate-keys", "ci")
	body := discordClick("1193", "111", approveID(pair), false)
	require.Contains(t, app.ephemeral(app.signed(body)), "is recorded. The request waits for further approvals.")
	audit := auditOf(t, app.gate, pair)

	status, got := app.signed(body)
	require.Equal(t, http.StatusConflict, status, "%s", got)
	app.now = app.now.Add(4 * time.Minute) // re-signed later, still in the window
	status, _ = app.signed(body)
	require.Equal(t, http.StatusConflict, status)
	require.Len(t, app.request(pair).Votes, 1, "no second vote")
	require.Equal(t, audit, auditOf(t, app.gate, pair), "nothing reached the gate")
	require.Contains(t, app.logs.String(), "discord interaction replayed")

	// Another interaction by the same user is a new click, and the gate
	// says the approver has decided already.
	require.Equal(t, "You have already decided this request; your earlier answer stands.", app.click("111", approveID(pair)))
}

// A Discord user the host does not map to an approver decides nothing.
func TestDiscordRefusesUnlinkedUsers(t *testing.T) {
	t.Parallel()
	app := newDiscordApp(t, nil, nil)
	id := guardDeploy(t, app.gate)
	audit := auditOf(t, app.gate, id)
	for _, user := range []string{"999", "900", "901", ""} {
		t.Run("user "+user, func(t *testing.T) {
			text := app.click(user, approveID(id))
			if user == "" {
				require.Equal(t, "Discord did not say who clicked, so nothing was decided.", text)
			} else {
				require.Equal(t, "Your Discord account is not linked to an approver, so nothing was decided. Use the review page, or ask an administrator to link your account.", text)
			}
			app.requireUntouched(id, audit)
		})
	}
	t.Run("invalid approver ID", func(t *testing.T) {
		require.Contains(t, app.click("555", approveID(id)), "not linked to a valid approver")
		app.requireUntouched(id, audit)
	})
	require.Contains(t, app.logs.String(), "UserID panicked: lookup exploded")
}

// The gate's checks apply: a refusal is explained, changes nothing, and is
// audited by the gate.
func TestDiscordRefusalsExplained(t *testing.T) {
	t.Parallel()
	app := newDiscordApp(t, nil, nil)
	id := guardDeploy(t, app.gate)
	require.Equal(t, "You are not an approver of this request, so nothing was recorded.", app.click("444", approveID(id)))
	r := app.request(id)
	require.Equal(t, approval.StatusPending, r.Status)
	require.Empty(t, r.Votes)
	evs := auditOf(t, app.gate, id)
	last := evs[len(evs)-1]
	require.Equal(t, approval.EventDecisionRejected, last.Type, "the refusal is audited")
	require.Equal(t, "mallory", last.Actor)

	self := guardAction(t, app.gate, "selfserve:reset-password", "carol")
	require.Equal(t, "You requested this action, so you cannot decide it. Nothing was recorded.", app.click("333", approveID(self)))
	require.Empty(t, app.request(self).Votes)

	require.Equal(t, "This request no longer exists, so nothing was decided.", app.click("111", approveID("req_"+strings.Repeat("0", 32))))
	require.Equal(t, "This message names no request this server knows, so nothing was decided.", app.click("111", approveID("@everyone")))

	require.Contains(t, app.click("111", approveID(id)), "The request is approved.")
	require.Equal(t, "This request is no longer open for decisions (it is approved), so nothing was recorded.", app.click("222", approveID(id)))
}

// A button's custom_id carries the action hash its message showed: a click
// after another approver edited the payload decides nothing.
func TestDiscordClickBindsTheActionShown(t *testing.T) {
	t.Parallel()
	srv, _, bodies := discordServer(t, http.StatusOK, discordAccepted)
	gate := newFixtureGate(t, func(c *approval.Config) { c.Channels = []approval.Channel{newDiscord(t, srv)} })
	app := newDiscordApp(t, gate, nil)
	res, err := gate.Guard(context.Background(), approval.Action{Name: "pair:payout", RequestedBy: "ci", Payload: []byte(`{"to":"ACME","amount":100}`)})
	require.NoError(t, err)
	id := res.RequestID
	require.Eventually(t, func() bool { return len(bodies()) == 2 }, 5*time.Second, 10*time.Millisecond)
	approve := decodeDiscord(t, bodies()[0]).buttons()["Approve"]
	require.True(t, strings.HasPrefix(approve, approveID(id)+":"), approve)

	tok, err := gate.IssueToken(id, "bob", approval.VerdictApprove, time.Hour)
	require.NoError(t, err)
	_, err = gate.Decide(context.Background(), id, approval.Decision{Token: tok, Verdict: approval.VerdictApprove,
		Payload: []byte(`{"to":"EVE","amount":990000}`)})
	require.NoError(t, err)

	require.Equal(t, "Another approver edited the payload since this message was sent, so nothing was recorded. Open the review page to see what you would approve.",
		app.click("111", approve))
	require.Len(t, app.request(id).Votes, 1, "the stale click recorded nothing")
	require.Equal(t, "This message names no request this server knows, so nothing was decided.",
		app.click("111", approveID(id)+":!!"), "a hash that does not decode binds nothing")
	require.Len(t, app.request(id).Votes, 1)
}

// The whole loop: the gate posts to Discord, and the message's own Approve
// button, clicked, decides.
func TestDiscordMessageButtonDecides(t *testing.T) {
	t.Parallel()
	srv, _, bodies := discordServer(t, http.StatusOK, discordAccepted)
	gate := newFixtureGate(t, func(c *approval.Config) {
		c.Channels = []approval.Channel{newDiscord(t, srv)}
		c.BaseURL = "https://approvals.example.com"
	})
	app := newDiscordApp(t, gate, nil)
	id := guardDeploy(t, gate)
	require.Eventually(t, func() bool { return len(bodies()) == 2 }, 5*time.Second, 10*time.Millisecond)
	for _, b := range bodies() {
		require.NotContains(t, string(b), "token=")
	}
	m := decodeDiscord(t, bodies()[0])
	require.Equal(t, "https://approvals.example.com/approvals/"+id, m.buttons()["Review"])
	require.Contains(t, app.click("222", m.buttons()["Approve"]), "You approved **deploy\\:production**")
	require.Equal(t, approval.StatusApproved, app.request(id).Status)
}

// Other components and interactions are acknowledged and decide nothing.
func TestDiscordOtherInteractions(t *testing.T) {
	t.Parallel()
	app := newDiscordApp(t, nil, nil)
	id := guardDeploy(t, app.gate)
	audit := auditOf(t, app.gate, id)

	status, got := app.signed(discordClick(app.nextID(), "111", "someone_elses_button:"+id, false))
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"type":6}`, string(got), "DEFERRED_UPDATE_MESSAGE: the message stays")

	command, _ := json.Marshal(map[string]any{"id": app.nextID(), "type": 2, "data": map[string]any{"name": "approve"},
		"member": map[string]any{"user": map[string]any{"id": "111"}}})
	require.Equal(t, "This app handles only the Approve and Deny buttons of its approval messages.", app.ephemeral(app.signed(command)))
	app.requireUntouched(id, audit)
}

func TestDiscordInteractionsHTTPErrors(t *testing.T) {
	t.Parallel()
	app := newDiscordApp(t, nil, nil)
	resp, err := app.srv.Client().Get(app.srv.URL)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	require.Equal(t, http.MethodPost, resp.Header.Get("Allow"))

	status, _ := app.signed(bytes.Repeat([]byte("a"), channels.MaxDiscordInteractionBytes+1))
	require.Equal(t, http.StatusRequestEntityTooLarge, status)
	for name, body := range map[string][]byte{
		"not JSON": []byte("{not json"),
		"no type":  []byte(`{"id":"1"}`),
		"no id":    []byte(`{"type":3,"data":{"custom_id":"approval:approve:x"}}`),
	} {
		status, got := app.signed(body)
		require.Equal(t, http.StatusBadRequest, status, "%s: %s", name, got)
	}
}

func TestDiscordInternalErrorsNotShown(t *testing.T) {
	t.Parallel()
	store := &failingStore{Store: memstore.New()}
	app := newDiscordApp(t, newFixtureGate(t, func(c *approval.Config) { c.Store = store }), nil)
	id := guardDeploy(t, app.gate)
	store.fail.Store(true)
	require.Equal(t, "The decision could not be recorded because of a server error. Try again, or use the review page.", app.click("111", approveID(id)))
	require.Contains(t, app.logs.String(), "hunter2", "the cause is logged")
	store.fail.Store(false)
	require.Empty(t, app.request(id).Votes)
}

func TestNewDiscordInteractionsValidatesConfig(t *testing.T) {
	t.Parallel()
	gate := newFixtureGate(t)
	pub, _, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	ok := channels.DiscordInteractionsConfig{PublicKey: hex.EncodeToString(pub), Gate: gate, UserID: discordUserID}
	for name, tc := range map[string]struct {
		mod  func(*channels.DiscordInteractionsConfig)
		want string
	}{
		"no key":       {func(c *channels.DiscordInteractionsConfig) { c.PublicKey = "" }, "PublicKey is not 32 bytes in hex"},
		"short key":    {func(c *channels.DiscordInteractionsConfig) { c.PublicKey = "abcd" }, "PublicKey is not 32 bytes in hex"},
		"not hex":      {func(c *channels.DiscordInteractionsConfig) { c.PublicKey = strings.Repeat("z", 64) }, "PublicKey is not 32 bytes in hex"},
		"no gate":      {func(c *channels.DiscordInteractionsConfig) { c.Gate = nil }, "Gate is nil"},
		"no UserID":    {func(c *channels.DiscordInteractionsConfig) { c.UserID = nil }, "UserID is nil"},
		"negative age": {func(c *channels.DiscordInteractionsConfig) { c.MaxAge = -time.Second }, "MaxAge is negative"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := ok
			tc.mod(&cfg)
			_, err := channels.NewDiscordInteractions(cfg)
			require.ErrorIs(t, err, channels.ErrInvalidConfig)
			require.ErrorContains(t, err, tc.want)
		})
	}
	_, err = channels.NewDiscordInteractions(ok)
	require.NoError(t, err)
}
