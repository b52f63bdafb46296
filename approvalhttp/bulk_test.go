package approvalhttp_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/approvalhttp"
)

// vendorPolicy is a second policy of the fixture's approvers: a request
// for vendor:add matches it alone, never high_spend.
func vendorPolicy(t *testing.T, f *fixture) {
	t.Helper()
	require.NoError(t, f.gate.SetPolicy("vendor", approval.Policy{
		Match:             approval.Name("vendor:add"),
		Approvers:         []approval.Approver{approval.Group("finance")},
		RequiredApprovals: 1,
	}))
}

func vendorAdd(name string) approval.Action {
	return approval.Action{Name: "vendor:add", RequestedBy: "user-1", Payload: []byte(`{"vendor":"` + name + `"}`)}
}

// pickForm is the queue's bulk form selecting ids.
func pickForm(verdict approval.Verdict, reason string, ids ...string) url.Values {
	return url.Values{"verdict": {string(verdict)}, "reason": {reason}, "id": ids}
}

var confirmItem = regexp.MustCompile(`<input type="hidden" name="id" value="([^"]*)"><input type="hidden" name="action_hash" value="([^"]*)">`)

// confirmForm returns the fields the confirmation page's form posts, and
// the action hash it shows for each request.
func confirmForm(t *testing.T, page string) (url.Values, map[string]string) {
	t.Helper()
	verdict := regexp.MustCompile(`<input type="hidden" name="verdict" value="([^"]*)">`).FindStringSubmatch(page)
	require.NotNil(t, verdict, "no verdict on the confirmation page")
	form := url.Values{"verdict": {verdict[1]}}
	reason := regexp.MustCompile(`(?s)<textarea name="reason" id="reason"[^>]*>(.*?)</textarea>`).FindStringSubmatch(page)
	require.NotNil(t, reason)
	form.Set("reason", reason[1])
	hashes := map[string]string{}
	for _, m := range confirmItem.FindAllStringSubmatch(page, -1) {
		form.Add("id", m[1])
		form.Add("action_hash", m[2])
		hashes[m[1]] = m[2]
	}
	return form, hashes
}

// decisionEvents returns the decision events of request id.
func decisionEvents(t *testing.T, f *fixture, id string) []approval.AuditEvent {
	t.Helper()
	page, err := f.gate.ListAudit(f.ctx, approval.AuditQuery{RequestID: id, Limit: approval.MaxPageSize})
	require.NoError(t, err)
	var out []approval.AuditEvent
	for _, e := range page.Events {
		if e.Type == approval.EventDecisionApprove || e.Type == approval.EventDecisionDeny {
			out = append(out, e)
		}
	}
	return out
}

// TestBulkPages: a reviewer ticks 10 of 12 requests on the queue, confirms
// on a page that lists what each vote binds, and gets 10 votes of their
// own, each with its own token and audit event; the other two are left
// alone.
func TestBulkPages(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var ids []string
	for i := range 12 {
		ids = append(ids, f.pending(transfer(float64(1000+i))))
	}
	queue := f.get("/approvals", "alice").html(t, http.StatusOK)
	require.Equal(t, "approvals/bulk", strings.TrimPrefix(attr(queue, "bulk-form", "action"), "./"))
	for _, id := range ids {
		require.Equal(t, id, attr(queue, "pick-"+id, "value"), "a checkbox on each row alice may decide")
	}
	require.NotContains(t, f.get("/approvals", "dave").html(t, http.StatusOK), `id="bulk-form"`, "no selection for who may decide nothing")

	picked := ids[:10]
	confirm := f.postForm("/approvals/bulk", "alice", pickForm(approval.VerdictApprove, "batch ok", picked...)).html(t, http.StatusOK)
	form, shown := confirmForm(t, confirm)
	require.Equal(t, picked, form["id"], "the confirmation lists exactly the selection, in order")
	for _, id := range picked {
		r := f.request(id)
		require.Equal(t, r.ActionHash, shown[id])
		item := regexp.MustCompile(`(?s)<li class="bulk-item" id="item-` + id + `".*?</li>`).FindString(confirm)
		require.Contains(t, item, "wire-transfer")
		require.Contains(t, item, "user-1")
		require.Contains(t, item, "high_spend")
		require.Contains(t, item, r.ActionHash)
		require.Contains(t, item, `&#34;amount&#34;: 5000`, "the payload, pretty-printed")
		require.Contains(t, item, `&#34;iban&#34;: &#34;[redacted]&#34;`, "redacted as on the review page")
		require.Empty(t, r.Votes, "the confirmation page decides nothing")
	}
	require.Equal(t, "batch ok", form.Get("reason"))
	require.Equal(t, "approvals/bulk/decide", strings.TrimPrefix(attr(confirm, "bulk-confirm-form", "action"), "../"))

	results := f.postForm("/approvals/bulk/decide", "alice", form).html(t, http.StatusOK)
	require.Equal(t, "10", attr(results, "bulk-summary", "data-recorded"))
	require.Equal(t, "0", attr(results, "bulk-summary", "data-refused"))
	tokens := map[string]bool{}
	for _, id := range picked {
		require.Equal(t, "recorded", attr(results, "result-"+id, "data-status"))
		r := f.request(id)
		require.Len(t, r.Votes, 1)
		vt := r.Votes[0]
		require.Equal(t, "alice", vt.Approver)
		require.Equal(t, approval.VerdictApprove, vt.Verdict)
		require.Equal(t, "batch ok", vt.Reason)
		require.NotEmpty(t, vt.TokenID)
		tokens[vt.TokenID] = true
		ev := decisionEvents(t, f, id)
		require.Len(t, ev, 1)
		require.Equal(t, "alice", ev[0].Actor)
		require.Equal(t, approval.StatusPending, r.Status, "one vote of two")
	}
	require.Len(t, tokens, 10, "each vote has its own token")
	for _, id := range ids[10:] {
		require.Empty(t, f.request(id).Votes)
		require.Empty(t, decisionEvents(t, f, id))
	}

	// Confirming again decides nothing more: each is already decided.
	again := f.postForm("/approvals/bulk/decide", "alice", form).html(t, http.StatusConflict)
	require.Equal(t, "not_decidable", attr(again, "message", "data-code"))
	require.Equal(t, "already_decided", attr(again, "refused-"+picked[0], "data-code"))

	// Bob denies two at once; one denial denies each.
	confirm = f.postForm("/approvals/bulk", "bob", pickForm(approval.VerdictDeny, "", ids[10:]...)).html(t, http.StatusOK)
	form, _ = confirmForm(t, confirm)
	require.Contains(t, confirm, `id="bulk-confirm" class="deny"`)
	results = f.postForm("/approvals/bulk/decide", "bob", form).html(t, http.StatusOK)
	require.Equal(t, "2", attr(results, "bulk-summary", "data-recorded"))
	for _, id := range ids[10:] {
		require.Equal(t, approval.StatusDenied, f.request(id).Status)
	}
}

// TestBulkRefusedUpFront: a selection across policies, with a request the
// reviewer may not decide, empty, too large, with a duplicate or a
// malformed ID is refused whole, on the page and in the API, and nothing
// is decided.
func TestBulkRefusedUpFront(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	vendorPolicy(t, f)
	a, b := f.pending(transfer(2000)), f.pending(transfer(3000))
	vend := f.pending(vendorAdd("Globex"))
	own := transfer(4000)
	own.RequestedBy = "alice"
	mine := f.pending(own)
	require.ErrorIs(t, f.gate.CanDecide(f.ctx, f.request(mine), "alice"), approval.ErrSelfApproval)
	all := []string{a, b, vend, mine}
	nothingDecided := func() {
		t.Helper()
		for _, id := range all {
			require.Empty(t, f.request(id).Votes, id)
			require.Empty(t, decisionEvents(t, f, id), id)
		}
	}
	hash := func(id string) string { return f.request(id).ActionHash }
	items := func(ids ...string) []map[string]string {
		var out []map[string]string
		for _, id := range ids {
			out = append(out, map[string]string{"id": id, "action_hash": hash(id)})
		}
		return out
	}
	apiBulk := func(who string, body any) response {
		t.Helper()
		return f.do(req{method: http.MethodPost, path: "/api/approvals/bulk", user: who, body: jsonBody(t, body)})
	}
	refusedIDs := func(r response, status int, code string) map[string]string {
		t.Helper()
		r.problem(t, status, code)
		var p struct {
			Requests []struct {
				ID    string               `json:"id"`
				Error approvalhttp.Problem `json:"error"`
			} `json:"requests"`
		}
		require.NoError(t, json.Unmarshal(r.body, &p), r.text())
		out := map[string]string{}
		for _, x := range p.Requests {
			out[x.ID] = x.Error.Code
		}
		return out
	}

	// Across policies.
	page := f.postForm("/approvals/bulk", "alice", pickForm(approval.VerdictApprove, "", a, vend)).html(t, http.StatusUnprocessableEntity)
	require.Equal(t, "mixed_policies", attr(page, "message", "data-code"))
	require.Contains(t, page, `id="refused-`+vend+`"`)
	page = f.postForm("/approvals/bulk/decide", "alice", url.Values{"verdict": {"approve"}, "id": {a, vend}, "action_hash": {hash(a), hash(vend)}}).html(t, http.StatusUnprocessableEntity)
	require.Equal(t, "mixed_policies", attr(page, "message", "data-code"), "the confirmation is checked again")
	require.Equal(t, map[string]string{a: "mixed_policies", vend: "mixed_policies"},
		refusedIDs(apiBulk("alice", map[string]any{"verdict": "approve", "requests": items(a, vend)}), 422, "mixed_policies"))

	// Including alice's own request (segregation), and for dave, who is no
	// approver at all.
	page = f.postForm("/approvals/bulk", "alice", pickForm(approval.VerdictApprove, "", a, b, mine)).html(t, http.StatusConflict)
	require.Equal(t, "not_decidable", attr(page, "message", "data-code"))
	require.Equal(t, "self_approval", attr(page, "refused-"+mine, "data-code"))
	require.NotContains(t, page, `id="refused-`+a+`"`, "only the requests refused are listed")
	page = f.postForm("/approvals/bulk/decide", "alice", url.Values{"verdict": {"approve"}, "id": {a, mine}, "action_hash": {hash(a), hash(mine)}}).html(t, http.StatusConflict)
	require.Equal(t, "self_approval", attr(page, "refused-"+mine, "data-code"))
	require.Equal(t, map[string]string{mine: "self_approval"},
		refusedIDs(apiBulk("alice", map[string]any{"verdict": "approve", "requests": items(a, b, mine)}), 409, "not_decidable"))
	require.Equal(t, map[string]string{a: "not_eligible", b: "not_eligible"},
		refusedIDs(apiBulk("dave", map[string]any{"verdict": "deny", "requests": items(a, b)}), 409, "not_decidable"))

	// The selection itself.
	page = f.postForm("/approvals/bulk", "alice", pickForm(approval.VerdictApprove, "")).html(t, http.StatusUnprocessableEntity)
	require.Equal(t, "invalid_selection", attr(page, "message", "data-code"))
	refusedIDs(apiBulk("alice", map[string]any{"verdict": "approve", "requests": []any{}}), 422, "invalid_selection")
	page = f.postForm("/approvals/bulk", "alice", pickForm(approval.VerdictApprove, "", a, b, a)).html(t, http.StatusUnprocessableEntity)
	require.Equal(t, "invalid_selection", attr(page, "message", "data-code"))
	require.Equal(t, map[string]string{a: "invalid_selection"},
		refusedIDs(apiBulk("alice", map[string]any{"verdict": "approve", "requests": items(a, b, a)}), 422, "invalid_selection"))
	require.Equal(t, map[string]string{"req_x": "not_found", "req_00000000000000000000000000000000": "not_found"},
		refusedIDs(apiBulk("alice", map[string]any{"verdict": "approve", "requests": []map[string]string{
			{"id": a, "action_hash": hash(a)}, {"id": "req_x", "action_hash": "h"}, {"id": "req_00000000000000000000000000000000", "action_hash": "h"}}}), 422, "invalid_selection"))
	require.Equal(t, map[string]string{b: "invalid_selection"},
		refusedIDs(apiBulk("alice", map[string]any{"verdict": "approve", "requests": []map[string]string{{"id": a, "action_hash": hash(a)}, {"id": b}}}), 422, "invalid_selection"),
		"the API binds each vote: an action hash is required")
	page = f.postForm("/approvals/bulk/decide", "alice", url.Values{"verdict": {"approve"}, "id": {a, b}, "action_hash": {hash(a)}}).html(t, http.StatusUnprocessableEntity)
	require.Equal(t, "invalid_selection", attr(page, "message", "data-code"))
	many := make([]string, approvalhttp.MaxBulk+1)
	for i := range many {
		many[i] = "req_" + strings.Repeat("0", 30) + strconv.Itoa(10+i)
	}
	page = f.postForm("/approvals/bulk", "alice", pickForm(approval.VerdictApprove, "", many...)).html(t, http.StatusUnprocessableEntity)
	require.Equal(t, "invalid_selection", attr(page, "message", "data-code"))
	require.Contains(t, page, "at most 50")
	page = f.postForm("/approvals/bulk", "alice", pickForm("maybe", "", a)).html(t, http.StatusUnprocessableEntity)
	require.Equal(t, "invalid_decision", attr(page, "message", "data-code"))
	apiBulk("alice", map[string]any{"verdict": "maybe", "requests": items(a)}).problem(t, 422, "invalid_decision")
	apiBulk("alice", map[string]any{"verdict": "approve", "requests": items(a), "token": "x"}).problem(t, 400, "malformed_request")

	// Who and where from.
	require.Equal(t, "unauthenticated", attr(f.postForm("/approvals/bulk", "", pickForm(approval.VerdictApprove, "", a)).html(t, 401), "message", "data-code"))
	require.Equal(t, "unauthenticated", attr(f.postForm("/approvals/bulk/decide", "", url.Values{"verdict": {"approve"}, "id": {a}, "action_hash": {hash(a)}}).html(t, 401), "message", "data-code"))
	apiBulk("", map[string]any{"verdict": "approve", "requests": items(a)}).problem(t, 401, "unauthenticated")
	for _, path := range []string{"/approvals/bulk", "/approvals/bulk/decide"} {
		r := f.do(req{method: http.MethodPost, path: path, user: "alice",
			body: url.Values{"verdict": {"approve"}, "id": {a}, "action_hash": {hash(a)}}.Encode(), ctype: "application/x-www-form-urlencoded",
			header: http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://evil.example"}}})
		require.Equal(t, http.StatusForbidden, r.StatusCode, path)
		require.Contains(t, r.text(), "cross_origin")
	}
	f.do(req{method: http.MethodPost, path: "/api/approvals/bulk", user: "alice", body: jsonBody(t, map[string]any{"verdict": "approve", "requests": items(a)}),
		header: http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://evil.example"}}}).problem(t, 403, "cross_origin")
	nothingDecided()
}

// TestBulkActionChanged: a payload edited by another approver between
// the confirmation and the confirm refuses that one vote (action_changed),
// and records the others; the API reports the same per request.
func TestBulkActionChanged(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ids := []string{f.pending(transfer(1000)), f.pending(transfer(2000)), f.pending(transfer(3000))}
	confirm := f.postForm("/approvals/bulk", "alice", pickForm(approval.VerdictApprove, "", ids...)).html(t, http.StatusOK)
	form, _ := confirmForm(t, confirm)

	// Bob approves the second with an edited payload.
	edited, err := f.gate.Decide(f.ctx, ids[1], approval.Decision{Token: f.token(ids[1], "bob", approval.VerdictApprove), Verdict: approval.VerdictApprove,
		Payload: []byte(`{"to":{"iban":"XX00","name":"EVE"},"amount":9999}`)})
	require.NoError(t, err)
	require.Equal(t, approval.StatusPending, edited.Status)

	results := f.postForm("/approvals/bulk/decide", "alice", form).html(t, http.StatusOK)
	require.Equal(t, "2", attr(results, "bulk-summary", "data-recorded"))
	require.Equal(t, "1", attr(results, "bulk-summary", "data-refused"))
	require.Equal(t, "refused", attr(results, "result-"+ids[1], "data-status"))
	require.Equal(t, "action_changed", attr(results, "result-"+ids[1], "data-code"))
	require.Contains(t, results, "The action changed since it was shown")
	for _, id := range []string{ids[0], ids[2]} {
		require.Equal(t, "recorded", attr(results, "result-"+id, "data-status"))
		require.Len(t, f.request(id).Votes, 1)
	}
	r := f.request(ids[1])
	require.Len(t, r.Votes, 1, "only bob's")
	require.Equal(t, "bob", r.Votes[0].Approver)

	// A confirmation shown now binds the edit, and alice may approve it.
	confirm = f.postForm("/approvals/bulk", "alice", pickForm(approval.VerdictApprove, "", ids[1])).html(t, http.StatusOK)
	require.Contains(t, confirm, "The payload was edited by bob")
	require.Contains(t, confirm, `EVE`)
	_, shown := confirmForm(t, confirm)
	require.Equal(t, r.Edit.ActionHash, shown[ids[1]])

	// The API: carol votes on all three with the hashes as first shown.
	more := f.pending(transfer(4000))
	var out struct {
		Verdict           approval.Verdict `json:"verdict"`
		Recorded, Refused int
		Results           []struct {
			ID            string                `json:"id"`
			Status        string                `json:"status"`
			RequestStatus approval.Status       `json:"request_status"`
			Vote          *approval.Vote        `json:"vote"`
			Error         *approvalhttp.Problem `json:"error"`
		} `json:"results"`
	}
	body := map[string]any{"verdict": "approve", "reason": "api batch", "requests": []map[string]string{
		{"id": ids[1], "action_hash": form["action_hash"][1]}, {"id": more, "action_hash": f.request(more).ActionHash},
	}}
	resp := f.do(req{method: http.MethodPost, path: "/api/approvals/bulk", user: "carol", body: jsonBody(t, body)})
	require.Equal(t, http.StatusOK, resp.StatusCode, resp.text())
	resp.json(t, &out)
	require.Equal(t, approval.VerdictApprove, out.Verdict)
	require.Equal(t, 1, out.Recorded)
	require.Equal(t, 1, out.Refused)
	require.Len(t, out.Results, 2)
	require.Equal(t, ids[1], out.Results[0].ID)
	require.Equal(t, "refused", out.Results[0].Status)
	require.NotNil(t, out.Results[0].Error)
	require.Equal(t, "action_changed", out.Results[0].Error.Code)
	require.Equal(t, http.StatusConflict, out.Results[0].Error.Status)
	require.Nil(t, out.Results[0].Vote)
	require.Equal(t, more, out.Results[1].ID)
	require.Equal(t, "recorded", out.Results[1].Status)
	require.Nil(t, out.Results[1].Error)
	require.Equal(t, approval.StatusPending, out.Results[1].RequestStatus)
	require.NotNil(t, out.Results[1].Vote)
	require.Equal(t, "carol", out.Results[1].Vote.Approver)
	require.Equal(t, "api batch", out.Results[1].Vote.Reason)
	require.Len(t, f.request(ids[1]).Votes, 1, "carol's refused vote changed nothing")
	require.Len(t, decisionEvents(t, f, more), 1)
}

// TestBulkAPI: ten votes through the API, each with its own token and
// audit event.
func TestBulkAPI(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var items []map[string]string
	var ids []string
	for i := range 10 {
		id := f.pending(transfer(float64(1000 + i)))
		ids = append(ids, id)
		items = append(items, map[string]string{"id": id, "action_hash": f.request(id).ActionHash})
	}
	resp := f.do(req{method: http.MethodPost, path: "/api/approvals/bulk", user: "bob", body: jsonBody(t, map[string]any{"verdict": "deny", "reason": "no", "requests": items})})
	require.Equal(t, http.StatusOK, resp.StatusCode, resp.text())
	var out struct {
		Recorded int `json:"recorded"`
		Results  []struct {
			ID            string          `json:"id"`
			Status        string          `json:"status"`
			RequestStatus approval.Status `json:"request_status"`
			Vote          approval.Vote   `json:"vote"`
		} `json:"results"`
	}
	resp.json(t, &out)
	require.Equal(t, 10, out.Recorded)
	tokens := map[string]bool{}
	for i, x := range out.Results {
		require.Equal(t, ids[i], x.ID)
		require.Equal(t, "recorded", x.Status)
		require.Equal(t, approval.StatusDenied, x.RequestStatus)
		r := f.request(x.ID)
		require.Equal(t, approval.StatusDenied, r.Status)
		require.Len(t, r.Votes, 1)
		require.Equal(t, r.Votes[0].TokenID, x.Vote.TokenID)
		tokens[x.Vote.TokenID] = true
		ev := decisionEvents(t, f, x.ID)
		require.Len(t, ev, 1)
		require.Equal(t, approval.EventDecisionDeny, ev[0].Type)
		require.Equal(t, "bob", ev[0].Actor)
	}
	require.Len(t, tokens, 10)
}

// TestBulkPasskey: an approval that needs the approver's passkey is
// refused up front (it is given on the request's own page); a denial,
// which needs none, is recorded.
func TestBulkPasskey(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpt{cfg: func(c *approval.Config) {
		c.Passkeys = approval.PasskeyConfig{RPID: "localhost", Origins: []string{"http://localhost"}}
	}})
	require.NoError(t, f.gate.SetPolicy("signed", approval.Policy{
		Match: approval.Name("signed-pay"), Approvers: []approval.Approver{approval.Group("finance")},
		RequiredApprovals: 1, RequirePasskey: true,
	}))
	id := f.pending(approval.Action{Name: "signed-pay", RequestedBy: "user-1", Payload: []byte(`{"n":1}`)})
	form := url.Values{"verdict": {"approve"}, "id": {id}, "action_hash": {f.request(id).ActionHash}}
	page := f.postForm("/approvals/bulk/decide", "alice", form).html(t, http.StatusConflict)
	require.Equal(t, "not_decidable", attr(page, "message", "data-code"))
	require.Equal(t, "passkey", attr(page, "refused-"+id, "data-code"))
	require.Empty(t, f.request(id).Votes)

	form.Set("verdict", "deny")
	page = f.postForm("/approvals/bulk/decide", "alice", form).html(t, http.StatusOK)
	require.Equal(t, "recorded", attr(page, "result-"+id, "data-status"))
	require.Equal(t, approval.StatusDenied, f.request(id).Status)
}
