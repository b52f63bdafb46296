package sqlstore

import (
	"database/sql"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

func TestOpenDB(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		dsn := newDSN(t)
		dialect := DialectOf(dsn)
		if dialect == SQLite {
			dsn = SQLiteDSN(dsn)
		}
		db, err := sqlOpen(dialect, dsn)
		require.NoError(t, err)
		defer db.Close()
		s, err := OpenDB(t.Context(), db, dialect)
		require.NoError(t, err)
		require.Equal(t, dialect, s.Dialect())
		require.NoError(t, s.Migrate(t.Context()))
		require.NoError(t, s.Migrate(t.Context()), "Migrate is idempotent")
		r := newRequest()
		_, created, err := s.Create(t.Context(), r, []approval.AuditEvent{event(r.ID, approval.EventRequestCreated, "alice")})
		require.NoError(t, err)
		require.True(t, created)
		require.NoError(t, s.Close())
		require.NoError(t, db.PingContext(t.Context()), "Close must leave a caller's pool open")
	})
}

func TestOpenDBErrors(t *testing.T) {
	t.Parallel()
	_, err := OpenDB(t.Context(), nil, SQLite)
	require.ErrorContains(t, err, "nil *sql.DB")
	db, err := sqlOpen(SQLite, SQLiteDSN(sqliteDSN(t)))
	require.NoError(t, err)
	defer db.Close()
	_, err = OpenDB(t.Context(), db, "mysql")
	require.ErrorContains(t, err, `unknown dialect "mysql"`)
	_, err = OpenDB(t.Context(), db, Postgres)
	require.ErrorContains(t, err, "not pgx's")
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, err := Open(ctx, "")
	require.ErrorContains(t, err, "empty DSN")
	_, err = Open(ctx, sqliteDSN(t), Synchronous("OFF"))
	require.ErrorContains(t, err, "sqlstore.SyncFull")
	_, err = Open(ctx, sqliteDSN(t), BusyTimeout(-time.Second))
	require.ErrorContains(t, err, "negative")
	_, err = Open(ctx, sqliteDSN(t), MaxConns(-1))
	require.ErrorContains(t, err, "negative")
	_, err = Open(ctx, sqliteDSN(t), AutoCheckpoint(-1))
	require.ErrorContains(t, err, "negative")
	_, err = Open(ctx, "/nonexistent-dir/sub/approval.db")
	require.ErrorContains(t, err, "does not exist (create it first)")
	_, err = Open(ctx, "postgres://nobody@127.0.0.1:1/nothing?connect_timeout=2")
	require.ErrorContains(t, err, "is the server running")
}

func TestOpenMemory(t *testing.T) {
	t.Parallel()
	s := open(t, ":memory:")
	r := newRequest()
	_, _, err := s.Create(t.Context(), r, []approval.AuditEvent{event(r.ID, approval.EventRequestCreated, "alice")})
	require.NoError(t, err)
	_, err = s.Get(t.Context(), r.ID)
	require.NoError(t, err)
	require.Len(t, fullTrail(t, s), 1)
}

func TestSynchronousFull(t *testing.T) {
	t.Parallel()
	s := open(t, sqliteDSN(t), Synchronous(SyncFull))
	var mode int
	require.NoError(t, s.w.QueryRowContext(t.Context(), "PRAGMA synchronous").Scan(&mode))
	require.Equal(t, 2, mode, "FULL")
	var journal string
	require.NoError(t, s.r.QueryRowContext(t.Context(), "PRAGMA journal_mode").Scan(&journal))
	require.Equal(t, "wal", journal)
	var fk int
	require.NoError(t, s.w.QueryRowContext(t.Context(), "PRAGMA foreign_keys").Scan(&fk))
	require.Equal(t, 1, fk)
}

// TestAutoCheckpoint: the writer of a SQLite Store lets the WAL grow to
// 10,000 pages before a commit checkpoints it, or to what AutoCheckpoint
// says (0 being the default); SQLiteDSN carries the setting to a pool of
// the caller's.
func TestAutoCheckpoint(t *testing.T) {
	t.Parallel()
	pages := func(db *sql.DB) int {
		var n int
		require.NoError(t, db.QueryRowContext(t.Context(), "PRAGMA wal_autocheckpoint").Scan(&n))
		return n
	}
	require.Equal(t, 10000, pages(open(t, sqliteDSN(t)).w))
	require.Equal(t, 10000, pages(open(t, sqliteDSN(t), AutoCheckpoint(0)).w))
	require.Equal(t, 500, pages(open(t, sqliteDSN(t), AutoCheckpoint(500)).w))
	db, err := sqlOpen(SQLite, SQLiteDSN(sqliteDSN(t), AutoCheckpoint(2000)))
	require.NoError(t, err)
	defer db.Close()
	require.Equal(t, 2000, pages(db))
}

func TestDialectOf(t *testing.T) {
	t.Parallel()
	for dsn, want := range map[string]Dialect{
		"approval.db":                                     SQLite,
		"/var/lib/app/approval.db":                        SQLite,
		"file:approval.db?cache=shared":                   SQLite,
		":memory:":                                        SQLite,
		"postgres://u:p@h:5432/db?sslmode=disable":        Postgres,
		"PostgreSQL://h/db":                               Postgres,
		"host=/var/run/postgresql dbname=approval":        Postgres,
		"dbname=approval":                                 Postgres,
		"  postgres:///approval?host=/var/run/postgresql": Postgres,
	} {
		require.Equal(t, want, DialectOf(dsn), dsn)
	}
}

func TestOpenFileURI(t *testing.T) {
	t.Parallel()
	path := sqliteDSN(t)
	s := open(t, "file:"+path+"?mode=rwc")
	_, created, err := s.Create(t.Context(), newRequest(), nil)
	require.NoError(t, err)
	require.True(t, created)
	var journal string
	require.NoError(t, s.w.QueryRowContext(t.Context(), "PRAGMA journal_mode").Scan(&journal))
	require.Equal(t, "wal", journal, "the store's settings apply to file: URIs too")
	require.FileExists(t, path)
}
