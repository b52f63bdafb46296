package approvalhttp_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/approvalhttp"
)

type guardResult struct {
	Status    approval.Status `json:"status"`
	RequestID string          `json:"request_id"`
	Reason    string          `json:"reason"`
}

func (f *fixture) guardAPI(body string) response {
	f.t.Helper()
	return f.do(req{method: http.MethodPost, path: "/api/approvals", body: body, auth: agentKey})
}

// TestGuardAPI: POST /api/approvals guards an action for the authenticated
// caller: 202 pending (the same request on a retry), 200 approved or
// denied, and the payload bound as JSON or as text.
func TestGuardAPI(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	body := `{"name":"wire-transfer","cost":{"amount":5000,"currency":"usd"},"payload":{"amount": 5000, "to":"x"}}`
	r := f.guardAPI(body)
	require.Equal(t, http.StatusAccepted, r.StatusCode, r.text())
	var res guardResult
	r.json(t, &res)
	require.Equal(t, approval.StatusPending, res.Status)
	require.Equal(t, "approvals/"+res.RequestID, r.Header.Get("Location"), "relative to /api/approvals")
	loc, err := url.Parse(f.srv.URL + "/api/approvals")
	require.NoError(t, err)
	ref, err := url.Parse(r.Header.Get("Location"))
	require.NoError(t, err)
	require.Equal(t, "/api/approvals/"+res.RequestID, loc.ResolveReference(ref).Path)

	stored := f.request(res.RequestID)
	require.Equal(t, agentID, stored.Action.RequestedBy, "the authenticated caller is the requester")
	require.Equal(t, approval.PayloadHash([]byte(`{"to":"x","amount":5000}`)), stored.PayloadHash, "a JSON payload is bound as JSON")
	require.Equal(t, "api", stored.Action.Provenance.Source)

	// A retry is the same request.
	r = f.guardAPI(body)
	require.Equal(t, http.StatusAccepted, r.StatusCode)
	var again guardResult
	r.json(t, &again)
	require.Equal(t, res.RequestID, again.RequestID)

	// A string payload is text: its content is the payload.
	r = f.guardAPI(`{"name":"wire-transfer","cost":{"amount":5000,"currency":"USD"},"payload":"line 1\nline 2","requested_by":"Agent-1"}`)
	require.Equal(t, http.StatusAccepted, r.StatusCode, "requested_by naming the caller (in any spelling) is accepted")
	r.json(t, &res)
	require.Equal(t, approval.PayloadHash([]byte("line 1\nline 2")), f.request(res.RequestID).PayloadHash)

	// No policy: approved. A deny policy: denied. Both 200.
	r = f.guardAPI(`{"name":"read-report"}`)
	require.Equal(t, http.StatusOK, r.StatusCode)
	r.json(t, &res)
	require.Equal(t, approval.StatusApproved, res.Status)
	require.Equal(t, approval.ReasonNoPolicyMatched, res.Reason)
	r = f.guardAPI(`{"name":"wire-transfer","tags":["sanctioned"]}`)
	require.Equal(t, http.StatusOK, r.StatusCode)
	r.json(t, &res)
	require.Equal(t, approval.StatusDenied, res.Status)
	require.Equal(t, "sanctioned destination", res.Reason)
	require.NotEmpty(t, res.RequestID)
}

// TestGuardAPIErrors: each refusal of POST /api/approvals has its status
// and problem code.
func TestGuardAPIErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpt{opts: func(o *approvalhttp.Options) { o.MaxBodyBytes = 4096 }})
	for _, tc := range []struct {
		name   string
		q      req
		status int
		code   string
	}{
		{"no credentials", req{body: `{"name":"x"}`}, 401, "unauthenticated"},
		{"wrong credentials", req{body: `{"name":"x"}`, auth: "Bearer nope"}, 401, "unauthenticated"},
		{"requested_by of someone else", req{body: `{"name":"x","requested_by":"alice"}`, auth: agentKey}, 422, "requested_by_mismatch"},
		{"invalid requested_by", req{body: `{"name":"x","requested_by":"agent-1 "}`, auth: agentKey}, 422, "requested_by_mismatch"},
		{"no name", req{body: `{"message":"hi"}`, auth: agentKey}, 422, "invalid_action"},
		{"unknown risk", req{body: `{"name":"x","risk":"extreme"}`, auth: agentKey}, 422, "invalid_action"},
		{"cost without currency", req{body: `{"name":"x","cost":{"amount":5}}`, auth: agentKey}, 422, "invalid_action"},
		{"malformed JSON", req{body: `{"name":`, auth: agentKey}, 400, "malformed_request"},
		{"unknown field", req{body: `{"name":"x","paylod":"typo"}`, auth: agentKey}, 400, "malformed_request"},
		{"two values", req{body: `{"name":"x"} {}`, auth: agentKey}, 400, "malformed_request"},
		{"not an object", req{body: `[1]`, auth: agentKey}, 400, "malformed_request"},
		{"too large", req{body: `{"name":"x","message":"` + strings.Repeat("a", 5000) + `"}`, auth: agentKey}, 413, "body_too_large"},
		{"form body", req{body: `name=x`, ctype: "application/x-www-form-urlencoded", auth: agentKey}, 415, "unsupported_media_type"},
		{"text/plain body", req{body: `{"name":"x"}`, ctype: "text/plain", auth: agentKey}, 415, "unsupported_media_type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.q.method, tc.q.path = http.MethodPost, "/api/approvals"
			f.do(tc.q).problem(t, tc.status, tc.code)
		})
	}

	// Without Options.Authenticate the route is not served.
	g := newFixture(t, fixtureOpt{opts: func(o *approvalhttp.Options) { o.Authenticate = nil }})
	g.guardAPI(`{"name":"x"}`).problem(t, 404, "not_found")
}

type requestJSON struct {
	ID       string          `json:"id"`
	Status   approval.Status `json:"status"`
	Redacted bool            `json:"redacted"`
	Action   struct {
		Name          string            `json:"name"`
		RequestedBy   string            `json:"requested_by"`
		Metadata      map[string]string `json:"metadata"`
		Payload       json.RawMessage   `json:"payload"`
		PayloadText   *string           `json:"payload_text"`
		PayloadBase64 []byte            `json:"payload_base64"`
		PayloadSize   int               `json:"payload_size"`
	} `json:"action"`
	ActionHash  string          `json:"action_hash"`
	PayloadHash string          `json:"payload_hash"`
	Votes       []approval.Vote `json:"votes"`
	Edit        *struct {
		Payload     json.RawMessage          `json:"payload"`
		PayloadSize int                      `json:"payload_size"`
		PayloadHash string                   `json:"payload_hash"`
		ActionHash  string                   `json:"action_hash"`
		By          string                   `json:"by"`
		Changes     []approval.PayloadChange `json:"changes"`
	} `json:"edit"`
	Progress []approval.PolicyStanding `json:"progress"`
	Viewer   *struct {
		ID          string           `json:"id"`
		Via         string           `json:"via"`
		TokenAllows approval.Verdict `json:"token_allows"`
		MayDecide   bool             `json:"may_decide"`
		WhyNot      string           `json:"why_not"`
	} `json:"viewer"`
}

// TestGetAPI: GET /api/approvals/{id} shows the request to a signed-in
// reviewer or a token holder, with whether they may decide.
func TestGetAPI(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.pending(transfer(5000))
	stored := f.request(id)

	var got requestJSON
	f.get("/api/approvals/"+id, "Alice").json(t, &got)
	require.Equal(t, id, got.ID)
	require.Equal(t, approval.StatusPending, got.Status)
	require.Equal(t, stored.ActionHash, got.ActionHash)
	require.Equal(t, stored.PayloadHash, got.PayloadHash)
	require.Equal(t, "alice", got.Viewer.ID)
	require.Equal(t, "session", got.Viewer.Via)
	require.True(t, got.Viewer.MayDecide)

	got = requestJSON{}
	f.get("/api/approvals/"+id, "user-1").json(t, &got)
	require.False(t, got.Viewer.MayDecide)
	require.Equal(t, "not_eligible", got.Viewer.WhyNot)

	// A token for the request is enough to read it, without a session.
	tok := f.token(id, "bob", approval.VerdictApprove)
	got = requestJSON{}
	f.get("/api/approvals/"+id+"?token="+tok, "").json(t, &got)
	require.Equal(t, "bob", got.Viewer.ID)
	require.Equal(t, "token", got.Viewer.Via)
	require.Equal(t, approval.VerdictApprove, got.Viewer.TokenAllows)
	require.True(t, got.Viewer.MayDecide)

	other := f.pending(transfer(6000))
	f.get("/api/approvals/"+other+"?token="+tok, "alice").problem(t, 403, "token_request_mismatch")
	f.get("/api/approvals/"+id+"?token=garbage", "alice").problem(t, 401, "token_malformed")
	f.get("/api/approvals/"+id, "").problem(t, 401, "unauthenticated")
	f.get("/api/approvals/req_00000000000000000000000000000000", "alice").problem(t, 404, "not_found")
	f.get("/api/approvals/nope", "alice").problem(t, 404, "not_found")
	f.get("/api/approvals/"+strings.Repeat("x", 5000), "alice").problem(t, 404, "not_found")

	f.clock.Advance(2 * time.Hour)
	f.get("/api/approvals/"+id+"?token="+tok, "").problem(t, 401, "token_expired")
}

// TestRedactionAPI: the API never returns a redacted value: payload fields
// at any depth and in any case, metadata values, and a payload that is not
// JSON when redaction applies.
func TestRedactionAPI(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	secret := "DE89370400440532013000"
	a := transfer(5000)
	a.Payload = []byte(`{"to":{"Iban":"` + secret + `","name":"ACME"},"list":[{"\u0069ban":"` + secret + `"}],"api_KEY":{"nested":"` + secret + `"},"amount":5000}`)
	a.Metadata = map[string]string{"API_Key": secret, "ticket": "FIN-1"}
	id := f.pending(a)

	r := f.get("/api/approvals/"+id, "alice")
	require.NotContains(t, r.text(), secret)
	var got requestJSON
	r.json(t, &got)
	require.True(t, got.Redacted)
	require.JSONEq(t, `{"to":{"Iban":"[redacted]","name":"ACME"},"list":[{"\u0069ban":"[redacted]"}],"api_KEY":"[redacted]","amount":5000}`, string(got.Action.Payload))
	require.Equal(t, map[string]string{"API_Key": "[redacted]", "ticket": "FIN-1"}, got.Action.Metadata)
	require.Equal(t, approval.PayloadHash(a.Payload), got.PayloadHash, "the hash is of the real bytes")
	require.Equal(t, len(a.Payload), got.Action.PayloadSize)

	// The listing redacts too.
	r = f.get("/api/approvals", "alice")
	require.Equal(t, http.StatusOK, r.StatusCode)
	require.NotContains(t, r.text(), secret)

	// Not JSON, with redaction configured: neither text nor bytes.
	b := transfer(5001)
	b.Payload = []byte("iban=" + secret)
	id = f.pending(b)
	got = requestJSON{}
	r = f.get("/api/approvals/"+id, "alice")
	require.NotContains(t, r.text(), secret)
	r.json(t, &got)
	require.True(t, got.Redacted)
	require.Nil(t, got.Action.Payload)
	require.Nil(t, got.Action.PayloadText)
	require.Nil(t, got.Action.PayloadBase64)
	require.Equal(t, len(b.Payload), got.Action.PayloadSize)

	// Without any redaction name: text as text, binary as base64.
	g := newFixture(t, fixtureOpt{opts: func(o *approvalhttp.Options) { o.Redact = nil }})
	require.NoError(t, g.gate.SetPolicy("high_spend", approval.Policy{
		Match: approval.CostAtLeast(1000, "USD"), Approvers: []approval.Approver{approval.Group("finance")}, RequiredApprovals: 1,
	}))
	id = g.pending(b)
	got = requestJSON{}
	g.get("/api/approvals/"+id, "alice").json(t, &got)
	require.False(t, got.Redacted)
	require.Equal(t, "iban="+secret, *got.Action.PayloadText)
	bin := transfer(5002)
	bin.Payload = []byte{0xff, 0x00, 0x01}
	id = g.pending(bin)
	got = requestJSON{}
	g.get("/api/approvals/"+id, "alice").json(t, &got)
	require.Equal(t, bin.Payload, got.Action.PayloadBase64)
}

type listJSON struct {
	Requests []requestJSON `json:"requests"`
	Next     string        `json:"next"`
}

// TestListAPI: GET /api/approvals pages through Gate.List with a cursor
// (in the body and a Link header), filters, and the inbox (awaiting=me).
func TestListAPI(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var ids []string
	for i := range 5 {
		a := transfer(float64(1000 + i))
		if i == 3 {
			a.RequestedBy = "alice" // alice may not approve her own
		}
		ids = append(ids, f.pending(a))
	}
	tok := f.token(ids[1], "alice", approval.VerdictApprove)
	_, err := f.gate.Decide(f.ctx, ids[1], approval.Decision{Token: tok, Verdict: approval.VerdictApprove})
	require.NoError(t, err)

	var got []string
	path := "/api/approvals?limit=2"
	for range 10 {
		r := f.get(path, "alice")
		require.Equal(t, http.StatusOK, r.StatusCode, r.text())
		var page listJSON
		r.json(t, &page)
		require.LessOrEqual(t, len(page.Requests), 2)
		for _, q := range page.Requests {
			got = append(got, q.ID)
		}
		if page.Next == "" {
			require.Empty(t, r.Header.Get("Link"))
			break
		}
		link := r.Header.Get("Link")
		require.True(t, strings.HasPrefix(link, "<?") && strings.HasSuffix(link, `>; rel="next"`), link)
		next, err := url.ParseQuery(strings.TrimSuffix(strings.TrimPrefix(link, "<?"), `>; rel="next"`))
		require.NoError(t, err)
		require.Equal(t, page.Next, next.Get("cursor"))
		require.Equal(t, "2", next.Get("limit"), "the Link keeps the filters")
		path = "/api/approvals?" + next.Encode()
	}
	require.Equal(t, ids, got)

	list := func(query, user string) []string {
		t.Helper()
		var page listJSON
		f.get("/api/approvals?"+query, user).json(t, &page)
		var out []string
		for _, q := range page.Requests {
			out = append(out, q.ID)
		}
		return out
	}
	require.Equal(t, []string{ids[0], ids[2], ids[4]}, list("awaiting=me", "alice"), "voted and own requests are not in the inbox")
	require.Equal(t, []string{ids[0], ids[2], ids[4]}, list("awaiting=Alice", "alice"), "one's own ID, in any spelling")
	require.Len(t, list("awaiting=me", "bob"), 5)
	require.Empty(t, list("awaiting=me", "dave"))
	require.Equal(t, []string{ids[3]}, list("requested_by=alice", "bob"))
	require.Len(t, list("policy=high_spend&status=pending", "bob"), 5)
	require.Len(t, list("status=open", "bob"), 5)
	require.Empty(t, list("status=denied,cancelled", "bob"))
	require.Empty(t, list("policy=other", "bob"))

	f.get("/api/approvals?awaiting=bob", "alice").problem(t, 403, "forbidden")
	f.get("/api/approvals?awaiting=bob%20", "alice").problem(t, 422, "invalid_query")
	f.get("/api/approvals?status=bogus", "alice").problem(t, 422, "invalid_query")
	f.get("/api/approvals?limit=-1", "alice").problem(t, 422, "invalid_query")
	f.get("/api/approvals?limit=x", "alice").problem(t, 422, "invalid_query")
	f.get("/api/approvals?requested_by=bad%20id", "alice").problem(t, 422, "invalid_identity")
	f.get("/api/approvals", "").problem(t, 401, "unauthenticated")

	// Without Options.Identity nothing is listed.
	g := newFixture(t, fixtureOpt{opts: func(o *approvalhttp.Options) { o.Identity = nil }})
	g.get("/api/approvals", "alice").problem(t, 401, "unauthenticated")
}

type decideResult struct {
	RequestID string          `json:"request_id"`
	Status    approval.Status `json:"status"`
	Reason    string          `json:"reason"`
	Vote      *approval.Vote  `json:"vote"`
}

func (f *fixture) decideAPI(id string, v approval.Verdict, body, user string) response {
	f.t.Helper()
	return f.do(req{method: http.MethodPost, path: "/api/approvals/" + id + "/" + string(v), body: body, user: user})
}

// TestDecideAPI: approve and deny with a link's token or as the signed-in
// reviewer, and each refusal with its status and code.
func TestDecideAPI(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.pending(transfer(5000))

	tok := f.token(id, "alice", approval.VerdictApprove)
	r := f.decideAPI(id, approval.VerdictApprove, jsonBody(t, map[string]string{"token": tok, "reason": "checked the invoice"}), "")
	require.Equal(t, http.StatusOK, r.StatusCode, r.text())
	var res decideResult
	r.json(t, &res)
	require.Equal(t, approval.StatusPending, res.Status)
	require.Equal(t, "alice", res.Vote.Approver)
	require.Equal(t, "checked the invoice", res.Vote.Reason)

	// Replay: the token is single use.
	f.decideAPI(id, approval.VerdictApprove, jsonBody(t, map[string]string{"token": tok}), "").problem(t, 403, "token_used")
	// The same person again, with a fresh token.
	f.decideAPI(id, approval.VerdictApprove, "", "alice").problem(t, 409, "already_decided")

	// As the signed-in reviewer: no body at all.
	r = f.decideAPI(id, approval.VerdictApprove, "", "Bob")
	require.Equal(t, http.StatusOK, r.StatusCode, r.text())
	r.json(t, &res)
	require.Equal(t, approval.StatusApproved, res.Status)
	require.Equal(t, "bob", res.Vote.Approver)
	f.decideAPI(id, approval.VerdictDeny, "", "carol").problem(t, 409, "not_pending")

	id = f.pending(transfer(6000))
	for _, tc := range []struct {
		name    string
		verdict approval.Verdict
		body    string
		user    string
		status  int
		code    string
	}{
		{"no token, no session", approval.VerdictApprove, "", "", 401, "unauthenticated"},
		{"malformed token", approval.VerdictApprove, `{"token":"abc"}`, "", 401, "token_malformed"},
		{"forged signature", approval.VerdictApprove, jsonBody(t, map[string]string{"token": forge(f.token(id, "alice", approval.VerdictApprove))}), "", 401, "token_signature"},
		{"token for another request", approval.VerdictApprove, jsonBody(t, map[string]string{"token": f.token(f.pending(transfer(7000)), "alice", approval.VerdictApprove)}), "", 403, "token_request_mismatch"},
		{"deny token on approve", approval.VerdictApprove, jsonBody(t, map[string]string{"token": f.token(id, "alice", approval.VerdictDeny)}), "", 403, "token_verdict_mismatch"},
		{"not an approver", approval.VerdictApprove, "", "dave", 403, "not_eligible"},
		{"own request", approval.VerdictApprove, "", "user-1", 403, "not_eligible"},
		{"reason too long", approval.VerdictDeny, jsonBody(t, map[string]string{"reason": strings.Repeat("x", 5000)}), "alice", 422, "invalid_decision"},
		{"malformed body", approval.VerdictDeny, `{"token":`, "alice", 400, "malformed_request"},
		{"unknown field", approval.VerdictDeny, `{"verdict":"approve"}`, "alice", 400, "malformed_request"},
		{"body too large", approval.VerdictDeny, `{"reason":"` + strings.Repeat("x", 70<<10) + `"}`, "alice", 413, "body_too_large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.decideAPI(id, tc.verdict, tc.body, tc.user).problem(t, tc.status, tc.code)
		})
	}
	require.Empty(t, f.request(id).Votes, "no refusal changed the request")

	expired := f.token(id, "alice", approval.VerdictApprove)
	f.clock.Advance(2 * time.Hour)
	f.decideAPI(id, approval.VerdictApprove, jsonBody(t, map[string]string{"token": expired}), "").problem(t, 401, "token_expired")

	f.decideAPI("req_00000000000000000000000000000000", approval.VerdictApprove, "", "alice").problem(t, 404, "not_found")
	f.decideAPI("nope", approval.VerdictApprove, "", "alice").problem(t, 404, "not_found")
	f.do(req{method: http.MethodPost, path: "/api/approvals/" + id + "/maybe", user: "alice"}).problem(t, 404, "not_found")
}

// TestSelfApprovalAPI: a requester who is also an approver is refused with
// self_approval.
func TestSelfApprovalAPI(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := transfer(5000)
	a.RequestedBy = "carol"
	id := f.pending(a)
	f.decideAPI(id, approval.VerdictApprove, "", "carol").problem(t, 403, "self_approval")
}

// forge flips a bit of the signature, keeping the token well formed.
func forge(tok string) string {
	b := []byte(tok)
	i := len(b) - 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

type auditJSON struct {
	Events []approval.AuditEvent `json:"events"`
	Next   string                `json:"next"`
}

// TestAuditAPI: GET /api/approvals/{id}/audit pages through the request's
// events, rejected decisions included.
func TestAuditAPI(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.pending(transfer(5000))
	f.pending(transfer(5001)) // events of another request are not listed
	f.decideAPI(id, approval.VerdictApprove, "", "dave").problem(t, 403, "not_eligible")
	require.Equal(t, http.StatusOK, f.decideAPI(id, approval.VerdictApprove, "", "alice").StatusCode)
	require.Equal(t, http.StatusOK, f.decideAPI(id, approval.VerdictDeny, "", "bob").StatusCode)

	var types []approval.EventType
	path := "/api/approvals/" + id + "/audit?limit=2"
	for range 10 {
		r := f.get(path, "carol")
		var page auditJSON
		r.json(t, &page)
		require.LessOrEqual(t, len(page.Events), 2)
		for _, e := range page.Events {
			require.Equal(t, id, e.RequestID)
			types = append(types, e.Type)
		}
		if page.Next == "" {
			break
		}
		require.Contains(t, r.Header.Get("Link"), "cursor="+url.QueryEscape(page.Next))
		path = "/api/approvals/" + id + "/audit?limit=2&cursor=" + url.QueryEscape(page.Next)
	}
	require.Equal(t, []approval.EventType{
		approval.EventRequestCreated, approval.EventDecisionRejected, approval.EventDecisionApprove,
		approval.EventDecisionDeny, approval.EventRequestDenied,
	}, types)

	f.get("/api/approvals/"+id+"/audit?cursor=bogus", "carol").problem(t, 422, "invalid_cursor")
	f.get("/api/approvals/"+id+"/audit?limit=0", "carol").problem(t, 422, "invalid_query")
	f.get("/api/approvals/req_00000000000000000000000000000000/audit", "carol").problem(t, 404, "not_found")
	f.get("/api/approvals/nope/audit", "carol").problem(t, 404, "not_found")
	f.get("/api/approvals/"+id+"/audit", "").problem(t, 401, "unauthenticated")
}
