package sqlstore

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
)

// maxGroup bounds the writes one transaction carries, so that a caller
// whose write joins a group waits for at most this many others.
const maxGroup = 32

// group commits concurrent writes of a Store together (group commit). A
// Store runs one write transaction at a time; the writes that arrive while
// it runs queue, and the next transaction carries all of them (up to
// maxGroup), each inside a savepoint of its own, so that one write's
// failure undoes that write alone. A transaction of several writes pays
// for one BEGIN, one COMMIT and one WAL flush (one fsync with SQLite's
// SyncFull; one round trip and one flush with PostgreSQL) and writes each
// page the writes share, such as the end of the audit chain and of each
// index, once rather than once per write.
//
// No goroutine of its own runs the transactions: the caller whose write
// finds none in progress leads, running transactions until the queue it
// took is done, then hands the lead to the first caller still queued. A
// write alone, then, runs on its caller's goroutine as it would without a
// group, in a transaction of its own.
//
// Every caller hears of its write only after the transaction carrying it
// has committed (or failed): a write reported done is durable as the
// Store's settings make any commit.
type group struct {
	// run carries ops (two or more) in one transaction and sets the err
	// of each; it reports an error, having committed nothing, when the
	// transaction itself failed (and then each op is run again alone).
	run func(ops []*writeOp) error
	// alone runs one write in a transaction of its own.
	alone func(ctx context.Context, fn func(q querier) error) error

	mu      sync.Mutex
	queue   []*writeOp
	leading bool
	// txns and writes count the transactions run and the writes they
	// carried, for tests and benchmarks.
	txns, writes atomic.Int64
	busy         atomic.Bool
	// failed counts the transactions of several writes that failed as a
	// whole, whose writes then ran alone.
	failed atomic.Int64
}

// The states of a queued write.
const (
	opQueued int32 = iota
	opClaimed
	opAbandoned
)

type writeOp struct {
	ctx context.Context
	fn  func(q querier) error
	err error
	// state goes from opQueued to opClaimed (a leader took the op, or made
	// its caller lead) or to opAbandoned (its caller's context ended
	// first), once.
	state atomic.Int32
	// wake tells the caller its op is done, or, if lead is set, that it
	// leads now.
	wake chan struct{}
	lead bool
}

// do runs fn in a write transaction, alone or with others, and returns its
// error. fn may run more than once, in different transactions: it must
// reset anything it captures at its start.
func (g *group) do(ctx context.Context, fn func(q querier) error) error {
	op := &writeOp{ctx: ctx, fn: fn}
	g.mu.Lock()
	if !g.leading {
		g.leading = true
		g.mu.Unlock()
		op.state.Store(opClaimed)
		return g.lead(op)
	}
	op.wake = make(chan struct{}, 1)
	g.queue = append(g.queue, op)
	g.mu.Unlock()
	select {
	case <-op.wake:
	case <-ctx.Done():
		if op.state.CompareAndSwap(opQueued, opAbandoned) {
			// No leader has it; the next one will drop it.
			return ctx.Err()
		}
		<-op.wake
	}
	if op.lead {
		return g.lead(op)
	}
	return op.err
}

// lead runs own, and the writes queued with it, then hands the lead on.
func (g *group) lead(own *writeOp) error {
	batch := []*writeOp{own}
	if g.busy.Load() {
		// Under concurrent writes, let the callers that are about to
		// write join this transaction rather than wait for the next:
		// with few cores they are often runnable but not running.
		runtime.Gosched()
	}
	g.mu.Lock()
	rest := g.queue[:0]
	for _, op := range g.queue {
		switch {
		case len(batch) == maxGroup:
			rest = append(rest, op)
		case op.state.CompareAndSwap(opQueued, opClaimed):
			batch = append(batch, op)
		}
	}
	clear(g.queue[len(rest):])
	g.queue = rest
	g.mu.Unlock()

	finished := false
	defer func() {
		if !finished {
			// run panicked: fail the others rather than leave them
			// waiting, and let the panic go on.
			for _, op := range batch[1:] {
				op.err = errors.New("sqlstore: write: a write grouped with this one panicked")
				op.wake <- struct{}{}
			}
			g.handOff()
		}
	}()
	g.runBatch(batch)
	finished = true
	for _, op := range batch[1:] {
		op.wake <- struct{}{}
	}
	g.handOff()
	return own.err
}

func (g *group) runBatch(batch []*writeOp) {
	g.busy.Store(len(batch) > 1)
	g.txns.Add(1)
	g.writes.Add(int64(len(batch)))
	if len(batch) == 1 {
		batch[0].err = g.alone(batch[0].ctx, batch[0].fn)
		return
	}
	if err := g.run(batch); err != nil {
		g.failed.Add(1)
		// The transaction failed as a whole (a database error, not one
		// write's): run each write alone, so that a write that cannot
		// commit fails by itself.
		for _, op := range batch {
			op.err = g.alone(op.ctx, op.fn)
		}
	}
}

// handOff makes the first caller still queued lead, or ends the lead.
func (g *group) handOff() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for len(g.queue) > 0 {
		op := g.queue[0]
		g.queue[0] = nil
		g.queue = g.queue[1:]
		if op.state.CompareAndSwap(opQueued, opClaimed) {
			op.lead = true
			op.wake <- struct{}{}
			return
		}
	}
	g.leading = false
}

// runGroup carries ops in one transaction of s, each in a savepoint: a
// write that fails is rolled back to its savepoint and the others go on.
// A write whose context has ended by its turn fails with the context's
// error and runs nothing. The statements run under the group's own
// context, so that one caller's context ending mid-write cannot abort the
// transaction of the others; it ends when every caller's has, so that a
// database that stops answering cannot hold callers past their deadlines.
func (s *Store) runGroup(ops []*writeOp) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	live := atomic.Int64{}
	live.Store(int64(len(ops)))
	for _, op := range ops {
		stop := context.AfterFunc(op.ctx, func() {
			if live.Add(-1) == 0 {
				cancel()
			}
		})
		defer stop()
	}
	err := s.writeOnce(ctx, true, func(q querier) error {
		for _, op := range ops {
			if err := op.ctx.Err(); err != nil {
				op.err = err
				continue
			}
			if err := q.savepoint(ctx); err != nil {
				return err
			}
			op.err = op.fn(q)
			if err := q.release(ctx, op.err == nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		s.ckpt.committed(len(ops))
	}
	if s.writes != nil && s.writes.hasMissed() {
		s.writes.prepareMissed(ctx)
	}
	return err
}
