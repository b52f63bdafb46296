package approval

import (
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/signoff/approval/internal/keyfile"
)

// A signing key must outlive the process: every token in a link already
// sent names its key by ID, and a gate restarted with a new key refuses
// them all (ErrTokenSignature, unknown key ID). Keys are kept in the
// standard PEM forms that openssl and the x509 package read: PKCS#8
// ("PRIVATE KEY") for a private key, PKIX ("PUBLIC KEY") for a public one.
//
// Key files are the root package's one use of the file system, outside any
// request path: a key file is read once, when the host program starts.
// Package keyfile does the work; the functions here name the package in
// their errors and report ErrInvalidKey.

// EncodePrivateKeyPEM returns priv as a PKCS#8 PEM block ("PRIVATE KEY"),
// the form DecodePrivateKeyPEM and LoadOrCreateKeyFile read and
// `openssl pkey` understands. It reports ErrInvalidKey for a key that is not
// ed25519.PrivateKeySize bytes or whose public half does not belong to its
// seed. Once encoded, a key from GenerateKeys no longer counts as ephemeral
// (see New).
func EncodePrivateKeyPEM(priv ed25519.PrivateKey) ([]byte, error) {
	data, err := keyfile.EncodePrivate(priv)
	return data, keyErr(err)
}

// DecodePrivateKeyPEM parses an Ed25519 private key from data holding one
// PKCS#8 PEM block ("PRIVATE KEY"), as EncodePrivateKeyPEM and
// `openssl genpkey -algorithm ed25519` write it. Anything else reports
// ErrInvalidKey: data that is not PEM, another block type (an OpenSSH,
// PKCS#1 or SEC 1 key), an encrypted block, data before or after the block,
// or a key of another algorithm (RSA, ECDSA, X25519).
func DecodePrivateKeyPEM(data []byte) (ed25519.PrivateKey, error) {
	priv, err := keyfile.DecodePrivate(data)
	return priv, keyErr(err)
}

// EncodePublicKeyPEM returns pub as a PKIX PEM block ("PUBLIC KEY"), the
// form DecodePublicKeyPEM reads and `openssl pkey -pubin` understands. It
// reports ErrInvalidKey for a key that is not ed25519.PublicKeySize bytes.
func EncodePublicKeyPEM(pub ed25519.PublicKey) ([]byte, error) {
	data, err := keyfile.EncodePublic(pub)
	return data, keyErr(err)
}

// DecodePublicKeyPEM parses an Ed25519 public key from data holding one
// PKIX PEM block ("PUBLIC KEY"), for Config.VerifyKeys. Anything else
// reports ErrInvalidKey, as for DecodePrivateKeyPEM.
func DecodePublicKeyPEM(data []byte) (ed25519.PublicKey, error) {
	pub, err := keyfile.DecodePublic(data)
	return pub, keyErr(err)
}

// LoadOrCreateKeyFile returns the Ed25519 private key in the PKCS#8 PEM
// file at path, or, when no file is there, generates a key and writes it
// there with mode 0600; created reports which. Give the same path on every
// start and the gate keeps its key, so links sent before a restart still
// work.
//
// The file is written atomically (a temporary file in the same directory,
// synced, then linked into place), and an existing file is never replaced:
// one that is not a valid Ed25519 key reports ErrInvalidKey, and one that
// cannot be read reports the file system's error. If two processes create
// the key at once, one key wins and both return it.
func LoadOrCreateKeyFile(path string) (priv ed25519.PrivateKey, created bool, err error) {
	priv, created, err = keyfile.LoadOrCreate(path)
	return priv, created, keyErr(err)
}

// keyErr returns an error of package keyfile as the root reports it, with
// the package named, and matching ErrInvalidKey where it wraps
// keyfile.ErrInvalid. It returns nil for nil.
func keyErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, keyfile.ErrInvalid):
		err = invalidKeyError{err}
	}
	return fmt.Errorf("approval: %w", err)
}

// invalidKeyError is a keyfile error, unchanged in text and chain, that
// errors.Is also matches with ErrInvalidKey.
type invalidKeyError struct{ err error }

func (e invalidKeyError) Error() string   { return e.err.Error() }
func (e invalidKeyError) Unwrap() []error { return []error{ErrInvalidKey, e.err} }
