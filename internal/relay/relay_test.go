package relay_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval/internal/relay"
)

// TestRelayDeliversInOrder: every value Put before Close is delivered,
// in order, with its context, by the time Close returns; tick runs at
// Close.
func TestRelayDeliversInOrder(t *testing.T) {
	t.Parallel()
	type key struct{}
	var got, carried []int
	ticks := 0
	r := relay.New(64, func(ctx context.Context, v int) {
		got = append(got, v)
		carried = append(carried, ctx.Value(key{}).(int))
	}, nil, func() { ticks++ }, time.Hour)
	for i := range 50 {
		r.Put(context.WithValue(context.Background(), key{}, i), i)
	}
	r.Close(context.Background())
	want := make([]int, 50)
	for i := range want {
		want[i] = i
	}
	require.Equal(t, want, got)
	require.Equal(t, want, carried, "each value comes with its context")
	require.Equal(t, 1, ticks, "tick runs at Close")
	r.Close(context.Background()) // again: nothing
	r.Put(context.Background(), 99)
	require.Len(t, got, 50, "a value Put after Close is delivered to nobody")
}

// TestRelayCountsDrops: a deliver that blocks holds up only the values
// after it; those that do not fit are dropped, counted, and reported once
// the queue has room again, so that every value is delivered or counted.
func TestRelayCountsDrops(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	var mu sync.Mutex
	delivered, dropped := 0, 0
	r := relay.New(4, func(_ context.Context, v int) {
		if v == 0 {
			entered <- struct{}{}
			<-release
		}
		mu.Lock()
		delivered++
		mu.Unlock()
	}, func(n int) {
		mu.Lock()
		dropped += n
		mu.Unlock()
	}, nil, time.Hour)
	r.Put(context.Background(), 0)
	<-entered
	start := time.Now()
	for i := 1; i <= 20; i++ {
		r.Put(context.Background(), i) // never blocks
	}
	require.Less(t, time.Since(start), time.Second)
	close(release)
	r.Close(context.Background())
	mu.Lock()
	defer mu.Unlock()
	require.Positive(t, dropped)
	require.Equal(t, 21, delivered+dropped)
}

// TestRelayCloseHonoursContext: Close returns when ctx ends, even if a
// delivery never does.
func TestRelayCloseHonoursContext(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	defer close(block)
	r := relay.New(4, func(context.Context, int) { <-block }, nil, nil, time.Hour)
	r.Put(context.Background(), 1)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	r.Close(ctx)
	require.ErrorIs(t, ctx.Err(), context.DeadlineExceeded)
}
