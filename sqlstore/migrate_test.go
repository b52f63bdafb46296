package sqlstore

import (
	"sync"
	"testing"

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

// TestMigrateAddsDelegations upgrades a database at schema version 3 (the
// outbox) holding a request: Migrate applies 0004 alone, the request is
// kept, and delegations, which version 3 could not store, can be.
func TestMigrateAddsDelegations(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
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
		require.Len(t, ms, 4)
		require.Equal(t, "0004_delegations", ms[3].name)

		_, err = db.ExecContext(ctx, s.schemaVersionDDL())
		require.NoError(t, err)
		for _, m := range ms[:3] {
			_, err := db.ExecContext(ctx, m.sql)
			require.NoError(t, err, m.name)
			_, err = db.ExecContext(ctx, `INSERT INTO schema_version (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.version, m.name, d.timeArg(now()))
			require.NoError(t, err)
		}
		r := newRequest()
		_, _, err = s.Create(ctx, r, []approval.AuditEvent{event(r.ID, approval.EventRequestCreated, "alice")})
		require.NoError(t, err)
		require.Error(t, s.CreateDelegation(ctx, newDelegation(), nil), "version 3 has no delegations table")

		require.NoError(t, s.Migrate(ctx))
		var n, v int
		require.NoError(t, db.QueryRowContext(ctx, `SELECT COUNT(*), MAX(version) FROM schema_version`).Scan(&n, &v))
		require.Equal(t, []int{4, 4}, []int{n, v})
		_, err = s.Get(ctx, r.ID)
		require.NoError(t, err)
		dl := newDelegation()
		require.NoError(t, s.CreateDelegation(ctx, dl, []approval.AuditEvent{{Type: approval.EventDelegationGranted, Actor: "admin", At: now()}}))
		got, err := s.ListDelegations(ctx, approval.DelegationQuery{To: dl.To})
		require.NoError(t, err)
		require.Equal(t, []approval.Delegation{*dl}, got)
		require.Len(t, fullTrail(t, s), 2)
	})
}
