package approvalhttp

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/signoff/approval"
)

// MaxBulk is the most requests one bulk decision may select: a queue
// page's worth.
const MaxBulk = queuePageSize

// bulkPayloadDisplayBytes bounds each payload the bulk confirmation page
// shows (the request's own page shows it whole).
const bulkPayloadDisplayBytes = 2 << 10

// bulkItem is one selected request and the action hash the reviewer was
// shown for it ("" before the confirmation page showed one).
type bulkItem struct {
	ID         string `json:"id"`
	ActionHash string `json:"action_hash"`
}

// bulkBody is the body of POST /api/approvals/bulk.
type bulkBody struct {
	Verdict  approval.Verdict `json:"verdict"`
	Reason   string           `json:"reason"`
	Requests []bulkItem       `json:"requests"`
}

// itemProblem is why one selected request was refused.
type itemProblem struct {
	ID    string  `json:"id"`
	Error Problem `json:"error"`
}

// bulkRefusal refuses a whole selection up front: nothing was decided.
// Items says which requests, and why, when the refusal is about some.
type bulkRefusal struct {
	httpError
	items []itemProblem
}

func (e *bulkRefusal) Error() string { return e.detail }

func refuseSelection(status int, code, title, detail string, items []itemProblem) *bulkRefusal {
	return &bulkRefusal{httpError{status, code, title, detail}, items}
}

func invalidSelection(detail string, items ...itemProblem) *bulkRefusal {
	return refuseSelection(http.StatusUnprocessableEntity, "invalid_selection", "Invalid selection", detail, items)
}

// boundHash is the action hash a vote on req binds: the edited action's
// once an approver edited the payload.
func boundHash(req *approval.Request) string {
	if req.Edit != nil {
		return req.Edit.ActionHash
	}
	return req.ActionHash
}

// policySet names req's matched policies, sorted: two requests may be
// decided together only when their sets are equal.
func policySet(req *approval.Request) string {
	names := req.PolicyNames()
	slices.Sort(names)
	return strings.Join(slices.Compact(names), ", ")
}

// checkSelection refuses, before anything is decided, a selection that is
// empty, larger than MaxBulk, names a request twice or by a malformed or
// unknown ID, lacks an action hash where needHash, spans requests whose
// sets of matched policies differ, or includes a request who may not
// decide now (approval.Gate.CanDecideEach), or one whose approval needs a
// passkey. It returns the requests in the order selected.
func (h *handler) checkSelection(ctx context.Context, who string, verdict approval.Verdict, items []bulkItem, needHash bool) ([]*approval.Request, error) {
	if verdict != approval.VerdictApprove && verdict != approval.VerdictDeny {
		return nil, &httpError{http.StatusUnprocessableEntity, "invalid_decision", "Invalid decision", "verdict must be approve or deny"}
	}
	if len(items) == 0 {
		return nil, invalidSelection("select at least one request")
	}
	if len(items) > MaxBulk {
		return nil, invalidSelection("select at most " + strconv.Itoa(MaxBulk) + " requests at once; " + strconv.Itoa(len(items)) + " were selected")
	}
	seen := make(map[string]bool, len(items))
	reqs := make([]*approval.Request, len(items))
	var bad []itemProblem
	for i, it := range items {
		switch {
		case !isRequestID(it.ID):
			bad = append(bad, itemProblem{clipDetail(it.ID), classify(errNoRequest)})
		case seen[it.ID]:
			bad = append(bad, itemProblem{it.ID, classify(&invalidSelection("selected more than once").httpError)})
		case needHash && it.ActionHash == "":
			bad = append(bad, itemProblem{it.ID, classify(&invalidSelection("no action_hash: send the action hash the reviewer was shown").httpError)})
		default:
			req, err := h.gate.Get(ctx, it.ID)
			switch {
			case errors.Is(err, approval.ErrNotFound):
				bad = append(bad, itemProblem{it.ID, classify(errNoRequest)})
			case err != nil:
				return nil, err
			}
			reqs[i] = req
		}
		seen[it.ID] = true
	}
	if len(bad) > 0 {
		return nil, invalidSelection("a request is selected twice, does not exist or lacks its action hash", bad...)
	}
	if set := policySet(reqs[0]); slices.ContainsFunc(reqs, func(r *approval.Request) bool { return policySet(r) != set }) {
		groups := map[string]bool{}
		for _, r := range reqs {
			groups[policySet(r)] = true
			bad = append(bad, itemProblem{r.ID, Problem{Type: ProblemTypePrefix + "mixed_policies", Title: "Policies differ",
				Status: http.StatusUnprocessableEntity, Code: "mixed_policies", Detail: clipDetail("matched policies: " + policySet(r))}})
		}
		return nil, refuseSelection(http.StatusUnprocessableEntity, "mixed_policies", "Selection spans policies",
			"every request decided at once must have matched the same policies; this selection spans "+strconv.Itoa(len(groups))+" sets", bad)
	}
	for i, err := range h.gate.CanDecideEach(ctx, reqs, who) {
		if err == nil && verdict == approval.VerdictApprove && requiresPasskey(reqs[i]) {
			err = errBulkPasskey
		}
		if err == nil {
			continue
		}
		p := classify(err)
		if p.Status == http.StatusInternalServerError {
			return nil, err
		}
		bad = append(bad, itemProblem{reqs[i].ID, p})
	}
	if len(bad) > 0 {
		return nil, refuseSelection(http.StatusConflict, "not_decidable", "Not yours to decide now",
			plural(len(bad), "selected request")+" may not be decided by "+who+" now; nothing was decided", bad)
	}
	return reqs, nil
}

var errBulkPasskey = &httpError{http.StatusForbidden, "passkey", "Passkey confirmation missing or invalid",
	"an approval of this request needs your passkey: approve it from its own page"}

// bulkResult is what became of one request of a bulk decision.
type bulkResult struct {
	ID string `json:"id"`
	// Status is "recorded" or "refused".
	Status string `json:"status"`
	// RequestStatus is the request's status after the vote, if recorded.
	RequestStatus approval.Status `json:"request_status,omitempty"`
	Vote          *approval.Vote  `json:"vote,omitempty"`
	Error         *Problem        `json:"error,omitempty"`

	req *approval.Request // after the vote, or as checked if refused
}

// decideEach records the decision of who on each request of a checked
// selection, in order: each a Decide of its own, with a token minted for
// who alone (as a session decision on one request is) and the action hash
// of its item, so that every check applies to each vote and a vote never
// binds an action other than the one shown.
func (h *handler) decideEach(r *http.Request, who string, verdict approval.Verdict, reason string, items []bulkItem, reqs []*approval.Request) []bulkResult {
	ctx := r.Context()
	out := make([]bulkResult, len(items))
	for i, it := range items {
		res := bulkResult{ID: it.ID, req: reqs[i]}
		tok, err := h.gate.IssueToken(it.ID, who, verdict, DecisionTokenTTL)
		var req *approval.Request
		if err == nil {
			req, err = h.gate.Decide(ctx, it.ID, approval.Decision{Token: tok, Verdict: verdict, Reason: reason, ActionHash: it.ActionHash})
		}
		if err != nil {
			p := classify(err)
			h.logInternal(r, p, err)
			res.Status, res.Error = "refused", &p
		} else {
			res.Status, res.RequestStatus, res.req = "recorded", req.Status, req
			if vt, ok := ownVote(req, who); ok {
				res.Vote = &vt
			}
		}
		out[i] = res
	}
	return out
}

// apiBulk is POST /api/approvals/bulk: one decision of the signed-in
// reviewer on each of several requests, refused whole up front when the
// selection is (see checkSelection), otherwise answered per request.
func (h *handler) apiBulk(w http.ResponseWriter, r *http.Request) {
	who := h.reviewer(r)
	if who == "" {
		h.problem(w, r, errUnauthenticated)
		return
	}
	var body bulkBody
	if err := decodeJSON(w, r, &body, maxDecideBodyBytes, false); err != nil {
		h.problem(w, r, err)
		return
	}
	reqs, err := h.checkSelection(r.Context(), who, body.Verdict, body.Requests, true)
	if err != nil {
		h.bulkProblem(w, r, err)
		return
	}
	res := h.decideEach(r, who, body.Verdict, body.Reason, body.Requests, reqs)
	out := bulkJSON{Verdict: body.Verdict, Results: res}
	for _, x := range res {
		if x.Status == "recorded" {
			out.Recorded++
		} else {
			out.Refused++
		}
	}
	writeJSON(w, http.StatusOK, "application/json", &out)
}

// bulkJSON is the answer of POST /api/approvals/bulk.
type bulkJSON struct {
	Verdict  approval.Verdict `json:"verdict"`
	Recorded int              `json:"recorded"`
	Refused  int              `json:"refused"`
	Results  []bulkResult     `json:"results"`
}

// bulkProblemJSON is a refusal of a whole selection: a problem object
// with the refused requests as an extension member.
type bulkProblemJSON struct {
	Problem
	Requests []itemProblem `json:"requests,omitempty"`
}

// bulkProblem writes err as a problem, with the requests it refused.
func (h *handler) bulkProblem(w http.ResponseWriter, r *http.Request, err error) {
	var br *bulkRefusal
	if !errors.As(err, &br) {
		h.problem(w, r, err)
		return
	}
	p := classify(&br.httpError)
	writeJSON(w, p.Status, "application/problem+json", &bulkProblemJSON{Problem: p, Requests: br.items})
}

// bulkView is the data of the bulk pages: the confirmation of a
// selection, the results of its decisions, or its refusal.
type bulkView struct {
	pageChrome
	Base, Viewer string
	Script       bool // never
	Verdict      approval.Verdict
	Reason       string
	Policies     string
	Items        []bulkItemView
	// Confirm is set on the confirmation page, whose form posts to Action.
	Confirm bool
	Action  string
	// Results is set on the results page.
	Results           bool
	Recorded, Refused int
	// Refusal is set when the selection was refused whole.
	Refusal *Problem
}

// bulkItemView is one selected request on a bulk page.
type bulkItemView struct {
	ID, URL, Name, RequestedBy, Message, Policies, Amount, ActionHash string
	EditedBy                                                          string
	Payload                                                           payloadView
	// Status is "recorded" or "refused" on the results page; Problem
	// says why a request was refused.
	Status             string
	Problem            *Problem
	RequestStatus      approval.Status
	RequestStatusLabel string
	Progress           string
}

// bulkItemOf is what the bulk pages show of req.
func (h *handler) bulkItemOf(b string, req *approval.Request) bulkItemView {
	keys := h.keysFor(req)
	iv := bulkItemView{ID: req.ID, URL: b + "approvals/" + req.ID, Name: req.Action.Name, RequestedBy: req.Action.RequestedBy,
		Message: req.Action.Message, Policies: policySet(req), Amount: fmtAmount(req.Action.Cost), ActionHash: boundHash(req),
		RequestStatus: req.Status, RequestStatusLabel: statusLabel(req.Status)}
	if e := req.Edit; e != nil {
		ered, _ := approval.Action{Payload: e.Payload}.Redact(keys)
		iv.Payload, iv.EditedBy = payloadCut(e.Payload, ered.Payload, len(keys) > 0, bulkPayloadDisplayBytes), e.By
	} else {
		red, _ := req.Action.Redact(keys)
		iv.Payload = payloadCut(req.Action.Payload, red.Payload, len(keys) > 0, bulkPayloadDisplayBytes)
	}
	if req.Status.Open() {
		iv.Progress = progressShort(req)
	}
	return iv
}

// parseBulkForm reads a bulk form: verdict, reason, and the selection
// (id, repeated; with hashes, action_hash, repeated in the same order).
func (h *handler) parseBulkForm(w http.ResponseWriter, r *http.Request, hashes bool) (approval.Verdict, string, []bulkItem, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxDecideBodyBytes)
	if err := r.ParseForm(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return "", "", nil, tooLarge
		}
		return "", "", nil, errMalformed("the form could not be read")
	}
	ids := r.PostForm["id"]
	items := make([]bulkItem, len(ids))
	for i, id := range ids {
		items[i].ID = id
	}
	if hashes {
		hs := r.PostForm["action_hash"]
		if len(hs) != len(ids) {
			return "", "", nil, invalidSelection("each selected request needs the action hash it was shown with")
		}
		for i, hh := range hs {
			items[i].ActionHash = hh
		}
	}
	return approval.Verdict(r.PostForm.Get("verdict")), r.PostForm.Get("reason"), items, nil
}

// bulkForm is POST /approvals/bulk, from the queue: the confirmation page
// of a selection, listing what each vote will bind, or its refusal.
// It decides nothing.
func (h *handler) bulkForm(w http.ResponseWriter, r *http.Request) {
	who := h.reviewer(r)
	if who == "" {
		h.errorPage(w, r, errUnauthenticated)
		return
	}
	verdict, reason, items, err := h.parseBulkForm(w, r, false)
	if err != nil {
		h.bulkPage(w, r, who, err)
		return
	}
	reqs, err := h.checkSelection(r.Context(), who, verdict, items, false)
	if err != nil {
		h.bulkPage(w, r, who, err)
		return
	}
	v := &bulkView{pageChrome: pageChrome{Session: true}, Base: base(r), Viewer: who, Verdict: verdict, Reason: reason,
		Confirm: true, Action: base(r) + "approvals/bulk/decide", Policies: policySet(reqs[0])}
	for _, req := range reqs {
		v.Items = append(v.Items, h.bulkItemOf(v.Base, req))
	}
	h.render(w, r, http.StatusOK, bulkTmpl, v)
}

// bulkDecideForm is POST /approvals/bulk/decide, from the confirmation
// page: the selection is checked again, then each request is decided on
// its own, bound to the action hash the confirmation showed, and the
// results page says what became of each.
func (h *handler) bulkDecideForm(w http.ResponseWriter, r *http.Request) {
	who := h.reviewer(r)
	if who == "" {
		h.errorPage(w, r, errUnauthenticated)
		return
	}
	verdict, reason, items, err := h.parseBulkForm(w, r, true)
	if err != nil {
		h.bulkPage(w, r, who, err)
		return
	}
	reqs, err := h.checkSelection(r.Context(), who, verdict, items, true)
	if err != nil {
		h.bulkPage(w, r, who, err)
		return
	}
	res := h.decideEach(r, who, verdict, reason, items, reqs)
	v := &bulkView{pageChrome: pageChrome{Session: true}, Base: base(r), Viewer: who, Verdict: verdict, Reason: reason,
		Results: true, Policies: policySet(reqs[0])}
	for _, x := range res {
		iv := h.bulkItemOf(v.Base, x.req)
		iv.Status, iv.Problem = x.Status, x.Error
		if x.Status == "recorded" {
			v.Recorded++
		} else {
			v.Refused++
		}
		v.Items = append(v.Items, iv)
	}
	h.render(w, r, http.StatusOK, bulkTmpl, v)
}

// bulkPage answers a refused selection: the page lists the requests
// refused and why; an error that is not a refusal is an error page.
func (h *handler) bulkPage(w http.ResponseWriter, r *http.Request, who string, err error) {
	var br *bulkRefusal
	if !errors.As(err, &br) {
		var he *httpError
		if !errors.As(err, &he) {
			h.errorPage(w, r, err)
			return
		}
		br = &bulkRefusal{httpError: *he}
	}
	p := classify(&br.httpError)
	v := &bulkView{pageChrome: pageChrome{Session: true}, Base: base(r), Viewer: who, Refusal: &p}
	for _, it := range br.items {
		iv := bulkItemView{ID: it.ID, Status: "refused", Problem: &it.Error}
		if isRequestID(it.ID) {
			iv.URL = v.Base + "approvals/" + it.ID
			if req, err := h.gate.Get(r.Context(), it.ID); err == nil {
				iv = h.bulkItemOf(v.Base, req)
				iv.Status, iv.Problem = "refused", &it.Error
			}
		}
		v.Items = append(v.Items, iv)
	}
	h.render(w, r, p.Status, bulkTmpl, v)
}
