package approvalhttp

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/signoff/approval"
)

// apiGuard is POST /api/approvals: Guard for a remote caller.
func (h *handler) apiGuard(w http.ResponseWriter, r *http.Request) {
	if h.authenticate == nil {
		h.problem(w, r, &httpError{http.StatusNotFound, "not_found", "Not found",
			"remote Guard is not enabled here (the host set no Options.Authenticate)"})
		return
	}
	who := h.call("Options.Authenticate", h.authenticate, r)
	if who == "" {
		h.problem(w, r, errUnauthenticated)
		return
	}
	var body actionBody
	if err := decodeJSON(w, r, &body, h.maxBody, false); err != nil {
		h.problem(w, r, err)
		return
	}
	if body.RequestedBy != "" {
		if c, err := approval.CanonicalID(body.RequestedBy); err != nil || c != who {
			h.problem(w, r, &httpError{http.StatusUnprocessableEntity, "requested_by_mismatch", "Requester mismatch",
				"requested_by must be left out or name the authenticated caller; the caller is the requester"})
			return
		}
	}
	a, err := body.action()
	if err != nil {
		h.problem(w, r, err)
		return
	}
	a.RequestedBy = who
	res, err := h.gate.Guard(r.Context(), a)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	status := http.StatusOK
	if res.Status == approval.OutcomePending {
		status = http.StatusAccepted
		// Relative to /api/approvals, so right under any mount prefix.
		w.Header().Set("Location", "approvals/"+url.PathEscape(res.RequestID))
	}
	writeJSON(w, status, "application/json", toGuardJSON(res))
}

// listJSON is the answer of GET /api/approvals.
type listJSON struct {
	Requests []*requestJSON `json:"requests"`
	Next     string         `json:"next,omitempty"`
}

// apiList is GET /api/approvals: Gate.List for a reviewer.
func (h *handler) apiList(w http.ResponseWriter, r *http.Request) {
	who := h.reviewer(r)
	if who == "" {
		h.problem(w, r, errUnauthenticated)
		return
	}
	vals := r.URL.Query()
	q, err := parseQuery(vals, who)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	page, err := h.gate.List(r.Context(), q)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	out := listJSON{Requests: make([]*requestJSON, len(page.Requests)), Next: page.Next}
	for i, req := range page.Requests {
		out.Requests[i] = toJSON(req, h.keysFor(req))
	}
	setNextLink(w, vals, page.Next)
	writeJSON(w, http.StatusOK, "application/json", &out)
}

// setNextLink adds Link: <?...cursor=next>; rel="next", a reference
// relative to the current path, so it is right under any mount prefix.
func setNextLink(w http.ResponseWriter, vals url.Values, next string) {
	if next == "" {
		return
	}
	nv := make(url.Values, len(vals)+1)
	for k, v := range vals {
		nv[k] = v
	}
	nv.Set("cursor", next)
	w.Header().Set("Link", "<?"+nv.Encode()+`>; rel="next"`)
}

// parseQuery reads the filters of a listing: status (repeated or
// comma-separated; "open" is pending and escalated), policy, requested_by,
// awaiting ("me" or the reviewer's own ID), cursor and limit.
func parseQuery(vals url.Values, who string) (approval.RequestQuery, error) {
	q := approval.RequestQuery{
		Policy: vals.Get("policy"), RequestedBy: vals.Get("requested_by"), Cursor: vals.Get("cursor"),
	}
	for _, v := range vals["status"] {
		for s := range strings.SplitSeq(v, ",") {
			switch st := approval.Status(strings.TrimSpace(s)); {
			case st == "":
			case st == "open":
				q.Status = append(q.Status, approval.StatusPending, approval.StatusEscalated)
			case st.Valid():
				q.Status = append(q.Status, st)
			default:
				return q, errInvalidQuery("unknown status " + strconv.Quote(clipDetail(string(st))))
			}
		}
	}
	switch aw := vals.Get("awaiting"); aw {
	case "":
	case "me":
		q.Awaiting = who
	default:
		c, err := approval.CanonicalID(aw)
		if err != nil {
			return q, errInvalidQuery("awaiting must be \"me\" or your own ID")
		}
		if c != who {
			return q, &httpError{http.StatusForbidden, "forbidden", "Forbidden", "you may list only your own inbox (awaiting=me)"}
		}
		q.Awaiting = who
	}
	if l := vals.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			return q, errInvalidQuery("limit must be a positive integer")
		}
		q.Limit = approval.PageSize(n)
	}
	return q, nil
}

// viewer is who looks at a request: a reviewer signed in through
// Options.Identity, the subject of a link's token for that request, or
// its requester, authenticated by Options.Authenticate.
type viewer struct {
	id        string
	token     string                // the link's token, if the viewer came with one
	claims    *approval.TokenClaims // its verified claims
	requester bool                  // authenticated by Options.Authenticate
}

// viewer authenticates a reader of request id: by a valid token for it
// if tok is given (a bad token is refused even for a signed-in reviewer),
// else as signedIn, the reviewer Options.Identity names.
func (h *handler) viewer(id, tok, signedIn string) (viewer, error) {
	if tok != "" {
		c, err := h.gate.VerifyToken(tok)
		if err != nil {
			return viewer{}, err
		}
		if c.RequestID != id {
			return viewer{}, fmt.Errorf("%w: this link is for another request", approval.ErrTokenRequestMismatch)
		}
		return viewer{id: c.Subject, token: tok, claims: &c}, nil
	}
	if signedIn != "" {
		return viewer{id: signedIn}, nil
	}
	return viewer{}, errUnauthenticated
}

// reader authenticates the reader of request id and returns the request:
// a link's token for it, else a reviewer Options.Identity names, else the
// caller Options.Authenticate names, who reads only requests it made: any
// other is not found, as if it did not exist.
func (h *handler) reader(r *http.Request, id string) (viewer, *approval.Request, error) {
	v, err := h.viewer(id, r.URL.Query().Get("token"), h.reviewer(r))
	if err == errUnauthenticated {
		if who := h.call("Options.Authenticate", h.authenticate, r); who != "" {
			v, err = viewer{id: who, requester: true}, nil
		}
	}
	if err != nil {
		return viewer{}, nil, err
	}
	if !isRequestID(id) {
		return viewer{}, nil, errNoRequest
	}
	req, err := h.gate.Get(r.Context(), id)
	if err != nil {
		return viewer{}, nil, err
	}
	if v.requester && req.Action.RequestedBy != v.id {
		return viewer{}, nil, errNoRequest
	}
	return v, req, nil
}

// mayDecide reports whether v may decide req, and if not the problem code
// of the refusal.
func (h *handler) mayDecide(ctx context.Context, r *http.Request, req *approval.Request, v viewer) (bool, string) {
	err := h.gate.CanDecide(ctx, req, v.id)
	if err == nil {
		return true, ""
	}
	p := classify(err)
	h.logInternal(r, p, err)
	return false, p.Code
}

// apiGet is GET /api/approvals/{id}.
func (h *handler) apiGet(w http.ResponseWriter, r *http.Request) {
	v, req, err := h.reader(r, r.PathValue("id"))
	if err != nil {
		h.problem(w, r, err)
		return
	}
	out := toJSON(req, h.keysFor(req))
	vj := &viewerJSON{ID: v.id, Via: "session"}
	switch {
	case v.claims != nil:
		vj.Via, vj.TokenAllows = "token", v.claims.Act
	case v.requester:
		vj.Via = "requester"
	}
	vj.MayDecide, vj.WhyNot = h.mayDecide(r.Context(), r, req, v)
	out.Viewer = vj
	writeJSON(w, http.StatusOK, "application/json", out)
}

var errNoRequest = &httpError{http.StatusNotFound, "not_found", "Not found", "no request has this ID"}

// apiWait is GET /api/approvals/{id}/wait?timeout=25s: a long poll. It
// answers the request (as GET shows it, without the viewer) once it is no
// longer open, or as it stands when the timeout (DefaultWaitTimeout,
// at most Options.MaxWait) passes first.
func (h *handler) apiWait(w http.ResponseWriter, r *http.Request) {
	_, req, err := h.reader(r, r.PathValue("id"))
	if err != nil {
		h.problem(w, r, err)
		return
	}
	timeout := DefaultWaitTimeout
	if s := r.URL.Query().Get("timeout"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			h.problem(w, r, errInvalidQuery(`timeout must be a duration such as "25s"`))
			return
		}
		timeout = d
	}
	timeout = min(timeout, h.maxWait)
	if req.Status.Open() && timeout > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		done, err := h.gate.Wait(ctx, req.ID)
		timedOut := ctx.Err() != nil
		cancel()
		switch {
		case err == nil:
			req = done
		case r.Context().Err() != nil:
			return // the caller left: nobody to answer
		case timedOut:
			// Still open (or decided just now): answer it as it stands.
			if req, err = h.gate.Get(r.Context(), req.ID); err != nil {
				h.problem(w, r, err)
				return
			}
		default:
			h.problem(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, "application/json", toJSON(req, h.keysFor(req)))
}

// apiArtifact is GET /api/approvals/{id}/artifact: the signed approval
// artifact of an approved (or consumed) request, its bytes as the gate
// signed them.
func (h *handler) apiArtifact(w http.ResponseWriter, r *http.Request) {
	_, req, err := h.reader(r, r.PathValue("id"))
	if err != nil {
		h.problem(w, r, err)
		return
	}
	art, err := h.gate.Artifact(r.Context(), req.ID)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Content-Length", strconv.Itoa(len(art)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(art)
}

// apiDecide is POST /api/approvals/{id}/approve and /deny.
func (h *handler) apiDecide(verdict approval.Verdict) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var body decideBody
		if err := decodeJSON(w, r, &body, maxDecideBodyBytes, true); err != nil {
			h.problem(w, r, err)
			return
		}
		payload, err := body.payload()
		if err != nil {
			h.problem(w, r, err)
			return
		}
		pk, err := body.Passkey.assertion()
		if err != nil {
			h.problem(w, r, err)
			return
		}
		d := approval.Decision{Token: body.Token, Verdict: verdict, Reason: body.Reason,
			Conditions: body.Conditions, Payload: payload, Denial: body.Denial, Reuse: body.Reuse, ActionHash: body.ActionHash,
			Passkey: pk}
		req, err := h.decide(r, r.PathValue("id"), d)
		if err != nil {
			h.problem(w, r, err)
			return
		}
		out := decideResult{RequestID: req.ID, Status: req.Status, Reason: req.Reason}
		if n := len(req.Votes); n > 0 {
			out.Vote = &req.Votes[n-1]
		}
		writeJSON(w, http.StatusOK, "application/json", &out)
	}
}

// decide records a decision on request id: with tok if given, else as the
// reviewer Options.Identity names, through a token minted for them alone
// (DecisionTokenTTL), so that eligibility, segregation, single use and
// the audit trail apply exactly as for a link.
func (h *handler) decide(r *http.Request, id string, d approval.Decision) (*approval.Request, error) {
	if !isRequestID(id) {
		return nil, errNoRequest
	}
	if d.Token == "" {
		who := h.reviewer(r)
		if who == "" {
			return nil, errUnauthenticated
		}
		var err error
		if d.Token, err = h.gate.IssueToken(id, who, d.Verdict, DecisionTokenTTL); err != nil {
			return nil, err
		}
	}
	return h.gate.Decide(r.Context(), id, d)
}

// auditJSON is the answer of GET /api/approvals/{id}/audit.
type auditJSON struct {
	Events []approval.AuditEvent `json:"events"`
	Next   string                `json:"next,omitempty"`
}

// apiAudit is GET /api/approvals/{id}/audit: the request's audit events,
// paged.
func (h *handler) apiAudit(w http.ResponseWriter, r *http.Request) {
	if h.reviewer(r) == "" {
		h.problem(w, r, errUnauthenticated)
		return
	}
	id := r.PathValue("id")
	if !isRequestID(id) {
		h.problem(w, r, errNoRequest)
		return
	}
	vals := r.URL.Query()
	q := approval.AuditQuery{RequestID: id, Cursor: vals.Get("cursor")}
	if l := vals.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			h.problem(w, r, errInvalidQuery("limit must be a positive integer"))
			return
		}
		q.Limit = approval.PageSize(n)
	}
	page, err := h.gate.ListAudit(r.Context(), q)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	if q.Cursor == "" && len(page.Events) == 0 {
		// Every request has its request.created event: none, no request.
		h.problem(w, r, errNoRequest)
		return
	}
	out := auditJSON{Events: page.Events, Next: page.Next}
	if out.Events == nil {
		out.Events = []approval.AuditEvent{}
	}
	setNextLink(w, vals, page.Next)
	writeJSON(w, http.StatusOK, "application/json", &out)
}
