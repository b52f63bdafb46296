package main

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/testkit"
	"github.com/signoff/approval/memstore"
)

func TestKeygen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out := filepath.Join(dir, "key.pem")
	r := cli(t, "keygen", "-out", out)
	requireExit(t, r, exitOK)

	privPEM, err := os.ReadFile(out)
	require.NoError(t, err)
	priv, err := approval.DecodePrivateKeyPEM(privPEM)
	require.NoError(t, err)
	pubPEM, err := os.ReadFile(out + ".pub")
	require.NoError(t, err)
	pub, err := approval.DecodePublicKeyPEM(pubPEM)
	require.NoError(t, err)
	require.Equal(t, priv.Public(), pub, "the public key is the private key's")
	require.Contains(t, r.stdout, "key ID "+approval.KeyID(pub)+"\n")

	st, err := os.Stat(out)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "private key mode")
	st, err = os.Stat(out + ".pub")
	require.NoError(t, err)
	require.Zero(t, st.Mode().Perm()&0o022, "public key writable by others")

	t.Run("refuses to overwrite", func(t *testing.T) {
		r := cli(t, "keygen", "-out", out)
		requireExit(t, r, exitUsage)
		require.Contains(t, r.stderr, "refusing to overwrite")
		after, err := os.ReadFile(out)
		require.NoError(t, err)
		require.Equal(t, privPEM, after)
	})
	t.Run("refuses an existing public key file, writing nothing", func(t *testing.T) {
		pubPath := filepath.Join(dir, "taken.pub")
		require.NoError(t, os.WriteFile(pubPath, []byte("mine"), 0o644))
		other := filepath.Join(dir, "other.pem")
		r := cli(t, "keygen", "-out", other, "-pub", pubPath)
		requireExit(t, r, exitUsage)
		require.NoFileExists(t, other)
		b, err := os.ReadFile(pubPath)
		require.NoError(t, err)
		require.Equal(t, "mine", string(b))
	})
	t.Run("-pub", func(t *testing.T) {
		other, pubPath := filepath.Join(dir, "b.pem"), filepath.Join(dir, "b-public.pem")
		requireExit(t, cli(t, "keygen", "-out", other, "-pub", pubPath), exitOK)
		require.FileExists(t, pubPath)
		require.NoFileExists(t, other+".pub")
	})
	t.Run("missing -out", func(t *testing.T) {
		requireExit(t, cli(t, "keygen"), exitUsage)
	})
}

const golden = "../../testdata/artifacts/"

// verifyArtifact runs verify-artifact with one key, at the given time.
func verifyArtifact(t *testing.T, artifact, action, key, at string) result {
	t.Helper()
	return cli(t, "verify-artifact", "-artifact", artifact, "-action", action, "-key", key, "-at", at)
}

// edited writes a copy of the file at path with old replaced by new, and
// returns the copy's path.
func edited(t *testing.T, path, old, new string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Contains(t, string(b), old)
	out := filepath.Join(t.TempDir(), filepath.Base(path))
	require.NoError(t, os.WriteFile(out, []byte(strings.Replace(string(b), old, new, 1)), 0o644))
	return out
}

func TestVerifyArtifact(t *testing.T) {
	t.Parallel()
	art, action, key := golden+"golden.json", golden+"golden_action.json", golden+"golden_key.pub.pem"
	const at = "2026-03-01T09:30:00Z"

	t.Run("golden", func(t *testing.T) {
		t.Parallel()
		r := verifyArtifact(t, art, action, key, at)
		requireExit(t, r, exitOK)
		require.Contains(t, r.stdout, "req_01a23b1c1377795c9c97e6258b38fe87")
		require.Contains(t, r.stdout, "high_spend")
		require.Contains(t, r.stdout, "approve alice")
		require.Contains(t, r.stdout, "approve bob")
		require.Contains(t, r.stdout, "expires 2026-03-01T10:00:00Z")
	})
	t.Run("several keys", func(t *testing.T) {
		t.Parallel()
		other := filepath.Join(t.TempDir(), "other.pem")
		requireExit(t, cli(t, "keygen", "-out", other), exitOK)
		r := cli(t, "verify-artifact", "-artifact", art, "-action", action, "-key", other+".pub", "-key", key, "-at", at)
		requireExit(t, r, exitOK)
	})
	t.Run("tampered vote", func(t *testing.T) {
		t.Parallel()
		r := verifyArtifact(t, edited(t, art, `"approver":"alice"`, `"approver":"mallory"`), action, key, at)
		requireExit(t, r, exitFailed)
		require.Contains(t, r.stderr, "signature")
		require.True(t, strings.HasPrefix(r.stderr, "approval: "), r.stderr)
	})
	t.Run("another key", func(t *testing.T) {
		t.Parallel()
		other := filepath.Join(t.TempDir(), "other.pem")
		requireExit(t, cli(t, "keygen", "-out", other), exitOK)
		// A private key serves for its public half.
		for _, k := range []string{other + ".pub", other} {
			r := verifyArtifact(t, art, action, k, at)
			requireExit(t, r, exitFailed)
			require.Contains(t, r.stderr, "unknown key")
		}
	})
	t.Run("expired", func(t *testing.T) {
		t.Parallel()
		r := verifyArtifact(t, art, action, key, "2027-01-01T00:00:00Z")
		requireExit(t, r, exitFailed)
		require.Contains(t, r.stderr, "expired")
	})
	t.Run("payload edited", func(t *testing.T) {
		t.Parallel()
		// The payload is base64 in the action's JSON: its last quantum,
		// "NTAwMH0=", is `5000}`; "OTAwMH0=" is `9000}`.
		r := verifyArtifact(t, art, edited(t, action, `NTAwMH0=`, `OTAwMH0=`), key, at)
		requireExit(t, r, exitFailed)
		require.Contains(t, r.stderr, "payload")
	})
	t.Run("payload as JSON", func(t *testing.T) {
		t.Parallel()
		// The payload asked for, written as JSON (white space and key
		// order do not change its hash), as text, and in base64.
		base := `{"name":"wire-transfer","requested_by":"user-1","cost":{"amount":5000,"currency":"USD"},`
		for name, p := range map[string][2]string{
			"JSON": {`"payload":{"amount": 5000, "to": "DE89 3704 0044 0532 0130 00"}`,
				`"payload":{"amount": 9000, "to": "DE89 3704 0044 0532 0130 00"}`},
			"payload_text": {`"payload_text":"{\"to\":\"DE89 3704 0044 0532 0130 00\",\"amount\":5000}"`,
				`"payload_text":"{\"to\":\"DE89 3704 0044 0532 0130 00\",\"amount\":9000}"`},
			"payload_base64": {`"payload_base64":"eyJ0byI6IkRFODkgMzcwNCAwMDQ0IDA1MzIgMDEzMCAwMCIsImFtb3VudCI6NTAwMH0="`,
				`"payload_base64":"eyJ0byI6IkRFODkgMzcwNCAwMDQ0IDA1MzIgMDEzMCAwMCIsImFtb3VudCI6OTAwMH0="`},
		} {
			file := filepath.Join(t.TempDir(), "action.json")
			require.NoError(t, os.WriteFile(file, []byte(base+p[0]+`}`), 0o644))
			requireExit(t, verifyArtifact(t, art, file, key, at), exitOK)

			other := filepath.Join(t.TempDir(), "other.json")
			require.NoError(t, os.WriteFile(other, []byte(base+p[1]+`}`), 0o644))
			r := verifyArtifact(t, art, other, key, at)
			requireExit(t, r, exitFailed)
			require.Contains(t, r.stderr, "another payload", name)
		}
		file := filepath.Join(t.TempDir(), "both.json")
		require.NoError(t, os.WriteFile(file, []byte(base+`"payload":{"a":1},"payload_text":"x"}`), 0o644))
		r := verifyArtifact(t, art, file, key, at)
		requireExit(t, r, exitUsage)
		require.Contains(t, r.stderr, "more than one")
	})
	t.Run("action edited", func(t *testing.T) {
		t.Parallel()
		r := verifyArtifact(t, art, edited(t, action, `"amount": 5000`, `"amount": 5001`), key, at)
		requireExit(t, r, exitFailed)
		require.Contains(t, r.stderr, "another action")
	})
	t.Run("usage errors", func(t *testing.T) {
		t.Parallel()
		for name, args := range map[string][]string{
			"missing -artifact": {"-action", action, "-key", key},
			"missing -action":   {"-artifact", art, "-key", key},
			"missing -key":      {"-artifact", art, "-action", action},
			"bad -at":           {"-artifact", art, "-action", action, "-key", key, "-at", "tomorrow"},
			"unreadable file":   {"-artifact", art + ".missing", "-action", action, "-key", key},
			"not a key":         {"-artifact", art, "-action", action, "-key", art},
		} {
			r := cli(t, append([]string{"verify-artifact"}, args...)...)
			requireExit(t, r, exitUsage)
			require.True(t, strings.HasPrefix(r.stderr, "approval"), "%s: %s", name, r.stderr)
		}
	})
}

// TestVerifyArtifactPasskey: an artifact whose vote a passkey confirmed
// verifies offline with the gate's key alone, and says so.
func TestVerifyArtifactPasskey(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, priv, err := approval.GenerateKeys()
	require.NoError(t, err)
	g, err := approval.New(approval.Config{Store: memstore.New(), SigningKey: priv, Logger: slog.New(slog.DiscardHandler),
		Passkeys: approval.PasskeyConfig{RPID: "ops.example.com", Origins: []string{"https://ops.example.com"}}})
	require.NoError(t, err)
	defer g.Close(context.Background())
	require.NoError(t, g.SetPolicy("payments", approval.Policy{Match: approval.Name("wire-transfer"),
		Approvers: []approval.Approver{approval.User("alice")}, RequiredApprovals: 1, RequirePasskey: true}))
	auth := testkit.NewAuthenticator("ops.example.com", "https://ops.example.com")
	_, err = g.RegisterPasskey(ctx, "alice", approval.Passkey{ID: auth.CredentialID(), Owner: "alice",
		Algorithm: approval.PasskeyES256, PublicKey: auth.PublicKey(), RPID: "ops.example.com"})
	require.NoError(t, err)
	action := approval.Action{Name: "wire-transfer", RequestedBy: "dave", Payload: []byte(`{"amount":5000}`)}
	res, err := g.Guard(ctx, action)
	require.NoError(t, err)
	tok, err := g.IssueToken(res.RequestID, "alice", approval.VerdictApprove, time.Hour)
	require.NoError(t, err)
	claims, err := g.VerifyToken(tok)
	require.NoError(t, err)
	r, err := g.Get(ctx, res.RequestID)
	require.NoError(t, err)
	ad, cd, sig := auth.Assert(approval.PasskeyChallenge(r.ID, r.ActionHash, r.PayloadHash, approval.VerdictApprove, claims.TokenID))
	_, err = g.Decide(ctx, r.ID, approval.Decision{Token: tok, Verdict: approval.VerdictApprove,
		Passkey: &approval.PasskeyAssertion{CredentialID: auth.CredentialID(), AuthenticatorData: ad, ClientDataJSON: cd, Signature: sig}})
	require.NoError(t, err)
	art, err := g.Artifact(ctx, r.ID)
	require.NoError(t, err)

	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, b, 0o600))
		return p
	}
	pub, err := approval.EncodePublicKeyPEM(priv.Public().(ed25519.PublicKey))
	require.NoError(t, err)
	actionJSON, err := json.Marshal(action)
	require.NoError(t, err)
	out := cli(t, "verify-artifact", "-artifact", write("art.json", art), "-action", write("action.json", actionJSON), "-key", write("key.pub.pem", pub))
	requireExit(t, out, exitOK)
	sum := sha256.Sum256(auth.PublicKey())
	require.Contains(t, out.stdout, "confirmed with passkey "+auth.CredentialID()+" for ops.example.com, key sha256:"+hex.EncodeToString(sum[:]))
}
