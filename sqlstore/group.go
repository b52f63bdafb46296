package sqlstore

import (
	"context"
	"errors"
	"fmt"
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
// The caller whose write finds no transaction in progress leads: it takes
// the queue and runs the transaction, then hands the lead to the first
// caller still queued. A write alone runs on its caller's goroutine, as it
// would without a group, in a transaction of its own. A transaction of
// several writes runs on a goroutine of its own, so that every caller in
// it, the leader included, can leave when its context ends (see wait);
// but on the leader's, if the leader's context can never end (it has no
// Done channel): that saves a goroutine switch per transaction, which
// with busy cores costs the next transaction some of its writes.
//
// Every caller hears of its write only after the transaction carrying it
// has committed (or failed): a write reported done is durable as the
// Store's settings make any commit. A caller whose context ends first
// returns at once, with an error saying whether its write may still
// commit (see wait).
type group struct {
	// run carries ops (two or more) in one transaction and sets the err
	// of each. It reports an error when the transaction itself failed:
	// having committed nothing (then each op is run again alone), or with
	// its outcome unknown (ErrOutcomeUnknown: then each op that had not
	// failed by itself fails with that error, since running it again
	// could apply it twice).
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

// The states of a write. A queued write goes, once, to opLeading (handOff
// made its caller lead), to opClaimed (a leader took it into its
// transaction) or to opAbandoned (its caller's context ended first). A
// leader's own write goes from opLeading to opClaimed when it joins a
// transaction of several.
const (
	opQueued int32 = iota
	opLeading
	opClaimed
	opAbandoned
)

type writeOp struct {
	ctx   context.Context
	fn    func(q querier) error
	err   error
	state atomic.Int32
	// wake tells the caller its op is done, or, in state opLeading, that
	// it leads now.
	wake chan struct{}
}

// do runs fn in a write transaction, alone or with others, and returns its
// error. fn may run more than once, in different transactions: it must
// reset anything it captures at its start.
func (g *group) do(ctx context.Context, fn func(q querier) error) error {
	op := &writeOp{ctx: ctx, fn: fn, wake: make(chan struct{}, 1)}
	g.mu.Lock()
	if !g.leading {
		g.leading = true
		g.mu.Unlock()
		op.state.Store(opLeading)
		return g.lead(op)
	}
	g.queue = append(g.queue, op)
	g.mu.Unlock()
	return g.wait(op)
}

// wait waits until op is done, or until its caller is made leader, and
// then leads. If the caller's context ends first, it returns the context's
// error at once: an op still queued is dropped and never runs; an op in a
// transaction may still commit, so its error also wraps ErrOutcomeUnknown.
// Only a caller just made leader waits on, for handOff wakes it at once.
func (g *group) wait(op *writeOp) error {
	select {
	case <-op.wake:
	case <-op.ctx.Done():
		if op.state.CompareAndSwap(opQueued, opAbandoned) {
			return op.ctx.Err()
		}
		if op.state.Load() == opClaimed {
			select {
			case <-op.wake:
				return op.err
			default:
				return fmt.Errorf("%w (%w)", op.ctx.Err(), ErrOutcomeUnknown)
			}
		}
		<-op.wake
	}
	if op.state.Load() == opLeading {
		return g.lead(op)
	}
	return op.err
}

// lead runs own, and the writes queued with it, then hands the lead on.
func (g *group) lead(own *writeOp) error {
	if g.busy.Load() {
		// Under concurrent writes, let the callers that are about to
		// write join this transaction rather than wait for the next:
		// with few cores they are often runnable but not running.
		runtime.Gosched()
	}
	batch := []*writeOp{own}
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

	g.busy.Store(len(batch) > 1)
	g.txns.Add(1)
	g.writes.Add(int64(len(batch)))
	if len(batch) == 1 {
		// A panic in the write goes to its caller, after the lead.
		defer g.handOff()
		return g.alone(own.ctx, own.fn)
	}
	own.state.Store(opClaimed)
	if own.ctx.Done() == nil {
		// The leader's caller could never leave early: run here. A panic
		// becomes each write's error, as on a goroutine of its own.
		g.runBatch(batch)
		<-own.wake
		return own.err
	}
	go g.runBatch(batch)
	return g.wait(own)
}

// runBatch runs a transaction of several writes, tells each caller, and
// hands the lead on. A panic fails every write that had not failed by
// itself: the transaction did not commit.
func (g *group) runBatch(batch []*writeOp) {
	defer func() {
		if p := recover(); p != nil {
			err := fmt.Errorf("sqlstore: write: panic in a transaction of %d writes: %v", len(batch), p)
			for _, op := range batch {
				if op.err == nil {
					op.err = err
				}
			}
		}
		for _, op := range batch {
			op.wake <- struct{}{}
		}
		g.handOff()
	}()
	err := g.run(batch)
	if err == nil {
		return
	}
	g.failed.Add(1)
	if errors.Is(err, ErrOutcomeUnknown) {
		for _, op := range batch {
			if op.err == nil {
				op.err = err
			}
		}
		return
	}
	// The transaction failed as a whole (a database error, not one
	// write's) and committed nothing: run each write alone, so that a
	// write that cannot commit fails by itself.
	for _, op := range batch {
		op.err = g.alone(op.ctx, op.fn)
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
		if op.state.CompareAndSwap(opQueued, opLeading) {
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
// transaction no caller waits for any more (each has left at its deadline:
// see wait) is abandoned rather than left waiting on the database.
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
