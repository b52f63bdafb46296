package approvalhttp

// writeReview writes the review page of v (see htmlw.go for why it is
// not a template). Element IDs and classes are a contract with browser
// tests: status (with data-status), action-hash, payload-hash, payload,
// diff, votes, history, decide-form, reason, approve, deny, cannot-decide
// (with data-code), link-for, flash.
func writeReview(w htmlWriter, v *reviewView) {
	w.head(v.Base, v.Name+" · "+v.StatusLabel, v.Viewer)
	w.raw("<article class=\"review\" id=\"request\"")
	w.attr("data-id", v.ID)
	w.raw(">\n")
	w.elem("h1", "name", "", v.Name)
	w.raw("\n<p class=\"status-line\"><span")
	w.attr("class", "status st-"+string(v.Status))
	w.raw(" id=\"status\"")
	w.attr("data-status", string(v.Status))
	w.raw(">")
	w.text(v.StatusLabel)
	w.raw("</span>")
	if v.Reason != "" {
		w.raw(" ")
		w.elem("span", "status-reason", "reason", v.Reason)
	}
	w.raw("</p>\n")
	if v.StatusNote != "" {
		w.elem("p", "status-note", "note", v.StatusNote)
		w.raw("\n")
	}
	if v.Flash != "" {
		w.elem("p", "flash", "flash", v.Flash)
		w.raw("\n")
	}

	w.raw("<section class=\"glance\" id=\"summary\">\n<dl>\n")
	w.dt("Requested by")
	w.dd("requester", v.RequestedBy)
	if v.RunID != "" {
		w.dt("Workflow run")
		w.dd("run-id", v.RunID)
	}
	if v.StepID != "" {
		w.dt("Step")
		w.dd("step-id", v.StepID)
	}
	if v.Message != "" {
		w.dt("Message")
		w.elem("dd", "message", "text", v.Message)
	}
	if v.PolicyReason != "" {
		w.dt("Why approval is needed")
		w.dd("policy-reason", v.PolicyReason)
	}
	w.dt("Risk")
	w.raw("<dd id=\"risk\">")
	if v.Risk != "" {
		w.elem("span", "", "risk risk-"+v.Risk, v.Risk)
	} else {
		w.raw("not assessed")
	}
	w.raw("</dd>\n")
	if len(v.Tags) > 0 {
		w.dt("Scope")
		w.raw("<dd id=\"tags\">")
		for _, t := range v.Tags {
			w.elem("span", "", "tag", t)
			w.raw(" ")
		}
		w.raw("</dd>\n")
	}
	if v.Cost != "" {
		w.dt("Cost")
		w.dd("cost", v.Cost)
	}
	w.dt("Created")
	w.raw("<dd>")
	w.timeEl("created", v.Created, v.CreatedISO)
	w.raw("</dd>\n")
	if v.Deadline != "" {
		w.dt("Deadline")
		w.raw("<dd>")
		w.timeEl("deadline", v.Deadline, v.DeadlineISO)
		if v.TimeLeft != "" {
			w.raw(" <span id=\"time-left\"")
			if v.Overdue {
				w.raw(" class=\"overdue\"")
			} else {
				w.raw(" class=\"\"")
			}
			w.raw(">")
			w.text(v.TimeLeft)
			w.raw("</span>")
		}
		w.raw("</dd>\n")
	}
	if v.Resolved != "" {
		w.dt("Resolved")
		w.raw("<dd>")
		w.timeEl("resolved", v.Resolved, v.ResolvedISO)
		w.raw("</dd>\n")
	}
	if v.Expires != "" {
		w.dt("Approval usable until")
		w.raw("<dd>")
		w.timeEl("expires", v.Expires, v.ExpiresISO)
		w.raw("</dd>\n")
	}
	w.raw("</dl>\n</section>\n\n")

	w.raw("<section id=\"policies-section\">\n<h2>Matched policies</h2>\n<table class=\"policies\" id=\"policies\">\n" +
		"<thead><tr><th>Policy</th><th>Needs</th><th>Approvers</th><th>Snapshot hash</th></tr></thead>\n<tbody>")
	for _, p := range v.Policies {
		w.raw("<tr class=\"policy\"")
		w.attr("data-policy", p.Name)
		w.raw(">\n<td>")
		w.text(p.Name)
		if p.MatchError != "" {
			w.raw("<div class=\"warn\">applied because its matcher failed: ")
			w.text(p.MatchError)
			w.raw("</div>")
		}
		w.raw("</td>\n")
		w.elem("td", "", "", p.Needs)
		w.raw("\n<td>")
		w.text(p.Approvers)
		for _, e := range p.Escalation {
			w.elem("div", "", "sub", e)
		}
		w.raw("</td>\n<td>")
		w.elem("code", "", "hash", p.Hash)
		w.raw("</td>\n</tr>")
	}
	w.raw("</tbody>\n</table>\n</section>\n\n")

	w.raw("<section id=\"constraints-section\">\n<h2>If approved</h2>\n<ul id=\"constraints\">")
	for _, c := range v.Constraints {
		w.elem("li", "", "constraint", c)
	}
	for _, r := range v.Rules {
		w.elem("li", "", "rule", r)
	}
	w.raw("</ul>\n</section>\n\n")

	w.raw("<section id=\"binding\">\n<h2>What you approve</h2>\n<dl>\n<dt>Action hash</dt><dd>")
	w.elem("code", "action-hash", "hash", v.ActionHash)
	w.raw("</dd>\n<dt>Payload hash</dt><dd>")
	if v.PayloadHash != "" {
		w.elem("code", "payload-hash", "hash", v.PayloadHash)
	} else {
		w.raw("<code class=\"hash\" id=\"payload-hash\">none (no payload)</code>")
	}
	w.raw("</dd>\n</dl>\n")
	if v.Redacted {
		w.raw("<p class=\"note\" id=\"redaction-note\">Some values are masked for review. The hashes cover the real, unmasked bytes.</p>\n")
	}
	w.raw("</section>\n\n")

	writeDecide(w, v)

	w.raw("<section id=\"payload-section\">\n<h2>Payload</h2>\n<div id=\"payload\" class=\"payload\"")
	w.attr("data-kind", v.Payload.Kind)
	w.raw(" data-size=\"")
	w.int(v.Payload.Size)
	w.raw("\">\n")
	switch p := &v.Payload; p.Kind {
	case "none":
		w.raw("<p>No payload.</p>\n")
	case "hidden":
		w.raw("<p>")
		w.int(p.Size)
		w.raw(" bytes, not JSON, hidden because fields of this request are redacted. Its hash is above.</p>\n")
	case "binary":
		w.raw("<p>")
		w.int(p.Size)
		w.raw(" bytes of binary data, not shown. Its hash is above.</p>\n")
	default:
		w.elem("pre", "", "code", p.Text)
		w.raw("\n")
		if p.Truncated {
			w.raw("<p class=\"note\" id=\"payload-truncated\">Showing the first ")
			w.int(p.Shown)
			w.raw(" of ")
			w.int(p.Size)
			w.raw(" bytes.</p>\n")
		}
	}
	w.raw("</div>\n</section>\n\n")

	if len(v.Diff) > 0 {
		w.raw("<section id=\"diff-section\">\n<h2>Changes</h2>\n<div id=\"diff\" class=\"diff\">")
		for _, f := range v.Diff {
			w.raw("\n<div class=\"file\"")
			w.attr("data-path", f.Path)
			w.raw(">\n<h3 class=\"path\">")
			if f.OldPath != "" {
				w.text(f.OldPath)
				w.raw(" → ")
			}
			w.text(f.Path)
			w.raw(" <span class=\"counts\">+")
			w.int(f.Adds)
			w.raw(" −")
			w.int(f.Dels)
			w.raw("</span></h3>\n")
			for _, h := range f.Hunks {
				w.raw("<pre class=\"hunk\">")
				w.elem("span", "", "hh", h.Header)
				w.raw("\n")
				for _, l := range h.Lines {
					w.elem("span", "", l.Class, l.Text)
					w.raw("\n")
				}
				w.raw("</pre>")
			}
			w.raw("\n</div>")
		}
		w.raw("\n</div>\n</section>\n\n")
	}

	if len(v.Metadata) > 0 {
		w.raw("<section id=\"metadata-section\">\n<h2>Metadata</h2>\n<dl id=\"metadata\">")
		for _, m := range v.Metadata {
			w.elem("dt", "", "", m.Key)
			if m.Masked {
				w.elem("dd", "", "masked", m.Value)
			} else {
				w.elem("dd", "", "", m.Value)
			}
		}
		w.raw("</dl>\n</section>\n\n")
	}

	if p := v.Provenance; p != nil {
		w.raw("<section id=\"provenance-section\">\n<h2>Provenance</h2>\n<dl id=\"provenance\">\n")
		for _, f := range [...]struct {
			term  markup
			value string
		}{{"Source", p.Source}, {"Created by", p.CreatedBy}, {"Source ID", p.SourceID}, {"Created from", p.CreatedFrom}} {
			if f.value != "" {
				w.dt(f.term)
				w.dd("", f.value)
				w.raw("\n")
			}
		}
		w.raw("</dl>\n</section>\n\n")
	}

	if len(v.Recommendations) > 0 {
		w.raw("<section id=\"recommendations-section\">\n<h2>Automated review</h2>\n" +
			"<p class=\"sub\">Advice only: a recommendation is not a vote.</p>\n<ul id=\"recommendations\">")
		for _, rec := range v.Recommendations {
			w.raw("<li")
			w.attr("class", "recommendation v-"+string(rec.Verdict))
			w.attr("data-by", rec.By)
			w.attr("data-verdict", string(rec.Verdict))
			w.raw(">")
			w.elem("strong", "", "", rec.By)
			w.text(" recommends " + string(rec.Verdict) + " (confidence " + rec.Confidence + ")")
			if rec.Summary != "" {
				w.elem("div", "", "", rec.Summary)
			}
			for _, c := range rec.Context {
				w.elem("div", "", "sub", c.Key+": "+c.Value)
			}
			w.raw(" ")
			w.timeEl("", rec.At, rec.AtISO)
			w.raw("</li>")
		}
		w.raw("</ul>\n</section>\n\n")
	}

	w.raw("<section id=\"votes-section\">\n<h2>Votes</h2>\n")
	if len(v.Votes) > 0 {
		w.raw("<table id=\"votes\" class=\"votes\">\n<thead><tr><th>Approver</th><th>Verdict</th><th>Reason</th><th>Counts toward</th><th>At</th></tr></thead>\n<tbody>")
		for _, vt := range v.Votes {
			w.raw("<tr")
			w.attr("class", "vote v-"+string(vt.Verdict))
			w.attr("data-approver", vt.Approver)
			w.attr("data-verdict", string(vt.Verdict))
			w.raw(">\n<td>")
			w.text(vt.Approver)
			if vt.OnBehalfOf != "" {
				w.raw(" for ")
				w.text(vt.OnBehalfOf)
			}
			w.raw("</td>")
			w.elem("td", "", "", string(vt.Verdict))
			w.elem("td", "", "", vt.Reason)
			w.elem("td", "", "", vt.Policies)
			w.raw("<td>")
			w.timeEl("", vt.At, vt.AtISO)
			w.raw("</td>\n</tr>")
		}
		w.raw("</tbody>\n</table>")
	} else {
		w.raw("<p id=\"votes\" class=\"empty\">No votes yet.</p>")
	}
	w.raw("\n</section>\n\n")

	w.raw("<section id=\"history-section\">\n<h2>History</h2>\n<ol id=\"history\" class=\"history\">")
	for _, e := range v.History {
		w.raw("<li class=\"event\"")
		w.attr("data-type", string(e.Type))
		w.raw(">")
		w.timeEl("", e.At, e.AtISO)
		w.raw(" ")
		w.elem("span", "", "etype", string(e.Type))
		if e.Actor != "" {
			w.raw(" by ")
			w.text(e.Actor)
		}
		if e.Verdict != "" {
			w.raw(" (")
			w.text(string(e.Verdict))
			w.raw(")")
		}
		if e.Reason != "" {
			w.raw(": ")
			w.elem("span", "", "text", e.Reason)
		}
		w.raw("</li>")
	}
	w.raw("</ol>\n")
	if v.HistoryMore {
		w.raw("<p class=\"note\">Later events are in the audit API (GET api/approvals/")
		w.text(v.ID)
		w.raw("/audit).</p>\n")
	}
	w.raw("</section>\n</article>\n")
	w.foot()
}

// writeDecide writes the decision form, or why there is none.
func writeDecide(w htmlWriter, v *reviewView) {
	linkFor := func() {
		if v.LinkFor == "" {
			return
		}
		w.raw("<p id=\"link-for\">This link is for <strong>")
		w.text(v.LinkFor)
		w.raw("</strong>")
		if v.SignedInAs != "" {
			w.raw(" (you are signed in as ")
			w.text(v.SignedInAs)
			w.raw(")")
		}
		w.raw(".</p>\n")
	}
	switch f := v.Form; {
	case f != nil:
		w.raw("<section class=\"decide\" id=\"decide\">\n<h2>Your decision</h2>\n")
		linkFor()
		w.raw("<form method=\"post\"")
		w.attr("action", f.Action)
		w.raw(" id=\"decide-form\">\n")
		if f.Token != "" {
			w.raw("<input type=\"hidden\" name=\"token\"")
			w.attr("value", f.Token)
			w.raw(">\n")
		}
		w.raw("<label for=\"reason\">Reason (optional)</label>\n" +
			"<textarea name=\"reason\" id=\"reason\" rows=\"3\" maxlength=\"4096\"></textarea>\n<div class=\"buttons\">")
		if f.Approve {
			w.raw("<button type=\"submit\" name=\"verdict\" value=\"approve\" id=\"approve\" class=\"approve\">Approve</button>")
		}
		if f.Deny {
			w.raw(" <button type=\"submit\" name=\"verdict\" value=\"deny\" id=\"deny\" class=\"deny\">Deny</button>")
		}
		w.raw("</div>\n</form>\n</section>\n\n")
	case v.NoForm != "":
		w.raw("<section class=\"decide\" id=\"decide\">\n")
		linkFor()
		w.raw("<p class=\"note\" id=\"cannot-decide\"")
		w.attr("data-code", v.NoFormCode)
		w.raw(">")
		w.text(v.NoForm)
		w.raw("</p>\n</section>\n\n")
	}
}
