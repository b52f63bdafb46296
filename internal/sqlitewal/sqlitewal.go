// Package sqlitewal copies the write-ahead log of a SQLite database back
// into the database file in the background (checkpoints), on a connection
// of its own, so that the commits of the database's writer seldom have to.
//
// It guarantees that it changes nothing about durability or about what
// readers and writers see: a checkpoint syncs the WAL before it copies, as
// SQLite's automatic one does, and a PASSIVE checkpoint neither waits for
// nor blocks readers and the writer. SQLite's automatic checkpoint stays on
// as a backstop, should this one fall behind or fail (its errors are not
// reported, since the backstop makes them harmless).
//
// It exists because SQLite's automatic checkpoint runs inside the commit
// that makes the WAL reach its wal_autocheckpoint size (1,000 pages unless
// the connection says otherwise; sqlstore's writer says 10,000), on the
// writer's connection: that commit then also syncs the WAL, copies every
// page the WAL holds into the database file and syncs that, while every
// other write waits for the one writer. At 1,000 pages a write that
// touches many b-trees filled the WAL every 80 or so writes, and that work
// was about a fifth of a write's time (see docs/PERFORMANCE.md). SQLite
// lets one checkpoint run beside a write transaction, so a checkpoint on
// another connection does the same work beside the writer instead of
// inside it.
//
// Under a steady stream of writes the backstop still runs: SQLite starts
// the WAL afresh only once a checkpoint has copied all of it and synced
// the database file, and a passive checkpoint seldom finishes while writes
// keep landing. The automatic checkpoint then finds most pages already
// copied, but it still syncs the database file, which waits for every page
// the checkpoints copied since the last sync: on a large file, whose pages
// lie far apart, that sync costs the commit milliseconds, which is why the
// WAL is allowed to grow well past what one checkpoint here copies.
package sqlitewal

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"

	"github.com/signoff/approval/internal/testsignal"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Every is how many writes start a checkpoint. A write of 5 to 15 pages
// then checkpoints every few hundred pages: well before SQLite's automatic
// checkpoint would run inside a commit.
const Every = 64

// A Checkpointer checkpoints one SQLite database in the background. Create
// one with Start; the zero value is not usable, but a nil *Checkpointer is
// one that does nothing. It is safe for concurrent use.
type Checkpointer struct {
	db     *sql.DB
	writes atomic.Int64
	kick   chan struct{}
	runs   atomic.Int64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// asked is sent, for tests, the write count at which Committed asked
	// for a checkpoint, before it returns.
	asked testsignal.Signal[int64]
}

// Start opens one connection to the SQLite database named by dsn, a DSN of
// modernc.org/sqlite that can write (the checkpoint writes the database
// file), and starts the checkpoint goroutine. Close stops it.
func Start(dsn string) (*Checkpointer, error) {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	c := &Checkpointer{db: db, kick: make(chan struct{}, 1)}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.wg.Add(1)
	go c.run()
	return c, nil
}

// Committed counts writes the database has committed, and asks for a
// checkpoint every Every writes. It never blocks: if a checkpoint is
// already asked for, one more request adds nothing. After Close it does
// nothing.
func (c *Checkpointer) Committed(writes int) {
	if c == nil {
		return
	}
	n := c.writes.Add(int64(writes))
	if n/Every == (n-int64(writes))/Every {
		return
	}
	c.asked.Signal(n)
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Checkpoints returns how many checkpoints have been attempted.
func (c *Checkpointer) Checkpoints() int64 {
	if c == nil {
		return 0
	}
	return c.runs.Load()
}

func (c *Checkpointer) run() {
	defer c.wg.Done()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.kick:
		}
		c.runs.Add(1)
		// PASSIVE fails at once if another checkpoint is running (another
		// process may be checkpointing the same file), which is as good.
		_, _ = c.db.ExecContext(c.ctx, "PRAGMA wal_checkpoint(PASSIVE)")
	}
}

// Close stops the goroutine, interrupting a checkpoint in progress (which
// SQLite resumes next time), and closes the connection.
func (c *Checkpointer) Close() error {
	if c == nil {
		return nil
	}
	c.cancel()
	c.wg.Wait()
	return c.db.Close()
}
