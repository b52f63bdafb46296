package approvalhttp_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/approvalhttp"
	"github.com/signoff/approval/internal/testkit"
	"github.com/signoff/approval/memstore"
)

// Test identities: the reviewer is named by the X-Test-User header (a
// stand-in for the host's session), the remote caller by a bearer key.
const (
	userHeader = "X-Test-User"
	agentKey   = "Bearer agent-key"
	agentID    = "agent-1"
)

func testIdentity(r *http.Request) (string, error) { return r.Header.Get(userHeader), nil }

func testAuthenticate(r *http.Request) (string, error) {
	if r.Header.Get("Authorization") == agentKey {
		return agentID, nil
	}
	return "", errors.New("unknown key")
}

// fixture is a gate over memstore with a finance policy (two approvals
// from alice, bob and carol for 1,000 USD or more; the payload field
// "iban" is redacted), served by approvalhttp on an httptest.Server.
type fixture struct {
	t      *testing.T
	ctx    context.Context
	gate   *approval.Gate
	pub    ed25519.PublicKey // of the gate's SigningKey
	clock  *testkit.Clock    // shared by the gate and the handler
	h      http.Handler      // the handler srv serves
	srv    *httptest.Server
	client *http.Client
}

type fixtureOpt struct {
	cfg  func(*approval.Config)
	opts func(*approvalhttp.Options)
}

func newFixture(t *testing.T, mods ...fixtureOpt) *fixture {
	t.Helper()
	pub, priv, err := approval.GenerateKeys()
	require.NoError(t, err)
	f := &fixture{t: t, ctx: context.Background(), pub: pub, clock: testkit.NewClock()}
	cfg := approval.Config{
		Store:      memstore.New(),
		SigningKey: priv,
		Directory: approval.StaticDirectory{Groups: map[string][]string{
			"finance": {"alice", "bob", "carol"},
		}},
		Now:    f.clock.Now,
		Logger: slog.New(slog.DiscardHandler),
	}
	opts := approvalhttp.Options{
		Authenticate: testAuthenticate,
		Identity:     testIdentity,
		Redact:       []string{"api_key"},
		Now:          f.clock.Now,
		Logger:       slog.New(slog.DiscardHandler),
	}
	for _, m := range mods {
		if m.cfg != nil {
			m.cfg(&cfg)
		}
		if m.opts != nil {
			m.opts(&opts)
		}
	}
	f.gate, err = approval.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.gate.Close(context.Background()) })
	require.NoError(t, f.gate.SetPolicy("high_spend", approval.Policy{
		Match:             approval.CostAtLeast(1000, "USD"),
		Reason:            "transfers of 1,000 USD or more need two finance approvals",
		Approvers:         []approval.Approver{approval.Group("finance")},
		RequiredApprovals: 2,
		Timeout:           24 * time.Hour,
		Redact:            []string{"IBAN"},
	}))
	require.NoError(t, f.gate.SetPolicy("sanctioned", approval.Policy{
		Match: approval.TagAny("sanctioned"), Effect: approval.EffectDeny, Reason: "sanctioned destination",
	}))
	f.h, err = approvalhttp.New(f.gate, opts)
	require.NoError(t, err)
	f.srv = httptest.NewServer(f.h)
	t.Cleanup(f.srv.Close)
	f.client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return f
}

func transfer(amount float64) approval.Action {
	return approval.Action{
		Name: "wire-transfer", RequestedBy: "user-1",
		Cost:    &approval.Cost{Amount: amount, Currency: "USD"},
		Message: "pay the supplier",
		Payload: []byte(`{"to":{"iban":"DE89370400440532013000","name":"ACME"},"amount":5000}`),
	}
}

// pending guards a directly on the gate and returns the pending request.
func (f *fixture) pending(a approval.Action) string {
	f.t.Helper()
	res, err := f.gate.Guard(f.ctx, a)
	require.NoError(f.t, err)
	require.Equal(f.t, approval.OutcomePending, res.Status, res.Reason)
	return res.RequestID
}

func (f *fixture) token(id, who string, v approval.Verdict) string {
	f.t.Helper()
	tok, err := f.gate.IssueToken(id, who, v, time.Hour)
	require.NoError(f.t, err)
	return tok
}

// response is a read response.
type response struct {
	*http.Response
	body []byte
}

func (r response) text() string { return string(r.body) }

// problem decodes a problem body and checks its form against status.
func (r response) problem(t *testing.T, status int, code string) approvalhttp.Problem {
	t.Helper()
	require.Equal(t, status, r.StatusCode, r.text())
	require.Equal(t, "application/problem+json", r.Header.Get("Content-Type"))
	var p approvalhttp.Problem
	require.NoError(t, json.Unmarshal(r.body, &p), r.text())
	require.Equal(t, status, p.Status)
	require.Equal(t, code, p.Code, p.Detail)
	require.Equal(t, approvalhttp.ProblemTypePrefix+code, p.Type)
	require.NotEmpty(t, p.Title)
	require.LessOrEqual(t, len(p.Detail), 256+len("…"))
	if status == http.StatusUnauthorized {
		require.Equal(t, `ApprovalToken realm="approval", error="`+code+`"`, r.Header.Get("WWW-Authenticate"))
	} else {
		require.Empty(t, r.Header.Get("WWW-Authenticate"))
	}
	return p
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	require.Contains(t, r.Header.Get("Content-Type"), "application/json", r.text())
	require.NoError(t, json.Unmarshal(r.body, v), r.text())
}

// req is one HTTP request to the fixture's server.
type req struct {
	method, path string
	body         string
	ctype        string // defaults to application/json with a body
	user         string // X-Test-User
	auth         string // Authorization
	header       http.Header
}

func (f *fixture) do(q req) response {
	f.t.Helper()
	var body io.Reader
	if q.body != "" {
		body = strings.NewReader(q.body)
	}
	hr, err := http.NewRequestWithContext(f.ctx, q.method, f.srv.URL+q.path, body)
	require.NoError(f.t, err)
	for k, v := range q.header {
		hr.Header[k] = v
	}
	if q.body != "" {
		ct := q.ctype
		if ct == "" {
			ct = "application/json"
		}
		hr.Header.Set("Content-Type", ct)
	}
	if q.user != "" {
		hr.Header.Set(userHeader, q.user)
	}
	if q.auth != "" {
		hr.Header.Set("Authorization", q.auth)
	}
	resp, err := f.client.Do(hr)
	require.NoError(f.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(f.t, err)
	return response{resp, b}
}

func (f *fixture) get(path, user string) response {
	f.t.Helper()
	return f.do(req{method: http.MethodGet, path: path, user: user})
}

// postForm posts an HTML form as a same-origin browser would.
func (f *fixture) postForm(path, user string, form url.Values) response {
	f.t.Helper()
	return f.do(req{method: http.MethodPost, path: path, user: user, body: form.Encode(),
		ctype: "application/x-www-form-urlencoded", header: http.Header{"Sec-Fetch-Site": {"same-origin"}, "Origin": {f.srv.URL}}})
}

func (f *fixture) request(id string) *approval.Request {
	f.t.Helper()
	r, err := f.gate.Get(f.ctx, id)
	require.NoError(f.t, err)
	return r
}

// jsonBody marshals v.
func jsonBody(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}
