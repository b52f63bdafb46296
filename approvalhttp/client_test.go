package approvalhttp_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/approvalhttp"
	"github.com/signoff/approval/sqlstore"
)

// bearer is a ClientOptions.Authorize that sends key as the Authorization
// header, as testAuthenticate expects.
func bearer(key string) func(*http.Request) error {
	return func(r *http.Request) error {
		r.Header.Set("Authorization", key)
		return nil
	}
}

// newClient returns a Client of url (the fixture's server by default)
// for the agent agentID, verifying with the gate's key on its clock.
func (f *fixture) newClient(url string, mods ...func(*approvalhttp.ClientOptions)) *approvalhttp.Client {
	f.t.Helper()
	if url == "" {
		url = f.srv.URL
	}
	opts := approvalhttp.ClientOptions{Authorize: bearer(agentKey), Keys: []ed25519.PublicKey{f.pub}, Now: f.clock.Now}
	for _, m := range mods {
		m(&opts)
	}
	c, err := approvalhttp.NewClient(url, opts)
	require.NoError(f.t, err)
	return c
}

// agentTransfer is transfer(amount) asked by the remote agent.
func agentTransfer(amount float64) approval.Action {
	a := transfer(amount)
	a.RequestedBy = agentID
	return a
}

// approve records alice's and bob's approvals of request id on the gate,
// which meet the finance policy's quorum.
func (f *fixture) approve(id string) {
	f.t.Helper()
	for _, who := range []string{"alice", "bob"} {
		_, err := f.gate.Decide(f.ctx, id, approval.Decision{Token: f.token(id, who, approval.VerdictApprove), Verdict: approval.VerdictApprove})
		require.NoError(f.t, err)
	}
	require.Equal(f.t, approval.StatusApproved, f.request(id).Status)
}

// TestClientRemoteAgent is the remote agent over loopback: Guard pending,
// a reviewer approves through the API, Wait returns, the artifact
// verifies, the next identical Guard consumes it; a second agent process
// retrying the same call gets the same request. On memstore and on a
// SQLite file.
func TestClientRemoteAgent(t *testing.T) {
	t.Parallel()
	for _, store := range []string{"memstore", "sqlite"} {
		t.Run(store, func(t *testing.T) {
			t.Parallel()
			var mods []fixtureOpt
			if store == "sqlite" {
				s, err := sqlstore.Open(context.Background(), filepath.Join(t.TempDir(), "agent.db"))
				require.NoError(t, err)
				t.Cleanup(func() { _ = s.Close() })
				mods = append(mods, fixtureOpt{cfg: func(c *approval.Config) { c.Store = s }})
			}
			f := newFixture(t, mods...)
			agent1, agent2 := f.newClient(""), f.newClient("")
			a := agentTransfer(5000)
			a.Payload = []byte("{\"to\": {\"iban\": \"DE89370400440532013000\"},\n \"amount\": 5000}\n")

			res, err := agent1.Guard(f.ctx, a)
			require.NoError(t, err)
			require.Equal(t, approval.OutcomePending, res.Status)
			require.Empty(t, res.Artifact)
			id := res.RequestID
			stored := f.request(id)
			require.Equal(t, a.Payload, stored.Action.Payload, "the payload's bytes reach the gate as they are")
			ah, ph, err := a.Hashes()
			require.NoError(t, err)
			require.Equal(t, ah, stored.ActionHash)
			require.Equal(t, ph, stored.PayloadHash)

			again, err := agent2.Guard(f.ctx, a)
			require.NoError(t, err)
			require.Equal(t, approval.Result{Status: approval.OutcomePending, RequestID: id, Reason: res.Reason}, again,
				"another process retrying the call gets the same request")

			type waited struct {
				req *approval.Request
				err error
			}
			done := make(chan waited, 1)
			go func() {
				req, err := agent1.Wait(f.ctx, id)
				done <- waited{req, err}
			}()
			select {
			case w := <-done:
				t.Fatalf("Wait returned while the request is pending: %+v", w)
			case <-time.After(50 * time.Millisecond):
			}
			for _, who := range []string{"alice", "bob"} {
				r := f.decideAPI(id, approval.VerdictApprove, "", who)
				require.Equal(t, http.StatusOK, r.StatusCode, r.text())
			}
			var w waited
			select {
			case w = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Wait did not return after the approval")
			}
			require.NoError(t, w.err)
			require.Equal(t, id, w.req.ID)
			require.Equal(t, approval.StatusApproved, w.req.Status)
			require.Len(t, w.req.Votes, 2)
			require.Equal(t, stored.ActionHash, w.req.ActionHash)
			require.Equal(t, agentID, w.req.Action.RequestedBy)

			art, content, err := agent2.VerifiedArtifact(f.ctx, id, a)
			require.NoError(t, err)
			require.Equal(t, id, content.RequestID)
			require.Len(t, content.Votes, 2)
			direct, err := f.gate.Artifact(f.ctx, id)
			require.NoError(t, err)
			require.Equal(t, direct, art, "the gate's bytes, as signed")

			res, err = agent1.Guard(f.ctx, a)
			require.NoError(t, err)
			require.Equal(t, approval.OutcomeApproved, res.Status)
			require.Equal(t, id, res.RequestID)
			_, err = approval.VerifyArtifactAt(res.Artifact, a, []ed25519.PublicKey{f.pub}, f.clock.Now())
			require.NoError(t, err)
			require.Equal(t, approval.StatusConsumed, f.request(id).Status, "the Guard consumed the approval")

			res, err = agent2.Guard(f.ctx, a)
			require.NoError(t, err)
			require.Equal(t, approval.OutcomePending, res.Status, "the approval was single use")
			require.NotEqual(t, id, res.RequestID)
		})
	}
}

// TestClientGuard: denied, held and not-matched answers pass through;
// what cannot be sent is refused before anything is sent.
func TestClientGuard(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := f.newClient("")

	res, err := c.Guard(f.ctx, approval.Action{Name: "wire-transfer", RequestedBy: agentID, Tags: []string{"sanctioned"}})
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeDenied, res.Status)
	require.Equal(t, "sanctioned destination", res.Reason)
	require.NotEmpty(t, res.RequestID)

	res, err = c.Guard(f.ctx, approval.Action{Name: "read-report", RequestedBy: "AGENT-1"})
	require.NoError(t, err)
	require.Equal(t, approval.Result{Status: approval.OutcomeApproved, Reason: approval.ReasonNoPolicyMatched}, res,
		"nothing needed approval, so there is no artifact to verify")
	strict := f.newClient("", func(o *approvalhttp.ClientOptions) { o.RequireArtifact = true })
	res, err = strict.Guard(f.ctx, approval.Action{Name: "read-report", RequestedBy: agentID})
	require.ErrorIs(t, err, approvalhttp.ErrUnverified)
	require.Equal(t, approval.OutcomeDenied, res.Status)

	// A person's denial is held: the retry learns it.
	id := f.pending(agentTransfer(7000))
	_, err = f.gate.Decide(f.ctx, id, approval.Decision{Token: f.token(id, "carol", approval.VerdictDeny), Verdict: approval.VerdictDeny, Reason: "no"})
	require.NoError(t, err)
	res, err = c.Guard(f.ctx, agentTransfer(7000))
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeDenied, res.Status)
	require.Equal(t, id, res.RequestID)

	calls := 0
	counting := f.newClient("", func(o *approvalhttp.ClientOptions) {
		o.Authorize = func(r *http.Request) error { calls++; return bearer(agentKey)(r) }
	})
	for name, a := range map[string]approval.Action{
		"no requester": {Name: "x"},
		"initiator":    {Name: "x", RequestedBy: agentID, Initiator: "dave"},
		"recommend":    {Name: "x", RequestedBy: agentID, Recommendation: &approval.Recommendation{By: "bot"}},
		"unknown risk": {Name: "x", RequestedBy: agentID, Risk: approval.Risk(99)},
	} {
		res, err := counting.Guard(f.ctx, a)
		require.ErrorIs(t, err, approval.ErrInvalidAction, name)
		require.Equal(t, approval.OutcomeDenied, res.Status, name)
	}
	require.Zero(t, calls, "nothing was sent")
}

// tamperServer serves f's handler through edit, which may rewrite each
// answer's body (its status and headers are kept), as a malicious server
// or a man in the middle would.
func (f *fixture) tamperServer(edit func(r *http.Request, body []byte) []byte) string {
	f.t.Helper()
	h := f.srv.Config.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		body := edit(r, rec.Body.Bytes())
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	}))
	f.t.Cleanup(srv.Close)
	return srv.URL
}

// editResult rewrites the Guard result in body with fn. It runs in the
// server's goroutine, so it does not fail the test: a body it cannot
// edit goes out as it is, and the test's expectations then fail.
func editResult(body []byte, fn func(*wireResult)) []byte {
	var res wireResult
	if err := json.Unmarshal(body, &res); err != nil {
		return body
	}
	fn(&res)
	b, err := json.Marshal(res)
	if err != nil {
		return body
	}
	return b
}

// wireResult is the Guard answer as a test edits it.
type wireResult struct {
	Status    approval.Status `json:"status"`
	RequestID string          `json:"request_id,omitempty"`
	Reason    string          `json:"reason,omitempty"`
	Artifact  []byte          `json:"artifact,omitempty"`
}

// flipHash alters one hex digit of the artifact's payload hash (none
// when it has none: see editResult).
func flipHash(art []byte) []byte {
	i := bytes.Index(art, []byte(`"payload_hash":"`))
	if i < 0 {
		return art
	}
	out := bytes.Clone(art)
	j := i + len(`"payload_hash":"`)
	if out[j] == '0' {
		out[j] = '1'
	} else {
		out[j] = '0'
	}
	return out
}

// TestClientFailsClosed: an approval whose artifact does not verify is
// refused (StatusDenied, ErrUnverified, the artifact's own sentinel):
// altered by the server, of another action or request, missing, signed
// by a key the client does not hold, or expired by the client's clock.
func TestClientFailsClosed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	isGuard := func(r *http.Request) bool { return r.Method == http.MethodPost && r.URL.Path == "/api/approvals" }

	// The genuine artifact of another approved transfer, for replays.
	other := agentTransfer(8000)
	other.Payload = []byte(`{"amount":8000}`)
	otherID := f.pending(other)
	f.approve(otherID)
	otherArt, err := f.gate.Artifact(f.ctx, otherID)
	require.NoError(t, err)

	for _, tc := range []struct {
		name   string
		edit   func(*wireResult)
		opts   func(*approvalhttp.ClientOptions)
		expect error // beside ErrUnverified; nil for none
	}{
		{name: "one byte of the payload hash altered", edit: func(r *wireResult) { r.Artifact = flipHash(r.Artifact) }, expect: approval.ErrArtifactSignature},
		{name: "another action's artifact", edit: func(r *wireResult) { r.Artifact = otherArt }, expect: approval.ErrArtifactPayloadMismatch},
		{name: "another request named", edit: func(r *wireResult) { r.RequestID = otherID }},
		{name: "no artifact", edit: func(r *wireResult) { r.Artifact = nil }, expect: approval.ErrArtifactMalformed},
		{name: "no artifact, no request", edit: func(r *wireResult) { r.Artifact, r.RequestID = nil, "" }},
		{name: "claims no policy matched", edit: func(r *wireResult) { r.Artifact, r.Reason = nil, approval.ReasonNoPolicyMatched }, expect: approval.ErrArtifactMalformed},
		{name: "wrong key", opts: func(o *approvalhttp.ClientOptions) {
			pub, _, err := approval.GenerateKeys()
			require.NoError(t, err)
			o.Keys = []ed25519.PublicKey{pub}
		}, expect: approval.ErrArtifactUnknownKey},
		{name: "expired by the client's clock", opts: func(o *approvalhttp.ClientOptions) {
			o.Now = func() time.Time { return f.clock.Now().Add(2 * time.Hour) }
		}, expect: approval.ErrArtifactExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := agentTransfer(5000)
			a.RunID = tc.name // one request per case
			id := f.pending(a)
			f.approve(id)
			url := ""
			if tc.edit != nil {
				url = f.tamperServer(func(r *http.Request, body []byte) []byte {
					if !isGuard(r) {
						return body
					}
					return editResult(body, tc.edit)
				})
			}
			var mods []func(*approvalhttp.ClientOptions)
			if tc.opts != nil {
				mods = append(mods, tc.opts)
			}
			res, err := f.newClient(url, mods...).Guard(f.ctx, a)
			require.ErrorIs(t, err, approvalhttp.ErrUnverified)
			if tc.expect != nil {
				require.ErrorIs(t, err, tc.expect)
			}
			require.Equal(t, approval.OutcomeDenied, res.Status)
			require.Empty(t, res.Artifact)
			require.Equal(t, approval.StatusConsumed, f.request(id).Status, "the server did consume it: the approval is spent")
		})
	}

	t.Run("status the client does not know", func(t *testing.T) {
		url := f.tamperServer(func(r *http.Request, body []byte) []byte {
			return editResult(body, func(r *wireResult) { r.Status = "approved-ish" })
		})
		res, err := f.newClient(url).Guard(f.ctx, approval.Action{Name: "read-report", RequestedBy: agentID})
		require.ErrorContains(t, err, "approved-ish")
		require.Equal(t, approval.OutcomeDenied, res.Status)
	})

	t.Run("fetched artifact altered", func(t *testing.T) {
		url := f.tamperServer(func(r *http.Request, body []byte) []byte {
			if strings.HasSuffix(r.URL.Path, "/artifact") && len(body) > 0 && body[0] == '{' {
				return flipHash(body)
			}
			return body
		})
		c := f.newClient(url)
		_, _, err := c.VerifiedArtifact(f.ctx, otherID, other)
		require.ErrorIs(t, err, approvalhttp.ErrUnverified)
		require.ErrorIs(t, err, approval.ErrArtifactSignature)
		// Unverified, the bytes are what the server sent.
		art, err := c.Artifact(f.ctx, otherID)
		require.NoError(t, err)
		require.Equal(t, flipHash(otherArt), art)
		// The genuine one verifies, for its own action only.
		_, content, err := f.newClient("").VerifiedArtifact(f.ctx, otherID, other)
		require.NoError(t, err)
		require.Equal(t, otherID, content.RequestID)
		changed := other
		changed.StepID = "another step"
		_, _, err = f.newClient("").VerifiedArtifact(f.ctx, otherID, changed)
		require.ErrorIs(t, err, approvalhttp.ErrUnverified)
		require.ErrorIs(t, err, approval.ErrArtifactActionMismatch)
	})
}

// TestClientWait: Wait polls until the request is decided, returns at
// once for one already decided, and stops when its context ends.
func TestClientWait(t *testing.T) {
	t.Parallel()
	f := newFixture(t)

	t.Run("polls", func(t *testing.T) {
		id := f.pending(agentTransfer(5000))
		c := f.newClient("", func(o *approvalhttp.ClientOptions) { o.WaitTimeout = 30 * time.Millisecond })
		time.AfterFunc(200*time.Millisecond, func() {
			_, _ = f.gate.Cancel(context.Background(), id, "ops", "not today")
		})
		req, err := c.Wait(f.ctx, id)
		require.NoError(t, err)
		require.Equal(t, approval.StatusCancelled, req.Status)
		// Decided: at once.
		start := time.Now()
		req, err = f.newClient("").Wait(f.ctx, id)
		require.NoError(t, err)
		require.Equal(t, approval.StatusCancelled, req.Status)
		require.Less(t, time.Since(start), 5*time.Second)
	})

	t.Run("context ends", func(t *testing.T) {
		id := f.pending(agentTransfer(6000))
		c := f.newClient("")
		ctx, cancel := context.WithCancel(f.ctx)
		time.AfterFunc(100*time.Millisecond, cancel)
		start := time.Now()
		_, err := c.Wait(ctx, id)
		require.ErrorIs(t, err, context.Canceled)
		require.Less(t, time.Since(start), 10*time.Second, "not the server's 25s hold")

		ctx, cancel = context.WithTimeout(f.ctx, 100*time.Millisecond)
		defer cancel()
		_, err = c.Wait(ctx, id)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Equal(t, approval.StatusPending, f.request(id).Status)
	})
}

// TestWaitAPI: GET /api/approvals/{id}/wait holds an open request at most
// Options.MaxWait, answers a decided one at once, and checks its timeout.
func TestWaitAPI(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpt{opts: func(o *approvalhttp.Options) { o.MaxWait = 50 * time.Millisecond }})
	id := f.pending(agentTransfer(5000))
	ctx, cancel := context.WithTimeout(f.ctx, 5*time.Second)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL+"/api/approvals/"+id+"/wait?timeout=10m", nil)
	require.NoError(t, err)
	hr.Header.Set("Authorization", agentKey)
	resp, err := f.client.Do(hr)
	require.NoError(t, err, "the 10m asked for are cut to MaxWait")
	defer resp.Body.Close()
	var got requestJSON
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
	require.Equal(t, approval.StatusPending, got.Status)
	require.Equal(t, id, got.ID)
	require.Nil(t, got.Viewer)

	f.get("/api/approvals/"+id+"/wait?timeout=soon", "alice").problem(t, 422, "invalid_query")
	f.get("/api/approvals/"+id+"/wait?timeout=-1s", "alice").problem(t, 422, "invalid_query")
	f.get("/api/approvals/"+id+"/wait", "").problem(t, 401, "unauthenticated")
	f.get("/api/approvals/"+id+"/artifact", "").problem(t, 401, "unauthenticated")
	f.get("/api/approvals/"+id+"/artifact", "alice").problem(t, 409, "no_artifact")

	// A reviewer and a link's token read it too; timeout=0 answers at once.
	got = requestJSON{}
	f.get("/api/approvals/"+id+"/wait?timeout=0s&token="+f.token(id, "bob", approval.VerdictApprove), "").json(t, &got)
	require.Equal(t, approval.StatusPending, got.Status)
	f.approve(id)
	got = requestJSON{}
	f.get("/api/approvals/"+id+"/wait", "carol").json(t, &got)
	require.Equal(t, approval.StatusApproved, got.Status)
	r := f.get("/api/approvals/"+id+"/artifact", "carol")
	require.Equal(t, http.StatusOK, r.StatusCode, r.text())
	require.Equal(t, "application/json", r.Header.Get("Content-Type"))
	art, err := f.gate.Artifact(f.ctx, id)
	require.NoError(t, err)
	require.Equal(t, art, r.body)
}

// twoAgents authenticates agent-1 and agent-2 by their keys.
func twoAgents(r *http.Request) (string, error) {
	switch r.Header.Get("Authorization") {
	case agentKey:
		return agentID, nil
	case "Bearer agent-2-key":
		return "agent-2", nil
	}
	return "", errors.New("unknown key")
}

// TestRequesterReads: the caller Options.Authenticate names reads its own
// requests (GET, wait, artifact), and no other: another requester's is
// not found, as an unknown one.
func TestRequesterReads(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpt{opts: func(o *approvalhttp.Options) { o.Authenticate = twoAgents }})
	id := f.pending(agentTransfer(5000))

	var got requestJSON
	f.do(req{method: http.MethodGet, path: "/api/approvals/" + id, auth: agentKey}).json(t, &got)
	require.Equal(t, id, got.ID)
	require.Equal(t, "requester", got.Viewer.Via)
	require.Equal(t, agentID, got.Viewer.ID)
	require.False(t, got.Viewer.MayDecide)

	for _, path := range []string{"", "/wait?timeout=0s", "/artifact"} {
		f.do(req{method: http.MethodGet, path: "/api/approvals/" + id + path, auth: "Bearer agent-2-key"}).problem(t, 404, "not_found")
		f.do(req{method: http.MethodGet, path: "/api/approvals/" + id + path, auth: "Bearer nope"}).problem(t, 401, "unauthenticated")
	}
	f.do(req{method: http.MethodGet, path: "/api/approvals", auth: agentKey}).problem(t, 401, "unauthenticated")
	f.do(req{method: http.MethodGet, path: "/api/approvals/" + id + "/audit", auth: agentKey}).problem(t, 401, "unauthenticated")

	other, err := approvalhttp.NewClient(f.srv.URL, approvalhttp.ClientOptions{Authorize: bearer("Bearer agent-2-key"), Keys: []ed25519.PublicKey{f.pub}})
	require.NoError(t, err)
	_, err = other.Wait(f.ctx, id)
	require.ErrorIs(t, err, approval.ErrNotFound)
	_, err = other.Artifact(f.ctx, id)
	require.ErrorIs(t, err, approval.ErrNotFound)
}

// TestClientErrors: the server's problems arrive as *Problem errors that
// errors.Is matches to the approval package's sentinels; what is not a
// problem is an error naming the status.
func TestClientErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := f.newClient("")
	id := f.pending(agentTransfer(5000))

	_, err := c.Wait(f.ctx, "req_00000000000000000000000000000000")
	require.ErrorIs(t, err, approval.ErrNotFound)
	var p *approvalhttp.Problem
	require.ErrorAs(t, err, &p)
	require.Equal(t, http.StatusNotFound, p.Status)
	require.Equal(t, "not_found", p.Code)

	_, err = c.Wait(f.ctx, "../../approvals")
	require.ErrorIs(t, err, approval.ErrNotFound)
	require.False(t, errors.As(err, &p), "refused before anything is sent")

	_, err = c.Artifact(f.ctx, id)
	require.ErrorIs(t, err, approval.ErrNoArtifact)
	_, _, err = c.VerifiedArtifact(f.ctx, id, agentTransfer(5000))
	require.ErrorIs(t, err, approval.ErrNoArtifact)
	require.NotErrorIs(t, err, approvalhttp.ErrUnverified)

	res, err := c.Guard(f.ctx, approval.Action{Name: "", RequestedBy: agentID})
	require.ErrorIs(t, err, approval.ErrInvalidAction)
	require.Equal(t, approval.OutcomeDenied, res.Status)
	require.ErrorAs(t, err, &p)
	require.Equal(t, "invalid_action", p.Code)

	_, err = c.Guard(f.ctx, approval.Action{Name: "x", RequestedBy: "alice"})
	require.ErrorIs(t, err, approval.ErrInvalidAction)
	require.ErrorAs(t, err, &p)
	require.Equal(t, "requested_by_mismatch", p.Code)

	anon := f.newClient("", func(o *approvalhttp.ClientOptions) { o.Authorize = nil })
	res, err = anon.Guard(f.ctx, agentTransfer(5000))
	require.ErrorAs(t, err, &p)
	require.Equal(t, "unauthenticated", p.Code)
	require.NoError(t, p.Unwrap(), "no sentinel of the approval package")
	require.Equal(t, approval.OutcomeDenied, res.Status)

	failing := f.newClient("", func(o *approvalhttp.ClientOptions) {
		o.Authorize = func(*http.Request) error { return errors.New("vault sealed") }
	})
	_, err = failing.Guard(f.ctx, agentTransfer(5000))
	require.ErrorContains(t, err, "vault sealed")

	// A gate without a SigningKey cannot sign artifacts: 501.
	g := newFixture(t, fixtureOpt{cfg: func(c *approval.Config) { c.SigningKey, c.VerifyKeys = nil, []ed25519.PublicKey{f.pub} }})
	_, err = g.newClient("").Artifact(g.ctx, g.pending(agentTransfer(5000)))
	require.ErrorIs(t, err, approval.ErrUnsupported)

	// Not a problem: a proxy's error page, a body that is not JSON.
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = io.WriteString(w, "<h1>bad gateway</h1>")
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "hello")
	}))
	t.Cleanup(proxy.Close)
	pc := f.newClient(proxy.URL)
	res, err = pc.Guard(f.ctx, agentTransfer(5000))
	require.ErrorContains(t, err, "502 Bad Gateway")
	require.False(t, errors.As(err, &p))
	require.Equal(t, approval.OutcomeDenied, res.Status)
	_, err = pc.Wait(f.ctx, id)
	require.ErrorContains(t, err, "not JSON")
}

// TestClientUnderPrefix: the client reaches a handler mounted under a
// prefix through a base URL with that prefix.
func TestClientUnderPrefix(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	mux := http.NewServeMux()
	mux.Handle("/review/", http.StripPrefix("/review", f.srv.Config.Handler))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c := f.newClient(srv.URL + "/review/")
	res, err := c.Guard(f.ctx, agentTransfer(5000))
	require.NoError(t, err)
	require.Equal(t, approval.OutcomePending, res.Status)
	_, err = c.Artifact(f.ctx, res.RequestID)
	require.ErrorIs(t, err, approval.ErrNoArtifact)
}

// TestNewClientValidates: a base URL that is not absolute http(s), no
// keys or a bad one, negative durations, and an HTTP client timeout that
// every Wait poll would hit are refused.
func TestNewClientValidates(t *testing.T) {
	t.Parallel()
	pub, _, err := approval.GenerateKeys()
	require.NoError(t, err)
	keys := []ed25519.PublicKey{pub}
	for name, tc := range map[string]struct {
		url  string
		opts approvalhttp.ClientOptions
	}{
		"relative URL":   {"/review", approvalhttp.ClientOptions{Keys: keys}},
		"other scheme":   {"ftp://ops.example.com", approvalhttp.ClientOptions{Keys: keys}},
		"query":          {"https://ops.example.com/?a=b", approvalhttp.ClientOptions{Keys: keys}},
		"unparsable":     {"https://ops.example.com/%zz", approvalhttp.ClientOptions{Keys: keys}},
		"no keys":        {"https://ops.example.com", approvalhttp.ClientOptions{}},
		"short key":      {"https://ops.example.com", approvalhttp.ClientOptions{Keys: []ed25519.PublicKey{pub[:16]}}},
		"negative":       {"https://ops.example.com", approvalhttp.ClientOptions{Keys: keys, Timeout: -1}},
		"HTTP timeout":   {"https://ops.example.com", approvalhttp.ClientOptions{Keys: keys, HTTPClient: &http.Client{Timeout: 10 * time.Second}}},
		"HTTP timeout =": {"https://ops.example.com", approvalhttp.ClientOptions{Keys: keys, WaitTimeout: time.Second, HTTPClient: &http.Client{Timeout: time.Second}}},
		"negative wait":  {"https://ops.example.com", approvalhttp.ClientOptions{Keys: keys, WaitTimeout: -time.Second}},
	} {
		_, err := approvalhttp.NewClient(tc.url, tc.opts)
		require.Error(t, err, name)
	}
	_, err = approvalhttp.NewClient("https://ops.example.com/review", approvalhttp.ClientOptions{Keys: keys, HTTPClient: &http.Client{Timeout: time.Minute}})
	require.NoError(t, err)
}
