package sqlstore

import (
	"fmt"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Option configures Open and OpenDB.
type Option func(*config)

// SyncMode is SQLite's synchronous setting: how often it waits for the
// disk. See https://sqlite.org/pragma.html#pragma_synchronous.
type SyncMode string

// Synchronous modes.
const (
	// SyncNormal, in WAL mode, cannot corrupt the database, but a power
	// loss or OS crash (not a process crash) may roll back the last
	// transactions committed before it. It is the default.
	SyncNormal SyncMode = "NORMAL"
	// SyncFull makes every commit durable before it returns, at the cost of
	// one fsync per commit.
	SyncFull SyncMode = "FULL"
)

// config holds the options of a Store.
type config struct {
	sync        SyncMode
	busyTimeout time.Duration
	maxConns    int
	// noListen is Listen(false), noGroup GroupCommit(false).
	noListen, noGroup bool
	// checkpointPages is AutoCheckpoint's.
	checkpointPages int
}

// defaultCheckpointPages is AutoCheckpoint's default.
const defaultCheckpointPages = 10_000

func defaultConfig() config {
	return config{sync: SyncNormal, busyTimeout: 5 * time.Second, checkpointPages: defaultCheckpointPages}
}

func (c *config) validate() error {
	switch c.sync {
	case SyncNormal, SyncFull:
	default:
		return fmt.Errorf("sqlstore: Synchronous(%q) is not supported: use sqlstore.SyncNormal or sqlstore.SyncFull", c.sync)
	}
	if c.busyTimeout < 0 {
		return fmt.Errorf("sqlstore: BusyTimeout(%s) is negative: use 0 to fail at once or a positive duration such as 5*time.Second", c.busyTimeout)
	}
	if c.maxConns < 0 {
		return fmt.Errorf("sqlstore: MaxConns(%d) is negative: use 0 for the default or a positive number", c.maxConns)
	}
	if c.checkpointPages < 0 {
		return fmt.Errorf("sqlstore: AutoCheckpoint(%d) is negative: use 0 for the default or a number of pages such as 10000", c.checkpointPages)
	}
	return nil
}

// Synchronous sets SQLite's synchronous mode. Defaults to SyncNormal.
// PostgreSQL ignores it (its durability is the server's
// synchronous_commit setting).
func Synchronous(m SyncMode) Option { return func(c *config) { c.sync = m } }

// BusyTimeout sets how long a SQLite write waits for another connection or
// process to release the database's write lock before it fails with an
// error wrapping ErrBusy. Defaults to 5s. PostgreSQL ignores it (writers
// wait on row locks until the context ends).
func BusyTimeout(d time.Duration) Option { return func(c *config) { c.busyTimeout = d } }

// MaxConns bounds the connection pool Open creates: for PostgreSQL, the
// connections to the server (idle ones close after 5 minutes; the
// listening connection, see Listen, is one more); for SQLite, the
// connections that serve reads, beside the one connection that serves
// every write. Defaults to 16 for PostgreSQL and to max(4, GOMAXPROCS) for
// SQLite. OpenDB ignores it: the caller configures its own pool.
func MaxConns(n int) Option { return func(c *config) { c.maxConns = n } }

// Listen sets whether a PostgreSQL Store listens for the notifications
// that Updates resolving a request send (see SubscribeResolved), so that
// Gate.Wait wakes within milliseconds of a decision made by another
// process. Listening takes one connection to the server beside the pool,
// from the first Wait until Close. With false, Wait sees other processes'
// decisions at its next poll (approval.Config.PollInterval); the Store's
// own Updates still notify the stores that listen. Defaults to true.
// SQLite ignores it.
func Listen(on bool) Option { return func(c *config) { c.noListen = !on } }

// GroupCommit sets whether the writes of a Store that arrive together
// share a transaction, each in a savepoint of its own (see Group commit in
// the package documentation). With false, every write runs in a
// transaction of its own, on its caller's goroutine and under its
// caller's context: writes then queue for the database's write lock
// (SQLite's, or the audit chain's on PostgreSQL) and each pays for its
// own commit. With 8 concurrent writers the gate's writes measured 1.25 to
// 2 times slower so (see docs/PERFORMANCE.md); a lone writer's cost the
// same either way.
// What a write does, and the errors it can fail with, are the same either
// way. Defaults to true.
func GroupCommit(on bool) Option { return func(c *config) { c.noGroup = !on } }

// AutoCheckpoint sets how large, in pages, a SQLite database's
// write-ahead log may grow before a commit copies it into the database
// file itself (SQLite's wal_autocheckpoint; a page is 4 KiB unless the
// file says otherwise). The Store copies the log in the background (see
// docs/PERFORMANCE.md), but only that commit, with every other write
// waiting, starts the log afresh, and it first syncs the database file: a
// sync that takes longer the more scattered the pages the copies wrote,
// so longer as the file grows. A larger log pays for that less often, and
// each time for the pages written since, a page written many times (the
// end of an index) once. It costs disk (the log's file keeps the largest
// size it reached) and, after a crash, the time to read the log back.
// With a million requests stored, Guard took 1.41 times as long as on an
// empty file at SQLite's 1,000 pages and 1.26 times at 10,000 (medians;
// see docs/PERFORMANCE.md).
// Defaults to 10,000 pages (about 40 MiB); 0 is the default. PostgreSQL
// ignores it. SQLiteDSN applies it to a pool of your own.
func AutoCheckpoint(pages int) Option {
	return func(c *config) {
		c.checkpointPages = pages
		if pages == 0 {
			c.checkpointPages = defaultCheckpointPages
		}
	}
}

func (c *config) poolSize(d Dialect) int {
	switch {
	case c.maxConns > 0:
		return c.maxConns
	case d == Postgres:
		return 16
	}
	return max(4, runtime.GOMAXPROCS(0))
}

// SQLiteDSN returns the modernc.org/sqlite data source name Open uses for
// the database file at path (a path or a file: URI, possibly with
// parameters of its own): WAL journal, foreign keys on, and the
// synchronous mode, busy timeout and automatic checkpoint of opts. Use it
// to open a pool of your own for OpenDB.
func SQLiteDSN(path string, opts ...Option) string {
	c := defaultConfig()
	for _, o := range opts {
		o(&c)
	}
	return c.sqliteDSN(path, false)
}

// sqliteDSN appends the connection settings to path. modernc.org/sqlite
// runs each _pragma on every new connection, busy_timeout first.
func (c *config) sqliteDSN(path string, readOnly bool) string {
	var b strings.Builder
	b.WriteString(path)
	sep := byte('?')
	if strings.Contains(path, "?") {
		sep = '&'
	}
	add := func(pragma string) {
		b.WriteByte(sep)
		sep = '&'
		b.WriteString("_pragma=")
		b.WriteString(url.QueryEscape(pragma))
	}
	add("busy_timeout(" + strconv.FormatInt(c.busyTimeout.Milliseconds(), 10) + ")")
	add("journal_mode(WAL)")
	add("synchronous(" + string(c.sync) + ")")
	add("foreign_keys(1)")
	// Savepoints (a group's writes: see groupcommit) and statements keep the
	// original of each page they change in a sub-journal, a temporary
	// file unless temporary storage is in memory.
	add("temp_store(MEMORY)")
	if readOnly {
		add("query_only(1)")
	} else {
		add("wal_autocheckpoint(" + strconv.Itoa(c.checkpointPages) + ")")
	}
	return b.String()
}

// writerDSN is sqliteDSN for the writer pool of a Store made by Open, whose
// database/sql transactions the driver then begins with BEGIN IMMEDIATE
// (_txlock): see sqliteTx for why. A caller's pool keeps its own _txlock,
// since the store issues BEGIN IMMEDIATE itself on those.
func (c *config) writerDSN(path string) string {
	return c.sqliteDSN(path, false) + "&_txlock=immediate"
}

// isMemoryDSN reports whether a SQLite DSN names an in-memory database,
// which exists once per connection and so must be served by one.
func isMemoryDSN(dsn string) bool {
	return dsn == ":memory:" || strings.HasPrefix(dsn, "file::memory:") || strings.Contains(dsn, "mode=memory")
}
