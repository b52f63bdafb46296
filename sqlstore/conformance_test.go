package sqlstore

import (
	"testing"

	"github.com/signoff/approval"
	"github.com/signoff/approval/storetest"
)

// TestConformanceSQLite runs the shared Store conformance suite against a
// new SQLite file per subtest, on each write path.
func TestConformanceSQLite(t *testing.T) {
	t.Parallel()
	eachPath(t, func(t *testing.T, opts []Option) {
		storetest.Run(t, func(t *testing.T) approval.Store { return open(t, sqliteDSN(t), opts...) })
	})
}

// TestConformancePostgres runs the shared Store conformance suite against a
// new PostgreSQL schema per subtest, on each write path. It skips without
// APPROVAL_POSTGRES_DSN (and fails instead when APPROVAL_REQUIRE_POSTGRES=1).
func TestConformancePostgres(t *testing.T) {
	t.Parallel()
	postgresDSN(t) // skip or fail before the suite's many subtests do
	eachPath(t, func(t *testing.T, opts []Option) {
		storetest.Run(t, func(t *testing.T) approval.Store { return open(t, postgresDSN(t), opts...) })
	})
}

// TestSharedSQLite runs the gate-level suite with two gates, each over its
// own Store (its own connection pools) on one SQLite file: two processes'
// worth of state sharing one database, on each write path.
func TestSharedSQLite(t *testing.T) {
	t.Parallel()
	eachPath(t, func(t *testing.T, opts []Option) {
		storetest.RunShared(t, func(t *testing.T) (approval.Store, approval.Store) {
			dsn := sqliteDSN(t)
			return open(t, dsn, opts...), open(t, dsn, opts...)
		})
	})
}

// TestSharedPostgres is TestSharedSQLite on one PostgreSQL schema: the
// path for users who run several replicas.
func TestSharedPostgres(t *testing.T) {
	t.Parallel()
	postgresDSN(t)
	eachPath(t, func(t *testing.T, opts []Option) {
		storetest.RunShared(t, func(t *testing.T) (approval.Store, approval.Store) {
			dsn := postgresDSN(t)
			return open(t, dsn, opts...), open(t, dsn, opts...)
		})
	})
}
