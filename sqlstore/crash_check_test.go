package sqlstore_test

import (
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite" // the "sqlite" driver, for the raw integrity check

	"github.com/signoff/approval"
	"github.com/signoff/approval/sqlstore"
)

// What TestCrashSafetySQLite checks after each kill: the children's
// reports, and the file against them and against itself.

// crashLedger is what the children reported, across rounds.
type crashLedger struct {
	reqs  map[string]*reportedRequest
	order []string // request IDs in the order reported
}

type reportedRequest struct {
	approvers []string
	consumed  bool
}

// commits counts the reported writes.
func (l *crashLedger) commits() int {
	n := 0
	for _, r := range l.reqs {
		n += 1 + len(r.approvers) + b2i(r.consumed)
	}
	return n
}

// apply records one line of a child's stdout, or returns an error if the
// line is not a report or does not follow the ones before it.
func (l *crashLedger) apply(line string) error {
	f := strings.Fields(line)
	switch {
	case len(f) == 2 && f[0] == "created":
		if l.reqs[f[1]] != nil {
			return fmt.Errorf("%s created twice", f[1])
		}
		l.reqs[f[1]] = &reportedRequest{}
		l.order = append(l.order, f[1])
	case len(f) == 3 && f[0] == "decided" && l.reqs[f[1]] != nil:
		l.reqs[f[1]].approvers = append(l.reqs[f[1]].approvers, f[2])
	case len(f) == 2 && f[0] == "consumed" && l.reqs[f[1]] != nil:
		l.reqs[f[1]].consumed = true
	default:
		return fmt.Errorf("unexpected line %q", line)
	}
	return nil
}

// crashState summarises the store after a crash.
type crashState struct {
	requests int
	events   int64
	commits  int // writes the requests show: created, each vote, consumed
}

// checkAfterCrash reopens the database a child was killed on and checks it,
// against led and against itself.
func checkAfterCrash(t *testing.T, path string, mode sqlstore.SyncMode, led *crashLedger) crashState {
	t.Helper()
	ctx := t.Context()

	// First a plain connection, which recovers the WAL the child left.
	raw, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	defer func() { require.NoError(t, raw.Close()) }()
	require.Equal(t, []string{"ok"}, queryStrings(t, raw, "PRAGMA integrity_check"))
	require.Empty(t, queryStrings(t, raw, "PRAGMA foreign_key_check"))

	// Then the store, which runs its migrations on the crashed file.
	s, err := sqlstore.Open(ctx, path, sqlstore.Synchronous(mode))
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	// The gate only reads; it needs a key all the same.
	_, key, err := approval.GenerateKeys()
	require.NoError(t, err)
	g, err := approval.New(approval.Config{Store: s, SigningKey: key})
	require.NoError(t, err)
	defer func() { require.NoError(t, g.Close(ctx)) }()

	rep, err := g.VerifyAuditTrail(ctx, approval.VerifyAuditOptions{})
	n := rep.Events
	require.NoError(t, err, "the audit chain does not verify")
	require.Positive(t, n)

	// Every event belongs to a request: the child's writes are never
	// refused, deduplicated or notified.
	events := make(map[string]map[approval.EventType]int)
	var total int64
	for q := (approval.AuditQuery{Limit: approval.MaxPageSize}); ; {
		page, err := g.ListAudit(ctx, q)
		require.NoError(t, err)
		for _, e := range page.Events {
			if events[e.RequestID] == nil {
				events[e.RequestID] = make(map[approval.EventType]int)
			}
			events[e.RequestID][e.Type]++
		}
		total += int64(len(page.Events))
		if page.Next == "" {
			break
		}
		q.Cursor = page.Next
	}
	require.Equal(t, n, total, "VerifyAudit and Audit disagree on the trail's length")

	stored := make(map[string]*approval.Request)
	for q := (approval.RequestQuery{Limit: approval.MaxPageSize}); ; {
		page, err := g.List(ctx, q)
		require.NoError(t, err)
		for _, r := range page.Requests {
			stored[r.ID] = r
		}
		if page.Next == "" {
			break
		}
		q.Cursor = page.Next
	}

	st := crashState{requests: len(stored), events: n}
	for id, r := range stored {
		st.commits += checkCrashedRequest(t, r, events[id])
		delete(events, id)
		if rep := led.reqs[id]; rep == nil {
			require.Empty(t, r.Votes, "%s: votes on a request no child reported creating", id)
		} else {
			require.LessOrEqual(t, len(r.Votes), len(rep.approvers)+1, "%s: votes nobody cast", id)
		}
	}
	require.Empty(t, events, "audit events of requests that do not exist")

	for _, id := range led.order {
		rep := led.reqs[id]
		r := stored[id]
		require.NotNil(t, r, "%s: reported created, not in the store", id)
		got, err := g.Get(ctx, id)
		require.NoError(t, err, "%s: reported created", id)
		require.Equal(t, r, got, "%s: Get and List disagree", id)
		for _, who := range rep.approvers {
			require.True(t, slices.ContainsFunc(r.Votes, func(v approval.Vote) bool { return v.Approver == who }),
				"%s: %s's vote was reported committed but is missing (votes %v)", id, who, r.Votes)
		}
		if rep.consumed {
			require.Equal(t, approval.StatusConsumed, r.Status, "%s: reported consumed", id)
		}
	}
	return st
}

// checkCrashedRequest checks that a request's version, votes, status and
// audit events agree with each other, and returns the number of writes it
// took (create, votes, consume).
func checkCrashedRequest(t *testing.T, r *approval.Request, events map[approval.EventType]int) int {
	t.Helper()
	require.Equal(t, crashRequester, r.Action.RequestedBy, r.ID)
	require.LessOrEqual(t, len(r.Votes), 2, "%s: more votes than the child casts", r.ID)
	for i, v := range r.Votes {
		require.Equal(t, approval.VerdictApprove, v.Verdict, r.ID)
		require.Contains(t, crashApprovers, v.Approver, r.ID)
		require.False(t, slices.ContainsFunc(r.Votes[:i], func(w approval.Vote) bool { return w.Approver == v.Approver }),
			"%s: %s voted twice", r.ID, v.Approver)
	}
	consumed := r.Status == approval.StatusConsumed
	switch len(r.Votes) {
	case 0, 1:
		require.Equal(t, approval.StatusPending, r.Status, r.ID)
	case 2:
		require.Contains(t, []approval.Status{approval.StatusApproved, approval.StatusConsumed}, r.Status, r.ID)
	}
	writes := 1 + len(r.Votes) + b2i(consumed)
	require.Equal(t, int64(writes), r.Version, "%s: version does not count its writes", r.ID)

	want := map[approval.EventType]int{approval.EventRequestCreated: 1}
	if len(r.Votes) > 0 {
		want[approval.EventDecisionApprove] = len(r.Votes)
	}
	if len(r.Votes) == 2 {
		want[approval.EventRequestApproved] = 1
	}
	if consumed {
		want[approval.EventApprovalConsumed] = 1
	}
	require.Equal(t, want, events, "%s (%s, %d votes): audit events do not match the request", r.ID, r.Status, len(r.Votes))
	return writes
}

// queryStrings returns the first column of every row of query.
func queryStrings(t *testing.T, db *sql.DB, query string) []string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), query)
	require.NoError(t, err, query)
	defer rows.Close()
	cols, err := rows.Columns()
	require.NoError(t, err, query)
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		require.NoError(t, rows.Scan(ptrs...), query)
		out = append(out, fmt.Sprint(vals[0]))
	}
	require.NoError(t, rows.Err(), query)
	return out
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
