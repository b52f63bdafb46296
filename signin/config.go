package signin

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// Config configures OIDC. Issuer, ClientID, RedirectURL and SessionKeys are
// required; every other field has a default.
type Config struct {
	// Issuer is the provider's issuer URL ("https://accounts.example.com",
	// "https://login.microsoftonline.com/TENANT/v2.0"). New reads its
	// discovery document (Issuer + "/.well-known/openid-configuration"),
	// whose issuer must be exactly this string, and every ID token's iss
	// must be too. Required.
	Issuer string
	// ClientID is this application's client ID at the provider; every ID
	// token's aud must contain it. Required.
	ClientID string
	// ClientSecret is the client's secret, for a confidential client. PKCE
	// is used either way. Defaults to "" (a public client).
	ClientSecret string
	// RedirectURL is the absolute URL of the callback, registered at the
	// provider as a redirect URI: "https://ops.example.com/auth/callback".
	// Its path must end in "/callback"; the handler's other routes are its
	// siblings (".../login", ".../logout"), so mount the handler on the
	// directory of that path. It must be https, unless InsecureCookies is
	// set for a loopback host. Required.
	RedirectURL string
	// Scopes are the scopes asked for; "openid" is always asked for.
	// Defaults to openid, profile and email.
	Scopes []string
	// Subject maps the claims of the signed-in person (those of the ID
	// token, and the provider's user info for the claims the ID token
	// leaves out) to their approver ID, the name policies and the
	// Directory use. An error or "" refuses the sign-in (403); so does a
	// panic. Defaults to EmailSubject: the email claim, when email_verified
	// is true.
	Subject func(Claims) (string, error)
	// GroupsClaim names the claim holding the person's groups (a list of
	// strings, or one string): "groups" for Okta, Keycloak, Dex, Azure AD
	// (its group object IDs). They are kept in the session
	// (Session.Groups), and fed to Groups. Defaults to "": no groups are
	// kept.
	GroupsClaim string
	// Groups, with GroupsClaim, learns each sign-in's groups: a
	// GroupDirectory the gate's Config.Directory can be (see
	// GroupDirectory for what claims can and cannot tell a gate).
	// Defaults to nil: the gate's Directory is the only source of group
	// membership.
	Groups *GroupDirectory
	// SessionKeys sign the session and sign-in cookies with HMAC-SHA256;
	// each is at least 32 random bytes. The first signs; every one
	// verifies, so a key is rotated in by putting it first and rotated out
	// (ending the sessions it signed) by removing it. Required.
	SessionKeys [][]byte
	// SessionLifetime is how long a session lasts from sign-in, whatever
	// the person does; the expiry is signed into the cookie. Defaults to
	// DefaultSessionLifetime (8h).
	SessionLifetime time.Duration
	// CookieName names the session cookie; the sign-in cookie is this name
	// followed by "_flow". Defaults to "approval_session".
	CookieName string
	// CookiePath is the session cookie's Path: the path under which the
	// review pages are served ("/review"). Defaults to "/".
	CookiePath string
	// InsecureCookies drops the Secure attribute from the cookies, for
	// development on http://localhost only: New refuses it unless
	// RedirectURL's host is a loopback address or "localhost". Defaults to
	// false: cookies are Secure, sent over https only.
	InsecureCookies bool
	// Home is where a sign-in lands when it was not started from a page
	// (GET .../login without ?return=), or with a return path that is not a
	// same-site relative path: typically the reviewer's inbox,
	// "/review/approvals?awaiting=me". Defaults to "/".
	Home string
	// EndProviderSession sends the browser, after POST .../logout cleared
	// the session, to the provider's end_session_endpoint (RP-Initiated
	// Logout, with client_id and PostLogoutRedirectURL) when its discovery
	// document has one, so the person is signed out there too. Defaults to
	// false: only this application's session ends, and the next sign-in
	// may pass without a password while the provider's session lasts.
	EndProviderSession bool
	// PostLogoutRedirectURL is where the browser goes after signing out:
	// passed to the provider as post_logout_redirect_uri (register it
	// there) with EndProviderSession, or redirected to directly otherwise.
	// Defaults to "": the handler's own "signed out" page.
	PostLogoutRedirectURL string
	// HTTPClient makes the requests to the provider: discovery, its keys,
	// the code exchange and user info (give it a transport that trusts a
	// test server's certificate in tests). Defaults to a client with a
	// 10-second timeout.
	HTTPClient *http.Client
	// Now is the clock for cookies and ID tokens. Defaults to time.Now.
	Now func() time.Time
	// Logger receives refused sign-ins and cookies, with the reason.
	// Defaults to slog.Default().
	Logger *slog.Logger
}

// Defaults of Config.
const (
	DefaultSessionLifetime = 8 * time.Hour
	DefaultCookieName      = "approval_session"
	// FlowLifetime bounds a sign-in: from GET .../login to the callback.
	FlowLifetime = 10 * time.Minute
	// MinKeyBytes is the least a session key may have.
	MinKeyBytes = 32
)

// withDefaults validates c and fills its defaults, returning the base path
// of the routes (the directory of RedirectURL's path, with its slash).
func (c *Config) withDefaults() (base string, err error) {
	switch {
	case c.Issuer == "":
		return "", errors.New("signin: Config.Issuer is empty (the provider's issuer URL)")
	case c.ClientID == "":
		return "", errors.New("signin: Config.ClientID is empty (this application's client ID at the provider)")
	case len(c.SessionKeys) == 0:
		return "", errors.New("signin: Config.SessionKeys is empty (give at least one key of 32 random bytes)")
	case c.SessionLifetime < 0:
		return "", errors.New("signin: Config.SessionLifetime is negative")
	case c.Groups != nil && c.GroupsClaim == "":
		return "", errors.New("signin: Config.Groups needs Config.GroupsClaim (the claim that names the groups)")
	}
	for i, k := range c.SessionKeys {
		if len(k) < MinKeyBytes {
			return "", fmt.Errorf("signin: Config.SessionKeys[%d] has %d bytes, fewer than %d (use crypto/rand)", i, len(k), MinKeyBytes)
		}
	}
	u, err := url.Parse(c.RedirectURL)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return "", fmt.Errorf("signin: Config.RedirectURL %q is not an absolute URL (\"https://HOST/auth/callback\")", c.RedirectURL)
	}
	if !strings.HasSuffix(u.Path, "/callback") {
		return "", fmt.Errorf("signin: Config.RedirectURL %q: its path must end in /callback", c.RedirectURL)
	}
	base = strings.TrimSuffix(u.Path, "callback")
	switch {
	case c.InsecureCookies && !isLoopback(u.Hostname()):
		return "", fmt.Errorf("signin: Config.InsecureCookies is for development on a loopback host, not %q", u.Hostname())
	case u.Scheme != "https" && !c.InsecureCookies:
		return "", fmt.Errorf("signin: Config.RedirectURL %q is not https (browsers drop Secure cookies over http; InsecureCookies serves http://localhost in development)", c.RedirectURL)
	}
	if c.PostLogoutRedirectURL != "" {
		if p, err := url.Parse(c.PostLogoutRedirectURL); err != nil || (!p.IsAbs() && safeReturn(c.PostLogoutRedirectURL, "") == "") {
			return "", fmt.Errorf("signin: Config.PostLogoutRedirectURL %q is neither an absolute URL nor a path", c.PostLogoutRedirectURL)
		}
	}
	if c.Home == "" {
		c.Home = "/"
	}
	if safeReturn(c.Home, "") == "" {
		return "", fmt.Errorf("signin: Config.Home %q is not a path on this site (\"/review/approvals?awaiting=me\")", c.Home)
	}
	if len(c.Scopes) == 0 {
		c.Scopes = []string{oidc.ScopeOpenID, "profile", "email"}
	} else if !contains(c.Scopes, oidc.ScopeOpenID) {
		c.Scopes = append([]string{oidc.ScopeOpenID}, c.Scopes...)
	}
	if c.Subject == nil {
		c.Subject = EmailSubject
	}
	if c.SessionLifetime == 0 {
		c.SessionLifetime = DefaultSessionLifetime
	}
	if c.CookieName == "" {
		c.CookieName = DefaultCookieName
	}
	if c.CookiePath == "" {
		c.CookiePath = "/"
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return base, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
