// Package wake keeps the waiters of a process by key (a request ID), so
// that whoever learns a request changed can wake those waiting for it:
// the gate's local Wait calls, and sqlstore's ResolutionNotifier
// subscriptions.
//
// It guarantees that a wake-up sent after Add returns reaches the
// channel, unless the stop function has returned; that a send never
// blocks (each channel has a buffer of one, so wake-ups that come while
// one is pending merge into it); and that a stopped channel receives
// nothing more.
package wake

import "sync"

// Set is a set of waiters by key. The zero value is ready; it is safe for
// concurrent use.
type Set struct {
	mu sync.Mutex
	m  map[string][]chan struct{}
}

// Add registers a waiter for key and returns its channel and the function
// that removes it, which may be called more than once.
func (s *Set) Add(key string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	if s.m == nil {
		s.m = make(map[string][]chan struct{})
	}
	s.m[key] = append(s.m[key], ch)
	s.mu.Unlock()
	var once sync.Once
	return ch, func() { once.Do(func() { s.remove(key, ch) }) }
}

func (s *Set) remove(key string, ch chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	chs := s.m[key]
	for i, c := range chs {
		if c == ch {
			chs = append(chs[:i], chs[i+1:]...)
			break
		}
	}
	if len(chs) == 0 {
		delete(s.m, key)
	} else {
		s.m[key] = chs
	}
}

// Wake wakes the waiters of key.
func (s *Set) Wake(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range s.m[key] {
		signal(ch)
	}
}

// WakeAll wakes every waiter.
func (s *Set) WakeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, chs := range s.m {
		for _, ch := range chs {
			signal(ch)
		}
	}
}

// Len returns the number of waiters.
func (s *Set) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, chs := range s.m {
		n += len(chs)
	}
	return n
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
