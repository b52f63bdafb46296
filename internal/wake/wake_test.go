package wake

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSet(t *testing.T) {
	var s Set
	a, stopA := s.Add("a")
	a2, stopA2 := s.Add("a")
	b, stopB := s.Add("b")
	require.Equal(t, 3, s.Len())

	s.Wake("a")
	s.Wake("a") // merges into the pending one, never blocks
	require.Len(t, a, 1)
	require.Len(t, a2, 1)
	require.Empty(t, b)
	<-a

	stopA()
	stopA() // again: nothing
	require.Equal(t, 2, s.Len())
	s.Wake("a")
	require.Empty(t, a, "a stopped waiter receives nothing")

	s.WakeAll()
	require.Len(t, b, 1)
	stopA2()
	stopB()
	require.Zero(t, s.Len())
	s.Wake("missing")
}

func TestSetConcurrent(t *testing.T) {
	var s Set
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			ch, stop := s.Add("k")
			defer stop()
			s.Wake("k")
			<-ch
		})
	}
	wg.Wait()
	require.Zero(t, s.Len())
}
