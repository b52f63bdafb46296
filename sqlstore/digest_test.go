package sqlstore

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/fixture"
	"github.com/signoff/approval/internal/testkit"
)

// digestRecorder keeps what it is sent, by recipient.
type digestRecorder struct {
	mu  sync.Mutex
	got map[string][]approval.Notification
}

func (r *digestRecorder) Name() string { return "chat" }

func (r *digestRecorder) Send(_ context.Context, n approval.Notification) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got[n.Recipient] = append(r.got[n.Recipient], n)
	return nil
}

func (r *digestRecorder) to(who string) []approval.Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]approval.Notification(nil), r.got[who]...)
}

// Fifty asks to a reviewer with a digest window wait in the outbox of a
// SQLite file; the process stops before the window ends; a new one on the
// file sends them, at the window's end, as one digest listing all fifty.
func TestDigestSurvivesRestart(t *testing.T) {
	t.Parallel()
	path := sqliteDSN(t)
	_, priv, err := approval.GenerateKeys()
	require.NoError(t, err)
	clock := testkit.NewClock()
	clock.Set(time.Date(2026, 3, 2, 9, 0, 30, 0, time.UTC))
	start := func(s *Store, rec *digestRecorder) *approval.Gate {
		g, err := approval.New(approval.Config{
			Store: s, SigningKey: priv, Channels: []approval.Channel{rec}, Now: clock.Now, PollInterval: 5 * time.Millisecond,
			BaseURL: "https://approvals.example.com", Logger: slog.New(slog.DiscardHandler),
			Delivery: approval.DeliveryConfig{DigestWindow: func(_, recipient string) time.Duration {
				if recipient == "alice" {
					return 15 * time.Minute
				}
				return 0
			}},
		})
		require.NoError(t, err)
		require.NoError(t, g.SetPolicy("payouts", approval.Policy{Match: approval.Name("payout:*"),
			Approvers: []approval.Approver{approval.User("alice"), approval.User("bob")}, RequiredApprovals: 1}))
		return g
	}

	s1, err := Open(t.Context(), path)
	require.NoError(t, err)
	rec1 := &digestRecorder{got: map[string][]approval.Notification{}}
	g1 := start(s1, rec1)
	for i := range 50 {
		res, err := g1.Guard(t.Context(), approval.Action{Name: "payout:vendor", RequestedBy: "agent-1", Payload: fmt.Appendf(nil, `{"n":%d}`, i)})
		require.NoError(t, err)
		require.Equal(t, approval.OutcomePending, res.Status)
	}
	require.Eventually(t, func() bool { return len(rec1.to("bob")) == 50 }, 10*time.Second, 5*time.Millisecond)
	fixture.Settled(t, g1)
	require.NoError(t, g1.Close(context.Background()))
	require.NoError(t, s1.Close())
	require.Empty(t, rec1.to("alice"), "alice's asks waited for her window")

	s2 := open(t, path)
	rec2 := &digestRecorder{got: map[string][]approval.Notification{}}
	g2 := start(s2, rec2)
	t.Cleanup(func() { _ = g2.Close(context.Background()) })
	clock.Set(time.Date(2026, 3, 2, 9, 15, 0, 0, time.UTC))
	require.Eventually(t, func() bool { return len(rec2.to("alice")) > 0 }, 10*time.Second, 5*time.Millisecond)
	got := rec2.to("alice")
	require.Len(t, got, 1)
	require.Equal(t, approval.NotifyDigest, got[0].Type)
	require.Len(t, got[0].Digest, 50, "nothing lost across the restart")
	seen := map[string]bool{}
	for _, n := range got[0].Digest {
		require.False(t, seen[n.RequestID], "listed once")
		seen[n.RequestID] = true
		require.NotEmpty(t, n.ApproveURL)
	}
	require.Empty(t, rec2.to("bob"), "bob's were delivered before the restart")
}
