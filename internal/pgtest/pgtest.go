// Package pgtest is what the PostgreSQL tests of this module share: a
// schema of their own in the database APPROVAL_POSTGRES_DSN names, so that
// tests run in parallel and again without interfering, and a proxy that
// loses the answer to a COMMIT the server has carried out.
//
// Without APPROVAL_POSTGRES_DSN the tests that ask for a schema skip;
// with APPROVAL_REQUIRE_POSTGRES=1 too (as CI sets it) they fail instead.
package pgtest

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"github.com/stretchr/testify/require"
)

// Environment variables of the PostgreSQL tests.
const (
	// EnvDSN names a database the tests may create schemas in, for
	// example postgres:///approval_test?host=/var/run/postgresql.
	EnvDSN = "APPROVAL_POSTGRES_DSN"
	// EnvRequire=1 makes a missing EnvDSN fail the tests instead of
	// skipping them.
	EnvRequire = "APPROVAL_REQUIRE_POSTGRES"
)

var (
	adminOnce sync.Once
	admin     *sql.DB
	adminErr  error
)

// Admin returns a pool on the database EnvDSN names, shared by the tests
// of the process, or skips (or fails) the test as DSN does.
func Admin(t testing.TB) *sql.DB {
	t.Helper()
	base := os.Getenv(EnvDSN)
	if base == "" {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("%s=1 but %s is not set: start PostgreSQL and set it, e.g. %s='postgres:///approval_test?host=/var/run/postgresql'",
				EnvRequire, EnvDSN, EnvDSN)
		}
		t.Skipf("PostgreSQL tests skipped: set %s (e.g. postgres:///approval_test?host=/var/run/postgresql) to run them", EnvDSN)
	}
	adminOnce.Do(func() {
		admin, adminErr = sql.Open("pgx", base)
		if adminErr == nil {
			adminErr = admin.PingContext(t.Context())
		}
	})
	require.NoError(t, adminErr, "connect to %s", EnvDSN)
	return admin
}

// DSN creates a schema of its own in the database EnvDSN names, dropped
// when the test ends, and returns a DSN whose search_path selects it.
func DSN(t testing.TB) string {
	t.Helper()
	db := Admin(t)
	var b [8]byte
	_, _ = rand.Read(b[:])
	schema := "sqlstore_test_" + hex.EncodeToString(b[:])
	_, err := db.ExecContext(t.Context(), "CREATE SCHEMA "+schema)
	require.NoError(t, err)
	t.Cleanup(func() {
		if _, err := db.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Errorf("drop test schema %s: %v", schema, err)
		}
	})
	return WithSearchPath(t, os.Getenv(EnvDSN), schema)
}

// WithSearchPath returns dsn (a URL or a key=value string) with its
// search_path set to schema.
func WithSearchPath(t testing.TB, dsn, schema string) string {
	t.Helper()
	if !strings.Contains(dsn, "://") {
		return dsn + " search_path=" + schema
	}
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
