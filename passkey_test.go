package approval_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/testkit"
)

const (
	testRPID   = "ops.example.com"
	testOrigin = "https://ops.example.com"
)

// passkeyFixture is the finance fixture with passkeys on, and a policy
// over payments that requires one for each approval.
func passkeyFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t, func(c *approval.Config) {
		c.Passkeys = approval.PasskeyConfig{RPID: testRPID, Origins: []string{testOrigin}}
	})
	require.NoError(t, f.gate.SetPolicy("high_spend", approval.Policy{
		Match:             approval.CostAtLeast(1000, "USD"),
		Approvers:         []approval.Approver{approval.Group("finance")},
		RequiredApprovals: 2,
		RequirePasskey:    true,
	}))
	return f
}

// register registers a fresh passkey for who and returns its
// authenticator.
func (f *fixture) register(who string) *testkit.Authenticator {
	f.t.Helper()
	a := testkit.NewAuthenticator(testRPID, testOrigin)
	_, err := f.gate.RegisterPasskey(f.ctx, who, approval.Passkey{ID: a.CredentialID(), Owner: who, Name: "laptop",
		Algorithm: approval.PasskeyES256, PublicKey: a.PublicKey(), RPID: testRPID})
	require.NoError(f.t, err)
	return a
}

// passkeyDecision is who's decision on request id, with a fresh token and
// an assertion by a of the challenge that binds it.
func (f *fixture) passkeyDecision(id, who string, v approval.Verdict, a *testkit.Authenticator) approval.Decision {
	f.t.Helper()
	tok := f.Token(id, who, v)
	claims, err := f.gate.VerifyToken(tok)
	require.NoError(f.t, err)
	r := f.Get(id)
	actionHash, payloadHash := r.ActionHash, r.PayloadHash
	if r.Edit != nil {
		actionHash, payloadHash = r.Edit.ActionHash, r.Edit.PayloadHash
	}
	ad, cd, sig := a.Assert(approval.PasskeyChallenge(id, actionHash, payloadHash, v, claims.TokenID))
	return approval.Decision{Token: tok, Verdict: v, Passkey: &approval.PasskeyAssertion{
		CredentialID: a.CredentialID(), AuthenticatorData: ad, ClientDataJSON: cd, Signature: sig}}
}

// TestPasskeyStepUp: under a policy with RequirePasskey, each approval
// counts only with the approver's own passkey's assertion of exactly
// this vote; the vote, its audit event and the artifact keep it, and the
// artifact verifies offline with the passkey's key.
func TestPasskeyStepUp(t *testing.T) {
	f := passkeyFixture(t)
	alice, bob := f.register("alice"), f.register("bob")
	id := f.Pending(transfer(5000))

	// No assertion: refused and audited.
	_, err := f.Decide(id, "alice", approval.VerdictApprove)
	require.ErrorIs(t, err, approval.ErrPasskey)
	last := f.lastEvent()
	require.Equal(t, approval.EventDecisionRejected, last.Type)
	require.Equal(t, "alice", last.Actor)
	require.Contains(t, last.Reason, "passkey")
	require.Empty(t, f.Get(id).Votes)

	// A denial needs none.
	other := f.Pending(transfer(7000))
	_, err = f.Decide(other, "carol", approval.VerdictDeny)
	require.NoError(t, err)

	d := f.passkeyDecision(id, "alice", approval.VerdictApprove, alice)
	r, err := f.gate.Decide(f.ctx, id, d)
	require.NoError(t, err)
	require.Len(t, r.Votes, 1)
	proof := r.Votes[0].Passkey
	require.NotNil(t, proof)
	require.Equal(t, alice.CredentialID(), proof.CredentialID)
	require.Equal(t, alice.PublicKey(), proof.PublicKey)
	vote := f.lastEvent()
	require.Equal(t, approval.EventDecisionApprove, vote.Type)
	require.Equal(t, proof.Digest(), vote.Passkey, "the audit event binds the assertion")

	r, err = f.gate.Decide(f.ctx, id, f.passkeyDecision(id, "bob", approval.VerdictApprove, bob))
	require.NoError(t, err)
	require.Equal(t, approval.StatusApproved, r.Status)

	art, err := f.gate.Artifact(f.ctx, id)
	require.NoError(t, err)
	got, err := approval.VerifyArtifactAt(art, transfer(5000), []ed25519.PublicKey{f.priv.Public().(ed25519.PublicKey)}, f.clock.Now())
	require.NoError(t, err)
	require.Len(t, got.Votes, 2)
	for i, a := range []*testkit.Authenticator{alice, bob} {
		require.NotNil(t, got.Votes[i].Passkey)
		require.Equal(t, a.PublicKey(), got.Votes[i].Passkey.PublicKey, "the artifact carries the approver's key")
	}
	f.events() // the trail verifies
}

// TestPasskeyAssertionBindsTheVote: an assertion counts for the one vote
// it was made for: not on another request, for another verdict, with
// another token, after the payload was edited, from another person's
// passkey, a revoked one, without user verification, from another
// origin or for another relying party. Each refusal is audited and
// changes nothing.
func TestPasskeyAssertionBindsTheVote(t *testing.T) {
	f := passkeyFixture(t)
	alice, bob := f.register("alice"), f.register("bob")
	id := f.Pending(transfer(5000))
	refused := func(t *testing.T, d approval.Decision, on string) {
		t.Helper()
		before := len(f.Get(on).Votes)
		_, err := f.gate.Decide(f.ctx, on, d)
		require.ErrorIs(t, err, approval.ErrPasskey)
		require.Equal(t, approval.EventDecisionRejected, f.lastEvent().Type)
		require.Len(t, f.Get(on).Votes, before)
	}

	t.Run("another request", func(t *testing.T) {
		other := f.Pending(transfer(6000))
		d := f.passkeyDecision(id, "alice", approval.VerdictApprove, alice)
		d.Token = f.Token(other, "alice", approval.VerdictApprove)
		refused(t, d, other)
	})
	t.Run("another token", func(t *testing.T) {
		d := f.passkeyDecision(id, "alice", approval.VerdictApprove, alice)
		d.Token = f.Token(id, "alice", approval.VerdictApprove)
		refused(t, d, id)
	})
	t.Run("another verdict", func(t *testing.T) {
		d := f.passkeyDecision(id, "alice", approval.VerdictApprove, alice)
		tok := f.Token(id, "alice", approval.VerdictDeny)
		d.Token, d.Verdict = tok, approval.VerdictDeny
		refused(t, d, id)
	})
	t.Run("another person's passkey", func(t *testing.T) {
		d := f.passkeyDecision(id, "alice", approval.VerdictApprove, bob)
		refused(t, d, id)
	})
	t.Run("no user verification", func(t *testing.T) {
		a := f.register("carol")
		a.Flags = 0x01
		refused(t, f.passkeyDecision(id, "carol", approval.VerdictApprove, a), id)
	})
	t.Run("another origin", func(t *testing.T) {
		a := f.register("dave")
		a.Origin = "https://evil.example"
		refused(t, f.passkeyDecision(id, "dave", approval.VerdictApprove, a), id)
	})
	t.Run("another relying party", func(t *testing.T) {
		a := testkit.NewAuthenticator(testRPID, testOrigin)
		_, err := f.gate.RegisterPasskey(f.ctx, "dave", approval.Passkey{ID: a.CredentialID(), Owner: "dave",
			Algorithm: approval.PasskeyES256, PublicKey: a.PublicKey(), RPID: testRPID})
		require.NoError(t, err)
		a.RPID = "evil.example"
		refused(t, f.passkeyDecision(id, "dave", approval.VerdictApprove, a), id)
	})
	t.Run("a forged signature", func(t *testing.T) {
		d := f.passkeyDecision(id, "alice", approval.VerdictApprove, alice)
		d.Passkey.Signature[len(d.Passkey.Signature)-1] ^= 1
		refused(t, d, id)
	})
	t.Run("after an edit of the payload", func(t *testing.T) {
		edited := f.Pending(transfer(8000))
		d := f.passkeyDecision(edited, "alice", approval.VerdictApprove, alice)
		// bob denies nothing but edits: an approver's edit is an approval
		// with a new payload, which itself needs bob's passkey.
		e := f.passkeyDecision(edited, "bob", approval.VerdictApprove, bob)
		e.Payload = []byte(`{"to":"DE89 3704 0044 0532 0130 00","amount":4000}`)
		_, err := f.gate.Decide(f.ctx, edited, e)
		require.ErrorIs(t, err, approval.ErrPasskey, "bob's assertion bound the payload before his edit")
		// With the edit's hashes bound, bob's edit and vote count.
		r := f.Get(edited)
		tok := f.Token(edited, "bob", approval.VerdictApprove)
		claims, err := f.gate.VerifyToken(tok)
		require.NoError(t, err)
		ea := transfer(8000)
		ea.Payload = e.Payload
		ah, ph, err := ea.Hashes()
		require.NoError(t, err)
		ad, cd, sig := bob.Assert(approval.PasskeyChallenge(r.ID, ah, ph, approval.VerdictApprove, claims.TokenID))
		e.Token, e.Passkey = tok, &approval.PasskeyAssertion{CredentialID: bob.CredentialID(), AuthenticatorData: ad, ClientDataJSON: cd, Signature: sig}
		_, err = f.gate.Decide(f.ctx, edited, e)
		require.NoError(t, err)
		// alice's assertion was made for the payload before the edit.
		refused(t, d, edited)
	})
	t.Run("a revoked passkey", func(t *testing.T) {
		d := f.passkeyDecision(id, "alice", approval.VerdictApprove, alice)
		_, err := f.gate.RevokePasskey(f.ctx, alice.CredentialID(), "alice", "laptop lost")
		require.NoError(t, err)
		refused(t, d, id)
		_, err = f.gate.RevokePasskey(f.ctx, alice.CredentialID(), "alice", "again")
		require.ErrorIs(t, err, approval.ErrConflict)
	})
	f.events() // every refusal is in a trail that verifies
}

// TestRegisterPasskey: only the owner registers their passkey, for the
// gate's relying party, with a key the gate can verify with; each
// registration is audited.
func TestRegisterPasskey(t *testing.T) {
	f := passkeyFixture(t)
	a := testkit.NewAuthenticator(testRPID, testOrigin)
	pk := approval.Passkey{ID: a.CredentialID(), Owner: "alice", Algorithm: approval.PasskeyES256, PublicKey: a.PublicKey(), RPID: testRPID}

	_, err := f.gate.RegisterPasskey(f.ctx, "bob", pk)
	require.ErrorIs(t, err, approval.ErrPasskey, "bob cannot register alice's passkey")
	wrong := pk
	wrong.RPID = "evil.example"
	_, err = f.gate.RegisterPasskey(f.ctx, "alice", wrong)
	require.ErrorIs(t, err, approval.ErrPasskey)
	wrong = pk
	wrong.Algorithm = approval.PasskeyEdDSA
	_, err = f.gate.RegisterPasskey(f.ctx, "alice", wrong)
	require.ErrorIs(t, err, approval.ErrPasskey, "an EC key is not EdDSA")
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	der, err := x509.MarshalPKIXPublicKey(&small.PublicKey)
	require.NoError(t, err)
	wrong = pk
	wrong.Algorithm, wrong.PublicKey = approval.PasskeyRS256, der
	_, err = f.gate.RegisterPasskey(f.ctx, "alice", wrong)
	require.ErrorIs(t, err, approval.ErrPasskey, "RSA under 2048 bits")
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	der, err = x509.MarshalPKIXPublicKey(&p384.PublicKey)
	require.NoError(t, err)
	wrong = pk
	wrong.PublicKey = der
	_, err = f.gate.RegisterPasskey(f.ctx, "alice", wrong)
	require.ErrorIs(t, err, approval.ErrPasskey, "ES256 is P-256")

	got, err := f.gate.RegisterPasskey(f.ctx, "Alice", pk)
	require.NoError(t, err)
	require.Equal(t, "alice", got.Owner)
	require.Equal(t, f.clock.Now(), got.CreatedAt)
	ev := f.lastEvent()
	require.Equal(t, approval.EventPasskeyRegistered, ev.Type)
	require.Equal(t, "alice", ev.Actor)
	require.Contains(t, ev.Reason, a.CredentialID())
	_, err = f.gate.RegisterPasskey(f.ctx, "alice", pk)
	require.ErrorIs(t, err, approval.ErrConflict)
	list, err := f.gate.ListPasskeys(f.ctx, "alice")
	require.NoError(t, err)
	require.Len(t, list, 1)

	// A gate without Config.Passkeys refuses passkeys and their policies.
	plain := newFixture(t)
	_, err = plain.gate.RegisterPasskey(plain.ctx, "alice", pk)
	require.ErrorIs(t, err, approval.ErrUnsupported)
	err = plain.gate.SetPolicy("strict", approval.Policy{Match: approval.Name("x"), Approvers: []approval.Approver{approval.User("alice")}, RequirePasskey: true})
	require.ErrorIs(t, err, approval.ErrInvalidPolicy)
	_, err = approval.New(approval.Config{Store: plain.store, SigningKey: plain.priv, Passkeys: approval.PasskeyConfig{RPID: testRPID}})
	require.ErrorIs(t, err, approval.ErrInvalidConfig, "an RP ID without origins")
}
