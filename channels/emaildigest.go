// The email digest: one message listing the asks a digest window
// gathered, each with its links.

package channels

import (
	"errors"
	"fmt"
	"html/template"
	"io"
	"strings"

	"github.com/signoff/approval"
)

// checkDigest is checkNotification for a digest: its own ID, and each
// item's request ID and links, as a single message's. A digest inside a
// digest is refused.
func checkDigest(n *approval.Notification) error {
	if !isMsgIDPart(n.ID) {
		return errors.New("the ID cannot be part of a Message-ID (want letters, digits and -._)")
	}
	if n.RequestID != "" && !isMsgIDPart(n.RequestID) {
		return fmt.Errorf("request ID %q cannot be part of a header (want letters, digits and -._)", n.RequestID)
	}
	for i := range n.Digest {
		it := &n.Digest[i]
		if it.Type == approval.NotifyDigest {
			return fmt.Errorf("digest item %d is itself a digest", i+1)
		}
		if !isMsgIDPart(it.RequestID) {
			return fmt.Errorf("digest item %d: request ID %q cannot be shown as it is (want letters, digits and -._)", i+1, it.RequestID)
		}
		for _, l := range [...]struct{ name, url string }{{"ReviewURL", it.ReviewURL}, {"ApproveURL", it.ApproveURL}, {"DenyURL", it.DenyURL}} {
			if l.url != "" && !isMailLink(l.url) {
				return fmt.Errorf("digest item %d: %s is not an absolute http or https URL", i+1, l.name)
			}
		}
	}
	return nil
}

// emailDigestView is what both parts of a digest show. Every string in it
// is one line; html/template escapes them all in the HTML part.
type emailDigestView struct {
	Subject, Headline, Lead string
	Items                   []emailDigestItem
	QueueURL                string
	Decide                  bool // some item has approve or deny links
	Redacted                bool
	NotificationID          string
}

// emailDigestItem is one request of a digest.
type emailDigestItem struct {
	Markers                        string // "Urgent, reminder", or the outcome of a decided request
	Urgent                         bool
	Name                           string
	Rows                           []emailRow
	ApproveURL, DenyURL, ReviewURL string
}

// newEmailDigestView gathers what the digest n shows. An item's approve
// and deny links follow the single message's rule: shown for an ask
// whose request is open (the email goes to its recipient alone).
func newEmailDigestView(n *approval.Notification) *emailDigestView {
	items, open := digestItems(*n)
	v := &emailDigestView{
		Headline:       digestHeadline(open),
		Lead:           digestLead(open, len(items)),
		QueueURL:       queueURL(items),
		NotificationID: n.ID,
	}
	switch open {
	case 0:
		v.Subject = "No requests await your approval"
	case 1:
		v.Subject = "1 request awaits your approval"
	default:
		v.Subject = fmt.Sprintf("%d requests await your approval", open)
	}
	if v.QueueURL != "" && !isMailLink(v.QueueURL) {
		v.QueueURL = ""
	}
	for i := range items {
		it := &items[i]
		d := emailDigestItem{Name: mailLine(it.Action.Name), Urgent: it.Urgent && digestOpen(*it), ReviewURL: it.ReviewURL}
		if d.Name == "" {
			d.Name = digestName(*it)
		}
		var ms []string
		for _, m := range digestMarkers(*it) {
			ms = append(ms, capitalized(m))
		}
		d.Markers = strings.Join(ms, ", ")
		if it.Status.Open() && it.Type != approval.NotifyAlert {
			d.ApproveURL, d.DenyURL = it.ApproveURL, it.DenyURL
		}
		v.Decide = v.Decide || d.ApproveURL != "" || d.DenyURL != ""
		v.Redacted = v.Redacted || it.Redacted
		add := func(label string, values ...string) {
			var vs []string
			for _, s := range values {
				if s = mailLine(s); s != "" {
					vs = append(vs, s)
				}
			}
			if len(vs) > 0 {
				d.Rows = append(d.Rows, emailRow{Label: label, Values: vs})
			}
		}
		if it.OnBehalfOf != "" {
			add("On behalf of", it.OnBehalfOf+" (you are their delegate)")
		}
		add("Note", it.Note)
		add("Requested by", it.Action.RequestedBy)
		if digestOpen(*it) {
			add("Why approval is needed", it.Reason)
			if !it.Deadline.IsZero() {
				add("Deadline", it.Deadline.UTC().Format("Mon, 02 Jan 2006 15:04 MST"))
			}
		}
		if it.Edit != nil {
			add("Payload edited by", it.Edit.By+": a vote binds the edited payload, not the one asked for")
		}
		add("Request", it.RequestID)
		v.Items = append(v.Items, d)
	}
	return v
}

// writeText writes a digest's plain-text part: a numbered heading per
// item, its facts and links indented below it. Values are single lines
// after a label, so no text of a requester's can pass for a link line.
func (v *emailDigestView) writeText(w io.Writer) error {
	var b strings.Builder
	b.WriteString(v.Headline + "\n\n" + v.Lead + "\n")
	if v.Decide {
		b.WriteString("Each approve or deny link opens a confirmation page: nothing is decided until you confirm there.\n")
	}
	for i, it := range v.Items {
		fmt.Fprintf(&b, "\n%d. ", i+1)
		if it.Markers != "" {
			b.WriteString(it.Markers + ": ")
		}
		b.WriteString(it.Name + "\n")
		for _, r := range it.Rows {
			b.WriteString("   " + r.Label + ": " + strings.Join(r.Values, "; ") + "\n")
		}
		if it.ApproveURL != "" {
			b.WriteString("   Approve: " + it.ApproveURL + "\n")
		}
		if it.DenyURL != "" {
			b.WriteString("   Deny: " + it.DenyURL + "\n")
		}
		if it.ReviewURL != "" {
			b.WriteString("   Review: " + it.ReviewURL + "\n")
		}
	}
	if v.Redacted {
		b.WriteString("\nSome values are masked in this message; the review pages show what you may see.\n")
	}
	if v.QueueURL != "" {
		b.WriteString("\nYour queue: " + v.QueueURL + "\n")
	}
	b.WriteString("\n-- \nDigest notification " + v.NotificationID + ".\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// emailDigestHTML is a digest's HTML part. Inline styles only: mail
// clients drop style sheets.
var emailDigestHTML = template.Must(template.New("digest").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Subject}}</title>
</head>
<body style="margin:0;padding:16px;font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;font-size:15px;line-height:1.5;color:#1f2328;background:#ffffff">
<div style="max-width:640px;margin:0 auto">
<h1 style="font-size:20px;margin:0 0 8px">{{.Headline}}</h1>
<p style="margin:0 0 16px">{{.Lead}}</p>
{{- if .Decide}}
<p style="margin:0 0 16px;font-size:13px;color:#57606a">Each Approve or Deny button opens a confirmation page: nothing is decided until you confirm there.</p>
{{- end}}
<ol style="margin:0 0 16px;padding:0 0 0 24px">
{{- range .Items}}
<li style="margin:0 0 8px;padding:8px 0;border-top:1px solid #d0d7de">
<p style="margin:0 0 4px;font-weight:600">{{if .Markers}}<span style="color:{{if .Urgent}}#cf222e{{else}}#57606a{{end}}">{{.Markers}}:</span> {{end}}{{.Name}}</p>
<table role="presentation" style="border-collapse:collapse;margin:0 0 4px;font-size:14px">
{{- range .Rows}}
<tr><th align="left" valign="top" style="padding:2px 12px 2px 0;font-weight:600;white-space:nowrap">{{.Label}}</th><td style="padding:2px 0;word-break:break-all">
{{- range $i, $s := .Values}}{{if $i}}<br>{{end}}{{$s}}{{end -}}
</td></tr>
{{- end}}
</table>
<p style="margin:4px 0 0">
{{- if .ApproveURL}}<a href="{{.ApproveURL}}" style="display:inline-block;padding:6px 14px;margin:0 8px 4px 0;background:#1a7f37;color:#ffffff;text-decoration:none;border-radius:6px;font-weight:600">Approve</a>{{end}}
{{- if .DenyURL}}<a href="{{.DenyURL}}" style="display:inline-block;padding:6px 14px;margin:0 8px 4px 0;background:#cf222e;color:#ffffff;text-decoration:none;border-radius:6px;font-weight:600">Deny</a>{{end}}
{{- if .ReviewURL}}<a href="{{.ReviewURL}}" style="display:inline-block;padding:6px 0;margin:0 0 4px 0">Review the request</a>{{end -}}
</p>
</li>
{{- end}}
</ol>
{{- if .Redacted}}
<p style="margin:0 0 16px;font-size:13px;color:#57606a">Some values are masked in this message; the review pages show what you may see.</p>
{{- end}}
{{- if .QueueURL}}
<p style="margin:0 0 16px"><a href="{{.QueueURL}}">Open your queue</a></p>
{{- end}}
<p style="margin:24px 0 0;font-size:12px;color:#57606a">Digest notification {{.NotificationID}}.</p>
</div>
</body>
</html>
`))

// capitalized is s with its first letter upper-case, when it is ASCII.
func capitalized(s string) string {
	if s != "" && 'a' <= s[0] && s[0] <= 'z' {
		return string(s[0]-'a'+'A') + s[1:]
	}
	return s
}
