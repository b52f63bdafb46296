package sqlstore

import (
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/fixture"
	"github.com/signoff/approval/internal/pgtest"
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

// writePaths are the two ways a Store runs its writes: several to a
// transaction (group commit, the default) and one transaction per write
// (GroupCommit(false)), with the options that select each.
var writePaths = []struct {
	name string
	opts []Option
}{
	{"grouped", nil},
	{"single", []Option{GroupCommit(false)}},
}

// eachPath runs f as a parallel subtest per write path.
func eachPath(t *testing.T, f func(t *testing.T, opts []Option)) {
	t.Helper()
	for _, p := range writePaths {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			f(t, p.opts)
		})
	}
}

// eachBackendPath runs f as a parallel subtest per dialect and write path.
func eachBackendPath(t *testing.T, f func(t *testing.T, newDSN func(testing.TB) string, opts []Option)) {
	t.Helper()
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		eachPath(t, func(t *testing.T, opts []Option) { f(t, newDSN, opts) })
	})
}

func sqliteDSN(t testing.TB) string {
	return filepath.Join(t.TempDir(), "approval.db")
}

// postgresDSN returns the DSN of a new schema of the database
// APPROVAL_POSTGRES_DSN names, or skips (see pgtest).
func postgresDSN(t testing.TB) string { return pgtest.DSN(t) }

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

// The fixtures sqlstore's tests share with storetest.
var (
	randomHex     = fixture.RandomHex
	now           = fixture.Now
	newRequest    = fixture.NewRequest
	newDelegation = fixture.NewDelegation
)

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
	all := fixture.AuditTrail(t, s, approval.AuditQuery{Limit: approval.MaxPageSize})
	if len(all) > 0 {
		require.Equal(t, int64(1), all[0].Seq)
	}
	require.NoError(t, approval.VerifyAuditChain(all))
	return all
}

// sqlOpen opens a pool of the driver of d.
func sqlOpen(d Dialect, dsn string) (*sql.DB, error) { return sql.Open(d.driverName(), dsn) }
