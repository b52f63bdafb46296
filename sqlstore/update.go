package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// storedRow is what Update reads of the stored request, under its lock:
// the version to compare and the indexed columns (to rewrite only those
// that change). The times are scanned as the driver returns them, to
// compare with the dialect's column values.
type storedRow struct {
	version                         int64
	status, actionHash, requestedBy string
	idempotencyKey                  sql.NullString
	createdAt, dueAt                any
}

// errVersionMoved is updateRequest's error when a write that compares the
// version itself (requestWrite.expect) found another version, or no row.
var errVersionMoved = errors.New("the stored version is not the one replaced")

// requestWrite is the change Update makes to a request row and its side
// tables.
type requestWrite struct {
	// set is the SET list of the UPDATE; args are its values, after the
	// request ID ($1).
	set  []string
	args []any
	// tokenID is recorded as used at usedAt, unless empty.
	tokenID string
	usedAt  any
	// policies, voters and deciders are the side-table rows to delete and
	// insert.
	policies, voters, deciders nameDiff
	// expect, if set, makes the UPDATE compare the stored version with
	// *expect itself, for a row that was not read and locked first.
	expect *int64
	// resolves is set when the write moves the request out of the open
	// states, which Update tells the waiters of (see notifyResolved).
	resolves bool
}

// nameDiff is the change of a side table's names for one request.
type nameDiff struct{ gone, added []string }

func diffNames(old, names []string) nameDiff {
	return nameDiff{gone: missing(old, names), added: missing(names, old)}
}

// missing returns the names of a that b lacks, looking them up in a set
// when b is long (the people of a large group's level).
func missing(a, b []string) []string {
	var out []string
	if len(b) <= 16 {
		for _, n := range a {
			if !slices.Contains(b, n) {
				out = append(out, n)
			}
		}
		return out
	}
	set := make(map[string]struct{}, len(b))
	for _, n := range b {
		set[n] = struct{}{}
	}
	for _, n := range a {
		if _, ok := set[n]; !ok {
			out = append(out, n)
		}
	}
	return out
}

// newRequestWrite compares the stored row with the new one, given the
// side-table names of the stored version. The SET list names only the
// indexed columns whose value changes: SQLite rewrites the entries of
// every index on a column an UPDATE assigns, changed or not, so a decision
// that leaves a request pending writes the table row alone. With old nil
// (the row was not read) it names every column, and the UPDATE compares
// the version itself.
func (s *Store) newRequestWrite(old *storedRow, row requestRow, tokenID string, usedAt time.Time, names requestNames) requestWrite {
	r := row.req
	w := requestWrite{args: []any{r.ID}, tokenID: tokenID, usedAt: s.dialect.timeValue(usedAt)}
	col := func(name string, v any) {
		w.args = append(w.args, v)
		w.set = append(w.set, name+" = $"+strconv.Itoa(len(w.args)))
	}
	if old == nil {
		prev := r.Version - 1
		w.expect = &prev
		old = &storedRow{}
	}
	all := w.expect != nil
	if all || string(r.Status) != old.status {
		col("status", string(r.Status))
		// A hold begins only as a request ends (approval.Request.HoldUntil).
		col("hold_until", s.dialect.timeArg(r.HoldUntil))
	}
	if all || r.ActionHash != old.actionHash {
		col("action_hash", r.ActionHash)
	}
	if k := r.Action.IdempotencyKey; all || k != old.idempotencyKey.String || (k != "") != old.idempotencyKey.Valid {
		// The gate never changes it; the column follows the body anyway.
		col("idempotency_key", keyArg(r))
	}
	if all || r.Action.RequestedBy != old.requestedBy {
		col("requested_by", r.Action.RequestedBy)
	}
	if v := s.dialect.timeValue(r.CreatedAt); all || !sameValue(old.createdAt, v) {
		col("created_at", v)
	}
	if v := s.dialect.timeArg(r.DueAt); all || !sameValue(old.dueAt, v) {
		col("due_at", v)
	}
	col("updated_at", s.dialect.timeValue(r.UpdatedAt))
	col("version", r.Version)
	col("body", string(row.body))
	w.policies = diffNames(names.policies, policyNames(r))
	w.voters = diffNames(names.voters, voterNames(r))
	w.deciders = diffNames(names.deciders, r.Deciders)
	return w
}

// sameValue reports whether a column value read back equals one about to
// be written.
func sameValue(stored, v any) bool {
	switch v := v.(type) {
	case nil:
		return stored == nil
	case time.Time:
		t, ok := stored.(time.Time)
		return ok && t.Equal(v)
	}
	return stored == v
}

// updateRequest writes w inside Update's transaction, after the version
// check. It reports fresh == false, having written nothing that will be
// kept, if w's token was used before.
func (s *Store) updateRequest(ctx context.Context, q querier, id string, w requestWrite) (fresh bool, err error) {
	update := "UPDATE requests SET " + strings.Join(w.set, ", ") + " WHERE id = $1"
	if w.expect != nil {
		w.args = append(w.args, *w.expect)
		update += " AND version = $" + strconv.Itoa(len(w.args))
	}
	if s.dialect == Postgres {
		return s.pgUpdateRequest(ctx, q, update, w)
	}
	if w.tokenID != "" {
		n, err := q.exec(ctx, `INSERT INTO used_tokens (token_id, request_id, used_at) VALUES ($1, $2, $3)
ON CONFLICT DO NOTHING`, w.tokenID, id, w.usedAt)
		if err != nil || n == 0 {
			return false, err
		}
	}
	if n, err := q.exec(ctx, update, w.args...); err != nil || n == 0 && w.expect != nil {
		if err == nil {
			err = errVersionMoved
		}
		return false, err
	}
	if err := s.syncNames(ctx, q, policiesTable, id, w.policies.gone, w.policies.added); err != nil {
		return false, err
	}
	if err := s.syncNames(ctx, q, decidersTable, id, w.deciders.gone, w.deciders.added); err != nil {
		return false, err
	}
	return true, s.syncNames(ctx, q, approversTable, id, w.voters.gone, w.voters.added)
}

// pgUpdateRequest makes the whole change in one statement (one round
// trip): the UPDATE, the token and the side tables.
func (s *Store) pgUpdateRequest(ctx context.Context, q querier, update string, w requestWrite) (bool, error) {
	var b strings.Builder
	args := w.args
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	b.WriteString("WITH upd AS (" + update + " RETURNING 1)")
	tokens := "SELECT 1 AS n"
	if w.tokenID != "" {
		b.WriteString(", tok AS (INSERT INTO used_tokens (token_id, request_id, used_at) VALUES (" +
			arg(w.tokenID) + ", $1, " + arg(w.usedAt) + ") ON CONFLICT DO NOTHING RETURNING 1)")
		tokens = "SELECT count(*) AS n FROM tok"
	}
	for _, t := range []struct {
		table sideTable
		diff  nameDiff
	}{{policiesTable, w.policies}, {approversTable, w.voters}, {decidersTable, w.deciders}} {
		if len(t.diff.gone) > 0 {
			fmt.Fprintf(&b, ", %s_gone AS (DELETE FROM %s WHERE request_id = $1 AND %s = ANY(%s::text[]))",
				t.table.name, t.table.name, t.table.column, arg(t.diff.gone))
		}
		if len(t.diff.added) > 0 {
			fmt.Fprintf(&b, ", %s_added AS (INSERT INTO %s (request_id, %s) SELECT $1, unnest(%s::text[]) ON CONFLICT DO NOTHING)",
				t.table.name, t.table.name, t.table.column, arg(t.diff.added))
		}
	}
	b.WriteString("\nSELECT u.n, k.n FROM (SELECT count(*) AS n FROM upd) u CROSS JOIN (" + tokens + ") k")
	var updated, fresh int64
	if err := q.queryRow(ctx, b.String(), args...).Scan(&updated, &fresh); err != nil {
		return false, err
	}
	switch {
	case updated == 0 && w.expect != nil:
		return false, errVersionMoved
	case updated == 0:
		return false, errors.New("the locked request row was not updated")
	case fresh == 0:
		return false, nil
	}
	return true, nil
}

// sideTable is one of the tables that index requests by a name: the
// policies a request matched (List's Policy filter), the people who voted
// on it (List's Approver filter) and those who may decide it (the inbox,
// ListInbox).
type sideTable struct{ name, column string }

var (
	policiesTable  = sideTable{"request_policies", "policy"}
	approversTable = sideTable{"request_approvers", "approver"}
	decidersTable  = sideTable{"request_deciders", "person"}
)

// syncNames deletes the gone and inserts the added names of request id in
// a side table, one row per statement, so that each statement text is
// prepared once (SQLite runs them in process; PostgreSQL writes its side
// tables in the statement of the request instead).
func (s *Store) syncNames(ctx context.Context, q querier, t sideTable, id string, gone, added []string) error {
	for _, n := range gone {
		if _, err := q.exec(ctx, "DELETE FROM "+t.name+" WHERE request_id = $1 AND "+t.column+" = $2", id, n); err != nil {
			return err
		}
	}
	for _, n := range added {
		if _, err := q.exec(ctx, "INSERT INTO "+t.name+" (request_id, "+t.column+") VALUES ($1, $2) ON CONFLICT DO NOTHING", id, n); err != nil {
			return err
		}
	}
	return nil
}
