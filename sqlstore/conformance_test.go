package sqlstore

import (
	"testing"

	"github.com/signoff/approval"
	"github.com/signoff/approval/storetest"
)

// TestConformanceSQLite runs the shared Store conformance suite against a
// new SQLite file per subtest.
func TestConformanceSQLite(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) approval.Store { return open(t, sqliteDSN(t)) })
}

// TestConformancePostgres runs the shared Store conformance suite against a
// new PostgreSQL schema per subtest. It skips without APPROVAL_POSTGRES_DSN
// (and fails instead when APPROVAL_REQUIRE_POSTGRES=1).
func TestConformancePostgres(t *testing.T) {
	t.Parallel()
	postgresDSN(t) // skip or fail before the suite's many subtests do
	storetest.Run(t, func(t *testing.T) approval.Store { return open(t, postgresDSN(t)) })
}
