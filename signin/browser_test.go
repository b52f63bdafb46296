package signin_test

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"golang.org/x/text/language"

	"github.com/signoff/approval"
	"github.com/signoff/approval/approvalhttp"
	"github.com/signoff/approval/internal/browsertest"
	"github.com/signoff/approval/memstore"
	"github.com/signoff/approval/signin"
)

// browser starts headless Chromium for t, or skips without one (see
// internal/browsertest).
func browser(t *testing.T) context.Context {
	t.Helper()
	return browsertest.Start(t, 1280, 800)
}

// users is the provider's user store: alice, with a verified address.
type users map[string]*storage.User

func (u users) GetUserByID(id string) *storage.User { return u[id] }
func (u users) GetUserByUsername(name string) *storage.User {
	for _, x := range u {
		if x.Username == name {
			return x
		}
	}
	return nil
}
func (u users) ExampleClientID() string { return "service" }

// provider starts a real OpenID provider (zitadel's, with its in-memory
// storage and login form) on a test server, with appURL's callback
// registered for the client "approvals" (secret "secret").
func provider(t *testing.T, appURL string) *httptest.Server {
	t.Helper()
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	store := storage.NewStorageWithClients(users{
		"u1": {ID: "u1", Username: "alice", Password: "correct horse", FirstName: "Alice", LastName: "Example",
			Email: "alice@example.com", EmailVerified: true, PreferredLanguage: language.English},
	}, map[string]*storage.Client{
		"approvals": storage.WebClient("approvals", "secret", appURL+"/auth/callback"),
	})
	h = exampleop.SetupServer(srv.URL, store, nil, false)
	return srv
}

// TestBrowserSignIn: a reviewer opens their inbox, signs in at the
// provider's form, lands back on the inbox, approves a request as
// themselves, signs out, and is asked to sign in again.
func TestBrowserSignIn(t *testing.T) {
	ctx := browser(t)
	shots := browsertest.ScreenshotDir(t)

	mux := http.NewServeMux()
	app := httptest.NewServer(mux)
	t.Cleanup(app.Close)
	idp := provider(t, app.URL)

	_, priv, err := approval.GenerateKeys()
	require.NoError(t, err)
	gate, err := approval.New(approval.Config{
		Store:      memstore.New(),
		SigningKey: priv,
		BaseURL:    app.URL + "/review",
		Directory:  approval.StaticDirectory{Groups: map[string][]string{"finance": {"alice@example.com", "bob@example.com"}}},
		Logger:     slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = gate.Close(context.Background()) })
	require.NoError(t, gate.SetPolicy("high_spend", approval.Policy{
		Match:             approval.CostAtLeast(1000, "USD"),
		Approvers:         []approval.Approver{approval.Group("finance")},
		RequiredApprovals: 1,
	}))
	res, err := gate.Guard(ctx, approval.Action{
		Name: "wire-transfer", RequestedBy: "dave@example.com", Message: "Q4 settlement",
		Cost:    &approval.Cost{Amount: 125000, Currency: "USD"},
		Payload: []byte(`{"to":"ACME GmbH","amount":125000}`),
	})
	require.NoError(t, err)
	require.Equal(t, approval.OutcomePending, res.Status)

	sessionKey := make([]byte, 32)
	_, _ = rand.Read(sessionKey)
	o, err := signin.New(ctx, signin.Config{
		Issuer:          idp.URL,
		ClientID:        "approvals",
		ClientSecret:    "secret",
		RedirectURL:     app.URL + "/auth/callback",
		SessionKeys:     [][]byte{sessionKey},
		Home:            "/review/approvals?awaiting=me",
		InsecureCookies: true, // http://127.0.0.1
		Logger:          slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	h, err := approvalhttp.New(gate, approvalhttp.Options{
		Identity: o.Identity,
		SignIn:   o.LoginURL(""),
		SignOut:  o.LogoutURL(),
		Logger:   slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	mux.Handle("/auth/", o)
	mux.Handle("/review/", o.RequireLogin(http.StripPrefix("/review", h)))

	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		require.NoError(t, err, sel)
		return strings.Join(strings.Fields(v), " ")
	}
	location := func() string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Location())
		require.NoError(t, err)
		return v
	}
	attr := func(sel, name string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(sel), name))
		require.NoError(t, err, sel)
		return v.Value
	}
	// browserCookies returns the cookies the browser would send to the
	// review pages.
	browserCookies := func() []*network.Cookie {
		t.Helper()
		res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{app.URL + "/review/approvals"}})
		require.NoError(t, err)
		return res.Cookies
	}
	// apiStatus is the status of the inbox in the API, asked with jar.
	apiStatus := func(jar []*network.Cookie) int {
		t.Helper()
		r, err := http.NewRequestWithContext(ctx, http.MethodGet, app.URL+"/review/api/approvals?awaiting=me", nil)
		require.NoError(t, err)
		for _, c := range jar {
			r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		}
		resp, err := http.DefaultClient.Do(r)
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	signInForm := func(password string) {
		t.Helper()
		require.NoError(t, chromedp.Do(ctx,
			chromedp.WaitVisible(chromedp.CSS("#username")),
			chromedp.SendKeys(chromedp.CSS("#username"), "alice"),
			chromedp.SendKeys(chromedp.CSS("#password"), password),
			chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		))
	}

	// 1. Alice opens her inbox and is sent to the provider's form.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(app.URL+"/review/approvals?awaiting=me"),
		chromedp.WaitVisible(chromedp.CSS("#username"))))
	require.True(t, strings.HasPrefix(location(), idp.URL+"/login/username?"), location())

	// A wrong password keeps her there.
	signInForm("wrong")
	require.Eventually(t, func() bool {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!document.querySelector("form") && document.querySelector("form").innerText.includes("username or password wrong")`))
		return err == nil && v
	}, 10*time.Second, 20*time.Millisecond, "the provider refuses a wrong password")
	require.True(t, strings.HasPrefix(location(), idp.URL+"/login/username"), location())
	_, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("username").value = ""; document.getElementById("password").value = ""; true`))
	require.NoError(t, err)

	// 2. She signs in and is back at her inbox.
	signInForm("correct horse")
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("#queue"))))
	require.Equal(t, app.URL+"/review/approvals?awaiting=me", location())
	require.Equal(t, "true", attr("#row-"+res.RequestID, "data-mine"))
	require.Contains(t, text("#row-"+res.RequestID), "125,000.00 USD")
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(shots, "signin-1-inbox.png"), shot, 0o644))

	// Her session cookie is HttpOnly (no script reads it) and Lax; with
	// it, the API answers her inbox.
	cookieVisible, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.cookie.includes("approval_session")`))
	require.NoError(t, err)
	require.False(t, cookieVisible)
	jar := browserCookies()
	require.Len(t, jar, 1, "the flow cookie is gone, the session cookie is there")
	require.Equal(t, "approval_session", jar[0].Name)
	require.True(t, jar[0].HTTPOnly)
	require.Equal(t, network.CookieSameSiteLax, jar[0].SameSite)
	require.Equal(t, http.StatusOK, apiStatus(jar))

	// 3. She opens the request and approves it: the vote is hers.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("#row-"+res.RequestID+" a")),
		chromedp.WaitVisible(chromedp.CSS("#approve")),
		chromedp.SendKeys(chromedp.CSS("#reason"), "invoice checked"),
		chromedp.Click(chromedp.CSS("#approve")),
		chromedp.WaitVisible(chromedp.CSS("#flash"))))
	require.Equal(t, "Your approval was recorded.", text("#flash"))
	require.Equal(t, "approved", attr("#status", "data-status"))
	got, err := gate.Get(ctx, res.RequestID)
	require.NoError(t, err)
	require.Equal(t, approval.StatusApproved, got.Status)
	require.Len(t, got.Votes, 1)
	require.Equal(t, "alice@example.com", got.Votes[0].Approver)
	require.Equal(t, "invoice checked", got.Votes[0].Reason)
	shot, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(shots, "signin-2-approved.png"), shot, 0o644))

	// 4. She signs out, from the link beside her name.
	require.Equal(t, "alice@example.com", text("#viewer"))
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("#sign-out-link")),
		chromedp.WaitVisible(chromedp.CSS("#sign-out"))))
	require.Equal(t, app.URL+"/auth/logout", location())
	shot, err = chromedp.Run(ctx, chromedp.CaptureScreenshot())
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(shots, "signin-3-sign-out.png"), shot, 0o644))
	require.Equal(t, "You are signed in as alice@example.com.", text("#message"))
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("#sign-out")),
		chromedp.WaitVisible(chromedp.CSS("#sign-in"))))
	require.Equal(t, "You are not signed in.", text("#message"))

	// 5. The browser holds no session: with what it has, the API answers
	// 401, and the inbox sends her to sign in again.
	require.Empty(t, browserCookies())
	require.Equal(t, http.StatusUnauthorized, apiStatus(browserCookies()))
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(app.URL+"/review/approvals?awaiting=me"),
		chromedp.WaitVisible(chromedp.CSS("#username"))))
	require.True(t, strings.HasPrefix(location(), idp.URL+"/login/username?"), location())

	// 6. Signing in from the signed-out page's link lands on the inbox,
	// Config.Home.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(app.URL+"/auth/logout"),
		chromedp.WaitVisible(chromedp.CSS("#sign-in")),
		chromedp.Click(chromedp.CSS("#sign-in"))))
	signInForm("correct horse")
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("#empty"))))
	require.Equal(t, app.URL+"/review/approvals?awaiting=me", location())
	require.Equal(t, "No requests match.", text("#empty"), "the request she approved awaits her no more")
}
