package approval_test

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/memstore"
)

func newKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return pub, priv
}

func TestKeyPEMRoundTrip(t *testing.T) {
	t.Parallel()
	pub, priv := newKey(t)

	data, err := approval.EncodePrivateKeyPEM(priv)
	require.NoError(t, err)
	block, rest := pem.Decode(data)
	require.NotNil(t, block)
	require.Empty(t, rest)
	require.Equal(t, "PRIVATE KEY", block.Type)
	got, err := approval.DecodePrivateKeyPEM(data)
	require.NoError(t, err)
	require.Equal(t, priv, got)

	data, err = approval.EncodePublicKeyPEM(pub)
	require.NoError(t, err)
	block, _ = pem.Decode(data)
	require.Equal(t, "PUBLIC KEY", block.Type)
	gotPub, err := approval.DecodePublicKeyPEM(data)
	require.NoError(t, err)
	require.Equal(t, pub, gotPub)

	// White space around the block, as editors and secret stores leave it.
	_, err = approval.DecodePublicKeyPEM(append([]byte("\n\n  "), append(data, "\r\n\n"...)...))
	require.NoError(t, err)
}

// TestKeyPEMInterop: the files are the standard forms, written and read by
// the x509 package and by openssl.
func TestKeyPEMInterop(t *testing.T) {
	t.Parallel()
	pub, priv := newKey(t)

	ours, err := approval.EncodePrivateKeyPEM(priv)
	require.NoError(t, err)
	block, _ := pem.Decode(ours)
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	require.NoError(t, err)
	require.Equal(t, priv, key)

	der, err := x509.MarshalPKCS8PrivateKey(priv)
	require.NoError(t, err)
	got, err := approval.DecodePrivateKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	require.NoError(t, err)
	require.Equal(t, priv, got)

	oursPub, err := approval.EncodePublicKeyPEM(pub)
	require.NoError(t, err)
	block, _ = pem.Decode(oursPub)
	pk, err := x509.ParsePKIXPublicKey(block.Bytes)
	require.NoError(t, err)
	require.Equal(t, pub, pk)

	der, err = x509.MarshalPKIXPublicKey(pub)
	require.NoError(t, err)
	gotPub, err := approval.DecodePublicKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	require.NoError(t, err)
	require.Equal(t, pub, gotPub)

	t.Run("openssl", func(t *testing.T) {
		openssl, err := exec.LookPath("openssl")
		if err != nil {
			t.Skip("openssl is not installed")
		}
		dir := t.TempDir()
		file := filepath.Join(dir, "ours.pem")
		require.NoError(t, os.WriteFile(file, ours, 0o600))
		// openssl reads our private key and derives our public key file.
		out, err := exec.Command(openssl, "pkey", "-in", file, "-pubout").Output()
		require.NoError(t, err)
		require.Equal(t, string(oursPub), string(out))

		// We read a key openssl made, and agree on its public key.
		theirs := filepath.Join(dir, "theirs.pem")
		require.NoError(t, exec.Command(openssl, "genpkey", "-algorithm", "ed25519", "-out", theirs).Run())
		data, err := os.ReadFile(theirs)
		require.NoError(t, err)
		priv, err := approval.DecodePrivateKeyPEM(data)
		require.NoError(t, err)
		out, err = exec.Command(openssl, "pkey", "-in", theirs, "-pubout").Output()
		require.NoError(t, err)
		pub, err := approval.DecodePublicKeyPEM(out)
		require.NoError(t, err)
		require.Equal(t, pub, priv.Public())
	})
}

func TestKeyPEMRejects(t *testing.T) {
	t.Parallel()
	pub, priv := newKey(t)
	privPEM, err := approval.EncodePrivateKeyPEM(priv)
	require.NoError(t, err)
	pubPEM, err := approval.EncodePublicKeyPEM(pub)
	require.NoError(t, err)
	privDER, _ := pem.Decode(privPEM)
	pubDER, _ := pem.Decode(pubPEM)
	enc := func(typ string, der []byte) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	}

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	xKey, err := ecdh.X25519().GenerateKey(rand.Reader)
	require.NoError(t, err)
	pkcs8 := func(k any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		require.NoError(t, err)
		return enc("PRIVATE KEY", der)
	}
	pkix := func(k any) []byte {
		der, err := x509.MarshalPKIXPublicKey(k)
		require.NoError(t, err)
		return enc("PUBLIC KEY", der)
	}

	for _, tt := range []struct {
		name string
		data []byte
		want string // in the error
	}{
		{"empty", nil, "not PEM"},
		{"text", []byte("hello"), "not PEM"},
		{"raw DER", privDER.Bytes, "not PEM"},
		{"public key block", pubPEM, `PEM block is "PUBLIC KEY"`},
		{"PKCS#1 block type", enc("RSA PRIVATE KEY", privDER.Bytes), `PEM block is "RSA PRIVATE KEY"`},
		{"OpenSSH block type", enc("OPENSSH PRIVATE KEY", privDER.Bytes), `PEM block is "OPENSSH PRIVATE KEY"`},
		{"second block", append(slices.Clone(privPEM), privPEM...), "trailing data after the PEM block"},
		{"trailing text", append(slices.Clone(privPEM), "garbage"...), "trailing data after the PEM block"},
		{"leading text", append([]byte("comment\n"), privPEM...), "data before the PEM block"},
		{"headers", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: privDER.Bytes}), "headers"},
		{"trailing DER", enc("PRIVATE KEY", append(slices.Clone(privDER.Bytes), 0)), "trailing data after the DER key"},
		{"not DER", enc("PRIVATE KEY", []byte("not der")), "invalid key: asn1"},
		{"not PKCS#8", enc("PRIVATE KEY", pubDER.Bytes), "invalid key: asn1: structure error"},
		{"RSA", pkcs8(rsaKey), "an RSA key, want Ed25519"},
		{"ECDSA", pkcs8(ecKey), "an ECDSA key, want Ed25519"},
		{"X25519", pkcs8(xKey), "an ECDH (X25519) key, want Ed25519"},
	} {
		_, err := approval.DecodePrivateKeyPEM(tt.data)
		require.ErrorIs(t, err, approval.ErrInvalidKey, tt.name)
		require.ErrorContains(t, err, tt.want, tt.name)
		require.ErrorContains(t, err, "approval: decode private key: ", tt.name)
	}

	for _, tt := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "not PEM"},
		{"private key block", privPEM, `PEM block is "PRIVATE KEY"`},
		{"second block", append(slices.Clone(pubPEM), pubPEM...), "trailing data after the PEM block"},
		{"trailing DER", enc("PUBLIC KEY", append(slices.Clone(pubDER.Bytes), 0)), "trailing data"},
		{"not PKIX", enc("PUBLIC KEY", privDER.Bytes), "invalid key: "},
		{"RSA", pkix(&rsaKey.PublicKey), "an RSA key, want Ed25519"},
		{"ECDSA", pkix(&ecKey.PublicKey), "an ECDSA key, want Ed25519"},
		{"X25519", pkix(xKey.PublicKey()), "an ECDH (X25519) key, want Ed25519"},
	} {
		_, err := approval.DecodePublicKeyPEM(tt.data)
		require.ErrorIs(t, err, approval.ErrInvalidKey, tt.name)
		require.ErrorContains(t, err, tt.want, tt.name)
		require.ErrorContains(t, err, "approval: decode public key: ", tt.name)
	}

	// Encoding refuses what is not an Ed25519 key of the right size.
	for _, k := range []ed25519.PrivateKey{nil, priv[:32], append(slices.Clone(priv), 0)} {
		_, err := approval.EncodePrivateKeyPEM(k)
		require.ErrorIs(t, err, approval.ErrInvalidKey, "%d bytes", len(k))
		require.ErrorContains(t, err, "bytes, want 64")
	}
	other := slices.Clone(priv)
	other[40] ^= 1 // a public half that is not the seed's
	_, err = approval.EncodePrivateKeyPEM(other)
	require.ErrorIs(t, err, approval.ErrInvalidKey)
	require.ErrorContains(t, err, "public half does not match the seed")
	for _, k := range []ed25519.PublicKey{nil, pub[:31], append(slices.Clone(pub), 0)} {
		_, err := approval.EncodePublicKeyPEM(k)
		require.ErrorIs(t, err, approval.ErrInvalidKey, "%d bytes", len(k))
		require.ErrorContains(t, err, "bytes, want 32")
	}
}

func TestLoadOrCreateKeyFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "gate.key")

	priv, created, err := approval.LoadOrCreateKeyFile(path)
	require.NoError(t, err)
	require.True(t, created)
	require.Len(t, priv, ed25519.PrivateKeySize)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	if runtime.GOOS != "windows" {
		require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	fromFile, err := approval.DecodePrivateKeyPEM(data)
	require.NoError(t, err)
	require.Equal(t, priv, fromFile)

	again, created, err := approval.LoadOrCreateKeyFile(path)
	require.NoError(t, err)
	require.False(t, created, "the second call loads the file")
	require.Equal(t, priv, again)

	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file is left behind")

}

// TestLoadOrCreateKeyFileRelative: a bare file name is in the working
// directory. Not parallel: it changes directory.
func TestLoadOrCreateKeyFileRelative(t *testing.T) {
	t.Chdir(t.TempDir())
	priv, created, err := approval.LoadOrCreateKeyFile("gate.key")
	require.NoError(t, err)
	require.True(t, created)
	again, created, err := approval.LoadOrCreateKeyFile("gate.key")
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, priv, again)
}

// TestLoadOrCreateKeyFileNeverReplaces: a file that is there but not a key
// is an error, and stays as it was.
func TestLoadOrCreateKeyFileNeverReplaces(t *testing.T) {
	t.Parallel()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(rsaKey)
	require.NoError(t, err)
	pub, _ := newKey(t)
	pubPEM, err := approval.EncodePublicKeyPEM(pub)
	require.NoError(t, err)

	for name, content := range map[string][]byte{
		"empty":      {},
		"garbage":    []byte("not a key\n"),
		"RSA key":    pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		"public key": pubPEM,
	} {
		path := filepath.Join(t.TempDir(), "gate.key")
		require.NoError(t, os.WriteFile(path, content, 0o600))
		priv, created, err := approval.LoadOrCreateKeyFile(path)
		require.ErrorIs(t, err, approval.ErrInvalidKey, name)
		require.ErrorContains(t, err, path, name)
		require.False(t, created, name)
		require.Nil(t, priv, name)
		after, err := os.ReadFile(path)
		require.NoError(t, err)
		require.Equal(t, content, after, "%s: the file is untouched", name)
	}

	// Not a file at all, or in no directory: the file system's error.
	dir := t.TempDir()
	_, _, err = approval.LoadOrCreateKeyFile(dir)
	require.Error(t, err)
	require.NotErrorIs(t, err, approval.ErrInvalidKey)
	_, _, err = approval.LoadOrCreateKeyFile(filepath.Join(dir, "missing", "gate.key"))
	require.Error(t, err)
	require.ErrorContains(t, err, "create key file")
	if runtime.GOOS != "windows" && os.Getuid() != 0 {
		// An unreadable key is not a missing one.
		path := filepath.Join(dir, "unreadable.key")
		_, _, err := approval.LoadOrCreateKeyFile(path)
		require.NoError(t, err)
		require.NoError(t, os.Chmod(path, 0))
		_, created, err := approval.LoadOrCreateKeyFile(path)
		require.ErrorIs(t, err, os.ErrPermission)
		require.False(t, created)
	}
}

// TestLoadOrCreateKeyFileRace: processes starting together agree on one
// key, and exactly one of them creates it.
func TestLoadOrCreateKeyFileRace(t *testing.T) {
	t.Parallel()
	const n = 8
	for range 5 {
		path := filepath.Join(t.TempDir(), "gate.key")
		keys := make([]ed25519.PrivateKey, n)
		created := make([]bool, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				keys[i], created[i], errs[i] = approval.LoadOrCreateKeyFile(path)
			})
		}
		close(start)
		wg.Wait()
		creators := 0
		for i := range n {
			require.NoError(t, errs[i])
			require.Equal(t, keys[0], keys[i])
			if created[i] {
				creators++
			}
		}
		require.Equal(t, 1, creators)
	}
}

// records is a slog.Handler that keeps what it is given.
type records struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *records) WithGroup(string) slog.Handler            { return r }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	r.recs = append(r.recs, rec.Clone())
	r.mu.Unlock()
	return nil
}

// newGateWarnings returns the messages of the warnings New logs for a gate
// signing with key.
func newGateWarnings(t *testing.T, key ed25519.PrivateKey, baseURL string) []string {
	t.Helper()
	h := &records{}
	g, err := approval.New(approval.Config{
		Store: memstore.New(), SigningKey: key, BaseURL: baseURL, Logger: slog.New(h),
	})
	require.NoError(t, err)
	require.NoError(t, g.Close(context.Background()))
	var msgs []string
	for _, r := range h.recs {
		if r.Level >= slog.LevelWarn {
			msgs = append(msgs, r.Message)
		}
	}
	return msgs
}

// TestNewWarnsAboutEphemeralKey: a gate that sends links signed by a key
// that dies with the process says so once, at New.
func TestNewWarnsAboutEphemeralKey(t *testing.T) {
	t.Parallel()
	const url = "https://approvals.example.com"
	generated := func() ed25519.PrivateKey {
		_, priv, err := approval.GenerateKeys()
		require.NoError(t, err)
		return priv
	}

	t.Run("generated key with BaseURL", func(t *testing.T) {
		t.Parallel()
		key := generated()
		h := &records{}
		_, err := approval.New(approval.Config{Store: memstore.New(), SigningKey: key, BaseURL: url, Logger: slog.New(h)})
		require.NoError(t, err)
		require.Len(t, h.recs, 1)
		r := h.recs[0]
		require.Equal(t, slog.LevelWarn, r.Level)
		require.Contains(t, r.Message, "LoadOrCreateKeyFile")
		var kid string
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "kid" {
				kid = a.Value.String()
			}
			return true
		})
		require.Equal(t, approval.KeyID(key.Public().(ed25519.PublicKey)), kid)
	})
	t.Run("generated key without BaseURL", func(t *testing.T) {
		t.Parallel()
		require.Empty(t, newGateWarnings(t, generated(), ""), "no links are sent")
	})
	t.Run("generated key, then encoded", func(t *testing.T) {
		t.Parallel()
		key := generated()
		require.NotEmpty(t, newGateWarnings(t, key, url))
		_, err := approval.EncodePrivateKeyPEM(key)
		require.NoError(t, err)
		require.Empty(t, newGateWarnings(t, key, url))
	})
	t.Run("generated key, saved elsewhere and decoded", func(t *testing.T) {
		t.Parallel()
		key := generated()
		der, err := x509.MarshalPKCS8PrivateKey(key)
		require.NoError(t, err)
		decoded, err := approval.DecodePrivateKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
		require.NoError(t, err)
		require.Empty(t, newGateWarnings(t, decoded, url))
		require.Empty(t, newGateWarnings(t, key, url), "the key read back exists outside the process")
	})
	t.Run("key from a file", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "gate.key")
		for range 2 { // created, then loaded
			key, _, err := approval.LoadOrCreateKeyFile(path)
			require.NoError(t, err)
			require.Empty(t, newGateWarnings(t, key, url))
		}
	})
	t.Run("key from elsewhere", func(t *testing.T) {
		t.Parallel()
		_, key := newKey(t)
		require.Empty(t, newGateWarnings(t, key, url), "assumed durable")
	})
	t.Run("verify-only gate", func(t *testing.T) {
		t.Parallel()
		pub, _, err := approval.GenerateKeys()
		require.NoError(t, err)
		h := &records{}
		_, err = approval.New(approval.Config{Store: memstore.New(), VerifyKeys: []ed25519.PublicKey{pub}, BaseURL: url, Logger: slog.New(h)})
		require.NoError(t, err)
		require.Empty(t, h.recs)
	})
}

// TestEphemeralKeysAreBounded: the process remembers only its most recent
// generated keys, so generating keys without end does not grow memory
// without end. Not parallel: it pushes other tests' keys out.
func TestEphemeralKeysAreBounded(t *testing.T) {
	_, first, err := approval.GenerateKeys()
	require.NoError(t, err)
	var last ed25519.PrivateKey
	for range 1024 {
		_, last, err = approval.GenerateKeys()
		require.NoError(t, err)
	}
	require.Empty(t, newGateWarnings(t, first, "https://x.example"), "the oldest key is forgotten")
	require.NotEmpty(t, newGateWarnings(t, last, "https://x.example"))
}
