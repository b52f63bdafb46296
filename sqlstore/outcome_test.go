package sqlstore

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/pgtest"
)

// TestGroupCommitOutcomeUnknown loses the answer to the COMMIT of a group
// of three appends, which the server did commit. Each caller must get an
// error saying the outcome is unknown, and the group must not run its
// writes again alone: that would append every event twice.
func TestGroupCommitOutcomeUnknown(t *testing.T) {
	t.Parallel()
	proxy := pgtest.NewCommitDropper(t, postgresDSN(t))
	s := open(t, proxy.DSN)
	ctx := t.Context()

	release := holdLead(t, s) // commits nothing: it sends no COMMIT
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		enqueue(t, s, &wg, func() {
			errs[i] = s.AppendAudit(ctx, []approval.AuditEvent{event("", approval.EventRequestCreated, fmt.Sprintf("actor-%d", i))})
		})
	}
	proxy.Arm()
	release()
	wg.Wait()
	require.EqualValues(t, 1, proxy.Drops(), "the group's COMMIT answer was dropped")
	for i, err := range errs {
		require.ErrorIs(t, err, ErrOutcomeUnknown, "append %d", i)
	}

	trail := fullTrail(t, s)
	require.Len(t, trail, 3, "the group committed once and ran nothing again")
	require.NoError(t, approval.VerifyAuditChain(trail))
}

// TestCommitOutcomeUnknownAlone loses the answer to a lone write's
// COMMIT, on either write path: its caller must learn that the outcome is
// unknown (here, the write did commit), not get a plain failure, and the
// write must not run again.
func TestCommitOutcomeUnknownAlone(t *testing.T) {
	t.Parallel()
	eachPath(t, func(t *testing.T, opts []Option) {
		proxy := pgtest.NewCommitDropper(t, postgresDSN(t))
		s := open(t, proxy.DSN, opts...)
		proxy.Arm()
		err := s.AppendAudit(t.Context(), []approval.AuditEvent{event("", approval.EventRequestCreated, "alice")})
		require.ErrorIs(t, err, ErrOutcomeUnknown)
		require.EqualValues(t, 1, proxy.Drops())
		require.Len(t, fullTrail(t, s), 1)
	})
}

// TestPostgresFailureAtCommitWritesNothing makes the events of an Update
// fail to insert: PostgreSQL rejects NUL in text, and a pgQuerier sends the
// events with COMMIT. The whole write must be rolled back (version, token,
// approver index, trail), and the connection rolled back and reused.
func TestPostgresFailureAtCommitWritesNothing(t *testing.T) {
	t.Parallel()
	s := open(t, postgresDSN(t), MaxConns(1))
	ctx := t.Context()
	r := newRequest()
	_, _, err := s.Create(ctx, r, nil)
	require.NoError(t, err)

	conn := func() (dc any) {
		c, err := s.w.Conn(ctx)
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.Raw(func(x any) error { dc = x; return nil }))
		return dc
	}
	before := conn()

	bad := []approval.AuditEvent{event(r.ID, approval.EventDecisionApprove, "bob\x00")}
	err = s.Update(ctx, approval.Update{Request: vote(r, "bob", "tok"), TokenID: "tok", Events: bad})
	require.ErrorContains(t, err, "append audit events")
	require.Zero(t, bad[0].Seq)
	err = s.AppendAudit(ctx, []approval.AuditEvent{event("", approval.EventNotificationSent, "x\x00")})
	require.Error(t, err)

	got, err := s.Get(ctx, r.ID)
	require.NoError(t, err)
	require.Equal(t, int64(1), got.Version)
	page, err := s.List(ctx, approval.RequestQuery{Approver: "bob"})
	require.NoError(t, err)
	require.Empty(t, page.Requests)
	require.Empty(t, fullTrail(t, s))

	require.True(t, before == conn(), "the failed transaction is rolled back and its connection kept")

	// The token was not recorded, and the connection is usable.
	good := []approval.AuditEvent{event(r.ID, approval.EventDecisionApprove, "bob")}
	require.NoError(t, s.Update(ctx, approval.Update{Request: vote(r, "bob", "tok"), TokenID: "tok", Events: good}))
	require.Equal(t, int64(1), good[0].Seq)
	require.Len(t, fullTrail(t, s), 1)
}
