package approval_test

import (
	"context"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/signoff/approval"
	"github.com/signoff/approval/memstore"
)

// countingSender is a Channel that counts what it is sent and signals
// when the count reaches want.
type countingSender struct {
	n    atomic.Int64
	want int64
	done chan struct{}
}

func (c *countingSender) Name() string { return "count" }

func (c *countingSender) Send(context.Context, approval.Notification) error {
	if c.n.Add(1) == c.want {
		close(c.done)
	}
	return nil
}

// BenchmarkDeliveryInMemory: Guards b.N requests on a Store without an
// outbox (a memstore with its capabilities hidden), each notifying one
// approver through a channel that accepts at once, and waits for every
// delivery: ns/op is the time per delivered notification, Guard included.
// Keep b.N below DefaultMemoryLimit: a notification that does not fit is
// audited, not sent.
//
//	go test -run '^$' -bench DeliveryInMemory -benchtime 5000x -count 3 .
func BenchmarkDeliveryInMemory(b *testing.B) {
	ch := &countingSender{want: int64(b.N), done: make(chan struct{})}
	_, priv, err := approval.GenerateKeys()
	if err != nil {
		b.Fatal(err)
	}
	g, err := approval.New(approval.Config{Store: plainStore{memstore.New()}, SigningKey: priv,
		Channels: []approval.Channel{ch}, BaseURL: "https://approvals.example.com", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	if err := g.SetPolicy("p", approval.Policy{Match: approval.Name("deliver:*"),
		Approvers: []approval.Approver{approval.User("alice")}, RequiredApprovals: 1}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		if _, err := g.Guard(context.Background(), approval.Action{Name: "deliver:" + strconv.Itoa(i), RequestedBy: "bob"}); err != nil {
			b.Fatal(err)
		}
	}
	<-ch.done
	b.StopTimer()
	_ = g.Close(context.Background())
}
