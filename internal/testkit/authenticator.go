package testkit

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
)

// Authenticator is a software WebAuthn authenticator holding one ES256
// credential, for tests of passkey assertions: it answers a challenge as
// navigator.credentials.get would, in the formats of WebAuthn Level 3
// (authenticator data, 6.1; CollectedClientData, 5.8.1; an ASN.1 DER
// ECDSA signature over authenticatorData || SHA-256(clientDataJSON),
// 6.3.3).
type Authenticator struct {
	// ID is the credential ID.
	ID []byte
	// Key is the credential's private key.
	Key *ecdsa.PrivateKey
	// RPID and Origin are what the authenticator and the browser put in
	// an assertion.
	RPID, Origin string
	// Flags are the authenticator data flags: user present (0x01) and
	// user verified (0x04) by default.
	Flags byte
	// Counter is the signature counter it reports, counted up on every
	// assertion.
	Counter uint32
}

// NewAuthenticator returns an authenticator with a fresh credential for
// rpID, answering from origin.
func NewAuthenticator(rpID, origin string) *Authenticator {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		panic(err)
	}
	return &Authenticator{ID: id, Key: key, RPID: rpID, Origin: origin, Flags: 0x01 | 0x04}
}

// CredentialID returns ID in base64url without padding.
func (a *Authenticator) CredentialID() string { return base64.RawURLEncoding.EncodeToString(a.ID) }

// PublicKey returns the credential's public key, PKIX DER.
func (a *Authenticator) PublicKey() []byte {
	der, err := x509.MarshalPKIXPublicKey(&a.Key.PublicKey)
	if err != nil {
		panic(err)
	}
	return der
}

// Assert answers challenge: the authenticator data, the client data JSON
// and the signature.
func (a *Authenticator) Assert(challenge []byte) (authData, clientDataJSON, sig []byte) {
	a.Counter++
	rp := sha256.Sum256([]byte(a.RPID))
	authData = append(append([]byte{}, rp[:]...), a.Flags)
	authData = binary.BigEndian.AppendUint32(authData, a.Counter)
	clientDataJSON, err := json.Marshal(map[string]any{
		"type": "webauthn.get", "challenge": base64.RawURLEncoding.EncodeToString(challenge),
		"origin": a.Origin, "crossOrigin": false,
	})
	if err != nil {
		panic(err)
	}
	cd := sha256.Sum256(clientDataJSON)
	sum := sha256.Sum256(append(append([]byte{}, authData...), cd[:]...))
	sig, err = ecdsa.SignASN1(rand.Reader, a.Key, sum[:])
	if err != nil {
		panic(err)
	}
	return authData, clientDataJSON, sig
}
