package approval

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/signoff/approval/internal/canon"
	"github.com/signoff/approval/internal/text"
)

// An approval artifact is the evidence of an approval, for the side that
// runs the action to check, offline, before it does: an Ed25519 signature
// by the gate's key over what was approved (the request, the action and
// payload hashes, each matched policy's snapshot hash and every vote),
// when, and until when. Guard returns it with an approval
// (Result.Artifact); Gate.Artifact fetches it; VerifyArtifact checks it.
// A request that is not approved has none.
//
// The artifact is JSON: the fields below, and "sig", the signature
// (base64url, unpadded) over ArtifactContext, a newline and the canonical
// JSON (RFC 8785) of the other fields. It is made from the request as
// stored, so fetching it twice gives the same bytes (Ed25519 signatures
// are deterministic) as long as the signing key is the same.

// ArtifactVersion is the version of the artifact format.
const ArtifactVersion = 1

// ArtifactContext prefixes the signed bytes, so that no other signature
// of the gate's key (a token's) verifies as an artifact's.
const ArtifactContext = "approval-artifact-v1"

// maxArtifactBytes bounds an artifact given to VerifyArtifact.
const maxArtifactBytes = 1 << 20

// Artifact is a verified approval artifact's content.
type Artifact struct {
	// Version is the artifact format's, 1.
	Version int `json:"v"`
	// KeyID names the key that signed it (KeyID of its public key).
	KeyID string `json:"kid"`
	// RequestID is the approved request.
	RequestID string `json:"request_id"`
	// ActionHash is the approved action's (Action.Hashes).
	ActionHash string `json:"action_hash"`
	// BreakGlass marks an approval on the emergency path
	// (Gate.BreakGlass), around the policies. Left out when false.
	BreakGlass bool `json:"break_glass,omitempty"`
	// Conditions are the limits the approvers set (Decision.Conditions):
	// the action is approved only within them. Left out when empty.
	Conditions []string `json:"conditions,omitempty"`
	// EditedFrom is, when an approver edited the payload (see
	// OutcomeModified), the hash of the payload asked for: PayloadHash is
	// the edited one's. Left out otherwise.
	EditedFrom string `json:"edited_from,omitempty"`
	// PayloadHash is the approved payload's: the edited one's after an edit.
	PayloadHash string `json:"payload_hash"`
	// Policies are the matched policies' names and snapshot hashes.
	Policies []PolicyRef `json:"policies"`
	// Votes are the decisions on the request, in order.
	Votes []ArtifactVote `json:"votes"`
	// Reason is how the request was approved: "quorum met", "approved on
	// timeout", a step's or a recommendation's reason.
	Reason string `json:"reason"`
	// Uses is, for an approval the reviewers made reusable (see Reuse),
	// how many runs of the action it approves until ExpiresAt: the gate
	// counts them, and each run's Guard returns this same artifact. Left
	// out (0) for a single-use approval.
	Uses int `json:"uses,omitempty"`
	// IssuedAt is when the gate signed the artifact.
	IssuedAt time.Time `json:"issued_at"`
	// ExpiresAt is when the approval expires unless used:
	// VerifyArtifact refuses it after.
	ExpiresAt time.Time `json:"expires_at"`
	// Signature is the base64url signature over the rest.
	Signature string `json:"sig"`
}

// ArtifactVote is one decision on the approved request.
type ArtifactVote struct {
	// Approver is who decided.
	Approver string `json:"approver"`
	// OnBehalfOf names the approver a delegate decided for, if any.
	OnBehalfOf string `json:"on_behalf_of"`
	// Verdict is the decision.
	Verdict Verdict `json:"verdict"`
	// At is when it was recorded.
	At time.Time `json:"at"`
	// TokenID is the single-use token the decision carried.
	TokenID string `json:"token_id"`
	// Passkey is the approver's passkey assertion of the vote, with the
	// credential's public key (see PasskeyProof); VerifyArtifact checks
	// it. Left out for a vote without one.
	Passkey *PasskeyProof `json:"passkey,omitempty"`
}

// artifactOf returns the content of r's artifact, unsigned; r must be
// approved or consumed.
func artifactOf(r *Request, kid string) *Artifact {
	actionHash, payloadHash := r.boundHashes()
	a := &Artifact{
		Version: ArtifactVersion, KeyID: kid, RequestID: r.ID,
		ActionHash: actionHash, PayloadHash: payloadHash,
		Policies:   policyRefs(r.Policies),
		BreakGlass: r.brokeGlass(),
		Conditions: r.Conditions(),
		EditedFrom: editedFrom(r),
		Votes:      make([]ArtifactVote, len(r.Votes)), Reason: r.Reason, Uses: r.Reuse.Uses,
		IssuedAt: r.ResolvedAt.UTC(), ExpiresAt: r.ExpiresAt.UTC(),
	}
	for i, v := range r.Votes {
		a.Votes[i] = ArtifactVote{Approver: v.Approver, OnBehalfOf: v.OnBehalfOf, Verdict: v.Verdict, At: v.At.UTC(), TokenID: v.TokenID,
			Passkey: v.Passkey.clone()}
	}
	return a
}

// editedFrom returns the payload hash r asked for, if an approver edited
// the payload (or "(empty)" for an empty one), or "".
func editedFrom(r *Request) string {
	if r.Edit == nil {
		return ""
	}
	return shortHash(r.PayloadHash)
}

// signedBytes returns the bytes a's signature covers.
func (a *Artifact) signedBytes() []byte {
	b := make([]byte, 0, 512+128*len(a.Votes))
	b = append(b, ArtifactContext...)
	b = append(b, '\n')
	b = append(b, '{')
	b = canon.AppendKey(b, "action_hash")
	b = canon.AppendString(b, a.ActionHash)
	if a.BreakGlass {
		b = append(b, `,"break_glass":true`...)
	}
	if len(a.Conditions) > 0 {
		b = append(b, ',')
		b = canon.AppendKey(b, "conditions")
		b = canon.AppendStrings(b, a.Conditions)
	}
	if a.EditedFrom != "" {
		b = append(b, ',')
		b = canon.AppendKey(b, "edited_from")
		b = canon.AppendString(b, a.EditedFrom)
	}
	b = append(b, ',')
	b = canon.AppendKey(b, "expires_at")
	b = canon.AppendString(b, a.ExpiresAt.UTC().Format(time.RFC3339Nano))
	b = append(b, ',')
	b = canon.AppendKey(b, "issued_at")
	b = canon.AppendString(b, a.IssuedAt.UTC().Format(time.RFC3339Nano))
	b = append(b, ',')
	b = canon.AppendKey(b, "kid")
	b = canon.AppendString(b, a.KeyID)
	b = append(b, ',')
	b = canon.AppendKey(b, "payload_hash")
	b = canon.AppendString(b, a.PayloadHash)
	b = append(b, ',')
	b = canon.AppendKey(b, "policies")
	b = appendPolicyRefs(b, a.Policies)
	b = append(b, ',')
	b = canon.AppendKey(b, "reason")
	b = canon.AppendString(b, a.Reason)
	b = append(b, ',')
	b = canon.AppendKey(b, "request_id")
	b = canon.AppendString(b, a.RequestID)
	if a.Uses > 0 {
		b = append(b, ',')
		b = canon.AppendKey(b, "uses")
		b = canon.AppendInt(b, int64(a.Uses))
	}
	b = append(b, ',')
	b = canon.AppendKey(b, "v")
	b = canon.AppendInt(b, int64(a.Version))
	b = append(b, ',')
	b = canon.AppendKey(b, "votes")
	b = append(b, '[')
	for i, v := range a.Votes {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		b = canon.AppendKey(b, "approver")
		b = canon.AppendString(b, v.Approver)
		b = append(b, ',')
		b = canon.AppendKey(b, "at")
		b = canon.AppendString(b, v.At.UTC().Format(time.RFC3339Nano))
		b = append(b, ',')
		b = canon.AppendKey(b, "on_behalf_of")
		b = canon.AppendString(b, v.OnBehalfOf)
		b = append(b, ',')
		if v.Passkey != nil {
			b = canon.AppendKey(b, "passkey")
			b = v.Passkey.appendCanonical(b)
			b = append(b, ',')
		}
		b = canon.AppendKey(b, "token_id")
		b = canon.AppendString(b, v.TokenID)
		b = append(b, ',')
		b = canon.AppendKey(b, "verdict")
		b = canon.AppendString(b, string(v.Verdict))
		b = append(b, '}')
	}
	return append(b, ']', '}')
}

// signArtifact returns r's artifact, signed with the gate's key, or nil if
// the gate has no signing key (it verifies only).
func (g *Gate) signArtifact(r *Request) []byte {
	if g.keys.signer == nil {
		return nil
	}
	a := artifactOf(r, g.keys.signerKID)
	signed := a.signedBytes()
	sig := ed25519.Sign(g.keys.signer, signed)
	body := signed[len(ArtifactContext)+1:]
	out := make([]byte, 0, len(body)+16+base64.RawURLEncoding.EncodedLen(len(sig)))
	out = append(out, body[:len(body)-1]...)
	out = append(out, `,"sig":"`...)
	out = base64.RawURLEncoding.AppendEncode(out, sig)
	return append(out, '"', '}')
}

// Artifact returns the signed artifact of request id, approved (or
// consumed): the same bytes Guard returned with the approval, when signed
// by the same key. It returns ErrNotFound for an unknown request,
// ErrNoArtifact for one not approved, and ErrUnsupported for a gate
// without a SigningKey.
func (g *Gate) Artifact(ctx context.Context, id string) ([]byte, error) {
	if g.keys.signer == nil {
		return nil, fmt.Errorf("approval: artifact %s: %w: the gate has no SigningKey", text.Clip(id, maxEchoBytes), ErrUnsupported)
	}
	r, err := g.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("approval: artifact: %w", err)
	}
	if r.Status != StatusApproved && r.Status != StatusConsumed {
		return nil, fmt.Errorf("approval: artifact %s: %w (it is %s)", r.ID, ErrNoArtifact, r.Status)
	}
	if err := g.accounted(ctx, r); err != nil {
		return nil, err
	}
	return g.signArtifact(r), nil
}

// VerifyArtifact checks artifact against the action about to run, at the
// current time: see VerifyArtifactAt.
func VerifyArtifact(artifact []byte, action Action, keys []ed25519.PublicKey) (*Artifact, error) {
	return VerifyArtifactAt(artifact, action, keys, time.Now())
}

// VerifyArtifactAt checks that artifact is an approval, signed by one of
// keys, not expired at now, of exactly action (its canonical form, as
// Guard hashes it) with exactly its payload, and returns its content. Each
// failure has its sentinel: ErrArtifactMalformed, ErrArtifactUnknownKey,
// ErrArtifactSignature, ErrArtifactExpired, ErrArtifactActionMismatch,
// ErrArtifactPayloadMismatch; an action that does not validate is
// ErrInvalidAction. It needs nothing but the keys: no store, no network.
func VerifyArtifactAt(artifact []byte, action Action, keys []ed25519.PublicKey, now time.Time) (*Artifact, error) {
	a, body, err := parseArtifact(artifact)
	if err != nil {
		return nil, err
	}
	var pub ed25519.PublicKey
	for _, k := range keys {
		if len(k) == ed25519.PublicKeySize && KeyID(k) == a.KeyID {
			pub = k
			break
		}
	}
	if pub == nil {
		return nil, fmt.Errorf("approval: verify artifact: %w: %q", ErrArtifactUnknownKey, text.Clip(a.KeyID, 64))
	}
	sig, err := base64.RawURLEncoding.DecodeString(a.Signature)
	// The body is in canonical form (parseArtifact took no other), so the
	// signed bytes are its own: the context, a newline, and the body closed.
	signed := make([]byte, 0, len(ArtifactContext)+2+body)
	signed = append(append(append(signed, ArtifactContext...), '\n'), artifact[:body]...)
	signed = append(signed, '}')
	if err != nil || len(sig) != ed25519.SignatureSize || !ed25519.Verify(pub, signed, sig) {
		return nil, fmt.Errorf("approval: verify artifact %s: %w", text.Clip(a.RequestID, maxEchoBytes), ErrArtifactSignature)
	}
	if !now.Before(a.ExpiresAt) {
		return nil, fmt.Errorf("approval: verify artifact %s: %w at %s", a.RequestID, ErrArtifactExpired, a.ExpiresAt.Format(time.RFC3339))
	}
	actionHash, payloadHash, err := action.Hashes()
	if err != nil {
		return nil, fmt.Errorf("approval: verify artifact %s: %w", a.RequestID, err)
	}
	if payloadHash != a.PayloadHash {
		return nil, fmt.Errorf("approval: verify artifact %s: %w", a.RequestID, ErrArtifactPayloadMismatch)
	}
	if actionHash != a.ActionHash {
		return nil, fmt.Errorf("approval: verify artifact %s: %w", a.RequestID, ErrArtifactActionMismatch)
	}
	for _, v := range a.Votes {
		if v.Passkey == nil {
			continue
		}
		// The gate checked the origin; offline, the relying party (in the
		// authenticator data) and the signature are what can be checked.
		challenge := PasskeyChallenge(a.RequestID, a.ActionHash, a.PayloadHash, v.Verdict, v.TokenID)
		if err := VerifyPasskeyProof(v.Passkey, challenge, nil); err != nil {
			return nil, fmt.Errorf("approval: verify artifact %s: %w: %s's vote: %w", a.RequestID, ErrArtifactSignature, v.Approver, err)
		}
	}
	return a, nil
}

// readPasskeyProof reads a vote's passkey object in the form
// PasskeyProof.appendCanonical writes.
func readPasskeyProof(d *canon.Reader) *PasskeyProof {
	enc := base64.RawURLEncoding
	bytesOf := func(key string) []byte {
		d.Lit(key)
		s := d.Str()
		b, err := enc.DecodeString(s)
		if err != nil || enc.EncodeToString(b) != s {
			d.Fail()
		}
		return b
	}
	p := &PasskeyProof{}
	d.Lit(`{"alg":`)
	p.Algorithm = int(d.Int())
	p.AuthenticatorData = bytesOf(`,"authenticator_data":`)
	p.ClientDataJSON = bytesOf(`,"client_data_json":`)
	d.Lit(`,"credential_id":`)
	p.CredentialID = d.Str()
	p.PublicKey = bytesOf(`,"public_key":`)
	d.Lit(`,"rp_id":`)
	p.RPID = d.Str()
	p.Signature = bytesOf(`,"signature":`)
	d.Lit("}")
	return p
}

// parseArtifact decodes an artifact in the one form signArtifact writes
// (canonical JSON, keys in order, "sig" last), and returns it with the
// length of its signed body (the bytes before ,"sig"). Anything else,
// another version included, is ErrArtifactMalformed.
func parseArtifact(b []byte) (*Artifact, int, error) {
	bad := func(what string) error {
		return fmt.Errorf("approval: verify artifact: %w: %s", ErrArtifactMalformed, what)
	}
	if len(b) > maxArtifactBytes {
		return nil, 0, bad(fmt.Sprintf("larger than %d bytes", maxArtifactBytes))
	}
	b = bytes.TrimRight(b, " \t\r\n")
	d := canon.NewReader(string(b))
	var a Artifact
	tm := func(key string) time.Time {
		d.Lit(key)
		s := d.Str()
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil || t.UTC().Format(time.RFC3339Nano) != s {
			d.Fail()
		}
		return t
	}
	d.Lit(`{"action_hash":`)
	a.ActionHash = d.Str()
	a.BreakGlass = d.Opt(`,"break_glass":true`)
	if d.Opt(`,"conditions":[`) {
		for i := 0; d.More(']'); i++ {
			if i > 0 {
				d.Lit(",")
			}
			a.Conditions = append(a.Conditions, d.Str())
		}
		d.Lit("]")
		if len(a.Conditions) == 0 {
			d.Fail() // an empty list is left out, never written
		}
	}
	if d.Opt(`,"edited_from":`) {
		if a.EditedFrom = d.Str(); a.EditedFrom == "" {
			d.Fail()
		}
	}
	a.ExpiresAt = tm(`,"expires_at":`)
	a.IssuedAt = tm(`,"issued_at":`)
	d.Lit(`,"kid":`)
	a.KeyID = d.Str()
	d.Lit(`,"payload_hash":`)
	a.PayloadHash = d.Str()
	d.Lit(`,"policies":[`)
	for i := 0; d.More(']'); i++ {
		if i > 0 {
			d.Lit(",")
		}
		var p PolicyRef
		d.Lit(`{"hash":`)
		p.Hash = d.Str()
		d.Lit(`,"name":`)
		p.Name = d.Str()
		d.Lit("}")
		a.Policies = append(a.Policies, p)
	}
	d.Lit(`],"reason":`)
	a.Reason = d.Str()
	d.Lit(`,"request_id":`)
	a.RequestID = d.Str()
	if d.Opt(`,"uses":`) {
		if a.Uses = int(d.Int()); a.Uses < 2 {
			d.Fail()
		}
	}
	d.Lit(`,"v":`)
	a.Version = int(d.Int())
	if !d.Failed() && a.Version != ArtifactVersion {
		return nil, 0, bad(fmt.Sprintf("version %d (want %d)", a.Version, ArtifactVersion))
	}
	d.Lit(`,"votes":[`)
	for i := 0; d.More(']'); i++ {
		if i > 0 {
			d.Lit(",")
		}
		var v ArtifactVote
		d.Lit(`{"approver":`)
		v.Approver = d.Str()
		v.At = tm(`,"at":`)
		d.Lit(`,"on_behalf_of":`)
		v.OnBehalfOf = d.Str()
		if d.Opt(`,"passkey":`) {
			v.Passkey = readPasskeyProof(&d)
		}
		d.Lit(`,"token_id":`)
		v.TokenID = d.Str()
		d.Lit(`,"verdict":`)
		v.Verdict = Verdict(d.Str())
		d.Lit("}")
		a.Votes = append(a.Votes, v)
	}
	d.Lit("]")
	body := d.Pos()
	d.Lit(`,"sig":`)
	a.Signature = d.Str()
	d.Lit("}")
	switch {
	case !d.Done():
		return nil, 0, bad("not a version 1 artifact in canonical form (fields in order, \"sig\" last, nothing after)")
	case a.KeyID == "" || a.RequestID == "" || a.ActionHash == "" || a.PayloadHash == "" || a.Signature == "":
		return nil, 0, bad("a required field is empty")
	}
	return &a, body, nil
}
