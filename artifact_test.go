package approval_test

import (
	"crypto/ed25519"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// approvedArtifact runs a transfer through two finance approvals and
// returns the fixture, the action, and the artifact Guard returned.
func approvedArtifact(t *testing.T) (*fixture, approval.Action, []byte) {
	t.Helper()
	f := newFixture(t)
	a := transfer(5000)
	id := f.Pending(a)
	_, err := f.Decide(id, "alice", approval.VerdictApprove)
	require.NoError(t, err)
	_, err = f.Decide(id, "bob", approval.VerdictApprove)
	require.NoError(t, err)
	res, err := f.gate.Guard(f.ctx, a)
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeApproved, res.Status)
	require.NotEmpty(t, res.Artifact)
	return f, a, res.Artifact
}

func (f *fixture) pub() []ed25519.PublicKey {
	return []ed25519.PublicKey{f.priv.Public().(ed25519.PublicKey)}
}

func TestArtifactBindsTheApproval(t *testing.T) {
	t.Parallel()
	f, a, art := approvedArtifact(t)
	got, err := approval.VerifyArtifactAt(art, a, f.pub(), f.clock.Now())
	require.NoError(t, err)
	r := f.Get(got.RequestID)
	require.Equal(t, approval.StatusConsumed, r.Status)
	require.Equal(t, approval.ArtifactVersion, got.Version)
	require.Equal(t, approval.KeyID(f.pub()[0]), got.KeyID)
	require.Equal(t, r.ActionHash, got.ActionHash)
	require.Equal(t, r.PayloadHash, got.PayloadHash)
	h, _ := f.gate.PolicyHash("high_spend")
	require.Equal(t, []approval.PolicyRef{{Name: "high_spend", Hash: h}}, got.Policies)
	require.Len(t, got.Votes, 2)
	for i, who := range []string{"alice", "bob"} {
		v := got.Votes[i]
		require.Equal(t, who, v.Approver)
		require.Equal(t, approval.VerdictApprove, v.Verdict)
		require.Equal(t, r.Votes[i].TokenID, v.TokenID)
		require.True(t, r.Votes[i].At.Equal(v.At))
	}
	require.Equal(t, r.Reason, got.Reason)
	require.True(t, got.IssuedAt.Equal(r.ResolvedAt))
	require.True(t, got.ExpiresAt.Equal(r.ExpiresAt))

	// Fetched later: the same bytes.
	again, err := f.gate.Artifact(f.ctx, got.RequestID)
	require.NoError(t, err)
	require.Equal(t, art, again)
}

func TestArtifactRefusesTampering(t *testing.T) {
	t.Parallel()
	f, a, art := approvedArtifact(t)
	now := f.clock.Now()
	// edit changes the artifact and writes it back in canonical form
	// (json.Marshal sorts a map's keys), "sig" last.
	edit := func(change func(m map[string]any)) []byte {
		var m map[string]any
		require.NoError(t, json.Unmarshal(art, &m))
		change(m)
		sig, hasSig := m["sig"]
		delete(m, "sig")
		b, err := json.Marshal(m)
		require.NoError(t, err)
		if !hasSig {
			return b
		}
		s, err := json.Marshal(sig)
		require.NoError(t, err)
		return append(append(append(b[:len(b)-1], `,"sig":`...), s...), '}')
	}
	_, err := approval.VerifyArtifactAt(edit(func(map[string]any) {}), a, f.pub(), now)
	require.NoError(t, err, "edit writes the canonical form: what it changes is what is refused")
	vote := func(m map[string]any) map[string]any { return m["votes"].([]any)[0].(map[string]any) }
	policy := func(m map[string]any) map[string]any { return m["policies"].([]any)[0].(map[string]any) }
	for name, tc := range map[string]struct {
		art  []byte
		want error
	}{
		"reason":             {edit(func(m map[string]any) { m["reason"] = "approved on timeout" }), approval.ErrArtifactSignature},
		"request_id":         {edit(func(m map[string]any) { m["request_id"] = "req_other" }), approval.ErrArtifactSignature},
		"action_hash":        {edit(func(m map[string]any) { m["action_hash"] = "00" + m["action_hash"].(string)[2:] }), approval.ErrArtifactSignature},
		"payload_hash":       {edit(func(m map[string]any) { m["payload_hash"] = "00" + m["payload_hash"].(string)[2:] }), approval.ErrArtifactSignature},
		"issued_at":          {edit(func(m map[string]any) { m["issued_at"] = "2026-02-01T09:00:00Z" }), approval.ErrArtifactSignature},
		"expires_at":         {edit(func(m map[string]any) { m["expires_at"] = "2099-01-01T00:00:00Z" }), approval.ErrArtifactSignature},
		"policy name":        {edit(func(m map[string]any) { policy(m)["name"] = "low_spend" }), approval.ErrArtifactSignature},
		"policy hash":        {edit(func(m map[string]any) { policy(m)["hash"] = "ab" }), approval.ErrArtifactSignature},
		"a policy dropped":   {edit(func(m map[string]any) { m["policies"] = []any{} }), approval.ErrArtifactSignature},
		"vote approver":      {edit(func(m map[string]any) { vote(m)["approver"] = "mallory" }), approval.ErrArtifactSignature},
		"vote on_behalf_of":  {edit(func(m map[string]any) { vote(m)["on_behalf_of"] = "carol" }), approval.ErrArtifactSignature},
		"vote verdict":       {edit(func(m map[string]any) { vote(m)["verdict"] = "deny" }), approval.ErrArtifactSignature},
		"vote at":            {edit(func(m map[string]any) { vote(m)["at"] = "2026-03-01T10:00:00Z" }), approval.ErrArtifactSignature},
		"vote token_id":      {edit(func(m map[string]any) { vote(m)["token_id"] = "tok" }), approval.ErrArtifactSignature},
		"a vote dropped":     {edit(func(m map[string]any) { m["votes"] = m["votes"].([]any)[:1] }), approval.ErrArtifactSignature},
		"signature":          {edit(func(m map[string]any) { m["sig"] = "AAAA" + m["sig"].(string)[4:] }), approval.ErrArtifactSignature},
		"kid":                {edit(func(m map[string]any) { m["kid"] = "other" }), approval.ErrArtifactUnknownKey},
		"version":            {edit(func(m map[string]any) { m["v"] = 2 }), approval.ErrArtifactMalformed},
		"an unknown field":   {edit(func(m map[string]any) { m["break_glass"] = false }), approval.ErrArtifactMalformed},
		"a missing field":    {edit(func(m map[string]any) { delete(m, "payload_hash") }), approval.ErrArtifactMalformed},
		"not JSON":           {[]byte("approved"), approval.ErrArtifactMalformed},
		"two values":         {append(append([]byte{}, art...), art...), approval.ErrArtifactMalformed},
		"sig not last":       {[]byte(strings.Replace(string(art), `{"action_hash"`, `{"sig":"x","action_hash"`, 1)), approval.ErrArtifactMalformed},
		"another spelling":   {[]byte(strings.Replace(string(art), `"kid":"`, `"kid" : "`, 1)), approval.ErrArtifactMalformed},
		"a time respelled":   {edit(func(m map[string]any) { m["expires_at"] = strings.Replace(m["expires_at"].(string), "Z", "+00:00", 1) }), approval.ErrArtifactMalformed},
		"the empty artifact": {nil, approval.ErrArtifactMalformed},
	} {
		_, err := approval.VerifyArtifactAt(tc.art, a, f.pub(), now)
		require.ErrorIs(t, err, tc.want, name)
	}

	other, _, err := approval.GenerateKeys()
	require.NoError(t, err)
	_, err = approval.VerifyArtifactAt(art, a, []ed25519.PublicKey{other}, now)
	require.ErrorIs(t, err, approval.ErrArtifactUnknownKey, "another key")

	got, err := approval.VerifyArtifactAt(art, a, f.pub(), now)
	require.NoError(t, err)
	_, err = approval.VerifyArtifactAt(art, a, f.pub(), got.ExpiresAt)
	require.ErrorIs(t, err, approval.ErrArtifactExpired)

	b := a
	b.Payload = append([]byte(nil), a.Payload...)
	b.Payload[len(b.Payload)-2]++ // 5000 -> 5001
	_, err = approval.VerifyArtifactAt(art, b, f.pub(), now)
	require.ErrorIs(t, err, approval.ErrArtifactPayloadMismatch, "one byte of the payload")

	c := a
	c.RequestedBy = "user-2"
	_, err = approval.VerifyArtifactAt(art, c, f.pub(), now)
	require.ErrorIs(t, err, approval.ErrArtifactActionMismatch, "another requester")

	d := a
	d.Cost = &approval.Cost{Amount: 5000, Currency: "EUR"}
	_, err = approval.VerifyArtifactAt(art, d, f.pub(), now)
	require.ErrorIs(t, err, approval.ErrArtifactActionMismatch, "another cost")

	// The canonical spelling of the same action verifies.
	e := a
	e.Name = "Wire-Transfer"
	_, err = approval.VerifyArtifactAt(art, e, f.pub(), now)
	require.NoError(t, err)
}

func TestNoArtifactWithoutApproval(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	pending := f.Pending(transfer(2000))
	denied := f.Pending(transfer(3000))
	_, err := f.Decide(denied, "alice", approval.VerdictDeny)
	require.NoError(t, err)
	cancelled := f.Pending(transfer(4000))
	_, err = f.gate.Cancel(f.ctx, cancelled, "user-1", "not needed")
	require.NoError(t, err)
	for i, id := range []string{pending, denied, cancelled} {
		_, err := f.gate.Artifact(f.ctx, id)
		require.ErrorIs(t, err, approval.ErrNoArtifact, "request %d", i)
	}
	res, err := f.gate.Guard(f.ctx, transfer(3000))
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeDenied, res.Status) // held
	require.Nil(t, res.Artifact)

	timedOut := f.Pending(transfer(6000))
	f.clock.Advance(25 * time.Hour)
	_, err = f.gate.Tick(f.ctx, 0)
	require.NoError(t, err)
	require.Equal(t, approval.StatusTimedOut, f.Get(timedOut).Status)
	_, err = f.gate.Artifact(f.ctx, timedOut)
	require.ErrorIs(t, err, approval.ErrNoArtifact)

	// No policy matched: nobody approved anything, and there is no artifact.
	res, err = f.gate.Guard(f.ctx, transfer(10))
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeApproved, res.Status)
	require.Nil(t, res.Artifact)

	_, err = f.gate.Artifact(f.ctx, "req_nope")
	require.ErrorIs(t, err, approval.ErrNotFound)
}

// TestGoldenArtifact: an artifact committed as test data still verifies,
// so the format does not drift.
func TestGoldenArtifact(t *testing.T) {
	t.Parallel()
	art, err := os.ReadFile("testdata/artifacts/golden.json")
	require.NoError(t, err)
	actionJSON, err := os.ReadFile("testdata/artifacts/golden_action.json")
	require.NoError(t, err)
	pemKey, err := os.ReadFile("testdata/artifacts/golden_key.pub.pem")
	require.NoError(t, err)
	pub, err := approval.DecodePublicKeyPEM(pemKey)
	require.NoError(t, err)
	var a approval.Action
	require.NoError(t, json.Unmarshal(actionJSON, &a))
	got, err := approval.VerifyArtifactAt(art, a, []ed25519.PublicKey{pub}, time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC))
	require.NoError(t, err)
	require.Len(t, got.Votes, 2)
	_, err = approval.VerifyArtifactAt(art, a, []ed25519.PublicKey{pub}, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))
	require.ErrorIs(t, err, approval.ErrArtifactExpired)
}
