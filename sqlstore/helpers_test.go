package sqlstore

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// Environment variables of the PostgreSQL tests.
const (
	// envPostgresDSN names a database the tests may create schemas in, for
	// example postgres:///approval_test?host=/var/run/postgresql.
	envPostgresDSN = "APPROVAL_POSTGRES_DSN"
	// envRequirePostgres=1 makes a missing envPostgresDSN fail the tests
	// instead of skipping them (CI sets it).
	envRequirePostgres = "APPROVAL_REQUIRE_POSTGRES"
)

// backend makes empty databases of one dialect for tests.
type backend struct {
	name string
	// newDSN returns the DSN of a new empty database (SQLite: a file in a
	// temporary directory; PostgreSQL: a fresh schema, dropped after the
	// test), or skips the test.
	newDSN func(t testing.TB) string
}

var backends = []backend{
	{"SQLite", sqliteDSN},
	{"Postgres", postgresDSN},
}

// eachBackend runs f as a parallel subtest per dialect.
func eachBackend(t *testing.T, f func(t *testing.T, newDSN func(testing.TB) string)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			f(t, b.newDSN)
		})
	}
}

func sqliteDSN(t testing.TB) string {
	return filepath.Join(t.TempDir(), "approval.db")
}

var (
	pgAdminOnce sync.Once
	pgAdmin     *sql.DB
	pgAdminErr  error
)

// postgresDSN creates a schema of its own in the database named by
// APPROVAL_POSTGRES_DSN and returns a DSN whose search_path selects it, so
// tests run in parallel and again without interfering.
func postgresDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv(envPostgresDSN)
	if base == "" {
		if os.Getenv(envRequirePostgres) == "1" {
			t.Fatalf("%s=1 but %s is not set: start PostgreSQL and set it, e.g. %s='postgres:///approval_test?host=/var/run/postgresql'",
				envRequirePostgres, envPostgresDSN, envPostgresDSN)
		}
		t.Skipf("PostgreSQL tests skipped: set %s (e.g. postgres:///approval_test?host=/var/run/postgresql) to run them", envPostgresDSN)
	}
	pgAdminOnce.Do(func() {
		pgAdmin, pgAdminErr = sql.Open("pgx", base)
		if pgAdminErr == nil {
			pgAdminErr = pgAdmin.PingContext(t.Context())
		}
	})
	require.NoError(t, pgAdminErr, "connect to %s", envPostgresDSN)
	schema := "sqlstore_test_" + randomHex()[:16]
	_, err := pgAdmin.ExecContext(t.Context(), "CREATE SCHEMA "+schema)
	require.NoError(t, err)
	t.Cleanup(func() {
		_, err := pgAdmin.Exec("DROP SCHEMA " + schema + " CASCADE")
		if err != nil {
			t.Errorf("drop test schema %s: %v", schema, err)
		}
	})
	return withSearchPath(t, base, schema)
}

func withSearchPath(t testing.TB, dsn, schema string) string {
	if DialectOf(dsn) == Postgres && !strings.Contains(dsn, "://") {
		return dsn + " search_path=" + schema
	}
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// openSQLiteDB opens a pool on a new SQLite file and a migrated Store over
// it with OpenDB, whose writes take the path of a caller's pool (BEGIN
// IMMEDIATE of the store's own, no prepared statements).
func openSQLiteDB(t *testing.T) *Store {
	t.Helper()
	db, err := sqlOpen(SQLite, SQLiteDSN(sqliteDSN(t)))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	s, err := OpenDB(t.Context(), db, SQLite)
	require.NoError(t, err)
	require.NoError(t, s.Migrate(t.Context()))
	require.Nil(t, s.writes, "the write path of a caller's pool")
	return s
}

// open opens a Store on dsn, closed when the test ends.
func open(t testing.TB, dsn string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(t.Context(), dsn, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

func randomHex() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// now is the current time as the gate keeps it.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// newRequest returns a pending request with a fresh ID and ActionHash.
func newRequest() *approval.Request {
	at := now()
	return &approval.Request{
		ID:         "req_" + randomHex(),
		Status:     approval.StatusPending,
		Action:     approval.Action{Name: "wire-transfer", RequestedBy: "alice"},
		ActionHash: randomHex() + randomHex(),
		Policies: []approval.MatchedPolicy{{
			Name:              "high_spend",
			Hash:              randomHex(),
			Approvers:         []approval.Approver{approval.Group("finance")},
			RequiredApprovals: 2,
		}},
		SegregateRequester: true,
		DenyThreshold:      1,
		ApprovalTTL:        time.Hour,
		CreatedAt:          at,
		UpdatedAt:          at,
		Version:            1,
	}
}

// event returns an unsealed audit event.
func event(id string, typ approval.EventType, actor string) approval.AuditEvent {
	return approval.AuditEvent{RequestID: id, Type: typ, Actor: actor, At: time.Now()}
}

// vote returns r's next version with a vote by approver added.
func vote(r *approval.Request, approver, tokenID string) *approval.Request {
	n := r.Clone()
	n.Votes = append(n.Votes, approval.Vote{
		Approver: approver, Verdict: approval.VerdictApprove, TokenID: tokenID,
		Policies: []string{"high_spend"}, At: now(),
	})
	n.UpdatedAt = now()
	n.Version++
	return n
}

// fullTrail returns the whole audit trail of s and requires it to verify
// from sequence number 1.
func fullTrail(t testing.TB, s approval.Store) []approval.AuditEvent {
	t.Helper()
	var all []approval.AuditEvent
	q := approval.AuditQuery{Limit: approval.MaxPageSize}
	for {
		page, err := s.ListAudit(t.Context(), q)
		require.NoError(t, err)
		all = append(all, page.Events...)
		if page.Next == "" {
			break
		}
		q.Cursor = page.Next
	}
	if len(all) > 0 {
		require.Equal(t, int64(1), all[0].Seq)
	}
	require.NoError(t, approval.VerifyAuditChain(all))
	return all
}

// sqlOpen opens a pool of the driver of d.
func sqlOpen(d Dialect, dsn string) (*sql.DB, error) { return sql.Open(d.driverName(), dsn) }
