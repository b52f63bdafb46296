package approvalhttp_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/approvalhttp"
	"github.com/signoff/approval/internal/testkit"
	"github.com/signoff/approval/memstore"
	"github.com/signoff/approval/sqlstore"
)

// TestCrossOrigin: a cross-origin browser POST is refused (403) on the
// form and on the API; a same-origin one, a non-browser client and a
// trusted origin pass.
func TestCrossOrigin(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpt{opts: func(o *approvalhttp.Options) { o.TrustedOrigins = []string{"https://admin.example.com"} }})
	id := f.pending(transfer(5000))
	form := url.Values{"verdict": {"approve"}, "token": {f.token(id, "alice", approval.VerdictApprove)}}.Encode()
	post := func(path, body, ctype string, h http.Header) response {
		return f.do(req{method: http.MethodPost, path: path, body: body, ctype: ctype, header: h, user: "bob"})
	}
	for name, h := range map[string]http.Header{
		"Sec-Fetch-Site cross-site": {"Sec-Fetch-Site": {"cross-site"}},
		"Sec-Fetch-Site same-site":  {"Sec-Fetch-Site": {"same-site"}},
		"foreign Origin":            {"Origin": {"https://evil.example"}},
	} {
		r := post("/approvals/"+id+"/decide", form, "application/x-www-form-urlencoded", h)
		require.Equal(t, "cross_origin", attr(r.html(t, http.StatusForbidden), "message", "data-code"), name)
		post("/api/approvals/"+id+"/approve", "", "", h).problem(t, http.StatusForbidden, "cross_origin")
		r = post("/api/approvals", `{"name":"x"}`, "", h)
		r.problem(t, http.StatusForbidden, "cross_origin")
		require.Equal(t, "no-store", r.Header.Get("Cache-Control"), "refusals carry the headers too")
	}
	require.Empty(t, f.request(id).Votes)

	r := post("/approvals/"+id+"/decide", form, "application/x-www-form-urlencoded",
		http.Header{"Sec-Fetch-Site": {"same-origin"}, "Origin": {f.srv.URL}})
	require.Equal(t, http.StatusOK, r.StatusCode, r.text())
	require.Equal(t, http.StatusOK, post("/api/approvals/"+id+"/approve", "", "", nil).StatusCode, "a client without browser headers")
	id = f.pending(transfer(6000))
	require.Equal(t, http.StatusOK, post("/api/approvals/"+id+"/approve", "", "",
		http.Header{"Origin": {"https://admin.example.com"}, "Sec-Fetch-Site": {"cross-site"}}).StatusCode, "a trusted origin")
	// Safe methods are never refused.
	require.Equal(t, http.StatusOK, f.do(req{method: http.MethodGet, path: "/approvals/" + id, user: "bob",
		header: http.Header{"Sec-Fetch-Site": {"cross-site"}}}).StatusCode)
}

// TestSecurityHeaders: every response, whatever the route or outcome,
// carries the security headers; request data is never cached.
func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.pending(transfer(5000))
	tok := f.token(id, "alice", approval.VerdictApprove)
	for _, q := range []req{
		{method: "GET", path: "/approvals/" + id, user: "alice"},
		{method: "GET", path: "/approvals/" + id + "?token=" + tok},
		{method: "GET", path: "/approvals", user: "alice"},
		{method: "GET", path: "/approvals/nope", user: "alice"},
		{method: "GET", path: "/approvals/" + id},
		{method: "GET", path: "/api/approvals", user: "alice"},
		{method: "GET", path: "/api/approvals/" + id, user: "alice"},
		{method: "GET", path: "/api/approvals/" + id + "/audit", user: "alice"},
		{method: "POST", path: "/api/approvals", body: `{"name":"x"}`, auth: agentKey},
		{method: "POST", path: "/api/approvals/" + id + "/deny", user: "dave"},
		{method: "POST", path: "/approvals/" + id + "/decide", body: "verdict=approve", ctype: "application/x-www-form-urlencoded", user: "bob"},
		{method: "GET", path: "/assets/style.css"},
		{method: "GET", path: "/nowhere"},
		{method: "DELETE", path: "/api/approvals/" + id},
	} {
		r := f.do(q)
		h := r.Header
		require.Equal(t, "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
			h.Get("Content-Security-Policy"), q.path)
		require.Equal(t, "no-referrer", h.Get("Referrer-Policy"), q.path)
		require.Equal(t, "DENY", h.Get("X-Frame-Options"), q.path)
		require.Equal(t, "nosniff", h.Get("X-Content-Type-Options"), q.path)
		if q.path != "/assets/style.css" {
			require.Equal(t, "no-store", h.Get("Cache-Control"), q.path)
		}
	}

	css := f.get("/assets/style.css", "")
	require.Equal(t, http.StatusOK, css.StatusCode)
	require.Equal(t, "text/css; charset=utf-8", css.Header.Get("Content-Type"))
	require.Contains(t, css.text(), ".st-timed_out")
	etag := css.Header.Get("ETag")
	require.NotEmpty(t, etag)
	require.Equal(t, http.StatusNotModified, f.do(req{method: "GET", path: "/assets/style.css", header: http.Header{"If-None-Match": {etag}}}).StatusCode)
	require.Equal(t, http.StatusNotFound, f.get("/assets/other.js", "").StatusCode)

	f.get("/api/nowhere", "alice").problem(t, http.StatusNotFound, "not_found")
	r := f.do(req{method: "DELETE", path: "/api/approvals/" + id, user: "alice"})
	r.problem(t, http.StatusMethodNotAllowed, "method_not_allowed")
	require.Equal(t, "GET", r.Header.Get("Allow"))
	r = f.do(req{method: "PUT", path: "/api/approvals"})
	r.problem(t, http.StatusMethodNotAllowed, "method_not_allowed")
	require.Equal(t, "GET, POST", r.Header.Get("Allow"))
	require.Equal(t, "not_found", attr(f.get("/nowhere", "alice").html(t, http.StatusNotFound), "message", "data-code"))
	require.Equal(t, http.StatusOK, f.do(req{method: "HEAD", path: "/approvals/" + id, user: "alice"}).StatusCode)
}

// capture is a Channel that keeps the notifications it is sent.
type capture struct {
	mu   sync.Mutex
	sent []approval.Notification
	got  chan struct{}
}

func (c *capture) Name() string { return "capture" }

func (c *capture) Send(_ context.Context, n approval.Notification) error {
	c.mu.Lock()
	c.sent = append(c.sent, n)
	c.mu.Unlock()
	c.got <- struct{}{}
	return nil
}

// TestMountedUnderPrefix: mounted with http.StripPrefix and BaseURL set to
// match, the links in notifications open the pages, and every link, form
// action and redirect the pages write resolves under the prefix.
func TestMountedUnderPrefix(t *testing.T) {
	t.Parallel()
	_, priv, err := approval.GenerateKeys()
	require.NoError(t, err)
	ch := &capture{got: make(chan struct{}, 16)}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	gate, err := approval.New(approval.Config{
		Store: memstore.New(), SigningKey: priv, BaseURL: srv.URL + "/review",
		Channels: []approval.Channel{ch}, Logger: slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = gate.Close(context.Background()) })
	require.NoError(t, gate.SetPolicy("deploys", approval.Policy{
		Match: approval.Name("deploy:*"), Approvers: []approval.Approver{approval.User("alice")}, RequiredApprovals: 1,
	}))
	h, err := approvalhttp.New(gate, approvalhttp.Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	mux.Handle("/review/", http.StripPrefix("/review", h))

	res, err := gate.Guard(context.Background(), approval.Action{Name: "deploy:prod", RequestedBy: "ci"})
	require.NoError(t, err)
	select {
	case <-ch.got:
	case <-time.After(10 * time.Second):
		t.Fatal("no notification")
	}
	ch.mu.Lock()
	n := ch.sent[0]
	ch.mu.Unlock()
	require.True(t, strings.HasPrefix(n.ApproveURL, srv.URL+"/review/approvals/"+res.RequestID+"?"), n.ApproveURL)

	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(n.ApproveURL)
	require.NoError(t, err)
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, body.String())
	page := body.String()
	pageURL, err := url.Parse(n.ApproveURL)
	require.NoError(t, err)
	resolve := func(ref string) *url.URL {
		u, err := url.Parse(ref)
		require.NoError(t, err)
		return pageURL.ResolveReference(u)
	}
	sheet := regexp.MustCompile(`<link rel="stylesheet" href="([^"]+)">`).FindStringSubmatch(page)
	require.NotNil(t, sheet)
	require.Equal(t, "/review/assets/style.css", resolve(sheet[1]).Path)
	require.Equal(t, "/review/approvals", resolve(attr(page, "queue-link", "href")).Path)
	action := resolve(attr(page, "decide-form", "action"))
	require.Equal(t, "/review/approvals/"+res.RequestID+"/decide", action.Path)
	css, err := http.Get(resolve(sheet[1]).String())
	require.NoError(t, err)
	css.Body.Close()
	require.Equal(t, http.StatusOK, css.StatusCode)

	resp, err = client.PostForm(action.String(), url.Values{"verdict": {"approve"}, "token": {hiddenToken(page)}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "a link's decision shows its outcome at once")
	require.Empty(t, resp.Header.Get("Location"))
	r, err := gate.Get(context.Background(), res.RequestID)
	require.NoError(t, err)
	require.Equal(t, approval.StatusApproved, r.Status)
}

// failingDirectory fails with an error whose text must not reach clients.
type failingDirectory struct{}

func (failingDirectory) IsMember(context.Context, approval.Approver, string) (bool, error) {
	return false, errors.New("ldap://secret-host.internal:389 bind failed")
}

func (failingDirectory) Members(context.Context, approval.Approver) ([]string, error) {
	return []string{"alice", "bob", "carol"}, nil
}

// TestInternalErrorsDoNotLeak: a failure inside the gate is a 500 with a
// generic detail on the API and the page, logged with the path but never
// the query (tokens travel in it).
func TestInternalErrorsDoNotLeak(t *testing.T) {
	t.Parallel()
	var logs testkit.Buffer
	f := newFixture(t,
		fixtureOpt{cfg: func(c *approval.Config) { c.Directory = failingDirectory{} }},
		fixtureOpt{opts: func(o *approvalhttp.Options) {
			o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		}})
	id := f.pending(transfer(5000))
	tok := f.token(id, "alice", approval.VerdictApprove)
	p := f.decideAPI(id, approval.VerdictApprove, jsonBody(t, map[string]string{"token": tok}), "").problem(t, 500, "internal")
	require.NotContains(t, p.Detail, "secret-host")
	r := f.postForm("/approvals/"+id+"/decide", "", url.Values{"token": {tok}, "verdict": {"approve"}})
	page := r.html(t, 500)
	require.NotContains(t, page, "secret-host")
	// The page still renders, without buttons, when eligibility cannot be checked.
	page = f.get("/approvals/"+id+"?token="+tok, "").html(t, 200)
	require.NotContains(t, page, `id="approve"`)
	require.Equal(t, "internal", attr(page, "cannot-decide", "data-code"))

	require.Contains(t, logs.String(), "secret-host", "the cause is logged")
	require.Contains(t, logs.String(), "path=/api/approvals/"+id+"/approve")
	require.NotContains(t, logs.String(), tok)
}

// TestHostIdentityFailures: an identity function that errors, panics or
// names no valid identity leaves the request unauthenticated.
func TestHostIdentityFailures(t *testing.T) {
	t.Parallel()
	for name, fn := range map[string]func(*http.Request) (string, error){
		"error":   func(*http.Request) (string, error) { return "alice", errors.New("session expired") },
		"panic":   func(*http.Request) (string, error) { panic("boom") },
		"invalid": func(*http.Request) (string, error) { return "alice\u200b", nil },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, fixtureOpt{opts: func(o *approvalhttp.Options) { o.Identity, o.Authenticate = fn, fn }})
			id := f.pending(transfer(5000))
			f.get("/api/approvals/"+id, "alice").problem(t, 401, "unauthenticated")
			f.decideAPI(id, approval.VerdictApprove, "", "alice").problem(t, 401, "unauthenticated")
			f.guardAPI(`{"name":"x"}`).problem(t, 401, "unauthenticated")
			require.Empty(t, f.request(id).Votes)
		})
	}
}

// TestNewValidates: New refuses a nil gate and invalid options.
func TestNewValidates(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for name, o := range map[string]approvalhttp.Options{
		"bad origin":   {TrustedOrigins: []string{"not an origin"}},
		"empty redact": {Redact: []string{""}},
		"negative":     {MaxBodyBytes: -1},
	} {
		_, err := approvalhttp.New(f.gate, o)
		require.Error(t, err, name)
	}
	_, err := approvalhttp.New(nil, approvalhttp.Options{})
	require.Error(t, err)
}

// TestSQLiteRoundTrip: the link flow end to end on the SQL store.
func TestSQLiteRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "a.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	f := newFixture(t, fixtureOpt{cfg: func(c *approval.Config) { c.Store = store }})
	id := f.pending(transfer(5000))
	tok := f.token(id, "alice", approval.VerdictApprove)
	page := f.get("/approvals/"+id+"?verdict=approve&token="+tok, "").html(t, http.StatusOK)
	require.Equal(t, tok, hiddenToken(page))
	r := f.postForm("/approvals/"+id+"/decide", "", url.Values{"token": {tok}, "verdict": {"approve"}})
	require.Equal(t, http.StatusOK, r.StatusCode, r.text())
	f.postForm("/approvals/"+id+"/decide", "", url.Values{"token": {tok}, "verdict": {"approve"}}).html(t, http.StatusForbidden)
	rr := f.decideAPI(id, approval.VerdictApprove, "", "bob")
	require.Equal(t, http.StatusOK, rr.StatusCode, rr.text())
	var res decideResult
	rr.json(t, &res)
	require.Equal(t, approval.StatusApproved, res.Status)
	var audit auditJSON
	f.get("/api/approvals/"+id+"/audit", "carol").json(t, &audit)
	require.Len(t, audit.Events, 5) // created, approve, rejected replay, approve, approved
	f.get("/api/approvals/"+id+"/audit?cursor=bogus", "carol").problem(t, 422, "invalid_cursor")
}
