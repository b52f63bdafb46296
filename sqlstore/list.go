package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/signoff/approval"
)

// List implements approval.Store. It pages by key: the cursor is the ID of
// the last request of the previous page, and each page is the next IDs
// after it that match q, so no request is listed twice or skipped among
// those committed before the listing began. A request committed meanwhile
// appears only if its ID sorts after the cursor: IDs are made before their
// requests commit, so Next is not a high-water mark for new requests.
// Each filter is served by an index: status and requester by composite
// indexes in ID order, policy and approver by the side tables.
func (s *Store) List(ctx context.Context, q approval.RequestQuery) (approval.RequestPage, error) {
	const op = "list"
	limit := approval.PageSize(q.Limit)
	if !s.canMatch(q.RequestedBy, q.Policy, q.Approver) {
		return approval.RequestPage{}, nil
	}
	if !s.dialect.canHold(q.Cursor) {
		return approval.RequestPage{}, fmt.Errorf("sqlstore: list: %w %.64q (pass RequestPage.Next)", approval.ErrInvalidCursor, q.Cursor)
	}
	var b strings.Builder
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	b.WriteString("SELECT r.id, r.body FROM requests r WHERE 1 = 1")
	if q.Cursor != "" {
		b.WriteString(" AND r.id > " + arg(q.Cursor))
	}
	if len(q.Status) > 0 {
		statuses := q.Status[:0:0]
		for _, st := range q.Status {
			if s.dialect.canHold(string(st)) {
				statuses = append(statuses, st)
			}
		}
		if len(statuses) == 0 {
			return approval.RequestPage{}, nil
		}
		b.WriteString(" AND r.status IN (")
		for i, st := range statuses {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(arg(string(st)))
		}
		b.WriteByte(')')
	}
	if q.RequestedBy != "" {
		b.WriteString(" AND r.requested_by = " + arg(q.RequestedBy))
	}
	if q.Policy != "" {
		b.WriteString(" AND EXISTS (SELECT 1 FROM request_policies p WHERE p.request_id = r.id AND p.policy = " + arg(q.Policy) + ")")
	}
	if q.Approver != "" {
		b.WriteString(" AND EXISTS (SELECT 1 FROM request_approvers a WHERE a.request_id = r.id AND a.approver = " + arg(q.Approver) + ")")
	}
	if !q.CreatedFrom.IsZero() {
		b.WriteString(" AND r.created_at >= " + arg(s.dialect.boundArg(q.CreatedFrom)))
	}
	if !q.CreatedTo.IsZero() {
		b.WriteString(" AND r.created_at < " + arg(s.dialect.boundArg(q.CreatedTo)))
	}
	b.WriteString(" ORDER BY r.id LIMIT " + arg(limit+1))

	rows, err := s.r.QueryContext(ctx, b.String(), args...)
	if err != nil {
		return approval.RequestPage{}, fail(ctx, op, err)
	}
	return scanPage(ctx, op, rows, limit)
}

// scanPage decodes a page of (id, body) rows, queried with a limit one
// more than the page's: a further row means the page has a Next.
func scanPage(ctx context.Context, op string, rows *sql.Rows, limit int) (approval.RequestPage, error) {
	defer rows.Close()
	var page approval.RequestPage
	for rows.Next() {
		var (
			id   string
			body []byte
		)
		if err := rows.Scan(&id, &body); err != nil {
			return approval.RequestPage{}, fail(ctx, op, err)
		}
		if len(page.Requests) == limit {
			// A further match exists, so this is not the last page.
			page.Next = page.Requests[limit-1].ID
			break
		}
		r, err := decodeRequest(body)
		if err != nil {
			return approval.RequestPage{}, fail(ctx, op, err)
		}
		page.Requests = append(page.Requests, r)
	}
	if err := rows.Err(); err != nil {
		return approval.RequestPage{}, fail(ctx, op, err)
	}
	return page, nil
}

// canMatch reports whether stored text can equal every filter value in
// vals ("" is no filter): a filter no stored value can equal matches
// nothing, and PostgreSQL would refuse it as a parameter.
func (s *Store) canMatch(vals ...string) bool {
	for _, v := range vals {
		if v != "" && !s.dialect.canHold(v) {
			return false
		}
	}
	return true
}

// ListDue implements approval.Store. A limit of 0 or less means
// approval.DefaultPageSize, and it is capped at approval.MaxPageSize;
// requests due at the same time come in ID order. It walks the partial
// index of live requests by due time.
func (s *Store) ListDue(ctx context.Context, q approval.DueQuery) ([]*approval.Request, error) {
	const op = "list due"
	// Truncating now to microseconds floors the bound, so due_at <= it keeps
	// exactly the stored times not after now.
	args := []any{s.dialect.timeValue(s.dialect.clamp(utcMicro(q.Now))), approval.PageSize(q.Limit)}
	after := false
	if !q.After.IsZero() {
		// Stored times are whole microseconds: flooring the position's
		// time keeps the order exact for positions read from the store.
		after = true
		args = append(args, s.dialect.timeValue(s.dialect.clamp(utcMicro(q.After.DueAt))), q.After.ID)
	}
	rows, err := s.readRows(ctx, s.dialect.listDueQuery(after), args...)
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	return scanRequests(ctx, op, rows)
}

// listDueQuery is ListDue's query, with the position to start after
// ($3, $4) or without. It walks the requests_due index, whose partial
// condition it repeats: on SQLite by name (INDEXED BY), so that the plan
// does not hang on statistics a fresh or never-analyzed file lacks, where
// the planner would rather filter requests_status and sort the live
// requests in a temporary B-tree, at a cost that grows with them.
func (d Dialect) listDueQuery(after bool) string {
	q := `SELECT body FROM requests`
	if d == SQLite {
		q += ` INDEXED BY requests_due`
	}
	q += `
WHERE due_at IS NOT NULL AND status IN ` + liveStatuses + ` AND due_at <= $1`
	if after {
		q += ` AND (due_at, id) > ($3, $4)`
	}
	return q + `
ORDER BY due_at, id LIMIT $2`
}

// scanRequests decodes every row of a single-column body query.
func scanRequests(ctx context.Context, op string, rows *sql.Rows) ([]*approval.Request, error) {
	defer rows.Close()
	var out []*approval.Request
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			return nil, fail(ctx, op, err)
		}
		r, err := decodeRequest(body)
		if err != nil {
			return nil, fail(ctx, op, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fail(ctx, op, err)
	}
	return out, nil
}
