package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/groupcommit"
	"github.com/signoff/approval/internal/pgpipe"
	"github.com/signoff/approval/internal/sqlitewal"
	"github.com/signoff/approval/internal/stmtcache"
	"github.com/signoff/approval/internal/testsignal"
	"github.com/signoff/approval/internal/wake"
)

// Store is an approval.Store over database/sql, on SQLite or PostgreSQL.
// Create one with Open or OpenDB; the zero value is not usable. A Store is
// safe for concurrent use, and several Stores (in one process or many) on
// one database behave as one store.
type Store struct {
	dialect Dialect
	cfg     config
	// w serves writes. For SQLite it has one connection, so the
	// process's writers queue in the pool rather than in SQLite's
	// busy-wait loop; other processes still wait in the busy handler.
	w *sql.DB
	// r serves reads: the same pool as w for PostgreSQL and for OpenDB,
	// a pool of query_only connections for SQLite files, which WAL lets
	// read while a write is in progress.
	r *sql.DB
	// writes and reads cache prepared statements for the pools of a
	// SQLite Store made by Open (one cache if w and r are one pool); nil
	// otherwise.
	writes, reads *stmtcache.Cache
	// ckpt checkpoints the WAL of a SQLite file Open opened; nil
	// otherwise.
	ckpt *sqlitewal.Checkpointer
	// own is set when Close must close the pools.
	own bool
	// names remembers the side-table names of recent requests, for Update.
	names nameCache
	// group carries the Store's writes, several to a transaction when
	// they arrive together; nil with GroupCommit(false).
	group *groupcommit.Group[querier]
	// watch holds the subscriptions of Gate.Wait calls (see
	// SubscribeResolved); listen feeds them the notifications of other
	// processes, on PostgreSQL unless Listen(false); channel is the
	// PostgreSQL notification channel (see channelName).
	watch   wake.Set
	listen  *listener
	channel string

	// begins is sent, for tests, just before a SQLite write transaction
	// begins (and may wait for the write lock).
	begins testsignal.Signal[struct{}]
}

var _ approval.Store = (*Store)(nil)

// Open connects to the database named by dsn, creating a SQLite file if
// needed, and runs Migrate.
//
// A dsn starting with postgres:// or postgresql://, or a libpq key=value
// string with host= or dbname=, is PostgreSQL, for example
// "postgres://user:pass@db.internal:5432/approval?sslmode=verify-full" or
// "postgres:///approval?host=/var/run/postgresql"; a search_path parameter
// selects the schema (which must exist). Anything else is the path of a
// SQLite database file ("approval.db"), or a file: URI, and is opened in
// WAL mode with foreign keys on, the Synchronous mode and BusyTimeout of
// opts, and immediate write transactions; its WAL is copied into the
// database file in the background, from a connection of the Store's own
// (see docs/PERFORMANCE.md). ":memory:" opens a private in-memory database
// served by one connection.
//
// Close the Store when done.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	dsn = strings.TrimSpace(dsn)
	if dsn == "" {
		return nil, errors.New(`sqlstore: Open: empty DSN: pass a SQLite file path such as "approval.db" or a PostgreSQL URL such as "postgres://user@host/db"`)
	}
	s := newStore(DialectOf(dsn), cfg)
	s.own = true
	if s.dialect == Postgres {
		if err := s.openPostgres(ctx, dsn); err != nil {
			return nil, err
		}
	} else if err := s.openSQLite(ctx, dsn); err != nil {
		return nil, err
	}
	if err := s.Migrate(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) openPostgres(ctx context.Context, dsn string) error {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return fmt.Errorf("sqlstore: Open: invalid PostgreSQL DSN: %w (want postgres://user:pass@host:5432/dbname or host=... dbname=...)", err)
	}
	n := s.cfg.poolSize(Postgres)
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return fmt.Errorf("sqlstore: Open: connect to PostgreSQL: %w (is the server running, and are the host, port, user, password and database name in the DSN right?)", err)
	}
	s.w, s.r = db, db
	if err := s.setChannel(ctx); err != nil {
		_ = db.Close()
		return fmt.Errorf("sqlstore: Open: read current_schema(): %w", err)
	}
	return nil
}

func (s *Store) openSQLite(ctx context.Context, dsn string) error {
	if isMemoryDSN(dsn) {
		db, err := sql.Open("sqlite", s.cfg.writerDSN(dsn))
		if err != nil {
			return fmt.Errorf("sqlstore: Open: %w", err)
		}
		// An in-memory database lives and dies with its connection.
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
		s.w, s.r = db, db
		s.writes = stmtcache.New(db)
		s.reads = s.writes
		return nil
	}
	hint := func(err error) error {
		if dir := filepath.Dir(strings.TrimPrefix(strings.SplitN(dsn, "?", 2)[0], "file:")); dir != "" {
			if _, serr := os.Stat(dir); serr != nil {
				return fmt.Errorf("sqlstore: Open: SQLite database %q: directory %s does not exist (create it first): %w", dsn, dir, err)
			}
		}
		return fmt.Errorf("sqlstore: Open: SQLite database %q: %w (is the path a writable file or directory, not used by a non-WAL program?)", dsn, err)
	}
	w, err := sql.Open("sqlite", s.cfg.writerDSN(dsn))
	if err != nil {
		return hint(err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := pingSQLite(ctx, w, s.cfg.busyTimeout); err != nil {
		_ = w.Close()
		return hint(s.wrapBusy(err))
	}
	r, err := sql.Open("sqlite", s.cfg.sqliteDSN(dsn, true))
	if err != nil {
		_ = w.Close()
		return hint(err)
	}
	n := s.cfg.poolSize(SQLite)
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	r.SetConnMaxIdleTime(5 * time.Minute)
	ckpt, err := sqlitewal.Start(s.cfg.sqliteDSN(dsn, false))
	if err != nil {
		_ = w.Close()
		_ = r.Close()
		return hint(err)
	}
	s.w, s.r, s.ckpt = w, r, ckpt
	s.writes, s.reads = stmtcache.New(w), stmtcache.New(r)
	return nil
}

// pingSQLite opens db's first connection, whose pragmas switch a new
// database to WAL. While one connection makes that switch, SQLite answers
// another that opens the file SQLITE_BUSY at once, without calling its busy
// handler, so several processes creating one database together would fail
// at random: pingSQLite waits for the switch as the busy timeout would.
func pingSQLite(ctx context.Context, db *sql.DB, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := db.PingContext(ctx)
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// OpenDB returns a Store over a pool the caller opened and owns: Close
// leaves it open. It does not run Migrate: call it once before use. The
// driver must be pgx's stdlib for Postgres, or modernc.org/sqlite for
// SQLite, whose DSN should enable WAL, foreign keys and a busy timeout
// (SQLiteDSN builds one); Synchronous, BusyTimeout, AutoCheckpoint and
// MaxConns are not applied to a caller's pool (set the first three in the
// DSN: _pragma=synchronous(...), busy_timeout(...), wal_autocheckpoint(...)). The store takes SQLite's write lock with
// BEGIN IMMEDIATE itself, whatever the DSN's _txlock; it keeps no prepared
// statements on a caller's SQLite pool and leaves its checkpoints to
// SQLite's automatic ones. A PostgreSQL pool must be pgx's stdlib: the
// store writes through pgx's connection, to pipeline; it listens for
// notifications (see Listen) on a connection of its own, outside the
// pool, with the settings of the pool's connections.
func OpenDB(ctx context.Context, db *sql.DB, dialect Dialect, opts ...Option) (*Store, error) {
	if db == nil {
		return nil, errors.New("sqlstore: OpenDB: nil *sql.DB (open one with sql.Open, or use sqlstore.Open)")
	}
	if !dialect.valid() {
		return nil, fmt.Errorf("sqlstore: OpenDB: unknown dialect %q: use sqlstore.SQLite or sqlstore.Postgres", dialect)
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if err := db.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("sqlstore: OpenDB: ping %s: %w", dialect, err)
	}
	if dialect == Postgres {
		if err := pgpipe.Raw(ctx, db, func(*pgx.Conn) error { return nil }); err != nil {
			return nil, fmt.Errorf("sqlstore: OpenDB: %w", err)
		}
	}
	s := newStore(dialect, cfg)
	s.w, s.r = db, db
	if dialect == Postgres {
		if err := s.setChannel(ctx); err != nil {
			return nil, fmt.Errorf("sqlstore: OpenDB: read current_schema(): %w", err)
		}
	}
	return s, nil
}

func newStore(d Dialect, cfg config) *Store {
	s := &Store{dialect: d, cfg: cfg}
	if !cfg.noGroup {
		s.group = groupcommit.New(s.txn)
	}
	if d == Postgres && !cfg.noListen {
		s.listen = newListener(s)
	}
	return s
}

func newConfig(opts []Option) (config, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	return cfg, cfg.validate()
}

// Dialect reports the database the Store is on.
func (s *Store) Dialect() Dialect { return s.dialect }

// Close stops the background checkpoints and the listener (see
// SubscribeResolved), closing its connection, and closes the prepared
// statements and connection pools Open created. It leaves open the pool of
// a Store made by OpenDB, which belongs to the caller. Subscriptions still
// open are woken no more. No method may be called after Close.
func (s *Store) Close() error {
	if s.listen != nil {
		s.listen.close()
	}
	err := errors.Join(s.ckpt.Close(), s.writes.Close())
	if s.reads != s.writes {
		err = errors.Join(err, s.reads.Close())
	}
	if !s.own {
		return err
	}
	err = errors.Join(err, s.w.Close())
	if s.r != s.w {
		err = errors.Join(err, s.r.Close())
	}
	return err
}

// fail wraps a failed operation's error: the context's error when the
// context ended (whatever the driver made of it), unless the error says
// the outcome is unknown; otherwise err with op.
func fail(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) && !errors.Is(err, ErrOutcomeUnknown) {
		return fmt.Errorf("sqlstore: %s: %w", op, cerr)
	}
	if isBadText(err) && !errors.Is(err, ErrInvalidText) {
		return fmt.Errorf("sqlstore: %s: %w: %w", op, ErrInvalidText, err)
	}
	return fmt.Errorf("sqlstore: %s: %w", op, err)
}
