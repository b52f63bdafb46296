package sqlstore

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
)

// checkpointEvery is how many of a Store's SQLite writes start a
// background checkpoint. The store's writes put 5 to 15 pages each in the
// WAL (fewer when grouped), so this checkpoints after a few hundred pages:
// before SQLite's own automatic checkpoint (at 1,000 pages) would run
// inside a commit.
const checkpointEvery = 64

// checkpointer copies the WAL of a SQLite file back into the database in
// the background, on a connection of its own.
//
// SQLite's automatic checkpoint runs inside the commit that makes the WAL
// reach 1,000 pages, on the writer's connection: that commit then also
// syncs the WAL, copies every page the WAL holds into the database file and
// syncs that, while every other write waits for the one writer connection.
// A write of the store touches many b-trees, so the WAL fills every 80 or
// so writes, and that work was about a fifth of a SyncNormal write's time
// in the gate benchmarks. A PASSIVE checkpoint on another connection does the
// same work beside the writer instead of inside it: SQLite lets one
// checkpoint run concurrently with a write transaction. Nothing about
// durability changes: a checkpoint syncs the WAL before it copies, as the
// automatic one does, and it runs more often. The automatic checkpoint
// stays on as a backstop, should this one fall behind (or fail: its errors
// are not reported, since the backstop makes them harmless).
//
// Under a steady stream of writes the backstop still runs: SQLite starts
// the WAL afresh only once a checkpoint has copied all of it, and a
// passive checkpoint seldom does while writes keep landing. The automatic
// checkpoint then finds most pages already copied, so it costs a commit
// little more than its two syncs, about once every 1,000 pages: about a
// tenth of the CPU samples of the one-caller SyncNormal guard-create
// benchmark (BenchmarkGate).
//
// A checkpointer is safe for concurrent use.
type checkpointer struct {
	db     *sql.DB
	writes atomic.Int64
	kick   chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// runs counts the checkpoints attempted, for tests.
	runs atomic.Int64
}

// startCheckpointer opens a one-connection pool on the SQLite database
// named by dsn (a writer DSN: the checkpoint writes the database file) and
// starts the checkpoint goroutine. Close stops it.
func startCheckpointer(dsn string) (*checkpointer, error) {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	c := &checkpointer{db: db, kick: make(chan struct{}, 1)}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.wg.Add(1)
	go c.run()
	return c, nil
}

// committed counts the writes of a commit of the store (several, for a
// group: see group), and asks for a checkpoint every checkpointEvery
// writes. It never blocks: if a checkpoint is already asked for, one more
// request adds nothing.
func (c *checkpointer) committed(writes int) {
	if c == nil {
		return
	}
	n := c.writes.Add(int64(writes))
	if n/checkpointEvery == (n-int64(writes))/checkpointEvery {
		return
	}
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *checkpointer) run() {
	defer c.wg.Done()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.kick:
		}
		c.runs.Add(1)
		// PASSIVE neither waits for nor blocks readers and the writer; it
		// fails at once if another checkpoint is running (another process
		// may be checkpointing the same file), which is as good.
		_, _ = c.db.ExecContext(c.ctx, "PRAGMA wal_checkpoint(PASSIVE)")
	}
}

// close stops the goroutine, interrupting a checkpoint in progress (which
// SQLite resumes next time), and closes the connection.
func (c *checkpointer) close() error {
	if c == nil {
		return nil
	}
	c.cancel()
	c.wg.Wait()
	return c.db.Close()
}
