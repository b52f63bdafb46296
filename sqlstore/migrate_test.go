package sqlstore

import (
	"database/sql"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/pgtest"
)

func TestMigrationsEmbedded(t *testing.T) {
	t.Parallel()
	for _, d := range []Dialect{SQLite, Postgres} {
		ms, err := migrations(d)
		require.NoError(t, err)
		require.NotEmpty(t, ms)
		require.Equal(t, "0001_init", ms[0].name)
	}
	sq, _ := migrations(SQLite)
	pg, _ := migrations(Postgres)
	require.Equal(t, len(sq), len(pg), "both dialects must reach the same schema version")
}

// TestConcurrentOpen starts eight stores on one new database at once, as
// replicas of a service would: each migrates, one does the work, none fails.
func TestConcurrentOpen(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		dsn := newDSN(t)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Go(func() {
				s, err := Open(t.Context(), dsn)
				if err == nil {
					err = s.Close()
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		s := open(t, dsn)
		var n, v int
		require.NoError(t, s.r.QueryRowContext(t.Context(), `SELECT COUNT(*), MAX(version) FROM schema_version`).Scan(&n, &v))
		ms, err := migrations(s.Dialect())
		require.NoError(t, err)
		require.Equal(t, len(ms), n)
		require.Equal(t, len(ms), v)
	})
}

func TestMigrateRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		dsn := newDSN(t)
		s := open(t, dsn)
		_, err := s.w.ExecContext(t.Context(), `INSERT INTO schema_version (version, name, applied_at) VALUES (999, 'future', $1)`,
			s.dialect.timeArg(now()))
		require.NoError(t, err)
		_, err = Open(t.Context(), dsn)
		require.ErrorContains(t, err, "schema is at version 999")
		require.ErrorContains(t, err, "upgrade github.com/signoff/approval")
	})
}

func TestPostgresMissingSchema(t *testing.T) {
	t.Parallel()
	dsn := postgresDSN(t)
	_, err := Open(t.Context(), pgtest.WithSearchPath(t, dsn, "no_such_schema_here"))
	require.ErrorContains(t, err, "CREATE SCHEMA")
}

// oldSchema returns a Store over a new database migrated only up to
// schema version v, and the database.
func oldSchema(t *testing.T, newDSN func(testing.TB) string, v int) (*Store, *sql.DB) {
	t.Helper()
	ctx := t.Context()
	dsn := newDSN(t)
	d := DialectOf(dsn)
	if d == SQLite {
		dsn = SQLiteDSN(dsn)
	}
	db, err := sqlOpen(d, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	s, err := OpenDB(ctx, db, d)
	require.NoError(t, err)
	ms, err := migrations(d)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, s.schemaVersionDDL())
	require.NoError(t, err)
	for _, m := range ms[:v] {
		_, err := db.ExecContext(ctx, m.sql)
		require.NoError(t, err, m.name)
		_, err = db.ExecContext(ctx, `INSERT INTO schema_version (version, name, applied_at) VALUES ($1, $2, $3)`,
			m.version, m.name, d.timeArg(now()))
		require.NoError(t, err)
	}
	return s, db
}

// insertOld stores r as a store at schema version 2 to 4 would: the
// request row alone, without the columns later versions added.
func insertOld(t *testing.T, s *Store, db *sql.DB, r *approval.Request) {
	t.Helper()
	row, err := encodeRequest(r)
	require.NoError(t, err)
	_, err = db.ExecContext(t.Context(), `INSERT INTO requests
    (id, status, action_hash, requested_by, created_at, updated_at, due_at, version, body, hold_until)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, s.requestArgs(row)[:10]...)
	require.NoError(t, err)
}

// schemaVersion returns the number of migrations recorded and the latest.
func schemaVersion(t *testing.T, db *sql.DB) []int {
	t.Helper()
	var n, v int
	require.NoError(t, db.QueryRowContext(t.Context(), `SELECT COUNT(*), MAX(version) FROM schema_version`).Scan(&n, &v))
	return []int{n, v}
}

// TestMigrateAddsDelegations upgrades a database at schema version 3 (the
// outbox) holding a request: Migrate applies what follows, the request is
// kept, and delegations, which version 3 could not store, can be.
func TestMigrateAddsDelegations(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		ctx := t.Context()
		s, db := oldSchema(t, newDSN, 3)
		ms, err := migrations(s.dialect)
		require.NoError(t, err)
		require.Equal(t, "0004_delegations", ms[3].name)
		r := newRequest()
		insertOld(t, s, db, r)
		require.Error(t, s.CreateDelegation(ctx, newDelegation(), nil), "version 3 has no delegations table")

		require.NoError(t, s.Migrate(ctx))
		require.Equal(t, []int{len(ms), len(ms)}, schemaVersion(t, db))
		_, err = s.Get(ctx, r.ID)
		require.NoError(t, err)
		dl := newDelegation()
		require.NoError(t, s.CreateDelegation(ctx, dl, []approval.AuditEvent{{Type: approval.EventDelegationGranted, Actor: "admin", At: now()}}))
		got, err := s.ListDelegations(ctx, approval.DelegationQuery{To: dl.To})
		require.NoError(t, err)
		require.Equal(t, []approval.Delegation{*dl}, got)
		require.Len(t, fullTrail(t, s), 1)
	})
}

// TestMigrateAddsIdempotencyKeys upgrades a database at schema version 4
// holding a live request and a held one: after 0005 they still block and
// hold their actions (the indexes rebuilt over rows without a key), and a
// request with an idempotency key is kept apart from them.
func TestMigrateAddsIdempotencyKeys(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		ctx := t.Context()
		s, db := oldSchema(t, newDSN, 4)
		ms, err := migrations(s.dialect)
		require.NoError(t, err)
		require.Equal(t, "0005_idempotency", ms[4].name)
		live := newRequest()
		insertOld(t, s, db, live)
		held := newRequest()
		held.Status, held.HoldUntil = approval.StatusDenied, held.CreatedAt.Add(time.Hour)
		insertOld(t, s, db, held)
		ran := newRequest()
		ran.Status = approval.StatusConsumed
		insertOld(t, s, db, ran)

		require.NoError(t, s.Migrate(ctx))
		require.Equal(t, []int{len(ms), len(ms)}, schemaVersion(t, db))
		for _, old := range []*approval.Request{live, held} {
			again := newRequest()
			again.ActionHash = old.ActionHash
			stored, created, err := s.Create(ctx, again, nil)
			require.NoError(t, err)
			require.False(t, created)
			require.Equal(t, old.ID, stored.ID)

			keyed := newRequest()
			keyed.ActionHash, keyed.Action.IdempotencyKey = old.ActionHash, "key-"+old.ID
			_, created, err = s.Create(ctx, keyed, nil)
			require.NoError(t, err)
			require.True(t, created, "a request with a key is kept apart")
		}
		run, found, err := s.LastRun(ctx, ran.ActionHash, ran.UpdatedAt)
		require.NoError(t, err)
		require.True(t, found, "a run before the migration is found")
		require.Equal(t, ran.ID, run.RequestID)
	})
}
