package approvalhttp_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/approvalhttp"
)

// html checks a page response and returns its body.
func (r response) html(t *testing.T, status int) string {
	t.Helper()
	require.Equal(t, status, r.StatusCode, r.text())
	require.Equal(t, "text/html; charset=utf-8", r.Header.Get("Content-Type"))
	return r.text()
}

// attr returns the value of the attribute name on the element with the
// given id, or "" (the pages write attributes in a fixed form).
func attr(page, id, name string) string {
	m := regexp.MustCompile(`<[a-z]+ [^>]*id="` + regexp.QuoteMeta(id) + `"[^>]*>`).FindString(page)
	v := regexp.MustCompile(` ` + name + `="([^"]*)"`).FindStringSubmatch(m)
	if v == nil {
		return ""
	}
	return v[1]
}

// hiddenToken returns the token field of the page's form.
func hiddenToken(page string) string {
	m := regexp.MustCompile(`<input type="hidden" name="token" value="([^"]*)">`).FindStringSubmatch(page)
	if m == nil {
		return ""
	}
	return m[1]
}

// TestLinkFlow: a notification link opens a confirmation page and decides
// nothing; its button POSTs the decision, which redirects (303) to the
// review page without the token; the spent link is refused.
func TestLinkFlow(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.pending(transfer(5000))
	tok := f.token(id, "alice", approval.VerdictApprove)
	link := "/approvals/" + id + "?" + url.Values{"verdict": {"approve"}, "token": {tok}}.Encode()

	for range 3 { // a link scanner, a preview, the person: none decides
		page := f.get(link, "").html(t, http.StatusOK)
		require.Contains(t, page, `id="link-for"`)
		require.Contains(t, page, "This link is for <strong>alice</strong>")
		require.Contains(t, page, `id="approve"`)
		require.NotContains(t, page, `id="deny"`, "an approve link offers approve only")
		require.Contains(t, page, `id="reason"`)
		require.Equal(t, tok, hiddenToken(page))
		require.Equal(t, "approvals/"+id+"/decide", strings.TrimPrefix(attr(page, "decide-form", "action"), "../"))
		require.Equal(t, "pending", attr(page, "status", "data-status"))
	}
	require.Empty(t, f.request(id).Votes, "GET never decides")

	r := f.postForm("/approvals/"+id+"/decide", "", url.Values{"token": {tok}, "verdict": {"approve"}, "reason": {"ok"}})
	// A link's holder sees the outcome at once: no redirect, which would
	// have to carry the token.
	decided := r.html(t, http.StatusOK)
	require.Empty(t, r.Header.Get("Location"))
	require.Contains(t, decided, "Your approval was recorded.")
	require.NotContains(t, decided, `id="approve"`, "no second decision offered")
	require.Contains(t, decided, `data-approver="alice"`)
	votes := f.request(id).Votes
	require.Len(t, votes, 1)
	require.Equal(t, "alice", votes[0].Approver)
	require.Equal(t, "ok", votes[0].Reason)

	// Back on the review page without a session: a neutral note, no data.
	page := f.get("/approvals/"+id+"?decided=approve", "").html(t, http.StatusOK)
	require.Contains(t, page, "Decision submitted")
	require.NotContains(t, page, "wire-transfer")
	// With a session, the page says the vote was recorded (only if it was).
	page = f.get("/approvals/"+id+"?decided=approve", "alice").html(t, http.StatusOK)
	require.Contains(t, page, `id="flash"`)
	page = f.get("/approvals/"+id+"?decided=approve", "bob").html(t, http.StatusOK)
	require.NotContains(t, page, `id="flash"`)

	// The spent link: its page offers nothing, and a replay is refused.
	page = f.get(link, "").html(t, http.StatusOK)
	require.NotContains(t, page, `id="approve"`)
	require.Equal(t, "already_decided", attr(page, "cannot-decide", "data-code"))
	r = f.postForm("/approvals/"+id+"/decide", "", url.Values{"token": {tok}, "verdict": {"approve"}})
	page = r.html(t, http.StatusForbidden)
	require.Equal(t, "token_used", attr(page, "message", "data-code"))
	require.Len(t, f.request(id).Votes, 1)

	// A link's page refuses a bad token, whoever is signed in.
	for _, tc := range []struct {
		query  url.Values
		status int
		code   string
	}{
		{url.Values{"token": {"garbage"}}, 401, "token_malformed"},
		{url.Values{"token": {forge(tok)}}, 401, "token_signature"},
		{url.Values{"token": {f.token(f.pending(transfer(7000)), "alice", approval.VerdictApprove)}}, 403, "token_request_mismatch"},
		{url.Values{"token": {tok}, "verdict": {"deny"}}, 403, "token_verdict_mismatch"},
		{url.Values{"token": {tok}, "verdict": {"maybe"}}, 422, "invalid_query"},
	} {
		page := f.get("/approvals/"+id+"?"+tc.query.Encode(), "bob").html(t, tc.status)
		require.Equal(t, tc.code, attr(page, "message", "data-code"), tc.query)
		require.NotContains(t, page, "wire-transfer", "no request data on an error page")
	}

	// A token that allows both verdicts offers both buttons; the deny
	// button denies.
	both := f.token(id, "bob", approval.VerdictBoth)
	page = f.get("/approvals/"+id+"?token="+both, "").html(t, http.StatusOK)
	require.Contains(t, page, `id="approve"`)
	require.Contains(t, page, `id="deny"`)
	r = f.postForm("/approvals/"+id+"/decide", "", url.Values{"token": {both}, "verdict": {"deny"}, "reason": {"wrong account"}})
	require.Equal(t, "denied", attr(r.html(t, http.StatusOK), "status", "data-status"))
	require.Equal(t, approval.StatusDenied, f.request(id).Status)

	// Expired links.
	id = f.pending(transfer(8000))
	tok = f.token(id, "alice", approval.VerdictApprove)
	f.clock.Advance(2 * time.Hour)
	page = f.get("/approvals/"+id+"?token="+tok, "").html(t, http.StatusUnauthorized)
	require.Equal(t, "token_expired", attr(page, "message", "data-code"))
	r = f.postForm("/approvals/"+id+"/decide", "", url.Values{"token": {tok}, "verdict": {"approve"}})
	require.Equal(t, "token_expired", attr(r.html(t, http.StatusUnauthorized), "message", "data-code"))
}

// TestSessionFlow: a signed-in reviewer sees the buttons when they may
// decide, decides without a token, and sees why not otherwise.
func TestSessionFlow(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := transfer(5000)
	a.RequestedBy = "carol"
	id := f.pending(a)

	page := f.get("/approvals/"+id, "alice").html(t, http.StatusOK)
	require.Contains(t, page, `id="approve"`)
	require.Contains(t, page, `id="deny"`)
	require.Empty(t, hiddenToken(page), "a session decides without a token in the page")
	require.Contains(t, page, `<span class="who" id="viewer">alice</span>`)

	for who, code := range map[string]string{"carol": "self_approval", "dave": "not_eligible"} {
		page := f.get("/approvals/"+id, who).html(t, http.StatusOK)
		require.NotContains(t, page, `id="approve"`, who)
		require.Equal(t, code, attr(page, "cannot-decide", "data-code"), who)
	}

	r := f.postForm("/approvals/"+id+"/decide", "alice", url.Values{"verdict": {"approve"}})
	require.Equal(t, http.StatusSeeOther, r.StatusCode, r.text())
	page = f.get("/approvals/"+id+"?decided=approve", "alice").html(t, http.StatusOK)
	require.Contains(t, page, "Your approval was recorded.")
	require.NotContains(t, page, `id="cannot-decide"`, "one message about the viewer's own vote")
	require.NotContains(t, page, `id="approve"`)
	require.Contains(t, page, `data-approver="alice" data-verdict="approve"`)

	// Refusals of the form, as pages.
	require.Equal(t, "already_decided", attr(f.postForm("/approvals/"+id+"/decide", "alice", url.Values{"verdict": {"deny"}}).html(t, 409), "message", "data-code"))
	require.Equal(t, "self_approval", attr(f.postForm("/approvals/"+id+"/decide", "carol", url.Values{"verdict": {"approve"}}).html(t, 403), "message", "data-code"))
	require.Equal(t, "invalid_decision", attr(f.postForm("/approvals/"+id+"/decide", "bob", url.Values{"verdict": {"maybe"}}).html(t, 422), "message", "data-code"))
	require.Equal(t, "unauthenticated", attr(f.postForm("/approvals/"+id+"/decide", "", url.Values{"verdict": {"approve"}}).html(t, 401), "message", "data-code"))
	require.Equal(t, "not_found", attr(f.postForm("/approvals/nope/decide", "bob", url.Values{"verdict": {"approve"}}).html(t, 404), "message", "data-code"))
	require.Equal(t, "body_too_large", attr(f.postForm("/approvals/"+id+"/decide", "bob", url.Values{"verdict": {"approve"}, "reason": {strings.Repeat("x", 70<<10)}}).html(t, 413), "message", "data-code"))

	r = f.postForm("/approvals/"+id+"/decide", "bob", url.Values{"verdict": {"approve"}})
	require.Equal(t, http.StatusSeeOther, r.StatusCode)
	page = f.get("/approvals/"+id, "bob").html(t, http.StatusOK)
	require.Equal(t, "approved", attr(page, "status", "data-status"))
	require.Equal(t, "already_decided", attr(page, "cannot-decide", "data-code"))
	require.Contains(t, page, "You (bob) gave your approval at ")
	require.Equal(t, "not_pending", attr(f.get("/approvals/"+id, "dave").html(t, http.StatusOK), "cannot-decide", "data-code"))
	require.Contains(t, page, `id="history"`)
	require.Contains(t, page, `data-type="request.approved"`)

	// No session and no token: nothing to see.
	require.Equal(t, "unauthenticated", attr(f.get("/approvals/"+id, "").html(t, 401), "message", "data-code"))
	require.Equal(t, "not_found", attr(f.get("/approvals/req_00000000000000000000000000000000", "bob").html(t, 404), "message", "data-code"))
	require.Equal(t, "not_found", attr(f.get("/approvals/nope", "bob").html(t, 404), "message", "data-code"))
}

// TestReviewPageContent: the page shows what a reviewer needs, with the
// stable IDs a browser test drives.
func TestReviewPageContent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := transfer(5000)
	a.RunID, a.StepID = "run_8f9a", "remediate"
	a.Risk, a.Tags = approval.RiskHigh, []string{"prod", "write"}
	a.Constraints = []string{"max_lines_changed 500"}
	a.Provenance = &approval.Provenance{Source: "proxy", CreatedBy: "agent:codex-prod", SourceID: "codex-cli", CreatedFrom: "ticket FIN-9"}
	a.Diff = []approval.FileDiff{{Path: "infra/prod/main.tf", Hunks: []approval.Hunk{{OldStart: 12, OldLines: 3, NewStart: 12, NewLines: 4,
		Body: " context\n-old line\n+new line\n+another\n"}}}}
	id := f.pending(a)
	req := f.request(id)

	page := f.get("/approvals/"+id, "alice").html(t, http.StatusOK)
	for _, want := range []string{
		`id="requester">user-1<`, `id="run-id">run_8f9a<`, `id="step-id">remediate<`,
		`id="policy-reason">transfers of 1,000 USD or more need two finance approvals<`,
		`data-policy="high_spend"`, req.Policies[0].Hash, "2 approvals", "group:finance",
		`<span class="risk risk-high">high</span>`, `<span class="tag">prod</span>`, `id="amount">5,000.00 USD<`,
		`<li class="constraint">max_lines_changed 500</li>`, "The requester (user-1) may not approve it.",
		`id="action-hash">` + req.ActionHash + `<`, `id="payload-hash">` + req.PayloadHash + `<`,
		`id="diff"`, `data-path="infra/prod/main.tf"`, `@@ -12,3 &#43;12,4 @@`, `<span class="add">&#43;new line</span>`, `<span class="del">-old line</span>`,
		`+2 −1`, "agent:codex-prod", "ticket FIN-9", `id="deadline"`, `id="time-left" class="">1d 0h left<`,
		`id="votes" class="empty"`, `data-type="request.created"`, `<link rel="stylesheet" href="../assets/style.css">`,
	} {
		require.Contains(t, page, want)
	}
	require.NotContains(t, page, " style=", "no inline style attributes (CSP)")
	require.NotContains(t, page, "<script", "no script")

	f.clock.Advance(90 * time.Minute)
	page = f.get("/approvals/"+id, "alice").html(t, http.StatusOK)
	require.Contains(t, page, `id="time-left" class="">22h 30m left<`)
}

// TestTerminalStatuses: each ending is shown distinctly.
func TestTerminalStatuses(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	labels := map[approval.Status]string{}
	seen := func(id string, want approval.Status) {
		t.Helper()
		page := f.get("/approvals/"+id, "alice").html(t, http.StatusOK)
		require.Equal(t, string(want), attr(page, "status", "data-status"))
		m := regexp.MustCompile(`id="status" data-status="[a-z_]+">([^<]+)<`).FindStringSubmatch(page)
		require.NotNil(t, m)
		for st, l := range labels {
			require.NotEqual(t, l, m[1], "%s and %s share a label", st, want)
		}
		labels[want] = m[1]
	}
	decide := func(id, who string, v approval.Verdict) {
		t.Helper()
		_, err := f.gate.Decide(f.ctx, id, approval.Decision{Token: f.token(id, who, v), Verdict: v})
		require.NoError(t, err)
	}
	pending := f.pending(transfer(1000))
	seen(pending, approval.StatusPending)

	approved := transfer(1001)
	id := f.pending(approved)
	decide(id, "alice", approval.VerdictApprove)
	decide(id, "bob", approval.VerdictApprove)
	seen(id, approval.StatusApproved)
	res, err := f.gate.Guard(f.ctx, approved)
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeApproved, res.Status)
	seen(id, approval.StatusConsumed)

	id = f.pending(transfer(1002))
	decide(id, "alice", approval.VerdictDeny)
	seen(id, approval.StatusDenied)

	id = f.pending(transfer(1003))
	_, err = f.gate.Cancel(f.ctx, id, "user-1", "not needed")
	require.NoError(t, err)
	seen(id, approval.StatusCancelled)

	expiring := f.pending(transfer(1004))
	decide(expiring, "alice", approval.VerdictApprove)
	decide(expiring, "bob", approval.VerdictApprove)
	timedOut := f.pending(transfer(1005))
	f.clock.Advance(25 * time.Hour)
	_, err = f.gate.Tick(f.ctx, 0)
	require.NoError(t, err)
	seen(timedOut, approval.StatusTimedOut)
	seen(expiring, approval.StatusExpired)
}

// TestHostileContent: whatever an action carries renders as text.
func TestHostileContent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const x = `<script>alert(1)</script>`
	a := transfer(5000)
	a.Message = x + `"><img src=x onerror=alert(1)>`
	a.RunID, a.StepID = x, x
	a.Tags = []string{"tag" + x}
	a.Constraints = []string{x}
	a.Metadata = map[string]string{x: x, "k": `javascript:alert(1)`}
	a.Payload = []byte(`{"note":"` + strings.ReplaceAll(x, `/`, `\/`) + `","` + `<b>` + `":1}`)
	a.Provenance = &approval.Provenance{Source: x, CreatedBy: x, SourceID: x, CreatedFrom: x}
	a.Diff = []approval.FileDiff{{Path: "a" + x + ".go", OldPath: x, Hunks: []approval.Hunk{{Body: "+" + x + "\n-" + x + "\n"}}}}
	id := f.pending(a)
	text := transfer(5001)
	text.Payload = []byte(x)
	textID := f.pending(text)
	_, err := f.gate.Decide(f.ctx, id, approval.Decision{Token: f.token(id, "alice", approval.VerdictApprove), Verdict: approval.VerdictApprove, Reason: x})
	require.NoError(t, err)
	f.decideAPI(id, approval.VerdictApprove, jsonBody(t, map[string]string{"token": "x" + x}), "").problem(t, 401, "token_malformed")

	pages := map[string]string{
		"review":   f.get("/approvals/"+id, "bob").html(t, http.StatusOK),
		"queue":    f.get("/approvals", "bob").html(t, http.StatusOK),
		"link":     f.get("/approvals/"+id+"?token="+url.QueryEscape(f.token(id, "bob", approval.VerdictBoth)), "").html(t, http.StatusOK),
		"query":    f.get("/approvals?policy="+url.QueryEscape(x)+"&requested_by=a", "bob").html(t, http.StatusOK),
		"error":    f.get("/approvals/"+id+"?verdict="+url.QueryEscape(x), "bob").html(t, http.StatusUnprocessableEntity),
		"notfound": f.get("/approvals/"+url.PathEscape(x), "bob").html(t, http.StatusNotFound),
	}
	// The text payload is hidden by redaction (Options.Redact is set);
	// without redaction it is shown, as text.
	g := newFixture(t, fixtureOpt{opts: func(o *approvalhttp.Options) { o.Redact = nil }})
	require.NoError(t, g.gate.SetPolicy("high_spend", approval.Policy{
		Match: approval.CostAtLeast(1000, "USD"), Approvers: []approval.Approver{approval.Group("finance")}, RequiredApprovals: 1,
	}))
	pages["text payload"] = g.get("/approvals/"+g.pending(text), "bob").html(t, http.StatusOK)
	pages["hidden text payload"] = f.get("/approvals/"+textID, "bob").html(t, http.StatusOK)
	for name, page := range pages {
		require.NotContains(t, page, "<script>", name)
		require.NotContains(t, page, "<img", name)
		require.NotContains(t, page, "<b>", name)
		require.NotContains(t, page, `href="javascript`, name)
	}
	require.Contains(t, pages["review"], "&lt;script&gt;alert(1)&lt;/script&gt;")
	require.Contains(t, pages["text payload"], "&lt;script&gt;alert(1)&lt;/script&gt;")
}

// TestRedactionPage: the page masks what the API masks, and says the
// hashes cover the real bytes.
func TestRedactionPage(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	secret := "DE89370400440532013000"
	a := transfer(5000)
	a.Payload = []byte(`{"to":{"IBAN":"` + secret + `"},"api_key":"` + secret + `","amount":5000}`)
	a.Metadata = map[string]string{"Api_Key": secret}
	id := f.pending(a)
	page := f.get("/approvals/"+id, "alice").html(t, http.StatusOK)
	require.NotContains(t, page, secret)
	require.Contains(t, page, `&#34;IBAN&#34;: &#34;[redacted]&#34;`)
	require.Contains(t, page, `<dd class="masked">••••</dd>`)
	require.Contains(t, page, `id="redaction-note"`)
	require.Contains(t, page, "The hashes cover the real, unmasked bytes.")

	b := transfer(5001)
	b.Payload = []byte("iban=" + secret)
	page = f.get("/approvals/"+f.pending(b), "alice").html(t, http.StatusOK)
	require.NotContains(t, page, secret)
	require.Equal(t, "hidden", attr(page, "payload", "data-kind"))
	require.Equal(t, "27", attr(page, "payload", "data-size"))
}

// TestPayloadDisplayCap: a payload beyond Options.MaxPayloadDisplayBytes is
// cut, with a note.
func TestPayloadDisplayCap(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpt{opts: func(o *approvalhttp.Options) { o.MaxPayloadDisplayBytes = 100 }})
	a := transfer(5000)
	a.Payload = []byte(`{"data":"` + strings.Repeat("é", 200) + `"}`)
	page := f.get("/approvals/"+f.pending(a), "alice").html(t, http.StatusOK)
	require.Contains(t, page, `id="payload-truncated"`)
	require.Contains(t, page, "of 411 bytes")
	require.NotContains(t, page, strings.Repeat("é", 60))
}

// The page shows where a chain stands and what automated reviewers
// advised, apart from the votes.
func TestReviewPageChainAndRecommendation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	require.NoError(t, f.gate.SetPolicy("release", approval.Policy{Match: approval.Name("release:*"), Chain: []approval.Level{
		{Name: "Team Lead Review", Approvers: []approval.Approver{approval.User("alice")}, Timeout: 4 * time.Hour,
			Escalation: []approval.EscalationStep{{After: time.Hour, Action: approval.StepEscalate, To: []approval.Approver{approval.User("dave")}}}},
		{Name: "Security Review", Approvers: []approval.Approver{approval.User("bob")}, When: approval.TagAny("security")},
		{Name: "Manager Approval", Approvers: []approval.Approver{approval.User("bob"), approval.User("dave")}, Require: approval.RequireAll},
	}}))
	rec := approval.Recommendation{By: "risk-reviewer", Verdict: approval.VerdictApprove, Summary: "no schema change", Confidence: 0.87,
		Context: map[string]string{"ci": "run 7 green"}}
	id := f.pending(approval.Action{Name: "release:web", RequestedBy: "carol", Recommendation: &rec})
	page := f.get("/approvals/"+id, "alice").html(t, http.StatusOK)
	for _, want := range []string{
		"level 1 of 3 (Team Lead Review)", "0 of 1 from alice", "level 1 (Team Lead Review): 1 approval", "user:alice",
		"level 1 (Team Lead Review) (current), times out after 4h", "after 1h: escalate user:dave",
		"level 2 (Security Review) (skipped)", "level 3 (Manager Approval) (to come)",
		`id="recommendations"`, `data-by="risk-reviewer" data-verdict="approve"`, "recommends approve (confidence 87%)",
		"no schema change", "ci: run 7 green", "a recommendation is not a vote",
	} {
		require.Contains(t, page, want)
	}
	require.Contains(t, page, `id="votes" class="empty"`, "the recommendation is not listed as a vote")
}
