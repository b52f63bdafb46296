package approval_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	fx "github.com/signoff/approval/internal/fixture"
	"github.com/signoff/approval/internal/testkit"
)

// fixture is a gate over a memstore with a finance policy: transfers of
// 1,000 USD or more need two approvals from the finance group.
type fixture struct {
	*fx.Harness
	// The harness's fields, by the names the tests use.
	t     *testing.T
	gate  *approval.Gate
	store approval.Store
	clock *testkit.Clock
	priv  ed25519.PrivateKey
	ctx   context.Context

	aliceToken string // set by tests that need a used token
	// claims reports the outbox claims of the delivery goroutines (set
	// by outboxFixture).
	claims *claimWatch
}

var financeDir = fx.FinanceDirectory()

// dynamicDirectory hides every optional capability of the Directory it
// wraps (GroupLister and RoleLister), as a directory that resolves groups
// on demand has none.
type dynamicDirectory struct{ approval.Directory }

// plainStore hides every optional capability of the Store it wraps
// (Outbox among them), so that the gate delivers from its in-memory
// outbox.
type plainStore struct{ approval.Store }

// inProcess is a fixture option: notifications are delivered from the
// gate's in-memory outbox, not the store's.
func inProcess(c *approval.Config) { c.Store = plainStore{c.Store} }

func newFixture(t *testing.T, mod ...func(*approval.Config)) *fixture {
	t.Helper()
	h := fx.NewHarness(t, mod...)
	return &fixture{Harness: h, t: t, gate: h.Gate, store: h.Store, clock: h.Clock, priv: h.Key, ctx: h.Ctx}
}

func transfer(amount float64) approval.Action { return fx.Transfer(amount) }

// events returns the whole audit trail, verified.
func (f *fixture) events() []approval.AuditEvent {
	f.t.Helper()
	all := fx.AuditTrail(f.t, f.gate, approval.AuditQuery{})
	require.NoError(f.t, approval.VerifyAuditChain(all))
	return all
}

func (f *fixture) lastEvent() approval.AuditEvent {
	f.t.Helper()
	evs := f.events()
	require.NotEmpty(f.t, evs)
	return evs[len(evs)-1]
}

func eventTypes(evs []approval.AuditEvent) []approval.EventType {
	out := make([]approval.EventType, len(evs))
	for i, e := range evs {
		out[i] = e.Type
	}
	return out
}

type ed25519PublicKey = ed25519.PublicKey

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// tamper rewrites part of a token's payload and keeps its signature.
func tamper(t *testing.T, tok, old, new string) string {
	t.Helper()
	p, sig, ok := strings.Cut(tok, ".")
	require.True(t, ok)
	raw, err := base64.RawURLEncoding.DecodeString(p)
	require.NoError(t, err)
	require.Contains(t, string(raw), old)
	return b64(strings.Replace(string(raw), old, new, 1)) + "." + sig
}
