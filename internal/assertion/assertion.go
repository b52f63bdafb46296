// Package assertion verifies WebAuthn assertions with the standard library
// alone, as the gate and an offline verifier of an approval artifact do:
// the client data (type, challenge, origin), the authenticator data (the
// relying party's hash, user presence and verification) and the signature
// over both, with a public key in PKIX form. The formats are WebAuthn
// Level 3's: authenticator data (6.1), CollectedClientData (5.8.1), and
// the signature over authenticatorData || SHA-256(clientDataJSON) (6.3.3),
// with COSE algorithm identifiers (RFC 9053).
package assertion

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// COSE algorithm identifiers the package verifies.
const (
	ES256 = -7   // ECDSA with SHA-256 on P-256
	EdDSA = -8   // Ed25519
	RS256 = -257 // RSASSA-PKCS1-v1_5 with SHA-256, 2048 bits or more
)

// Authenticator data flags (WebAuthn Level 3, 6.1).
const (
	flagUserPresent  = 0x01
	flagUserVerified = 0x04
)

// Assertion is what is verified.
type Assertion struct {
	Algorithm         int
	PublicKey         []byte // PKIX DER
	RPID              string
	AuthenticatorData []byte
	ClientDataJSON    []byte
	Signature         []byte
}

// clientData is the part of a CollectedClientData that is checked.
type clientData struct {
	Type        string `json:"type"`
	Challenge   string `json:"challenge"`
	Origin      string `json:"origin"`
	CrossOrigin bool   `json:"crossOrigin"`
}

// Verify checks that a answers challenge: its client data is a
// webauthn.get of exactly that challenge, not cross-origin, from one of
// origins when origins is not empty; its authenticator data is for
// a.RPID with the user present and verified; and a.PublicKey signed both.
// The error says which check failed.
func Verify(a *Assertion, challenge []byte, origins []string) error {
	var cd clientData
	if err := json.Unmarshal(a.ClientDataJSON, &cd); err != nil {
		return errors.New("client data is not JSON")
	}
	switch {
	case cd.Type != "webauthn.get":
		return fmt.Errorf("client data type %q (want webauthn.get)", clip(cd.Type))
	case cd.Challenge != base64.RawURLEncoding.EncodeToString(challenge):
		return errors.New("the assertion answers another challenge: another request, verdict, token or payload")
	case cd.CrossOrigin:
		return errors.New("a cross-origin assertion")
	case len(origins) > 0 && !slices.Contains(origins, cd.Origin):
		return fmt.Errorf("origin %q is not one of the gate's", clip(cd.Origin))
	}
	ad := a.AuthenticatorData
	if len(ad) < 37 {
		return fmt.Errorf("authenticator data of %d bytes", len(ad))
	}
	if rp := sha256.Sum256([]byte(a.RPID)); string(ad[:32]) != string(rp[:]) {
		return errors.New("the assertion is for another relying party")
	}
	if ad[32]&flagUserPresent == 0 || ad[32]&flagUserVerified == 0 {
		return errors.New("the authenticator did not verify the user (user present and verified are required)")
	}
	cdHash := sha256.Sum256(a.ClientDataJSON)
	signed := make([]byte, 0, len(ad)+len(cdHash))
	signed = append(append(signed, ad...), cdHash[:]...)
	pub, err := x509.ParsePKIXPublicKey(a.PublicKey)
	if err != nil {
		return errors.New("unreadable public key")
	}
	ok := false
	switch a.Algorithm {
	case ES256:
		k, isEC := pub.(*ecdsa.PublicKey)
		if isEC && k.Curve == elliptic.P256() {
			sum := sha256.Sum256(signed)
			ok = ecdsa.VerifyASN1(k, sum[:], a.Signature)
		}
	case EdDSA:
		k, isEd := pub.(ed25519.PublicKey)
		ok = isEd && ed25519.Verify(k, signed, a.Signature)
	case RS256:
		k, isRSA := pub.(*rsa.PublicKey)
		if isRSA && k.N.BitLen() >= 2048 {
			sum := sha256.Sum256(signed)
			ok = rsa.VerifyPKCS1v15(k, crypto.SHA256, sum[:], a.Signature) == nil
		}
	default:
		return fmt.Errorf("algorithm %d is not ES256, EdDSA or RS256", a.Algorithm)
	}
	if !ok {
		return errors.New("the signature does not verify with the registered key")
	}
	return nil
}

// CheckKey reports whether pkix is a key Verify can verify with under alg:
// ES256 on P-256, Ed25519 for EdDSA, or RSA of 2048 bits or more for
// RS256.
func CheckKey(alg int, pkix []byte) error {
	pub, err := x509.ParsePKIXPublicKey(pkix)
	if err != nil {
		return fmt.Errorf("unreadable public key: %v", err)
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if alg == ES256 && k.Curve == elliptic.P256() {
			return nil
		}
	case ed25519.PublicKey:
		if alg == EdDSA {
			return nil
		}
	case *rsa.PublicKey:
		if alg == RS256 && k.N.BitLen() >= 2048 {
			return nil
		}
	}
	return fmt.Errorf("a %T key with algorithm %d (want ES256 on P-256, EdDSA, or RS256 of 2048 bits or more)", pub, alg)
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	return s
}
