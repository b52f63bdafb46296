package sqlstore

import (
	"context"
	"log/slog"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// hangChannel's Send never returns, whatever its context says.
type hangChannel struct{ calls atomic.Int64 }

func (*hangChannel) Name() string { return "hang" }
func (c *hangChannel) Send(context.Context, approval.Notification) error {
	c.calls.Add(1)
	select {}
}

// countingChannel counts its sends, and closes all at the want-th.
type countingChannel struct {
	sent atomic.Int64
	want int64
	all  chan struct{}
}

func (*countingChannel) Name() string { return "count" }
func (c *countingChannel) Send(context.Context, approval.Notification) error {
	if c.sent.Add(1) == c.want {
		close(c.all)
	}
	return nil
}

// TestOutboxHungChannelMemoryFlat: 10,000 Guards on SQLite with one
// channel that hangs forever and one that works. The working channel gets
// every message, the hung one is cut by SendTimeout and then blocked (a
// few calls, not 10,000), and the process's heap does not grow with the
// messages waiting for the hung channel: they wait in the database.
func TestOutboxHungChannelMemoryFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 Guards")
	}
	t.Parallel()
	s := open(t, sqliteDSN(t))
	const n = 10_000
	hang, count := &hangChannel{}, &countingChannel{want: n, all: make(chan struct{})}
	_, priv, err := approval.GenerateKeys()
	require.NoError(t, err)
	g, err := approval.New(approval.Config{
		Store: s, SigningKey: priv, Channels: []approval.Channel{hang, count},
		Delivery: approval.DeliveryConfig{SendTimeout: 100 * time.Millisecond}, PollInterval: 20 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	require.NoError(t, g.SetPolicy("p", approval.Policy{Match: approval.Name("*"), Approvers: []approval.Approver{approval.User("alice")}, RequiredApprovals: 1}))

	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	var early uint64
	for i := range n {
		res, err := g.Guard(context.Background(), approval.Action{Name: "job", RunID: "run-" + itoa(i), RequestedBy: "bob"})
		require.NoError(t, err)
		require.Equal(t, approval.OutcomePending, res.Status)
		if i == 2_000 {
			early = heap()
		}
	}
	select {
	case <-count.all:
	case <-time.After(2 * time.Minute):
		t.Fatalf("%d of %d delivered by the working channel", count.sent.Load(), n)
	}
	late := heap()
	t.Logf("heap after 2,000 Guards %d KiB, after %d and their deliveries %d KiB; hung channel called %d times",
		early>>10, n, late>>10, hang.calls.Load())
	require.Less(t, late, early+8<<20, "the heap grows with the messages waiting")
	require.Less(t, hang.calls.Load(), int64(40), "a blocked channel is probed, not called per message")
	waiting, err := g.ListOutbox(context.Background(), approval.OutboxQuery{Channel: "hang", Limit: 1000})
	require.NoError(t, err)
	require.Len(t, waiting.Messages, 1000, "the hung channel's messages wait in the outbox")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = g.Close(ctx)
}

func itoa(i int) string {
	var b [20]byte
	n := len(b)
	for {
		n--
		b[n] = byte('0' + i%10)
		if i /= 10; i == 0 {
			return string(b[n:])
		}
	}
}
