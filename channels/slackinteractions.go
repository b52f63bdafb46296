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
	// slackResponseTimeout bounds each post to an interaction's
	// response_url.
	slackResponseTimeout = 5 * time.Second
	// slackClickTimeout bounds the work a click does once acknowledged:
	// UserID, the decision and the posts that follow it.
	slackClickTimeout = 30 * time.Second
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
	// bounded by a context of 2 seconds. The handler acknowledges a click
	// before calling it (Slack waits 3 seconds for the answer), except for
	// a payload without a usable response_url. A panic is recovered and
	// refuses the click. Required.
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
	// Client posts to the interaction's response_url. Defaults to a
	// client on http.DefaultTransport; redirects are not followed, and
	// each post is bounded to 5 seconds.
	Client *http.Client
	// ResponseHosts are the hosts (host[:port]) a response_url may name;
	// it must also be https. Defaults to DefaultSlackResponseHosts.
	ResponseHosts []string
	// MaxFollowed bounds the messages followed at once: after a click
	// that leaves its request open, the handler waits (one goroutine per
	// message) for the request to be resolved, to redraw the message with
	// the outcome (see SlackInteractions). A click while MaxFollowed
	// messages are followed redraws its message once and does not follow
	// it; the refusal is logged. Negative: no message is followed.
	// Defaults to 1000 (DefaultSlackMaxFollowed).
	MaxFollowed int
}

// DefaultSlackMaxFollowed is SlackInteractionsConfig.MaxFollowed's
// default.
const DefaultSlackMaxFollowed = 1000

// SlackInteractions is the http.Handler of a Slack app's interactivity
// requests: it decides when an approver clicks Approve or Deny on a
// message that Slack posted with SlackConfig.Interactive, and redraws
// that message to show who decided and the outcome. Configure the app's
// Interactivity Request URL (Interactivity & Shortcuts) to the address it
// is served at; Slack posts every click there. Create it with
// NewSlackInteractions; the zero value is not usable. It is safe for
// concurrent use; Close stops what it still follows.
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
// calls Gate.Decide with it and the action hash the button carries
// (reason "via Slack" and the Slack user), so eligibility, requester
// segregation, single use, a payload edited since the message, and the
// audit trail apply. A click by a Slack user UserID does not name decides
// nothing. Replayed requests decide nothing more: the approver has
// decided already.
//
// Slack wants the answer to a click within 3 seconds and shows nothing
// from its body, so once the signature and the payload check out the
// handler answers 200 with an empty body and flushes it, and then, on the
// same goroutine and bounded, decides and posts to the interaction's
// response_url (https, on one of ResponseHosts):
//
//   - to the user who clicked, a message only they see (ephemeral): the
//     outcome, or why nothing was recorded (not linked to an approver, not
//     an approver of the request, their own request, already decided, no
//     longer open). A refusal posts nothing else.
//   - after a recorded vote, the message clicked is replaced
//     (replace_original) by the request as it is now (Gate.Get), drawn as
//     Slack's Send draws a notification (Gate.NotificationFor): who has
//     voted and how ("Approved by alice via Slack"), each policy's
//     progress ("1 of 2 approvals"), the outcome once resolved. While the
//     request is open the Approve and Deny buttons stay, bound to the
//     action hash the redrawn message shows, so others can still vote;
//     once resolved they are removed.
//
// After a click that leaves the request open, the handler follows the
// message: it waits (Gate.Wait) until the request is resolved, until a
// minute after its deadline (time for Gate.Run to time it out), or until
// 30 minutes after the response_url was first used, whichever is first,
// and then replaces the message once more with the outcome. A later click
// on the same message (Slack's channel and message_ts) hands its fresher
// response_url to the follower rather than starting another. At most
// MaxFollowed messages are followed at once; Close stops following.
//
// Slack accepts at most 5 posts to one response_url within 30 minutes of
// the interaction (https://api.slack.com/interactivity/handling#message_responses).
// The handler keeps that budget per response_url: its posts go strictly
// one after another, in order; it never makes a sixth, nor one 30 minutes
// after the first use; and it keeps the last post for the outcome, so an
// ephemeral answer or a redraw of an open request that would spend it is
// left out (logged). A failed post counts, is logged, and is not retried;
// the decision stands.
//
// A payload without a usable response_url is decided before the answer,
// and the message for the user who clicked is in the answer's body; the
// message clicked is not redrawn. Internal errors are logged and answered
// with a general message; the response_url, a credential for 30 minutes,
// is never logged. Clicks on other buttons, and other interaction types,
// are acknowledged with an empty 200.
//
// The gate must have its Config.SigningKey, to mint the tokens: a gate
// that only verifies tokens answers every click with the general error
// (logged).
type SlackInteractions struct {
	secret []byte
	gate   *approval.Gate
	userID func(ctx context.Context, slackUserID, slackTeamID string) (string, error)
	now    func() time.Time
	maxAge time.Duration
	log    *slog.Logger
	client http.Client
	hosts  []string
	chat   chatDecider
	follow slackFollower
}

// NewSlackInteractions validates cfg, fills its defaults and returns the
// handler of a Slack app's interactivity requests (see SlackInteractions).
// Errors wrap ErrInvalidConfig.
func NewSlackInteractions(cfg SlackInteractionsConfig) (*SlackInteractions, error) {
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
	h := &SlackInteractions{secret: []byte(cfg.SigningSecret), gate: cfg.Gate, userID: cfg.UserID,
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
	switch {
	case cfg.MaxFollowed == 0:
		cfg.MaxFollowed = DefaultSlackMaxFollowed
	case cfg.MaxFollowed < 0:
		cfg.MaxFollowed = 0
	}
	h.follow.init(cfg.MaxFollowed)
	return h, nil
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
	// Channel and Container name the message clicked, when Slack says.
	Channel *struct {
		ID string `json:"id"`
	} `json:"channel"`
	Container struct {
		ChannelID string `json:"channel_id"`
		MessageTS string `json:"message_ts"`
	} `json:"container"`
}

// message names the message clicked: its channel and timestamp, or, when
// Slack does not say, the response_url.
func (in *slackInteraction) message() string {
	ch := in.Container.ChannelID
	if ch == "" && in.Channel != nil {
		ch = in.Channel.ID
	}
	if ch == "" || in.Container.MessageTS == "" {
		return "url " + in.ResponseURL
	}
	return "ts " + ch + " " + in.Container.MessageTS
}

func (h *SlackInteractions) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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
		h.click(w, r, &in, team, a.Value, v)
		return // one decision per click
	}
	w.WriteHeader(http.StatusOK) // a link or review button: acknowledged
}

// verify checks Slack's v0 signature and timestamp.
func (h *SlackInteractions) verify(header http.Header, body []byte) error {
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
// them and whether their vote was recorded.
//
// id and shown come from the button's value: the request ID, then a space
// and the action hash the message showed (messages sent before the hash
// was added carry the ID alone, which decides without that check).
func (h *SlackInteractions) decide(ctx context.Context, slackUser, slackTeam, id, shown string, v approval.Verdict) (string, bool) {
	log := h.log.With("slack_user", slackUser, "slack_team", slackTeam, "request", text.Cut(id, 64), "verdict", v)
	if slackUser == "" {
		log.Warn("channels: slack click without a user; nothing decided")
		return "Slack did not say who clicked, so nothing was decided.", false
	}
	approver, err := h.approver(ctx, slackUser, slackTeam)
	if err != nil || approver == "" {
		log.Warn("channels: slack user is not mapped to an approver; nothing decided", "err", err)
		return "Your Slack account is not linked to an approver, so nothing was decided. Use the review page, or ask an administrator to link your account.", false
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
func (h *SlackInteractions) approver(ctx context.Context, user, team string) (id string, err error) {
	ctx, cancel := context.WithTimeout(ctx, slackUserIDTimeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			id, err = "", fmt.Errorf("UserID panicked: %v", p)
		}
	}()
	return h.userID(ctx, user, team)
}

// click decides a click on an Approve or Deny button and tells the user
// who clicked (see SlackInteractions): with a usable response_url, after
// the acknowledgement, followed by the message's redraw; otherwise in the
// answer.
func (h *SlackInteractions) click(w http.ResponseWriter, r *http.Request, in *slackInteraction, team, value string, v approval.Verdict) {
	id, shown, _ := strings.Cut(value, " ")
	u, err := h.responseURL(in.ResponseURL)
	if err != nil {
		if in.ResponseURL != "" {
			h.log.Warn("channels: slack response_url refused; answering in the body", "err", err)
		}
		text, _ := h.decide(r.Context(), in.User.ID, team, id, shown, v)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(slackEphemeral(text))
		return
	}
	w.WriteHeader(http.StatusOK)
	_ = http.NewResponseController(w).Flush()
	// What follows runs on the handler's goroutine, after the answer, and
	// is bounded: nothing outlives the request but a follower.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), slackClickTimeout)
	defer cancel()
	slot := h.follow.slot(u.String(), h.now())
	key := id + " " + in.message()
	h.follow.reaim(key, u, slot) // a follower of this message posts to the fresher URL
	text, recorded := h.decide(ctx, in.User.ID, team, id, shown, v)
	if err := h.post(ctx, u, slot, slackEphemeral(text), false); err != nil {
		h.log.Error("channels: cannot post the outcome to slack's response_url", "host", u.Host, "err", err)
	}
	if !recorded {
		return // a refusal changes nothing the message shows
	}
	if open := h.redraw(ctx, u, slot, id, false); open {
		h.startFollowing(key, id, u, slot)
	}
}

// slackEphemeral is the message to the user who clicked, which only they
// see; the message with the buttons stays.
func slackEphemeral(text string) []byte {
	body, _ := json.Marshal(struct {
		ResponseType    string `json:"response_type"`
		Text            string `json:"text"`
		ReplaceOriginal bool   `json:"replace_original"`
	}{"ephemeral", text, false})
	return body
}

// responseURL parses raw and checks that it is https on a Slack host.
func (h *SlackInteractions) responseURL(raw string) (*url.URL, error) {
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
func (h *SlackInteractions) respond(ctx context.Context, u *url.URL, body []byte) error {
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
