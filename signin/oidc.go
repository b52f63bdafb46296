package signin

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/signoff/approval"
)

// OIDC signs reviewers in with an OpenID Connect provider and keeps them
// signed in with a cookie. It is an http.Handler serving the sign-in routes
// (mount it on the directory of Config.RedirectURL's path, with or without
// http.StripPrefix):
//
//	GET  .../login     start a sign-in; ?return= a path on this site to come back to
//	GET  .../callback  the provider's answer: the session cookie, then 303 to the return path
//	GET  .../logout    who is signed in, and a Sign out button
//	POST .../logout    end the session (same-origin only), then 303 on
//
// Identity plugs into approvalhttp.Options.Identity, and RequireLogin
// sends a browser with no session to sign in. An OIDC is safe for
// concurrent use; make it with New.
type OIDC struct {
	cfg        Config
	base       string // path of the routes' directory, ending in "/"
	codec      codec
	oauth      oauth2.Config
	verifier   *oidc.IDTokenVerifier
	provider   *oidc.Provider
	endSession string // the provider's end_session_endpoint, or ""
	csp        string
	cop        *http.CrossOriginProtection
	log        *slog.Logger

	mu   sync.Mutex
	used map[string]time.Time // states of completed sign-ins -> their flow's expiry
}

// New reads the provider's discovery document at cfg.Issuer (with ctx and
// cfg.HTTPClient) and returns the OIDC for cfg. It reports an error if a
// field of cfg is invalid or discovery fails.
func New(ctx context.Context, cfg Config) (*OIDC, error) {
	base, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ctx = oidc.ClientContext(ctx, cfg.HTTPClient)
	p, err := oidc.NewProvider(ctx, cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("signin: discovery at %s: %w", cfg.Issuer, err)
	}
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := p.Claims(&meta); err != nil {
		return nil, fmt.Errorf("signin: discovery at %s: %w", cfg.Issuer, err)
	}
	o := &OIDC{
		cfg:      cfg,
		base:     base,
		codec:    codec{keys: cfg.SessionKeys},
		provider: p,
		oauth: oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			RedirectURL:  cfg.RedirectURL,
			Endpoint:     p.Endpoint(),
			Scopes:       cfg.Scopes,
		},
		verifier: p.Verifier(&oidc.Config{ClientID: cfg.ClientID, Now: cfg.Now}),
		cop:      http.NewCrossOriginProtection(),
		log:      cfg.Logger,
		used:     map[string]time.Time{},
	}
	formAction := "'self'"
	if e, err := url.Parse(meta.EndSession); err == nil && e.IsAbs() && (e.Scheme == "https" || cfg.InsecureCookies) {
		o.endSession = meta.EndSession
		formAction += " " + e.Scheme + "://" + e.Host
	}
	if p, err := url.Parse(cfg.PostLogoutRedirectURL); err == nil && p.IsAbs() {
		formAction += " " + p.Scheme + "://" + p.Host
	}
	o.csp = "default-src 'none'; form-action " + formAction + "; frame-ancestors 'none'; base-uri 'none'"
	o.cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.page(w, http.StatusForbidden, page{Title: "Cross-origin request refused", Message: "Sign out from this site's own page."})
	}))
	return o, nil
}

// LoginURL returns the path of the sign-in route with returnTo (a path on
// this site; Config.Home if it is not one) to come back to.
func (o *OIDC) LoginURL(returnTo string) string {
	return o.base + "login?return=" + url.QueryEscape(safeReturn(returnTo, o.cfg.Home))
}

// LogoutURL returns the path of the sign-out route (its GET shows a Sign
// out button; its POST signs out).
func (o *OIDC) LogoutURL() string { return o.base + "logout" }

// ServeHTTP serves the sign-in routes.
func (o *OIDC) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", o.csp)
	h.Set("Referrer-Policy", "no-referrer") // the callback's URL carries the code
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	route := strings.TrimPrefix(r.URL.Path, o.base)
	if route == r.URL.Path { // mounted with http.StripPrefix
		route = strings.TrimPrefix(r.URL.Path, "/")
	}
	switch {
	case route == "login" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		o.login(w, r)
	case route == "callback" && r.Method == http.MethodGet:
		o.callback(w, r)
	case route == "logout" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		o.logoutPage(w, r)
	case route == "logout" && r.Method == http.MethodPost:
		o.cop.Handler(http.HandlerFunc(o.logout)).ServeHTTP(w, r)
	case route == "login" || route == "callback" || route == "logout":
		o.page(w, http.StatusMethodNotAllowed, page{Title: "Method not allowed"})
	default:
		o.page(w, http.StatusNotFound, page{Title: "Not found"})
	}
}

// flow is the content of the sign-in cookie: what the callback checks the
// provider's answer against, and where to go after.
type flow struct {
	State    string `json:"state"`
	Nonce    string `json:"nonce"`
	Verifier string `json:"pkce"`
	Return   string `json:"return"`
	Issued   int64  `json:"iat"`
	Expires  int64  `json:"exp"`
}

func random() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (o *OIDC) flowCookie() string { return o.cfg.CookieName + "_flow" }

func (o *OIDC) setCookie(w http.ResponseWriter, name, value, path string, maxAge time.Duration) {
	c := &http.Cookie{
		Name: name, Value: value, Path: path,
		HttpOnly: true, Secure: !o.cfg.InsecureCookies, SameSite: http.SameSiteLaxMode,
	}
	if maxAge > 0 {
		c.MaxAge = int(maxAge / time.Second)
		c.Expires = o.cfg.Now().Add(maxAge)
	} else {
		c.MaxAge = -1
		c.Expires = time.Unix(1, 0)
	}
	http.SetCookie(w, c)
}

// login starts a sign-in: a flow cookie with a fresh state, nonce and PKCE
// verifier, then the redirect to the provider.
func (o *OIDC) login(w http.ResponseWriter, r *http.Request) {
	now := o.cfg.Now()
	f := flow{
		State: random(), Nonce: random(), Verifier: oauth2.GenerateVerifier(),
		Return: safeReturn(r.URL.Query().Get("return"), o.cfg.Home),
		Issued: now.Unix(), Expires: now.Add(FlowLifetime).Unix(),
	}
	v, err := o.codec.seal(purposeFlow, f)
	if err != nil {
		o.log.Error("signin: sealing the sign-in cookie", "err", err)
		o.page(w, http.StatusInternalServerError, page{Title: "Sign-in failed", Message: "The server could not start a sign-in; it logged why."})
		return
	}
	// The flow cookie goes only to the callback's directory.
	o.setCookie(w, o.flowCookie(), v, o.base, FlowLifetime)
	u := o.oauth.AuthCodeURL(f.State, oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier))
	http.Redirect(w, r, u, http.StatusFound)
}

// claimState records a completed sign-in's state until its flow expires,
// and reports whether it was already recorded: a flow cookie completes one
// sign-in, even if a browser (or a thief) kept a copy of it. With several
// replicas, each keeps its own record; the provider's single-use code is
// the backstop across them.
func (o *OIDC) claimState(state string, exp time.Time, now time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for s, e := range o.used {
		if !now.Before(e) {
			delete(o.used, s)
		}
	}
	if _, ok := o.used[state]; ok {
		return false
	}
	o.used[state] = exp
	return true
}

// callbackError is a refused callback: the status and message shown, and
// the cause logged.
type callbackError struct {
	status int
	msg    string
	err    error
}

func (e *callbackError) Error() string { return e.err.Error() }
func (e *callbackError) Unwrap() error { return e.err }

func refuse(status int, msg string, err error) error { return &callbackError{status, msg, err} }

func (o *OIDC) callback(w http.ResponseWriter, r *http.Request) {
	ret, err := o.complete(w, r)
	if err != nil {
		var ce *callbackError
		if !errors.As(err, &ce) {
			ce = &callbackError{http.StatusInternalServerError, "The sign-in failed; the server logged why.", err}
		}
		o.log.Warn("signin: sign-in refused", "err", err)
		o.page(w, ce.status, page{Title: "Sign-in failed", Message: ce.msg, Link: o.LoginURL(""), LinkText: "Sign in again"})
		return
	}
	http.Redirect(w, r, ret, http.StatusSeeOther)
}

// complete checks the provider's answer against the flow cookie, exchanges
// the code, verifies the ID token, sets the session cookie and returns
// where to go.
func (o *OIDC) complete(w http.ResponseWriter, r *http.Request) (string, error) {
	now := o.cfg.Now()
	c, err := r.Cookie(o.flowCookie())
	if err != nil {
		return "", refuse(http.StatusBadRequest, "This sign-in was not started here, or took longer than 10 minutes.", fmt.Errorf("%w: no flow cookie", ErrFlow))
	}
	// Single use: whatever happens next, the browser forgets the flow.
	o.setCookie(w, o.flowCookie(), "", o.base, 0)
	var f flow
	if err := o.codec.open(purposeFlow, c.Value, &f); err != nil {
		return "", refuse(http.StatusBadRequest, "This sign-in was not started here.", fmt.Errorf("%w: %w", ErrFlow, err))
	}
	if err := expiry(now, f.Issued, f.Expires); err != nil {
		return "", refuse(http.StatusBadRequest, "This sign-in took longer than 10 minutes.", fmt.Errorf("%w: %w", ErrFlow, err))
	}
	q := r.URL.Query()
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(f.State)) != 1 || f.State == "" {
		return "", refuse(http.StatusBadRequest, "This answer belongs to another sign-in.", fmt.Errorf("%w: state mismatch", ErrFlow))
	}
	if !o.claimState(f.State, time.Unix(f.Expires, 0), now) {
		return "", refuse(http.StatusBadRequest, "This sign-in was already completed.", fmt.Errorf("%w: flow already completed", ErrFlow))
	}
	if e := q.Get("error"); e != "" {
		return "", refuse(http.StatusForbidden, "The provider refused the sign-in ("+e+").", fmt.Errorf("provider answered %s: %s", e, q.Get("error_description")))
	}
	code := q.Get("code")
	if code == "" {
		return "", refuse(http.StatusBadRequest, "The provider's answer has no code.", errors.New("callback without code"))
	}
	ctx := oidc.ClientContext(r.Context(), o.cfg.HTTPClient)
	tok, err := o.oauth.Exchange(ctx, code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		return "", refuse(http.StatusBadGateway, "The provider did not accept the sign-in's code.", fmt.Errorf("code exchange: %w", err))
	}
	claims, err := o.verify(ctx, tok, f.Nonce)
	if err != nil {
		return "", refuse(http.StatusUnauthorized, "The provider's answer did not verify.", err)
	}
	who, err := o.subject(claims)
	if err != nil {
		return "", refuse(http.StatusForbidden, "Your account cannot review approvals here: "+err.Error(), err)
	}
	s := session{Approver: who, Issued: now.Unix(), Expires: now.Add(o.cfg.SessionLifetime).Unix()}
	if o.cfg.GroupsClaim != "" {
		s.Groups = claims.Strings(o.cfg.GroupsClaim)
		if o.cfg.Groups != nil {
			o.cfg.Groups.Learn(who, s.Groups)
		}
	}
	v, err := o.codec.seal(purposeSession, s)
	if err != nil {
		return "", refuse(http.StatusInternalServerError, "Your session would not fit in a cookie; the server logged why.", err)
	}
	o.setCookie(w, o.cfg.CookieName, v, o.cfg.CookiePath, o.cfg.SessionLifetime)
	o.log.Info("signin: signed in", "approver", who)
	return f.Return, nil
}

// verify checks the ID token (signature, issuer, audience, expiry by
// go-oidc; the authorized party and nonce here) and returns its claims,
// completed by the provider's user info.
func (o *OIDC) verify(ctx context.Context, tok *oauth2.Token, nonce string) (Claims, error) {
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return nil, fmt.Errorf("%w: the token response has no id_token", ErrToken)
	}
	idt, err := o.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrToken, err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return nil, fmt.Errorf("%w: nonce does not match this sign-in", ErrToken)
	}
	claims := Claims{}
	if err := idt.Claims(&claims); err != nil {
		return nil, fmt.Errorf("%w: claims: %w", ErrToken, err)
	}
	// With several audiences, the token must have been issued to us
	// (OpenID Connect Core 3.1.3.7, steps 4 and 5).
	if len(idt.Audience) > 1 && claims.String("azp") != o.cfg.ClientID {
		return nil, fmt.Errorf("%w: several audiences and azp %q is not the client", ErrToken, claims.String("azp"))
	}
	if o.provider.UserInfoEndpoint() == "" {
		return claims, nil
	}
	// Providers put the scopes' claims (email, groups) in user info rather
	// than the ID token when they issue an access token too (Core 5.4).
	ui, err := o.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		return nil, fmt.Errorf("%w: user info: %w", ErrToken, err)
	}
	if ui.Subject != idt.Subject {
		return nil, fmt.Errorf("%w: user info is about %q, the ID token about %q", ErrToken, ui.Subject, idt.Subject)
	}
	extra := Claims{}
	if err := ui.Claims(&extra); err != nil {
		return nil, fmt.Errorf("%w: user info claims: %w", ErrToken, err)
	}
	for k, v := range extra {
		if _, ok := claims[k]; !ok {
			claims[k] = v
		}
	}
	return claims, nil
}

// subject runs Config.Subject, recovering a panic, and returns the
// canonical approver ID.
func (o *OIDC) subject(c Claims) (who string, err error) {
	defer func() {
		if p := recover(); p != nil {
			who, err = "", fmt.Errorf("%w: Config.Subject panicked: %v", ErrSubject, p)
		}
	}()
	raw, err := o.cfg.Subject(c)
	if err != nil {
		if !errors.Is(err, ErrSubject) {
			err = fmt.Errorf("%w: %w", ErrSubject, err)
		}
		return "", err
	}
	if raw == "" {
		return "", fmt.Errorf("%w: Config.Subject returned no ID", ErrSubject)
	}
	id, err := approval.CanonicalID(raw)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrSubject, err)
	}
	return id, nil
}

func (o *OIDC) logoutPage(w http.ResponseWriter, r *http.Request) {
	s, err := o.Session(r)
	if err != nil {
		o.page(w, http.StatusOK, page{Title: "Signed out", Message: "You are not signed in.", Link: o.LoginURL(""), LinkText: "Sign in"})
		return
	}
	o.page(w, http.StatusOK, page{Title: "Sign out", Message: "You are signed in as " + s.Approver + ".", SignOut: true, Back: o.cfg.Home})
}

// logout ends the session (behind cross-origin protection) and sends the
// browser on.
func (o *OIDC) logout(w http.ResponseWriter, r *http.Request) {
	if s, err := o.Session(r); err == nil {
		o.log.Info("signin: signed out", "approver", s.Approver)
	}
	o.setCookie(w, o.cfg.CookieName, "", o.cfg.CookiePath, 0)
	switch {
	case o.cfg.EndProviderSession && o.endSession != "":
		u, _ := url.Parse(o.endSession) // parsed in New
		q := u.Query()
		q.Set("client_id", o.cfg.ClientID)
		if o.cfg.PostLogoutRedirectURL != "" {
			q.Set("post_logout_redirect_uri", o.cfg.PostLogoutRedirectURL)
		}
		u.RawQuery = q.Encode()
		http.Redirect(w, r, u.String(), http.StatusSeeOther)
	case o.cfg.PostLogoutRedirectURL != "":
		http.Redirect(w, r, o.cfg.PostLogoutRedirectURL, http.StatusSeeOther)
	default:
		http.Redirect(w, r, o.LogoutURL(), http.StatusSeeOther)
	}
}
