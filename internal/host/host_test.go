package host

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestCallRecoversPanics: a panic is an error wrapping ErrPanic, inline
// or on a goroutine.
func TestCallRecoversPanics(t *testing.T) {
	t.Parallel()
	p := New("test", quiet())
	boom := func(context.Context) (int, error) { panic("boom") }
	_, err := Call(p, context.Background(), "Op", boom)
	require.ErrorIs(t, err, ErrPanic)
	require.ErrorContains(t, err, "boom")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err = Call(p, ctx, "Op", boom)
	require.ErrorIs(t, err, ErrPanic)
	require.False(t, TimedOut(err))
}

// TestCallAbandonsAtContextEnd: a call that does not return is left
// running when its context ends; past the bound, calls fail at once; once
// the abandoned calls return, calls go ahead again.
func TestCallAbandonsAtContextEnd(t *testing.T) {
	t.Parallel()
	p := New("test", quiet())
	release := make(chan struct{})
	var returned sync.WaitGroup
	hang := func(context.Context) (int, error) {
		defer returned.Done()
		<-release
		return 1, nil
	}
	for range maxAbandoned {
		returned.Add(1)
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		_, err := Call(p, ctx, "Op", hang)
		cancel()
		require.ErrorIs(t, err, ErrAbandoned)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.True(t, TimedOut(err))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	called := false
	_, err := Call(p, ctx, "Op", func(context.Context) (int, error) { called = true; return 0, nil })
	require.ErrorIs(t, err, ErrAbandoned)
	require.False(t, called, "beyond the bound, no call is made")

	close(release)
	returned.Wait()
	require.Eventually(t, func() bool { return p.abandoned.Load() == 0 }, 5*time.Second, time.Millisecond)
	v, err := Call(p, ctx, "Op", func(context.Context) (int, error) { return 7, nil })
	require.NoError(t, err)
	require.Equal(t, 7, v)
}

// TestCallInlineWithoutDone: a context that cannot end runs the call on
// the caller's goroutine, and its error comes back as it is.
func TestCallInlineWithoutDone(t *testing.T) {
	p := New("test", quiet())
	want := errors.New("no")
	allocs := testing.AllocsPerRun(100, func() {
		_, err := Recovered(p, context.Background(), "Op", func(context.Context) (bool, error) { return false, want })
		if err != want {
			t.Fatal(err)
		}
	})
	require.Zero(t, allocs)
}
