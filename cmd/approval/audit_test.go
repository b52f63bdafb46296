package main

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// Environment variables of the PostgreSQL tests, as in sqlstore's.
const (
	envPostgresDSN     = "APPROVAL_POSTGRES_DSN"
	envRequirePostgres = "APPROVAL_REQUIRE_POSTGRES"
)

// attack is how an attacker with write access to the database edits the
// audit trail of one dialect, past its append-only triggers.
type attack struct {
	dropUpdateTrigger, dropDeleteTrigger string
	// setReason sets the reason in the stored body of event $1.
	setReason string
}

var (
	sqliteAttack = attack{
		dropUpdateTrigger: `DROP TRIGGER audit_events_no_update`,
		dropDeleteTrigger: `DROP TRIGGER audit_events_no_delete`,
		setReason:         `UPDATE audit_events SET body = json_set(body, '$.reason', 'nothing to see') WHERE seq = $1`,
	}
	postgresAttack = attack{
		dropUpdateTrigger: `DROP TRIGGER IF EXISTS audit_events_no_update_delete ON audit_events`,
		dropDeleteTrigger: `DROP TRIGGER IF EXISTS audit_events_no_update_delete ON audit_events`,
		setReason:         `UPDATE audit_events SET body = (body::jsonb || '{"reason":"nothing to see"}')::text WHERE seq = $1`,
	}
)

var headLine = regexp.MustCompile(`verified (\d+) events; head (\d+) ([0-9a-f]{64})\n`)

// verifyAuditOK runs verify-audit, requires it to pass, and returns the
// head it printed.
func verifyAuditOK(t *testing.T, dsn string, args ...string) head {
	t.Helper()
	r := cli(t, append([]string{"verify-audit", "-db", dsn}, args...)...)
	requireExit(t, r, exitOK)
	m := headLine.FindStringSubmatch(r.stdout)
	require.NotNil(t, m, "output: %s", r.stdout)
	n, _ := strconv.ParseInt(m[1], 10, 64)
	seq, _ := strconv.ParseInt(m[2], 10, 64)
	require.Equal(t, n, seq, "the trail starts at seq 1, so its head is its length")
	return head{seq, m[3]}
}

// testVerifyAudit runs the verify-audit scenario on the store at dsn,
// editing it through db. Aliases are other DSNs of the same store.
func testVerifyAudit(t *testing.T, dsn string, db *sql.DB, a attack, aliases ...string) {
	seed(t, dsn)
	saved := verifyAuditOK(t, dsn)
	require.Greater(t, saved.seq, int64(3))
	for _, alias := range aliases {
		require.Equal(t, saved, verifyAuditOK(t, alias), "verify-audit -db %s", alias)
	}

	var second head
	require.NoError(t, db.QueryRow(`SELECT seq, hash FROM audit_events WHERE seq = 2`).Scan(&second.seq, &second.hash))
	t.Run("expect-head", func(t *testing.T) {
		verifyAuditOK(t, dsn, "-expect-head", saved.String())
		// The trail has grown since the head was saved: still intact.
		verifyAuditOK(t, dsn, "-expect-head", second.String())

		r := cli(t, "verify-audit", "-db", dsn, "-expect-head", fmt.Sprintf("%d:%064x", second.seq, 1))
		requireExit(t, r, exitFailed)
		require.Contains(t, r.stderr, "rewritten")

		requireExit(t, cli(t, "verify-audit", "-db", dsn, "-expect-head", "12"), exitUsage)
	})
	t.Run("truncated", func(t *testing.T) {
		_, err := db.Exec(a.dropDeleteTrigger)
		require.NoError(t, err)
		_, err = db.Exec(`DELETE FROM audit_events WHERE seq = $1`, saved.seq)
		require.NoError(t, err)

		// A shorter trail is still a valid chain...
		now := verifyAuditOK(t, dsn)
		require.Equal(t, saved.seq-1, now.seq)
		// ...but not one that reaches the saved head.
		r := cli(t, "verify-audit", "-db", dsn, "-expect-head", saved.String())
		requireExit(t, r, exitFailed)
		require.Regexp(t, `^approval: audit trail truncated`, r.stderr)
	})
	t.Run("edited", func(t *testing.T) {
		_, err := db.Exec(a.dropUpdateTrigger)
		require.NoError(t, err)
		res, err := db.Exec(a.setReason, 2)
		require.NoError(t, err)
		n, err := res.RowsAffected()
		require.NoError(t, err)
		require.EqualValues(t, 1, n)

		r := cli(t, "verify-audit", "-db", dsn)
		requireExit(t, r, exitFailed)
		require.Equal(t, "approval: audit chain broken at seq 2: hash does not match the event's content\n", r.stderr)
	})
}

func TestVerifyAuditSQLite(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "approval.db")
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	testVerifyAudit(t, path, db, sqliteAttack, "sqlite:"+path, "file:"+path+"?cache=private")
}

func TestVerifyAuditPostgres(t *testing.T) {
	t.Parallel()
	dsn := postgresDSN(t)
	db, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	testVerifyAudit(t, dsn, db, postgresAttack)
}

func TestVerifyAuditNoDatabase(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()

	missing := filepath.Join(dir, "missing.db")
	r := cli(t, "verify-audit", "-db", missing)
	requireExit(t, r, exitUsage)
	require.Contains(t, r.stderr, "does not exist")
	require.NoFileExists(t, missing, "verify-audit created the database")

	// A database without the schema is not migrated: it stays as it was.
	other := filepath.Join(dir, "other.db")
	db, err := sql.Open("sqlite", other)
	require.NoError(t, err)
	defer db.Close()
	_, err = db.Exec(`CREATE TABLE unrelated (x INTEGER)`)
	require.NoError(t, err)
	r = cli(t, "verify-audit", "-db", other)
	requireExit(t, r, exitUsage)
	require.Contains(t, r.stderr, "no approval schema")
	var tables int
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'table'`).Scan(&tables))
	require.Equal(t, 1, tables)

	requireExit(t, cli(t, "verify-audit", "-db", ":memory:"), exitUsage)
	requireExit(t, cli(t, "verify-audit"), exitUsage)
}

// postgresDSN creates a schema of its own in the database named by
// APPROVAL_POSTGRES_DSN, dropped when the test ends, and returns a DSN
// whose search_path selects it; it skips the test without the variable
// unless APPROVAL_REQUIRE_POSTGRES=1.
func postgresDSN(t *testing.T) string {
	t.Helper()
	base := os.Getenv(envPostgresDSN)
	if base == "" {
		if os.Getenv(envRequirePostgres) == "1" {
			t.Fatalf("%s=1 but %s is not set: start PostgreSQL and set it, e.g. %s='postgres:///approval_test?host=/var/run/postgresql'",
				envRequirePostgres, envPostgresDSN, envPostgresDSN)
		}
		t.Skipf("PostgreSQL tests skipped: set %s (e.g. postgres:///approval_test?host=/var/run/postgresql) to run them", envPostgresDSN)
	}
	admin, err := sql.Open("pgx", base)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, admin.Close()) })
	var b [8]byte
	_, _ = rand.Read(b[:])
	schema := "approval_cli_test_" + hex.EncodeToString(b[:])
	_, err = admin.ExecContext(t.Context(), "CREATE SCHEMA "+schema)
	require.NoError(t, err, "connect to %s and create a schema", envPostgresDSN)
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Errorf("drop test schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	require.NoError(t, err, "%s must be a postgres:// URL", envPostgresDSN)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
