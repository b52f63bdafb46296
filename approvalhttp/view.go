package approvalhttp

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/signoff/approval"
)

// The data the page templates print: every value preformatted here, so
// the templates only read fields.

type reviewView struct {
	Base, Viewer string
	ID           string
	Status       approval.Status
	StatusLabel  string
	StatusNote   string
	Reason       string
	PolicyReason string

	Name, RequestedBy, Message, RunID, StepID string
	Risk, Cost                                string
	Tags, Constraints, Rules                  []string
	Metadata                                  []metaView
	Provenance                                *approval.Provenance

	ActionHash, PayloadHash string
	Payload                 payloadView
	Diff                    []fileView
	Redacted                bool

	Policies        []policyView
	Recommendations []recView
	Votes           []voteView
	History         []eventView
	HistoryMore     bool

	Created, CreatedISO, Deadline, DeadlineISO, TimeLeft string
	Resolved, ResolvedISO, Expires, ExpiresISO           string
	Overdue                                              bool

	Flash      string
	Form       *formView
	NoForm     string // why no decision can be made here
	NoFormCode string
	LinkFor    string // the token's subject, for a link
	SignedInAs string // the session's reviewer, when it differs from LinkFor
}

type metaView struct {
	Key, Value string
	Masked     bool
}

type payloadView struct {
	Kind      string // none, json, text, binary, hidden
	Size      int
	Text      string
	Truncated bool
	Shown     int
}

type fileView struct {
	Path, OldPath string
	Adds, Dels    int
	Hunks         []hunkView
}

type hunkView struct {
	Header string
	Lines  []lineView
}

type lineView struct{ Class, Text string }

type policyView struct {
	Name, Hash, Needs, Approvers, MatchError string
	Escalation                               []string
}

// recView is an automated reviewer's recommendation.
type recView struct {
	By, Summary, Confidence, At, AtISO string
	Verdict                            approval.Verdict
	Context                            []metaView
}

type voteView struct {
	Approver, OnBehalfOf, Reason, Policies, At, AtISO string
	Verdict                                           approval.Verdict
}

type eventView struct {
	Type              approval.EventType
	Actor, Reason, At string
	AtISO             string
	Verdict           approval.Verdict
}

type formView struct {
	Action  string
	Token   string
	Approve bool
	Deny    bool
}

// statusLabels tell the statuses apart at a glance, terminal ones included.
var statusLabels = map[approval.Status]string{
	approval.StatusPending:   "Pending",
	approval.StatusEscalated: "Escalated",
	approval.StatusApproved:  "Approved",
	approval.StatusDenied:    "Denied",
	approval.StatusCancelled: "Cancelled",
	approval.StatusTimedOut:  "Timed out",
	approval.StatusConsumed:  "Approved and used",
	approval.StatusExpired:   "Expired",
}

var statusNotes = map[approval.Status]string{
	approval.StatusPending:   "Waiting for approvers.",
	approval.StatusEscalated: "Waiting for approvers; escalated to further approvers.",
	approval.StatusApproved:  "The requester may now run the action, once.",
	approval.StatusDenied:    "The action must not run.",
	approval.StatusCancelled: "The request was withdrawn; the action must not run.",
	approval.StatusTimedOut:  "No decision was reached before the deadline.",
	approval.StatusConsumed:  "The approval was used: the action was allowed to run.",
	approval.StatusExpired:   "Approved, but not used in time: the approval lapsed.",
}

func statusLabel(s approval.Status) string {
	if l, ok := statusLabels[s]; ok {
		return l
	}
	return string(s)
}

const timeLayout = "2006-01-02 15:04:05 UTC"

func fmtTime(t time.Time) (text, iso string) {
	if t.IsZero() {
		return "", ""
	}
	t = t.UTC()
	return t.Format(timeLayout), t.Format(time.RFC3339)
}

// left says how long until d, coarsely ("3h 12m left").
func left(d time.Duration) string {
	if d <= 0 {
		return "deadline passed"
	}
	d = d.Round(time.Second)
	days, hours, mins := int(d/(24*time.Hour)), int(d/time.Hour)%24, int(d/time.Minute)%60
	switch {
	case days > 0:
		return fmt.Sprintf("%dd %dh left", days, hours)
	case hours > 0:
		return fmt.Sprintf("%dh %dm left", hours, mins)
	case mins > 0:
		return fmt.Sprintf("%dm left", mins)
	}
	return fmt.Sprintf("%ds left", int(d/time.Second))
}

func fmtCost(c *approval.Cost) string {
	if c == nil {
		return ""
	}
	s := strconv.FormatFloat(c.Amount, 'f', -1, 64)
	if c.Currency != "" {
		s += " " + c.Currency
	}
	return s
}

// review builds the page data for req, its audit events and redaction
// keys; the caller adds the viewer and the form.
func (h *handler) review(req *approval.Request, events []approval.AuditEvent, keys []string, now time.Time) *reviewView {
	a := &req.Action
	v := &reviewView{
		ID: req.ID, Status: req.Status, StatusLabel: statusLabel(req.Status), StatusNote: statusNotes[req.Status],
		Reason: req.Reason, Name: a.Name, RequestedBy: a.RequestedBy, Message: a.Message, RunID: a.RunID, StepID: a.StepID,
		Risk: a.Risk.String(), Cost: fmtCost(a.Cost), Tags: a.Tags, Constraints: a.Constraints, Provenance: a.Provenance,
		ActionHash: req.ActionHash, PayloadHash: req.PayloadHash,
	}
	if req.Status == approval.StatusEscalated {
		v.StatusNote = fmt.Sprintf("Waiting for approvers; escalated %d time(s), so further approvers may decide.", req.EscalationLevel)
	}
	if lv := levelNote(req); lv != "" && req.Status.Open() {
		v.StatusNote += " " + lv
	}
	v.Created, v.CreatedISO = fmtTime(req.CreatedAt)
	v.Resolved, v.ResolvedISO = fmtTime(req.ResolvedAt)
	if req.Status == approval.StatusApproved {
		v.Expires, v.ExpiresISO = fmtTime(req.ExpiresAt)
	}
	if !req.Deadline.IsZero() {
		v.Deadline, v.DeadlineISO = fmtTime(req.Deadline)
		if req.Status.Open() {
			d := req.Deadline.Sub(now)
			v.TimeLeft, v.Overdue = left(d), d <= 0
		}
	}

	red, redacted := a.Redact(keys)
	if md := red.Metadata; len(md) > 0 {
		v.Metadata = make([]metaView, 0, len(md))
		for k, val := range md {
			mv := metaView{Key: k, Value: val}
			if redacted && masked(keys, k) {
				mv.Value, mv.Masked = "••••", true
			}
			v.Metadata = append(v.Metadata, mv)
		}
		slices.SortFunc(v.Metadata, func(x, y metaView) int { return strings.Compare(x.Key, y.Key) })
	}
	v.Payload = h.payload(a.Payload, red.Payload, len(keys) > 0)
	v.Redacted = redacted
	v.Diff = diffView(a.Diff)

	v.Policies = make([]policyView, len(req.Policies))
	for i, p := range req.Policies {
		pv := policyView{Name: p.Name, Hash: p.Hash, MatchError: p.MatchError, Approvers: approvers(p.Approvers)}
		switch {
		case len(p.Chain) > 0:
			pv.Needs, pv.Approvers = chainNow(&p)
			pv.Escalation = chainLines(&p)
		case p.RequiredApprovals > 0:
			pv.Needs = plural(p.RequiredApprovals, "approval")
			pv.Escalation = stepLines(p.Escalation, p.Progress.Steps)
			if len(p.Progress.Added) > 0 {
				pv.Approvers += "; added by escalation: " + approvers(p.Progress.Added)
			}
		default:
			pv.Needs = "refuses the action"
		}
		v.Policies[i] = pv
	}
	v.Rules = rules(req)

	for _, rec := range req.Recommendations {
		rv := recView{By: rec.By, Verdict: rec.Verdict, Summary: rec.Summary,
			Confidence: strconv.Itoa(int(rec.Confidence*100+0.5)) + "%"}
		rv.At, rv.AtISO = fmtTime(rec.At)
		for k, val := range rec.Context {
			rv.Context = append(rv.Context, metaView{Key: k, Value: val})
		}
		slices.SortFunc(rv.Context, func(x, y metaView) int { return strings.Compare(x.Key, y.Key) })
		v.Recommendations = append(v.Recommendations, rv)
	}
	v.Votes = make([]voteView, len(req.Votes))
	for i, vt := range req.Votes {
		vv := voteView{Approver: vt.Approver, OnBehalfOf: vt.OnBehalfOf, Verdict: vt.Verdict, Reason: vt.Reason,
			Policies: strings.Join(vt.Policies, ", ")}
		vv.At, vv.AtISO = fmtTime(vt.At)
		v.Votes[i] = vv
	}
	v.History = make([]eventView, len(events))
	for i, e := range events {
		ev := eventView{Type: e.Type, Actor: e.Actor, Verdict: e.Verdict, Reason: e.Reason}
		ev.At, ev.AtISO = fmtTime(e.At)
		v.History[i] = ev
		if e.Type == approval.EventRequestCreated && v.PolicyReason == "" {
			v.PolicyReason = e.Reason
		}
	}
	if v.PolicyReason == "" && req.Status.Open() {
		v.PolicyReason = req.Reason
	}
	return v
}

// rules lists what the gate will hold the request to, in words.
func rules(req *approval.Request) []string {
	var rs []string
	if req.SegregateRequester {
		if req.Action.Initiator != "" {
			rs = append(rs, "The requester ("+req.Action.RequestedBy+") and the person it acts for ("+req.Action.Initiator+") may not approve it.")
		} else {
			rs = append(rs, "The requester ("+req.Action.RequestedBy+") may not approve it.")
		}
	}
	if req.DistinctApprovers && len(req.Policies) > 1 {
		rs = append(rs, "Each approver counts toward one policy only.")
	}
	if req.DenyThreshold <= 1 {
		rs = append(rs, "One denial by an approver denies it.")
	} else {
		rs = append(rs, fmt.Sprintf("%d denials by approvers deny it.", req.DenyThreshold))
	}
	if !req.Deadline.IsZero() {
		rs = append(rs, "At the deadline it is "+map[approval.TimeoutAction]string{
			approval.TimeoutApprove: "approved", approval.TimeoutDeny: "timed out (not approved)",
		}[req.OnTimeout]+".")
	}
	if req.ApprovalTTL > 0 {
		rs = append(rs, "The approval allows one run of this exact action, within "+fmtDuration(req.ApprovalTTL)+" of approval.")
	}
	return rs
}

func approvers(as []approval.Approver) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// fmtDuration prints d without zero units: "24h", "1h30m", "90s".
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// payload returns what the page shows of the payload orig, given red,
// its form after redaction: JSON pretty-printed, text as text, and for
// binary, or for non-JSON hidden by redaction, only the size.
func (h *handler) payload(orig, red []byte, redacting bool) payloadView {
	v := payloadView{Size: len(orig)}
	var text string
	switch {
	case len(orig) == 0:
		v.Kind = "none"
		return v
	case len(red) == 0:
		v.Kind = "hidden"
		return v
	case redacting || json.Valid(red): // Redact keeps only JSON when redacting
		buf := getBuf()
		if json.Indent(buf, red, "", "  ") == nil {
			text = buf.String()
		} else {
			text = string(red)
		}
		putBuf(buf)
		v.Kind = "json"
	case utf8.Valid(red):
		v.Kind, text = "text", string(red)
	default:
		v.Kind = "binary"
		return v
	}
	if len(text) > h.maxDisplay {
		cut := h.maxDisplay
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text, v.Truncated, v.Shown = text[:cut], true, cut
	}
	v.Text = text
	return v
}

// diffView splits each hunk into lines classed by their unified-diff
// prefix.
func diffView(diff []approval.FileDiff) []fileView {
	if len(diff) == 0 {
		return nil
	}
	out := make([]fileView, len(diff))
	for i, f := range diff {
		fv := fileView{Path: f.Path, OldPath: f.OldPath, Hunks: make([]hunkView, len(f.Hunks))}
		if f.OldPath == f.Path {
			fv.OldPath = ""
		}
		for j, hk := range f.Hunks {
			hv := hunkView{Header: fmt.Sprintf("@@ -%d,%d +%d,%d @@", hk.OldStart, hk.OldLines, hk.NewStart, hk.NewLines)}
			body := strings.TrimSuffix(hk.Body, "\n")
			n := strings.Count(body, "\n") + 1
			hv.Lines = make([]lineView, 0, n)
			for line := range strings.SplitSeq(body, "\n") {
				class := "ctx"
				switch {
				case strings.HasPrefix(line, "+"):
					class = "add"
					fv.Adds++
				case strings.HasPrefix(line, "-"):
					class = "del"
					fv.Dels++
				case strings.HasPrefix(line, `\`):
					class = "meta"
				}
				hv.Lines = append(hv.Lines, lineView{Class: class, Text: line})
			}
			fv.Hunks[j] = hv
		}
		out[i] = fv
	}
	return out
}

// clipText cuts s to at most n bytes on a rune boundary, with an ellipsis.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// levelNote says which level each chain of req is on.
func levelNote(req *approval.Request) string {
	var parts []string
	for i := range req.Policies {
		p := &req.Policies[i]
		if len(p.Chain) == 0 {
			continue
		}
		if li := p.Progress.Level; li < len(p.Chain) {
			parts = append(parts, fmt.Sprintf("%s is at %s of %d.", p.Name, levelLabel(&p.Chain[li], li), len(p.Chain)))
		} else {
			parts = append(parts, p.Name+" is met.")
		}
	}
	return strings.Join(parts, " ")
}

func levelLabel(l *approval.Level, i int) string {
	if l.Name != "" {
		return fmt.Sprintf("level %d (%s)", i+1, l.Name)
	}
	return fmt.Sprintf("level %d", i+1)
}

// needs describes a requirement.
func needs(r approval.Requirement) string {
	switch {
	case r.IsAll():
		return "all must approve"
	default:
		return plural(r.Count(), "approval")
	}
}

// chainNow describes what p's current level needs, and from whom.
func chainNow(p *approval.MatchedPolicy) (string, string) {
	li := p.Progress.Level
	if li >= len(p.Chain) {
		return "met", ""
	}
	l := &p.Chain[li]
	if len(l.Groups) > 0 {
		var gs []string
		for _, g := range l.Groups {
			gs = append(gs, fmt.Sprintf("%s: %s (%s)", g.Name, approvers(g.Approvers), needs(g.Require)))
		}
		return levelLabel(l, li) + ": " + strings.ToUpper(string(logicOf(l))) + " of groups", strings.Join(gs, "; ")
	}
	as := l.Approvers
	if p.Progress.Reassigned {
		as = p.Progress.Assigned
	}
	who := approvers(as)
	if len(p.Progress.Added) > 0 {
		who += "; added by escalation: " + approvers(p.Progress.Added)
	}
	return levelLabel(l, li) + ": " + needs(l.Require), who
}

func logicOf(l *approval.Level) approval.GroupLogic {
	if l.Logic == "" {
		return approval.LogicAnd
	}
	return l.Logic
}

// chainLines lists p's levels with where the request stands in each.
func chainLines(p *approval.MatchedPolicy) []string {
	var out []string
	for i := range p.Chain {
		l := &p.Chain[i]
		state := "to come"
		switch {
		case slices.Contains(p.Skipped, i):
			state = "skipped"
		case i < p.Progress.Level:
			state = "done"
		case i == p.Progress.Level:
			state = "current"
		}
		line := levelLabel(l, i) + " (" + state + ")"
		if l.Timeout > 0 {
			line += ", times out after " + fmtDuration(l.Timeout)
		}
		out = append(out, line)
		if i == p.Progress.Level {
			out = append(out, stepLines(l.Escalation, p.Progress.Steps)...)
		}
	}
	return out
}

// stepLines lists escalation steps, marking the first done of them.
func stepLines(steps []approval.EscalationStep, done int) []string {
	var out []string
	for j, st := range steps {
		line := fmt.Sprintf("after %s: %s", fmtDuration(st.After), st.Action)
		if st.Before > 0 {
			line = fmt.Sprintf("%s before the deadline: %s", fmtDuration(st.Before), st.Action)
		}
		if len(st.To) > 0 {
			line += " " + approvers(st.To)
		}
		if j < done {
			line += " (done)"
		}
		out = append(out, line)
	}
	return out
}
