package channels

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/text"
)

// Limits of the interactivity endpoint.
const (
	// MaxSlackInteractionBytes bounds the body of one interaction. A
	// block_actions payload carries the message it came from: a message of
	// this package is a few KiB.
	MaxSlackInteractionBytes = 64 << 10
	// slackTokenTTL is the life of the token minted for one click.
	slackTokenTTL = 2 * time.Minute
	// slackUserIDTimeout bounds SlackInteractionsConfig.UserID, so that the
	// answer can reach Slack within its 3 seconds.
	slackUserIDTimeout = 2 * time.Second
	// slackResponseTimeout bounds the post of the outcome to the
	// interaction's response_url.
	slackResponseTimeout = 5 * time.Second
)

// DefaultSlackResponseHosts are the hosts an interaction's response_url
// may name: Slack's, commercial and GovSlack.
var DefaultSlackResponseHosts = []string{"hooks.slack.com", "hooks.slack-gov.com"}

// Slack's request signing headers.
const (
	headerSlackSignature = "X-Slack-Signature"
	headerSlackTimestamp = "X-Slack-Request-Timestamp"
)

// SlackInteractionsConfig configures NewSlackInteractions. SigningSecret,
// Gate and UserID are required.
type SlackInteractionsConfig struct {
	// SigningSecret is the Slack app's Signing Secret (Basic Information,
	// App Credentials), which Slack signs each request with. Required.
	SigningSecret string
	// Gate decides. Required.
	Gate *approval.Gate
	// UserID maps the Slack user who clicked, in a workspace (team), to
	// the approver ID the gate knows them by. Return "" or an error for a
	// user who is not one of your approvers: no decision is made. It must
	// map only what the host has verified (a directory lookup, a stored
	// link between accounts), never trust a Slack display name, and it is
	// bounded by a context of 2 seconds: Slack waits 3 for the answer.
	// A panic is recovered and refuses the click. Required.
	UserID func(ctx context.Context, slackUserID, slackTeamID string) (approverID string, err error)
	// Now is the clock for the replay window. Defaults to time.Now.
	Now func() time.Time
	// MaxAge is the replay window: a request whose signed timestamp is
	// further from Now, either way, is refused. Defaults to 5 minutes
	// (DefaultMaxAge), as Slack recommends.
	MaxAge time.Duration
	// Logger receives refusals and internal errors. Defaults to
	// slog.Default().
	Logger *slog.Logger
	// Client posts the outcome to the interaction's response_url.
	// Defaults to a client on http.DefaultTransport; redirects are not
	// followed, and each post is bounded to 5 seconds.
	Client *http.Client
	// ResponseHosts are the hosts (host[:port]) a response_url may name;
	// it must also be https. Defaults to DefaultSlackResponseHosts.
	ResponseHosts []string
}

// NewSlackInteractions returns the handler of a Slack app's interactivity
// requests: it decides when an approver clicks Approve or Deny on a
// message that Slack posted with SlackConfig.Interactive. Configure the
// app's Interactivity Request URL (Interactivity & Shortcuts) to the
// address this handler is served at; Slack posts every click there. Errors
// wrap ErrInvalidConfig.
//
// Each request must carry Slack's signature: X-Slack-Signature, "v0=" and
// the hex HMAC-SHA256, keyed with the signing secret, of "v0:", the
// X-Slack-Request-Timestamp header, ":" and the body. The handler refuses
// with 401 a request whose signature does not match (compared in constant
// time) or whose timestamp is outside MaxAge, with 413 a body over
// MaxSlackInteractionBytes, with 405 a method other than POST and with 400
// a signed body it cannot read.
//
// A click on SlackActionApprove or SlackActionDeny is decided for the
// approver UserID names, through the gate like any other decision: the
// handler mints a token for that approver alone, valid two minutes, and
// calls Gate.Decide with it (reason "via Slack" and the Slack user), so
// eligibility, requester segregation, single use and the audit trail
// apply. A click by a Slack user UserID does not name decides nothing. The
// user who clicked is told, in an ephemeral message only they see, the
// outcome or why not (not linked to an approver, not an approver of the
// request, their own request, already decided, no longer open). Slack
// shows no message from the answer to a block_actions request, so the
// handler answers 200 with an empty body at once and then posts the
// message to the interaction's response_url (https, on one of
// ResponseHosts; a failure is logged). A payload without a usable
// response_url gets the message in the answer's body instead. Internal
// errors are logged and answered with a general message. A replayed
// request decides nothing more: the approver has decided already. Clicks
// on other buttons, and other interaction types, are acknowledged with an
// empty 200.
//
// The gate must have its Config.SigningKey, to mint the tokens: a gate
// that only verifies tokens answers every click with the general error
// (logged). The handler is safe for concurrent use.
func NewSlackInteractions(cfg SlackInteractionsConfig) (http.Handler, error) {
	switch {
	case len(cfg.SigningSecret) < MinSecretBytes:
		return nil, fmt.Errorf("%w: SlackInteractionsConfig.SigningSecret has %d bytes, want at least %d (copy the app's Signing Secret)",
			ErrInvalidConfig, len(cfg.SigningSecret), MinSecretBytes)
	case cfg.Gate == nil:
		return nil, fmt.Errorf("%w: SlackInteractionsConfig.Gate is nil", ErrInvalidConfig)
	case cfg.UserID == nil:
		return nil, fmt.Errorf("%w: SlackInteractionsConfig.UserID is nil (map Slack users to approver IDs)", ErrInvalidConfig)
	case cfg.MaxAge < 0:
		return nil, fmt.Errorf("%w: SlackInteractionsConfig.MaxAge is negative", ErrInvalidConfig)
	}
	h := &slackInteractions{secret: []byte(cfg.SigningSecret), gate: cfg.Gate, userID: cfg.UserID,
		now: cfg.Now, maxAge: cfg.MaxAge, log: cfg.Logger, hosts: cfg.ResponseHosts}
	h.chat = chatDecider{gate: cfg.Gate, channel: "slack", config: "SlackInteractionsConfig", ttl: slackTokenTTL, escape: esc,
		named: func(name, id string) string { return "*" + esc(name, slackNameMax) + "* (`" + esc(id, 64) + "`)" }}
	if cfg.Client != nil {
		h.client = *cfg.Client
	}
	h.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if h.hosts == nil {
		h.hosts = DefaultSlackResponseHosts
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.maxAge == 0 {
		h.maxAge = DefaultMaxAge
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	return h, nil
}

type slackInteractions struct {
	secret []byte
	gate   *approval.Gate
	userID func(ctx context.Context, slackUserID, slackTeamID string) (string, error)
	now    func() time.Time
	maxAge time.Duration
	log    *slog.Logger
	client http.Client
	hosts  []string
	chat   chatDecider
}

// slackInteraction is the part of an interaction payload the handler
// reads.
type slackInteraction struct {
	Type string `json:"type"`
	User struct {
		ID     string `json:"id"`
		TeamID string `json:"team_id"`
	} `json:"user"`
	Team *struct {
		ID string `json:"id"`
	} `json:"team"`
	Actions []struct {
		ActionID string `json:"action_id"`
		Value    string `json:"value"`
	} `json:"actions"`
	ResponseURL string `json:"response_url"`
}

func (h *slackInteractions) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxSlackInteractionBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	if err := h.verify(r.Header, body); err != nil {
		h.log.Warn("channels: slack interaction refused", "remote", r.RemoteAddr, "err", err)
		w.Header().Set("WWW-Authenticate", `SlackSignature realm="slack-interactivity"`)
		http.Error(w, "invalid signature", http.StatusUnauthorized)
		return
	}
	form, err := url.ParseQuery(string(body))
	var in slackInteraction
	if err == nil {
		err = json.Unmarshal([]byte(form.Get("payload")), &in)
	}
	if err != nil {
		h.log.Warn("channels: slack interaction with a signed body that is not a payload", "err", err)
		http.Error(w, "malformed payload", http.StatusBadRequest)
		return
	}
	if in.Type != "block_actions" {
		w.WriteHeader(http.StatusOK) // acknowledged: not ours to handle
		return
	}
	for _, a := range in.Actions {
		var v approval.Verdict
		switch a.ActionID {
		case SlackActionApprove:
			v = approval.VerdictApprove
		case SlackActionDeny:
			v = approval.VerdictDeny
		default:
			continue
		}
		team := in.User.TeamID
		if in.Team != nil && in.Team.ID != "" {
			team = in.Team.ID
		}
		text := h.decide(r.Context(), in.User.ID, team, a.Value, v)
		h.answer(w, r, in.ResponseURL, text)
		return // one decision per click
	}
	w.WriteHeader(http.StatusOK) // a link or review button: acknowledged
}

// verify checks Slack's v0 signature and timestamp.
func (h *slackInteractions) verify(header http.Header, body []byte) error {
	ts, err := checkTimestamp(header, headerSlackTimestamp, h.maxAge, h.now())
	if err != nil {
		return err
	}
	sig, ok := singleHeader(header, headerSlackSignature)
	if !ok {
		return fmt.Errorf("%w: want one %s header", ErrSignature, headerSlackSignature)
	}
	m := hmac.New(sha256.New, h.secret)
	m.Write([]byte("v0:" + ts + ":"))
	m.Write(body)
	if err := checkMAC(sig, "v0=", m.Sum(nil)); err != nil {
		return fmt.Errorf("%s: %w", headerSlackSignature, err)
	}
	return nil
}

// decide decides request id for the Slack user, and returns what to tell
// them.
//
// value is the button's: the request ID, then a space and the action hash
// the message showed (messages sent before the hash was added carry the ID
// alone, which decides without that check).
func (h *slackInteractions) decide(ctx context.Context, slackUser, slackTeam, value string, v approval.Verdict) string {
	id, shown, _ := strings.Cut(value, " ")
	log := h.log.With("slack_user", slackUser, "slack_team", slackTeam, "request", text.Cut(id, 64), "verdict", v)
	if slackUser == "" {
		log.Warn("channels: slack click without a user; nothing decided")
		return "Slack did not say who clicked, so nothing was decided."
	}
	approver, err := h.approver(ctx, slackUser, slackTeam)
	if err != nil || approver == "" {
		log.Warn("channels: slack user is not mapped to an approver; nothing decided", "err", err)
		return "Your Slack account is not linked to an approver, so nothing was decided. Use the review page, or ask an administrator to link your account."
	}
	return h.chat.decide(ctx, log, id, approver, v, slackReason(slackUser, slackTeam), shown)
}

// slackReason is the decision's reason in the audit trail: the channel,
// and the Slack account that clicked.
func slackReason(user, team string) string {
	r := "via Slack (user " + text.Cut(user, 64)
	if team != "" {
		r += ", team " + text.Cut(team, 64)
	}
	return r + ")"
}

// approver calls the host's UserID, bounded and with panics recovered.
func (h *slackInteractions) approver(ctx context.Context, user, team string) (id string, err error) {
	ctx, cancel := context.WithTimeout(ctx, slackUserIDTimeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			id, err = "", fmt.Errorf("UserID panicked: %v", p)
		}
	}()
	return h.userID(ctx, user, team)
}

// answer tells the user who clicked the outcome in a message only they
// see: posted to responseURL once Slack has its 200, or in the answer when
// responseURL is not one of Slack's.
func (h *slackInteractions) answer(w http.ResponseWriter, r *http.Request, responseURL, text string) {
	body, _ := json.Marshal(struct {
		ResponseType    string `json:"response_type"`
		Text            string `json:"text"`
		ReplaceOriginal bool   `json:"replace_original"`
	}{"ephemeral", text, false})
	u, err := h.responseURL(responseURL)
	if err != nil {
		if responseURL != "" {
			h.log.Warn("channels: slack response_url refused; answering in the body", "err", err)
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
		return
	}
	w.WriteHeader(http.StatusOK)
	_ = http.NewResponseController(w).Flush()
	// The post runs on the handler's goroutine, after the answer: nothing
	// outlives the request but the bounded post.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), slackResponseTimeout)
	defer cancel()
	if err := h.respond(ctx, u, body); err != nil {
		h.log.Error("channels: cannot post the outcome to slack's response_url", "host", u.Host, "err", err)
	}
}

// responseURL parses raw and checks that it is https on a Slack host.
func (h *slackInteractions) responseURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("no response_url")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("response_url does not parse")
	}
	if u.Scheme != "https" || u.User != nil || !slices.Contains(h.hosts, u.Host) {
		return nil, fmt.Errorf("response_url names %s://%s, not https on one of %v", text.Cut(u.Scheme, 16), text.Cut(u.Host, 64), h.hosts)
	}
	return u, nil
}

// respond posts body to u and checks that Slack accepted it.
func (h *slackInteractions) respond(ctx context.Context, u *url.URL, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := h.client.Do(req)
	if err != nil {
		return stripURL(err) // the URL is a credential for 30 minutes
	}
	peek, _ := readAnswer(resp.Body)
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return fmt.Errorf("answered %s: %q", resp.Status, text.Cut(string(peek), answerQuoteBytes))
	}
	return nil
}
