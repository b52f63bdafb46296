package approval

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/signoff/approval/internal/text"
)

// A signing key must outlive the process: every token in a link already
// sent names its key by ID, and a gate restarted with a new key refuses
// them all (ErrTokenSignature, unknown key ID). Keys are kept in the
// standard PEM forms that openssl and the x509 package read: PKCS#8
// ("PRIVATE KEY") for a private key, PKIX ("PUBLIC KEY") for a public one.
//
// This file is the root package's one use of the file system, outside any
// request path: a key file is read once, when the host program starts.

const (
	pemPrivateKey = "PRIVATE KEY"
	pemPublicKey  = "PUBLIC KEY"
)

// EncodePrivateKeyPEM returns priv as a PKCS#8 PEM block ("PRIVATE KEY"),
// the form DecodePrivateKeyPEM and LoadOrCreateKeyFile read and
// `openssl pkey` understands. It reports ErrInvalidKey for a key that is not
// ed25519.PrivateKeySize bytes or whose public half does not belong to its
// seed. Once encoded, a key from GenerateKeys no longer counts as ephemeral
// (see New).
func EncodePrivateKeyPEM(priv ed25519.PrivateKey) ([]byte, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("approval: encode private key: %w: %d bytes, want %d", ErrInvalidKey, len(priv), ed25519.PrivateKeySize)
	}
	// PKCS#8 stores only the seed: a key whose stored public half is not
	// the seed's would come back as another key.
	if !bytes.Equal(ed25519.NewKeyFromSeed(priv.Seed()), priv) {
		return nil, fmt.Errorf("approval: encode private key: %w: public half does not match the seed", ErrInvalidKey)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("approval: encode private key: %w: %w", ErrInvalidKey, err)
	}
	unmarkEphemeral(priv)
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der}), nil
}

// DecodePrivateKeyPEM parses an Ed25519 private key from data holding one
// PKCS#8 PEM block ("PRIVATE KEY"), as EncodePrivateKeyPEM and
// `openssl genpkey -algorithm ed25519` write it. Anything else reports
// ErrInvalidKey: data that is not PEM, another block type (an OpenSSH,
// PKCS#1 or SEC 1 key), an encrypted block, data before or after the block,
// or a key of another algorithm (RSA, ECDSA, X25519).
func DecodePrivateKeyPEM(data []byte) (ed25519.PrivateKey, error) {
	priv, err := decodePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("approval: decode private key: %w", err)
	}
	return priv, nil
}

func decodePrivateKey(data []byte) (ed25519.PrivateKey, error) {
	der, err := decodePEM(data, pemPrivateKey)
	if err != nil {
		return nil, err
	}
	if err := noTrailingDER(der); err != nil {
		return nil, err
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidKey, err)
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: %s, want Ed25519", ErrInvalidKey, algorithm(key))
	}
	// A key read back exists outside this process.
	unmarkEphemeral(priv)
	return priv, nil
}

// EncodePublicKeyPEM returns pub as a PKIX PEM block ("PUBLIC KEY"), the
// form DecodePublicKeyPEM reads and `openssl pkey -pubin` understands. It
// reports ErrInvalidKey for a key that is not ed25519.PublicKeySize bytes.
func EncodePublicKeyPEM(pub ed25519.PublicKey) ([]byte, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("approval: encode public key: %w: %d bytes, want %d", ErrInvalidKey, len(pub), ed25519.PublicKeySize)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("approval: encode public key: %w: %w", ErrInvalidKey, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPublicKey, Bytes: der}), nil
}

// DecodePublicKeyPEM parses an Ed25519 public key from data holding one
// PKIX PEM block ("PUBLIC KEY"), for Config.VerifyKeys. Anything else
// reports ErrInvalidKey, as for DecodePrivateKeyPEM.
func DecodePublicKeyPEM(data []byte) (ed25519.PublicKey, error) {
	der, err := decodePEM(data, pemPublicKey)
	if err != nil {
		return nil, fmt.Errorf("approval: decode public key: %w", err)
	}
	key, err := x509.ParsePKIXPublicKey(der) // refuses trailing DER itself
	if err != nil {
		return nil, fmt.Errorf("approval: decode public key: %w: %w", ErrInvalidKey, err)
	}
	pub, ok := key.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("approval: decode public key: %w: %s, want Ed25519", ErrInvalidKey, algorithm(key))
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
		return nil, fmt.Errorf("%w: not PEM (want a %q block)", ErrInvalidKey, typ)
	case !bytes.HasPrefix(trimmed, []byte("-----BEGIN ")):
		// pem.Decode skips any text before a block.
		return nil, fmt.Errorf("%w: data before the PEM block", ErrInvalidKey)
	case len(rest) > 0:
		return nil, fmt.Errorf("%w: trailing data after the PEM block", ErrInvalidKey)
	case block.Type != typ:
		return nil, fmt.Errorf("%w: PEM block is %q, want %q", ErrInvalidKey, text.Clip(block.Type, 64), typ)
	case len(block.Headers) > 0:
		return nil, fmt.Errorf("%w: PEM block has headers (an encrypted key?)", ErrInvalidKey)
	}
	return block.Bytes, nil
}

// noTrailingDER refuses bytes after the DER structure, which
// x509.ParsePKCS8PrivateKey ignores.
func noTrailingDER(der []byte) error {
	var v asn1.RawValue
	rest, err := asn1.Unmarshal(der, &v)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidKey, err)
	}
	if len(rest) > 0 {
		return fmt.Errorf("%w: trailing data after the DER key", ErrInvalidKey)
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
	priv, err = loadKeyFile(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return priv, false, err
	}
	_, priv, err = ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("approval: create key file %s: %w", path, err)
	}
	data, err := EncodePrivateKeyPEM(priv)
	if err != nil {
		return nil, false, fmt.Errorf("approval: create key file %s: %w", path, err)
	}
	switch err := writeNewFile(path, data); {
	case errors.Is(err, fs.ErrExist):
		// Another process created it first: use its key.
		priv, err = loadKeyFile(path)
		return priv, false, err
	case err != nil:
		return nil, false, fmt.Errorf("approval: create key file %s: %w", path, err)
	}
	return priv, true, nil
}

func loadKeyFile(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("approval: read key file: %w", err)
	}
	priv, err := decodePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("approval: key file %s: %w", path, err)
	}
	return priv, nil
}

// writeNewFile writes data to a new file at path, all or nothing, with mode
// 0600. It reports an error wrapping fs.ErrExist if path exists.
func writeNewFile(path string, data []byte) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	// os.CreateTemp creates the file with mode 0600.
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a link, only the temporary name goes
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	// A rename would replace a file created meanwhile; a hard link fails
	// instead. Where the file system has no hard links, rename after a
	// check, which leaves a narrow race between two creators.
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		if _, serr := os.Lstat(path); serr == nil {
			return fs.ErrExist
		}
		if err := os.Rename(tmp, path); err != nil {
			return err
		}
	}
	return syncDir(dir)
}

// syncDir makes a new directory entry durable. Windows cannot sync a
// directory handle; NTFS journals the entry itself.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ephemeral remembers the public keys of keys GenerateKeys made in this
// process that were never encoded with EncodePrivateKeyPEM, so that New can
// warn that links signed with one stop working when the process exits. It
// holds the most recent keys only: a process that generates keys without
// end does not grow without end, and a key forgotten here only goes
// unwarned.
var ephemeral struct {
	mu   sync.Mutex
	set  map[[ed25519.PublicKeySize]byte]struct{}
	ring [1024][ed25519.PublicKeySize]byte
	next int // ring index of the next key, whose slot holds the oldest
}

func markEphemeral(priv ed25519.PrivateKey) {
	pub := [ed25519.PublicKeySize]byte(priv[ed25519.SeedSize:])
	ephemeral.mu.Lock()
	defer ephemeral.mu.Unlock()
	if ephemeral.set == nil {
		ephemeral.set = make(map[[ed25519.PublicKeySize]byte]struct{})
	}
	// Forget the oldest key (a zero slot, before the ring first fills).
	delete(ephemeral.set, ephemeral.ring[ephemeral.next])
	ephemeral.ring[ephemeral.next] = pub
	ephemeral.next = (ephemeral.next + 1) % len(ephemeral.ring)
	ephemeral.set[pub] = struct{}{}
}

// unmarkEphemeral forgets priv. Its ring slot stays until reused.
func unmarkEphemeral(priv ed25519.PrivateKey) {
	pub := [ed25519.PublicKeySize]byte(priv[ed25519.SeedSize:])
	ephemeral.mu.Lock()
	delete(ephemeral.set, pub)
	ephemeral.mu.Unlock()
}

func isEphemeral(priv ed25519.PrivateKey) bool {
	if len(priv) != ed25519.PrivateKeySize {
		return false
	}
	pub := [ed25519.PublicKeySize]byte(priv[ed25519.SeedSize:])
	ephemeral.mu.Lock()
	defer ephemeral.mu.Unlock()
	_, ok := ephemeral.set[pub]
	return ok
}
