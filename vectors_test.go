package approval_test

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/wire"
)

// The test vectors in testdata/vectors are the canonical forms of
// docs/FORMATS.md as the code computes them: a sample audit trail, actions,
// artifacts and tokens, made with a fixed key. TestVectors builds them
// again and requires the committed files to be byte for byte what it
// builds, so neither the code nor the files can drift; go test -run
// TestVectors -update rewrites them (and a diff then shows what changed).
// testdata/vectors/verify.py recomputes every one of them independently
// (TestVectorsPython).

var updateVectors = flag.Bool("update", false, "rewrite testdata/vectors from the code")

const vectorDir = "testdata/vectors"

// vectorKey is the vectors' Ed25519 key: its seed is the SHA-256 of a
// fixed phrase, so anyone can derive it. It signs test vectors only.
func vectorKey() ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("github.com/signoff/approval test vectors v1"))
	return ed25519.NewKeyFromSeed(seed[:])
}

type keyVector struct {
	Comment      string `json:"comment"`
	Seed         string `json:"seed_hex"`
	PublicKey    string `json:"public_key_hex"`
	PublicKeyPEM string `json:"public_key_pem"`
	KeyID        string `json:"kid"`
}

type actionVector struct {
	Title       string      `json:"title"`
	Action      wire.Action `json:"action"`
	Canonical   string      `json:"canonical"`
	PayloadHash string      `json:"payload_hash"`
	ActionHash  string      `json:"action_hash"`
}

type eventVector struct {
	Event     approval.AuditEvent `json:"event"`
	Canonical string              `json:"canonical"`
}

type artifactVector struct {
	Title    string         `json:"title"`
	Artifact string         `json:"artifact"`
	Signed   string         `json:"signed"`
	Cases    []artifactCase `json:"cases"`
}

type artifactCase struct {
	Title    string      `json:"title"`
	At       time.Time   `json:"at"`
	Action   wire.Action `json:"action"`
	Artifact string      `json:"artifact,omitempty"` // when not the vector's own
	Keys     []string    `json:"public_keys_hex"`
	Expect   string      `json:"expect"`
}

type tokenVector struct {
	Title     string               `json:"title"`
	Token     string               `json:"token"`
	Payload   string               `json:"payload"`
	Claims    approval.TokenClaims `json:"claims"`
	At        time.Time            `json:"at"`
	PublicKey string               `json:"public_key_hex"`
	Expect    string               `json:"expect"`
}

// vectorFiles returns every vector file's name and content, built from
// the code.
func vectorFiles(t *testing.T) map[string]any {
	priv := vectorKey()
	pub := priv.Public().(ed25519.PublicKey)
	pem, err := approval.EncodePublicKeyPEM(pub)
	require.NoError(t, err)
	kid := approval.KeyID(pub)
	seed := sha256.Sum256([]byte("github.com/signoff/approval test vectors v1"))

	actions := sampleActions()
	av := make([]actionVector, len(actions))
	byTitle := map[string]approval.Action{}
	for i, s := range actions {
		a := s.action
		ah, ph, err := a.Hashes()
		require.NoError(t, err, s.title)
		canonical, err := a.CanonicalJSON()
		require.NoError(t, err)
		w := wire.Action{Action: a}
		w.Action.Payload = nil
		w.SetPayload(wire.Exact(a.Payload))
		av[i] = actionVector{Title: s.title, Action: w, Canonical: string(canonical), PayloadHash: ph, ActionHash: ah}
		byTitle[s.title] = a
	}

	trail := sampleTrail(t, priv, byTitle)
	ev := make([]eventVector, len(trail))
	for i := range trail {
		ev[i] = eventVector{Event: trail[i], Canonical: string(trail[i].CanonicalJSON())}
	}

	return map[string]any{
		"key.json": keyVector{
			Comment:   "The Ed25519 key of the test vectors: seed_hex is SHA-256(\"github.com/signoff/approval test vectors v1\"). For tests only.",
			Seed:      hex.EncodeToString(seed[:]),
			PublicKey: hex.EncodeToString(pub), PublicKeyPEM: string(pem), KeyID: kid,
		},
		"actions.json": map[string]any{
			"comment": "Actions in the outputs' JSON form (docs/FORMATS.md), each with the canonical JSON its action hash is the SHA-256 of.",
			"actions": av,
		},
		"audit.json": map[string]any{
			"comment": "An audit trail as stores keep it (\"event\", times without trailing zeros), each event with the canonical JSON its hash is the SHA-256 of (times with six fractional digits).",
			"events":  ev,
		},
		"artifacts.json": map[string]any{
			"comment":   "Approval artifacts signed by key.json's key; \"signed\" is the exact message the signature covers. Each case verifies one at a time against an action and keys, and names the outcome: ok, malformed, unknown_key, signature, expired, payload_mismatch or action_mismatch.",
			"artifacts": sampleArtifacts(t, priv, byTitle),
		},
		"tokens.json": map[string]any{
			"comment": "Decision tokens signed by key.json's key: base64url(payload) \".\" base64url(signature), unpadded. Outcomes: ok, signature, expired.",
			"tokens":  sampleTokens(t, priv),
		},
	}
}

// TestVectors: the committed vectors are what the code computes, and each
// verifies through the package's own API.
func TestVectors(t *testing.T) {
	t.Parallel()
	for name, v := range vectorFiles(t) {
		b, err := json.MarshalIndent(v, "", "  ")
		require.NoError(t, err)
		b = append(b, '\n')
		path := filepath.Join(vectorDir, name)
		if *updateVectors {
			require.NoError(t, os.WriteFile(path, b, 0o644))
			continue
		}
		got, err := os.ReadFile(path)
		require.NoError(t, err, "run go test -run TestVectors -update")
		require.Equal(t, string(b), string(got), "%s differs from what the code computes: a canonical form changed, or the file was edited", path)
	}
	checkVectorFiles(t)
}

// checkVectorFiles reads the committed files back and checks each vector
// with the public API, as a user of the package would.
func checkVectorFiles(t *testing.T) {
	read := func(name string, v any) {
		b, err := os.ReadFile(filepath.Join(vectorDir, name))
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(b, v))
	}
	var key keyVector
	read("key.json", &key)
	pub, err := approval.DecodePublicKeyPEM([]byte(key.PublicKeyPEM))
	require.NoError(t, err)
	require.Equal(t, key.PublicKey, hex.EncodeToString(pub))
	require.Equal(t, key.KeyID, approval.KeyID(pub))

	var actions struct{ Actions []actionVector }
	read("actions.json", &actions)
	require.GreaterOrEqual(t, len(actions.Actions), 8)
	for _, v := range actions.Actions {
		a, err := v.Action.Decode(wire.StringIsBase64)
		require.NoError(t, err, v.Title)
		ah, ph, err := a.Hashes()
		require.NoError(t, err, v.Title)
		require.Equal(t, v.PayloadHash, ph, v.Title)
		require.Equal(t, v.ActionHash, ah, v.Title)
		sum := sha256.Sum256([]byte(v.Canonical))
		require.Equal(t, v.ActionHash, hex.EncodeToString(sum[:]), v.Title)
	}

	var audit struct{ Events []eventVector }
	read("audit.json", &audit)
	events := make([]approval.AuditEvent, len(audit.Events))
	for i, v := range audit.Events {
		events[i] = v.Event
		sum := sha256.Sum256([]byte(v.Canonical))
		require.Equal(t, v.Event.Hash, hex.EncodeToString(sum[:]), "event %d", v.Event.Seq)
	}
	require.GreaterOrEqual(t, len(events), 30)
	require.NoError(t, approval.VerifyAuditChain(events))
	checkpoints := 0
	for i := range events {
		if c := events[i].Checkpoint; c != nil {
			require.True(t, approval.VerifyCheckpointForTest(&events[i], pub))
			require.Equal(t, events[c.Seq-1].Hash, c.Hash)
			checkpoints++
		}
	}
	require.Equal(t, 1, checkpoints)

	var arts struct{ Artifacts []artifactVector }
	read("artifacts.json", &arts)
	for _, v := range arts.Artifacts {
		require.NotEmpty(t, v.Cases)
		for _, c := range v.Cases {
			art := v.Artifact
			if c.Artifact != "" {
				art = c.Artifact
			}
			keys := make([]ed25519.PublicKey, len(c.Keys))
			for i, k := range c.Keys {
				keys[i], err = hex.DecodeString(k)
				require.NoError(t, err)
			}
			a, err := c.Action.Decode(wire.StringIsBase64)
			require.NoError(t, err)
			_, err = approval.VerifyArtifactAt([]byte(art), a, keys, c.At)
			require.Equal(t, c.Expect, artifactOutcome(err), "%s: %s", v.Title, c.Title)
		}
	}

	var toks struct{ Tokens []tokenVector }
	read("tokens.json", &toks)
	for _, v := range toks.Tokens {
		k, err := hex.DecodeString(v.PublicKey)
		require.NoError(t, err)
		claims, err := approval.VerifyTokenForTest(v.Token, k, v.At)
		require.Equal(t, v.Expect, tokenOutcome(err), v.Title)
		if err == nil {
			require.Equal(t, v.Claims, claims, v.Title)
		}
	}
}

func artifactOutcome(err error) string {
	for _, o := range []struct {
		err  error
		name string
	}{
		{approval.ErrArtifactMalformed, "malformed"}, {approval.ErrArtifactUnknownKey, "unknown_key"},
		{approval.ErrArtifactSignature, "signature"}, {approval.ErrArtifactExpired, "expired"},
		{approval.ErrArtifactPayloadMismatch, "payload_mismatch"}, {approval.ErrArtifactActionMismatch, "action_mismatch"},
	} {
		if errors.Is(err, o.err) {
			return o.name
		}
	}
	if err != nil {
		return err.Error()
	}
	return "ok"
}

func tokenOutcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, approval.ErrTokenSignature):
		return "signature"
	case errors.Is(err, approval.ErrTokenExpired):
		return "expired"
	}
	return err.Error()
}

// vectorT0 is the time the sample trail begins.
var vectorT0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func fakeHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

type sampleAction struct {
	title  string
	action approval.Action
}

// approval.Request IDs of the sample.
const (
	vecReqA = "req_0195a1b2c3d47e8f9a0b1c2d3e4f5a6b"
	vecReqB = "req_0195a1b2c3d47e8f9a0b1c2d3e4f5a6c"
	vecReqC = "req_0195a1b2c3d47e8f9a0b1c2d3e4f5a6d"
)

const (
	transferPayload = `{"to":"DE89 3704 0044 0532 0130 00","amount":5000,"memo":"Miete März"}`
	editedPayload   = `{"to":"DE89 3704 0044 0532 0130 00","amount":500,"memo":"Miete März"}`
)

// transferAction is request A's action; its edit's payload is
// editedPayload.
func transferAction() approval.Action {
	return approval.Action{
		Name: "wire-transfer", RequestedBy: "agent-7", Initiator: "jürgen",
		Cost: &approval.Cost{Amount: 5000, Currency: "EUR"}, Risk: approval.RiskHigh,
		Tags:     []string{"payments", "customer-data", "payments"},
		Metadata: map[string]string{"ticket": "OPS-1234", "é": "accent", "😀": "astral: sorts before ﬁ in UTF-16", "ﬁ": "U+FB01"},
		RunID:    "run-42", StepID: "pay-supplier",
		Constraints: []string{"amount <= 5000", "window <= 2h"},
		Message:     "Pay the March rent (not hashed)",
		Provenance:  &approval.Provenance{Source: "sdk", CreatedBy: "agent-7"},
		Payload:     []byte(transferPayload),
	}
}

func deployAction() approval.Action {
	return approval.Action{Name: "deploy:production", RequestedBy: "ci-bot", Risk: approval.RiskCritical, Tags: []string{"production"},
		Payload: []byte("release v2.4.1\ncommit 9f2c1e0\n")}
}

func sampleActions() []sampleAction {
	edited := transferAction()
	edited.Payload = []byte(editedPayload)
	return []sampleAction{
		{"minimal: name and requester only", approval.Action{Name: "read-report", RequestedBy: "alice"}},
		{"wire transfer (request A): every hashed field, metadata keys in UTF-16 order, tags a sorted set", transferAction()},
		{"wire transfer as edited (what artifact A approves)", edited},
		{"deploy (request B): a text payload", deployAction()},
		{"payload: JSON with white space, escapes and numbers in other spellings (hashed in canonical form)", approval.Action{
			Name: "tool:update", RequestedBy: "agent-7",
			Payload: []byte("{\n  \"z\": [1.0, 1e2, -0, 0.000001, 1e-7, 1E21, 123456789012345],\n  \"a\\u00e9\": \"caf\\u00e9 \\/ \\u2028 <tag>\",\n  \"é\": true,\n  \"\\ud83d\\ude00\": null\n}\n")}},
		{"payload: JSON whose number a double does not hold (hashed as its raw bytes)", approval.Action{
			Name: "tool:update", RequestedBy: "agent-7", Payload: []byte(`{"id":9007199254740993}`)}},
		{"payload: JSON with a key twice (hashed as its raw bytes)", approval.Action{
			Name: "tool:update", RequestedBy: "agent-7", Payload: []byte(`{"a":1,"a":2}`)}},
		{"payload: a JSON string (hashed in canonical form, quotes included)", approval.Action{
			Name: "tool:update", RequestedBy: "agent-7", Payload: []byte(`"just a string"`)}},
		{"payload: bytes that are not UTF-8 (hashed as they are)", approval.Action{
			Name: "blob:upload", RequestedBy: "agent-7", Payload: []byte{0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0xff}}},
		{"cost: amounts in ECMAScript number form", approval.Action{
			Name: "purchase", RequestedBy: "bob", Cost: &approval.Cost{Amount: tenths(1) + tenths(2), Currency: "USD"}}},
		{"cost: a large amount", approval.Action{Name: "purchase", RequestedBy: "bob", Cost: &approval.Cost{Amount: 1e21, Currency: "JPY"}}},
		{"strings: control characters, quotes, backslashes and non-ASCII", approval.Action{
			Name: "note", RequestedBy: "李雷", Initiator: "zoë",
			Metadata:    map[string]string{"note": "line 1\nline 2\t\"quoted\" \\ back\x01\x1f\x7f\u2028 end"},
			Constraints: []string{"region in [eu-west-1, eu-central-1]"}}},
		{"diff: files and hunks", approval.Action{
			Name: "deploy:config", RequestedBy: "ci-bot",
			Diff: []approval.FileDiff{
				{Path: "config/prod.yaml", Hunks: []approval.Hunk{{OldStart: 3, OldLines: 1, NewStart: 3, NewLines: 2, Body: "-replicas: 2\n+replicas: 4\n+zone: b\n"}}},
				{Path: "docs/new.md", OldPath: "docs/old.md"},
			}}},
	}
}

// sampleTrail returns a sealed audit trail: three requests, their
// notifications and decisions, an edit, a delegation, a checkpoint.
func sampleTrail(t *testing.T, priv ed25519.PrivateKey, actions map[string]approval.Action) []approval.AuditEvent {
	hashes := func(a approval.Action) (string, string) {
		ah, ph, err := a.Hashes()
		require.NoError(t, err)
		return ah, ph
	}
	ahA, phA := hashes(transferAction())
	edited := transferAction()
	edited.Payload = []byte(editedPayload)
	ahE, phE := hashes(edited)
	ahB, phB := hashes(deployAction())
	ahC, _ := hashes(actions["minimal: name and requester only"])
	spend := []approval.PolicyRef{{Name: "high_spend", Hash: fakeHash("policy high_spend")}}
	both := []approval.PolicyRef{spend[0], {Name: "customer_data", Hash: fakeHash("policy customer_data")}}
	deploy := []approval.PolicyRef{{Name: "production-release", Hash: fakeHash("policy production-release")}}
	at := func(d time.Duration) time.Time { return vectorT0.Add(d) }

	evs := []approval.AuditEvent{
		{RequestID: vecReqA, Type: approval.EventRequestCreated, Actor: "agent-7", Policies: both, ActionHash: ahA, PayloadHash: phA,
			Reason: "transfers of 1,000 EUR or more need two finance approvals", At: at(0)},
		{RequestID: vecReqA, Type: approval.EventNotificationSent, Actor: approval.SystemActor, Policies: both, Reason: "approval.requested to alice via webhook", At: at(120 * time.Millisecond)},
		{RequestID: vecReqA, Type: approval.EventNotificationSent, Actor: approval.SystemActor, Policies: both, Reason: "approval.requested to bob via email", At: at(500 * time.Millisecond)},
		{RequestID: vecReqA, Type: approval.EventNotificationFailed, Actor: approval.SystemActor, Policies: both,
			Reason: "approval.requested to carol via slack: 503 Service Unavailable (attempt 1 of 8; next attempt at 2026-03-01T09:00:05Z)", At: at(time.Second + time.Microsecond)},
		{Type: approval.EventDelegationGranted, Actor: "admin", OnBehalfOf: "bob", Reason: "bob → erin until 2026-03-08T00:00:00Z for high_spend: parental leave — Elternzeit", At: at(2 * time.Minute)},
		{RequestID: vecReqA, Type: approval.EventDecisionRejected, Actor: "mallory", Verdict: approval.VerdictApprove, Reason: "approval: decide: token signature invalid", At: at(3*time.Minute + 123456*time.Microsecond)},
		{RequestID: vecReqA, Type: approval.EventRequestRecommended, Actor: "risk-bot", Reason: "deny (confidence 0.82): the amount is ten times the usual rent", At: at(4 * time.Minute)},
		{RequestID: vecReqA, Type: approval.EventPayloadEdited, Actor: "alice", Policies: both, ActionHash: ahE, PayloadHash: phE,
			Reason: "payload " + phA + " replaced by " + phE, At: at(5 * time.Minute)},
		{RequestID: vecReqA, Type: approval.EventDecisionApprove, Actor: "alice", Policies: both, Verdict: approval.VerdictApprove,
			Reason: "Betrag korrigiert: 500 € statt 5 000 €", Conditions: []string{"amount <= 500", "window <= 30m"}, At: at(5*time.Minute + 999999*time.Microsecond)},
		{RequestID: vecReqA, Type: approval.EventDecisionApprove, Actor: "erin", OnBehalfOf: "bob", Policies: both, Verdict: approval.VerdictApprove,
			Reason: "承認します — OK 👍", At: at(7 * time.Minute)},
		{RequestID: vecReqA, Type: approval.EventRequestApproved, Actor: approval.SystemActor, Policies: both, ActionHash: ahE, PayloadHash: phE,
			Reason: "quorum met (reuse: up to 3 uses within 30m0s)", At: at(7 * time.Minute)},
		{RequestID: vecReqA, Type: approval.EventNotificationSent, Actor: approval.SystemActor, Policies: both, Reason: "approval.resolved to agent-7 via webhook", At: at(7*time.Minute + 10*time.Millisecond)},
		{RequestID: vecReqA, Type: approval.EventApprovalConsumed, Actor: "agent-7", Policies: both, Reason: "quorum met (reuse: up to 3 uses within 30m0s) (use 1 of 3)", At: at(8 * time.Minute)},

		{RequestID: vecReqB, Type: approval.EventRequestCreated, Actor: "ci-bot", Policies: deploy, ActionHash: ahB, PayloadHash: phB,
			Reason: "SRE sign-off required before releasing to production.", At: at(10 * time.Minute)},
		{RequestID: vecReqB, Type: approval.EventLevelSkipped, Actor: approval.SystemActor, Policies: deploy, Reason: "production-release: level 2 (Security Review) does not apply", At: at(10 * time.Minute)},
		{RequestID: vecReqB, Type: approval.EventLevelOpened, Actor: approval.SystemActor, Policies: deploy, Reason: "production-release: level 1 (Team Lead Review)", At: at(10 * time.Minute)},
		{RequestID: vecReqB, Type: approval.EventRequestReminded, Actor: approval.SystemActor, Policies: deploy, Reason: "reminder: dave, frank", At: at(4 * time.Hour)},
		{RequestID: vecReqB, Type: approval.EventRequestEscalated, Actor: approval.SystemActor, Policies: deploy, Reason: "escalated to role:manager: no answer in 8h", At: at(8 * time.Hour)},
		{RequestID: vecReqB, Type: approval.EventDecisionDeny, Actor: "carol", Policies: deploy, Verdict: approval.VerdictDeny,
			Reason: "Freeze: \"no deploys\" until Monday\nsee C:\\ops\\freeze.md\t(tab)\x01", At: at(9*time.Hour + 100*time.Microsecond)},
		{RequestID: vecReqB, Type: approval.EventRequestDenied, Actor: approval.SystemActor, Policies: deploy, Reason: "denied by carol", At: at(9*time.Hour + 100*time.Microsecond)},
		{RequestID: vecReqB, Type: approval.EventRequestDeduplicated, Actor: "ci-bot", Policies: deploy, Reason: "held: denied by carol", At: at(9*time.Hour + time.Minute)},
		{RequestID: vecReqB, Type: approval.EventBreakGlass, Actor: "ic-oncall", Policies: deploy, Verdict: approval.VerdictApprove, Reason: "payments down, INC-4412", At: at(9*time.Hour + 2*time.Minute)},

		{RequestID: vecReqC, Type: approval.EventRequestCreated, Actor: "alice", ActionHash: ahC, Reason: "default policy", Policies: []approval.PolicyRef{{Name: "default", Hash: fakeHash("policy default")}}, At: at(10 * time.Hour)},
		{Type: approval.EventPolicyError, Actor: approval.SystemActor, Reason: "policy vip: custom matcher \"vip\" panicked: runtime error; the policy applies", At: at(10 * time.Hour)},
		{RequestID: vecReqC, Type: approval.EventNotificationDeadLettered, Actor: approval.SystemActor, Reason: "approval.requested to dave via webhook: 410 Gone (permanent)", At: at(10*time.Hour + time.Second)},
		{RequestID: vecReqC, Type: approval.EventNotificationRedriven, Actor: "ops", Reason: "redriven: 1 message", At: at(11 * time.Hour)},
		{RequestID: vecReqC, Type: approval.EventDeadlineMoved, Actor: "ops", Reason: "deadline 2026-03-02T19:00:00Z → 2026-03-03T19:00:00Z: waiting for the vendor", At: at(11*time.Hour + time.Minute)},
		{RequestID: vecReqC, Type: approval.EventRequestCancelled, Actor: "alice", Reason: "no longer needed", At: at(12 * time.Hour)},
		{Type: approval.EventAuditSinkFailed, Actor: approval.SystemActor, Reason: "audit sink missed events 26 to 28: context deadline exceeded", At: at(12*time.Hour + 5*time.Second)},
	}
	for i := range evs {
		var prevSeq int64
		var prevHash string
		if i > 0 {
			prevSeq, prevHash = evs[i-1].Seq, evs[i-1].Hash
		}
		evs[i].Seal(prevSeq, prevHash)
	}
	// A checkpoint signs the head, then the trail goes on.
	head := evs[len(evs)-1]
	cpAt := at(13 * time.Hour)
	c := &approval.AuditCheckpoint{Seq: head.Seq, Hash: head.Hash, KeyID: approval.KeyID(priv.Public().(ed25519.PublicKey))}
	approval.SignCheckpointForTest(priv, cpAt, c)
	more := []approval.AuditEvent{
		{Type: approval.EventAuditCheckpoint, Actor: approval.SystemActor, Checkpoint: c, At: cpAt},
		{RequestID: vecReqA, Type: approval.EventApprovalConsumed, Actor: "agent-7", Policies: both, Reason: "quorum met (reuse: up to 3 uses within 30m0s) (use 2 of 3)", At: at(13*time.Hour + 1)},
		{RequestID: vecReqA, Type: approval.EventApprovalExpired, Actor: approval.SystemActor, Policies: both, Reason: "unused uses expired", At: at(14 * time.Hour)},
		{Type: approval.EventDelegationRevoked, Actor: "admin", OnBehalfOf: "bob", Reason: "bob → erin: back early", At: at(15 * time.Hour)},
	}
	for i := range more {
		last := evs[len(evs)-1]
		more[i].Seal(last.Seq, last.Hash)
		evs = append(evs, more[i])
	}
	return evs
}

// sampleArtifacts returns artifact A (request A as edited: conditions,
// reuse, a delegate's vote) and artifact B (request B, break-glass), with
// the cases each verifies in.
func sampleArtifacts(t *testing.T, priv ed25519.PrivateKey, actions map[string]approval.Action) []artifactVector {
	pub := hex.EncodeToString(priv.Public().(ed25519.PublicKey))
	otherSeed := sha256.Sum256([]byte("another key"))
	other := hex.EncodeToString(ed25519.NewKeyFromSeed(otherSeed[:]).Public().(ed25519.PublicKey))
	show := func(a approval.Action) wire.Action {
		w := wire.Action{Action: a}
		w.Action.Payload = nil
		w.SetPayload(wire.Exact(a.Payload))
		return w
	}
	at := func(d time.Duration) time.Time { return vectorT0.Add(d) }

	orig := transferAction()
	edited := transferAction()
	edited.Payload = []byte(editedPayload)
	ahA, phA, err := orig.Hashes()
	require.NoError(t, err)
	ahE, phE, err := edited.Hashes()
	require.NoError(t, err)
	reqA := &approval.Request{
		ID: vecReqA, Status: approval.StatusApproved, ActionHash: ahA, PayloadHash: phA,
		Edit: &approval.PayloadEdit{Payload: edited.Payload, PayloadHash: phE, ActionHash: ahE, By: "alice", At: at(5 * time.Minute)},
		Policies: []approval.MatchedPolicy{
			{Name: "high_spend", Hash: fakeHash("policy high_spend")}, {Name: "customer_data", Hash: fakeHash("policy customer_data")}},
		Votes: []approval.Vote{
			{Approver: "alice", Verdict: approval.VerdictApprove, Conditions: []string{"amount <= 500", "window <= 30m"}, TokenID: "q8tXk1n0c3VwZXJzZWNyZXQ", At: at(5*time.Minute + 999999*time.Microsecond)},
			{Approver: "erin", OnBehalfOf: "bob", Verdict: approval.VerdictApprove, TokenID: "Zm9yIHRlc3QgdmVjdG9ycw", At: at(7 * time.Minute)},
		},
		Reason: "quorum met (reuse: up to 3 uses within 30m0s)", Reuse: approval.Reuse{For: 30 * time.Minute, Uses: 3},
		ResolvedAt: at(7 * time.Minute), ExpiresAt: at(37 * time.Minute),
	}
	artA, signedA := signArtifact(priv, reqA)

	deploy := deployAction()
	ahB, phB, err := deploy.Hashes()
	require.NoError(t, err)
	reqB := &approval.Request{
		ID: vecReqB, Status: approval.StatusApproved, ActionHash: ahB, PayloadHash: phB,
		Policies: []approval.MatchedPolicy{{Name: "production-release", Hash: fakeHash("policy production-release")}},
		Votes:    []approval.Vote{{Approver: "ic-oncall", Verdict: approval.VerdictApprove, BreakGlass: true, TokenID: "YnJlYWstZ2xhc3M", At: at(9*time.Hour + 2*time.Minute)}},
		Reason:   "break-glass by ic-oncall: payments down, INC-4412", ResolvedAt: at(9*time.Hour + 2*time.Minute), ExpiresAt: at(10*time.Hour + 2*time.Minute),
	}
	artB, signedB := signArtifact(priv, reqB)

	otherAction := edited
	otherAction.Cost = &approval.Cost{Amount: 500, Currency: "EUR"}
	return []artifactVector{
		{Title: "A: request A as edited, with conditions, reuse and a delegate's vote", Artifact: artA, Signed: signedA, Cases: []artifactCase{
			{Title: "the edited action, before expiry", At: at(10 * time.Minute), Action: show(edited), Keys: []string{other, pub}, Expect: "ok"},
			{Title: "the action as asked for: the payload differs", At: at(10 * time.Minute), Action: show(orig), Keys: []string{pub}, Expect: "payload_mismatch"},
			{Title: "another cost, same payload", At: at(10 * time.Minute), Action: show(otherAction), Keys: []string{pub}, Expect: "action_mismatch"},
			{Title: "at expires_at", At: at(37 * time.Minute), Action: show(edited), Keys: []string{pub}, Expect: "expired"},
			{Title: "another key only", At: at(10 * time.Minute), Action: show(edited), Keys: []string{other}, Expect: "unknown_key"},
			{Title: "one vote's approver altered", At: at(10 * time.Minute), Action: show(edited), Keys: []string{pub},
				Artifact: strings.Replace(artA, `"approver":"erin"`, `"approver":"eric"`, 1), Expect: "signature"},
			{Title: "white space added", At: at(10 * time.Minute), Action: show(edited), Keys: []string{pub},
				Artifact: strings.Replace(artA, `{"action_hash":`, `{ "action_hash":`, 1), Expect: "malformed"},
		}},
		{Title: "B: request B, approved by break-glass, single use", Artifact: artB, Signed: signedB, Cases: []artifactCase{
			{Title: "the action, before expiry", At: at(9*time.Hour + 30*time.Minute), Action: show(deploy), Keys: []string{pub}, Expect: "ok"},
			{Title: "break_glass removed", At: at(9*time.Hour + 30*time.Minute), Action: show(deploy), Keys: []string{pub},
				Artifact: strings.Replace(artB, `,"break_glass":true`, ``, 1), Expect: "signature"},
		}},
	}
}

// sampleTokens returns a token made as keyring.issue makes them, with a
// fixed token ID.
func sampleTokens(t *testing.T, priv ed25519.PrivateKey) []tokenVector {
	kid := approval.KeyID(priv.Public().(ed25519.PublicKey))
	iat := vectorT0.Add(10 * time.Second)
	claims := approval.TokenClaims{Version: 1, KeyID: kid, TokenID: "AAECAwQFBgcICQoLDA0ODw", RequestID: vecReqA, Subject: "alice",
		Act: approval.VerdictBoth, IssuedAt: iat.Unix(), ExpiresAt: iat.Add(72 * time.Hour).Unix()}
	payload := `{"act":"both","exp":` + strconv.FormatInt(claims.ExpiresAt, 10) + `,"iat":` + strconv.FormatInt(claims.IssuedAt, 10) +
		`,"kid":"` + kid + `","rid":"` + vecReqA + `","sub":"alice","tid":"AAECAwQFBgcICQoLDA0ODw","v":1}`
	// The form is the one IssueToken writes, but for the random token ID.
	_, raw, tid, err := approval.IssueTokenForTest(priv, vecReqA, "alice", approval.VerdictBoth, iat, 72*time.Hour)
	require.NoError(t, err)
	require.Equal(t, payload, strings.Replace(string(raw), tid, claims.TokenID, 1))
	sig := ed25519.Sign(priv, []byte(payload))
	tok := base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(sig)
	bad := append([]byte(nil), sig...)
	bad[0] ^= 1
	pub := hex.EncodeToString(priv.Public().(ed25519.PublicKey))
	return []tokenVector{
		{Title: "a link token for alice, either answer", Token: tok, Payload: payload, Claims: claims, At: iat.Add(time.Hour), PublicKey: pub, Expect: "ok"},
		{Title: "its signature altered", Token: base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(bad), Payload: payload, Claims: claims, At: iat.Add(time.Hour), PublicKey: pub, Expect: "signature"},
		{Title: "after exp and the 30s leeway", Token: tok, Payload: payload, Claims: claims, At: iat.Add(72*time.Hour + 31*time.Second), PublicKey: pub, Expect: "expired"},
	}
}

func signArtifact(priv ed25519.PrivateKey, r *approval.Request) (artifact, signed string) {
	a, sb := approval.SignArtifactForTest(priv, r)
	return string(a), string(sb)
}

// tenths returns n/10 as a double, so that tenths(1)+tenths(2) is
// 0.30000000000000004 (a constant expression would be exact).
func tenths(n float64) float64 { return n / 10 }
