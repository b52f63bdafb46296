package approval

import (
	"crypto/ed25519"
	"encoding/base64"
	"time"
)

// Hooks into the canonical forms for the test vectors (vectors_test.go),
// which live in package approval_test so that they can use internal/wire.

// CanonicalJSON returns the bytes a's action hash is the SHA-256 of.
func (a Action) CanonicalJSON() ([]byte, error) {
	l := Limits{}.withDefaults()
	if err := a.normalize(&l); err != nil {
		return nil, err
	}
	return a.appendCanonical(nil, PayloadHash(a.Payload))
}

// CanonicalJSON returns the bytes e's hash is the SHA-256 of.
func (e *AuditEvent) CanonicalJSON() []byte { return e.appendCanonical(nil) }

// SignArtifactForTest returns r's artifact signed with priv, and the bytes
// its signature covers.
func SignArtifactForTest(priv ed25519.PrivateKey, r *Request) (artifact, signed []byte) {
	g := &Gate{keys: &keyring{signer: priv, signerKID: KeyID(priv.Public().(ed25519.PublicKey))}}
	return g.signArtifact(r), artifactOf(r, g.keys.signerKID).signedBytes()
}

// SignCheckpointForTest sets c.Signature: priv's signature of c made at at.
func SignCheckpointForTest(priv ed25519.PrivateKey, at time.Time, c *AuditCheckpoint) {
	c.Signature = base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, checkpointSigned(at, c)))
}

// VerifyCheckpointForTest checks checkpoint event e's signature with pub.
func VerifyCheckpointForTest(e *AuditEvent, pub ed25519.PublicKey) bool {
	return verifyCheckpointSignature(e, pub)
}

// IssueTokenForTest issues a token as IssueToken does, at iat, and
// returns it with its decoded payload and token ID.
func IssueTokenForTest(priv ed25519.PrivateKey, rid, sub string, act Verdict, iat time.Time, ttl time.Duration) (tok string, payload []byte, tid string, err error) {
	kr, err := newKeyring(priv, nil, DefaultTokenLeeway)
	if err != nil {
		return "", nil, "", err
	}
	if tok, err = kr.issue(rid, sub, act, iat, ttl); err != nil {
		return "", nil, "", err
	}
	var scratch [2 * maxTokenLen]byte
	c, p, _, err := parseToken(tok, &scratch)
	return tok, append([]byte(nil), p...), c.TokenID, err
}

// VerifyTokenForTest verifies tok with pub at now, as Decide does.
func VerifyTokenForTest(tok string, pub ed25519.PublicKey, now time.Time) (TokenClaims, error) {
	kr, err := newKeyring(nil, []ed25519.PublicKey{pub}, DefaultTokenLeeway)
	if err != nil {
		return TokenClaims{}, err
	}
	return kr.verifyToken(tok, now)
}
