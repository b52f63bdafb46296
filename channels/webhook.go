package channels

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/text"
	"github.com/signoff/approval/internal/wire"
)

// Headers of a webhook POST.
const (
	// HeaderSignature carries "sha256=" and the lower-case hex
	// HMAC-SHA256, keyed with the secret, of the timestamp header's value,
	// a ".", and the body.
	HeaderSignature = "X-Signature"
	// HeaderTimestamp carries the time of sending, in Unix seconds. It is
	// signed, so a receiver can refuse a replayed request (see Verify).
	HeaderTimestamp = "X-Approval-Timestamp"
	// HeaderIdempotencyKey carries Notification.ID, the same on every
	// attempt of one notification.
	HeaderIdempotencyKey = "Idempotency-Key"
)

// MinSecretBytes is the shortest signing secret NewWebhook and Verify
// accept. 32 random bytes are a good secret.
const MinSecretBytes = 16

// DefaultMaxAge is the replay window of Verify, VerifyRequest and
// NewSlackInteractions when none is given.
const DefaultMaxAge = 5 * time.Minute

// MaxWebhookBodyBytes bounds the body VerifyRequest reads. A notification
// carries its action, redacted, within the gate's Limits: with their
// defaults its JSON stays well below this.
const MaxWebhookBodyBytes = 8 << 20

// WebhookConfig configures NewWebhook. URL and Secret are required.
type WebhookConfig struct {
	// URL receives the POSTs: http or https, with a host. Errors name only
	// its scheme and host, so a token in its path or query stays out of
	// the audit trail. Required.
	URL string
	// Secret keys the HMAC of X-Signature; the receiver needs the same
	// bytes. At least MinSecretBytes; 32 random bytes are a good choice.
	// NewWebhook keeps a copy. Required.
	Secret []byte
	// Headers are added to every POST, for example an Authorization the
	// receiver checks. They may not set the headers the webhook writes
	// itself (Content-Type, Idempotency-Key, X-Approval-Timestamp,
	// X-Signature) nor Host, Content-Length or Transfer-Encoding; they may
	// replace the User-Agent, "signoff-approval-webhook". NewWebhook keeps
	// a copy. Defaults to none.
	Headers http.Header
	// Client sends the POSTs, with its Transport, Timeout and Jar; the
	// webhook uses a copy whose CheckRedirect refuses every redirect (see
	// the package doc). Defaults to a client on http.DefaultTransport.
	Client *http.Client
	// Name is the channel's name in the audit trail. Defaults to "webhook".
	Name string
	// Now is the clock for X-Approval-Timestamp and for Retry-After dates.
	// Defaults to time.Now.
	Now func() time.Time
}

// Webhook is an approval.Channel that POSTs each notification, as JSON, to
// one URL, signed with an HMAC the receiver checks with Verify:
//
//	POST /hooks/approval HTTP/1.1
//	Content-Type: application/json
//	Idempotency-Key: 6f1c...            (Notification.ID, the same on every attempt)
//	X-Approval-Timestamp: 1767258000    (Unix seconds)
//	X-Signature: sha256=9a3e...         (hex HMAC-SHA256(secret, timestamp + "." + body))
//
//	{"id":"6f1c...","type":"approval.requested","request_id":"req_...", ...}
//
// The body is the approval.Notification's JSON, with its action redacted
// as the gate built it, and its payload as JSON when it is JSON
// ("payload"), else as text ("payload_text") or base64
// ("payload_base64"); docs/FORMATS.md has the schema. A digest
// (approval.NotifyDigest) carries its items in "digest", each a whole
// notification in the same form, with its own links. DecodeWebhook reads
// it back into a Notification. A 2xx answer is a delivery. A 5xx, a 408, a 429 or
// a network error is transient, and a Retry-After is honoured; any other
// 4xx, or a 3xx (redirects are not followed), is permanent (see the
// package doc). The answer's body is read up to a bound and discarded, so
// connections are reused.
//
// Create a Webhook with NewWebhook; the zero value is not usable. It is
// safe for concurrent use.
type Webhook struct {
	name    string
	secret  []byte
	headers http.Header
	send    *sender
	now     func() time.Time
}

// reservedHeaders are written by the webhook itself or by net/http.
var reservedHeaders = []string{"Content-Type", HeaderIdempotencyKey, HeaderTimestamp, HeaderSignature,
	"Host", "Content-Length", "Transfer-Encoding"}

// NewWebhook validates cfg, fills its defaults and returns the Webhook.
// Errors wrap ErrInvalidConfig.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	u, err := parseURL("WebhookConfig.URL", cfg.URL, "https", "http")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	if len(cfg.Secret) < MinSecretBytes {
		return nil, fmt.Errorf("%w: WebhookConfig.Secret has %d bytes, want at least %d (32 random bytes are a good secret)",
			ErrInvalidConfig, len(cfg.Secret), MinSecretBytes)
	}
	headers := make(http.Header, len(cfg.Headers)+5)
	for name, values := range cfg.Headers {
		if err := checkHeader(name, values); err != nil {
			return nil, fmt.Errorf("%w: WebhookConfig.Headers: %v", ErrInvalidConfig, err)
		}
		headers[http.CanonicalHeaderKey(name)] = append([]string(nil), values...)
	}
	if headers.Get("User-Agent") == "" {
		headers.Set("User-Agent", "signoff-approval-webhook")
	}
	headers.Set("Content-Type", "application/json")
	if cfg.Name == "" {
		cfg.Name = "webhook"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Webhook{
		name:    cfg.Name,
		secret:  bytes.Clone(cfg.Secret),
		headers: headers,
		send:    newSender("webhook", u, cfg.Client, cfg.Now),
		now:     cfg.Now,
	}, nil
}

// checkHeader refuses a reserved header, and a name or value that net/http
// would refuse at every send.
func checkHeader(name string, values []string) error {
	for _, r := range reservedHeaders {
		if strings.EqualFold(name, r) {
			return fmt.Errorf("%s is set by the webhook itself", r)
		}
	}
	if name == "" {
		return fmt.Errorf("a header has an empty name")
	}
	for i := 0; i < len(name); i++ {
		if !isTokenChar(name[i]) {
			return fmt.Errorf("header name %q is not an HTTP token", text.Cut(name, 64))
		}
	}
	for _, v := range values {
		if !validHeaderValue(v) {
			return fmt.Errorf("header %s has a control character in its value", name)
		}
	}
	return nil
}

// validHeaderValue reports whether v has no control character but tab.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// isTokenChar reports whether c may appear in an HTTP token (RFC 9110,
// section 5.6.2).
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// Name implements approval.Channel.
func (w *Webhook) Name() string { return w.name }

// Send implements approval.Channel: it POSTs n, signed, and classifies the
// answer (see Webhook). It returns when ctx ends.
func (w *Webhook) Send(ctx context.Context, n approval.Notification) error {
	if n.ID == "" || !validHeaderValue(n.ID) {
		// The gate's IDs are UUIDs; anything else cannot be the key.
		return approval.Permanent(fmt.Errorf("channels: webhook: notification ID %q cannot be an %s", text.Cut(n.ID, 64), HeaderIdempotencyKey))
	}
	body, err := json.Marshal(newWebhookBody(n))
	if err != nil {
		return approval.Permanent(fmt.Errorf("channels: webhook: encode notification %s: %w", n.ID, err))
	}
	ts := strconv.FormatInt(w.now().Unix(), 10)
	h := w.headers.Clone()
	h.Set(HeaderIdempotencyKey, n.ID)
	h.Set(HeaderTimestamp, ts)
	h.Set(HeaderSignature, "sha256="+hex.EncodeToString(webhookMAC(w.secret, ts, body)))
	return w.send.post(ctx, h, body, nil)
}

// webhookBody is the body of a webhook POST: the Notification's JSON,
// with the action in the outputs' form (its payload as JSON, text or
// base64), and so is each item of a digest.
type webhookBody struct {
	approval.Notification
	Action wire.Action   `json:"action"`
	Digest []webhookBody `json:"digest,omitempty"`
}

// newWebhookBody is n's body.
func newWebhookBody(n approval.Notification) webhookBody {
	b := webhookBody{Notification: n, Action: wire.ShowAction(n.Action)}
	if len(n.Digest) > 0 {
		b.Digest = make([]webhookBody, len(n.Digest))
		for i, it := range n.Digest {
			b.Digest[i] = newWebhookBody(it)
		}
	}
	return b
}

// notification is the Notification b carries, its actions' payloads in
// bytes again (see DecodeWebhook).
func (b webhookBody) notification() (approval.Notification, error) {
	a, err := b.Action.Decode(wire.StringIsBase64)
	if err != nil {
		return approval.Notification{}, err
	}
	n := b.Notification
	n.Action = a
	n.Digest = nil
	if len(b.Digest) > 0 {
		n.Digest = make([]approval.Notification, len(b.Digest))
		for i, it := range b.Digest {
			if n.Digest[i], err = it.notification(); err != nil {
				return approval.Notification{}, fmt.Errorf("digest item %d: %w", i+1, err)
			}
		}
	}
	return n, nil
}

// DecodeWebhook reads the body of a webhook POST, once Verify or
// VerifyRequest has checked it, into the Notification it carries, the
// action's payload in bytes again: a JSON payload as the body holds it
// (compacted: its payload hash is the same), text and base64 as the
// bytes they spell, and so are a digest's items'. It reads the bodies of
// earlier versions too, whose payload was a base64 string in "payload".
// A body that is not a notification is ErrMalformedBody.
func DecodeWebhook(body []byte) (approval.Notification, error) {
	var b webhookBody
	if err := json.Unmarshal(body, &b); err != nil {
		return approval.Notification{}, fmt.Errorf("channels: decode webhook: %w: %w", ErrMalformedBody, err)
	}
	n, err := b.notification()
	if err != nil {
		return approval.Notification{}, fmt.Errorf("channels: decode webhook: %w: %w", ErrMalformedBody, err)
	}
	return n, nil
}

// webhookMAC is HMAC-SHA256(secret, ts + "." + body).
func webhookMAC(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks, for a receiver, that body and header come from a Webhook
// with this secret, sent within maxAge of now (DefaultMaxAge when maxAge is
// not positive). It refuses a timestamp header that is missing, malformed,
// older than maxAge or more than maxAge in the future (ErrTimestamp), and
// a signature header that is missing, malformed or does not match
// (ErrSignature); the signature is compared in constant time. A secret
// shorter than MinSecretBytes is refused with ErrInvalidConfig.
//
// body must be the exact bytes received. Within maxAge a captured request
// verifies again: deduplicate on the Idempotency-Key (the notification's
// ID) to drop replays as well as retries.
func Verify(secret []byte, header http.Header, body []byte, maxAge time.Duration, now time.Time) error {
	if len(secret) < MinSecretBytes {
		return fmt.Errorf("%w: the secret to verify with has %d bytes, want at least %d", ErrInvalidConfig, len(secret), MinSecretBytes)
	}
	ts, err := checkTimestamp(header, HeaderTimestamp, maxAge, now)
	if err != nil {
		return fmt.Errorf("channels: verify: %w", err)
	}
	sig, ok := singleHeader(header, HeaderSignature)
	if !ok {
		return fmt.Errorf("channels: verify: %w: want one %s header", ErrSignature, HeaderSignature)
	}
	if err := checkMAC(sig, "sha256=", webhookMAC(secret, ts, body)); err != nil {
		return fmt.Errorf("channels: verify: %s: %w", HeaderSignature, err)
	}
	return nil
}

// VerifyRequest reads r's body, at most MaxWebhookBodyBytes
// (ErrBodyTooLarge beyond), checks it with Verify at time.Now, and returns
// it. It closes the body. Answer a request it refuses with 401, and one
// whose body it cannot read with 400 (or 413 for ErrBodyTooLarge).
func VerifyRequest(secret []byte, r *http.Request, maxAge time.Duration) ([]byte, error) {
	if r.Body == nil {
		return nil, fmt.Errorf("channels: verify: %w: the request has no body", ErrSignature)
	}
	defer r.Body.Close()
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxWebhookBodyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("channels: verify: read body: %w", err)
	}
	if len(body) > MaxWebhookBodyBytes {
		return nil, fmt.Errorf("channels: verify: %w: more than %d bytes", ErrBodyTooLarge, MaxWebhookBodyBytes)
	}
	if err := Verify(secret, r.Header, body, maxAge, time.Now()); err != nil {
		return nil, err
	}
	return body, nil
}

// singleHeader returns the value of name when h has exactly one.
func singleHeader(h http.Header, name string) (string, bool) {
	vs := h.Values(name)
	if len(vs) != 1 || vs[0] == "" {
		return "", false
	}
	return vs[0], true
}

// maxTimestampDigits bounds the digits of a Unix-seconds timestamp, well
// past year 9999, so that parsing cannot overflow.
const maxTimestampDigits = 12

// checkTimestamp returns h's timestamp header, checked to be Unix seconds
// within maxAge of now, either way.
func checkTimestamp(h http.Header, name string, maxAge time.Duration, now time.Time) (string, error) {
	if maxAge <= 0 {
		maxAge = DefaultMaxAge
	}
	ts, ok := singleHeader(h, name)
	if !ok {
		return "", fmt.Errorf("%w: want one %s header", ErrTimestamp, name)
	}
	if len(ts) > maxTimestampDigits || strings.Trim(ts, "0123456789") != "" {
		return "", fmt.Errorf("%w: %s is not Unix seconds", ErrTimestamp, name)
	}
	secs, _ := strconv.ParseInt(ts, 10, 64)
	// Times are compared, not their difference: a difference past 292
	// years saturates, and its negation would overflow.
	at := time.Unix(secs, 0)
	switch {
	case at.Before(now.Add(-maxAge)):
		return "", fmt.Errorf("%w: %s is more than %s old", ErrTimestamp, name, maxAge)
	case at.After(now.Add(maxAge)):
		return "", fmt.Errorf("%w: %s is more than %s in the future", ErrTimestamp, name, maxAge)
	}
	return ts, nil
}

// checkMAC compares a signature header, prefix and lower- or upper-case
// hex, with want in constant time.
func checkMAC(header, prefix string, want []byte) error {
	hexSig, ok := strings.CutPrefix(header, prefix)
	if !ok {
		return fmt.Errorf("%w: does not begin with %q", ErrSignature, prefix)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return fmt.Errorf("%w: not %q and %d hex digits", ErrSignature, prefix, 2*sha256.Size)
	}
	if !hmac.Equal(got, want) {
		return fmt.Errorf("%w: does not match the body", ErrSignature)
	}
	return nil
}
