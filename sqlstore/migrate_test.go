package sqlstore

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
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
	_, err := Open(t.Context(), withSearchPath(t, dsn, "no_such_schema_here"))
	require.ErrorContains(t, err, "CREATE SCHEMA")
}
