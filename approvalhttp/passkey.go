package approvalhttp

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/signoff/approval"
)

// Passkeys: the pages where a signed-in reviewer registers their
// passkeys, and the step-up of a decision under a policy with
// RequirePasskey. Registration runs go-webauthn's ceremony (the
// attestation's CBOR, its checks) and hands the credential's key, as PKIX,
// to Gate.RegisterPasskey; an approval's assertion is checked by the gate
// itself (approval.VerifyPasskeyProof), which is what the artifact keeps.
// The browser's part is assets/passkey.js, served from this handler:
// pages that load it get "script-src 'self'; connect-src 'self'" in their
// Content-Security-Policy, and nothing else of it changes.

// passkeyTimeout is how long the browser gives the person to touch their
// authenticator, and how long a registration ceremony stays open.
const passkeyTimeout = 3 * time.Minute

// maxCeremonies bounds the registration ceremonies open at once.
const maxCeremonies = 1024

// cspScript is the policy of a page that loads passkey.js.
const cspScript = csp + "; script-src 'self'; connect-src 'self'"

var errNoPasskeys = &httpError{http.StatusNotImplemented, "unsupported", "Not supported by this server",
	"this gate takes no passkeys (approval.Config.Passkeys)"}

// ceremonies holds the registration ceremonies begun and not finished,
// for this process: a ceremony finishes on the process that began it.
type ceremonies struct {
	mu sync.Mutex
	m  map[string]ceremony
}

type ceremony struct {
	who, name string
	session   webauthn.SessionData
	until     time.Time
}

func (c *ceremonies) put(cer ceremony, now time.Time) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, old := range c.m {
		if now.After(old.until) {
			delete(c.m, id)
		}
	}
	if len(c.m) >= maxCeremonies {
		return "", errors.New("too many passkey registrations in progress; try again in a few minutes")
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	id := base64.RawURLEncoding.EncodeToString(b)
	if c.m == nil {
		c.m = map[string]ceremony{}
	}
	c.m[id] = cer
	return id, nil
}

// take removes and returns ceremony id, begun by who and not expired.
func (c *ceremonies) take(id, who string, now time.Time) (ceremony, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cer, ok := c.m[id]
	if !ok || cer.who != who {
		return ceremony{}, false
	}
	delete(c.m, id)
	return cer, !now.After(cer.until)
}

// webAuthn returns the relying party of the gate's Config.Passkeys, or
// nil when it takes none.
func newWebAuthn(g *approval.Gate) (*webauthn.WebAuthn, error) {
	rpID, origins := g.PasskeyRPID()
	if rpID == "" {
		return nil, nil
	}
	return webauthn.New(&webauthn.Config{RPID: rpID, RPDisplayName: "Approvals", RPOrigins: origins,
		Timeouts: webauthn.TimeoutsConfig{Registration: webauthn.TimeoutConfig{Enforce: true, Timeout: passkeyTimeout}}})
}

// passkeyUser is a reviewer as go-webauthn sees them: the user handle is
// a hash of their ID, so that it holds nothing readable.
type passkeyUser struct {
	who   string
	creds []webauthn.Credential
}

func (u passkeyUser) WebAuthnID() []byte {
	sum := sha256.Sum256([]byte("approval-user\n" + u.who))
	return sum[:]
}
func (u passkeyUser) WebAuthnName() string                       { return u.who }
func (u passkeyUser) WebAuthnDisplayName() string                { return u.who }
func (u passkeyUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

// passkeysView is the data of the passkeys page.
type passkeysView struct {
	pageChrome
	Base, Viewer string
	Script       bool
	Passkeys     []passkeyRow
	Enabled      bool
	Flash        string
}

type passkeyRow struct {
	ID, Name, Alg, Created, CreatedISO, Revoked string
}

// passkeysPage is GET /passkeys: the signed-in reviewer's passkeys, and
// the form that registers one more.
func (h *handler) passkeysPage(w http.ResponseWriter, r *http.Request) {
	who := h.reviewer(r)
	if who == "" {
		h.errorPage(w, r, errUnauthenticated)
		return
	}
	v := &passkeysView{pageChrome: pageChrome{Session: true}, Base: base(r), Viewer: who, Enabled: h.wa != nil, Script: h.wa != nil}
	if h.wa != nil {
		ps, err := h.gate.ListPasskeys(r.Context(), who)
		if err != nil {
			h.errorPage(w, r, err)
			return
		}
		for _, p := range ps {
			row := passkeyRow{ID: p.ID, Name: p.Name, Alg: approval.PasskeyAlgorithmName(p.Algorithm)}
			row.Created, row.CreatedISO = fmtTime(p.CreatedAt)
			if !p.RevokedAt.IsZero() {
				row.Revoked, _ = fmtTime(p.RevokedAt)
			}
			v.Passkeys = append(v.Passkeys, row)
		}
	}
	switch r.URL.Query().Get("done") {
	case "registered":
		v.Flash = "Your passkey was registered."
	case "revoked":
		v.Flash = "The passkey was revoked."
	}
	w.Header().Set("Content-Security-Policy", cspScript)
	h.render(w, r, http.StatusOK, passkeysTmpl, v)
}

// beginRegistration is POST /passkeys/register: the options of
// navigator.credentials.create for the signed-in reviewer, and the
// ceremony's ID for the finish.
func (h *handler) beginRegistration(w http.ResponseWriter, r *http.Request) {
	who := h.reviewer(r)
	if who == "" {
		h.problem(w, r, errUnauthenticated)
		return
	}
	if h.wa == nil {
		h.problem(w, r, errNoPasskeys)
		return
	}
	var in struct {
		Name string `json:"name"`
	}
	if err := decodeJSON(w, r, &in, 4<<10, true); err != nil {
		h.problem(w, r, err)
		return
	}
	ps, err := h.gate.ListPasskeys(r.Context(), who)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	var exclude []protocol.CredentialDescriptor
	for _, p := range ps {
		if id, err := base64.RawURLEncoding.DecodeString(p.ID); err == nil {
			exclude = append(exclude, protocol.CredentialDescriptor{Type: protocol.PublicKeyCredentialType, CredentialID: id})
		}
	}
	creation, session, err := h.wa.BeginRegistration(passkeyUser{who: who},
		webauthn.WithExclusions(exclude),
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			ResidentKey: protocol.ResidentKeyRequirementPreferred, UserVerification: protocol.VerificationRequired}),
		webauthn.WithConveyancePreference(protocol.PreferNoAttestation))
	if err != nil {
		h.problem(w, r, err)
		return
	}
	id, err := h.ceremonies.put(ceremony{who: who, name: strings.TrimSpace(in.Name), session: *session, until: h.now().Add(passkeyTimeout)}, h.now())
	if err != nil {
		h.problem(w, r, &httpError{http.StatusServiceUnavailable, "busy", "Busy", err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, "application/json", map[string]any{"ceremony": id, "options": creation})
}

// finishRegistration is POST /passkeys/register/{ceremony}: the browser's
// attestation, checked by go-webauthn against the ceremony, its key
// registered with the gate (audited).
func (h *handler) finishRegistration(w http.ResponseWriter, r *http.Request) {
	who := h.reviewer(r)
	if who == "" {
		h.problem(w, r, errUnauthenticated)
		return
	}
	if h.wa == nil {
		h.problem(w, r, errNoPasskeys)
		return
	}
	cer, ok := h.ceremonies.take(r.PathValue("ceremony"), who, h.now())
	if !ok {
		h.problem(w, r, &httpError{http.StatusBadRequest, "passkey", "Registration expired",
			"this registration is unknown, someone else's, expired or already finished: start again"})
		return
	}
	body := http.MaxBytesReader(w, r.Body, 64<<10)
	parsed, err := protocol.ParseCredentialCreationResponseBody(body)
	if err != nil {
		h.problem(w, r, fmt.Errorf("%w: the browser's answer could not be read: %v", approval.ErrPasskey, err))
		return
	}
	cred, err := h.wa.CreateCredential(passkeyUser{who: who}, cer.session, parsed)
	if err != nil {
		h.problem(w, r, fmt.Errorf("%w: %v", approval.ErrPasskey, protocolDetail(err)))
		return
	}
	alg, pkix, err := pkixOf(cred.PublicKey)
	if err != nil {
		h.problem(w, r, fmt.Errorf("%w: %v", approval.ErrPasskey, err))
		return
	}
	rpID, _ := h.gate.PasskeyRPID()
	name := cer.name
	if name == "" {
		name = "passkey"
	}
	p, err := h.gate.RegisterPasskey(r.Context(), who, approval.Passkey{
		ID: base64.RawURLEncoding.EncodeToString(cred.ID), Owner: who, Name: name, Algorithm: alg, PublicKey: pkix, RPID: rpID})
	if err != nil {
		h.problem(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, "application/json", map[string]string{"id": p.ID})
}

// protocolDetail is a go-webauthn error's detail, which says what failed.
func protocolDetail(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.DevInfo != "" {
		return pe.Details + ": " + pe.DevInfo
	}
	return err.Error()
}

// pkixOf converts a COSE_Key to the gate's form: its COSE algorithm and
// PKIX DER.
func pkixOf(cose []byte) (int, []byte, error) {
	key, err := webauthncose.ParsePublicKey(cose)
	if err != nil {
		return 0, nil, fmt.Errorf("unreadable credential key: %v", err)
	}
	var (
		pub any
		alg int64
	)
	switch k := key.(type) {
	case webauthncose.EC2PublicKeyData:
		ec, err := k.ToECDSA()
		if err != nil {
			return 0, nil, err
		}
		pub, alg = ec, k.Algorithm
	case webauthncose.OKPPublicKeyData:
		if len(k.XCoord) != ed25519.PublicKeySize {
			return 0, nil, errors.New("an OKP key that is not Ed25519")
		}
		pub, alg = ed25519.PublicKey(bytes.Clone(k.XCoord)), k.Algorithm
	case webauthncose.RSAPublicKeyData:
		e := new(big.Int).SetBytes(k.Exponent)
		if !e.IsInt64() || e.Int64() > 1<<31-1 {
			return 0, nil, errors.New("an RSA exponent out of range")
		}
		pub, alg = &rsa.PublicKey{N: new(big.Int).SetBytes(k.Modulus), E: int(e.Int64())}, k.Algorithm
	default:
		return 0, nil, fmt.Errorf("a %T key", key)
	}
	if _, ok := pub.(*ecdsa.PublicKey); ok && alg != approval.PasskeyES256 {
		return 0, nil, fmt.Errorf("an EC key with algorithm %d (want ES256)", alg)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return 0, nil, err
	}
	return int(alg), der, nil
}

// revokePasskeyForm is POST /passkeys/revoke/{id}: the signed-in reviewer
// revokes one of their passkeys.
func (h *handler) revokePasskeyForm(w http.ResponseWriter, r *http.Request) {
	who := h.reviewer(r)
	if who == "" {
		h.errorPage(w, r, errUnauthenticated)
		return
	}
	id := r.PathValue("id")
	ps, err := h.gate.ListPasskeys(r.Context(), who)
	if err != nil {
		h.errorPage(w, r, err)
		return
	}
	mine := false
	for _, p := range ps {
		mine = mine || p.ID == id
	}
	if !mine {
		h.errorPage(w, r, &httpError{http.StatusNotFound, "not_found", "Not found", "you have no passkey with this ID"})
		return
	}
	if _, err := h.gate.RevokePasskey(r.Context(), id, who, "revoked by its owner"); err != nil {
		h.errorPage(w, r, err)
		return
	}
	// Relative to /passkeys/revoke/{id}: the passkeys page.
	w.Header().Set("Location", "../../passkeys?done=revoked")
	w.WriteHeader(http.StatusSeeOther)
}

// stepUpJSON is the answer of POST /approvals/{id}/passkey: what the page
// gives navigator.credentials.get, and the token the decision then
// carries.
type stepUpJSON struct {
	Token     string   `json:"token"`
	Challenge string   `json:"challenge"`
	RPID      string   `json:"rp_id"`
	Allow     []string `json:"allow"`
	TimeoutMS int64    `json:"timeout_ms"`
}

// beginStepUp is POST /approvals/{id}/passkey: the challenge of an
// approval by the viewer (the link's holder with the link's token, or the
// signed-in reviewer with a token minted for them alone), for their
// passkey to sign. It binds the request, the hashes the page showed (the
// request is refused if they changed since), the verdict and the token.
func (h *handler) beginStepUp(w http.ResponseWriter, r *http.Request) {
	if h.wa == nil {
		h.problem(w, r, errNoPasskeys)
		return
	}
	var in struct {
		Token      string `json:"token"`
		ActionHash string `json:"action_hash"`
	}
	if err := decodeJSON(w, r, &in, maxDecideBodyBytes, true); err != nil {
		h.problem(w, r, err)
		return
	}
	id := r.PathValue("id")
	if !isRequestID(id) {
		h.problem(w, r, errNoRequest)
		return
	}
	tok, who := in.Token, ""
	if tok != "" {
		claims, err := h.gate.VerifyToken(tok)
		if err != nil {
			h.problem(w, r, err)
			return
		}
		if claims.RequestID != id || !claims.Allows(approval.VerdictApprove) {
			h.problem(w, r, fmt.Errorf("%w: this link does not approve this request", approval.ErrTokenVerdictMismatch))
			return
		}
		who = claims.Subject
	} else {
		if who = h.reviewer(r); who == "" {
			h.problem(w, r, errUnauthenticated)
			return
		}
		var err error
		if tok, err = h.gate.IssueToken(id, who, approval.VerdictApprove, DecisionTokenTTL); err != nil {
			h.problem(w, r, err)
			return
		}
	}
	claims, err := h.gate.VerifyToken(tok)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	req, err := h.gate.Get(r.Context(), id)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	actionHash, payloadHash := req.ActionHash, req.PayloadHash
	if req.Edit != nil {
		actionHash, payloadHash = req.Edit.ActionHash, req.Edit.PayloadHash
	}
	if in.ActionHash != "" && in.ActionHash != actionHash {
		h.problem(w, r, fmt.Errorf("%w: the request changed since the page was shown: reload it", approval.ErrActionChanged))
		return
	}
	ps, err := h.gate.ListPasskeys(r.Context(), who)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	out := stepUpJSON{Token: tok, TimeoutMS: passkeyTimeout.Milliseconds(),
		Challenge: base64.RawURLEncoding.EncodeToString(approval.PasskeyChallenge(id, actionHash, payloadHash, approval.VerdictApprove, claims.TokenID))}
	out.RPID, _ = h.gate.PasskeyRPID()
	for _, p := range ps {
		if p.RevokedAt.IsZero() {
			out.Allow = append(out.Allow, p.ID)
		}
	}
	if len(out.Allow) == 0 {
		h.problem(w, r, &httpError{http.StatusConflict, "passkey", "No passkey",
			who + " has no passkey registered: register one on the passkeys page first"})
		return
	}
	writeJSON(w, http.StatusOK, "application/json", &out)
}

// passkeyJSON is an assertion on the wire: its byte fields in base64url
// without padding, as the page sends them.
type passkeyJSON struct {
	CredentialID      string `json:"credential_id"`
	AuthenticatorData string `json:"authenticator_data"`
	ClientDataJSON    string `json:"client_data_json"`
	Signature         string `json:"signature"`
}

// assertion decodes p; nil for none.
func (p *passkeyJSON) assertion() (*approval.PasskeyAssertion, error) {
	if p == nil || *p == (passkeyJSON{}) {
		return nil, nil
	}
	dec := func(name, s string) ([]byte, error) {
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
		if err != nil {
			return nil, errMalformed("passkey." + name + " is not base64url")
		}
		return b, nil
	}
	a := &approval.PasskeyAssertion{CredentialID: p.CredentialID}
	var err error
	if a.AuthenticatorData, err = dec("authenticator_data", p.AuthenticatorData); err != nil {
		return nil, err
	}
	if a.ClientDataJSON, err = dec("client_data_json", p.ClientDataJSON); err != nil {
		return nil, err
	}
	if a.Signature, err = dec("signature", p.Signature); err != nil {
		return nil, err
	}
	return a, nil
}

// formPasskey reads an assertion from the decision form's fields.
func formPasskey(f url.Values) (*approval.PasskeyAssertion, error) {
	p := passkeyJSON{CredentialID: f.Get("passkey_credential_id"), AuthenticatorData: f.Get("passkey_authenticator_data"),
		ClientDataJSON: f.Get("passkey_client_data_json"), Signature: f.Get("passkey_signature")}
	return p.assertion()
}
