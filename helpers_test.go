package approval_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	fx "github.com/signoff/approval/internal/fixture"
	"github.com/signoff/approval/internal/testkit"
	"github.com/signoff/approval/memstore"
)

// fixture is a gate over a memstore with a finance policy: transfers of
// 1,000 USD or more need two approvals from the finance group.
type fixture struct {
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
	_, priv, err := approval.GenerateKeys()
	require.NoError(t, err)
	f := &fixture{t: t, store: memstore.New(), clock: testkit.NewClock(), priv: priv, ctx: context.Background()}
	cfg := approval.Config{
		Store:      f.store,
		SigningKey: priv,
		Directory:  financeDir,
		Now:        f.clock.Now,
		Logger:     slog.New(slog.DiscardHandler),
	}
	for _, m := range mod {
		m(&cfg)
	}
	f.gate = fx.NewGate(t, cfg, fx.HighSpend())
	return f
}

func transfer(amount float64) approval.Action { return fx.Transfer(amount) }

// pending guards a and requires a pending result.
func (f *fixture) pending(a approval.Action) string {
	f.t.Helper()
	res, err := f.gate.Guard(f.ctx, a)
	require.NoError(f.t, err)
	require.Equal(f.t, approval.OutcomePending, res.Status)
	require.NotEmpty(f.t, res.RequestID)
	return res.RequestID
}

func (f *fixture) token(id, who string, v approval.Verdict) string {
	f.t.Helper()
	tok, err := f.gate.IssueToken(id, who, v, time.Hour)
	require.NoError(f.t, err)
	return tok
}

func (f *fixture) decide(id, who string, v approval.Verdict) (*approval.Request, error) {
	return fx.Decide(f.gate, id, who, approval.Decision{Verdict: v})
}

func (f *fixture) get(id string) *approval.Request {
	f.t.Helper()
	r, err := f.gate.Get(f.ctx, id)
	require.NoError(f.t, err)
	return r
}

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
