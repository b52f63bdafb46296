package assertion_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval/internal/assertion"
)

// sign builds an assertion of challenge for rpID from origin, signed with
// key under alg, in WebAuthn Level 3's formats (6.1, 5.8.1, 6.3.3).
func sign(t *testing.T, alg int, key crypto.Signer, rpID, origin string, flags byte, challenge []byte) *assertion.Assertion {
	t.Helper()
	rp := sha256.Sum256([]byte(rpID))
	ad := append(append([]byte{}, rp[:]...), flags, 0, 0, 0, 1)
	cd, err := json.Marshal(map[string]any{"type": "webauthn.get", "challenge": base64.RawURLEncoding.EncodeToString(challenge), "origin": origin})
	require.NoError(t, err)
	cdh := sha256.Sum256(cd)
	msg := append(append([]byte{}, ad...), cdh[:]...)
	var sig []byte
	switch alg {
	case assertion.EdDSA:
		sig, err = key.Sign(rand.Reader, msg, crypto.Hash(0))
	default:
		sum := sha256.Sum256(msg)
		sig, err = key.Sign(rand.Reader, sum[:], crypto.SHA256)
	}
	require.NoError(t, err)
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	require.NoError(t, err)
	return &assertion.Assertion{Algorithm: alg, PublicKey: der, RPID: rpID, AuthenticatorData: ad, ClientDataJSON: cd, Signature: sig}
}

// TestVerify: each algorithm verifies, and each check refuses what it is
// for.
func TestVerify(t *testing.T) {
	t.Parallel()
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	rs, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	challenge := []byte("0123456789abcdef0123456789abcdef")
	const rpID, origin = "ops.example.com", "https://ops.example.com"
	origins := []string{origin}
	for _, tc := range []struct {
		name string
		alg  int
		key  crypto.Signer
	}{{"ES256", assertion.ES256, ec}, {"EdDSA", assertion.EdDSA, ed}, {"RS256", assertion.RS256, rs}} {
		t.Run(tc.name, func(t *testing.T) {
			a := sign(t, tc.alg, tc.key, rpID, origin, 0x05, challenge)
			require.NoError(t, assertion.Verify(a, challenge, origins))
			require.NoError(t, assertion.CheckKey(tc.alg, a.PublicKey))

			require.ErrorContains(t, assertion.Verify(a, []byte("another challenge"), origins), "another challenge")
			require.ErrorContains(t, assertion.Verify(a, challenge, []string{"https://evil.example"}), "origin")
			bad := *a
			bad.Signature = append([]byte{}, a.Signature...)
			bad.Signature[len(bad.Signature)-1] ^= 1
			require.ErrorContains(t, assertion.Verify(&bad, challenge, origins), "signature")
			other := *a
			other.RPID = "evil.example"
			require.ErrorContains(t, assertion.Verify(&other, challenge, origins), "relying party")
			noUV := sign(t, tc.alg, tc.key, rpID, origin, 0x01, challenge)
			require.ErrorContains(t, assertion.Verify(noUV, challenge, origins), "verify the user")
			wrongAlg := *a
			wrongAlg.Algorithm = map[int]int{assertion.ES256: assertion.EdDSA, assertion.EdDSA: assertion.RS256, assertion.RS256: assertion.ES256}[tc.alg]
			require.Error(t, assertion.Verify(&wrongAlg, challenge, origins), "a key is good for its own algorithm only")
			require.Error(t, assertion.CheckKey(wrongAlg.Algorithm, a.PublicKey))
		})
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	der, err := x509.MarshalPKIXPublicKey(&small.PublicKey)
	require.NoError(t, err)
	require.Error(t, assertion.CheckKey(assertion.RS256, der), "RSA under 2048 bits")
	require.Error(t, assertion.CheckKey(-999, der))
}
