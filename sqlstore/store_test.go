package sqlstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

func TestCreateGetRoundTrip(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		s := open(t, newDSN(t))
		r := newRequest()
		r.Action.Cost = &approval.Cost{Amount: 12.5, Currency: "EUR"}
		r.Action.Risk = approval.RiskCritical
		r.Action.Tags = []string{"prod"}
		r.Action.Metadata = map[string]string{"k": "v\u0000with a NUL"}
		r.Action.Payload = []byte(`{"a":1}`)
		r.Action.Message = "ünïcode \"quoted\""
		r.Votes = []approval.Vote{{Approver: "bob", Verdict: approval.VerdictDeny, TokenID: "t1", Policies: []string{"high_spend"}, At: now()}}
		r.Deadline = now().Add(time.Hour)
		r.DueAt = now().Add(time.Minute)
		r.OnTimeout = approval.TimeoutApprove

		stored, created, err := s.Create(t.Context(), r, nil)
		require.NoError(t, err)
		require.True(t, created)
		require.Equal(t, r, stored)

		got, err := s.Get(t.Context(), r.ID)
		require.NoError(t, err)
		require.Equal(t, r, got)

		got.Votes[0].Approver = "mallory" // the caller owns the copy
		again, err := s.Get(t.Context(), r.ID)
		require.NoError(t, err)
		require.Equal(t, "bob", again.Votes[0].Approver)
	})
}

func TestCreateNormalisesTimes(t *testing.T) {
	t.Parallel()
	s := open(t, sqliteDSN(t))
	r := newRequest()
	local := time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.FixedZone("X", 3600))
	r.CreatedAt, r.DueAt = local, local
	stored, _, err := s.Create(t.Context(), r, nil)
	require.NoError(t, err)
	want := local.UTC().Truncate(time.Microsecond)
	require.Equal(t, want, stored.CreatedAt)
	got, err := s.Get(t.Context(), r.ID)
	require.NoError(t, err)
	require.Equal(t, want, got.CreatedAt)
	require.Equal(t, want, got.DueAt)
	require.Equal(t, local, r.CreatedAt, "Create must not modify the caller's request")
}

func TestGetNotFound(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		s := open(t, newDSN(t))
		_, err := s.Get(t.Context(), "req_missing")
		require.ErrorIs(t, err, approval.ErrNotFound)
		require.EqualError(t, err, "sqlstore: get req_missing: not found")
	})
}

func TestCreateDeduplicates(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		s := open(t, newDSN(t))
		ctx := t.Context()
		first := newRequest()
		_, created, err := s.Create(ctx, first, []approval.AuditEvent{event(first.ID, approval.EventRequestCreated, "alice")})
		require.NoError(t, err)
		require.True(t, created)

		// A live request of the same action is returned, and nothing is
		// written, not even the events.
		dup := newRequest()
		dup.ActionHash = first.ActionHash
		evs := []approval.AuditEvent{event(dup.ID, approval.EventRequestCreated, "alice")}
		got, created, err := s.Create(ctx, dup, evs)
		require.NoError(t, err)
		require.False(t, created)
		require.Equal(t, first.ID, got.ID)
		require.Zero(t, evs[0].Seq)
		require.Len(t, fullTrail(t, s), 1)
		_, err = s.Get(ctx, dup.ID)
		require.ErrorIs(t, err, approval.ErrNotFound)

		// Approved is still live.
		approved := first.Clone()
		approved.Status = approval.StatusApproved
		approved.Version++
		require.NoError(t, s.Update(ctx, approval.Update{Request: approved}))
		_, created, err = s.Create(ctx, dup, nil)
		require.NoError(t, err)
		require.False(t, created)

		// Once the request is terminal, the action is free.
		consumed := approved.Clone()
		consumed.Status = approval.StatusConsumed
		consumed.Version++
		require.NoError(t, s.Update(ctx, approval.Update{Request: consumed}))
		_, created, err = s.Create(ctx, dup, nil)
		require.NoError(t, err)
		require.True(t, created)

		// A taken ID is a conflict.
		again := newRequest()
		again.ID = first.ID
		_, _, err = s.Create(ctx, again, nil)
		require.ErrorIs(t, err, approval.ErrConflict)
	})
}

func TestUpdateCompareAndSet(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		s := open(t, newDSN(t))
		ctx := t.Context()
		r := newRequest()
		_, _, err := s.Create(ctx, r, nil)
		require.NoError(t, err)

		v2 := vote(r, "bob", "tok-1")
		evs := []approval.AuditEvent{event(r.ID, approval.EventDecisionApprove, "bob")}
		require.NoError(t, s.Update(ctx, approval.Update{Request: v2, TokenID: "tok-1", Events: evs}))
		require.Equal(t, int64(1), evs[0].Seq)
		require.NotEmpty(t, evs[0].Hash)

		// A second update from version 1 lost the race: nothing is written,
		// not the token, not the events.
		stale := vote(r, "carol", "tok-2")
		staleEvs := []approval.AuditEvent{event(r.ID, approval.EventDecisionApprove, "carol")}
		err = s.Update(ctx, approval.Update{Request: stale, TokenID: "tok-2", Events: staleEvs})
		require.ErrorIs(t, err, approval.ErrConflict)
		require.Zero(t, staleEvs[0].Seq, "events are sealed only when the write commits")
		got, err := s.Get(ctx, r.ID)
		require.NoError(t, err)
		require.Equal(t, v2, got)
		require.Len(t, fullTrail(t, s), 1)
		// tok-2 was not recorded, so it still works.
		require.NoError(t, s.Update(ctx, approval.Update{Request: vote(got, "carol", "tok-2"), TokenID: "tok-2"}))

		missing := newRequest()
		missing.Version = 2
		err = s.Update(ctx, approval.Update{Request: missing, TokenID: "tok-3"})
		require.ErrorIs(t, err, approval.ErrNotFound)
	})
}

func TestUpdateTokenReplay(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		s := open(t, newDSN(t))
		ctx := t.Context()
		a, b := newRequest(), newRequest()
		for _, r := range []*approval.Request{a, b} {
			_, _, err := s.Create(ctx, r, nil)
			require.NoError(t, err)
		}
		require.NoError(t, s.Update(ctx, approval.Update{Request: vote(a, "bob", "tok"), TokenID: "tok"}))

		// The same token on another request: refused, nothing written.
		evs := []approval.AuditEvent{event(b.ID, approval.EventDecisionApprove, "bob")}
		err := s.Update(ctx, approval.Update{Request: vote(b, "bob", "tok"), TokenID: "tok", Events: evs})
		require.ErrorIs(t, err, approval.ErrTokenUsed)
		require.Zero(t, evs[0].Seq)
		got, err := s.Get(ctx, b.ID)
		require.NoError(t, err)
		require.Equal(t, int64(1), got.Version)
		require.Empty(t, fullTrail(t, s))
		page, err := s.List(ctx, approval.RequestQuery{Approver: "bob"})
		require.NoError(t, err)
		require.Len(t, page.Requests, 1, "the refused vote must not reach the approver index")
	})
}

func TestUpdateRevivingLiveActionConflicts(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		s := open(t, newDSN(t))
		ctx := t.Context()
		old := newRequest()
		old.Status = approval.StatusDenied
		_, _, err := s.Create(ctx, old, nil)
		require.NoError(t, err)
		live := newRequest()
		live.ActionHash = old.ActionHash
		_, created, err := s.Create(ctx, live, nil)
		require.NoError(t, err)
		require.True(t, created)

		revived := old.Clone()
		revived.Status = approval.StatusPending
		revived.Version++
		err = s.Update(ctx, approval.Update{Request: revived})
		require.ErrorIs(t, err, approval.ErrConflict)
	})
}

func TestCancelledContext(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		s := open(t, newDSN(t))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		r := newRequest()
		_, _, err := s.Create(ctx, r, nil)
		require.ErrorIs(t, err, context.Canceled)
		err = s.Update(ctx, approval.Update{Request: vote(r, "bob", "t")})
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorIs(t, s.AppendAudit(ctx, []approval.AuditEvent{event("", approval.EventNotificationSent, "x")}), context.Canceled)
		_, err = s.Get(ctx, r.ID)
		require.ErrorIs(t, err, context.Canceled)
		_, err = s.List(ctx, approval.RequestQuery{})
		require.ErrorIs(t, err, context.Canceled)
		_, err = s.ListDue(ctx, approval.DueQuery{Now: now(), Limit: 0})
		require.ErrorIs(t, err, context.Canceled)
		_, err = s.ListAudit(ctx, approval.AuditQuery{})
		require.ErrorIs(t, err, context.Canceled)

		_, err = s.Get(t.Context(), r.ID)
		require.ErrorIs(t, err, approval.ErrNotFound, "a cancelled Create must write nothing")
	})
}

func TestNilRequest(t *testing.T) {
	t.Parallel()
	s := open(t, sqliteDSN(t))
	_, _, err := s.Create(t.Context(), nil, nil)
	require.Error(t, err)
	require.Error(t, s.Update(t.Context(), approval.Update{}))
}

func TestSQLiteBusy(t *testing.T) {
	t.Parallel()
	dsn := sqliteDSN(t)
	s := open(t, dsn, BusyTimeout(50*time.Millisecond))
	other := open(t, dsn)

	// Another process (here: another store's writer) holds the write lock.
	conn, err := other.w.Conn(t.Context())
	require.NoError(t, err)
	_, err = conn.ExecContext(t.Context(), "BEGIN IMMEDIATE")
	require.NoError(t, err)

	start := time.Now()
	_, _, err = s.Create(t.Context(), newRequest(), nil)
	require.ErrorIs(t, err, ErrBusy)
	require.ErrorContains(t, err, "sqlstore.BusyTimeout")
	require.GreaterOrEqual(t, time.Since(start), 40*time.Millisecond, "a busy write waits for the busy timeout")

	_, err = conn.ExecContext(t.Context(), "ROLLBACK")
	require.NoError(t, err)
	require.NoError(t, conn.Close())
	_, created, err := s.Create(t.Context(), newRequest(), nil)
	require.NoError(t, err)
	require.True(t, created)
}

func TestOpenDB(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		dsn := newDSN(t)
		dialect := DialectOf(dsn)
		if dialect == SQLite {
			dsn = SQLiteDSN(dsn)
		}
		db, err := sqlOpen(dialect, dsn)
		require.NoError(t, err)
		defer db.Close()
		s, err := OpenDB(t.Context(), db, dialect)
		require.NoError(t, err)
		require.Equal(t, dialect, s.Dialect())
		require.NoError(t, s.Migrate(t.Context()))
		require.NoError(t, s.Migrate(t.Context()), "Migrate is idempotent")
		r := newRequest()
		_, created, err := s.Create(t.Context(), r, []approval.AuditEvent{event(r.ID, approval.EventRequestCreated, "alice")})
		require.NoError(t, err)
		require.True(t, created)
		require.NoError(t, s.Close())
		require.NoError(t, db.PingContext(t.Context()), "Close must leave a caller's pool open")
	})
}

func TestOpenDBErrors(t *testing.T) {
	t.Parallel()
	_, err := OpenDB(t.Context(), nil, SQLite)
	require.ErrorContains(t, err, "nil *sql.DB")
	db, err := sqlOpen(SQLite, SQLiteDSN(sqliteDSN(t)))
	require.NoError(t, err)
	defer db.Close()
	_, err = OpenDB(t.Context(), db, "mysql")
	require.ErrorContains(t, err, `unknown dialect "mysql"`)
	_, err = OpenDB(t.Context(), db, Postgres)
	require.ErrorContains(t, err, "not pgx's")
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, err := Open(ctx, "")
	require.ErrorContains(t, err, "empty DSN")
	_, err = Open(ctx, sqliteDSN(t), Synchronous("OFF"))
	require.ErrorContains(t, err, "sqlstore.SyncFull")
	_, err = Open(ctx, sqliteDSN(t), BusyTimeout(-time.Second))
	require.ErrorContains(t, err, "negative")
	_, err = Open(ctx, sqliteDSN(t), MaxConns(-1))
	require.ErrorContains(t, err, "negative")
	_, err = Open(ctx, "/nonexistent-dir/sub/approval.db")
	require.ErrorContains(t, err, "does not exist (create it first)")
	_, err = Open(ctx, "postgres://nobody@127.0.0.1:1/nothing?connect_timeout=2")
	require.ErrorContains(t, err, "is the server running")
}

func TestOpenMemory(t *testing.T) {
	t.Parallel()
	s := open(t, ":memory:")
	r := newRequest()
	_, _, err := s.Create(t.Context(), r, []approval.AuditEvent{event(r.ID, approval.EventRequestCreated, "alice")})
	require.NoError(t, err)
	_, err = s.Get(t.Context(), r.ID)
	require.NoError(t, err)
	require.Len(t, fullTrail(t, s), 1)
}

func TestSynchronousFull(t *testing.T) {
	t.Parallel()
	s := open(t, sqliteDSN(t), Synchronous(SyncFull))
	var mode int
	require.NoError(t, s.w.QueryRowContext(t.Context(), "PRAGMA synchronous").Scan(&mode))
	require.Equal(t, 2, mode, "FULL")
	var journal string
	require.NoError(t, s.r.QueryRowContext(t.Context(), "PRAGMA journal_mode").Scan(&journal))
	require.Equal(t, "wal", journal)
	var fk int
	require.NoError(t, s.w.QueryRowContext(t.Context(), "PRAGMA foreign_keys").Scan(&fk))
	require.Equal(t, 1, fk)
}

func TestDialectOf(t *testing.T) {
	t.Parallel()
	for dsn, want := range map[string]Dialect{
		"approval.db":                                     SQLite,
		"/var/lib/app/approval.db":                        SQLite,
		"file:approval.db?cache=shared":                   SQLite,
		":memory:":                                        SQLite,
		"postgres://u:p@h:5432/db?sslmode=disable":        Postgres,
		"PostgreSQL://h/db":                               Postgres,
		"host=/var/run/postgresql dbname=approval":        Postgres,
		"dbname=approval":                                 Postgres,
		"  postgres:///approval?host=/var/run/postgresql": Postgres,
	} {
		require.Equal(t, want, DialectOf(dsn), dsn)
	}
}

func TestErrorsWrapOperation(t *testing.T) {
	t.Parallel()
	s := open(t, sqliteDSN(t))
	r := newRequest()
	r.Version = 2
	err := s.Update(t.Context(), approval.Update{Request: r})
	require.EqualError(t, err, "sqlstore: update "+r.ID+": not found")
	require.True(t, errors.Is(err, approval.ErrNotFound))
}

// TestSQLiteFailedRollbackDiscardsConnection ends a transaction behind the
// store's back, so its ROLLBACK fails: the connection must be discarded,
// not handed to the next write while in an unknown state.
func TestSQLiteFailedRollbackDiscardsConnection(t *testing.T) {
	t.Parallel()
	s := open(t, sqliteDSN(t))
	boom := errors.New("boom")
	err := s.sqliteTx(t.Context(), "BEGIN IMMEDIATE", false, func(q querier) error {
		if _, err := q.exec(t.Context(), "COMMIT"); err != nil {
			return err
		}
		_, err := q.exec(t.Context(), "BEGIN") // left open if the connection were kept
		require.NoError(t, err)
		_, err = q.exec(t.Context(), "ROLLBACK")
		require.NoError(t, err)
		return boom
	})
	require.ErrorIs(t, err, boom)
	require.Equal(t, 0, s.w.Stats().OpenConnections, "the connection whose ROLLBACK failed must be discarded")

	// A transaction left open by fn is rolled back, not leaked.
	err = s.sqliteTx(t.Context(), "BEGIN IMMEDIATE", false, func(q querier) error {
		_, err := q.exec(t.Context(), `INSERT INTO requests (id) VALUES ('req_x')`)
		require.Error(t, err, "the columns are NOT NULL")
		return err
	})
	require.Error(t, err)
	_, created, err := s.Create(t.Context(), newRequest(), []approval.AuditEvent{event("", approval.EventRequestCreated, "a")})
	require.NoError(t, err)
	require.True(t, created)
}

func TestCreateTerminalBypassesDedup(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		s := open(t, newDSN(t))
		ctx := t.Context()
		live := newRequest()
		_, _, err := s.Create(ctx, live, nil)
		require.NoError(t, err)

		denied := newRequest()
		denied.ActionHash = live.ActionHash
		denied.Status = approval.StatusDenied
		_, created, err := s.Create(ctx, denied, nil)
		require.NoError(t, err)
		require.True(t, created, "a terminal request is stored whatever is live")

		// A terminal request whose ID is taken is a conflict, even though
		// a live request holds its ActionHash.
		again := denied.Clone()
		again.ID = live.ID
		_, _, err = s.Create(ctx, again, nil)
		require.ErrorIs(t, err, approval.ErrConflict)
	})
}

func TestOpenFileURI(t *testing.T) {
	t.Parallel()
	path := sqliteDSN(t)
	s := open(t, "file:"+path+"?mode=rwc")
	_, created, err := s.Create(t.Context(), newRequest(), nil)
	require.NoError(t, err)
	require.True(t, created)
	var journal string
	require.NoError(t, s.w.QueryRowContext(t.Context(), "PRAGMA journal_mode").Scan(&journal))
	require.Equal(t, "wal", journal, "the store's settings apply to file: URIs too")
	require.FileExists(t, path)
}
