package approval

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/signoff/approval/internal/assertion"
	"github.com/signoff/approval/internal/canon"
)

// Passkeys: a policy with RequirePasskey has each approving person confirm
// their vote with a WebAuthn credential they registered (a passkey), whose
// assertion signs a challenge that binds the request, the action and
// payload hashes the vote binds, the verdict and the decision's
// single-use token. The gate checks the assertion with the public key
// stored at registration before it counts the vote; the vote keeps it,
// its audit event holds its digest, and the approval artifact carries it
// with the public key, so VerifyArtifact shows offline that this person's
// own key signed this exact approval.
//
// The ceremonies run in the browser (navigator.credentials); package
// approvalhttp serves them. Here is what the gate needs of them: the
// challenge (PasskeyChallenge), the credential's public key in PKIX form
// (Gate.RegisterPasskey), and the assertion's bytes (Decision.Passkey).

// COSE algorithm identifiers of the passkeys the gate verifies (RFC 9053,
// the IANA COSE Algorithms registry).
const (
	PasskeyES256 = assertion.ES256 // -7: ECDSA with SHA-256 on P-256
	PasskeyEdDSA = assertion.EdDSA // -8: Ed25519
	PasskeyRS256 = assertion.RS256 // -257: RSASSA-PKCS1-v1_5 with SHA-256, 2048 bits or more
)

// PasskeyChallengeContext prefixes the bytes a passkey challenge hashes.
const PasskeyChallengeContext = "approval-passkey-v1"

// EventPasskeyRegistered and EventPasskeyRevoked record a person's
// passkeys coming and going (Gate.RegisterPasskey, Gate.RevokePasskey).
const (
	EventPasskeyRegistered EventType = "passkey.registered"
	EventPasskeyRevoked    EventType = "passkey.revoked"
)

// PasskeyConfig is the WebAuthn relying party the gate verifies
// assertions for (Config.Passkeys).
type PasskeyConfig struct {
	// RPID is the relying party ID: the review pages' host name
	// ("ops.example.com") or a registrable suffix of it. Required for
	// passkeys.
	RPID string
	// Origins are the origins assertions may come from
	// ("https://ops.example.com"): a client data origin not listed is
	// refused. At least one is required for passkeys.
	Origins []string
}

func (c *PasskeyConfig) enabled() bool { return c.RPID != "" }

func (c *PasskeyConfig) check() error {
	if c.RPID == "" && len(c.Origins) == 0 {
		return nil
	}
	if c.RPID == "" || len(c.Origins) == 0 {
		return fmt.Errorf("%w: Config.Passkeys needs both RPID and Origins", ErrInvalidConfig)
	}
	return nil
}

// Passkey is a person's registered WebAuthn credential.
type Passkey struct {
	// ID is the credential ID, base64url without padding.
	ID string `json:"id"`
	// Owner is the person it belongs to, in canonical form.
	Owner string `json:"owner"`
	// Name is a label the owner gave it ("laptop", "YubiKey").
	Name string `json:"name,omitempty"`
	// Algorithm is its COSE algorithm: PasskeyES256, PasskeyEdDSA or
	// PasskeyRS256.
	Algorithm int `json:"alg"`
	// PublicKey is its public key, PKIX (SubjectPublicKeyInfo) DER.
	PublicKey []byte `json:"public_key"`
	// RPID is the relying party it was registered for.
	RPID string `json:"rp_id"`
	// CreatedAt is when it was registered.
	CreatedAt time.Time `json:"created_at"`
	// RevokedAt is when it was revoked; zero while it is usable.
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	// RevokedBy is who revoked it.
	RevokedBy string `json:"revoked_by,omitempty"`
}

// Passkeys is an optional Store capability, found by type assertion: the
// passkeys people registered. Gate.RegisterPasskey and the decisions of
// policies with RequirePasskey need it; memstore and sqlstore implement
// it, and storetest.Run checks it. Methods may be called concurrently.
type Passkeys interface {
	// CreatePasskey stores p and appends events, atomically; it seals
	// each event in place. It returns ErrConflict, writing nothing, if a
	// passkey with p.ID exists (revoked or not).
	CreatePasskey(ctx context.Context, p *Passkey, events []AuditEvent) error
	// GetPasskey returns a copy of the passkey with that ID, or an error
	// wrapping ErrNotFound.
	GetPasskey(ctx context.Context, id string) (*Passkey, error)
	// ListPasskeys returns the passkeys of owner, revoked ones included,
	// in the order they were created.
	ListPasskeys(ctx context.Context, owner string) ([]Passkey, error)
	// RevokePasskey sets the RevokedAt and RevokedBy of passkey id, if it
	// is not revoked, and appends events, atomically, and returns the
	// passkey as revoked; it seals each event in place. It returns an
	// error wrapping ErrNotFound if there is no such passkey, and
	// ErrConflict if it is already revoked, writing nothing.
	RevokePasskey(ctx context.Context, id string, at time.Time, by string, events []AuditEvent) (*Passkey, error)
}

// PasskeyAssertion is the answer of navigator.credentials.get to a
// passkey challenge (Decision.Passkey): the authenticator's bytes as it
// gave them.
type PasskeyAssertion struct {
	// CredentialID is the credential's ID, base64url without padding.
	CredentialID string `json:"credential_id"`
	// AuthenticatorData is response.authenticatorData.
	AuthenticatorData []byte `json:"authenticator_data"`
	// ClientDataJSON is response.clientDataJSON.
	ClientDataJSON []byte `json:"client_data_json"`
	// Signature is response.signature.
	Signature []byte `json:"signature"`
}

// PasskeyProof is a verified assertion as a vote keeps it
// (Vote.Passkey), with the credential it verified against, so that it
// can be verified again anywhere (see VerifyPasskeyProof).
type PasskeyProof struct {
	PasskeyAssertion
	// Algorithm, PublicKey and RPID are the registered credential's.
	Algorithm int    `json:"alg"`
	PublicKey []byte `json:"public_key"`
	RPID      string `json:"rp_id"`
}

// PasskeyChallenge returns the WebAuthn challenge of a vote: SHA-256 of
// PasskeyChallengeContext, a newline and the canonical JSON (RFC 8785) of
// {"action_hash", "payload_hash", "request_id", "token_id", "verdict"}.
// actionHash and payloadHash are those the vote binds: the request's, or
// its edit's once an approver edited the payload (the decision's own
// edit included). tokenID is the decision token's ID (TokenClaims).
func PasskeyChallenge(requestID, actionHash, payloadHash string, verdict Verdict, tokenID string) []byte {
	b := make([]byte, 0, 256)
	b = append(b, PasskeyChallengeContext...)
	b = append(b, '\n', '{')
	b = canon.AppendKey(b, "action_hash")
	b = canon.AppendString(b, actionHash)
	b = append(b, ',')
	b = canon.AppendKey(b, "payload_hash")
	b = canon.AppendString(b, payloadHash)
	b = append(b, ',')
	b = canon.AppendKey(b, "request_id")
	b = canon.AppendString(b, requestID)
	b = append(b, ',')
	b = canon.AppendKey(b, "token_id")
	b = canon.AppendString(b, tokenID)
	b = append(b, ',')
	b = canon.AppendKey(b, "verdict")
	b = canon.AppendString(b, string(verdict))
	b = append(b, '}')
	sum := sha256.Sum256(b)
	return sum[:]
}

// VerifyPasskeyProof checks p: that it answers challenge (its client data
// is a webauthn.get of exactly that challenge, from one of origins when
// origins is not empty, not cross-origin), for p.RPID (the authenticator
// data's RP ID hash), with the user present and verified, signed by
// p.PublicKey. Every failure wraps ErrPasskey.
func VerifyPasskeyProof(p *PasskeyProof, challenge []byte, origins []string) error {
	err := assertion.Verify(&assertion.Assertion{Algorithm: p.Algorithm, PublicKey: p.PublicKey, RPID: p.RPID,
		AuthenticatorData: p.AuthenticatorData, ClientDataJSON: p.ClientDataJSON, Signature: p.Signature}, challenge, origins)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrPasskey, err)
	}
	return nil
}

// appendCanonical writes p as the artifact and the audit digest hold it:
// canonical JSON, the byte fields in base64url without padding.
func (p *PasskeyProof) appendCanonical(b []byte) []byte {
	enc := base64.RawURLEncoding
	b = append(b, '{')
	b = canon.AppendKey(b, "alg")
	b = canon.AppendInt(b, int64(p.Algorithm))
	b = append(b, ',')
	b = canon.AppendKey(b, "authenticator_data")
	b = canon.AppendString(b, enc.EncodeToString(p.AuthenticatorData))
	b = append(b, ',')
	b = canon.AppendKey(b, "client_data_json")
	b = canon.AppendString(b, enc.EncodeToString(p.ClientDataJSON))
	b = append(b, ',')
	b = canon.AppendKey(b, "credential_id")
	b = canon.AppendString(b, p.CredentialID)
	b = append(b, ',')
	b = canon.AppendKey(b, "public_key")
	b = canon.AppendString(b, enc.EncodeToString(p.PublicKey))
	b = append(b, ',')
	b = canon.AppendKey(b, "rp_id")
	b = canon.AppendString(b, p.RPID)
	b = append(b, ',')
	b = canon.AppendKey(b, "signature")
	b = canon.AppendString(b, enc.EncodeToString(p.Signature))
	return append(b, '}')
}

// Digest returns the hex SHA-256 of p's canonical form: what the audit
// event of its vote holds (AuditEvent.Passkey).
func (p *PasskeyProof) Digest() string {
	sum := sha256.Sum256(p.appendCanonical(nil))
	return hex.EncodeToString(sum[:])
}

// Clone returns a copy of p that shares no memory with it.
func (p *Passkey) Clone() *Passkey {
	c := *p
	c.PublicKey = slices.Clone(p.PublicKey)
	return &c
}

func (p *PasskeyProof) clone() *PasskeyProof {
	if p == nil {
		return nil
	}
	c := *p
	c.AuthenticatorData = slices.Clone(p.AuthenticatorData)
	c.ClientDataJSON = slices.Clone(p.ClientDataJSON)
	c.Signature = slices.Clone(p.Signature)
	c.PublicKey = slices.Clone(p.PublicKey)
	return &c
}

// requiresPasskey reports whether an approval of r needs a passkey: one
// of its policies says so.
func requiresPasskey(r *Request) bool {
	for i := range r.Policies {
		if r.Policies[i].RequirePasskey {
			return true
		}
	}
	return false
}

// checkPasskey verifies the assertion of a decision by sub on req (whose
// bound hashes are final: an edit of the decision's own is applied) and
// returns it as the vote keeps it; nil when there is none and none is
// needed. A missing or invalid assertion where one is needed, and any
// invalid one, is an error wrapping ErrPasskey.
func (g *Gate) checkPasskey(ctx context.Context, req *Request, sub string, c *TokenClaims, d *Decision) (*PasskeyProof, error) {
	need := d.Verdict == VerdictApprove && requiresPasskey(req)
	if d.Passkey == nil {
		if need {
			return nil, fmt.Errorf("%w: a policy of this request requires each approval to be confirmed with a passkey", ErrPasskey)
		}
		return nil, nil
	}
	pks, ok := g.store.(Passkeys)
	if !ok || !g.passkeys.enabled() {
		return nil, fmt.Errorf("%w: this gate takes no passkeys (Config.Passkeys, and a Store with Passkeys)", ErrPasskey)
	}
	pk, err := pks.GetPasskey(ctx, d.Passkey.CredentialID)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, fmt.Errorf("%w: no passkey is registered with this credential ID", ErrPasskey)
	case err != nil:
		return nil, err
	case pk.Owner != sub:
		return nil, fmt.Errorf("%w: the passkey is not %s's", ErrPasskey, sub)
	case !pk.RevokedAt.IsZero():
		return nil, fmt.Errorf("%w: the passkey was revoked", ErrPasskey)
	case pk.RPID != g.passkeys.RPID:
		return nil, fmt.Errorf("%w: the passkey was registered for another relying party", ErrPasskey)
	}
	p := &PasskeyProof{Algorithm: pk.Algorithm, PublicKey: slices.Clone(pk.PublicKey), RPID: pk.RPID}
	p.CredentialID = pk.ID
	p.AuthenticatorData = slices.Clone(d.Passkey.AuthenticatorData)
	p.ClientDataJSON = slices.Clone(d.Passkey.ClientDataJSON)
	p.Signature = slices.Clone(d.Passkey.Signature)
	actionHash, payloadHash := req.boundHashes()
	if err := VerifyPasskeyProof(p, PasskeyChallenge(req.ID, actionHash, payloadHash, d.Verdict, c.TokenID), g.passkeys.Origins); err != nil {
		return nil, err
	}
	return p, nil
}

// RegisterPasskey records p, a passkey its owner registered (package
// approvalhttp runs the ceremony and converts the credential's key to
// PKIX), audited as passkey.registered with actor. Only the owner
// registers their own passkeys: actor must be p.Owner (canonical forms
// compared). It fills CreatedAt and canonicalizes Owner. Errors:
// ErrInvalidIdentity for a bad owner, ErrPasskey for a key the gate
// cannot verify with (an algorithm it does not know, a key of another
// type, an RSA key under 2048 bits) or a relying party not the gate's,
// ErrConflict for a credential ID already registered, ErrUnsupported
// without Config.Passkeys or a Store with Passkeys.
func (g *Gate) RegisterPasskey(ctx context.Context, actor string, p Passkey) (*Passkey, error) {
	pks, ok := g.store.(Passkeys)
	if !ok || !g.passkeys.enabled() {
		return nil, fmt.Errorf("approval: register passkey: %w: needs Config.Passkeys and a Store with Passkeys", ErrUnsupported)
	}
	owner, err := CanonicalID(p.Owner)
	if err != nil {
		return nil, fmt.Errorf("approval: register passkey: owner: %w", err)
	}
	by, err := CanonicalID(actor)
	if err != nil {
		return nil, fmt.Errorf("approval: register passkey: actor: %w", err)
	}
	if by != owner {
		return nil, fmt.Errorf("approval: register passkey: %w: %s cannot register a passkey for %s", ErrPasskey, by, owner)
	}
	if err := checkPasskeyKey(&p, g.passkeys.RPID); err != nil {
		return nil, fmt.Errorf("approval: register passkey: %w", err)
	}
	p.Owner = owner
	p.CreatedAt, p.RevokedAt, p.RevokedBy = normalizeTime(g.now()), time.Time{}, ""
	p.PublicKey = slices.Clone(p.PublicKey)
	ev := []AuditEvent{{Type: EventPasskeyRegistered, Actor: owner, At: p.CreatedAt,
		Reason: auditSafe(fmt.Sprintf("passkey %s (%s, %s) for %s", p.ID, PasskeyAlgorithmName(p.Algorithm), p.Name, p.RPID), maxReasonBytes)}}
	if err := pks.CreatePasskey(ctx, &p, ev); err != nil {
		return nil, fmt.Errorf("approval: register passkey: %w", err)
	}
	g.afterCommit(ctx, ev)
	return &p, nil
}

// RevokePasskey revokes passkey id, audited as passkey.revoked with actor
// (its owner, or an operator) and reason. It returns ErrNotFound for an
// unknown passkey and ErrConflict for one already revoked.
func (g *Gate) RevokePasskey(ctx context.Context, id, actor, reason string) (*Passkey, error) {
	pks, ok := g.store.(Passkeys)
	if !ok {
		return nil, fmt.Errorf("approval: revoke passkey: %w: needs a Store with Passkeys", ErrUnsupported)
	}
	by, err := CanonicalID(actor)
	if err != nil {
		return nil, fmt.Errorf("approval: revoke passkey: actor: %w", err)
	}
	if err := checkString("reason", reason, maxReasonBytes); err != nil {
		return nil, fmt.Errorf("approval: revoke passkey: %w: %v", ErrInvalidDecision, err)
	}
	now := normalizeTime(g.now())
	ev := []AuditEvent{{Type: EventPasskeyRevoked, Actor: by, At: now,
		Reason: auditSafe(joinNonEmpty("passkey "+id, reason), maxReasonBytes)}}
	p, err := pks.RevokePasskey(ctx, id, now, by, ev)
	if err != nil {
		return nil, fmt.Errorf("approval: revoke passkey %.64q: %w", id, err)
	}
	g.afterCommit(ctx, ev)
	return p, nil
}

// ListPasskeys returns owner's passkeys, revoked ones included.
func (g *Gate) ListPasskeys(ctx context.Context, owner string) ([]Passkey, error) {
	pks, ok := g.store.(Passkeys)
	if !ok {
		return nil, fmt.Errorf("approval: list passkeys: %w: needs a Store with Passkeys", ErrUnsupported)
	}
	who, err := CanonicalID(owner)
	if err != nil {
		return nil, fmt.Errorf("approval: list passkeys: %w", err)
	}
	ps, err := pks.ListPasskeys(ctx, who)
	if err != nil {
		return nil, fmt.Errorf("approval: list passkeys: %w", err)
	}
	return ps, nil
}

// PasskeyRPID returns the relying party ID of Config.Passkeys, and its
// origins; "" when the gate takes no passkeys.
func (g *Gate) PasskeyRPID() (string, []string) {
	return g.passkeys.RPID, slices.Clone(g.passkeys.Origins)
}

// checkPasskeyKey refuses a passkey the gate could not verify with.
func checkPasskeyKey(p *Passkey, rpID string) error {
	if p.ID == "" || len(p.ID) > 1024 {
		return fmt.Errorf("%w: a credential ID of %d bytes", ErrPasskey, len(p.ID))
	}
	if _, err := base64.RawURLEncoding.DecodeString(p.ID); err != nil {
		return fmt.Errorf("%w: the credential ID is not base64url", ErrPasskey)
	}
	if err := checkString("name", p.Name, 128); err != nil {
		return fmt.Errorf("%w: %v", ErrPasskey, err)
	}
	if p.RPID != rpID {
		return fmt.Errorf("%w: registered for %.64q, the gate's relying party is %q", ErrPasskey, p.RPID, rpID)
	}
	if err := assertion.CheckKey(p.Algorithm, p.PublicKey); err != nil {
		return fmt.Errorf("%w: %v", ErrPasskey, err)
	}
	return nil
}

// PasskeyAlgorithmName returns the name of a COSE algorithm a passkey
// uses: "ES256", "EdDSA" or "RS256", or its number for another.
func PasskeyAlgorithmName(alg int) string {
	switch alg {
	case PasskeyES256:
		return "ES256"
	case PasskeyEdDSA:
		return "EdDSA"
	case PasskeyRS256:
		return "RS256"
	}
	return fmt.Sprint(alg)
}
