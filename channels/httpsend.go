package channels

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/text"
)

// MaxRetryAfter caps the wait a receiver's Retry-After may ask for: a
// receiver cannot park a notification for longer than this per attempt.
const MaxRetryAfter = time.Hour

// Bounds on reading a receiver's answer.
const (
	// answerPeekBytes is read from every answer, for the error message.
	answerPeekBytes = 4 << 10
	// answerDrainBytes more are read and discarded, so that the
	// connection can carry the next request; a longer answer closes it.
	answerDrainBytes = 64 << 10
	// answerQuoteBytes of the peeked answer are quoted in an error.
	answerQuoteBytes = 256
)

// sender posts request bodies to one URL and classifies the answers. It is
// safe for concurrent use.
type sender struct {
	channel string // the channel's kind ("webhook", "slack"), for errors
	url     string
	where   string // url as errors name it: scheme and host only
	client  *http.Client
	now     func() time.Time
}

// newSender returns a sender for u. The client is copied with redirects
// turned off (see the package doc); a nil client is a new one on
// http.DefaultTransport.
func newSender(channel string, u *url.URL, client *http.Client, now func() time.Time) *sender {
	var c http.Client
	if client != nil {
		c = *client
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if now == nil {
		now = time.Now
	}
	return &sender{channel: channel, url: u.String(), where: u.Scheme + "://" + u.Host, client: &c, now: now}
}

// post sends body with header and classifies the answer: accept decides
// about a 2xx (given the start of its body), classify about the rest.
func (s *sender) post(ctx context.Context, header http.Header, body []byte, accept func(status int, peek []byte) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		// The URL was parsed by the constructor: only a nil ctx gets here.
		return approval.Permanent(fmt.Errorf("channels: %s: build request: %w", s.channel, stripURL(err)))
	}
	req.Header = header
	resp, err := s.client.Do(req)
	if err != nil {
		// The client's error quotes the whole URL, which may be a
		// credential (a Slack webhook's path): name the host only.
		return fmt.Errorf("channels: %s: post to %s: %w", s.channel, s.where, stripURL(err))
	}
	peek, readErr := readAnswer(resp.Body)
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if readErr != nil && accept != nil {
			// The decision needs the body; an answer cut short is not one.
			return fmt.Errorf("channels: %s: %s answered %s, then the body failed: %w",
				s.channel, s.where, resp.Status, stripURL(readErr))
		}
		if accept == nil {
			return nil
		}
		return accept(resp.StatusCode, peek)
	}
	return s.classify(resp, peek)
}

// classify returns the error for an answer that is not a 2xx.
func (s *sender) classify(resp *http.Response, peek []byte) error {
	err := fmt.Errorf("channels: %s: %s answered %s%s", s.channel, s.where, statusText(resp), quote(peek))
	code := resp.StatusCode
	switch {
	case code >= 300 && code < 400:
		loc := "none given"
		if l := resp.Header.Get("Location"); l != "" {
			loc = sanitize([]byte(l), answerQuoteBytes)
		}
		return approval.Permanent(fmt.Errorf("%w (redirect not followed; location: %s)", err, loc))
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests, code >= 500 && code < 600:
		if d := retryAfter(resp.Header.Get("Retry-After"), s.now()); d > 0 {
			return approval.RetryAfter(fmt.Errorf("%w (retry after %s)", err, d), d)
		}
		return err
	case code >= 400 && code < 500:
		return approval.Permanent(err)
	default:
		return err // not a status HTTP defines: perhaps a proxy's; let the retries decide
	}
}

// statusText is the answer's code and its standard phrase; the
// receiver's own phrase is not quoted.
func statusText(resp *http.Response) string {
	if t := http.StatusText(resp.StatusCode); t != "" {
		return strconv.Itoa(resp.StatusCode) + " " + t
	}
	return strconv.Itoa(resp.StatusCode)
}

// readAnswer reads the start of an answer's body, discards a bounded
// further part and closes it.
func readAnswer(body io.ReadCloser) ([]byte, error) {
	defer body.Close()
	peek, err := io.ReadAll(io.LimitReader(body, answerPeekBytes))
	if err != nil {
		return peek, err
	}
	_, err = io.CopyN(io.Discard, body, answerDrainBytes)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return peek, err
}

// quote returns ": " and the sanitised start of an answer body, or "" for
// an empty one.
func quote(peek []byte) string {
	s := sanitize(peek, answerQuoteBytes)
	if s == "" {
		return ""
	}
	return ": " + s
}

// sanitize makes text from a receiver safe to log and audit: valid UTF-8,
// each run of control and space characters one space, trimmed, and at most
// max bytes (cut on a rune, marked with "…").
func sanitize(b []byte, max int) string {
	var sb strings.Builder
	space := false
	for len(b) > 0 && sb.Len() < max {
		r, n := utf8.DecodeRune(b)
		b = b[n:]
		if unicode.IsControl(r) || unicode.IsSpace(r) || r == utf8.RuneError ||
			unicode.Is(unicode.Bidi_Control, r) {
			space = sb.Len() > 0
			continue
		}
		if space {
			sb.WriteByte(' ')
			space = false
		}
		sb.WriteRune(r)
	}
	s := sb.String()
	if len(s) <= max && len(b) == 0 {
		return s
	}
	cut := min(len(s), max-len("…"))
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// retryAfter parses a Retry-After value, delay-seconds or an HTTP-date,
// into a wait from now, capped at MaxRetryAfter. A value it cannot parse,
// or a date in the past, is no wait.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseUint(v, 10, 64); err == nil {
		if secs >= uint64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter
		}
		return time.Duration(secs) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	return min(max(t.Sub(now), 0), MaxRetryAfter)
}

// stripURL removes the URL that *url.Error quotes, keeping what went wrong
// (and the chain: errors.Is(err, context.DeadlineExceeded) still holds).
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// parseURL checks a configured receiver URL. Errors do not quote it: it
// may be a credential.
func parseURL(field, raw string, schemes ...string) (*url.URL, error) {
	if raw == "" {
		return nil, fmt.Errorf("%s is empty", field)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s does not parse as a URL", field)
	}
	ok := false
	for _, s := range schemes {
		ok = ok || u.Scheme == s
	}
	if !ok {
		return nil, fmt.Errorf("%s has scheme %q; want %s", field, text.Cut(u.Scheme, 16), strings.Join(schemes, " or "))
	}
	if u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("%s has no host", field)
	}
	return u, nil
}
