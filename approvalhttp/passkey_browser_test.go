package approvalhttp_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/approvalhttp"
	"github.com/signoff/approval/internal/browsertest"
	"github.com/signoff/approval/memstore"
)

// TestBrowserPasskeyStepUp drives passkeys in Chromium with a virtual
// authenticator (the DevTools WebAuthn domain): alice registers a passkey
// on the passkeys page, then approves a request whose policy requires
// one, confirming with it; the vote keeps her assertion, and the
// approval artifact verifies offline with her key. An approval without
// the assertion, and her assertion replayed on another request, are
// refused and audited.
func TestBrowserPasskeyStepUp(t *testing.T) {
	ctx := browser(t)
	require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)))
	shots := browsertest.ScreenshotDir(t)

	// WebAuthn wants a secure context and a domain for its relying party:
	// http://localhost is both.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	origin := "http://localhost:" + strings.TrimPrefix(ln.Addr().String(), "127.0.0.1:")
	_, priv, err := approval.GenerateKeys()
	require.NoError(t, err)
	store := memstore.New()
	gate, err := approval.New(approval.Config{
		Store: store, SigningKey: priv, BaseURL: origin + "/review",
		Passkeys: approval.PasskeyConfig{RPID: "localhost", Origins: []string{origin}},
		Logger:   slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = gate.Close(context.Background()) })
	require.NoError(t, gate.SetPolicy("payments", approval.Policy{
		Match: approval.Name("wire-transfer"), Approvers: []approval.Approver{approval.User("alice"), approval.User("bob")},
		RequiredApprovals: 1, RequirePasskey: true,
	}))
	h, err := approvalhttp.New(gate, approvalhttp.Options{Identity: func(r *http.Request) (string, error) {
		if c, err := r.Cookie("test-user"); err == nil {
			return c.Value, nil
		}
		return "", nil
	}})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/review/", http.StripPrefix("/review", h))
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "test-user", Value: r.URL.Query().Get("as"), Path: "/"})
		_, _ = w.Write([]byte("signed in"))
	})
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: mux}}
	srv.Start()
	t.Cleanup(srv.Close)

	_, err = chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{})
	require.NoError(t, err)
	_, err = chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
		Protocol: webauthn.AuthenticatorProtocolCtap2, Transport: webauthn.AuthenticatorTransportInternal,
		HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
	}})
	require.NoError(t, err)
	shot := func(name string) { t.Helper(); browsertest.Screenshot(t, ctx, shots, name) }
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		require.NoError(t, err, sel)
		return strings.Join(strings.Fields(v), " ")
	}

	// alice signs in and registers a passkey.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(origin+"/login?as=alice"),
		chromedp.Navigate(origin+"/review/passkeys"),
		chromedp.WaitVisible(chromedp.ID("passkey-add")),
		chromedp.SendKeys(chromedp.ID("passkey-name"), "laptop"),
		chromedp.Click(chromedp.ID("passkey-add")),
		chromedp.WaitVisible(chromedp.ID("flash")),
	))
	require.Contains(t, text("#flash"), "Your passkey was registered.")
	require.Contains(t, text("#passkeys"), "laptop")
	require.Contains(t, text("#passkeys"), "ES256")
	shot("passkeys-1-registered.png")
	keys, err := gate.ListPasskeys(ctx, "alice")
	require.NoError(t, err)
	require.Len(t, keys, 1)
	page, err := gate.ListAudit(ctx, approval.AuditQuery{Type: approval.EventPasskeyRegistered})
	require.NoError(t, err)
	require.Len(t, page.Events, 1)
	require.Equal(t, "alice", page.Events[0].Actor)

	guard := func(payload string) approval.Action {
		t.Helper()
		a := approval.Action{Name: "wire-transfer", RequestedBy: "dave", Payload: []byte(payload)}
		res, err := gate.Guard(ctx, a)
		require.NoError(t, err)
		require.Equal(t, approval.OutcomePending, res.Status)
		a.RunID = res.RequestID // the request's ID, kept beside the action
		return a
	}
	first := guard(`{"to":"DE89 3704 0044 0532 0130 00","amount":5000}`)
	id := first.RunID
	first.RunID = ""

	// Without the step-up (an API client that sends no assertion), the
	// approval is refused, and audited.
	tok, err := gate.IssueToken(id, "alice", approval.VerdictApprove, time.Hour)
	require.NoError(t, err)
	resp := postJSON(t, origin+"/review/api/approvals/"+id+"/approve", map[string]any{"token": tok})
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	r, err := gate.Get(ctx, id)
	require.NoError(t, err)
	require.Empty(t, r.Votes)
	page, err = gate.ListAudit(ctx, approval.AuditQuery{RequestID: id, Type: approval.EventDecisionRejected})
	require.NoError(t, err)
	require.Len(t, page.Events, 1)
	require.Contains(t, page.Events[0].Reason, "passkey")

	// With it: the review page asks the authenticator, then submits.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(origin+"/review/approvals/"+id),
		chromedp.WaitVisible(chromedp.ID("approve")),
	))
	require.Contains(t, text("#passkey-note"), "needs your passkey")
	shot("passkeys-2-review.png")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.ID("approve"))))
	require.Eventually(t, func() bool {
		r, err = gate.Get(ctx, id)
		return err == nil && r.Status == approval.StatusApproved
	}, 20*time.Second, 20*time.Millisecond, "the step-up approval did not land")
	require.Len(t, r.Votes, 1)
	proof := r.Votes[0].Passkey
	require.NotNil(t, proof)
	require.Equal(t, keys[0].ID, proof.CredentialID)
	require.Equal(t, keys[0].PublicKey, proof.PublicKey)
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("status"))))
	require.Contains(t, text("#votes"), "confirmed with a passkey", "the page shows how the vote was confirmed")
	shot("passkeys-3-approved.png")

	// The artifact verifies offline, with the gate's key, and carries
	// alice's assertion and key.
	art, err := gate.Artifact(ctx, id)
	require.NoError(t, err)
	got, err := approval.VerifyArtifact(art, first, []ed25519.PublicKey{priv.Public().(ed25519.PublicKey)})
	require.NoError(t, err)
	require.Len(t, got.Votes, 1)
	require.NotNil(t, got.Votes[0].Passkey)
	require.Equal(t, keys[0].PublicKey, got.Votes[0].Passkey.PublicKey)
	require.NoError(t, approval.VerifyPasskeyProof(got.Votes[0].Passkey,
		approval.PasskeyChallenge(id, got.ActionHash, got.PayloadHash, approval.VerdictApprove, got.Votes[0].TokenID), []string{origin}))

	// alice's assertion, replayed on another request with a fresh token
	// of hers, is refused: it signed the first request's challenge.
	second := guard(`{"to":"GB29 NWBK 6016 1331 9268 19","amount":7000}`)
	tok2, err := gate.IssueToken(second.RunID, "alice", approval.VerdictApprove, time.Hour)
	require.NoError(t, err)
	enc := base64.RawURLEncoding.EncodeToString
	resp = postJSON(t, origin+"/review/api/approvals/"+second.RunID+"/approve", map[string]any{"token": tok2, "passkey": map[string]string{
		"credential_id": proof.CredentialID, "authenticator_data": enc(proof.AuthenticatorData),
		"client_data_json": enc(proof.ClientDataJSON), "signature": enc(proof.Signature),
	}})
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	r2, err := gate.Get(ctx, second.RunID)
	require.NoError(t, err)
	require.Empty(t, r2.Votes)
	page, err = gate.ListAudit(ctx, approval.AuditQuery{RequestID: second.RunID, Type: approval.EventDecisionRejected})
	require.NoError(t, err)
	require.Len(t, page.Events, 1)
	require.Contains(t, page.Events[0].Reason, "another challenge")

	_, err = approval.VerifyAuditTrail(ctx, store, approval.VerifyAuditOptions{Keys: []ed25519.PublicKey{priv.Public().(ed25519.PublicKey)}})
	require.NoError(t, err)
}

// postJSON posts body as JSON to url, as a same-origin API client.
func postJSON(t *testing.T, url string, body any) *http.Response {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	require.NoError(t, err)
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}
