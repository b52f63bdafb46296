package channels_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
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

var (
	hookSecret = []byte("0123456789abcdef0123456789abcdef")
	hookNow    = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
)

func hookClock() time.Time { return hookNow }

// openNotification is a notification as the gate builds one for an open
// request.
func openNotification() approval.Notification {
	return approval.Notification{
		ID:        "6f1c2a9e-0d1b-4b7e-9a53-1b2c3d4e5f60",
		Type:      approval.NotifyRequested,
		RequestID: "req_0195a1b2c3d47e8f9a0b1c2d3e4f5a6b",
		Recipient: "alice",
		Status:    approval.StatusPending,
		Action: approval.Action{
			Name: "wire-transfer", RequestedBy: "user-1",
			Cost:    &approval.Cost{Amount: 5000, Currency: "USD"},
			Risk:    approval.RiskHigh,
			Message: "Pay the March invoice",
		},
		ActionHash:  "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		PayloadHash: "sha256:abc",
		Policies:    []approval.PolicyRef{{Name: "high_spend", Hash: "h1"}},
		Reason:      "transfers of 1,000 USD or more",
		ReviewURL:   "https://approvals.example.com/approvals/req_0195a1b2c3d47e8f9a0b1c2d3e4f5a6b",
		ApproveURL:  "https://approvals.example.com/approvals/req_0195a1b2c3d47e8f9a0b1c2d3e4f5a6b?token=t1&verdict=approve",
		DenyURL:     "https://approvals.example.com/approvals/req_0195a1b2c3d47e8f9a0b1c2d3e4f5a6b?token=t2&verdict=deny",
		Deadline:    hookNow.Add(24 * time.Hour),
		At:          hookNow,
		Attempt:     1,
	}
}

// hookRequest is one request a test receiver got.
type hookRequest struct {
	method string
	path   string
	header http.Header
	body   []byte
}

// hookReceiver is an httptest server that records requests and answers with
// answer.
func hookReceiver(t *testing.T, answer http.HandlerFunc) (*httptest.Server, func() []hookRequest) {
	t.Helper()
	var mu sync.Mutex
	var got []hookRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, hookRequest{r.Method, r.URL.RequestURI(), r.Header.Clone(), body})
		mu.Unlock()
		if answer != nil {
			answer(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, func() []hookRequest {
		mu.Lock()
		defer mu.Unlock()
		return append([]hookRequest(nil), got...)
	}
}

func newWebhook(t *testing.T, url string, mod ...func(*channels.WebhookConfig)) *channels.Webhook {
	t.Helper()
	cfg := channels.WebhookConfig{URL: url, Secret: hookSecret, Now: hookClock}
	for _, m := range mod {
		m(&cfg)
	}
	w, err := channels.NewWebhook(cfg)
	require.NoError(t, err)
	return w
}

// hookSign is the webhook signature, computed here independently.
func hookSign(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts + "." + string(body)))
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func TestWebhookPostsSignedNotification(t *testing.T) {
	t.Parallel()
	srv, got := hookReceiver(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	hook := newWebhook(t, srv.URL+"/hooks/approval?team=ops", func(c *channels.WebhookConfig) {
		c.Headers = http.Header{"Authorization": {"Bearer receiver-token"}}
	})
	require.Equal(t, "webhook", hook.Name())
	n := openNotification()
	n.Action.Payload = []byte(`{"to": "ACME", "amount": 5000}`)
	require.NoError(t, hook.Send(context.Background(), n))

	reqs := got()
	require.Len(t, reqs, 1)
	r := reqs[0]
	require.Equal(t, http.MethodPost, r.method)
	require.Equal(t, "/hooks/approval?team=ops", r.path)
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	require.Equal(t, "Bearer receiver-token", r.header.Get("Authorization"))

	want := `{"id":"6f1c2a9e-0d1b-4b7e-9a53-1b2c3d4e5f60","type":"approval.requested",` +
		`"request_id":"req_0195a1b2c3d47e8f9a0b1c2d3e4f5a6b","recipient":"alice","status":"pending",` +
		`"action_hash":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","payload_hash":"sha256:abc",` +
		`"policies":[{"name":"high_spend","hash":"h1"}],"reason":"transfers of 1,000 USD or more",` +
		`"review_url":"https://approvals.example.com/approvals/req_0195a1b2c3d47e8f9a0b1c2d3e4f5a6b",` +
		`"approve_url":"https://approvals.example.com/approvals/req_0195a1b2c3d47e8f9a0b1c2d3e4f5a6b?token=t1\u0026verdict=approve",` +
		`"deny_url":"https://approvals.example.com/approvals/req_0195a1b2c3d47e8f9a0b1c2d3e4f5a6b?token=t2\u0026verdict=deny",` +
		`"deadline":"2026-03-02T09:00:00Z","at":"2026-03-01T09:00:00Z","attempt":1,` +
		`"action":{"name":"wire-transfer","requested_by":"user-1","cost":{"amount":5000,"currency":"USD"},"risk":"high",` +
		`"message":"Pay the March invoice","payload":{"to":"ACME","amount":5000}}}`
	require.Equal(t, want, string(r.body), "the body is the notification's JSON, its payload as JSON")
	back, err := channels.DecodeWebhook(r.body)
	require.NoError(t, err)
	n.Action.Payload = []byte(`{"to":"ACME","amount":5000}`) // compacted: the same payload hash
	require.Equal(t, n, back)

	ts := r.header.Get("X-Approval-Timestamp")
	require.Equal(t, strconv.FormatInt(hookNow.Unix(), 10), ts)
	require.Equal(t, hookSign(hookSecret, ts, r.body), r.header.Get("X-Signature"))

	var blockKitMessage struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.Unmarshal(r.body, &blockKitMessage))
	require.Equal(t, n.ID, r.header.Get("Idempotency-Key"))
	require.Equal(t, n.ID, blockKitMessage.ID)
	require.NoError(t, channels.Verify(hookSecret, r.header, r.body, time.Minute, hookNow))
}

// A retry is the same notification with a higher Attempt: same key, signed
// anew at its own time.
func TestWebhookRetryKeepsIdempotencyKey(t *testing.T) {
	t.Parallel()
	srv, got := hookReceiver(t, nil)
	now := hookNow
	hook := newWebhook(t, srv.URL, func(c *channels.WebhookConfig) { c.Now = func() time.Time { return now } })
	n := openNotification()
	require.NoError(t, hook.Send(context.Background(), n))
	now = now.Add(time.Minute)
	n.Attempt = 2
	require.NoError(t, hook.Send(context.Background(), n))

	reqs := got()
	require.Len(t, reqs, 2)
	require.Equal(t, reqs[0].header.Get("Idempotency-Key"), reqs[1].header.Get("Idempotency-Key"))
	require.NotEqual(t, reqs[0].header.Get("X-Approval-Timestamp"), reqs[1].header.Get("X-Approval-Timestamp"))
	for _, r := range reqs {
		require.Equal(t, hookSign(hookSecret, r.header.Get("X-Approval-Timestamp"), r.body), r.header.Get("X-Signature"))
	}
}

// sendOutcome is how a send error steers retries.
type sendOutcome int

const (
	sentOK sendOutcome = iota
	sentTransient
	sentPermanent
)

func sendOutcomeOf(t *testing.T, err error) (sendOutcome, time.Duration) {
	t.Helper()
	if err == nil {
		return sentOK, 0
	}
	var se *approval.SendError
	if !errors.As(err, &se) {
		return sentTransient, 0
	}
	if se.Permanent {
		require.Zero(t, se.RetryAfter, "a permanent failure asks for no wait")
		return sentPermanent, 0
	}
	return sentTransient, se.RetryAfter
}

func TestWebhookClassifiesAnswers(t *testing.T) {
	t.Parallel()
	date := hookNow.Add(90 * time.Second).Format(http.TimeFormat)
	past := hookNow.Add(-time.Hour).Format(http.TimeFormat)
	for _, tc := range []struct {
		status     int
		retryAfter string
		want       sendOutcome
		wait       time.Duration
	}{
		{200, "", sentOK, 0},
		{201, "", sentOK, 0},
		{202, "", sentOK, 0},
		{204, "", sentOK, 0},
		{500, "", sentTransient, 0},
		{502, "", sentTransient, 0},
		{503, "", sentTransient, 0},
		{503, "7", sentTransient, 7 * time.Second},
		{408, "", sentTransient, 0},
		{429, "", sentTransient, 0},
		{429, "120", sentTransient, 2 * time.Minute},
		{429, date, sentTransient, 90 * time.Second},
		{429, past, sentTransient, 0},
		{429, "999999999", sentTransient, channels.MaxRetryAfter},
		{429, "soon", sentTransient, 0},
		{429, "-5", sentTransient, 0},
		{408, "30", sentTransient, 30 * time.Second},
		{400, "", sentPermanent, 0},
		{401, "", sentPermanent, 0},
		{403, "", sentPermanent, 0},
		{404, "", sentPermanent, 0},
		{410, "", sentPermanent, 0},
		{422, "", sentPermanent, 0},
		{400, "60", sentPermanent, 0},
	} {
		t.Run(strconv.Itoa(tc.status)+"/"+tc.retryAfter, func(t *testing.T) {
			t.Parallel()
			srv, got := hookReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, "answer body")
			})
			err := newWebhook(t, srv.URL).Send(context.Background(), openNotification())
			kind, wait := sendOutcomeOf(t, err)
			require.Equal(t, tc.want, kind, "error: %v", err)
			require.Equal(t, tc.wait, wait)
			require.Len(t, got(), 1)
			if err != nil {
				require.Contains(t, err.Error(), strconv.Itoa(tc.status))
				require.Contains(t, err.Error(), "answer body", "the error quotes the answer")
			}
		})
	}
}

// A redirect is not followed, for a POST to the same host or another: it
// is a permanent failure that names the new location.
func TestWebhookDoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	elsewhere, elsewhereGot := hookReceiver(t, nil)
	for _, status := range []int{301, 302, 303, 307, 308} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			t.Parallel()
			srv, got := hookReceiver(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/moved" {
					http.Redirect(w, r, elsewhere.URL+"/new", status)
					return
				}
				http.Redirect(w, r, "/same-host", status)
			})
			for _, path := range []string{"/moved", "/local"} {
				err := newWebhook(t, srv.URL+path).Send(context.Background(), openNotification())
				kind, _ := sendOutcomeOf(t, err)
				require.Equal(t, sentPermanent, kind, "error: %v", err)
				require.Contains(t, err.Error(), "redirect not followed")
			}
			require.Len(t, got(), 2, "only the two first requests reached the server")
		})
	}
	require.Empty(t, elsewhereGot(), "no redirect was followed to another host")
}

// The webhook uses a copy of a given client: its Transport, but never its
// redirect policy.
func TestWebhookClientRedirectPolicyIgnored(t *testing.T) {
	t.Parallel()
	target, targetGot := hookReceiver(t, nil)
	srv, _ := hookReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
	})
	var used atomic.Int32
	client := &http.Client{
		Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			used.Add(1)
			return http.DefaultTransport.RoundTrip(r)
		}),
		CheckRedirect: func(*http.Request, []*http.Request) error { return nil }, // would follow
	}
	err := newWebhook(t, srv.URL, func(c *channels.WebhookConfig) { c.Client = client }).Send(context.Background(), openNotification())
	kind, _ := sendOutcomeOf(t, err)
	require.Equal(t, sentPermanent, kind, "error: %v", err)
	require.Equal(t, int32(1), used.Load(), "the given transport was used, once")
	require.Empty(t, targetGot())
	require.NotNil(t, client.CheckRedirect, "the caller's client is not changed")
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A receiver that is down is a transient failure; the error names its
// host only, not the path or query (which may hold a token), and never the
// secret.
func TestWebhookNetworkErrorIsTransient(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/hooks/s3cr3t-path?token=s3cr3t-query"
	srv.Close()
	err := newWebhook(t, url).Send(context.Background(), openNotification())
	require.Error(t, err)
	kind, _ := sendOutcomeOf(t, err)
	require.Equal(t, sentTransient, kind)
	var opErr *net.OpError
	require.ErrorAs(t, err, &opErr, "the network error stays in the chain")
	require.Contains(t, err.Error(), strings.TrimPrefix(srv.URL, "http://"))
	require.NotContains(t, err.Error(), "s3cr3t")
	require.NotContains(t, err.Error(), string(hookSecret))
}

// A receiver that never answers is cut off when the send's context ends.
func TestWebhookHangingReceiverCutByContext(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv, _ := hookReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := newWebhook(t, srv.URL).Send(ctx, openNotification())
	require.Less(t, time.Since(start), 5*time.Second)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	kind, _ := sendOutcomeOf(t, err)
	require.Equal(t, sentTransient, kind)
}

// The answer's body is quoted short and sanitised; the rest is drained so
// that the connection carries the next request.
func TestWebhookAnswerBodyBoundedAndConnectionReused(t *testing.T) {
	t.Parallel()
	long := "bad\x1b[31m\r\ninput \u202e" + strings.Repeat("x", 20<<10)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, long)
	}))
	var conns atomic.Int32
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	hook := newWebhook(t, srv.URL)
	for range 3 {
		err := hook.Send(context.Background(), openNotification())
		kind, _ := sendOutcomeOf(t, err)
		require.Equal(t, sentPermanent, kind)
		msg := err.Error()
		require.Less(t, len(msg), 512, "the quoted answer is short")
		require.Contains(t, msg, "bad [31m input")
		require.True(t, strings.HasSuffix(msg, "…"))
		for _, r := range msg {
			require.False(t, r < ' ' || r == 0x7f || r == '\u202e', "control character %q in %q", r, msg)
		}
	}
	require.Equal(t, int32(1), conns.Load(), "one connection served every send")
}

// A notification that cannot be encoded is a permanent failure, and
// nothing is sent.
func TestWebhookEncodeFailureIsPermanent(t *testing.T) {
	t.Parallel()
	srv, got := hookReceiver(t, nil)
	hook := newWebhook(t, srv.URL)
	for name, mod := range map[string]func(*approval.Notification){
		"unknown risk":  func(n *approval.Notification) { n.Action.Risk = approval.Risk(42) },
		"no ID":         func(n *approval.Notification) { n.ID = "" },
		"ID with CR LF": func(n *approval.Notification) { n.ID = "id\r\nX-Evil: 1" },
	} {
		n := openNotification()
		mod(&n)
		err := hook.Send(context.Background(), n)
		kind, _ := sendOutcomeOf(t, err)
		require.Equal(t, sentPermanent, kind, "%s: error: %v", name, err)
	}
	require.Empty(t, got())
}

func TestNewWebhookValidatesConfig(t *testing.T) {
	t.Parallel()
	ok := channels.WebhookConfig{URL: "https://hooks.example.com/x", Secret: hookSecret}
	for name, tc := range map[string]struct {
		mod  func(*channels.WebhookConfig)
		want string
	}{
		"no URL":            {func(c *channels.WebhookConfig) { c.URL = "" }, "URL is empty"},
		"ftp":               {func(c *channels.WebhookConfig) { c.URL = "ftp://hooks.example.com/secret-path" }, `scheme "ftp"`},
		"relative":          {func(c *channels.WebhookConfig) { c.URL = "/hooks/secret-path" }, `scheme ""`},
		"no host":           {func(c *channels.WebhookConfig) { c.URL = "https:///secret-path" }, "no host"},
		"opaque":            {func(c *channels.WebhookConfig) { c.URL = "https:secret-path" }, "no host"},
		"unparsable":        {func(c *channels.WebhookConfig) { c.URL = "https://hooks.example.com/%zz-secret-path" }, "does not parse"},
		"no secret":         {func(c *channels.WebhookConfig) { c.Secret = nil }, "Secret has 0 bytes"},
		"short secret":      {func(c *channels.WebhookConfig) { c.Secret = []byte("short") }, "Secret has 5 bytes"},
		"reserved header":   {func(c *channels.WebhookConfig) { c.Headers = http.Header{"X-Signature": {"x"}} }, "X-Signature is set by the webhook"},
		"content-type":      {func(c *channels.WebhookConfig) { c.Headers = http.Header{"content-type": {"text/plain"}} }, "Content-Type is set"},
		"host header":       {func(c *channels.WebhookConfig) { c.Headers = http.Header{"Host": {"x"}} }, "Host is set"},
		"bad header name":   {func(c *channels.WebhookConfig) { c.Headers = http.Header{"Bad Name": {"x"}} }, "not an HTTP token"},
		"bad header value":  {func(c *channels.WebhookConfig) { c.Headers = http.Header{"X-Team": {"a\r\nX-Evil: 1"}} }, "control character"},
		"empty header name": {func(c *channels.WebhookConfig) { c.Headers = http.Header{"": {"x"}} }, "empty name"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := ok
			tc.mod(&cfg)
			_, err := channels.NewWebhook(cfg)
			require.ErrorIs(t, err, channels.ErrInvalidConfig)
			require.ErrorContains(t, err, tc.want)
			require.NotContains(t, err.Error(), "secret-path", "the URL is not echoed")
		})
	}
	cfg := ok
	cfg.Name = "ops-hook"
	w, err := channels.NewWebhook(cfg)
	require.NoError(t, err)
	require.Equal(t, "ops-hook", w.Name())
}

// The webhook keeps its own copies: changing the config afterwards changes
// nothing.
func TestNewWebhookCopiesSecretAndHeaders(t *testing.T) {
	t.Parallel()
	srv, got := hookReceiver(t, nil)
	secret := bytes.Clone(hookSecret)
	headers := http.Header{"X-Team": {"ops"}}
	hook := newWebhook(t, srv.URL, func(c *channels.WebhookConfig) { c.Secret, c.Headers = secret, headers })
	secret[0] ^= 0xff
	headers.Set("X-Team", "changed")
	require.NoError(t, hook.Send(context.Background(), openNotification()))
	r := got()[0]
	require.Equal(t, "ops", r.header.Get("X-Team"))
	require.NoError(t, channels.Verify(hookSecret, r.header, r.body, time.Minute, hookNow))
}

func TestVerify(t *testing.T) {
	t.Parallel()
	body := []byte(`{"id":"n1","type":"approval.requested"}`)
	ts := strconv.FormatInt(hookNow.Unix(), 10)
	good := http.Header{"X-Approval-Timestamp": {ts}, "X-Signature": {hookSign(hookSecret, ts, body)}}
	upper := "sha256=" + strings.ToUpper(strings.TrimPrefix(hookSign(hookSecret, ts, body), "sha256="))
	with := func(mod func(h http.Header)) http.Header {
		h := good.Clone()
		mod(h)
		return h
	}
	stamped := func(ts string) http.Header {
		return http.Header{"X-Approval-Timestamp": {ts}, "X-Signature": {hookSign(hookSecret, ts, body)}}
	}
	at := func(d time.Duration) http.Header { return stamped(strconv.FormatInt(hookNow.Add(d).Unix(), 10)) }
	for name, tc := range map[string]struct {
		secret []byte
		header http.Header
		body   []byte
		want   error
	}{
		"good":                {hookSecret, good, body, nil},
		"upper-case hex":      {hookSecret, with(func(h http.Header) { h.Set("X-Signature", upper) }), body, nil},
		"within max age":      {hookSecret, at(-4 * time.Minute), body, nil},
		"slightly ahead":      {hookSecret, at(4 * time.Minute), body, nil},
		"tampered body":       {hookSecret, good, []byte(`{"id":"n1","type":"approval.resolved"}`), channels.ErrSignature},
		"wrong secret":        {[]byte("another-secret-of-32-bytes-long!!"), good, body, channels.ErrSignature},
		"old":                 {hookSecret, at(-6 * time.Minute), body, channels.ErrTimestamp},
		"future":              {hookSecret, at(6 * time.Minute), body, channels.ErrTimestamp},
		"no timestamp":        {hookSecret, with(func(h http.Header) { h.Del("X-Approval-Timestamp") }), body, channels.ErrTimestamp},
		"two timestamps":      {hookSecret, with(func(h http.Header) { h.Add("X-Approval-Timestamp", ts) }), body, channels.ErrTimestamp},
		"non-numeric":         {hookSecret, with(func(h http.Header) { h.Set("X-Approval-Timestamp", "1e9") }), body, channels.ErrTimestamp},
		"negative":            {hookSecret, with(func(h http.Header) { h.Set("X-Approval-Timestamp", "-1") }), body, channels.ErrTimestamp},
		"huge":                {hookSecret, with(func(h http.Header) { h.Set("X-Approval-Timestamp", strings.Repeat("9", 30)) }), body, channels.ErrTimestamp},
		"year 33658":          {hookSecret, stamped("999999999999"), body, channels.ErrTimestamp},
		"year 0001":           {hookSecret, stamped("0"), body, channels.ErrTimestamp},
		"timestamp changed":   {hookSecret, with(func(h http.Header) { h.Set("X-Approval-Timestamp", strconv.FormatInt(hookNow.Unix()-1, 10)) }), body, channels.ErrSignature},
		"no signature":        {hookSecret, with(func(h http.Header) { h.Del("X-Signature") }), body, channels.ErrSignature},
		"two signatures":      {hookSecret, with(func(h http.Header) { h.Add("X-Signature", h.Get("X-Signature")) }), body, channels.ErrSignature},
		"no prefix":           {hookSecret, with(func(h http.Header) { h.Set("X-Signature", strings.TrimPrefix(h.Get("X-Signature"), "sha256=")) }), body, channels.ErrSignature},
		"not hex":             {hookSecret, with(func(h http.Header) { h.Set("X-Signature", "sha256="+strings.Repeat("zz", 32)) }), body, channels.ErrSignature},
		"short signature":     {hookSecret, with(func(h http.Header) { h.Set("X-Signature", h.Get("X-Signature")[:20]) }), body, channels.ErrSignature},
		"empty secret":        {nil, good, body, channels.ErrInvalidConfig},
		"short secret":        {hookSecret[:8], good, body, channels.ErrInvalidConfig},
		"empty body, no sign": {hookSecret, http.Header{"X-Approval-Timestamp": {ts}}, nil, channels.ErrSignature},
	} {
		t.Run(name, func(t *testing.T) {
			err := channels.Verify(tc.secret, tc.header, tc.body, 5*time.Minute, hookNow)
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.want)
		})
	}
	// A maxAge that is not positive means DefaultMaxAge.
	require.NoError(t, channels.Verify(hookSecret, at(-4*time.Minute), body, 0, hookNow))
	require.ErrorIs(t, channels.Verify(hookSecret, at(-6*time.Minute), body, 0, hookNow), channels.ErrTimestamp)
}

// A receiver built on VerifyRequest accepts what a Webhook sends, and
// refuses the same request from someone without the secret.
func TestVerifyRequestRoundTrip(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var bodies [][]byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := channels.VerifyRequest(hookSecret, r, time.Minute)
		switch {
		case errors.Is(err, channels.ErrSignature), errors.Is(err, channels.ErrTimestamp):
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		case err != nil:
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		mu.Lock()
		bodies = append(bodies, body)
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)

	n := openNotification()
	require.NoError(t, newWebhook(t, srv.URL, func(c *channels.WebhookConfig) { c.Now = time.Now }).Send(context.Background(), n))
	require.Len(t, bodies, 1)
	back, err := channels.DecodeWebhook(bodies[0])
	require.NoError(t, err)
	require.Equal(t, n, back)

	err = newWebhook(t, srv.URL, func(c *channels.WebhookConfig) {
		c.Now, c.Secret = time.Now, []byte("not-the-receivers-secret-at-all!")
	}).Send(context.Background(), n)
	require.ErrorContains(t, err, "401")
	kind, _ := sendOutcomeOf(t, err)
	require.Equal(t, sentPermanent, kind)
	require.Len(t, bodies, 1)
}

func TestVerifyRequestBoundsBody(t *testing.T) {
	t.Parallel()
	body := bytes.Repeat([]byte("a"), channels.MaxWebhookBodyBytes+1)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	r.Header.Set("X-Approval-Timestamp", ts)
	r.Header.Set("X-Signature", hookSign(hookSecret, ts, body))
	_, err := channels.VerifyRequest(hookSecret, r, time.Minute)
	require.ErrorIs(t, err, channels.ErrBodyTooLarge)

	body = body[:channels.MaxWebhookBodyBytes]
	r = httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	r.Header.Set("X-Approval-Timestamp", ts)
	r.Header.Set("X-Signature", hookSign(hookSecret, ts, body))
	got, err := channels.VerifyRequest(hookSecret, r, time.Minute)
	require.NoError(t, err)
	require.Equal(t, body, got)
}

// Wired into a gate, the webhook delivers each approver's notification
// with their own links.
func TestWebhookFromGate(t *testing.T) {
	t.Parallel()
	srv, got := hookReceiver(t, nil)
	gate := newFixtureGate(t, func(c *approval.Config) {
		c.Channels = []approval.Channel{newWebhook(t, srv.URL, func(c *channels.WebhookConfig) { c.Now = time.Now })}
		c.BaseURL = "https://approvals.example.com"
	})
	id := guardDeploy(t, gate)
	require.NoError(t, gate.Close(context.Background()))

	reqs := got()
	require.Len(t, reqs, 2, "one notification per approver (alice, bob)")
	recipients := map[string]bool{}
	for _, r := range reqs {
		require.NoError(t, channels.Verify(hookSecret, r.header, r.body, time.Minute, time.Now()))
		n, err := channels.DecodeWebhook(r.body)
		require.NoError(t, err)
		require.Equal(t, id, n.RequestID)
		require.Equal(t, approval.NotifyRequested, n.Type)
		require.Equal(t, n.ID, r.header.Get("Idempotency-Key"))
		require.Contains(t, n.ApproveURL, "verdict=approve")
		recipients[n.Recipient] = true
	}
	require.Equal(t, map[string]bool{"alice": true, "bob": true}, recipients)
}

// DecodeWebhook reads each payload form, the base64 string of bodies
// before payload_text, and refuses what is not a notification.
func TestDecodeWebhookPayloadForms(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, action string
		want         []byte
	}{
		{"JSON", `{"name":"x","requested_by":"u","payload":{"a":[1,2]}}`, []byte(`{"a":[1,2]}`)},
		{"text", `{"name":"x","requested_by":"u","payload_text":"line\n"}`, []byte("line\n")},
		{"a JSON string is text", `{"name":"x","requested_by":"u","payload_text":"\"s\""}`, []byte(`"s"`)},
		{"bytes", `{"name":"x","requested_by":"u","payload_base64":"/wA="}`, []byte{0xff, 0}},
		{"base64, as before", `{"name":"x","requested_by":"u","payload":"eyJhIjoxfQ=="}`, []byte(`{"a":1}`)},
		{"none", `{"name":"x","requested_by":"u"}`, nil},
	} {
		n, err := channels.DecodeWebhook([]byte(`{"id":"n1","type":"approval.requested","action":` + tc.action + `}`))
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.want, n.Action.Payload, tc.name)
		require.Equal(t, "n1", n.ID)
	}
	for _, body := range []string{
		`not JSON`,
		`{"action":{"payload":{"a":1},"payload_text":"x"}}`,
		`{"action":{"payload":"not base64!"}}`,
	} {
		_, err := channels.DecodeWebhook([]byte(body))
		require.ErrorIs(t, err, channels.ErrMalformedBody, body)
	}
}

// A payload that is not JSON reaches a webhook body as text or base64,
// and DecodeWebhook gives back its bytes.
func TestWebhookBodyPayloadNotJSON(t *testing.T) {
	t.Parallel()
	srv, got := hookReceiver(t, nil)
	hook := newWebhook(t, srv.URL)
	for _, p := range []string{"pay ACME 5000\n", "\xff\xfe"} {
		n := openNotification()
		n.Action.Payload = []byte(p)
		require.NoError(t, hook.Send(context.Background(), n))
	}
	reqs := got()
	require.Len(t, reqs, 2)
	require.Contains(t, string(reqs[0].body), `"payload_text":"pay ACME 5000\n"`)
	require.Contains(t, string(reqs[1].body), `"payload_base64":"//4="`)
	for i, want := range []string{"pay ACME 5000\n", "\xff\xfe"} {
		n, err := channels.DecodeWebhook(reqs[i].body)
		require.NoError(t, err)
		require.Equal(t, []byte(want), n.Action.Payload)
	}
}
