package sqlstore

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/signoff/approval"
)

// discard is a Channel that accepts every notification at once.
type discard struct{}

func (discard) Name() string                                      { return "discard" }
func (discard) Send(context.Context, approval.Notification) error { return nil }

// BenchmarkOutboxGuard measures Guard creating a pending request, in one
// run, on each database configuration:
//
//   - plain: a gate without channels, which stores no notice (what
//     BenchmarkGate's guard-create measures);
//
//   - outbox: a gate with one channel and Config.Delivery.StoreOnly, whose Guard
//     stores the approval.requested notice in the request's transaction
//     and delivers nothing: what the outbox costs a process that serves
//     requests while another delivers;
//
//   - outbox+delivery: the same gate delivering too, its goroutines
//     expanding each notice into 3 deliveries to a channel that accepts
//     at once, and settling them, on the same database: Guard then
//     shares the database's writes with delivery running flat out;
//
//   - outbox+hung: delivering through a channel whose sends never
//     return (cut by a 100ms SendTimeout, then blocked and probed).
//
//     go test -run '^$' -bench OutboxGuard -count 6 ./sqlstore
func BenchmarkOutboxGuard(b *testing.B) {
	for _, c := range gateConfigs {
		for _, mode := range []string{"plain", "outbox", "outbox+delivery", "outbox+hung"} {
			for _, callers := range []int{1, 8} {
				b.Run(fmt.Sprintf("%s/%s/callers=%d", c.name, mode, callers), func(b *testing.B) {
					s := open(b, c.newDSN(b), c.opts...)
					g := benchGate(b, s)
					switch mode {
					case "outbox", "outbox+delivery":
						g = outboxBenchGate(b, s, mode == "outbox", discard{})
					case "outbox+hung":
						g = outboxBenchGate(b, s, false, &hangChannel{})
					}
					actions := benchActions(b.N)
					runBench(b, callers, func(_, i int) error {
						res, err := g.Guard(context.Background(), actions[i])
						if err == nil && res.Status != approval.OutcomePending {
							err = fmt.Errorf("guard: %s, want pending", res.Status)
						}
						return err
					})
				})
			}
		}
	}
}

// outboxBenchGate is benchGate with a channel: its Guards store notices.
func outboxBenchGate(b *testing.B, s *Store, storeOnly bool, ch approval.Channel) *approval.Gate {
	b.Helper()
	_, priv, err := approval.GenerateKeys()
	if err != nil {
		b.Fatal(err)
	}
	g, err := approval.New(approval.Config{
		Store: s, SigningKey: priv, Channels: []approval.Channel{ch},
		Delivery: approval.DeliveryConfig{StoreOnly: storeOnly, SendTimeout: 100 * time.Millisecond},
		Directory: approval.StaticDirectory{Groups: map[string][]string{
			"finance": {"approver-1", "approver-2", "approver-3"},
		}},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = g.Close(context.Background()) })
	if err := g.SetPolicy("high_spend", approval.Policy{
		Match:             approval.CostAtLeast(1000, "USD"),
		Approvers:         []approval.Approver{approval.Group("finance")},
		RequiredApprovals: 2,
	}); err != nil {
		b.Fatal(err)
	}
	return g
}
