package approvalhttp_test

import (
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/testkit"
)

// The reviewer-trust scenario: bob approves a payment with an edit to
// another payee and a larger amount; carol decides next. The password is
// redacted by policy.
const (
	originalPayee = "ACME-ORIGINAL-PAYEE"
	editedPayee   = "EVE-EDITED-PAYEE"
	secret        = "hunter2-SECRET-7f3a"
)

var (
	originalPayment = `{"to":"` + originalPayee + `","amount":100,"password":"` + secret + `"}`
	editedPayment   = `{"to":"` + editedPayee + `","amount":990000,"password":"` + secret + `"}`
)

// paymentFixture is the fixture with a "payments" policy (two finance
// approvals for "pay", the password redacted) and a pending payment the
// agent asked for through the API.
func paymentFixture(t *testing.T) (*fixture, string) {
	t.Helper()
	f := newFixture(t)
	require.NoError(t, f.gate.SetPolicy("payments", approval.Policy{
		Match: approval.Name("pay"), Approvers: []approval.Approver{approval.Group("finance")}, RequiredApprovals: 2,
		Redact: []string{"password"},
	}))
	r := f.do(req{method: http.MethodPost, path: "/api/approvals", body: `{"name":"pay","payload":` + originalPayment + `}`, auth: agentKey})
	require.Equal(t, http.StatusAccepted, r.StatusCode, r.text())
	var res struct {
		RequestID string `json:"request_id"`
	}
	r.json(t, &res)
	return f, res.RequestID
}

// editAsBob records bob's approval with the edited payment.
func editAsBob(t *testing.T, f *fixture, id string) *approval.Request {
	t.Helper()
	r, err := f.gate.Decide(f.ctx, id, approval.Decision{Token: f.token(id, "bob", approval.VerdictApprove),
		Verdict: approval.VerdictApprove, Payload: []byte(editedPayment)})
	require.NoError(t, err)
	return r
}

func leaks(s string) bool { return testkit.Leaks(s, secret) }

// TestEditedPayloadIsWhatTheNextApproverSees: after bob's edit, carol's
// review page, the API and the queue show the edited payload (what her
// vote binds) and its hashes, who edited it and what changed; a form
// loaded before the edit cannot approve the edited payload.
func TestEditedPayloadIsWhatTheNextApproverSees(t *testing.T) {
	t.Parallel()
	f, id := paymentFixture(t)
	before := f.get("/approvals/"+id, "carol").html(t, http.StatusOK) // carol opens the page first
	r := editAsBob(t, f, id)

	page := f.get("/approvals/"+id, "carol").html(t, http.StatusOK)
	payload := section(t, page, `id="payload"`, `</div>`)
	require.Contains(t, payload, editedPayee, "the payload shown is the edited one")
	require.Contains(t, payload, "990000")
	require.NotContains(t, payload, originalPayee)
	require.Equal(t, r.Edit.PayloadHash, textOf(page, "payload-hash"), "the payload hash shown is the one the vote binds")
	require.Equal(t, r.Edit.ActionHash, textOf(page, "action-hash"))
	require.Equal(t, r.PayloadHash, textOf(page, "original-payload-hash"))
	require.Equal(t, "bob", attr(page, "edit", "data-by"))
	require.Contains(t, page, "The payload was edited by bob")
	changes := section(t, page, `id="changes"`, `</table>`)
	require.Contains(t, changes, `data-path="amount"`)
	require.Contains(t, changes, `data-path="to"`)
	require.Contains(t, changes, originalPayee, "the change from the original is plain")
	require.Contains(t, changes, editedPayee)
	require.Less(t, strings.Index(page, `id="payload"`), strings.Index(page, `id="approve"`), "what is approved comes before the buttons")
	require.Equal(t, r.Edit.ActionHash, attrByName(page, "action_hash"), "the form binds the action shown")
	require.False(t, leaks(page))

	// The form carol loaded before the edit is refused, and nothing is
	// recorded.
	stale := f.postForm("/approvals/"+id+"/decide", "carol", url.Values{"verdict": {"approve"}, "action_hash": {attrByName(before, "action_hash")}})
	require.Equal(t, "action_changed", attr(stale.html(t, http.StatusConflict), "message", "data-code"))
	require.Len(t, f.request(id).Votes, 1)

	// The API, for a reviewer and for the requester: the edit as JSON,
	// redacted, with the changes.
	for _, q := range []req{{method: http.MethodGet, path: "/api/approvals/" + id, user: "carol"},
		{method: http.MethodGet, path: "/api/approvals/" + id, auth: agentKey}} {
		resp := f.do(q)
		require.Equal(t, http.StatusOK, resp.StatusCode, resp.text())
		require.False(t, leaks(resp.text()), "%+v", q)
		var got requestJSON
		resp.json(t, &got)
		require.NotNil(t, got.Edit)
		require.JSONEq(t, `{"to":"`+editedPayee+`","amount":990000,"password":"[redacted]"}`, string(got.Edit.Payload))
		require.Equal(t, r.Edit.PayloadHash, got.Edit.PayloadHash)
		require.Equal(t, "bob", got.Edit.By)
		require.Len(t, got.Edit.Changes, 2)
		require.True(t, got.Redacted)
	}

	// The queue says the payload was edited.
	queue := f.get("/approvals", "carol").html(t, http.StatusOK)
	row := section(t, queue, `id="row-`+id+`"`, `</tr>`)
	require.Contains(t, row, "payload edited")

	// With the edited hash, carol's form approves.
	ok := f.postForm("/approvals/"+id+"/decide", "carol", url.Values{"verdict": {"approve"}, "action_hash": {r.Edit.ActionHash}})
	require.Equal(t, http.StatusSeeOther, ok.StatusCode, ok.text())
	require.Equal(t, approval.StatusApproved, f.request(id).Status)
}

// TestRedactionEveryOutput: a redacted value never leaves through the API
// (reviewer, requester, wait, list), the review page or the queue, with
// and without an edit that leaves it unchanged.
func TestRedactionEveryOutput(t *testing.T) {
	t.Parallel()
	for _, edited := range []bool{false, true} {
		f, id := paymentFixture(t)
		if edited {
			editAsBob(t, f, id)
		}
		for _, q := range []req{
			{method: http.MethodGet, path: "/api/approvals/" + id, user: "carol"},
			{method: http.MethodGet, path: "/api/approvals/" + id, auth: agentKey},
			{method: http.MethodGet, path: "/api/approvals/" + id + "/wait?timeout=1ms", auth: agentKey},
			{method: http.MethodGet, path: "/api/approvals", user: "carol"},
			{method: http.MethodGet, path: "/api/approvals/" + id + "/audit", user: "carol"},
			{method: http.MethodGet, path: "/approvals/" + id, user: "carol"},
			{method: http.MethodGet, path: "/approvals", user: "carol"},
		} {
			resp := f.do(q)
			require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", q.path, resp.text())
			require.False(t, leaks(resp.text()), "edited=%v %s leaks the redacted value", edited, q.path)
			switch {
			case !edited || strings.HasSuffix(q.path, "/audit"):
			case q.path == "/approvals":
				require.Contains(t, resp.text(), "payload edited", "the queue marks the edit")
			default:
				require.Contains(t, resp.text(), editedPayee, "%s shows the edit", q.path)
			}
		}
	}
}

// TestEveryPayloadFieldIsRedacted enumerates the fields of
// approval.Request that carry payload bytes, so that a new one cannot
// slip past the redaction of the API and the pages: each listed here is
// covered by TestRedactionEveryOutput; a new one fails this test until it
// is handled and listed.
func TestEveryPayloadFieldIsRedacted(t *testing.T) {
	t.Parallel()
	var found []string
	var walk func(path string, ty reflect.Type, seen map[reflect.Type]bool)
	walk = func(path string, ty reflect.Type, seen map[reflect.Type]bool) {
		for ty.Kind() == reflect.Pointer || ty.Kind() == reflect.Slice && ty.Elem().Kind() != reflect.Uint8 || ty.Kind() == reflect.Map {
			ty = ty.Elem()
		}
		switch {
		case ty.Kind() == reflect.Slice: // []byte, json.RawMessage
			found = append(found, path)
			return
		case ty == reflect.TypeFor[approval.PasskeyProof]():
			// An authenticator's bytes (a hash-bound challenge, an origin,
			// a key, a signature), none of the payload's.
			return
		case ty.Kind() != reflect.Struct || seen[ty]:
			return
		}
		seen[ty] = true
		defer delete(seen, ty)
		for i := range ty.NumField() {
			fl := ty.Field(i)
			if fl.IsExported() {
				walk(strings.TrimPrefix(path+"."+fl.Name, "."), fl.Type, seen)
			}
		}
	}
	walk("", reflect.TypeFor[approval.Request](), map[reflect.Type]bool{})
	require.Equal(t, []string{"Action.Payload", "Edit.Payload"}, found,
		"a field of Request carries payload bytes: redact it in toJSON and the review page, then list it here")
}

// section returns page from the element start names to the first end after it.
func section(t *testing.T, page, start, end string) string {
	t.Helper()
	i := strings.Index(page, start)
	require.GreaterOrEqual(t, i, 0, "no %s", start)
	j := strings.Index(page[i:], end)
	require.GreaterOrEqual(t, j, 0)
	return page[i : i+j]
}

// textOf returns the text of the element with the given id (no child
// elements).
func textOf(page, id string) string {
	i := strings.Index(page, `id="`+id+`"`)
	if i < 0 {
		return ""
	}
	rest := page[i:]
	rest = rest[strings.Index(rest, ">")+1:]
	return rest[:strings.Index(rest, "<")]
}

// attrByName returns the value of the input named name.
func attrByName(page, name string) string {
	i := strings.Index(page, `name="`+name+`" value="`)
	if i < 0 {
		return ""
	}
	rest := page[i+len(`name="`+name+`" value="`):]
	return rest[:strings.Index(rest, `"`)]
}

// TestDenyFormStructuredDenial: the review page's Deny takes a structured
// denial; a link opened with verdict=approve offers Deny too, since its
// token allows either answer.
func TestDenyFormStructuredDenial(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.pending(transfer(5000))
	tok := f.token(id, "alice", approval.VerdictBoth)
	page := f.get("/approvals/"+id+"?verdict=approve&token="+url.QueryEscape(tok), "").html(t, http.StatusOK)
	require.Contains(t, page, `id="approve"`)
	require.Contains(t, page, `id="deny"`, "a link offers both answers")
	require.Less(t, strings.Index(page, `id="approve"`), strings.Index(page, `id="deny"`), "the link's answer first")
	page = f.get("/approvals/"+id+"?verdict=deny&token="+url.QueryEscape(tok), "").html(t, http.StatusOK)
	require.Less(t, strings.Index(page, `id="deny"`), strings.Index(page, `id="approve"`), "the link's answer first")
	require.Contains(t, page, `id="denial" open`)

	r := f.postForm("/approvals/"+id+"/decide", "", url.Values{"token": {tok}, "verdict": {"deny"}, "reason": {"wrong payee"},
		"action_hash": {f.request(id).ActionHash}, "denial_code": {"wrong-payee"}, "denial_retry": {"changed"}, "denial_hint": {"pay the IBAN on file"}})
	page = r.html(t, http.StatusOK)
	require.Contains(t, page, "Your denial was recorded.")
	v := f.request(id).Votes[0]
	require.Equal(t, &approval.Denial{Code: "wrong-payee", Retry: approval.RetryChanged, Hint: "pay the IBAN on file"}, v.Denial)
	require.Contains(t, page, "code wrong-payee, retry changed, hint: pay the IBAN on file")

	// A bad denial is refused as a whole: nothing recorded.
	id2 := f.pending(transfer(6000))
	bad := f.postForm("/approvals/"+id2+"/decide", "bob", url.Values{"verdict": {"deny"}, "denial_code": {"no spaces allowed"}, "denial_retry": {"changed"}})
	require.Equal(t, "invalid_decision", attr(bad.html(t, http.StatusUnprocessableEntity), "message", "data-code"))
	require.Empty(t, f.request(id2).Votes)
}
