package main

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/pgtest"
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

var (
	headLine       = regexp.MustCompile(`verified (\d+) events; head (\d+) ([0-9a-f]{64})\n`)
	checkpointLine = regexp.MustCompile(`^checkpoint (\d+:[0-9a-f]{64})\n`)
)

// verifyAuditOK runs verify-audit, requires it to pass, and returns the
// head it printed and its output.
func verifyAuditOK(t *testing.T, dsn string, args ...string) (approval.AuditHead, result) {
	t.Helper()
	r := cli(t, append([]string{"verify-audit", "-db", dsn}, args...)...)
	requireExit(t, r, exitOK)
	m := headLine.FindStringSubmatch(r.stdout)
	require.NotNil(t, m, "output: %s", r.stdout)
	n, _ := strconv.ParseInt(m[1], 10, 64)
	seq, _ := strconv.ParseInt(m[2], 10, 64)
	require.Equal(t, n, seq, "the trail starts at seq 1, so its head is its length")
	return approval.AuditHead{Seq: seq, Hash: m[3]}, r
}

// checkpoint runs the checkpoint command with the private key at key and
// returns the head it printed.
func checkpoint(t *testing.T, dsn, key string) approval.AuditHead {
	t.Helper()
	r := cli(t, "checkpoint", "-db", dsn, "-key", key)
	requireExit(t, r, exitOK)
	m := checkpointLine.FindStringSubmatch(r.stdout)
	require.NotNil(t, m, "output: %s", r.stdout)
	h, err := approval.ParseAuditHead(m[1])
	require.NoError(t, err)
	return h
}

// dialect is what testVerifyAudit runs on: a SQL dialect and how an
// attacker edits its database.
type dialect struct {
	attack
	// open returns the DSN of a new, empty database, a pool on it for the
	// attacker, and other DSNs of it.
	open func(t *testing.T) (dsn string, db *sql.DB, aliases []string)
}

// target is a seeded store an attacker can write.
type target struct {
	dsn string
	db  *sql.DB
	seeded
}

// seedNew opens a new database of d and seeds it.
func (d dialect) seedNew(t *testing.T) target {
	t.Helper()
	dsn, db, _ := d.open(t)
	return target{dsn: dsn, db: db, seeded: seed(t, dsn)}
}

// keyPair writes a new key pair into dir with keygen and returns the
// paths of its private and public keys.
func keyPair(t *testing.T, dir, name string) (priv, pub string) {
	t.Helper()
	priv = filepath.Join(dir, name+".pem")
	requireExit(t, cli(t, "keygen", "-out", priv), exitOK)
	return priv, priv + ".pub"
}

// testVerifyAudit runs the verify-audit scenarios on stores of d. Each
// subtest that edits the database edits a store of its own.
func testVerifyAudit(t *testing.T, d dialect) {
	dsn, db, aliases := d.open(t)
	seed(t, dsn)
	saved, r := verifyAuditOK(t, dsn)
	require.Greater(t, saved.Seq, int64(3))
	require.Contains(t, r.stdout, "checkpoints: none\nrequests: 2 checked against the trail\n")
	require.Empty(t, r.stderr)
	for _, alias := range aliases {
		h, _ := verifyAuditOK(t, alias)
		require.Equal(t, saved, h, "verify-audit -db %s", alias)
	}
	keys := t.TempDir()
	priv, pub := keyPair(t, keys, "gate")
	_, otherPub := keyPair(t, keys, "other")

	t.Run("expect-head", func(t *testing.T) {
		var second approval.AuditHead
		require.NoError(t, db.QueryRow(`SELECT seq, hash FROM audit_events WHERE seq = 2`).Scan(&second.Seq, &second.Hash))
		_, r := verifyAuditOK(t, dsn, "-expect-head", saved.String())
		require.Contains(t, r.stdout, fmt.Sprintf("saved head %d found: the trail continues from it\n", saved.Seq))
		// The trail has grown since the head was saved: still intact.
		_, r = verifyAuditOK(t, dsn, "-expect-head", second.String(), "-expect-head", saved.String())
		require.Contains(t, r.stdout, "saved head 2 found")
		require.Contains(t, r.stdout, fmt.Sprintf("saved head %d found", saved.Seq))

		r = cli(t, "verify-audit", "-db", dsn, "-expect-head", saved.String(), "-expect-head", fmt.Sprintf("%d:%064x", second.Seq, 1))
		requireExit(t, r, exitFailed)
		require.Equal(t, fmt.Sprintf("approval: audit chain broken at seq 2: the trail was rewritten: the event has hash %s, the anchor kept outside the store has %064x\n", second.Hash, 1), r.stderr)

		r = cli(t, "verify-audit", "-db", dsn, "-expect-head", "12")
		requireExit(t, r, exitUsage)
		require.Contains(t, r.stderr, `invalid value "12" for flag -expect-head: invalid audit head "12"`)
		requireExit(t, cli(t, "verify-audit", "-db", dsn, "-key", filepath.Join(keys, "missing.pem")), exitUsage)
		requireExit(t, cli(t, "verify-audit", "-db", dsn, "-key", dsn), exitUsage)
	})
	t.Run("forged request", func(t *testing.T) {
		t.Parallel()
		s := d.seedNew(t)
		// A copy of the approved request, with an ID and action of its
		// own, written around the gate: the trail has none of its events.
		var body string
		require.NoError(t, s.db.QueryRow(`SELECT body FROM requests WHERE id = $1`, s.approved).Scan(&body))
		var req approval.Request
		require.NoError(t, json.Unmarshal([]byte(body), &req))
		req.ID, req.ActionHash = "req_"+randomHex(16), randomHex(32)
		forged, err := json.Marshal(&req)
		require.NoError(t, err)
		_, err = s.db.Exec(`INSERT INTO requests (id, status, action_hash, requested_by, created_at, updated_at, due_at, version, body)
			SELECT $1, status, $2, requested_by, created_at, updated_at, due_at, version, $3 FROM requests WHERE id = $4`,
			req.ID, req.ActionHash, string(forged), s.approved)
		require.NoError(t, err)

		r := cli(t, "verify-audit", "-db", s.dsn)
		requireExit(t, r, exitFailed)
		require.Regexp(t, `^approval: request `+req.ID+` is approved but the audit trail has no request\.created event for it\n$`, r.stderr)
	})
	t.Run("forged status", func(t *testing.T) {
		t.Parallel()
		s := d.seedNew(t)
		// The pending request, approved by an edit of its row.
		var body string
		require.NoError(t, s.db.QueryRow(`SELECT body FROM requests WHERE id = $1`, s.pending).Scan(&body))
		var req approval.Request
		require.NoError(t, json.Unmarshal([]byte(body), &req))
		req.Status = approval.StatusApproved
		forged, err := json.Marshal(&req)
		require.NoError(t, err)
		_, err = s.db.Exec(`UPDATE requests SET status = $1, body = $2 WHERE id = $3`, string(req.Status), string(forged), s.pending)
		require.NoError(t, err)

		r := cli(t, "verify-audit", "-db", s.dsn)
		requireExit(t, r, exitFailed)
		require.Equal(t, "approval: request "+s.pending+" is approved but the audit trail has no request.approved event for it\n", r.stderr)
	})
	t.Run("swapped action", func(t *testing.T) {
		t.Parallel()
		s := d.seedNew(t)
		// The approved request, edited to another payload and its hashes:
		// its events bound the approval to the first one.
		var body string
		require.NoError(t, s.db.QueryRow(`SELECT body FROM requests WHERE id = $1`, s.approved).Scan(&body))
		var req approval.Request
		require.NoError(t, json.Unmarshal([]byte(body), &req))
		req.Action.Payload = []byte(`{"to":"attacker"}`)
		var err error
		req.ActionHash, req.PayloadHash, err = req.Action.Hashes()
		require.NoError(t, err)
		swapped, err := json.Marshal(&req)
		require.NoError(t, err)
		_, err = s.db.Exec(`UPDATE requests SET action_hash = $1, body = $2 WHERE id = $3`, req.ActionHash, string(swapped), s.approved)
		require.NoError(t, err)

		r := cli(t, "verify-audit", "-db", s.dsn)
		requireExit(t, r, exitFailed)
		require.Regexp(t, `^approval: request `+s.approved+` is \w+ but its request\.(approved|created) event is for another action or payload\n$`, r.stderr)
	})
	t.Run("checkpoint", func(t *testing.T) {
		t.Parallel()
		s := d.seedNew(t)
		r := cli(t, "checkpoint", "-db", s.dsn)
		requireExit(t, r, exitUsage)
		require.Contains(t, r.stderr, "approval checkpoint: -key is required")
		r = cli(t, "checkpoint", "-db", s.dsn, "-key", pub)
		requireExit(t, r, exitUsage)
		require.Contains(t, r.stderr, "is a public key: signing a checkpoint needs the private key")
		requireExit(t, cli(t, "checkpoint", "-key", priv), exitUsage)

		r = cli(t, "checkpoint", "-db", s.dsn, "-key", priv)
		requireExit(t, r, exitOK)
		m := checkpointLine.FindStringSubmatch(r.stdout)
		require.NotNil(t, m, "output: %s", r.stdout)
		require.Contains(t, r.stdout, "keep this head outside the database")
		require.Contains(t, r.stdout, "verify-audit -db DSN -key PUBLIC.pem -expect-head "+m[1]+"\n")
		cp, err := approval.ParseAuditHead(m[1])
		require.NoError(t, err)

		h, r := verifyAuditOK(t, s.dsn, "-key", pub, "-expect-head", cp.String())
		require.Equal(t, cp, h, "the checkpoint is the newest event")
		require.Contains(t, r.stdout, "checkpoints: 1 verified, last "+cp.String()+"\n")
		require.Contains(t, r.stdout, fmt.Sprintf("saved head %d found", cp.Seq))
		require.Empty(t, r.stderr)
		// A private key serves as its public half; an unrelated key beside
		// the signer's does no harm.
		_, r = verifyAuditOK(t, s.dsn, "-key", otherPub, "-key", priv)
		require.Contains(t, r.stdout, "checkpoints: 1 verified")

		_, r = verifyAuditOK(t, s.dsn)
		require.Contains(t, r.stdout, "checkpoints: 1 not verified (no -key), last "+cp.String()+"\n")
		require.Equal(t, "approval verify-audit: warning: 1 checkpoint was not verified: pass the gate's public key with -key to check their signatures\n", r.stderr)

		r = cli(t, "verify-audit", "-db", s.dsn, "-key", otherPub)
		requireExit(t, r, exitFailed)
		require.Regexp(t, fmt.Sprintf(`^approval: audit chain broken at seq %d: the checkpoint is signed by key .*, which the verifier does not know`, cp.Seq), r.stderr)

		// A second checkpoint signs the first.
		cp2 := checkpoint(t, s.dsn, priv)
		require.Equal(t, cp.Seq+1, cp2.Seq)
		_, r = verifyAuditOK(t, s.dsn, "-key", pub, "-expect-head", cp.String(), "-expect-head", cp2.String())
		require.Contains(t, r.stdout, "checkpoints: 2 verified, last "+cp2.String()+"\n")
		_, r = verifyAuditOK(t, s.dsn)
		require.Contains(t, r.stderr, "warning: 2 checkpoints were not verified")
	})
	t.Run("truncated", func(t *testing.T) {
		t.Parallel()
		s := d.seedNew(t)
		cp := checkpoint(t, s.dsn, priv)
		_, err := s.db.Exec(d.dropDeleteTrigger)
		require.NoError(t, err)
		_, err = s.db.Exec(`DELETE FROM audit_events WHERE seq = $1`, cp.Seq)
		require.NoError(t, err)

		// A shorter trail is still a valid chain...
		now, r := verifyAuditOK(t, s.dsn, "-key", pub)
		require.Equal(t, cp.Seq-1, now.Seq)
		require.Contains(t, r.stdout, "checkpoints: none\n")
		// ...but not one that reaches the saved head.
		r = cli(t, "verify-audit", "-db", s.dsn, "-expect-head", cp.String())
		requireExit(t, r, exitFailed)
		require.Equal(t, fmt.Sprintf("approval: audit chain broken at seq %d: the trail was truncated: the anchor kept outside the store is seq %d but it now ends at seq %d\n", cp.Seq, cp.Seq, cp.Seq-1), r.stderr)

		// Cutting a request's events off leaves it unexplained.
		_, err = s.db.Exec(`DELETE FROM audit_events WHERE seq >= (SELECT seq FROM audit_events WHERE request_id = $1 AND type = $2)`,
			s.pending, string(approval.EventRequestCreated))
		require.NoError(t, err)
		r = cli(t, "verify-audit", "-db", s.dsn)
		requireExit(t, r, exitFailed)
		require.Equal(t, "approval: request "+s.pending+" is pending but the audit trail has no request.created event for it\n", r.stderr)
	})
	t.Run("edited", func(t *testing.T) {
		t.Parallel()
		s := d.seedNew(t)
		_, err := s.db.Exec(d.dropUpdateTrigger)
		require.NoError(t, err)
		res, err := s.db.Exec(d.setReason, 2)
		require.NoError(t, err)
		n, err := res.RowsAffected()
		require.NoError(t, err)
		require.EqualValues(t, 1, n)

		r := cli(t, "verify-audit", "-db", s.dsn)
		requireExit(t, r, exitFailed)
		require.Equal(t, "approval: audit chain broken at seq 2: hash does not match the event's content\n", r.stderr)
	})
	t.Run("column edited", func(t *testing.T) {
		t.Parallel()
		s := d.seedNew(t)
		_, err := s.db.Exec(d.dropUpdateTrigger)
		require.NoError(t, err)
		// The column queries filter on, not the sealed body.
		_, err = s.db.Exec(`UPDATE audit_events SET actor = 'mallory' WHERE seq = 2`)
		require.NoError(t, err)

		r := cli(t, "verify-audit", "-db", s.dsn)
		requireExit(t, r, exitFailed)
		require.Equal(t, "approval: audit chain broken at seq 2: column actor does not match the sealed event: the row was edited\n", r.stderr)
	})
	t.Run("re-sealed", func(t *testing.T) {
		t.Parallel()
		s := d.seedNew(t)
		cp := checkpoint(t, s.dsn, priv)
		checkpoint(t, s.dsn, priv)
		evs := reseal(t, s.db, d.attack, func(evs []approval.AuditEvent) []approval.AuditEvent {
			evs[1].Reason = "nothing to see"
			return evs
		})
		// The chain alone verifies: only the checkpoint shows the edit.
		require.NoError(t, approval.VerifyAuditChain(evs))
		want := fmt.Sprintf("approval: audit chain broken at seq %d: the event's hash is not the one checkpoint %d signed: the chain was re-sealed\n", cp.Seq-1, cp.Seq)
		for _, args := range [][]string{nil, {"-key", pub}} {
			r := cli(t, append([]string{"verify-audit", "-db", s.dsn}, args...)...)
			requireExit(t, r, exitFailed)
			require.Equal(t, want, r.stderr, "verify-audit %s", args)
		}
	})
	t.Run("from", func(t *testing.T) {
		t.Parallel()
		s := d.seedNew(t)
		from, _ := verifyAuditOK(t, s.dsn)
		cp := checkpoint(t, s.dsn, priv)
		fromLine := fmt.Sprintf("from seq %d: the events before it, and the requests made before it, were not checked in this run\n", from.Seq)

		r := cli(t, "verify-audit", "-db", s.dsn, "-key", pub, "-from", from.String(), "-expect-head", cp.String())
		requireExit(t, r, exitOK)
		require.Contains(t, r.stdout, fmt.Sprintf("verified %d events; head %s\n", cp.Seq-from.Seq+1, strings.Replace(cp.String(), ":", " ", 1)))
		require.Contains(t, r.stdout, "checkpoints: 1 verified, last "+cp.String()+"\n")
		require.Contains(t, r.stdout, "requests: 0 checked against the trail\n")
		require.Contains(t, r.stdout, fromLine)
		require.Empty(t, r.stderr, "no progress line when stderr is not a terminal")

		r = cli(t, "verify-audit", "-db", s.dsn, "-from", fmt.Sprintf("%d:%064x", from.Seq, 1))
		requireExit(t, r, exitFailed)
		require.Equal(t, fmt.Sprintf("approval: audit chain broken at seq %d: the trail was rewritten: the event has hash %s, the head verified before has %064x\n", from.Seq, from.Hash, 1), r.stderr)
		r = cli(t, "verify-audit", "-db", s.dsn, "-from", "12")
		requireExit(t, r, exitUsage)
		require.Contains(t, r.stderr, `invalid value "12" for flag -from`)
		r = cli(t, "verify-audit", "-db", s.dsn, "-from", cp.String(), "-expect-head", from.String())
		requireExit(t, r, exitUsage)
		require.Contains(t, r.stderr, fmt.Sprintf("-expect-head %d is before -from %d", from.Seq, cp.Seq))

		// An edit before the start is not this run's to find; one after is.
		_, err := s.db.Exec(d.dropUpdateTrigger)
		require.NoError(t, err)
		_, err = s.db.Exec(d.setReason, 2)
		require.NoError(t, err)
		r = cli(t, "verify-audit", "-db", s.dsn, "-from", from.String())
		requireExit(t, r, exitOK)
		requireExit(t, cli(t, "verify-audit", "-db", s.dsn), exitFailed)
		_, err = s.db.Exec(d.setReason, from.Seq+1)
		require.NoError(t, err)
		r = cli(t, "verify-audit", "-db", s.dsn, "-from", from.String())
		requireExit(t, r, exitFailed)
		require.Equal(t, fmt.Sprintf("approval: audit chain broken at seq %d: hash does not match the event's content\n", from.Seq+1), r.stderr)
	})
	t.Run("re-sealed without checkpoints", func(t *testing.T) {
		t.Parallel()
		// The attacker also deletes the checkpoint, which it cannot
		// re-sign: the head kept outside the store is past the trail's
		// end now.
		s := d.seedNew(t)
		cp := checkpoint(t, s.dsn, priv)
		evs := reseal(t, s.db, d.attack, func(evs []approval.AuditEvent) []approval.AuditEvent {
			evs[1].Reason = "nothing to see"
			return evs[:cp.Seq-1]
		})
		require.NoError(t, approval.VerifyAuditChain(evs))
		_, r := verifyAuditOK(t, s.dsn, "-key", pub)
		require.Contains(t, r.stdout, "checkpoints: none\n")

		r = cli(t, "verify-audit", "-db", s.dsn, "-key", pub, "-expect-head", cp.String())
		requireExit(t, r, exitFailed)
		require.Regexp(t, fmt.Sprintf(`^approval: audit chain broken at seq %d: the trail was truncated`, cp.Seq), r.stderr)

		// Or replaces it by an event of another type: the trail reaches
		// the head, with another hash.
		evs = reseal(t, s.db, d.attack, func(evs []approval.AuditEvent) []approval.AuditEvent {
			return append(evs, approval.AuditEvent{Type: approval.EventAuditMismatch, Actor: approval.SystemActor, At: evs[len(evs)-1].At})
		})
		require.EqualValues(t, cp.Seq, evs[len(evs)-1].Seq)
		verifyAuditOK(t, s.dsn, "-key", pub)
		r = cli(t, "verify-audit", "-db", s.dsn, "-key", pub, "-expect-head", cp.String())
		requireExit(t, r, exitFailed)
		require.Regexp(t, fmt.Sprintf(`^approval: audit chain broken at seq %d: the trail was rewritten`, cp.Seq), r.stderr)
	})
}

// reseal is an attacker who can write the database and rewrites the audit
// trail past its triggers: it reads every event, lets edit change them
// (drop the newest, append new ones), recomputes every hash from the
// first change on, so that the chain verifies, writes the trail back and
// returns it. A checkpoint's signature is left as it was: the attacker
// has no key to sign another.
func reseal(t *testing.T, db *sql.DB, a attack, edit func([]approval.AuditEvent) []approval.AuditEvent) []approval.AuditEvent {
	t.Helper()
	rows, err := db.Query(`SELECT body FROM audit_events ORDER BY seq`)
	require.NoError(t, err)
	var (
		evs  []approval.AuditEvent
		was  = map[int64]string{} // hash by seq, as stored
		body string
	)
	for rows.Next() {
		require.NoError(t, rows.Scan(&body))
		var e approval.AuditEvent
		require.NoError(t, json.Unmarshal([]byte(body), &e))
		evs = append(evs, e)
		was[e.Seq] = e.Hash
	}
	require.NoError(t, rows.Err())
	require.NoError(t, rows.Close())

	evs = edit(evs)
	// The triggers may be gone already; on PostgreSQL both statements
	// drop one trigger, IF EXISTS.
	_, _ = db.Exec(a.dropUpdateTrigger)
	_, _ = db.Exec(a.dropDeleteTrigger)
	_, err = db.Exec(`DELETE FROM audit_events WHERE seq > $1`, len(evs))
	require.NoError(t, err)
	var prev approval.AuditEvent
	for i := range evs {
		e := &evs[i]
		e.Seal(prev.Seq, prev.Hash)
		prev = *e
		if was[e.Seq] == e.Hash {
			continue
		}
		b, err := json.Marshal(e)
		require.NoError(t, err)
		if _, ok := was[e.Seq]; !ok {
			_, err = db.Exec(`INSERT INTO audit_events (seq, request_id, type, actor, at, prev_hash, hash, body)
				SELECT $1, $2, $3, $4, at, $5, $6, $7 FROM audit_events WHERE seq = $8`,
				e.Seq, nullString(e.RequestID), string(e.Type), nullString(e.Actor), e.PrevHash, e.Hash, string(b), e.Seq-1)
		} else {
			_, err = db.Exec(`UPDATE audit_events SET request_id = $1, type = $2, actor = $3, prev_hash = $4, hash = $5, body = $6 WHERE seq = $7`,
				nullString(e.RequestID), string(e.Type), nullString(e.Actor), e.PrevHash, e.Hash, string(b), e.Seq)
		}
		require.NoError(t, err, "write event %d", e.Seq)
	}
	return evs
}

// nullString is s, or NULL if empty, as the store writes optional columns.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func TestVerifyAuditSQLite(t *testing.T) {
	t.Parallel()
	testVerifyAudit(t, dialect{attack: sqliteAttack, open: func(t *testing.T) (string, *sql.DB, []string) {
		path := filepath.Join(t.TempDir(), "approval.db")
		db, err := sql.Open("sqlite", path)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, db.Close()) })
		return path, db, []string{"sqlite:" + path, "file:" + path + "?cache=private"}
	}})
}

func TestVerifyAuditPostgres(t *testing.T) {
	t.Parallel()
	testVerifyAudit(t, dialect{attack: postgresAttack, open: func(t *testing.T) (string, *sql.DB, []string) {
		dsn := postgresDSN(t)
		db, err := sql.Open("pgx", dsn)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, db.Close()) })
		return dsn, db, nil
	}})
}

func TestVerifyAuditNoDatabase(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()

	missing := filepath.Join(dir, "missing.db")
	r := cli(t, "verify-audit", "-db", missing)
	requireExit(t, r, exitUsage)
	require.Contains(t, r.stderr, "does not exist")
	require.NoFileExists(t, missing, "verify-audit created the database")
	priv, _ := keyPair(t, dir, "gate")
	r = cli(t, "checkpoint", "-db", missing, "-key", priv)
	requireExit(t, r, exitUsage)
	require.Contains(t, r.stderr, "does not exist")
	require.NoFileExists(t, missing, "checkpoint created the database")

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
	r = cli(t, "checkpoint", "-db", other, "-key", priv)
	requireExit(t, r, exitUsage)
	require.Contains(t, r.stderr, "no approval schema")
	var tables int
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'table'`).Scan(&tables))
	require.Equal(t, 1, tables)

	requireExit(t, cli(t, "verify-audit", "-db", ":memory:"), exitUsage)
	requireExit(t, cli(t, "verify-audit"), exitUsage)
}

// postgresDSN returns a DSN for a schema of the test's own, or skips
// (fails when APPROVAL_REQUIRE_POSTGRES=1, as in CI).
func postgresDSN(t *testing.T) string { return pgtest.DSN(t) }

// TestProgressLine: the progress verify-audit shows on a terminal, one
// line written over, and blanked at the end.
func TestProgressLine(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	start := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	p := &progressLine{w: &b, start: start, total: 1_000_000}
	p.show(start, approval.AuditProgress{})
	p.show(start.Add(2*time.Second), approval.AuditProgress{Events: 300_000, Seq: 300_000})
	p.show(start.Add(6*time.Second), approval.AuditProgress{Events: 1_000_000, Seq: 1_000_000})
	p.clear()
	p.clear()
	lines := []string{
		"verify-audit: 0 of 1,000,000 events verified",
		"verify-audit: 300,000 of 1,000,000 events verified, 150,000/s, about 5s left",
		"verify-audit: 1,000,000 of 1,000,000 events verified, 166,666/s",
	}
	want := "\r" + lines[0] + "\r" + lines[1] + "\r" + lines[2] + strings.Repeat(" ", len(lines[1])-len(lines[2])) +
		"\r" + strings.Repeat(" ", len(lines[2])) + "\r"
	require.Equal(t, want, b.String())

	b.Reset()
	p = &progressLine{w: &b, start: start}
	p.show(start.Add(time.Second), approval.AuditProgress{Events: 1234, Seq: 2000})
	require.Equal(t, "\rverify-audit: 1,234 events verified, 1,234/s", b.String())
	var nothing *progressLine
	nothing.clear()

	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1234: "-1,234"} {
		require.Equal(t, want, thousands(n))
	}
}
