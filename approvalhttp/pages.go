package approvalhttp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/text"
)

// historyLimit bounds the audit events the review page shows.
const historyLimit = 100

// queuePageSize is the number of requests a queue page lists.
const queuePageSize = 50

// reviewPage is GET /approvals/{id}: the request, for a signed-in
// reviewer or the holder of a link's token; with a token that allows it,
// a confirmation form whose button POSTs (a GET never decides).
func (h *handler) reviewPage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	vals := r.URL.Query()
	verdict := approval.Verdict(vals.Get("verdict"))
	if verdict != "" && verdict != approval.VerdictApprove && verdict != approval.VerdictDeny {
		h.errorPage(w, r, errInvalidQuery("verdict must be approve or deny"))
		return
	}
	signedIn := h.reviewer(r)
	v, err := h.viewer(id, vals.Get("token"), signedIn)
	if err != nil {
		if errors.Is(err, errUnauthenticated) && vals.Get("decided") != "" {
			// Back from a link's decision: the token is spent and not in
			// this URL, so say only that it was submitted.
			h.render(w, r, http.StatusOK, errorTmpl, &errorView{Base: base(r), Status: http.StatusOK,
				Title: "Decision submitted", Detail: "Thank you. Open the request from the queue, signed in, to follow it."})
			return
		}
		h.errorPage(w, r, err)
		return
	}
	if v.claims != nil && verdict != "" && !v.claims.Allows(verdict) {
		h.errorPage(w, r, fmt.Errorf("%w: this link allows %s", approval.ErrTokenVerdictMismatch, v.claims.Act))
		return
	}
	h.showReview(w, r, id, v, signedIn, verdict, approval.Verdict(vals.Get("decided")))
}

// showReview writes the review page of request id for viewer v: with the
// decision form if v may decide, and a note of v's decision just made if
// decided is set.
func (h *handler) showReview(w http.ResponseWriter, r *http.Request, id string, v viewer, signedIn string, verdict, decided approval.Verdict) {
	if !isRequestID(id) {
		h.errorPage(w, r, errNoRequest)
		return
	}
	ctx := r.Context()
	req, err := h.gate.Get(ctx, id)
	if err != nil {
		h.errorPage(w, r, err)
		return
	}
	page, err := h.gate.ListAudit(ctx, approval.AuditQuery{RequestID: id, Limit: historyLimit})
	if err != nil {
		h.errorPage(w, r, err)
		return
	}
	rv := h.review(req, page.Events, h.keysFor(req), h.now())
	rv.HistoryMore = page.Next != ""
	rv.Base, rv.Viewer, rv.Session = base(r), v.id, signedIn != ""
	if rv.Prior != nil {
		rv.Prior.URL = rv.Base + "approvals/" + rv.Prior.RequestID
	}
	if v.claims != nil {
		rv.LinkFor = v.id
		if signedIn != "" && signedIn != v.id {
			rv.Viewer, rv.SignedInAs = signedIn, signedIn
		}
	}
	own, voted := ownVote(req, v.id)
	if ok, code := h.mayDecide(ctx, r, req, v); ok {
		f := &formView{Action: rv.Base + "approvals/" + id + "/decide", Approve: true, Deny: true, Chosen: verdict}
		if v.claims != nil {
			f.Token = v.token
			f.Approve = v.claims.Allows(approval.VerdictApprove)
			f.Deny = v.claims.Allows(approval.VerdictDeny)
		}
		f.Retries = []option{
			{string(approval.RetryChanged), "Only if the action is changed", true},
			{string(approval.RetryLater), "Later, as it is", false},
			{string(approval.RetryNever), "Never", false},
		}
		if h.wa != nil && f.Approve && requiresPasskey(req) {
			f.Passkey = rv.Base + "approvals/" + id + "/passkey"
			rv.Script = true
		}
		rv.Form = f
	} else if !voted {
		rv.NoForm, rv.NoFormCode = whyNot(code, v.id, req), code
	}
	if voted {
		// One message about the viewer's own vote: the flash just after
		// deciding, otherwise a note (never "not an approver" as well,
		// which a passed chain level would otherwise say).
		what := map[approval.Verdict]string{approval.VerdictApprove: "approval", approval.VerdictDeny: "denial"}[own.Verdict]
		if decided == own.Verdict {
			rv.Flash = "Your " + what + " was recorded."
		} else {
			at, _ := fmtTime(own.At)
			rv.NoForm, rv.NoFormCode = "You ("+v.id+") gave your "+what+" at "+at+".", "already_decided"
		}
	}
	if rv.Script {
		w.Header().Set("Content-Security-Policy", cspScript)
	}
	h.render(w, r, http.StatusOK, reviewTmpl, rv)
}

// ownVote returns the vote who cast on req, or cast for them.
func ownVote(req *approval.Request, who string) (approval.Vote, bool) {
	if who == "" {
		return approval.Vote{}, false
	}
	for _, vt := range req.Votes {
		if vt.Approver == who || vt.OnBehalfOf == who {
			return vt, true
		}
	}
	return approval.Vote{}, false
}

// whyNot explains in words the refusal a decision by who would meet.
func whyNot(code, who string, req *approval.Request) string {
	switch code {
	case "not_pending":
		if req.Status.Open() {
			return "The deadline has passed: this request no longer takes decisions."
		}
		return "This request is " + strings.ToLower(statusLabel(req.Status)) + ": it no longer takes decisions."
	case "not_eligible":
		return who + " is not an approver of this request."
	case "self_approval":
		return who + " requested this action and may not decide it."
	case "already_decided":
		for _, vt := range req.Votes {
			if vt.Approver == who {
				return who + " has already decided: " + string(vt.Verdict) + "."
			}
		}
		return who + " has already decided."
	}
	return "Whether you may decide could not be checked. Try again later."
}

// decideForm is POST /approvals/{id}/decide: the confirmation form.
// Fields: verdict (approve or deny), reason, and token (a link's; without
// it the decision is the signed-in reviewer's). On success a session's
// decision redirects (303) to the review page; a link's decision shows the
// page at once, since the token may not go into a redirect.
func (h *handler) decideForm(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxDecideBodyBytes)
	if err := r.ParseForm(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			h.errorPage(w, r, tooLarge)
			return
		}
		h.errorPage(w, r, errMalformed("the form could not be read"))
		return
	}
	id := r.PathValue("id")
	verdict := approval.Verdict(r.PostForm.Get("verdict"))
	if verdict != approval.VerdictApprove && verdict != approval.VerdictDeny {
		h.errorPage(w, r, &httpError{http.StatusUnprocessableEntity, "invalid_decision", "Invalid decision", "verdict must be approve or deny"})
		return
	}
	tok := r.PostForm.Get("token")
	// The action hash the page showed (every review page's form carries
	// it) binds the vote to it: if another approver edited the payload
	// since, the decision is refused (approval.ErrActionChanged) rather
	// than approving bytes this reviewer never saw.
	d := approval.Decision{Token: tok, Verdict: verdict, Reason: r.PostForm.Get("reason"), ActionHash: r.PostForm.Get("action_hash")}
	pk, err := formPasskey(r.PostForm)
	if err != nil {
		h.errorPage(w, r, err)
		return
	}
	d.Passkey = pk
	if code := strings.TrimSpace(r.PostForm.Get("denial_code")); code != "" && verdict == approval.VerdictDeny {
		d.Denial = &approval.Denial{Code: code, Retry: approval.Retry(r.PostForm.Get("denial_retry")),
			Hint: strings.TrimSpace(r.PostForm.Get("denial_hint"))}
	}
	if _, err := h.decide(r, id, d); err != nil {
		h.errorPage(w, r, err)
		return
	}
	if tok != "" {
		// A link's holder has no session to come back with, and the token
		// must not go into a redirect: show the outcome now. (A reload
		// re-posts a spent token, which is refused and changes nothing.)
		signedIn := h.reviewer(r)
		v, err := h.viewer(id, tok, signedIn)
		if err != nil {
			h.errorPage(w, r, err)
			return
		}
		h.showReview(w, r, id, v, signedIn, "", verdict)
		return
	}
	// Relative to /approvals/{id}/decide: the review page, under any prefix.
	w.Header().Set("Location", "../"+url.PathEscape(id)+"?decided="+string(verdict))
	w.WriteHeader(http.StatusSeeOther)
}

type queueView struct {
	pageChrome
	Base, Viewer        string
	Script              bool // never
	Rows                []rowView
	StatusOptions       []option
	Policy, RequestedBy string
	Awaiting, Paged     bool
	// Bulk is set when the viewer may decide a row now: the rows are then
	// a form that selects several (POST /approvals/bulk).
	Bulk              bool
	MaxBulk           int
	NextURL, FirstURL string
	NewCount          string
}

type option struct {
	Value, Label string
	Selected     bool
}

type rowView struct {
	ID, URL, StatusLabel, Name, RequestedBy, Message, Policies, Amount, Risk string
	// Progress is where the request stands ("1 of 2"); Mine is set when
	// the viewer may decide it now; Edited when an approver edited its
	// payload; Prior when an identical action ran recently.
	Progress                                   string
	Mine, Edited, Prior                        bool
	Status                                     approval.Status
	Created, CreatedISO, Deadline, DeadlineISO string
}

var queueStatuses = []approval.Status{
	approval.StatusPending, approval.StatusEscalated, approval.StatusApproved, approval.StatusDenied,
	approval.StatusCancelled, approval.StatusTimedOut, approval.StatusConsumed, approval.StatusExpired,
}

var (
	openStatuses = []approval.Status{approval.StatusPending, approval.StatusEscalated}
	restStatuses = []approval.Status{approval.StatusApproved, approval.StatusDenied, approval.StatusCancelled,
		approval.StatusTimedOut, approval.StatusConsumed, approval.StatusExpired}
)

// queuePage is GET /approvals: the requests, open ones first, filtered by
// status, policy, requester and "awaiting me", a page at a time. Pages
// after the first say when requests arrived since the first was shown.
func (h *handler) queuePage(w http.ResponseWriter, r *http.Request) {
	who := h.reviewer(r)
	if who == "" {
		h.errorPage(w, r, errUnauthenticated)
		return
	}
	vals := r.URL.Query()
	q := approval.RequestQuery{Policy: vals.Get("policy"), RequestedBy: vals.Get("requested_by"), Limit: queuePageSize}
	status := vals.Get("status")
	switch st := approval.Status(status); {
	case st == "":
	case st == "open":
		q.Status = openStatuses
	case st.Valid():
		q.Status = []approval.Status{st}
	default:
		h.errorPage(w, r, errInvalidQuery("unknown status"))
		return
	}
	switch vals.Get("awaiting") {
	case "":
	case "me":
		q.Awaiting = who
	default:
		h.errorPage(w, r, errInvalidQuery(`awaiting must be "me"`))
		return
	}
	filters := url.Values{}
	for _, k := range [...]string{"status", "policy", "requested_by", "awaiting"} {
		if v := vals.Get(k); v != "" {
			filters.Set(k, v)
		}
	}
	cursor := vals.Get("cursor")
	ctx := r.Context()
	reqs, next, err := h.queueList(ctx, q, cursor, status == "")
	if err != nil {
		h.errorPage(w, r, err)
		return
	}
	v := &queueView{pageChrome: pageChrome{Session: true}, MaxBulk: MaxBulk, Base: base(r), Viewer: who, Policy: q.Policy, RequestedBy: q.RequestedBy, Awaiting: q.Awaiting != "", Paged: cursor != ""}
	v.StatusOptions = append(v.StatusOptions, option{"", "All (open first)", status == ""}, option{"open", "Open", status == "open"})
	for _, s := range queueStatuses {
		v.StatusOptions = append(v.StatusOptions, option{string(s), statusLabel(s), status == string(s)})
	}
	v.FirstURL = v.Base + "approvals"
	if len(filters) > 0 {
		v.FirstURL += "?" + filters.Encode()
	}
	// since is when the first page was shown; it travels with the cursor.
	since := h.now()
	if cursor != "" {
		if us, err := strconv.ParseInt(vals.Get("since"), 10, 64); err == nil {
			since = time.UnixMicro(us)
			nq := q
			nq.CreatedFrom, nq.Limit = since, approval.MaxPageSize
			if p, err := h.gate.List(ctx, nq); err == nil && len(p.Requests) > 0 {
				v.NewCount = plural(len(p.Requests), "new request") + " arrived"
				if p.Next != "" {
					v.NewCount = "More than " + v.NewCount
				}
			} else if err != nil {
				h.log.Warn("approvalhttp: count new requests", "path", r.URL.Path, "err", err)
			}
		}
	}
	if next != "" {
		nv := url.Values{}
		for k, x := range filters {
			nv[k] = x
		}
		nv.Set("cursor", next)
		nv.Set("since", strconv.FormatInt(since.UnixMicro(), 10))
		v.NextURL = v.Base + "approvals?" + nv.Encode()
	}
	v.Rows = make([]rowView, len(reqs))
	var open []*approval.Request
	for _, req := range reqs {
		if req.Status.Open() {
			open = append(open, req)
		}
	}
	mine := map[*approval.Request]bool{}
	for i, err := range h.gate.CanDecideEach(ctx, open, who) {
		mine[open[i]] = err == nil
	}
	for i, req := range reqs {
		rv := rowView{ID: req.ID, URL: v.Base + "approvals/" + req.ID, Status: req.Status, StatusLabel: statusLabel(req.Status),
			Name: req.Action.Name, RequestedBy: req.Action.RequestedBy, Message: text.Clip(req.Action.Message, 140),
			Policies: strings.Join(req.PolicyNames(), ", "), Amount: fmtAmount(req.Action.Cost), Risk: req.Action.Risk.String(),
			Edited: req.Edit != nil, Prior: req.Prior != nil}
		if req.Status.Open() {
			rv.Progress = progressShort(req)
			rv.Mine = mine[req]
			v.Bulk = v.Bulk || rv.Mine
		}
		rv.Created, rv.CreatedISO = fmtTime(req.CreatedAt)
		if req.Status.Open() {
			rv.Deadline, rv.DeadlineISO = fmtTime(req.Deadline)
		}
		v.Rows[i] = rv
	}
	h.render(w, r, http.StatusOK, queueTmpl, v)
}

// queueList returns a page of the queue. With openFirst (no status
// filter) the open requests come first, then the rest, each part oldest
// first; its cursor says which part it continues: "o." or "r." and the
// store's cursor. Otherwise the cursor is the store's own.
func (h *handler) queueList(ctx context.Context, q approval.RequestQuery, cursor string, openFirst bool) ([]*approval.Request, string, error) {
	if !openFirst {
		q.Cursor = cursor
		p, err := h.gate.List(ctx, q)
		return p.Requests, p.Next, err
	}
	part, c := "o", ""
	if cursor != "" {
		var ok bool
		part, c, ok = strings.Cut(cursor, ".")
		if !ok || (part != "o" && part != "r") {
			return nil, "", fmt.Errorf("%w: not a queue cursor", approval.ErrInvalidCursor)
		}
	}
	limit := approval.PageSize(q.Limit)
	var reqs []*approval.Request
	if part == "o" {
		oq := q
		oq.Status, oq.Cursor = openStatuses, c
		p, err := h.gate.List(ctx, oq)
		if err != nil {
			return nil, "", err
		}
		if p.Next != "" {
			return p.Requests, "o." + p.Next, nil
		}
		reqs, c = p.Requests, ""
		if len(reqs) >= limit {
			return reqs, "r.", nil
		}
	}
	rq := q
	rq.Status, rq.Cursor, rq.Limit = restStatuses, c, limit-len(reqs)
	p, err := h.gate.List(ctx, rq)
	if err != nil {
		return nil, "", err
	}
	reqs = append(reqs, p.Requests...)
	if p.Next != "" {
		return reqs, "r." + p.Next, nil
	}
	return reqs, "", nil
}
