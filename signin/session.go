package signin

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// session is the content of the session cookie.
type session struct {
	Approver string   `json:"sub"`
	Groups   []string `json:"groups,omitempty"`
	Issued   int64    `json:"iat"`
	Expires  int64    `json:"exp"`
}

// Session is a signed-in reviewer, as the session cookie says.
type Session struct {
	// Approver is the approver ID Config.Subject gave at sign-in.
	Approver string
	// Groups are the values of Config.GroupsClaim at sign-in (nil without
	// it). They are what the provider said then, for the host to use as
	// it sees fit (an Operator check, a display): the gate's Directory
	// remains the source of group membership, since it must also answer
	// for people who are not signed in (who is in "finance" when a
	// request opens).
	Groups []string
	// Issued and Expires bound the session (Config.SessionLifetime).
	Issued, Expires time.Time
}

// Session returns the session r carries: ErrNoSession without a session
// cookie, an error wrapping ErrBadCookie for one that is malformed,
// tampered with or signed by no current key, and ErrExpired for one past
// its signed expiry.
func (o *OIDC) Session(r *http.Request) (*Session, error) {
	c, err := r.Cookie(o.cfg.CookieName)
	if err != nil || c.Value == "" {
		return nil, ErrNoSession
	}
	var s session
	if err := o.codec.open(purposeSession, c.Value, &s); err != nil {
		return nil, err
	}
	if err := expiry(o.cfg.Now(), s.Issued, s.Expires); err != nil {
		return nil, err
	}
	if s.Approver == "" {
		return nil, fmt.Errorf("%w: no approver", ErrBadCookie)
	}
	return &Session{Approver: s.Approver, Groups: s.Groups, Issued: time.Unix(s.Issued, 0), Expires: time.Unix(s.Expires, 0)}, nil
}

// Identity returns the approver ID of r's session, for
// approvalhttp.Options.Identity: "" and nil without a session cookie
// (nobody signed in), "" and an error for a cookie that is malformed,
// tampered with, signed by no current key or expired.
func (o *OIDC) Identity(r *http.Request) (string, error) {
	s, err := o.Session(r)
	if errors.Is(err, ErrNoSession) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return s.Approver, nil
}

// RequireLogin wraps h, the review pages, so that a browser visiting a
// page without a valid session is sent to sign in (303 to LoginURL, with
// the page as the return path) instead of a 401 page. Everything else
// reaches h as it came: requests with a valid session; API calls and other
// requests that are not a page visit (h answers them 401 as before); and a
// notification link's page (a token in the query), which its token alone
// opens. A page visit is a GET or HEAD that the browser marks as a
// navigation (Sec-Fetch-Mode: navigate) or, from a browser that does not
// send Fetch metadata, that accepts text/html.
//
// Wrap the handler as mounted, before http.StripPrefix, so that the return
// path is the page's whole path:
//
//	mux.Handle("/review/", o.RequireLogin(http.StripPrefix("/review", h)))
func (o *OIDC) RequireLogin(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isPageVisit(r) || r.URL.Query().Has("token") {
			h.ServeHTTP(w, r)
			return
		}
		if _, err := o.Session(r); err == nil {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Location", o.base+"login?return="+url.QueryEscape(r.URL.RequestURI()))
		w.WriteHeader(http.StatusSeeOther)
	})
}

func isPageVisit(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if m := r.Header.Get("Sec-Fetch-Mode"); m != "" {
		return m == "navigate"
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}
