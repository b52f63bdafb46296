package approvalhttp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/wire"
)

// The operator page: what is waiting, how long people take, whether
// notifications get out and whether the audit trail verifies, from one
// Gate.Stats; and the two things an operator does about it, redriving a
// dead letter and verifying the trail now.

// maxErrorDisplay and maxDeadErrorDisplay bound a delivery error shown in
// the channels' table and in a dead letter's row; the whole error is one
// click away.
const (
	maxErrorDisplay     = 120
	maxDeadErrorDisplay = 60
)

// errNotOperator answers a signed-in reviewer Options.Operator does not
// name.
var errNotOperator = &httpError{http.StatusForbidden, "forbidden", "Forbidden",
	"this page is for operators only (the host names them with Options.Operator)"}

var errNoOutbox = &httpError{http.StatusNotImplemented, "unsupported", "Not supported by this server",
	"this gate has no outbox: there is nothing to redrive"}

// verifyFailure is the last failed "Verify now" of this handler: the
// redirect after it carries only that it failed, so that a crafted link
// cannot put words on the page.
type verifyFailure struct {
	mu  sync.Mutex
	at  time.Time
	by  string
	msg string
}

func (f *verifyFailure) set(at time.Time, by, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.at, f.by, f.msg = at, by, msg
}

func (f *verifyFailure) get() (at time.Time, by, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.at, f.by, f.msg
}

// operator returns the signed-in reviewer if Options.Operator names them
// an operator: 401 without a reviewer, 403 for one who is not an
// operator. A panicking Operator names nobody.
func (h *handler) operator(r *http.Request) (string, error) {
	who := h.reviewer(r)
	if who == "" {
		return "", errUnauthenticated
	}
	if h.isOperator == nil || !h.callOperator(r, who) {
		return "", errNotOperator
	}
	return who, nil
}

func (h *handler) callOperator(r *http.Request, who string) (ok bool) {
	defer func() {
		if p := recover(); p != nil {
			h.log.Error("approvalhttp: Options.Operator panicked; treating the reviewer as no operator",
				"method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(p))
			ok = false
		}
	}()
	return h.isOperator(r, who)
}

// operatorPage is GET /operator: the gate's Stats, the first page of
// dead letters, and the outcome of the operator's last action (from the
// query the redirect after it carries).
func (h *handler) operatorPage(w http.ResponseWriter, r *http.Request) {
	who, err := h.operator(r)
	if err != nil {
		h.errorPage(w, r, err)
		return
	}
	ctx := r.Context()
	st, err := h.gate.Stats(ctx)
	if err != nil {
		h.errorPage(w, r, err)
		return
	}
	v := operatorPageView(st, base(r), who)
	dead, err := h.gate.ListOutbox(ctx, approval.OutboxQuery{State: approval.OutboxDead})
	switch {
	case errors.Is(err, approval.ErrUnsupported):
		v.DeadNote = "This gate has no outbox: nothing is dead-lettered."
	case err != nil:
		h.errorPage(w, r, err)
		return
	default:
		v.Dead, v.DeadMore = deadViews(dead.Messages, v.Base), dead.Next != ""
	}
	if at, by, msg := h.verifyFailed.get(); !at.IsZero() && !at.Before(st.Verified.At) {
		v.Audit.Failed = &failureView{By: by, Message: msg}
		v.Audit.Failed.At, v.Audit.Failed.AtISO = fmtTime(at)
	}
	v.Flash, v.FlashError, v.FlashIn = flash(r.URL.Query(), &h.verifyFailed)
	h.render(w, r, http.StatusOK, operatorTmpl, v)
}

// flash says what the operator's last action did, from the query of the
// redirect after it, and in which section of the page (the one the
// redirect's fragment shows): only numbers and an outbox ID travel there,
// each checked, and every sentence is the handler's own.
func flash(q url.Values, vf *verifyFailure) (msg string, failed bool, in string) {
	id := q.Get("id")
	if !isOutboxID(id) {
		id = ""
	}
	switch {
	case q.Get("redriven") == "1" && id != "":
		return "Message " + id + " was redriven: it is pending again, due now, with a fresh count of attempts.", false, "dead-letters"
	case q.Get("redrive") == "not_found":
		return "Nothing was redriven: " + orThat(id, "the message") + " is not a dead letter (redriven or delivered already, or unknown).", true, "dead-letters"
	case q.Get("verified") != "":
		events, err1 := strconv.ParseInt(q.Get("verified"), 10, 64)
		seq, err2 := strconv.ParseInt(q.Get("seq"), 10, 64)
		if err1 != nil || err2 != nil || events < 0 || seq < 0 {
			return "", false, ""
		}
		what := "the whole trail"
		if q.Get("from") != "" {
			if from, err := strconv.ParseInt(q.Get("from"), 10, 64); err == nil && from > 0 {
				what = "from seq " + strconv.FormatInt(from, 10)
			}
		}
		return "The audit trail verified: " + plural(int(events), "event") + ", " + what + " to seq " + strconv.FormatInt(seq, 10) + ".", false, "audit"
	case q.Get("verify") == "failed":
		if _, _, m := vf.get(); m != "" {
			return "The audit trail did not verify: " + m, true, "audit"
		}
		return "The audit trail did not verify; the server logged the cause.", true, "audit"
	}
	return "", false, ""
}

func orThat(s, alt string) string {
	if s == "" {
		return alt
	}
	return "message " + s
}

// isOutboxID reports whether id may be an outbox message's ID (a UUID, or
// a notification's ID) worth echoing: short, of letters, digits and
// punctuation that reads as such.
func isOutboxID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range []byte(id) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// operatorForm parses an operator's POST, bounded like a decision's.
func (h *handler) operatorForm(w http.ResponseWriter, r *http.Request) (string, bool) {
	who, err := h.operator(r)
	if err != nil {
		h.errorPage(w, r, err)
		return "", false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxDecideBodyBytes)
	if err := r.ParseForm(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			h.errorPage(w, r, tooLarge)
			return "", false
		}
		h.errorPage(w, r, errMalformed("the form could not be read"))
		return "", false
	}
	return who, true
}

// redriveForm is POST /operator/redrive, field id: Gate.Redrive of that
// dead letter as the operator, then 303 to the operator page saying what
// happened. An ID that is no dead letter changes nothing.
func (h *handler) redriveForm(w http.ResponseWriter, r *http.Request) {
	who, ok := h.operatorForm(w, r)
	if !ok {
		return
	}
	id := r.PostForm.Get("id")
	if id == "" {
		h.errorPage(w, r, errMalformed("id (the outbox message to redrive) is required"))
		return
	}
	q := url.Values{}
	if isOutboxID(id) {
		q.Set("id", id)
	}
	switch _, err := h.gate.Redrive(r.Context(), who, id); {
	case errors.Is(err, approval.ErrNotFound):
		q.Set("redrive", "not_found")
	case errors.Is(err, approval.ErrUnsupported):
		h.errorPage(w, r, errNoOutbox)
		return
	case err != nil:
		h.errorPage(w, r, err)
		return
	default:
		q.Set("redriven", "1")
	}
	// Relative to /operator/redrive: the operator page, under any prefix.
	w.Header().Set("Location", "../operator?"+q.Encode()+"#dead-letters")
	w.WriteHeader(http.StatusSeeOther)
}

// verifyForm is POST /operator/verify: Gate.VerifyAuditTrail from the
// head this gate last verified (the whole trail if none), bounded by the
// request, then 303 to the operator page with the outcome.
func (h *handler) verifyForm(w http.ResponseWriter, r *http.Request) {
	who, ok := h.operatorForm(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	st, err := h.gate.Stats(ctx)
	if err != nil {
		h.errorPage(w, r, err)
		return
	}
	from := st.Verified.Head
	rep, err := h.gate.VerifyAuditTrail(ctx, approval.VerifyAuditOptions{From: from})
	q := url.Values{}
	if err != nil {
		h.verifyFailed.set(h.now(), who, h.verifyMessage(r, err))
		q.Set("verify", "failed")
	} else {
		q.Set("verified", strconv.FormatInt(rep.Events, 10))
		q.Set("seq", strconv.FormatInt(rep.Head.Seq, 10))
		if from.Seq > 0 {
			q.Set("from", strconv.FormatInt(from.Seq, 10))
		}
	}
	w.Header().Set("Location", "../operator?"+q.Encode()+"#audit")
	w.WriteHeader(http.StatusSeeOther)
}

// verifyMessage says why a verification failed: the gate's words for a
// trail that does not verify (the first bad event, the request not
// accounted for), not those of a store's failure, which may name hosts or
// SQL and is logged.
func (h *handler) verifyMessage(r *http.Request, err error) string {
	switch {
	case errors.Is(err, approval.ErrAuditChain), errors.Is(err, approval.ErrInvalidHead):
		return clipDetail(err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "the verification was cut short when the request ended; try again, or run it from the command line."
	}
	h.log.Error("approvalhttp: verify audit trail", "method", r.Method, "path", r.URL.Path, "err", err)
	return "the verification could not run; the server logged the cause."
}

// apiStats is GET /api/stats: Gate.Stats for an operator.
func (h *handler) apiStats(w http.ResponseWriter, r *http.Request) {
	if _, err := h.operator(r); err != nil {
		h.problem(w, r, err)
		return
	}
	st, err := h.gate.Stats(r.Context())
	if err != nil {
		h.problem(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, "application/json", toStatsJSON(st))
}

// apiCancel is POST /api/approvals/{id}/cancel, body {"reason": "..."}:
// an operator (Options.Operator) ends a request, audited as
// request.cancelled with the operator as its actor (never a name from the
// body). It answers the request's state after it.
func (h *handler) apiCancel(w http.ResponseWriter, r *http.Request) {
	who, err := h.operator(r)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	var body struct {
		Reason string `json:"reason"`
	}
	if err := decodeJSON(w, r, &body, maxDecideBodyBytes, true); err != nil {
		h.problem(w, r, err)
		return
	}
	if strings.TrimSpace(body.Reason) == "" {
		h.problem(w, r, errMalformed("reason is required: the audit trail says why the request was cancelled"))
		return
	}
	id := r.PathValue("id")
	if !isRequestID(id) {
		h.problem(w, r, errNoRequest)
		return
	}
	req, err := h.gate.Cancel(r.Context(), id, who, body.Reason)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, "application/json", &decideResult{RequestID: req.ID, Status: req.Status, Reason: req.Reason})
}

// statsJSON is the answer of GET /api/stats: approval.Stats with the
// API's spellings, every duration a string in Go's syntax ("1h0m0s").
type statsJSON struct {
	At             time.Time        `json:"at"`
	Open           []policyOpenJSON `json:"open"`
	Decisions      []decisionsJSON  `json:"decisions"`
	Channels       []channelJSON    `json:"channels"`
	Head           headJSON         `json:"head"`
	LastCheckpoint *checkpointJSON  `json:"last_checkpoint,omitempty"`
	Verified       *verifiedJSON    `json:"verified,omitempty"`
}

type policyOpenJSON struct {
	Policy string    `json:"policy"`
	Count  int       `json:"count"`
	Oldest time.Time `json:"oldest"`
}

type decisionsJSON struct {
	Policy string              `json:"policy"`
	Day    decisionTimesJSON   `json:"day"`
	Week   decisionTimesJSON   `json:"week"`
	Daily  []decisionTimesJSON `json:"daily"`
}

type decisionTimesJSON struct {
	Count     int           `json:"count"`
	Approved  int           `json:"approved"`
	Denied    int           `json:"denied"`
	TimedOut  int           `json:"timed_out"`
	Cancelled int           `json:"cancelled"`
	P50       wire.Duration `json:"p50"`
	P90       wire.Duration `json:"p90"`
}

type channelJSON struct {
	Channel       string    `json:"channel"`
	Pending       int       `json:"pending"`
	OldestPending time.Time `json:"oldest_pending,omitzero"`
	Retrying      int       `json:"retrying"`
	Dead          int       `json:"dead"`
	LastError     string    `json:"last_error,omitempty"`
}

// headJSON is an approval.AuditHead: {"seq", "hash"}.
type headJSON struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

type checkpointJSON struct {
	headJSON
	At time.Time `json:"at"`
}

type verifiedJSON struct {
	Head   headJSON  `json:"head"`
	Events int64     `json:"events"`
	At     time.Time `json:"at"`
}

func toStatsJSON(st approval.Stats) *statsJSON {
	out := &statsJSON{At: st.At, Head: headJSON(st.Head), Open: []policyOpenJSON{}, Decisions: []decisionsJSON{}, Channels: []channelJSON{}}
	for _, o := range st.Open {
		out.Open = append(out.Open, policyOpenJSON{o.Policy, o.Count, o.Oldest})
	}
	times := func(t approval.DecisionTimes) decisionTimesJSON {
		return decisionTimesJSON{t.Count, t.Approved, t.Denied, t.TimedOut, t.Cancelled, wire.Duration(t.P50), wire.Duration(t.P90)}
	}
	for _, d := range st.Decisions {
		dj := decisionsJSON{Policy: d.Policy, Day: times(d.Day), Week: times(d.Week), Daily: make([]decisionTimesJSON, len(d.Daily))}
		for i, b := range d.Daily {
			dj.Daily[i] = times(b)
		}
		out.Decisions = append(out.Decisions, dj)
	}
	for _, c := range st.Channels {
		out.Channels = append(out.Channels, channelJSON{c.Channel, c.Pending, c.OldestPending, c.Retrying, c.Dead, c.LastError})
	}
	if st.LastCheckpoint.Seq > 0 {
		out.LastCheckpoint = &checkpointJSON{headJSON(st.LastCheckpoint), st.LastCheckpointAt}
	}
	if !st.Verified.At.IsZero() {
		out.Verified = &verifiedJSON{headJSON(st.Verified.Head), st.Verified.Events, st.Verified.At}
	}
	return out
}
