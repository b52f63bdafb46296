package approvalhttp

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/signoff/approval"
)

// Problem is the body of every API error: an RFC 9457 problem object
// (media type application/problem+json) with a stable Code to branch on.
type Problem struct {
	// Type is "urn:signoff:approval:problem:" followed by Code.
	Type string `json:"type"`
	// Title is a short human summary of the problem type.
	Title string `json:"title"`
	// Status is the HTTP status code.
	Status int `json:"status"`
	// Detail explains this occurrence. For a 4xx it is the gate's own
	// message, cut to 256 bytes; a 500 never carries internal detail.
	Detail string `json:"detail,omitempty"`
	// Code is stable: "not_found", "token_expired", "not_eligible"... (see
	// the package documentation for the list).
	Code string `json:"code"`
}

// Error returns the problem's status, code and detail, so that a Problem
// a Client received reads as an error.
func (p *Problem) Error() string {
	s := "server answered " + strconv.Itoa(p.Status) + " " + p.Code
	if p.Detail != "" {
		s += ": " + p.Detail
	}
	return s
}

// Unwrap returns the sentinel of the approval package that p.Code stands
// for (approval.ErrNotFound for "not_found", approval.ErrNotPending for
// "not_pending"...; the table in the package documentation), so that
// errors.Is works on the problem as on the gate's own error. A code of
// the HTTP layer (unauthenticated, malformed_request, forbidden,
// requested_by_mismatch, internal...) has none: branch on Code.
func (p *Problem) Unwrap() error {
	for _, c := range errorClasses {
		if c.code == p.Code {
			return c.err
		}
	}
	return nil
}

// ProblemTypePrefix begins every Problem.Type.
const ProblemTypePrefix = "urn:signoff:approval:problem:"

// maxDetailBytes bounds Problem.Detail.
const maxDetailBytes = 256

// httpError is an error of the HTTP layer itself (no identity, bad JSON).
type httpError struct {
	status int
	code   string
	title  string
	detail string
}

func (e *httpError) Error() string { return e.detail }

var (
	errUnauthenticated = &httpError{http.StatusUnauthorized, "unauthenticated", "Authentication required",
		"sign in, or open the link you were sent"}
	errNoRoute = &httpError{http.StatusNotFound, "not_found", "Not found", "no such page or endpoint"}
)

func errMalformed(detail string) error {
	return &httpError{http.StatusBadRequest, "malformed_request", "Malformed request", detail}
}

func errInvalidQuery(detail string) error {
	return &httpError{http.StatusUnprocessableEntity, "invalid_query", "Invalid query", detail}
}

// errorClass maps a gate sentinel to a status and code. Order matters: the
// first match wins, so more specific sentinels come first (an invalid
// identity is wrapped in ErrInvalidAction or ErrInvalidDecision).
type errorClass struct {
	err    error
	status int
	code   string
	title  string
}

var errorClasses = [...]errorClass{
	{approval.ErrNotFound, http.StatusNotFound, "not_found", "Not found"},
	{approval.ErrTokenMalformed, http.StatusUnauthorized, "token_malformed", "Malformed token"},
	{approval.ErrTokenSignature, http.StatusUnauthorized, "token_signature", "Token signature invalid"},
	{approval.ErrTokenExpired, http.StatusUnauthorized, "token_expired", "Token expired"},
	{approval.ErrTokenRequestMismatch, http.StatusForbidden, "token_request_mismatch", "Token issued for another request"},
	{approval.ErrTokenVerdictMismatch, http.StatusForbidden, "token_verdict_mismatch", "Token does not allow this verdict"},
	{approval.ErrTokenUsed, http.StatusForbidden, "token_used", "Token already used"},
	{approval.ErrNotEligible, http.StatusForbidden, "not_eligible", "Not an approver of this request"},
	{approval.ErrSelfApproval, http.StatusForbidden, "self_approval", "Requester may not decide own request"},
	{approval.ErrNotPending, http.StatusConflict, "not_pending", "Request no longer open"},
	{approval.ErrAlreadyDecided, http.StatusConflict, "already_decided", "Already decided"},
	{approval.ErrActionChanged, http.StatusConflict, "action_changed", "The action changed since it was shown"},
	{approval.ErrPasskey, http.StatusForbidden, "passkey", "Passkey confirmation missing or invalid"},
	{approval.ErrConflict, http.StatusConflict, "conflict", "Concurrent update conflict"},
	{approval.ErrInvalidIdentity, http.StatusUnprocessableEntity, "invalid_identity", "Invalid identity"},
	{approval.ErrInvalidAction, http.StatusUnprocessableEntity, "invalid_action", "Invalid action"},
	{approval.ErrInvalidDecision, http.StatusUnprocessableEntity, "invalid_decision", "Invalid decision"},
	{approval.ErrInvalidCursor, http.StatusUnprocessableEntity, "invalid_cursor", "Invalid cursor"},
	{approval.ErrNoArtifact, http.StatusConflict, "no_artifact", "Request not approved: no artifact"},
	{approval.ErrUnsupported, http.StatusNotImplemented, "unsupported", "Not supported by this server"},
}

// classify returns the problem for err. Internal errors (anything not
// listed) are 500 with a generic detail: their text may name hosts, files
// or SQL, and is only logged.
func classify(err error) Problem {
	var he *httpError
	if errors.As(err, &he) {
		return Problem{Type: ProblemTypePrefix + he.code, Title: he.title, Status: he.status, Detail: clipDetail(he.detail), Code: he.code}
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return Problem{Type: ProblemTypePrefix + "body_too_large", Title: "Request body too large",
			Status: http.StatusRequestEntityTooLarge, Detail: "the body exceeds the size limit", Code: "body_too_large"}
	}
	for _, c := range errorClasses {
		if errors.Is(err, c.err) {
			return Problem{Type: ProblemTypePrefix + c.code, Title: c.title, Status: c.status, Detail: clipDetail(err.Error()), Code: c.code}
		}
	}
	return Problem{Type: ProblemTypePrefix + "internal", Title: "Internal error", Status: http.StatusInternalServerError,
		Detail: "the request could not be completed; the server logged the cause", Code: "internal"}
}

// clipDetail keeps the first line of an error message (errors.Join puts a
// second, possibly internal, error on the next line), cut to
// maxDetailBytes on a rune boundary.
func clipDetail(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= maxDetailBytes {
		return s
	}
	cut := maxDetailBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// problem writes err as an application/problem+json response.
func (h *handler) problem(w http.ResponseWriter, r *http.Request, err error) {
	p := classify(err)
	h.logInternal(r, p, err)
	challenge(w, p)
	writeJSON(w, p.Status, "application/problem+json", &p)
}

// challenge adds to a 401 the WWW-Authenticate header HTTP requires
// (RFC 9110, section 11.6.1). Its scheme, ApprovalToken, says what would
// do: a link's signed token (in the body or the link), or the host's
// sign-in, which the challenge cannot name. Its error parameter is the
// problem code.
func challenge(w http.ResponseWriter, p Problem) {
	if p.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `ApprovalToken realm="approval", error="`+p.Code+`"`)
	}
}

func (h *handler) logInternal(r *http.Request, p Problem, err error) {
	if p.Status == http.StatusInternalServerError {
		h.log.Error("approvalhttp: internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	}
}
