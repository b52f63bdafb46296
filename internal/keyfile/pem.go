// Package keyfile keeps the approval package's Ed25519 keys outside the
// process: it encodes and decodes them in the standard PEM forms that
// openssl and the x509 package read, PKCS#8 ("PRIVATE KEY") for a private
// key and PKIX ("PUBLIC KEY") for a public one; it loads a key file, or
// creates one atomically, never replacing a file already there; and it
// remembers which keys were generated in this process and never saved, so
// that the gate can warn that links they sign die with the process.
//
// Errors about the key itself wrap ErrInvalid; errors name the operation
// ("decode private key: ...") but not the package, which the caller adds.
package keyfile

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/signoff/approval/internal/text"
)

// ErrInvalid: a key to encode or decode is not a well-formed Ed25519 key
// in the expected PEM form.
var ErrInvalid = errors.New("invalid key")

const (
	pemPrivateKey = "PRIVATE KEY"
	pemPublicKey  = "PUBLIC KEY"
)

// EncodePrivate returns priv as a PKCS#8 PEM block ("PRIVATE KEY"). It
// refuses a key that is not ed25519.PrivateKeySize bytes or whose public
// half does not belong to its seed. An encoded key is no longer ephemeral.
func EncodePrivate(priv ed25519.PrivateKey) ([]byte, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("encode private key: %w: %d bytes, want %d", ErrInvalid, len(priv), ed25519.PrivateKeySize)
	}
	// PKCS#8 stores only the seed: a key whose stored public half is not
	// the seed's would come back as another key.
	if !bytes.Equal(ed25519.NewKeyFromSeed(priv.Seed()), priv) {
		return nil, fmt.Errorf("encode private key: %w: public half does not match the seed", ErrInvalid)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w: %w", ErrInvalid, err)
	}
	unmarkEphemeral(priv)
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der}), nil
}

// DecodePrivate parses an Ed25519 private key from data holding one PKCS#8
// PEM block ("PRIVATE KEY") and nothing else but white space. A decoded
// key is not ephemeral: it exists outside this process.
func DecodePrivate(data []byte) (ed25519.PrivateKey, error) {
	priv, err := decodePrivate(data)
	if err != nil {
		return nil, fmt.Errorf("decode private key: %w", err)
	}
	return priv, nil
}

func decodePrivate(data []byte) (ed25519.PrivateKey, error) {
	der, err := decodePEM(data, pemPrivateKey)
	if err != nil {
		return nil, err
	}
	if err := noTrailingDER(der); err != nil {
		return nil, err
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: %s, want Ed25519", ErrInvalid, algorithm(key))
	}
	// A key read back exists outside this process.
	unmarkEphemeral(priv)
	return priv, nil
}

// EncodePublic returns pub as a PKIX PEM block ("PUBLIC KEY"). It refuses a
// key that is not ed25519.PublicKeySize bytes.
func EncodePublic(pub ed25519.PublicKey) ([]byte, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("encode public key: %w: %d bytes, want %d", ErrInvalid, len(pub), ed25519.PublicKeySize)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w: %w", ErrInvalid, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPublicKey, Bytes: der}), nil
}

// DecodePublic parses an Ed25519 public key from data holding one PKIX PEM
// block ("PUBLIC KEY") and nothing else but white space.
func DecodePublic(data []byte) (ed25519.PublicKey, error) {
	der, err := decodePEM(data, pemPublicKey)
	if err != nil {
		return nil, fmt.Errorf("decode public key: %w", err)
	}
	key, err := x509.ParsePKIXPublicKey(der) // refuses trailing DER itself
	if err != nil {
		return nil, fmt.Errorf("decode public key: %w: %w", ErrInvalid, err)
	}
	pub, ok := key.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("decode public key: %w: %s, want Ed25519", ErrInvalid, algorithm(key))
	}
	return pub, nil
}

// decodePEM returns the bytes of the one PEM block of type typ that data
// holds, with nothing but white space around it.
func decodePEM(data []byte, typ string) ([]byte, error) {
	trimmed := bytes.TrimSpace(data)
	block, rest := pem.Decode(trimmed)
	switch {
	case block == nil:
		return nil, fmt.Errorf("%w: not PEM (want a %q block)", ErrInvalid, typ)
	case !bytes.HasPrefix(trimmed, []byte("-----BEGIN ")):
		// pem.Decode skips any text before a block.
		return nil, fmt.Errorf("%w: data before the PEM block", ErrInvalid)
	case len(rest) > 0:
		return nil, fmt.Errorf("%w: trailing data after the PEM block", ErrInvalid)
	case block.Type != typ:
		return nil, fmt.Errorf("%w: PEM block is %q, want %q", ErrInvalid, text.Clip(block.Type, 64), typ)
	case len(block.Headers) > 0:
		return nil, fmt.Errorf("%w: PEM block has headers (an encrypted key?)", ErrInvalid)
	}
	return block.Bytes, nil
}

// noTrailingDER refuses bytes after the DER structure, which
// x509.ParsePKCS8PrivateKey ignores.
func noTrailingDER(der []byte) error {
	var v asn1.RawValue
	rest, err := asn1.Unmarshal(der, &v)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if len(rest) > 0 {
		return fmt.Errorf("%w: trailing data after the DER key", ErrInvalid)
	}
	return nil
}

func algorithm(key any) string {
	switch key.(type) {
	case *rsa.PrivateKey, *rsa.PublicKey:
		return "an RSA key"
	case *ecdsa.PrivateKey, *ecdsa.PublicKey:
		return "an ECDSA key"
	case *ecdh.PrivateKey, *ecdh.PublicKey:
		return "an ECDH (X25519) key"
	}
	return fmt.Sprintf("a key of type %T", key)
}
