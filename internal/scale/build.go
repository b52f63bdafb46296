package scale

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/pgtest"
	"github.com/signoff/approval/memstore"
	"github.com/signoff/approval/sqlstore"
)

// Backend names a kind of store Build makes.
type Backend string

// The backends.
const (
	// Memory is memstore, keeping every request (WithRetention(-1)): with
	// the default retention it would drop the requests that ended.
	Memory Backend = "memstore"
	// SQLite is sqlstore on a SQLite file in a temporary directory.
	SQLite Backend = "sqlite"
	// Postgres is sqlstore on a schema of its own in the database
	// APPROVAL_POSTGRES_DSN names (see internal/pgtest): without it, Build
	// skips the test.
	Postgres Backend = "postgres"
)

// Backends lists every Backend.
var Backends = []Backend{Memory, SQLite, Postgres}

// Built is a store Build made.
type Built struct {
	// Store is the store, a *memstore.Store or a *sqlstore.Store, closed
	// (and its database removed) when the test ends.
	Store approval.Store
	// Backend is the kind of store.
	Backend Backend
	// DSN is what an SQL store was opened with (sqlstore.Open's dsn): the
	// SQLite file's path, or a PostgreSQL DSN whose search_path selects
	// the store's schema. Empty for memstore.
	DSN string
	// Spec is the Spec the store was built to, its defaults filled in.
	Spec Spec
	// Live counts the requests among Spec.Requests that have not ended:
	// pending, or approved and not yet used.
	Live int
	// Events counts the audit events the store holds.
	Events int64
	// Took is how long Build took.
	Took time.Duration
	// Cached is set when Build copied the store's file from EnvCache
	// instead of building it.
	Cached bool

	// opts are the sqlstore options it was opened with.
	opts []sqlstore.Option
}

// Build makes a store of backend holding the requests spec describes (see
// the package documentation for how), and fails or skips tb if it
// cannot. opts are the options of an SQL store's Open; memstore ignores
// them.
func Build(tb testing.TB, backend Backend, spec Spec, opts ...sqlstore.Option) *Built {
	tb.Helper()
	start := time.Now()
	ctx := context.Background()
	g, err := newGenerator(spec)
	if err != nil {
		tb.Fatal(err)
	}
	b := &Built{Backend: backend, Spec: g.spec, Live: len(g.order) - g.ended, opts: opts}
	switch backend {
	case Memory:
		st := memstore.New(memstore.WithRetention(-1))
		err = loadMemory(ctx, st, g)
		b.Store = st
	case SQLite:
		b.DSN = filepath.Join(tb.TempDir(), "approval.db")
		err = b.buildSQLite(ctx, g, spec.End.IsZero())
	case Postgres:
		b.DSN = pgtest.DSN(tb)
		err = b.loadSQL(ctx, g)
	default:
		err = fmt.Errorf("scale: unknown backend %q: use one of %v", backend, Backends)
	}
	if b.Events == 0 {
		b.Events = g.seq
	}
	if err == nil && b.Store == nil {
		b.Store, err = sqlstore.Open(ctx, b.DSN, opts...)
	}
	if err != nil {
		tb.Fatalf("scale: build %d requests on %s: %v", g.spec.Requests, backend, err)
	}
	if c, ok := b.Store.(interface{ Close() error }); ok {
		tb.Cleanup(func() { _ = c.Close() })
	}
	b.Took = time.Since(start)
	return b
}

// buildSQLite makes the SQLite file at b.DSN: a copy of the one EnvCache
// holds for the Spec, if any (and if the caller left Spec.End to the
// default, one built less than cacheFor ago); else it loads the stream,
// and copies the file into EnvCache if set.
func (b *Built) buildSQLite(ctx context.Context, g *generator, anyEnd bool) error {
	dir := os.Getenv(EnvCache)
	if dir == "" {
		return b.loadSQL(ctx, g)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	prefix := cachePrefix(g.spec)
	names, err := filepath.Glob(filepath.Join(dir, prefix+"*.db"))
	if err != nil {
		return err
	}
	var best string
	var bestEnd time.Time
	for _, name := range names {
		var end, events int64
		if _, err := fmt.Sscanf(strings.TrimPrefix(filepath.Base(name), prefix), "end%d-events%d.db", &end, &events); err != nil {
			continue
		}
		at := time.Unix(end, 0).UTC()
		if (anyEnd && time.Since(at) < cacheFor && at.After(bestEnd)) || (!anyEnd && at.Equal(g.spec.End)) {
			best, bestEnd, b.Events = name, at, events
		}
	}
	if best != "" {
		b.Spec.End, b.Cached = bestEnd, true
		return copyFile(best, b.DSN)
	}
	if err := b.loadSQL(ctx, g); err != nil {
		return err
	}
	name := filepath.Join(dir, fmt.Sprintf("%send%d-events%d.db", prefix, g.spec.End.Unix(), g.seq))
	if err := copyFile(b.DSN, name+".tmp"); err != nil {
		return err
	}
	return os.Rename(name+".tmp", name)
}

// EnvCache names a directory where Build keeps the SQLite files it builds,
// and copies them from when asked for the same Spec again (with the default
// End, while the file is less than six hours old, so that nothing in it is
// due yet): a file of a million requests takes minutes to build and
// seconds to copy. Unset: every Build builds.
const EnvCache = "APPROVAL_SCALE_CACHE"

// cacheFor is how long a cached file serves a Spec with the default End.
const cacheFor = 6 * time.Hour

// generatorVersion changes whenever the stream of a Spec does, so that
// EnvCache serves no file made by an older generator.
const generatorVersion = 1

// cachePrefix names the cached files of spec, whatever their End.
func cachePrefix(spec Spec) string {
	h := sha256.New()
	for _, k := range kinds {
		fmt.Fprintf(h, "%s=%g;", k, spec.Mix[k])
	}
	return fmt.Sprintf("sqlite-g%d-s%d-n%d-seed%d-mix%x-", generatorVersion, schemaVersion, spec.Requests, spec.Seed, h.Sum(nil)[:6])
}

// copyFile copies the closed SQLite file src to dst and waits for dst to
// be on disk (see syncFile).
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// loadSQL migrates b.DSN's database with sqlstore and loads the stream
// into it through a pool of its own.
func (b *Built) loadSQL(ctx context.Context, g *generator) error {
	st, err := sqlstore.Open(ctx, b.DSN)
	if err != nil {
		return err
	}
	if err := st.Close(); err != nil {
		return err
	}
	postgres := b.Backend == Postgres
	dsn := b.DSN
	if !postgres {
		// The load's own connection: no fsync, a large page cache.
		dsn += "?_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)&_pragma=foreign_keys(1)&_pragma=cache_size(-262144)"
	}
	db, err := sql.Open(driver(b.Backend), dsn)
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(1)
	err = loadSQL(ctx, db, postgres, g)
	if err == nil && postgres && g.spec.Requests > 0 {
		// A store that holds rows has statistics. An empty one is left
		// as a new database is, never analyzed: statistics of empty
		// tables would have the planner scan them as they fill.
		for _, t := range tables {
			if _, err = db.ExecContext(ctx, "VACUUM ANALYZE "+t.name); err != nil {
				break
			}
		}
		if err == nil {
			// Start the measurements after a checkpoint, not during the
			// one the load's WAL set off. It needs a superuser or
			// pg_checkpoint: without, the server checkpoints in its time.
			if _, cerr := db.ExecContext(ctx, "CHECKPOINT"); cerr != nil && !isPrivilege(cerr) {
				err = cerr
			}
		}
	}
	if err == nil && !postgres {
		_, err = db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err == nil && !postgres {
		// The load wrote without waiting for the disk: write it out now,
		// or the store's first checkpoint would (its fsync waits for
		// every page the load left to write).
		err = syncFile(b.DSN)
	}
	return err
}

// DB opens a pool of the database driver on an SQL store's database, with
// the settings sqlstore gives its own (sqlstore.SQLiteDSN), closed when tb
// ends: for queries beside the store's, such as a benchmark's raw
// yardstick.
func (b *Built) DB(tb testing.TB) *sql.DB {
	tb.Helper()
	dsn := b.DSN
	switch b.Backend {
	case SQLite:
		dsn = sqlstore.SQLiteDSN(b.DSN, b.opts...)
	case Postgres:
	default:
		tb.Fatalf("scale: a %s store has no database", b.Backend)
	}
	db, err := sql.Open(driver(b.Backend), dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

// isPrivilege reports whether err is PostgreSQL refusing a statement for
// want of a privilege.
func isPrivilege(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "42501"
}

// syncFile waits for the file at path to be on disk. No SQLite connection
// may have the file open: closing a descriptor of a file drops every
// POSIX lock the process holds on it, SQLite's included.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func driver(b Backend) string {
	if b == Postgres {
		return "pgx"
	}
	return "sqlite"
}

// NewGate returns a gate over store with Policy (as PolicyName) and
// Directory, a fresh signing key, the clock now (time.Now if nil) and
// logs discarded, closed when tb ends.
func NewGate(tb testing.TB, store approval.Store, now func() time.Time) *approval.Gate {
	tb.Helper()
	_, key, err := approval.GenerateKeys()
	if err != nil {
		tb.Fatal(err)
	}
	g, err := approval.New(approval.Config{
		Store: store, SigningKey: key, Directory: Directory(), Now: now,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = g.Close(context.Background()) })
	if err := g.SetPolicy(PolicyName, Policy()); err != nil {
		tb.Fatal(err)
	}
	return g
}

// Action returns an action like the stored requests' (a wire transfer
// Policy matches, its payload naming invoice n) with run ID runID: a new
// action for every run ID the store does not hold ("run-" and seven digits
// are taken).
func Action(runID string, n int) approval.Action {
	return action(fmt.Sprintf("user-%03d", n%200), runID, n, "")
}
