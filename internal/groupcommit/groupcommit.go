// Package groupcommit carries the concurrent writes of a store in shared
// transactions (group commit), for a store whose write transactions run one
// at a time anyway.
//
// A Group runs one transaction at a time. The writes that arrive while it
// runs queue, and the next transaction carries all of them (up to
// MaxWrites), each inside a savepoint of its own (see Tx). It guarantees
// that each write has the outcome it would have in a transaction of its
// own: a write that fails is rolled back to its savepoint and reported to
// its caller alone, and the others commit; no caller hears of its write
// before the transaction carrying it has committed, so a nil error means
// committed; if a transaction of several fails as a whole before its
// COMMIT (a database error rather than one write's), each of its writes
// runs again alone, so that one bad write cannot fail the others; and if
// the COMMIT was sent but not answered (the transaction's error wraps
// ErrOutcomeUnknown), every write of it fails with that error and none
// runs again, since running a write again that may have committed could
// apply it twice. A caller whose context ends returns at once: with the
// context's error if its write was still queued, which then never runs,
// and with an error wrapping both the context's error and
// ErrOutcomeUnknown if its write was in a transaction, which may still
// commit it.
//
// It exists because a write transaction's fixed costs (BEGIN and COMMIT,
// the commit's fsync or WAL flush, a round trip, the pages at the end of
// each index) dominate a short write's, and a store whose writes are
// serialised (SQLite's one writer, PostgreSQL's audit chain lock) pays
// them once per write without it. With several writes to a transaction
// they are paid once per transaction: see docs/PERFORMANCE.md.
package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/signoff/approval/internal/testsignal"
)

// ErrOutcomeUnknown is wrapped by the error of a write whose transaction's
// COMMIT was sent but not answered, or whose caller left (its context
// ended) while the transaction carrying it ran: the write may have
// committed. A transaction function reports an unanswered COMMIT by
// returning an error that wraps it.
var ErrOutcomeUnknown = errors.New("the transaction's outcome is unknown: it may have committed")

// MaxWrites bounds the writes one transaction carries, so that a caller
// whose write joins a transaction waits for at most this many others.
const MaxWrites = 32

// Tx is a transaction that can carry several writes, each between a
// Savepoint and a Release.
type Tx interface {
	// Savepoint starts a write. An error fails the whole transaction.
	Savepoint(ctx context.Context) error
	// Release ends the write Savepoint started, keeping its changes if
	// keep is set and rolling them back to the savepoint otherwise. An
	// error fails the whole transaction.
	Release(ctx context.Context, keep bool) error
}

// Write is one write: it runs its statements on tx under ctx (the
// transaction's context, not its caller's: see Group.Do). It may run more
// than once, in different transactions, so it must reset anything it
// captures at its start.
type Write[T Tx] func(ctx context.Context, tx T) error

// A Group carries writes in shared transactions. Create one with New; the
// zero value is not usable. A Group is safe for concurrent use.
//
// The caller whose write finds no transaction in progress leads: it takes
// the queue and runs the transaction, then hands the lead to the first
// caller still queued. A write alone runs on its caller's goroutine, in a
// transaction of its own, under its caller's context. A transaction of
// several runs on a goroutine of its own, so that every caller in it, the
// leader included, can leave when its context ends; but on the leader's,
// if the leader's context can never end (it has no Done channel): that
// saves a goroutine switch per transaction, which with busy cores costs
// the next transaction some of its writes.
type Group[T Tx] struct {
	txn func(ctx context.Context, fn Write[T]) error

	mu      sync.Mutex
	queue   []*op[T]
	leading bool
	busy    atomic.Bool

	txns, writes, failed atomic.Int64

	// callerLeft is sent, for tests, how many callers of a transaction
	// of several are still in it each time one leaves.
	callerLeft testsignal.Signal[int64]
}

// New returns a Group whose transactions run through txn. txn runs fn in
// one transaction under ctx and commits it if fn returns nil, and returns
// fn's error or the transaction's; it may run fn again (after a deadlock,
// say). Its error must wrap ErrOutcomeUnknown if it sent COMMIT and heard
// no answer.
func New[T Tx](txn func(ctx context.Context, fn Write[T]) error) *Group[T] {
	return &Group[T]{txn: txn}
}

// Stats counts what a Group has done since New.
type Stats struct {
	// Transactions is the number of transactions run.
	Transactions int64
	// Writes is the number of writes they carried.
	Writes int64
	// Failed is the number of transactions of several writes that failed
	// as a whole, whose writes then ran again alone.
	Failed int64
	// Queued is the number of writes queued now for the next
	// transaction, counting those whose callers have left until it drops
	// them.
	Queued int
}

// Stats returns the Group's counts.
func (g *Group[T]) Stats() Stats {
	g.mu.Lock()
	queued := len(g.queue)
	g.mu.Unlock()
	return Stats{Transactions: g.txns.Load(), Writes: g.writes.Load(), Failed: g.failed.Load(), Queued: queued}
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

type op[T Tx] struct {
	ctx   context.Context
	fn    Write[T]
	err   error
	state atomic.Int32
	// wake tells the caller its write is done, or, in state opLeading,
	// that it leads now.
	wake chan struct{}
}

// Do runs fn in a transaction, alone or with other writes, and returns its
// error once the transaction has committed or failed. fn's statements run
// under the context Do passes it: ctx when fn runs alone; in a transaction
// of several, a context of the Group's own that ends when every caller's
// has, so that one caller leaving cannot abort the others' transaction,
// and a transaction no caller waits for any more is abandoned rather than
// left waiting on the database.
func (g *Group[T]) Do(ctx context.Context, fn Write[T]) error {
	o := &op[T]{ctx: ctx, fn: fn, wake: make(chan struct{}, 1)}
	g.mu.Lock()
	if !g.leading {
		g.leading = true
		g.mu.Unlock()
		o.state.Store(opLeading)
		return g.lead(o)
	}
	g.queue = append(g.queue, o)
	g.mu.Unlock()
	return g.wait(o)
}

// wait waits until o is done, or until its caller is made leader, and then
// leads. If the caller's context ends first, it returns the context's
// error at once: a write still queued is dropped and never runs; a write in
// a transaction may still commit, so its error also wraps
// ErrOutcomeUnknown. Only a caller just made leader waits on, for handOff
// wakes it at once.
func (g *Group[T]) wait(o *op[T]) error {
	select {
	case <-o.wake:
	case <-o.ctx.Done():
		if o.state.CompareAndSwap(opQueued, opAbandoned) {
			return o.ctx.Err()
		}
		if o.state.Load() == opClaimed {
			select {
			case <-o.wake:
				return o.err
			default:
				return fmt.Errorf("%w (%w)", o.ctx.Err(), ErrOutcomeUnknown)
			}
		}
		<-o.wake
	}
	if o.state.Load() == opLeading {
		return g.lead(o)
	}
	return o.err
}

// lead runs own, and the writes queued with it, then hands the lead on.
func (g *Group[T]) lead(own *op[T]) error {
	if g.busy.Load() {
		// Under concurrent writes, let the callers that are about to
		// write join this transaction rather than wait for the next:
		// with few cores they are often runnable but not running.
		runtime.Gosched()
	}
	batch := []*op[T]{own}
	g.mu.Lock()
	rest := g.queue[:0]
	for _, o := range g.queue {
		switch {
		case len(batch) == MaxWrites:
			rest = append(rest, o)
		case o.state.CompareAndSwap(opQueued, opClaimed):
			batch = append(batch, o)
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
		return g.txn(own.ctx, own.fn)
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
func (g *Group[T]) runBatch(batch []*op[T]) {
	defer func() {
		if p := recover(); p != nil {
			err := fmt.Errorf("panic in a transaction of %d writes: %v", len(batch), p)
			for _, o := range batch {
				if o.err == nil {
					o.err = err
				}
			}
		}
		for _, o := range batch {
			o.wake <- struct{}{}
		}
		g.handOff()
	}()
	err := g.commit(batch)
	if err == nil {
		return
	}
	g.failed.Add(1)
	if errors.Is(err, ErrOutcomeUnknown) {
		for _, o := range batch {
			if o.err == nil {
				o.err = err
			}
		}
		return
	}
	// The transaction failed as a whole (a database error, not one
	// write's) and committed nothing: run each write alone, so that a
	// write that cannot commit fails by itself.
	for _, o := range batch {
		o.err = g.txn(o.ctx, o.fn)
	}
}

// commit carries batch in one transaction, each write in a savepoint: a
// write that fails is rolled back to its savepoint and the others go on. A
// write whose context has ended by its turn fails with the context's error
// and runs nothing. It returns the transaction's error, having set each
// write's.
func (g *Group[T]) commit(batch []*op[T]) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var live atomic.Int64
	live.Store(int64(len(batch)))
	for _, o := range batch {
		stop := context.AfterFunc(o.ctx, func() {
			n := live.Add(-1)
			if n == 0 {
				cancel()
			}
			g.callerLeft.Signal(n)
		})
		defer stop()
	}
	return g.txn(ctx, func(ctx context.Context, tx T) error {
		for _, o := range batch {
			if err := o.ctx.Err(); err != nil {
				o.err = err
				continue
			}
			if err := tx.Savepoint(ctx); err != nil {
				return err
			}
			o.err = o.fn(ctx, tx)
			if err := tx.Release(ctx, o.err == nil); err != nil {
				return err
			}
		}
		return nil
	})
}

// handOff makes the first caller still queued lead, or ends the lead.
func (g *Group[T]) handOff() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for len(g.queue) > 0 {
		o := g.queue[0]
		g.queue[0] = nil
		g.queue = g.queue[1:]
		if o.state.CompareAndSwap(opQueued, opLeading) {
			o.wake <- struct{}{}
			return
		}
	}
	g.leading = false
}
