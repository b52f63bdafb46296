// Package testsignal lets a test wait for a component to reach a point,
// instead of sleeping and hoping it has: the component holds a Signal,
// nil and free in production, and sends on it at that point once a test
// has called Init.
//
// The package imports nothing of this module and not package testing, so
// that the packages it serves may import it.
package testsignal

import "time"

// Timeout bounds Wait.
const Timeout = 10 * time.Second

// capacity is how many signals may be pending: a Signal never blocks the
// component, and drops a signal beyond it.
const capacity = 1000

// A Signal of values T. The zero value is off: Signal does nothing. Init
// turns it on; it must be called before the component may signal (before
// its goroutines start), since the channel is not guarded. A Signal is
// safe for concurrent Signal, Wait and Pending once on.
type Signal[T any] struct{ ch chan T }

// Init turns s on.
func (s *Signal[T]) Init() { s.ch = make(chan T, capacity) }

// Signal sends v to the test, if s is on, without blocking.
func (s *Signal[T]) Signal(v T) {
	if s.ch == nil {
		return
	}
	select {
	case s.ch <- v:
	default:
	}
}

// TB is the part of testing.TB that Wait uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Wait returns the next value signalled, or fails the test after Timeout.
func (s *Signal[T]) Wait(t TB) T {
	t.Helper()
	if s.ch == nil {
		t.Fatalf("testsignal: Wait on a Signal that was not Init")
	}
	select {
	case v := <-s.ch:
		return v
	case <-time.After(Timeout):
		var zero T
		t.Fatalf("testsignal: no %T signalled within %s", zero, Timeout)
		return zero
	}
}

// WaitFor waits for a value for which ok holds, dropping the others, and
// returns it, or fails the test after Timeout.
func (s *Signal[T]) WaitFor(t TB, what string, ok func(T) bool) T {
	t.Helper()
	if s.ch == nil {
		t.Fatalf("testsignal: Wait on a Signal that was not Init")
	}
	deadline := time.After(Timeout)
	for {
		select {
		case v := <-s.ch:
			if ok(v) {
				return v
			}
		case <-deadline:
			t.Fatalf("testsignal: %s not signalled within %s", what, Timeout)
			var zero T
			return zero
		}
	}
}

// Pending returns the values signalled and not yet waited for, without
// waiting: for a point reached synchronously, before the call that
// reaches it returns.
func (s *Signal[T]) Pending() []T {
	var out []T
	for {
		select {
		case v := <-s.ch:
			out = append(out, v)
		default:
			return out
		}
	}
}
