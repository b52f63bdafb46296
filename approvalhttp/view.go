package approvalhttp

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/currency"

	"github.com/signoff/approval"
)

// The data the page templates print: every value preformatted here, so
// the templates only read fields.

type reviewView struct {
	pageChrome
	Base, Viewer string
	// Script loads passkey.js (an approval with a passkey).
	Script       bool
	ID           string
	Status       approval.Status
	StatusLabel  string
	StatusNote   string
	Reason       string
	PolicyReason string

	Name, RequestedBy, Initiator, Message, RunID, StepID string
	Risk, Amount                                         string
	Tags, Constraints, Rules                             []string
	Metadata                                             []metaView
	Provenance                                           *approval.Provenance

	// ActionHash and PayloadHash are what a vote binds: the edited
	// action's once an approver edited the payload.
	ActionHash, PayloadHash string
	// Payload is the payload a vote binds, redacted.
	Payload  payloadView
	Edit     *editView
	Diff     []fileView
	Redacted bool

	// Progress says, per policy and level, what is met and what is
	// missing; ProgressShort is its one-line form.
	Progress        []progressView
	Policies        []policyView
	Recommendations []recView
	Votes           []voteView
	History         []eventView
	Plumbing        string // the delivery and operator events, summarised
	HistoryMore     bool

	Created, CreatedISO, Deadline, DeadlineISO, TimeLeft string
	Resolved, ResolvedISO, Expires, ExpiresISO           string
	Overdue                                              bool

	// Prior is set when an identical action was approved and ran
	// recently (approval.Request.Prior): a reviewer may be asked to
	// approve a duplicate.
	Prior *priorView
	// IdempotencyKey is the business operation the action names.
	IdempotencyKey string

	Flash      string
	Form       *formView
	NoForm     string // why no decision can be made here
	NoFormCode string
	LinkFor    string // the token's subject, for a link
	SignedInAs string // the session's reviewer, when it differs from LinkFor
}

// priorView is the earlier run of the identical action.
type priorView struct {
	RequestID, URL, At, AtISO string
}

// editView is what the page shows of an edit: who made it and what
// changed from the payload asked for.
type editView struct {
	By, At, AtISO                           string
	OriginalActionHash, OriginalPayloadHash string
	Changes                                 []changeView
	// Original is the payload asked for, redacted, shown beside the
	// changes (and alone when either payload is not JSON).
	Original payloadView
	NotJSON  bool
}

type changeView struct {
	Path, Kind, Old, New string
	Redacted             bool
}

// progressView is one matched policy's standing.
type progressView struct {
	Policy string
	Level  string // "level 2 of 3 (Director)", empty for a flat policy
	Lines  []string
	Met    bool
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
	Approver, OnBehalfOf, Reason, Policies, At, AtISO, Denial string
	Verdict                                                   approval.Verdict
	// Passkey names the passkey the vote was confirmed with, if any.
	Passkey string
}

type eventView struct {
	Type                     approval.EventType
	Label, Actor, Reason, At string
	AtISO                    string
	Verdict                  approval.Verdict
}

type formView struct {
	Action  string
	Token   string
	Approve bool
	Deny    bool
	// Chosen is the answer the link preselected ("approve" or "deny"):
	// that button comes first; both are offered.
	Chosen approval.Verdict
	// Retries are the choices of a denial's retry advice.
	Retries []option
	// Passkey is, for an approval that needs the approver's passkey
	// (Policy.RequirePasskey), where the page gets its challenge.
	Passkey string
}

// requiresPasskey reports whether an approval of r needs a passkey.
func requiresPasskey(r *approval.Request) bool {
	for _, p := range r.Policies {
		if p.RequirePasskey {
			return true
		}
	}
	return false
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

// fmtAmount formats a cost for a person: grouped digits, the currency's
// minor units (ISO 4217, from CLDR: 2 for USD and EUR, 0 for JPY, 3 for
// KWD), then the currency code: "125,000.00 USD". A code the table does
// not know keeps the amount's own digits.
func fmtAmount(c *approval.Cost) string {
	if c == nil {
		return ""
	}
	scale := -1
	if u, err := currency.ParseISO(c.Currency); err == nil {
		scale, _ = currency.Standard.Rounding(u)
	}
	s := strconv.FormatFloat(c.Amount, 'f', scale, 64)
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	whole, frac, hasFrac := strings.Cut(s, ".")
	var b strings.Builder
	b.WriteString(sign)
	for i, d := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	if hasFrac {
		b.WriteString("." + frac)
	}
	if c.Currency != "" {
		b.WriteString(" " + c.Currency)
	}
	return b.String()
}

// review builds the page data for req, its audit events and redaction
// keys; the caller adds the viewer and the form.
func (h *handler) review(req *approval.Request, events []approval.AuditEvent, keys []string, now time.Time) *reviewView {
	a := &req.Action
	v := &reviewView{
		ID: req.ID, Status: req.Status, StatusLabel: statusLabel(req.Status), StatusNote: statusNotes[req.Status],
		Reason: req.Reason, Name: a.Name, RequestedBy: a.RequestedBy, Initiator: a.Initiator, Message: a.Message,
		RunID: a.RunID, StepID: a.StepID, Risk: a.Risk.String(), Amount: fmtAmount(a.Cost), Tags: a.Tags,
		Constraints: a.Constraints, Provenance: a.Provenance,
	}
	v.ActionHash, v.PayloadHash = req.ActionHash, req.PayloadHash
	v.IdempotencyKey = a.IdempotencyKey
	if p := req.Prior; p != nil {
		v.Prior = &priorView{RequestID: p.RequestID}
		v.Prior.At, v.Prior.AtISO = fmtTime(p.At)
	}
	if req.Status == approval.StatusEscalated {
		v.StatusNote = fmt.Sprintf("Waiting for approvers; escalated %d time(s), so further approvers may decide.", req.EscalationLevel)
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
	if e := req.Edit; e != nil {
		// What a vote binds is the edited payload: show it in the
		// payload's place, and the payload asked for beside the changes.
		ered, eredacted := approval.Action{Payload: e.Payload}.Redact(keys)
		redacted = redacted || eredacted
		ev := &editView{By: e.By, OriginalActionHash: req.ActionHash, OriginalPayloadHash: req.PayloadHash, Original: v.Payload}
		ev.At, ev.AtISO = fmtTime(e.At)
		sum := req.EditSummary(keys)
		ev.NotJSON = sum.NotJSON
		for _, c := range sum.Changes {
			ev.Changes = append(ev.Changes, changeView{Path: c.Path, Kind: string(c.Kind), Old: string(c.Old), New: string(c.New), Redacted: c.Redacted})
		}
		v.Edit = ev
		v.Payload = h.payload(e.Payload, ered.Payload, len(keys) > 0)
		v.ActionHash, v.PayloadHash = e.ActionHash, e.PayloadHash
	}
	v.Redacted = redacted
	v.Diff = diffView(a.Diff)

	v.Progress = progressViews(req)
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
		if vt.Denial != nil {
			vv.Denial = vt.Denial.String()
		}
		if vt.Passkey != nil {
			vv.Passkey = vt.Passkey.CredentialID
		}
		vv.At, vv.AtISO = fmtTime(vt.At)
		v.Votes[i] = vv
	}
	v.History, v.Plumbing = history(events)
	for _, e := range events {
		if e.Type == approval.EventRequestCreated {
			v.PolicyReason = e.Reason
			break
		}
	}
	if v.PolicyReason == "" && req.Status.Open() {
		v.PolicyReason = req.Reason
	}
	if req.Status.Open() && v.Reason == v.PolicyReason {
		v.Reason = "" // said once, under "Why approval is needed"
	}
	return v
}

// reviewerEvents are the events a reviewer's history lists: decisions and
// the request's life. The rest (deliveries, reminders, operators'
// events) is summarised in one line, without any person's delivery
// errors; the audit API has it whole.
var reviewerEvents = map[approval.EventType]bool{
	approval.EventRequestCreated: true, approval.EventDecisionApprove: true, approval.EventDecisionDeny: true,
	approval.EventRequestEscalated: true, approval.EventRequestReassigned: true, approval.EventLevelPassed: true,
	approval.EventLevelSkipped: true, approval.EventLevelOpened: true, approval.EventRequestTimedOut: true,
	approval.EventRequestApproved: true, approval.EventRequestDenied: true, approval.EventRequestCancelled: true,
	approval.EventDeadlineMoved: true, approval.EventApprovalConsumed: true, approval.EventApprovalExpired: true,
	approval.EventBreakGlass: true, approval.EventPayloadEdited: true, approval.EventRequestRecommended: true,
}

// history returns the events a reviewer reads, and a summary of the rest.
func history(events []approval.AuditEvent) ([]eventView, string) {
	out := make([]eventView, 0, len(events))
	var sent, failed, refused, other int
	for _, e := range events {
		switch {
		case reviewerEvents[e.Type]:
			ev := eventView{Type: e.Type, Label: eventLabels[e.Type], Actor: e.Actor, Verdict: e.Verdict, Reason: e.Reason}
			if ev.Label == "" {
				ev.Label = string(e.Type)
			}
			ev.At, ev.AtISO = fmtTime(e.At)
			out = append(out, ev)
		case e.Type == approval.EventNotificationSent:
			sent++
		case e.Type == approval.EventNotificationFailed || e.Type == approval.EventNotificationDeadLettered:
			failed++
		case e.Type == approval.EventDecisionRejected:
			refused++
		default:
			other++
		}
	}
	var parts []string
	if sent > 0 {
		parts = append(parts, plural(sent, "notification")+" sent")
	}
	if failed > 0 {
		parts = append(parts, plural(failed, "delivery attempt")+" failed")
	}
	if refused > 0 {
		parts = append(parts, plural(refused, "decision")+" refused")
	}
	if other > 0 {
		parts = append(parts, plural(other, "other event"))
	}
	return out, strings.Join(parts, ", ")
}

// eventLabels name the reviewer's events in words.
var eventLabels = map[approval.EventType]string{
	approval.EventRequestCreated: "Requested", approval.EventDecisionApprove: "Approved by",
	approval.EventDecisionDeny: "Denied by", approval.EventRequestEscalated: "Escalated",
	approval.EventRequestReassigned: "Reassigned", approval.EventLevelPassed: "Level passed",
	approval.EventLevelSkipped: "Level skipped", approval.EventLevelOpened: "Level opened",
	approval.EventRequestTimedOut: "Timed out", approval.EventRequestApproved: "Request approved",
	approval.EventRequestDenied: "Request denied", approval.EventRequestCancelled: "Cancelled",
	approval.EventDeadlineMoved: "Deadline moved", approval.EventApprovalConsumed: "Approval used",
	approval.EventApprovalExpired: "Approval expired", approval.EventBreakGlass: "Break-glass approval by",
	approval.EventPayloadEdited: "Payload edited by", approval.EventRequestRecommended: "Recommendation by",
}

// progressViews says, per policy and level, what is met and who approved:
// "1 of 2 from finance; bob approved".
func progressViews(req *approval.Request) []progressView {
	st := req.Standing()
	out := make([]progressView, 0, len(st))
	for _, s := range st {
		pv := progressView{Policy: s.Policy, Met: s.Met}
		if s.Levels > 1 {
			if s.Level < s.Levels {
				pv.Level = fmt.Sprintf("level %d of %d", s.Level+1, s.Levels)
				if s.LevelName != "" {
					pv.Level += " (" + s.LevelName + ")"
				}
			} else {
				pv.Level = fmt.Sprintf("all %d levels", s.Levels)
			}
		}
		switch {
		case s.Refuses:
			pv.Lines = []string{"refuses the action"}
		case s.Met:
			line := "met"
			if len(s.ApprovedBy) > 0 {
				line += "; approved by " + strings.Join(s.ApprovedBy, ", ")
			}
			pv.Lines = []string{line}
		default:
			for _, u := range s.Units {
				pv.Lines = append(pv.Lines, unitLine(u))
			}
			if len(s.Units) > 1 {
				word := "all of these groups"
				if s.Logic == approval.LogicOr {
					word = "any one of these groups"
				}
				pv.Lines = append([]string{"needs " + word + ":"}, pv.Lines...)
			}
		}
		out = append(out, pv)
	}
	return out
}

// unitLine is one unit's standing: "1 of 2 from finance; bob approved".
func unitLine(u approval.UnitStanding) string {
	var b strings.Builder
	if u.Group != "" {
		b.WriteString(u.Group + ": ")
	}
	have := len(u.ApprovedBy)
	switch {
	case u.All && u.Need == 0:
		fmt.Fprintf(&b, "%d approved, all of %s needed", have, approverNames(u.Approvers))
	case u.All:
		fmt.Fprintf(&b, "%d of %d from %s (all must approve)", have, u.Need, approverNames(u.Approvers))
	default:
		fmt.Fprintf(&b, "%d of %d from %s", have, u.Need, approverNames(u.Approvers))
	}
	if have > 0 {
		b.WriteString("; " + strings.Join(u.ApprovedBy, ", ") + " approved")
	}
	if u.Met {
		b.WriteString(" (met)")
	}
	return b.String()
}

// progressShort is the queue's one-line progress: "1 of 2", or per
// policy "high_spend 1 of 2; legal met".
func progressShort(req *approval.Request) string {
	st := req.Standing()
	var parts []string
	for _, s := range st {
		var p string
		switch {
		case s.Refuses:
			continue
		case s.Met:
			p = "met"
		default:
			var us []string
			for _, u := range s.Units {
				if u.All && u.Need == 0 {
					us = append(us, fmt.Sprintf("%d of all", len(u.ApprovedBy)))
				} else {
					us = append(us, fmt.Sprintf("%d of %d", len(u.ApprovedBy), u.Need))
				}
			}
			p = strings.Join(us, " + ")
			if s.Levels > 1 {
				p = fmt.Sprintf("level %d/%d: %s", s.Level+1, s.Levels, p)
			}
		}
		if len(st) > 1 {
			p = s.Policy + " " + p
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "; ")
}

// approverNames names approvers for a sentence: a group or a person by
// name, a role as "role NAME".
func approverNames(as []approval.Approver) string {
	s := make([]string, len(as))
	for i, a := range as {
		switch a.Kind {
		case approval.KindRole:
			s[i] = "role " + a.Name
		default:
			s[i] = a.Name
		}
	}
	return strings.Join(s, ", ")
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
// binary, or for non-JSON hidden by redaction, only the size. Of a long
// payload it shows the first maxDisplay bytes (backed off to the start of
// a character), and pretty-prints no more than that.
func (h *handler) payload(orig, red []byte, redacting bool) payloadView {
	return payloadCut(orig, red, redacting, h.maxDisplay)
}

// payloadCut is payload with maxDisplay given.
func payloadCut(orig, red []byte, redacting bool, maxDisplay int) payloadView {
	v := payloadView{Size: len(orig)}
	var text string
	switch {
	case len(orig) == 0:
		v.Kind = "none"
		return v
	case len(red) == 0:
		v.Kind = "hidden"
		return v
	case redacting || json.Valid(red):
		// red is valid JSON: checked here, or made by Action.Redact,
		// which redacts only a payload it checked and hides any other.
		// indentPrefix prints it as json.Indent would, up to a byte past
		// what is shown.
		buf := getBuf()
		buf.Grow(min(maxDisplay, 2*len(red)) + 64)
		text = string(indentPrefix(buf.AvailableBuffer(), red, maxDisplay))
		putBuf(buf)
		v.Kind = "json"
	case utf8.Valid(red):
		v.Kind, text = "text", string(red)
	default:
		v.Kind = "binary"
		return v
	}
	if len(text) > maxDisplay {
		cut := maxDisplay
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
