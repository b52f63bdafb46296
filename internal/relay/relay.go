// Package relay hands values from any number of goroutines to one
// function running on a goroutine of its own, without ever making the
// senders wait: a gate's observations, from Guard and Decide to the
// host's Observer.
//
// The queue is bounded: a value that does not fit is dropped and counted,
// and the count is reported once the queue has room again (or at the next
// tick, or at Close). Once woken, the goroutine takes the queue in
// batches, sleeping a little between them, so that senders do not wake it
// one by one: a wake-up costs the sender a system call.
package relay

import (
	"context"
	"sync"
	"time"
)

// Batch is how long the goroutine lets values gather before it takes
// them, once it has been woken.
const Batch = time.Millisecond

// Relay runs deliver with each value Put queues, in the order they were
// queued. Create one with New; it is safe for concurrent use.
type Relay[T any] struct {
	q       chan item[T]
	deliver func(context.Context, T)
	dropped func(n int)
	tick    func()
	every   time.Duration

	mu    sync.Mutex
	drops int

	quit chan struct{} // closed by Close
	done chan struct{} // closed when run returns
	stop sync.Once
}

type item[T any] struct {
	ctx context.Context
	v   T
}

// New starts a relay of queue values at most to deliver. dropped, if not
// nil, hears how many values did not fit, once the queue is at most half
// full again, at each tick, and at Close. tick, if not nil, runs every
// interval and at Close, on the relay's goroutine.
func New[T any](queue int, deliver func(context.Context, T), dropped func(n int), tick func(), every time.Duration) *Relay[T] {
	r := &Relay[T]{q: make(chan item[T], queue), deliver: deliver, dropped: dropped, tick: tick, every: every,
		quit: make(chan struct{}), done: make(chan struct{})}
	go r.run()
	return r
}

// Put queues v, with the context of the call it describes, or counts it
// dropped if the queue is full. It never blocks, and is safe after Close
// (values then wait in the queue for nobody, and are dropped once it is
// full).
func (r *Relay[T]) Put(ctx context.Context, v T) {
	select {
	case r.q <- item[T]{ctx, v}:
	default:
		r.mu.Lock()
		r.drops++
		r.mu.Unlock()
	}
}

func (r *Relay[T]) run() {
	defer close(r.done)
	var tick <-chan time.Time
	if r.tick != nil || r.dropped != nil {
		t := time.NewTicker(r.every)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case it := <-r.q:
			r.take(it)
			for {
				time.Sleep(Batch)
				n := len(r.q)
				if n == 0 {
					break
				}
				for range n {
					r.take(<-r.q)
				}
			}
		case <-tick:
			r.flush()
		case <-r.quit:
			for range len(r.q) {
				r.take(<-r.q)
			}
			r.flush()
			return
		}
	}
}

// take delivers it, then reports the drops if the queue has room again.
func (r *Relay[T]) take(it item[T]) {
	r.deliver(it.ctx, it.v)
	if r.dropped == nil {
		return
	}
	r.mu.Lock()
	n := r.drops
	if n > 0 && len(r.q) <= cap(r.q)/2 {
		r.drops = 0
	} else {
		n = 0
	}
	r.mu.Unlock()
	if n > 0 {
		r.dropped(n)
	}
}

// flush runs tick and reports the drops not reported yet.
func (r *Relay[T]) flush() {
	if r.tick != nil {
		r.tick()
	}
	if r.dropped == nil {
		return
	}
	r.mu.Lock()
	n := r.drops
	r.drops = 0
	r.mu.Unlock()
	if n > 0 {
		r.dropped(n)
	}
}

// Close stops the relay once the values queued before it are delivered,
// and tick has run a last time, or when ctx ends. It is safe to call more
// than once.
func (r *Relay[T]) Close(ctx context.Context) {
	r.stop.Do(func() { close(r.quit) })
	select {
	case <-r.done:
	case <-ctx.Done():
	}
}
