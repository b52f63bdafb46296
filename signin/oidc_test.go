package signin_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval/internal/testkit"
	"github.com/signoff/approval/signin"
)

const (
	appURL   = "https://app.example"
	clientID = "approvals"
)

func key(b byte) []byte { return []byte(strings.Repeat(string(rune('a'+b)), 32)) }

// env is an OIDC against a fakeOP, both on one test clock.
type env struct {
	t     *testing.T
	op    *fakeOP
	o     *signin.OIDC
	cfg   signin.Config
	clock *testkit.Clock
}

func newEnv(t *testing.T, mod func(*signin.Config)) *env {
	t.Helper()
	e := &env{t: t, clock: testkit.NewClock()}
	e.op = newFakeOP(t, e.clock.Now)
	e.cfg = signin.Config{
		Issuer:      e.op.srv.URL,
		ClientID:    clientID,
		RedirectURL: appURL + "/auth/callback",
		SessionKeys: [][]byte{key(0)},
		GroupsClaim: "groups",
		Home:        "/review/approvals?awaiting=me",
		HTTPClient:  e.op.srv.Client(),
		Now:         e.clock.Now,
		Logger:      slog.New(slog.DiscardHandler),
	}
	if mod != nil {
		mod(&e.cfg)
	}
	var err error
	e.o, err = signin.New(context.Background(), e.cfg)
	require.NoError(t, err)
	return e
}

// serve runs one request through h and returns the response.
func serve(h http.Handler, r *http.Request) *http.Response {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

func get(path string, cookies ...*http.Cookie) *http.Request {
	r := httptest.NewRequest(http.MethodGet, appURL+path, nil)
	for _, c := range cookies {
		if c != nil {
			r.AddCookie(c)
		}
	}
	return r
}

func cookie(t *testing.T, resp *http.Response, name string) *http.Cookie {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// login starts a sign-in and returns the provider URL it redirects to and
// the flow cookie.
func (e *env) login(ret string) (*url.URL, *http.Cookie) {
	e.t.Helper()
	path := "/auth/login"
	if ret != "" {
		path += "?return=" + url.QueryEscape(ret)
	}
	resp := serve(e.o, get(path))
	require.Equal(e.t, http.StatusFound, resp.StatusCode)
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(e.t, err)
	fc := cookie(e.t, resp, "approval_session_flow")
	require.NotNil(e.t, fc, "flow cookie")
	return loc, fc
}

// callbackFor answers the authorization at loc as the provider would, with
// the tokens shaped by shape, and returns the callback's query.
func (e *env) callbackFor(loc *url.URL, shape func(id, ui map[string]any)) url.Values {
	q := loc.Query()
	code := e.op.authorize(clientID, q.Get("nonce"), q.Get("code_challenge"), shape)
	return url.Values{"code": {code}, "state": {q.Get("state")}}
}

func (e *env) callback(q url.Values, cookies ...*http.Cookie) *http.Response {
	return serve(e.o, get("/auth/callback?"+q.Encode(), cookies...))
}

// signIn completes a sign-in and returns the callback's response.
func (e *env) signIn(ret string, shape func(id, ui map[string]any)) *http.Response {
	e.t.Helper()
	loc, fc := e.login(ret)
	return e.callback(e.callbackFor(loc, shape), fc)
}

// session signs alice in and returns her session cookie.
func (e *env) session() *http.Cookie {
	e.t.Helper()
	resp := e.signIn("", nil)
	require.Equal(e.t, http.StatusSeeOther, resp.StatusCode, body(resp))
	c := cookie(e.t, resp, "approval_session")
	require.NotNil(e.t, c)
	return c
}

func body(resp *http.Response) string {
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func (e *env) identity(c *http.Cookie) (string, error) {
	return e.o.Identity(get("/review/approvals", c))
}

// TestSignIn: a whole sign-in: the redirect to the provider with PKCE
// (S256), state and nonce; the callback's session cookie, its attributes,
// the approver and groups it carries; the flow cookie deleted.
func TestSignIn(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	loc, fc := e.login("/review/approvals/req_1?x=1")
	require.Equal(t, e.op.srv.URL+"/authorize", loc.Scheme+"://"+loc.Host+loc.Path)
	q := loc.Query()
	require.Equal(t, "code", q.Get("response_type"))
	require.Equal(t, clientID, q.Get("client_id"))
	require.Equal(t, appURL+"/auth/callback", q.Get("redirect_uri"))
	require.Equal(t, "openid profile email", q.Get("scope"))
	require.Equal(t, "S256", q.Get("code_challenge_method"))
	require.Len(t, q.Get("code_challenge"), 43)
	require.Len(t, q.Get("state"), 43)
	require.Len(t, q.Get("nonce"), 43)
	require.NotEqual(t, q.Get("state"), q.Get("nonce"))
	require.True(t, fc.HttpOnly)
	require.True(t, fc.Secure)
	require.Equal(t, http.SameSiteLaxMode, fc.SameSite)
	require.Equal(t, "/auth/", fc.Path, "the flow cookie goes to the callback only")
	require.Equal(t, int(signin.FlowLifetime/time.Second), fc.MaxAge)
	require.NotContains(t, fc.Value, q.Get("code_challenge"), "the cookie keeps the verifier, not the challenge")

	resp := e.callback(e.callbackFor(loc, nil), fc)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body(resp))
	require.Equal(t, "/review/approvals/req_1?x=1", resp.Header.Get("Location"))
	sc := cookie(t, resp, "approval_session")
	require.NotNil(t, sc)
	require.True(t, sc.HttpOnly)
	require.True(t, sc.Secure)
	require.Equal(t, http.SameSiteLaxMode, sc.SameSite)
	require.Equal(t, "/", sc.Path)
	require.Equal(t, int(signin.DefaultSessionLifetime/time.Second), sc.MaxAge)
	gone := cookie(t, resp, "approval_session_flow")
	require.NotNil(t, gone, "the flow cookie is deleted")
	require.Negative(t, gone.MaxAge)
	require.Equal(t, "/auth/", gone.Path)

	who, err := e.identity(sc)
	require.NoError(t, err)
	require.Equal(t, "alice@example.com", who)
	s, err := e.o.Session(get("/", sc))
	require.NoError(t, err)
	require.Equal(t, []string{"finance", "ops"}, s.Groups)
	require.Equal(t, e.clock.Now().Add(signin.DefaultSessionLifetime).Unix(), s.Expires.Unix())
}

// TestSignInClaimsFromUserInfo: a provider that leaves the email out of
// the ID token (it issued an access token too) has it in user info; user
// info about another subject is refused.
func TestSignInClaimsFromUserInfo(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	resp := e.signIn("", func(id, ui map[string]any) {
		delete(id, "email")
		delete(id, "email_verified")
		ui["email"], ui["email_verified"] = "bob@example.com", true
		ui["sub"] = "u-alice"
	})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body(resp))
	who, err := e.identity(cookie(t, resp, "approval_session"))
	require.NoError(t, err)
	require.Equal(t, "bob@example.com", who)

	resp = e.signIn("", func(id, ui map[string]any) {
		delete(id, "email")
		ui["sub"], ui["email"], ui["email_verified"] = "u-mallory", "mallory@example.com", true
	})
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Nil(t, cookie(t, resp, "approval_session"))

	// The ID token's claims win over user info's.
	resp = e.signIn("", func(id, ui map[string]any) { ui["email"] = "mallory@example.com" })
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	who, err = e.identity(cookie(t, resp, "approval_session"))
	require.NoError(t, err)
	require.Equal(t, "alice@example.com", who)
}

// TestCallbackRefusesTokens: an ID token with the wrong nonce, audience or
// issuer, expired, signed by a key the provider does not publish, or
// issued to several audiences for another party signs nobody in.
func TestCallbackRefusesTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	cases := map[string]struct {
		shape  func(id, ui map[string]any)
		status int
	}{
		"wrong nonce":       {func(id, _ map[string]any) { id["nonce"] = "another-sign-in" }, http.StatusUnauthorized},
		"no nonce":          {func(id, _ map[string]any) { delete(id, "nonce") }, http.StatusUnauthorized},
		"wrong audience":    {func(id, _ map[string]any) { id["aud"] = "another-client" }, http.StatusUnauthorized},
		"wrong issuer":      {func(id, _ map[string]any) { id["iss"] = "https://evil.example" }, http.StatusUnauthorized},
		"expired":           {func(id, _ map[string]any) { id["exp"] = e.clock.Now().Add(-time.Minute).Unix() }, http.StatusUnauthorized},
		"azp of another":    {func(id, _ map[string]any) { id["aud"] = []string{clientID, "other"}; id["azp"] = "other" }, http.StatusUnauthorized},
		"email unverified":  {func(id, _ map[string]any) { id["email_verified"] = false }, http.StatusForbidden},
		"no email":          {func(id, _ map[string]any) { delete(id, "email") }, http.StatusForbidden},
		"invalid approver":  {func(id, _ map[string]any) { id["email"] = "  " }, http.StatusForbidden},
		"bad signature key": {nil, http.StatusUnauthorized},
	}
	for name, c := range cases {
		loc, fc := e.login("")
		q := e.callbackFor(loc, c.shape)
		if name == "bad signature key" {
			e.op.mu.Lock()
			a := e.op.codes[q.Get("code")]
			a.signWith = other
			e.op.codes[q.Get("code")] = a
			e.op.mu.Unlock()
		}
		resp := e.callback(q, fc)
		require.Equal(t, c.status, resp.StatusCode, name)
		require.Nil(t, cookie(t, resp, "approval_session"), name)
		require.Contains(t, body(resp), `id="sign-in"`, "%s: a way to try again", name)
	}
	// The same shapes with the right values sign in: the cases above
	// failed for their one difference.
	resp := e.signIn("", func(id, _ map[string]any) { id["aud"] = []string{clientID, "other"}; id["azp"] = clientID })
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body(resp))
}

// TestCallbackFlow: the callback belongs to the sign-in this browser
// started: a wrong state, no flow cookie, an expired or forged one, or a
// replay of a completed callback is refused before any code exchange.
func TestCallbackFlow(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)

	loc, fc := e.login("")
	q := e.callbackFor(loc, nil)
	wrong := url.Values{"code": q["code"], "state": {"not-the-state"}}
	require.Equal(t, http.StatusBadRequest, e.callback(wrong, fc).StatusCode, "wrong state")
	require.Equal(t, http.StatusBadRequest, e.callback(q).StatusCode, "no flow cookie")
	require.Equal(t, 0, e.op.exchangeCount(), "nothing was exchanged")

	// Another sign-in's flow cookie does not match this state either.
	_, fc2 := e.login("")
	require.Equal(t, http.StatusBadRequest, e.callback(q, fc2).StatusCode, "another sign-in's cookie")

	// The right pair signs in, once.
	resp := e.callback(q, fc)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body(resp))
	require.Equal(t, 1, e.op.exchangeCount())
	replay := e.callback(q, fc)
	require.Equal(t, http.StatusBadRequest, replay.StatusCode)
	require.Contains(t, body(replay), "already completed")
	require.Nil(t, cookie(t, replay, "approval_session"))
	require.Equal(t, 1, e.op.exchangeCount(), "a replay reaches no exchange")

	// A flow older than 10 minutes.
	loc, fc = e.login("")
	q = e.callbackFor(loc, nil)
	e.clock.Advance(signin.FlowLifetime + time.Second)
	require.Equal(t, http.StatusBadRequest, e.callback(q, fc).StatusCode, "expired flow")

	// A flow cookie with one byte changed.
	loc, fc = e.login("")
	q = e.callbackFor(loc, nil)
	forged := *fc
	forged.Value = flip(fc.Value, len(fc.Value)/2)
	require.Equal(t, http.StatusBadRequest, e.callback(q, &forged).StatusCode, "forged flow cookie")

	// The provider's refusal.
	loc, fc = e.login("")
	resp = e.callback(url.Values{"error": {"access_denied"}, "state": {loc.Query().Get("state")}}, fc)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.Contains(t, body(resp), "access_denied")

	// A session cookie is no flow cookie.
	sc := e.session()
	loc, _ = e.login("")
	q = e.callbackFor(loc, nil)
	require.Equal(t, http.StatusBadRequest, e.callback(q, &http.Cookie{Name: "approval_session_flow", Value: sc.Value}).StatusCode)
}

// flip changes the byte at i of a cookie value to another character of
// the same alphabet.
func flip(v string, i int) string {
	b := []byte(v)
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// TestReturnPath: only a same-site relative path is returned to; anything
// else lands on Config.Home.
func TestReturnPath(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	home := "/review/approvals?awaiting=me"
	for ret, want := range map[string]string{
		"":                              home,
		"/review/approvals/req_1":       "/review/approvals/req_1",
		"/review/approvals?status=open": "/review/approvals?status=open",
		"//evil.example":                home,
		"//evil.example/review":         home,
		"https://evil.example":          home,
		"https://evil.example/review":   home,
		`/\evil.example`:                home,
		`/review\..\`:                   home,
		"/\t/evil.example":              home,
		"/\n/evil.example":              home,
		"javascript:alert(1)":           home,
		"evil.example":                  home,
		"review/approvals":              home,
		"http:/evil.example":            home,
	} {
		resp := e.signIn(ret, nil)
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, ret)
		require.Equal(t, want, resp.Header.Get("Location"), "return %q", ret)
	}
	require.Equal(t, "/auth/login?return=%2Freview%2Fapprovals%3Fawaiting%3Dme", e.o.LoginURL("//evil.example"))
	require.Equal(t, "/auth/login?return=%2Freview", e.o.LoginURL("/review"))
}

// TestSessionCookie: Identity refuses a session cookie that was tampered
// with, is past its signed expiry (even if the browser kept it), was signed
// by an unknown key or by one rotated out; it accepts one signed by any
// current key.
func TestSessionCookie(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	sc := e.session()

	who, err := e.identity(nil)
	require.NoError(t, err, "no cookie: nobody, and no error")
	require.Empty(t, who)

	for _, i := range []int{0, 3, len(sc.Value) / 3, len(sc.Value) - 2} {
		bad := *sc
		bad.Value = flip(sc.Value, i)
		who, err := e.identity(&bad)
		require.ErrorIs(t, err, signin.ErrBadCookie, "byte %d", i)
		require.Empty(t, who)
	}
	for _, v := range []string{"", "v1", "v1.", "v1..", "v2." + sc.Value[3:], "garbage", sc.Value + ".x", strings.Repeat("v", 5000)} {
		who, err := e.identity(&http.Cookie{Name: "approval_session", Value: v})
		require.Empty(t, who, "%q", v)
		if v != "" {
			require.ErrorIs(t, err, signin.ErrBadCookie, "%q", v)
		}
	}

	// Expired: the browser may keep it, the server refuses it.
	e.clock.Advance(signin.DefaultSessionLifetime - time.Second)
	who, err = e.identity(sc)
	require.NoError(t, err)
	require.Equal(t, "alice@example.com", who)
	e.clock.Advance(time.Second)
	who, err = e.identity(sc)
	require.ErrorIs(t, err, signin.ErrExpired)
	require.Empty(t, who)
}

func TestSessionKeys(t *testing.T) {
	t.Parallel()
	old := newEnv(t, func(c *signin.Config) { c.SessionKeys = [][]byte{key(1)} })
	oldCookie := old.session()
	newFirst := newEnv(t, func(c *signin.Config) { c.SessionKeys = [][]byte{key(2), key(1)} })
	newFirst.clock.Set(old.clock.Now())
	rotatedOut := newEnv(t, func(c *signin.Config) { c.SessionKeys = [][]byte{key(2)} })
	rotatedOut.clock.Set(old.clock.Now())
	unknown := newEnv(t, func(c *signin.Config) { c.SessionKeys = [][]byte{key(3)} })
	unknown.clock.Set(old.clock.Now())

	who, err := newFirst.identity(oldCookie)
	require.NoError(t, err, "a key rotated in second still verifies")
	require.Equal(t, "alice@example.com", who)
	_, err = rotatedOut.identity(oldCookie)
	require.ErrorIs(t, err, signin.ErrBadCookie, "a key rotated out no longer verifies")
	_, err = unknown.identity(oldCookie)
	require.ErrorIs(t, err, signin.ErrBadCookie, "an unknown key")

	// The first key signs: a new session verifies without the old key.
	newCookie := newFirst.session()
	who, err = rotatedOut.identity(newCookie)
	require.NoError(t, err)
	require.Equal(t, "alice@example.com", who)
	_, err = old.identity(newCookie)
	require.ErrorIs(t, err, signin.ErrBadCookie)
}

// TestLogout: the GET shows who is signed in and a Sign out button; a
// cross-origin POST is refused and changes nothing; a same-origin POST
// clears the cookie and, when asked, ends the provider's session too.
func TestLogout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	sc := e.session()

	page := serve(e.o, get("/auth/logout", sc))
	require.Equal(t, http.StatusOK, page.StatusCode)
	html := body(page)
	require.Contains(t, html, "You are signed in as alice@example.com.")
	require.Contains(t, html, `<form method="post" action="logout"`)
	require.Contains(t, html, `<a id="back" href="/review/approvals?awaiting=me">`)
	require.Contains(t, page.Header.Get("Content-Security-Policy"), "form-action 'self'")
	require.Nil(t, cookie(t, page, "approval_session"), "a GET signs nobody out")

	post := func(o http.Handler, site string) *http.Response {
		r := httptest.NewRequest(http.MethodPost, appURL+"/auth/logout", nil)
		r.AddCookie(sc)
		r.Header.Set("Sec-Fetch-Site", site)
		if site == "cross-site" {
			r.Header.Set("Origin", "https://evil.example")
		} else {
			r.Header.Set("Origin", appURL)
		}
		return serve(o, r)
	}
	resp := post(e.o, "cross-site")
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.Nil(t, cookie(t, resp, "approval_session"))

	resp = post(e.o, "same-origin")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/auth/logout", resp.Header.Get("Location"))
	cleared := cookie(t, resp, "approval_session")
	require.NotNil(t, cleared)
	require.Negative(t, cleared.MaxAge)
	require.Empty(t, cleared.Value)
	require.Equal(t, "/", cleared.Path)
	require.Contains(t, body(serve(e.o, get("/auth/logout"))), "You are not signed in.")

	// Ending the provider's session too.
	ep := newEnv(t, func(c *signin.Config) {
		c.EndProviderSession = true
		c.PostLogoutRedirectURL = appURL + "/signed-out"
	})
	sc = ep.session()
	resp = post(ep.o, "same-origin")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	require.Equal(t, ep.op.srv.URL+"/end_session", loc.Scheme+"://"+loc.Host+loc.Path)
	require.Equal(t, clientID, loc.Query().Get("client_id"))
	require.Equal(t, appURL+"/signed-out", loc.Query().Get("post_logout_redirect_uri"))
	require.Negative(t, cookie(t, resp, "approval_session").MaxAge)
	csp := serve(ep.o, get("/auth/logout", sc)).Header.Get("Content-Security-Policy")
	require.Contains(t, csp, "form-action 'self' "+ep.op.srv.URL+" "+appURL, "the form may redirect to the provider")

	require.Equal(t, http.StatusMethodNotAllowed, serve(e.o, httptest.NewRequest(http.MethodPost, appURL+"/auth/login", nil)).StatusCode)
	require.Equal(t, http.StatusNotFound, serve(e.o, get("/auth/other")).StatusCode)
}

// TestStripPrefix: the routes answer with the handler mounted either way.
func TestStripPrefix(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	mux := http.NewServeMux()
	mux.Handle("/auth/", http.StripPrefix("/auth", e.o))
	resp := serve(mux, get("/auth/login"))
	require.Equal(t, http.StatusFound, resp.StatusCode)
	require.Equal(t, "/auth/", cookie(t, resp, "approval_session_flow").Path)
}

// TestRequireLogin: a browser visiting a page without a session is sent to
// sign in with the page to come back to; API calls, link pages and signed-in
// visits reach the handler.
func TestRequireLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	sc := e.session()
	reached := 0
	h := e.o.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached++
		w.WriteHeader(http.StatusUnauthorized)
	}))
	nav := func(method, path string, c *http.Cookie, hdr ...string) *http.Response {
		r := httptest.NewRequest(method, appURL+path, nil)
		if c != nil {
			r.AddCookie(c)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		return serve(h, r)
	}
	resp := nav(http.MethodGet, "/review/approvals?awaiting=me", nil, "Sec-Fetch-Mode", "navigate", "Accept", "text/html")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/auth/login?return=%2Freview%2Fapprovals%3Fawaiting%3Dme", resp.Header.Get("Location"))
	resp = nav(http.MethodGet, "/review/approvals", nil, "Accept", "text/html,application/xhtml+xml")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, "a browser without Fetch metadata")
	expired := *sc
	expired.Value = flip(sc.Value, 5)
	resp = nav(http.MethodGet, "/review/approvals", &expired, "Sec-Fetch-Mode", "navigate")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, "a bad cookie signs in again")
	require.Equal(t, 0, reached)

	for name, resp := range map[string]*http.Response{
		"api call":       nav(http.MethodGet, "/review/api/approvals", nil, "Accept", "application/json"),
		"fetch":          nav(http.MethodGet, "/review/approvals", nil, "Sec-Fetch-Mode", "cors", "Accept", "text/html"),
		"form post":      nav(http.MethodPost, "/review/approvals/x/decide", nil, "Sec-Fetch-Mode", "navigate"),
		"link page":      nav(http.MethodGet, "/review/approvals/req_1?verdict=approve&token=abc", nil, "Sec-Fetch-Mode", "navigate"),
		"signed in page": nav(http.MethodGet, "/review/approvals", sc, "Sec-Fetch-Mode", "navigate"),
	} {
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, name)
	}
	require.Equal(t, 5, reached)
}

// TestSubject: a Subject of the host's maps the claims; one that fails or
// panics signs nobody in.
func TestSubject(t *testing.T) {
	t.Parallel()
	byName := newEnv(t, func(c *signin.Config) {
		c.Subject = func(cl signin.Claims) (string, error) { return cl.String("preferred_username"), nil }
	})
	resp := byName.signIn("", func(id, _ map[string]any) { id["preferred_username"] = "Alice" })
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body(resp))
	who, err := byName.identity(cookie(t, resp, "approval_session"))
	require.NoError(t, err)
	require.Equal(t, "alice", who, "the approver ID is canonical")
	resp = byName.signIn("", nil)
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "no preferred_username: no ID")

	panics := newEnv(t, func(c *signin.Config) {
		c.Subject = func(signin.Claims) (string, error) { panic("boom") }
	})
	resp = panics.signIn("", nil)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.Nil(t, cookie(t, resp, "approval_session"))
}

func TestClaims(t *testing.T) {
	t.Parallel()
	c := signin.Claims{"a": "true", "b": true, "c": "x", "d": []any{"g1", "g2"}, "e": []any{"g1", 2}, "f": 3.0}
	require.True(t, c.Bool("a"))
	require.True(t, c.Bool("b"))
	require.False(t, c.Bool("c"))
	require.False(t, c.Bool("zz"))
	require.Equal(t, []string{"x"}, c.Strings("c"))
	require.Equal(t, []string{"g1", "g2"}, c.Strings("d"))
	require.Nil(t, c.Strings("e"), "a list with a non-string is no list of groups")
	require.Nil(t, c.Strings("f"))
	_, err := signin.EmailSubject(signin.Claims{"email": "a@example.com", "email_verified": "false"})
	require.ErrorIs(t, err, signin.ErrSubject)
	who, err := signin.EmailSubject(signin.Claims{"email": "a@example.com", "email_verified": "true"})
	require.NoError(t, err)
	require.Equal(t, "a@example.com", who)
}

// TestConfig: New refuses a configuration that would be unsafe or cannot
// work, and says how to fix it.
func TestConfig(t *testing.T) {
	t.Parallel()
	op := newFakeOP(t, time.Now)
	good := func() signin.Config {
		return signin.Config{Issuer: op.srv.URL, ClientID: clientID, RedirectURL: appURL + "/auth/callback",
			SessionKeys: [][]byte{key(0)}, HTTPClient: op.srv.Client()}
	}
	_, err := signin.New(context.Background(), good())
	require.NoError(t, err)
	for want, mod := range map[string]func(*signin.Config){
		"Issuer is empty":           func(c *signin.Config) { c.Issuer = "" },
		"ClientID is empty":         func(c *signin.Config) { c.ClientID = "" },
		"SessionKeys is empty":      func(c *signin.Config) { c.SessionKeys = nil },
		"fewer than 32":             func(c *signin.Config) { c.SessionKeys = [][]byte{key(0), []byte("short")} },
		"must end in /callback":     func(c *signin.Config) { c.RedirectURL = appURL + "/auth/cb" },
		"not an absolute URL":       func(c *signin.Config) { c.RedirectURL = "/auth/callback" },
		"is not https":              func(c *signin.Config) { c.RedirectURL = "http://app.example/auth/callback" },
		"for development on a loop": func(c *signin.Config) { c.InsecureCookies = true },
		"not a path on this site":   func(c *signin.Config) { c.Home = "https://evil.example/" },
		"discovery":                 func(c *signin.Config) { c.Issuer = op.srv.URL + "/other" },
	} {
		c := good()
		mod(&c)
		_, err := signin.New(context.Background(), c)
		require.ErrorContains(t, err, want)
	}
	c := good()
	c.RedirectURL, c.InsecureCookies = "http://127.0.0.1:8080/auth/callback", true
	_, err = signin.New(context.Background(), c)
	require.NoError(t, err, "http on loopback for development")
}

// TestTooManyGroups: groups that would not fit in a cookie refuse the
// sign-in, saying why, rather than set a cookie the browser drops.
func TestTooManyGroups(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	resp := e.signIn("", func(id, _ map[string]any) {
		var groups []string
		for i := range 200 {
			groups = append(groups, strings.Repeat("g", 20)+string(rune('a'+i%26)))
		}
		id["groups"] = groups
	})
	require.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	require.Contains(t, body(resp), "would not fit in a cookie")
	require.Nil(t, cookie(t, resp, "approval_session"))
}
