package sqlstore

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// dropAuditTriggers is what an attacker with write access to the database
// does first: the trail is append-only only while the triggers stand.
func dropAuditTriggers(t *testing.T, s *Store) {
	t.Helper()
	stmts := []string{`DROP TRIGGER audit_events_no_update`, `DROP TRIGGER audit_events_no_delete`}
	if s.dialect == Postgres {
		stmts = []string{`DROP TRIGGER IF EXISTS audit_events_no_update_delete ON audit_events`}
	}
	for _, q := range stmts {
		_, err := s.w.Exec(q)
		require.NoError(t, err)
	}
}

// integrityGate is a gate over a new store of the backend, with a trail
// holding an approved request (consumed), a denied one and a pending one.
func integrityGate(t *testing.T, newDSN func(testing.TB) string) (*approval.Gate, *Store, approval.Action) {
	t.Helper()
	s := open(t, newDSN(t))
	_, key, err := approval.GenerateKeys()
	require.NoError(t, err)
	g, err := approval.New(approval.Config{Store: s, SigningKey: key, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, g.Close(context.Background())) })
	require.NoError(t, g.SetPolicy("deploys", approval.Policy{
		Match:             approval.Name("deploy:*"),
		Approvers:         []approval.Approver{approval.User("alice"), approval.User("bob")},
		RequiredApprovals: 1,
	}))
	ctx := t.Context()
	decide := func(a approval.Action, who string, v approval.Verdict) {
		res, err := g.Guard(ctx, a)
		require.NoError(t, err)
		require.Equal(t, approval.OutcomePending, res.Status)
		tok, err := g.IssueToken(res.RequestID, who, v, time.Hour)
		require.NoError(t, err)
		_, err = g.Decide(ctx, res.RequestID, approval.Decision{Token: tok, Verdict: v})
		require.NoError(t, err)
	}
	approved := approval.Action{Name: "deploy:api", RequestedBy: "ci", Payload: []byte(`{"v":1}`)}
	decide(approved, "alice", approval.VerdictApprove)
	res, err := g.Guard(ctx, approved)
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeApproved, res.Status)
	decide(approval.Action{Name: "deploy:db", RequestedBy: "ci"}, "bob", approval.VerdictDeny)
	res, err = g.Guard(ctx, approval.Action{Name: "deploy:web", RequestedBy: "ci"})
	require.NoError(t, err)
	require.Equal(t, approval.OutcomePending, res.Status)
	_, err = g.VerifyAuditTrail(ctx, approval.VerifyAuditOptions{})
	require.NoError(t, err)
	dropAuditTriggers(t, s)
	return g, s, approved
}

func requireChainError(t *testing.T, err error, seq int64, reason string) {
	t.Helper()
	var ce *approval.AuditChainError
	require.ErrorAs(t, err, &ce)
	require.ErrorIs(t, err, approval.ErrAuditChain)
	require.Equal(t, seq, ce.Seq, "%v", err)
	require.Contains(t, ce.Reason, reason)
}

// TestAuditColumnEdit: an edit of an indexed column alone leaves the
// chain (which seals the body) intact, and would hide the event from a
// query on the real value; every read checks the columns against the body.
func TestAuditColumnEdit(t *testing.T) {
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		for _, col := range []string{"actor", "type", "request_id"} {
			t.Run(col, func(t *testing.T) {
				g, s, _ := integrityGate(t, newDSN)
				ctx := t.Context()
				var seq int64
				require.NoError(t, s.r.QueryRow(`SELECT seq FROM audit_events WHERE actor = 'alice' ORDER BY seq LIMIT 1`).Scan(&seq))
				_, err := s.w.Exec(`UPDATE audit_events SET `+col+` = 'mallory' WHERE seq = $1`, seq)
				require.NoError(t, err)

				_, err = g.VerifyAuditTrail(ctx, approval.VerifyAuditOptions{})
				requireChainError(t, err, seq, "column "+col+" does not match the sealed event")
				// A query that finds the row under its false value says so.
				q := approval.AuditQuery{Actor: "mallory"}
				switch col {
				case "type":
					q = approval.AuditQuery{Type: "mallory"}
				case "request_id":
					q = approval.AuditQuery{RequestID: "mallory"}
				}
				_, err = g.ListAudit(ctx, q)
				requireChainError(t, err, seq, "column "+col)
			})
		}
	})
}

// TestAuditReseal: an edit of an event's body, re-sealed through every
// later hash, is a valid chain; the signed checkpoint after it is not.
func TestAuditReseal(t *testing.T) {
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		g, s, _ := integrityGate(t, newDSN)
		ctx := t.Context()
		cp, err := g.Checkpoint(ctx)
		require.NoError(t, err)
		_, err = g.Guard(ctx, approval.Action{Name: "deploy:cache", RequestedBy: "ci"})
		require.NoError(t, err)

		resealFrom(t, s, 2, func(e *approval.AuditEvent) { e.Reason = "nothing to see" })
		_, err = g.VerifyAuditTrail(ctx, approval.VerifyAuditOptions{})
		requireChainError(t, err, cp.Seq-1, "re-sealed")

		// Dropping the checkpoint too leaves a chain that verifies, but
		// not against the anchor kept outside the database.
		_, err = s.w.Exec(`DELETE FROM audit_events WHERE type = 'audit.checkpoint'`)
		require.NoError(t, err)
		resealFrom(t, s, 1, func(*approval.AuditEvent) {})
		_, err = g.VerifyAuditTrail(ctx, approval.VerifyAuditOptions{})
		require.NoError(t, err)
		_, err = g.VerifyAuditTrail(ctx, approval.VerifyAuditOptions{Anchors: []approval.AuditHead{cp}})
		requireChainError(t, err, cp.Seq, "rewritten")
	})
}

// resealFrom edits the event at seq with edit, renumbers the trail from
// there (after a deletion) and recomputes every later hash, writing the
// rows back as an attacker would.
func resealFrom(t *testing.T, s *Store, seq int64, edit func(*approval.AuditEvent)) {
	t.Helper()
	rows, err := s.r.Query(`SELECT seq, body FROM audit_events ORDER BY seq`)
	require.NoError(t, err)
	type row struct {
		seq int64
		e   approval.AuditEvent
	}
	var all []row
	for rows.Next() {
		var r row
		var body string
		require.NoError(t, rows.Scan(&r.seq, &body))
		require.NoError(t, json.Unmarshal([]byte(body), &r.e))
		all = append(all, r)
	}
	require.NoError(t, rows.Err())
	require.NoError(t, rows.Close())
	_, err = s.w.Exec(`DELETE FROM audit_events WHERE seq >= $1`, seq)
	require.NoError(t, err)
	for i := range all {
		if all[i].seq < seq {
			continue
		}
		e := &all[i].e
		if all[i].seq == seq {
			edit(e)
		}
		var prevSeq int64
		var prevHash string
		if i > 0 {
			prevSeq, prevHash = all[i-1].e.Seq, all[i-1].e.Hash
		}
		e.Seal(prevSeq, prevHash)
		body, err := json.Marshal(e)
		require.NoError(t, err)
		_, err = s.w.Exec(`INSERT INTO audit_events (seq, request_id, type, actor, at, prev_hash, hash, body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			e.Seq, nullString(e.RequestID), string(e.Type), nullString(e.Actor), s.dialect.timeValue(e.At), e.PrevHash, e.Hash, string(body))
		require.NoError(t, err)
	}
}

// TestAuditTruncationAgainstAnAnchor: a trail that lost its newest
// events is a valid chain, short of the anchor.
func TestAuditTruncationAgainstAnAnchor(t *testing.T) {
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		g, s, _ := integrityGate(t, newDSN)
		ctx := t.Context()
		cp, err := g.Checkpoint(ctx)
		require.NoError(t, err)
		_, err = s.w.Exec(`DELETE FROM audit_events WHERE seq = $1`, cp.Seq)
		require.NoError(t, err)
		r, err := g.VerifyAuditTrail(ctx, approval.VerifyAuditOptions{})
		require.NoError(t, err)
		require.Equal(t, cp.Seq-1, r.Head.Seq)
		_, err = g.VerifyAuditTrail(ctx, approval.VerifyAuditOptions{Anchors: []approval.AuditHead{cp}})
		requireChainError(t, err, cp.Seq, "truncated")
	})
}

// TestForgedApprovedRow: a request row inserted as approved, with no
// event: VerifyAudit names it and Guard refuses to consume it.
func TestForgedApprovedRow(t *testing.T) {
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		g, s, _ := integrityGate(t, newDSN)
		ctx := t.Context()
		a := approval.Action{Name: "deploy:payments", RequestedBy: "mallory"}
		res, err := g.Guard(ctx, a)
		require.NoError(t, err)
		_, err = g.Cancel(ctx, res.RequestID, "mallory", "make room")
		require.NoError(t, err)
		real, err := s.Get(ctx, res.RequestID)
		require.NoError(t, err)

		forged := real.Clone()
		forged.ID = res.RequestID[:len(res.RequestID)-1] + map[bool]string{true: "0", false: "1"}[res.RequestID[len(res.RequestID)-1] != '0']
		forged.Status, forged.Reason, forged.ResolvedAt = approval.StatusApproved, "quorum met", real.CreatedAt
		forged.Votes = []approval.Vote{{Approver: "alice", Verdict: approval.VerdictApprove, TokenID: "forged", Policies: []string{"deploys"}, At: real.CreatedAt}}
		body, err := json.Marshal(forged)
		require.NoError(t, err)
		_, err = s.w.Exec(`INSERT INTO requests (id, status, action_hash, requested_by, created_at, updated_at, due_at, version, body, hold_until)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			forged.ID, string(forged.Status), forged.ActionHash, forged.Action.RequestedBy, s.dialect.timeValue(forged.CreatedAt),
			s.dialect.timeValue(forged.UpdatedAt), nil, forged.Version, string(body), nil)
		require.NoError(t, err)

		_, err = g.VerifyAuditTrail(ctx, approval.VerifyAuditOptions{})
		var se *approval.AuditStateError
		require.ErrorAs(t, err, &se)
		require.Equal(t, forged.ID, se.RequestID)

		res, err = g.Guard(ctx, a)
		require.ErrorIs(t, err, approval.ErrAuditChain)
		require.NotEqual(t, approval.OutcomeApproved, res.Status)
		got, err := s.Get(ctx, forged.ID)
		require.NoError(t, err)
		require.Equal(t, approval.StatusApproved, got.Status, "Guard consumed the forged request")
		page, err := g.ListAudit(ctx, approval.AuditQuery{RequestID: forged.ID, Type: approval.EventAuditMismatch})
		require.NoError(t, err)
		require.Len(t, page.Events, 1)
		_, err = g.Artifact(ctx, forged.ID)
		require.ErrorIs(t, err, approval.ErrAuditChain)
	})
}

func TestLastAuditEvent(t *testing.T) {
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		s := open(t, newDSN(t))
		ctx := t.Context()
		_, ok, err := s.LastAuditEvent(ctx)
		require.NoError(t, err)
		require.False(t, ok)
		evs := []approval.AuditEvent{event("", approval.EventAuditSinkFailed, "system"), event("", approval.EventAuditSinkFailed, "system")}
		require.NoError(t, s.AppendAudit(ctx, evs))
		last, ok, err := s.LastAuditEvent(ctx)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, evs[1], last)
	})
}

// TestSwappedActionRow: an approved request's row edited to another
// action (body and action_hash column) is not consumed by a Guard of
// that action, and VerifyAudit names it.
func TestSwappedActionRow(t *testing.T) {
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		g, s, _ := integrityGate(t, newDSN)
		ctx := t.Context()
		asked := approval.Action{Name: "deploy:api", RequestedBy: "ci", Payload: []byte(`{"v":2}`)}
		res, err := g.Guard(ctx, asked)
		require.NoError(t, err)
		tok, err := g.IssueToken(res.RequestID, "alice", approval.VerdictApprove, time.Hour)
		require.NoError(t, err)
		_, err = g.Decide(ctx, res.RequestID, approval.Decision{Token: tok, Verdict: approval.VerdictApprove})
		require.NoError(t, err)

		evil := asked
		evil.Payload = []byte(`{"v":666}`)
		r, err := s.Get(ctx, res.RequestID)
		require.NoError(t, err)
		r.Action.Payload = evil.Payload
		r.ActionHash, r.PayloadHash, err = evil.Hashes()
		require.NoError(t, err)
		body, err := json.Marshal(r)
		require.NoError(t, err)
		_, err = s.w.Exec(`UPDATE requests SET body = $1, action_hash = $2 WHERE id = $3`, string(body), r.ActionHash, r.ID)
		require.NoError(t, err)

		_, err = g.VerifyAuditTrail(ctx, approval.VerifyAuditOptions{})
		var se *approval.AuditStateError
		require.ErrorAs(t, err, &se)
		require.Equal(t, r.ID, se.RequestID)
		require.True(t, se.WrongHashes)

		got, err := g.Guard(ctx, evil)
		require.ErrorIs(t, err, approval.ErrAuditChain)
		require.NotEqual(t, approval.OutcomeApproved, got.Status)
		stored, err := s.Get(ctx, r.ID)
		require.NoError(t, err)
		require.Equal(t, approval.StatusApproved, stored.Status, "Guard consumed the swapped approval")
	})
}

// TestAuditIncremental: a run from a head verified before reads the trail
// from it on (StreamAudit) and the requests made since (AuditedRequests),
// and finds what a run from the start finds there; a rewrite that reaches
// back before it changes its hash.
func TestAuditIncremental(t *testing.T) {
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		g, s, _ := integrityGate(t, newDSN)
		ctx := t.Context()
		rep, err := g.VerifyAuditTrail(ctx, approval.VerifyAuditOptions{})
		require.NoError(t, err)
		from := rep.Head
		res, err := g.Guard(ctx, approval.Action{Name: "deploy:cache", RequestedBy: "ci"})
		require.NoError(t, err)
		require.Equal(t, approval.OutcomePending, res.Status)

		rep, err = g.VerifyAuditTrail(ctx, approval.VerifyAuditOptions{From: from})
		require.NoError(t, err)
		last, _, err := s.LastAuditEvent(ctx)
		require.NoError(t, err)
		require.Equal(t, last.Seq-from.Seq+1, rep.Events)
		require.EqualValues(t, 1, rep.Requests, "the request made since")

		var seq int64
		require.NoError(t, s.r.QueryRow(`SELECT seq FROM audit_events WHERE request_id = $1 ORDER BY seq LIMIT 1`, res.RequestID).Scan(&seq))
		require.Greater(t, seq, from.Seq)
		_, err = s.w.Exec(`UPDATE audit_events SET request_id = NULL WHERE seq = $1`, seq)
		require.NoError(t, err)
		_, err = g.VerifyAuditTrail(ctx, approval.VerifyAuditOptions{From: from})
		requireChainError(t, err, seq, "column request_id does not match the sealed event")
		_, err = s.w.Exec(`UPDATE audit_events SET request_id = $1 WHERE seq = $2`, res.RequestID, seq)
		require.NoError(t, err)

		resealFrom(t, s, 2, func(e *approval.AuditEvent) { e.Reason = "nothing to see" })
		_, err = g.VerifyAuditTrail(ctx, approval.VerifyAuditOptions{})
		require.NoError(t, err, "a re-sealed chain without checkpoints verifies from the start")
		_, err = g.VerifyAuditTrail(ctx, approval.VerifyAuditOptions{From: from})
		requireChainError(t, err, from.Seq, "rewritten")
	})
}
