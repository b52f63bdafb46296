package sqlstore

import (
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// explain returns the plan db makes for query with args: SQLite's EXPLAIN
// QUERY PLAN details (https://sqlite.org/eqp.html), or PostgreSQL's
// EXPLAIN lines, one string each.
func explain(t *testing.T, d Dialect, db *sql.DB, query string, args ...any) []string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+query, args...)
	if d == Postgres {
		rows, err = db.QueryContext(t.Context(), "EXPLAIN "+query, args...)
	}
	require.NoError(t, err)
	defer rows.Close()
	cols, err := rows.Columns()
	require.NoError(t, err)
	var plan []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		require.NoError(t, rows.Scan(ptrs...))
		// SQLite's columns are id, parent, notused, detail; PostgreSQL's
		// one column is the line.
		switch v := vals[len(vals)-1].(type) {
		case string:
			plan = append(plan, v)
		case []byte:
			plan = append(plan, string(v))
		}
	}
	require.NoError(t, rows.Err())
	return plan
}

// TestListDuePlan: on a fresh database, never analyzed, with live and
// ended requests in it, ListDue's query finds the due requests through
// the requests_due index, bounded by now, so that an idle Tick costs a
// probe of that index however many requests the store holds. SQLite's
// planner, left to itself without statistics, filters requests_status and
// sorts every live request in a temporary B-tree (SEARCH requests USING
// INDEX requests_status, USE TEMP B-TREE FOR ORDER BY); the query names
// its index.
func TestListDuePlan(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		s := open(t, newDSN(t))
		for i := range 50 {
			r := newRequest()
			if i%2 == 0 {
				r.DueAt = r.CreatedAt.Add(time.Hour)
			}
			if i%5 == 0 {
				r.Status = approval.StatusDenied
			}
			_, _, err := s.Create(t.Context(), r, []approval.AuditEvent{event(r.ID, approval.EventRequestCreated, "alice")})
			require.NoError(t, err)
		}
		now := s.dialect.timeValue(time.Now())
		for _, after := range []bool{false, true} {
			args := []any{now, 100}
			if after {
				args = append(args, now, "req_0")
			}
			plan := strings.Join(explain(t, s.dialect, s.r, s.dialect.listDueQuery(after), args...), "\n")
			if s.dialect == SQLite {
				require.Regexp(t, `SEARCH requests USING INDEX requests_due \(.*due_at<\?\)`, plan, "after=%v", after)
				require.NotContains(t, plan, "TEMP B-TREE", "after=%v:\n%s", after, plan)
				continue
			}
			// PostgreSQL may sort what the index bound selects (the due
			// requests, none when the Tick is idle) when it expects few;
			// it never reads the table or another index to find them.
			require.Regexp(t, `Index (Only )?Scan( Backward)? using requests_due|Bitmap Index Scan on requests_due`, plan, "after=%v", after)
			require.Regexp(t, `Index Cond: \(+due_at <=`, plan, "after=%v", after)
			require.NotContains(t, plan, "Seq Scan", "after=%v:\n%s", after, plan)
		}
	})
}

// TestInboxPlan: on a fresh database, never analyzed, an inbox page reads
// a range of request_deciders' primary key for each person and the
// requests by theirs: no scan of requests, whatever they hold, and no sort
// of more than the people's pages.
func TestInboxPlan(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		s := open(t, newDSN(t))
		for i := range 50 {
			r := newRequest()
			if i%2 == 0 {
				r.Deciders = []string{"bob", "carol"}
			}
			_, _, err := s.Create(t.Context(), r, []approval.AuditEvent{event(r.ID, approval.EventRequestCreated, "alice")})
			require.NoError(t, err)
		}
		for _, people := range [][]any{{"bob"}, {"bob", "carol", "dave"}} {
			args := append([]any{"req_", 101}, people...)
			plan := strings.Join(explain(t, s.dialect, s.r, s.dialect.inboxQuery(len(people)), args...), "\n")
			if s.dialect == SQLite {
				require.Equal(t, len(people), strings.Count(plan, "SEARCH request_deciders USING PRIMARY KEY (person=? AND request_id>?)"), "%d people:\n%s", len(people), plan)
				require.Contains(t, plan, "SEARCH r USING INDEX sqlite_autoindex_requests_1 (id=?)", "%d people:\n%s", len(people), plan)
				continue
			}
			require.Equal(t, len(people), strings.Count(plan, "Index Only Scan using request_deciders_pkey on request_deciders"), "%d people:\n%s", len(people), plan)
			require.Contains(t, plan, "Index Scan using requests_pkey on requests", "%d people:\n%s", len(people), plan)
			require.NotContains(t, plan, "Seq Scan", "%d people:\n%s", len(people), plan)
		}
	})
}
