package channels

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/text"
)

// Limits of the interactions endpoint.
const (
	// MaxDiscordInteractionBytes bounds the body of one interaction. A
	// button's interaction carries the message it came from: a message of
	// this package is a few KiB.
	MaxDiscordInteractionBytes = 64 << 10
	// discordTokenTTL is the life of the token minted for one click.
	discordTokenTTL = 2 * time.Minute
	// discordUserIDTimeout bounds DiscordInteractionsConfig.UserID, so
	// that the answer can reach Discord within its 3 seconds.
	discordUserIDTimeout = 2 * time.Second
	// discordSeenMax bounds the interaction IDs kept against replay.
	discordSeenMax = 1 << 16
)

// Discord's request signing headers.
const (
	headerDiscordSignature = "X-Signature-Ed25519"
	headerDiscordTimestamp = "X-Signature-Timestamp"
)

// Discord's interaction types, the response types this handler sends,
// and the ephemeral message flag.
const (
	discordPing             = 1
	discordMessageComponent = 3
	discordPong             = 1
	discordChannelMessage   = 4 // CHANNEL_MESSAGE_WITH_SOURCE
	discordDeferredUpdate   = 6 // DEFERRED_UPDATE_MESSAGE: acknowledged, the message unchanged
	discordEphemeral        = 1 << 6
)

// DiscordInteractionsConfig configures NewDiscordInteractions. PublicKey,
// Gate and UserID are required.
type DiscordInteractionsConfig struct {
	// PublicKey is the application's Public Key (Developer Portal,
	// General Information), in hex: Discord signs each interaction with
	// the matching private key. Required.
	PublicKey string
	// Gate decides. Required.
	Gate *approval.Gate
	// UserID maps the Discord user who clicked (their user ID, a
	// snowflake) to the approver ID the gate knows them by. Return "" or
	// an error for a user who is not one of your approvers: no decision is
	// made. It must map only what the host has verified (a directory
	// lookup, a stored link between accounts), never trust a Discord
	// username or nickname, and it is bounded by a context of 2 seconds:
	// Discord waits 3 for the answer. A panic is recovered and refuses the
	// click. Required.
	UserID func(ctx context.Context, discordUserID string) (approverID string, err error)
	// Now is the clock for the replay window. Defaults to time.Now.
	Now func() time.Time
	// MaxAge is the replay window: a request whose signed timestamp is
	// further from Now, either way, is refused, and the IDs of the
	// interactions handled are kept this long, so that a request replayed
	// within it is refused too. Defaults to 5 minutes (DefaultMaxAge).
	MaxAge time.Duration
	// Logger receives refusals and internal errors. Defaults to
	// slog.Default().
	Logger *slog.Logger
}

// DiscordInteractions is the http.Handler of a Discord application's
// Interactions Endpoint URL: it answers Discord's PING and decides when an
// approver clicks Approve or Deny on a message the Discord channel posted.
// Create it with NewDiscordInteractions; the zero value is not usable. It
// is safe for concurrent use.
//
// Each request must carry Discord's signature: X-Signature-Ed25519, the
// hex Ed25519 signature, by the application's key, of the
// X-Signature-Timestamp header followed by the raw body. The handler
// refuses with 401 a request whose signature does not verify with
// PublicKey or whose timestamp is outside MaxAge (Discord checks that an
// endpoint does so, and removes one that does not), with 413 a body over
// MaxDiscordInteractionBytes, with 405 a method other than POST and with
// 400 a signed body it cannot read. A signed request whose interaction ID
// was handled before, within MaxAge, is a replay: it is refused with 409
// and decides nothing. The IDs are kept in memory, per handler: behind
// several replicas a replay may reach another, where the gate's own
// checks still hold (an approver decides once; a token is single use).
//
// A PING (type 1) is answered {"type":1}. A click on a button whose
// custom_id begins with DiscordCustomIDApprove or DiscordCustomIDDeny
// (type 3, MESSAGE_COMPONENT) is decided for the approver UserID names,
// through the gate like any other decision: the handler mints a token for
// that approver alone, valid two minutes, and calls Gate.Decide with it
// and the action hash the button carries (reason "via Discord" and the
// Discord user), so eligibility, requester segregation, single use, a
// payload edited since the message, and the audit trail apply. A click by
// a Discord user UserID does not name decides nothing. The user who
// clicked is told the outcome, or why nothing was decided, in the
// answer: an ephemeral message only they see (type 4,
// CHANNEL_MESSAGE_WITH_SOURCE, with the EPHEMERAL flag), sent at once, as
// a decision takes milliseconds and Discord waits 3 seconds; the message
// with the buttons stays as it was. Internal errors are logged and
// answered with a general message. Clicks on other components are
// acknowledged (type 6) and decide nothing; other interactions get an
// ephemeral message saying that only the approval buttons are handled.
//
// The gate must have its Config.SigningKey, to mint the tokens: a gate
// that only verifies tokens answers every click with the general error
// (logged).
type DiscordInteractions struct {
	key    ed25519.PublicKey
	gate   *approval.Gate
	userID func(ctx context.Context, discordUserID string) (string, error)
	now    func() time.Time
	maxAge time.Duration
	log    *slog.Logger

	chat chatDecider

	mu   sync.Mutex
	seen map[string]time.Time // interaction ID: until when it is kept
}

// NewDiscordInteractions validates cfg and returns the handler. Errors wrap
// ErrInvalidConfig.
func NewDiscordInteractions(cfg DiscordInteractionsConfig) (*DiscordInteractions, error) {
	key, err := hex.DecodeString(strings.TrimSpace(cfg.PublicKey))
	switch {
	case err != nil || len(key) != ed25519.PublicKeySize:
		return nil, fmt.Errorf("%w: DiscordInteractionsConfig.PublicKey is not %d bytes in hex (copy the application's Public Key)",
			ErrInvalidConfig, ed25519.PublicKeySize)
	case cfg.Gate == nil:
		return nil, fmt.Errorf("%w: DiscordInteractionsConfig.Gate is nil", ErrInvalidConfig)
	case cfg.UserID == nil:
		return nil, fmt.Errorf("%w: DiscordInteractionsConfig.UserID is nil (map Discord users to approver IDs)", ErrInvalidConfig)
	case cfg.MaxAge < 0:
		return nil, fmt.Errorf("%w: DiscordInteractionsConfig.MaxAge is negative", ErrInvalidConfig)
	}
	h := &DiscordInteractions{key: ed25519.PublicKey(key), gate: cfg.Gate, userID: cfg.UserID,
		now: cfg.Now, maxAge: cfg.MaxAge, log: cfg.Logger, seen: map[string]time.Time{}}
	h.chat = chatDecider{gate: cfg.Gate, channel: "discord", config: "DiscordInteractionsConfig", ttl: discordTokenTTL,
		escape: func(s string, max int) string { return discordEsc(s, max, false) },
		named: func(name, id string) string {
			return "**" + discordEsc(name, discordNameMax, false) + "** (`" + discordCode(id, 64) + "`)"
		}}
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

// discordInteraction is the part of an interaction the handler reads.
type discordInteraction struct {
	ID      string `json:"id"`
	Type    int    `json:"type"`
	GuildID string `json:"guild_id"`
	Member  *struct {
		User *discordUser `json:"user"`
	} `json:"member"`
	User *discordUser `json:"user"`
	Data *struct {
		CustomID      string `json:"custom_id"`
		ComponentType int    `json:"component_type"`
	} `json:"data"`
}

type discordUser struct {
	ID string `json:"id"`
}

// ServeHTTP implements http.Handler (see DiscordInteractions).
func (h *DiscordInteractions) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxDiscordInteractionBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	now := h.now()
	if err := h.verify(r.Header, body, now); err != nil {
		h.log.Warn("channels: discord interaction refused", "remote", r.RemoteAddr, "err", err)
		http.Error(w, "invalid request signature", http.StatusUnauthorized)
		return
	}
	var in discordInteraction
	if err := json.Unmarshal(body, &in); err != nil || in.Type == 0 {
		h.log.Warn("channels: discord interaction with a signed body that is not an interaction", "err", err)
		http.Error(w, "malformed interaction", http.StatusBadRequest)
		return
	}
	if in.Type == discordPing {
		writeDiscord(w, map[string]int{"type": discordPong})
		return
	}
	if in.ID == "" {
		http.Error(w, "interaction without an id", http.StatusBadRequest)
		return
	}
	if !h.first(in.ID, now) {
		h.log.Warn("channels: discord interaction replayed; nothing decided", "interaction", text.Cut(in.ID, 64), "remote", r.RemoteAddr)
		http.Error(w, "interaction already handled", http.StatusConflict)
		return
	}
	if in.Type != discordMessageComponent || in.Data == nil {
		writeDiscord(w, ephemeral("This app handles only the Approve and Deny buttons of its approval messages."))
		return
	}
	v, id, shown, ok := parseDiscordCustomID(in.Data.CustomID)
	if !ok {
		writeDiscord(w, map[string]int{"type": discordDeferredUpdate}) // not ours to handle
		return
	}
	user := ""
	if in.Member != nil && in.Member.User != nil {
		user = in.Member.User.ID // in a server
	} else if in.User != nil {
		user = in.User.ID // in a direct message
	}
	writeDiscord(w, ephemeral(h.decide(r.Context(), user, in.GuildID, id, shown, v)))
}

// verify checks Discord's Ed25519 signature and the timestamp.
func (h *DiscordInteractions) verify(header http.Header, body []byte, now time.Time) error {
	ts, err := checkTimestamp(header, headerDiscordTimestamp, h.maxAge, now)
	if err != nil {
		return err
	}
	sigHex, ok := singleHeader(header, headerDiscordSignature)
	if !ok {
		return fmt.Errorf("%w: want one %s header", ErrSignature, headerDiscordSignature)
	}
	sig, err := hex.DecodeString(sigHex)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: %s is not %d bytes in hex", ErrSignature, headerDiscordSignature, ed25519.SignatureSize)
	}
	msg := make([]byte, 0, len(ts)+len(body))
	msg = append(append(msg, ts...), body...)
	if !ed25519.Verify(h.key, msg, sig) {
		return fmt.Errorf("%w: %s does not match", ErrSignature, headerDiscordSignature)
	}
	return nil
}

// first records interaction id and reports whether it is new. An ID is
// kept for twice MaxAge: its timestamp may be MaxAge ahead of the clock,
// and is accepted until MaxAge after.
func (h *DiscordInteractions) first(id string, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if until, ok := h.seen[id]; ok && now.Before(until) {
		return false
	}
	if len(h.seen) >= discordSeenMax {
		for k, until := range h.seen {
			if !now.Before(until) {
				delete(h.seen, k)
			}
		}
		if len(h.seen) >= discordSeenMax {
			// Still full: every ID is within its window. Refusing would
			// let Discord's own traffic lock approvers out; keeping the
			// map bounded drops the oldest protection first.
			var oldest string
			for k, until := range h.seen {
				if oldest == "" || until.Before(h.seen[oldest]) {
					oldest = k
				}
			}
			delete(h.seen, oldest)
		}
	}
	h.seen[id] = now.Add(2 * h.maxAge)
	return true
}

// ephemeral is an answer showing text to the user who clicked alone,
// mentioning no one.
func ephemeral(content string) any {
	type data struct {
		Content         string          `json:"content"`
		Flags           int             `json:"flags"`
		AllowedMentions discordMentions `json:"allowed_mentions"`
	}
	return struct {
		Type int  `json:"type"`
		Data data `json:"data"`
	}{discordChannelMessage, data{content, discordEphemeral, discordMentions{Parse: []string{}}}}
}

func writeDiscord(w http.ResponseWriter, v any) {
	body, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// decide decides request id for the Discord user, and returns what to
// tell them.
func (h *DiscordInteractions) decide(ctx context.Context, discordUser, guild, id, shown string, v approval.Verdict) string {
	log := h.log.With("discord_user", text.Cut(discordUser, 64), "discord_guild", text.Cut(guild, 64),
		"request", text.Cut(id, 64), "verdict", v)
	if discordUser == "" {
		log.Warn("channels: discord click without a user; nothing decided")
		return "Discord did not say who clicked, so nothing was decided."
	}
	if id == "" {
		log.Warn("channels: discord click on a malformed button; nothing decided")
		return "This message names no request this server knows, so nothing was decided."
	}
	approver, err := h.approver(ctx, discordUser)
	if err != nil || approver == "" {
		log.Warn("channels: discord user is not linked to an approver; nothing decided", "err", err)
		return "Your Discord account is not linked to an approver, so nothing was decided. Use the review page, or ask an administrator to link your account."
	}
	text, _ := h.chat.decide(ctx, log, id, approver, v, discordReason(discordUser, guild), shown)
	return text
}

// discordReason is the decision's reason in the audit trail: the channel,
// and the Discord account that clicked.
func discordReason(user, guild string) string {
	r := "via Discord (user " + text.Cut(user, 64)
	if guild != "" {
		r += ", guild " + text.Cut(guild, 64)
	}
	return r + ")"
}

// approver calls the host's UserID, bounded and with panics recovered.
func (h *DiscordInteractions) approver(ctx context.Context, user string) (id string, err error) {
	ctx, cancel := context.WithTimeout(ctx, discordUserIDTimeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			id, err = "", fmt.Errorf("UserID panicked: %v", p)
		}
	}()
	return h.userID(ctx, user)
}
