package sqlstore

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

func TestAppendAndListAudit(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		s := open(t, newDSN(t))
		ctx := t.Context()
		r := newRequest()
		created := []approval.AuditEvent{event(r.ID, approval.EventRequestCreated, "alice")}
		created[0].Policies = []approval.PolicyRef{{Name: "high_spend", Hash: "h1"}}
		created[0].At = time.Now() // nanoseconds: the seal normalises it
		_, _, err := s.Create(ctx, r, created)
		require.NoError(t, err)
		require.Equal(t, int64(1), created[0].Seq)
		require.Empty(t, created[0].PrevHash)
		require.Equal(t, created[0].At, created[0].At.UTC().Truncate(time.Microsecond))

		t0 := now()
		var batch []approval.AuditEvent
		for i := range 9 {
			e := event(r.ID, approval.EventNotificationSent, "system")
			if i%3 == 0 {
				e = event("req_other", approval.EventDecisionRejected, "mallory")
				e.Reason = "token expired"
				e.Verdict = approval.VerdictApprove
			}
			e.At = t0.Add(time.Duration(i) * time.Second)
			batch = append(batch, e)
		}
		require.NoError(t, s.AppendAudit(ctx, batch))
		for i, e := range batch {
			require.Equal(t, int64(i+2), e.Seq)
		}
		require.Equal(t, created[0].Hash, batch[0].PrevHash)
		require.NoError(t, s.AppendAudit(ctx, nil))

		all := fullTrail(t, s)
		require.Len(t, all, 10)
		require.Equal(t, created[0], all[0])
		require.Equal(t, batch, all[1:])

		ev := func(q approval.AuditQuery) []int64 {
			var seqs []int64
			for {
				page, err := s.ListAudit(ctx, q)
				require.NoError(t, err)
				for _, e := range page.Events {
					seqs = append(seqs, e.Seq)
				}
				if page.Next == "" {
					return seqs
				}
				q.Cursor = page.Next
			}
		}
		require.Equal(t, []int64{2, 5, 8}, ev(approval.AuditQuery{RequestID: "req_other", Limit: 1}))
		require.Equal(t, []int64{2, 5, 8}, ev(approval.AuditQuery{Actor: "mallory", Limit: 2}))
		require.Equal(t, []int64{4, 5, 6}, ev(approval.AuditQuery{Since: t0.Add(2 * time.Second), Until: t0.Add(5 * time.Second)}))
		require.Equal(t, []int64{6, 7, 9, 10}, ev(approval.AuditQuery{RequestID: r.ID, Actor: "system", Since: t0.Add(3 * time.Second), Limit: 1}))
		require.Empty(t, ev(approval.AuditQuery{Actor: "nobody"}))

		_, err = s.ListAudit(ctx, approval.AuditQuery{Cursor: "req_x"})
		require.ErrorContains(t, err, "invalid cursor")
	})
}

// TestAuditAppendOnly checks that the schema itself refuses to change or
// remove audit events, whoever asks.
func TestAuditAppendOnly(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		s := open(t, newDSN(t))
		ctx := t.Context()
		evs := []approval.AuditEvent{event("req_1", approval.EventRequestCreated, "alice"), event("req_1", approval.EventRequestApproved, "bob")}
		require.NoError(t, s.AppendAudit(ctx, evs))

		for _, stmt := range []string{
			`UPDATE audit_events SET actor = 'mallory' WHERE seq = 1`,
			`UPDATE audit_events SET body = '{}'`,
			`DELETE FROM audit_events WHERE seq = 2`,
			`DELETE FROM audit_events`,
		} {
			_, err := s.w.ExecContext(ctx, stmt)
			require.Error(t, err, stmt)
			require.ErrorContains(t, err, "append-only", stmt)
		}
		if s.Dialect() == Postgres {
			_, err := s.w.ExecContext(ctx, `TRUNCATE audit_events`)
			require.ErrorContains(t, err, "append-only")
		}
		require.Equal(t, evs, fullTrail(t, s))

		// The chain continues where it was.
		more := []approval.AuditEvent{event("req_1", approval.EventApprovalConsumed, "alice")}
		require.NoError(t, s.AppendAudit(ctx, more))
		require.Equal(t, int64(3), more[0].Seq)
		require.Len(t, fullTrail(t, s), 3)
	})
}
