package approvalhttp

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/signoff/approval"
)

// Options configures the handler New returns. The zero value serves the
// link-token pages and decisions only: no remote Guard, no queue, no
// reading without a token.
type Options struct {
	// Authenticate identifies the remote caller of POST /api/approvals (an
	// agent runtime, a service): it returns the caller's ID, which becomes
	// Action.RequestedBy. Return "" or an error for a caller it does not
	// know (401). The caller may then read its own requests, and only
	// those: GET /api/approvals/{id}, its /wait and its /artifact.
	// Defaults to nil: POST /api/approvals answers 404.
	Authenticate func(*http.Request) (string, error)
	// Identity returns the reviewer behind a request (the host's session
	// cookie, an SSO header set by a trusted proxy, a client certificate),
	// or "" or an error for none (401 where one is needed). Every person it
	// names may read every request, the queue and the audit trail, and may
	// decide (as themselves, with a token the handler mints for two
	// minutes) wherever the gate finds them eligible. Defaults to nil:
	// requests are read only through a link's token.
	Identity func(*http.Request) (string, error)
	// Operator says whether who, the reviewer Options.Identity names for
	// r, is an operator: one who may open the operator page (GET
	// /operator, the gate's Stats and its dead letters), redrive a dead
	// letter and verify the audit trail from it, and read GET /api/stats.
	// It needs Identity. It may be called concurrently; one that panics
	// names nobody. Defaults to nil: nobody is an operator (the page and
	// /api/stats answer 403).
	Operator func(r *http.Request, who string) bool
	// Redact names payload fields (JSON object keys, at any depth) and
	// metadata keys to mask on every request, beside each matched policy's
	// Policy.Redact. Names compare case-insensitively. Defaults to none.
	Redact []string
	// SignIn is the URL of the host's sign-in page ("/auth/login", see
	// package signin): a 401 page links to it. Defaults to "": no link.
	SignIn string
	// SignOut is the URL of the host's sign-out page ("/auth/logout"): the
	// header of every page links to it beside the signed-in reviewer's
	// name. Sign-out itself should be a POST from that page. Defaults to
	// "": no link.
	SignOut string
	// TrustedOrigins are origins ("https://admin.example.com") whose
	// cross-origin browser requests may still change state (see
	// http.CrossOriginProtection.AddTrustedOrigin). Defaults to none: only
	// same-origin browser requests, and non-browser clients, may.
	TrustedOrigins []string
	// MaxBodyBytes bounds the body of POST /api/approvals (413 beyond it).
	// Defaults to 4 MiB, room for an action at the gate's default Limits.
	MaxBodyBytes int64
	// MaxWait bounds how long GET /api/approvals/{id}/wait holds a
	// request open (its timeout parameter is cut to it). Keep it below
	// the server's WriteTimeout. Defaults to DefaultMaxWait.
	MaxWait time.Duration
	// MaxPayloadDisplayBytes bounds how much of a payload the review page
	// shows (the rest is cut, with a note; the hashes cover all of it).
	// Defaults to 64 KiB.
	MaxPayloadDisplayBytes int
	// Now is the clock for the time left before a deadline. Give it the
	// gate's Config.Now when that is set. Defaults to time.Now.
	Now func() time.Time
	// Logger receives internal errors (answered 500 without detail) and
	// failures of Authenticate and Identity, with the method and the path,
	// never the query string (tokens travel in it). Defaults to
	// slog.Default().
	Logger *slog.Logger
}

// Defaults of Options.
const (
	DefaultMaxBodyBytes           = 4 << 20
	DefaultMaxPayloadDisplayBytes = 64 << 10
	DefaultMaxWait                = 60 * time.Second
	// DefaultWaitTimeout is how long GET /api/approvals/{id}/wait holds
	// a request open when its timeout parameter is left out.
	DefaultWaitTimeout = 25 * time.Second
	// DecisionTokenTTL is the lifetime of the token the handler mints to
	// decide as the reviewer Options.Identity names.
	DecisionTokenTTL = 2 * time.Minute
)

// maxDecideBodyBytes bounds the body of a decision (a token and a reason).
const maxDecideBodyBytes = 64 << 10

type handler struct {
	gate         *approval.Gate
	authenticate func(*http.Request) (string, error)
	identity     func(*http.Request) (string, error)
	isOperator   func(*http.Request, string) bool
	signIn       string        // Options.SignIn
	signOut      string        // Options.SignOut
	verifyFailed verifyFailure // the last "Verify now" that failed
	redact       []string
	maxBody      int64
	maxDisplay   int
	maxWait      time.Duration
	now          func() time.Time
	log          *slog.Logger
	mux          *http.ServeMux
	next         http.Handler // mux behind cross-origin protection
	// wa is the WebAuthn relying party of the gate's Config.Passkeys; nil
	// when it takes none. ceremonies are its registrations in progress.
	wa         *webauthn.WebAuthn
	ceremonies ceremonies
}

// New returns the handler serving gate's review pages and JSON API (see the
// package documentation for the routes). It reports an error, and no
// handler, if gate is nil or an option is invalid: a TrustedOrigins entry
// that is not an origin, an empty Redact name, a negative size, an
// Operator without Identity. The handler is safe for concurrent use.
func New(gate *approval.Gate, opts Options) (http.Handler, error) {
	if gate == nil {
		return nil, errors.New("approvalhttp: New: gate is nil")
	}
	if opts.Operator != nil && opts.Identity == nil {
		return nil, errors.New("approvalhttp: New: Options.Operator needs Options.Identity (operators are reviewers it names)")
	}
	if opts.MaxBodyBytes < 0 || opts.MaxPayloadDisplayBytes < 0 || opts.MaxWait < 0 {
		return nil, errors.New("approvalhttp: New: MaxBodyBytes, MaxPayloadDisplayBytes and MaxWait must not be negative")
	}
	for _, k := range opts.Redact {
		if k == "" || !utf8.ValidString(k) {
			return nil, fmt.Errorf("approvalhttp: New: Redact name %q is empty or not UTF-8", k)
		}
	}
	for _, u := range [...]string{opts.SignIn, opts.SignOut} {
		if u != "" && !pageURL(u) {
			return nil, fmt.Errorf("approvalhttp: New: SignIn or SignOut %q is neither a path (\"/auth/login\") nor an http(s) URL", u)
		}
	}
	h := &handler{
		signIn:       opts.SignIn,
		signOut:      opts.SignOut,
		gate:         gate,
		authenticate: opts.Authenticate,
		identity:     opts.Identity,
		isOperator:   opts.Operator,
		redact:       append([]string(nil), opts.Redact...),
		maxBody:      opts.MaxBodyBytes,
		maxDisplay:   opts.MaxPayloadDisplayBytes,
		maxWait:      opts.MaxWait,
		now:          opts.Now,
		log:          opts.Logger,
	}
	if h.maxBody == 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	if h.maxDisplay == 0 {
		h.maxDisplay = DefaultMaxPayloadDisplayBytes
	}
	if h.maxWait == 0 {
		h.maxWait = DefaultMaxWait
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	wa, err := newWebAuthn(gate)
	if err != nil {
		return nil, fmt.Errorf("approvalhttp: New: the gate's Config.Passkeys: %w", err)
	}
	h.wa = wa
	cop := http.NewCrossOriginProtection()
	for _, o := range opts.TrustedOrigins {
		if err := cop.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("approvalhttp: New: TrustedOrigins: %w", err)
		}
	}
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, &httpError{http.StatusForbidden, "cross_origin", "Cross-origin request refused",
			"a cross-origin browser request may not change state"})
	}))
	h.mux = http.NewServeMux()
	h.routes()
	h.next = cop.Handler(h.mux)
	return h, nil
}

func (h *handler) routes() {
	m := h.mux
	m.HandleFunc("POST /api/approvals", h.apiGuard)
	m.HandleFunc("GET /api/approvals", h.apiList)
	m.HandleFunc("GET /api/approvals/{id}", h.apiGet)
	m.HandleFunc("POST /api/approvals/{id}/approve", h.apiDecide(approval.VerdictApprove))
	m.HandleFunc("POST /api/approvals/{id}/deny", h.apiDecide(approval.VerdictDeny))
	m.HandleFunc("GET /api/approvals/{id}/audit", h.apiAudit)
	m.HandleFunc("GET /api/approvals/{id}/wait", h.apiWait)
	m.HandleFunc("GET /api/approvals/{id}/artifact", h.apiArtifact)
	m.HandleFunc("GET /approvals", h.queuePage)
	m.HandleFunc("GET /approvals/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "../approvals")
		w.WriteHeader(http.StatusSeeOther)
	})
	m.HandleFunc("GET /approvals/{id}", h.reviewPage)
	m.HandleFunc("POST /approvals/{id}/decide", h.decideForm)
	m.HandleFunc("POST /approvals/bulk", h.bulkForm)
	m.HandleFunc("POST /approvals/bulk/decide", h.bulkDecideForm)
	m.HandleFunc("POST /api/approvals/bulk", h.apiBulk)
	m.HandleFunc("GET /operator", h.operatorPage)
	m.HandleFunc("POST /operator/redrive", h.redriveForm)
	m.HandleFunc("POST /operator/verify", h.verifyForm)
	m.HandleFunc("GET /api/stats", h.apiStats)
	m.HandleFunc("POST /api/approvals/{id}/cancel", h.apiCancel)
	m.HandleFunc("GET /passkeys", h.passkeysPage)
	m.HandleFunc("POST /passkeys/register", h.beginRegistration)
	m.HandleFunc("POST /passkeys/register/{ceremony}", h.finishRegistration)
	m.HandleFunc("POST /passkeys/revoke/{id}", h.revokePasskeyForm)
	m.HandleFunc("POST /approvals/{id}/passkey", h.beginStepUp)
	m.HandleFunc("GET /assets/{name}", h.serveAsset)
	m.HandleFunc("/", h.notFound)
}

const csp = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// ServeHTTP sets the security headers every response carries, then routes.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", csp)
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", "no-store")
	h.next.ServeHTTP(w, r)
}

// notFound answers every path no route serves: 405 with Allow when the path
// is served for another method, 404 otherwise.
func (h *handler) notFound(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range [...]string{http.MethodGet, http.MethodPost} {
		if m == r.Method || (m == http.MethodGet && r.Method == http.MethodHead) {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := h.mux.Handler(probe); pattern != "/" && pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		h.fail(w, r, &httpError{http.StatusMethodNotAllowed, "method_not_allowed", "Method not allowed",
			r.Method + " is not served here"})
		return
	}
	h.fail(w, r, errNoRoute)
}

// fail answers err: a problem object on the API, an HTML page elsewhere.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if isAPI(r) {
		h.problem(w, r, err)
		return
	}
	h.errorPage(w, r, err)
}

func isAPI(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, "/api/") || r.URL.Path == "/api"
}

// call runs a host identity function, recovering a panic: a function that
// fails, panics or names no valid identity leaves the caller
// unauthenticated (""), never someone else.
func (h *handler) call(what string, f func(*http.Request) (string, error), r *http.Request) (id string) {
	if f == nil {
		return ""
	}
	defer func() {
		if p := recover(); p != nil {
			h.log.Error("approvalhttp: "+what+" panicked; treating the request as unauthenticated",
				"method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(p))
			id = ""
		}
	}()
	raw, err := f(r)
	if err != nil {
		h.log.Warn("approvalhttp: "+what+" refused the request", "method", r.Method, "path", r.URL.Path, "err", err)
		return ""
	}
	if raw == "" {
		return ""
	}
	c, err := approval.CanonicalID(raw)
	if err != nil {
		h.log.Error("approvalhttp: "+what+" returned an invalid identity; treating the request as unauthenticated",
			"method", r.Method, "path", r.URL.Path, "err", err)
		return ""
	}
	return c
}

// reviewer returns the canonical ID Options.Identity names for r, or "".
func (h *handler) reviewer(r *http.Request) string {
	return h.call("Options.Identity", h.identity, r)
}

// pageURL reports whether u may be linked to as the host's sign-in or
// sign-out page: a path on this site, or an http(s) URL.
func pageURL(u string) bool {
	p, err := url.Parse(u)
	if err != nil || strings.ContainsAny(u, "\\\x00\t\r\n") {
		return false
	}
	if p.IsAbs() {
		return (p.Scheme == "https" || p.Scheme == "http") && p.Host != ""
	}
	return strings.HasPrefix(u, "/") && !strings.HasPrefix(u, "//") && p.Host == ""
}

// isRequestID reports whether id has the form of the IDs the gate issues
// ("req_" and 32 lower-case hex digits), so that any other ID is a 404 at
// once, without reaching the store or the audit trail.
func isRequestID(id string) bool {
	if len(id) != 36 || id[:4] != "req_" {
		return false
	}
	for i := 4; i < len(id); i++ {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// base returns the relative reference from r's path to the handler's root
// ("../" for /approvals/{id}), so that pages link correctly under any
// mount prefix without knowing it.
func base(r *http.Request) string {
	n := strings.Count(r.URL.Path, "/") - 1
	if n <= 0 {
		return "./"
	}
	return strings.Repeat("../", n)
}
