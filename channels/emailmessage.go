// The email channel's message: RFC 5322 headers and a multipart body,
// plain text and HTML.

package channels

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/signoff/approval"
)

// compose writes the message for n to the recipient to: RFC 5322 headers
// and a multipart/alternative body whose parts are quoted-printable.
// n has passed checkNotification.
func (e *Email) compose(n approval.Notification, to *mail.Address) ([]byte, error) {
	var subject string
	var writeText, writeHTML func(io.Writer) error
	if n.Type == approval.NotifyDigest {
		v := newEmailDigestView(&n)
		subject, writeText = v.Subject, v.writeText
		writeHTML = func(w io.Writer) error { return emailDigestHTML.Execute(w, v) }
	} else {
		v := newEmailView(&n)
		subject, writeText = v.Subject, v.writeText
		writeHTML = func(w io.Writer) error { return emailHTML.Execute(w, v) }
	}

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, p := range [...]struct {
		ctype string
		write func(io.Writer) error
	}{
		{"text/plain; charset=utf-8", writeText},
		{"text/html; charset=utf-8", writeHTML},
	} {
		pw, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {p.ctype}, "Content-Transfer-Encoding": {"quoted-printable"}})
		if err != nil {
			return nil, err
		}
		qw := quotedprintable.NewWriter(pw)
		if err := p.write(qw); err != nil {
			return nil, err
		}
		if err := qw.Close(); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}

	var b bytes.Buffer
	header := func(name, value string) { writeMailHeader(&b, name, value) }
	header("From", e.from.String())
	header("To", to.String())
	header("Subject", mime.QEncoding.Encode("utf-8", subject))
	header("Date", e.cfg.Now().Format(time.RFC1123Z))
	header("Message-ID", "<"+n.ID+"@"+e.cfg.Hostname+">")
	if n.RequestID != "" { // a digest is about many requests, and threads with none
		// Mail clients thread every message about one request together.
		header("References", "<"+n.RequestID+"@"+e.cfg.Hostname+">")
	}
	header("MIME-Version", "1.0")
	header("Content-Type", mime.FormatMediaType("multipart/alternative", map[string]string{"boundary": mw.Boundary()}))
	header("Auto-Submitted", "auto-generated") // RFC 3834: no auto-replies
	if n.RequestID != "" {
		header("X-Approval-Request", n.RequestID)
	}
	header("X-Approval-Type", mime.QEncoding.Encode("utf-8", mailLine(string(n.Type))))
	header("X-Approval-Notification-ID", n.ID)
	header("Idempotency-Key", n.ID)
	b.WriteString("\r\n")
	b.Write(body.Bytes())
	return b.Bytes(), nil
}

// writeMailHeader writes one header field, folded at spaces so that its
// lines keep to 78 characters where its words allow (an RFC 2047 word is
// up to 75). value must be free of CR and LF (every caller's is).
func writeMailHeader(b *bytes.Buffer, name, value string) {
	b.WriteString(name)
	b.WriteByte(':')
	line := len(name) + 1
	for _, word := range strings.Split(value, " ") {
		if line > 1 && line+1+len(word) > 78 {
			b.WriteString("\r\n")
			line = 0
		}
		b.WriteByte(' ')
		b.WriteString(word)
		line += 1 + len(word)
	}
	b.WriteString("\r\n")
}

// isMsgIDPart reports whether s may stand before the "@" of a Message-ID
// and in a header as it is.
func isMsgIDPart(s string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	for _, r := range s {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '.' || r == '_') {
			return false
		}
	}
	return s[0] != '.' && s[len(s)-1] != '.' && !strings.Contains(s, "..")
}

// isMailLink reports whether s is an absolute http(s) URL of printable ASCII.
func isMailLink(s string) bool {
	for _, r := range s {
		if r <= ' ' || r > '~' {
			return false
		}
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// mailLine makes s fit on one line: control characters and line or
// paragraph separators become spaces, runs of spaces one space.
func mailLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// mailParagraphs normalises a multi-line text: line breaks become "\n", other
// control characters but tabs are dropped.
func mailParagraphs(s string) string {
	s = strings.NewReplacer("\r\n", "\n", "\r", "\n", "\u2028", "\n", "\u2029", "\n").Replace(s)
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if r != '\n' && r != '\t' && unicode.IsControl(r) {
			return -1
		}
		return r
	}, s))
}

// mailClip cuts s to at most n runes, marking the cut.
func mailClip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// emailView is what both parts of a message show. Every string in it is
// one line but Message; html/template escapes them all in the HTML part.
type emailView struct {
	Subject, Headline, Name, Lead, Message string
	// Prior says that an identical action ran recently
	// (Notification.Prior); empty if none did.
	Prior                          string
	Rows                           []emailRow
	Decide                         bool // there are approve or deny links
	ApproveURL, DenyURL, ReviewURL string
	Redacted                       bool
	RequestID, NotificationID      string
}

// maxFilesShown bounds the paths of Action.Diff a message lists, and
// maxChangesShown the changes of an edit; the review page shows them all.
const (
	maxFilesShown   = 20
	maxChangesShown = 20
)

// emailRow is one labelled fact; Code marks hashes.
type emailRow struct {
	Label  string
	Values []string
	Code   bool
}

var mailStatusLabels = map[approval.Status]string{
	approval.StatusPending:   "Pending",
	approval.StatusEscalated: "Escalated",
	approval.StatusApproved:  "Approved",
	approval.StatusDenied:    "Denied",
	approval.StatusCancelled: "Cancelled",
	approval.StatusTimedOut:  "Timed out",
	approval.StatusConsumed:  "Approved and used",
	approval.StatusExpired:   "Expired",
}

// mailStatus names status s for people.
func mailStatus(s approval.Status) string {
	if l, ok := mailStatusLabels[s]; ok {
		return l
	}
	return mailLine(string(s))
}

// newEmailView gathers what the message about n shows.
func newEmailView(n *approval.Notification) *emailView {
	a := &n.Action
	v := &emailView{
		Name:     mailLine(a.Name),
		Message:  mailParagraphs(a.Message),
		Redacted: n.Redacted, RequestID: n.RequestID, NotificationID: n.ID,
		ReviewURL: n.ReviewURL,
	}
	if n.Status.Open() && n.Type != approval.NotifyAlert { // a closed request's links would only be refused; an alert asks for no decision
		v.ApproveURL, v.DenyURL = n.ApproveURL, n.DenyURL
	}
	v.Decide = v.ApproveURL != "" || v.DenyURL != ""
	if p := n.Prior; p != nil {
		v.Prior = "An identical action was approved and ran at " + p.At.UTC().Format("2006-01-02 15:04 MST") + ": " + mailLine(p.RequestID)
	}
	switch n.Type {
	case approval.NotifyRequested:
		v.Headline, v.Lead = "Approval needed", "Your approval is needed before this action runs."
	case approval.NotifyReminder:
		v.Headline, v.Lead = "Reminder: approval needed", "This request is still waiting for your decision."
	case approval.NotifyEscalated:
		v.Headline, v.Lead = "Escalated: approval needed", "This request was escalated to you; it is still waiting for a decision."
	case approval.NotifyAlert:
		v.Headline, v.Lead = "For your information", "You are told of this request waiting for approval; you are not asked to decide."
	case approval.NotifyResolved:
		switch n.Status {
		case approval.StatusApproved, approval.StatusConsumed, approval.StatusDenied, approval.StatusCancelled:
			v.Headline = mailStatusLabels[n.Status]
			if n.Status == approval.StatusConsumed {
				v.Headline = "Approved"
			}
		default:
			v.Headline = "Resolved"
		}
		v.Lead = "This request is closed: " + strings.ToLower(mailStatus(n.Status)) + "."
	case approval.NotifyTimedOut:
		v.Headline, v.Lead = "Timed out", "This request timed out before enough approvers decided."
	default:
		v.Headline = "Approval request"
	}
	if n.Urgent && isOpenType(n.Type) && n.Status.Open() {
		v.Headline = "Urgent: " + v.Headline
	}
	v.Subject = "[" + v.Headline + "] " + v.Name
	if first, _, _ := strings.Cut(v.Message, "\n"); first != "" {
		v.Subject += ": " + mailLine(first)
	}
	v.Subject = mailClip(v.Subject, 200)

	add := func(label string, code bool, values ...string) {
		var vs []string
		for _, s := range values {
			if s = mailLine(s); s != "" {
				vs = append(vs, s)
			}
		}
		if len(vs) > 0 {
			v.Rows = append(v.Rows, emailRow{Label: label, Values: vs, Code: code})
		}
	}
	if !n.Status.Open() {
		add("Outcome", false, mailStatus(n.Status))
	}
	if n.OnBehalfOf != "" {
		add("On behalf of", false, n.OnBehalfOf+" (you are their delegate)")
	}
	add("Note", false, n.Note)
	if e := n.Edit; e != nil {
		add("Payload edited by", false, e.By+" at "+e.At.UTC().Format("Mon, 02 Jan 2006 15:04 MST")+
			": a vote binds the edited payload, not the one asked for")
		var cs []string
		for i, c := range e.Changes {
			if i == maxChangesShown {
				cs = append(cs, fmt.Sprintf("and %d more (see the review page)", len(e.Changes)-i))
				break
			}
			cs = append(cs, c.String())
		}
		add("Changes", true, cs...)
		add("Payload hash as asked for", true, e.OriginalPayloadHash)
	}
	add("Requested by", false, a.RequestedBy)
	if n.Status.Open() {
		add("Why approval is needed", false, n.Reason)
	} else {
		add("Reason", false, n.Reason)
	}
	add("Risk", false, a.Risk.String())
	if c := a.Cost; c != nil {
		add("Cost", false, strings.TrimSpace(strconv.FormatFloat(c.Amount, 'f', -1, 64)+" "+c.Currency))
	}
	add("Tags", false, strings.Join(a.Tags, ", "))
	var wf []string
	if a.RunID != "" {
		wf = append(wf, "run "+a.RunID)
	}
	if a.StepID != "" {
		wf = append(wf, "step "+a.StepID)
	}
	add("Workflow", false, strings.Join(wf, ", "))
	add("Constraints", false, a.Constraints...)
	var files []string
	for i, d := range a.Diff {
		if i == maxFilesShown {
			files = append(files, fmt.Sprintf("and %d more", len(a.Diff)-i))
			break
		}
		files = append(files, d.Path)
	}
	add("Changed files", false, files...)
	if !n.Deadline.IsZero() && n.Status.Open() {
		add("Deadline", false, n.Deadline.UTC().Format("Mon, 02 Jan 2006 15:04 MST"))
	}
	add("Votes", false, voteLines(*n, nil)...)
	if len(n.Votes) > 0 || n.Status.Open() {
		add("Progress", false, progressLines(*n)...)
	}
	policies := make([]string, len(n.Policies))
	for i, p := range n.Policies {
		policies[i] = strings.TrimSpace(p.Name + " " + p.Hash)
	}
	add("Matched policies", false, policies...)
	add("Action hash", true, n.ActionHash)
	add("Payload hash", true, n.PayloadHash)
	return v
}

// writeText writes the plain-text part. Lines that come from the action
// are single lines after a label, or indented (the message), so that no
// text of the requester's can pass for a link line of the gate's.
func (v *emailView) writeText(w io.Writer) error {
	var b strings.Builder
	b.WriteString(v.Headline + ": " + v.Name + "\n\n")
	if v.Lead != "" {
		b.WriteString(v.Lead + "\n\n")
	}
	if v.Prior != "" {
		b.WriteString(v.Prior + "\n\n")
	}
	if v.Message != "" {
		b.WriteString("Message:\n")
		for _, l := range strings.Split(v.Message, "\n") {
			b.WriteString("    " + l + "\n")
		}
		b.WriteString("\n")
	}
	for _, r := range v.Rows {
		b.WriteString(r.Label + ": " + r.Values[0] + "\n")
		for _, s := range r.Values[1:] {
			b.WriteString("    " + s + "\n")
		}
	}
	if v.Redacted {
		b.WriteString("\nSome values are masked in this message; the hashes cover the real ones.\n")
	}
	b.WriteString("\n")
	if v.Decide {
		if v.ApproveURL != "" {
			b.WriteString("Approve: " + v.ApproveURL + "\n")
		}
		if v.DenyURL != "" {
			b.WriteString("Deny: " + v.DenyURL + "\n")
		}
		b.WriteString("Each link opens a confirmation page: nothing is decided until you confirm there.\n")
	}
	if v.ReviewURL != "" {
		b.WriteString("Review: " + v.ReviewURL + "\n")
	}
	b.WriteString("\n-- \nRequest " + v.RequestID + ", notification " + v.NotificationID + ".\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// emailHTML is the HTML part. Inline styles only: mail clients drop
// style sheets.
var emailHTML = template.Must(template.New("email").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Subject}}</title>
</head>
<body style="margin:0;padding:16px;font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;font-size:15px;line-height:1.5;color:#1f2328;background:#ffffff">
<div style="max-width:640px;margin:0 auto">
<h1 style="font-size:20px;margin:0 0 8px">{{.Headline}}: {{.Name}}</h1>
{{- if .Lead}}
<p style="margin:0 0 16px">{{.Lead}}</p>
{{- end}}
{{- if .Prior}}
<p style="margin:0 0 16px;padding:8px 12px;border-left:3px solid #bf8700;background:#fff8c5;font-weight:600">{{.Prior}}</p>
{{- end}}
{{- if .Message}}
<div style="white-space:pre-wrap;margin:0 0 16px;padding:8px 12px;border-left:3px solid #d0d7de;background:#f6f8fa">{{.Message}}</div>
{{- end}}
<table role="presentation" style="border-collapse:collapse;margin:0 0 16px">
{{- range .Rows}}{{$code := .Code}}
<tr><th align="left" valign="top" style="padding:4px 16px 4px 0;font-weight:600;white-space:nowrap">{{.Label}}</th><td style="padding:4px 0;word-break:break-all">
{{- range $i, $s := .Values}}{{if $i}}<br>{{end}}{{if $code}}<code>{{$s}}</code>{{else}}{{$s}}{{end}}{{end -}}
</td></tr>
{{- end}}
</table>
{{- if .Redacted}}
<p style="margin:0 0 16px;font-size:13px;color:#57606a">Some values are masked in this message; the hashes cover the real ones.</p>
{{- end}}
{{- if .Decide}}
<p style="margin:24px 0 8px">
{{- if .ApproveURL}}<a href="{{.ApproveURL}}" style="display:inline-block;padding:10px 20px;margin:0 8px 8px 0;background:#1a7f37;color:#ffffff;text-decoration:none;border-radius:6px;font-weight:600">Approve</a>{{end}}
{{- if .DenyURL}}<a href="{{.DenyURL}}" style="display:inline-block;padding:10px 20px;margin:0 8px 8px 0;background:#cf222e;color:#ffffff;text-decoration:none;border-radius:6px;font-weight:600">Deny</a>{{end -}}
</p>
<p style="margin:0 0 16px;font-size:13px;color:#57606a">Each button opens a confirmation page: nothing is decided until you confirm there.</p>
{{- end}}
{{- if .ReviewURL}}
<p style="margin:0 0 16px"><a href="{{.ReviewURL}}">Review the request</a></p>
{{- end}}
<p style="margin:24px 0 0;font-size:12px;color:#57606a">Request {{.RequestID}}, notification {{.NotificationID}}.</p>
</div>
</body>
</html>
`))
