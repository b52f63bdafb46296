package sqlstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/signoff/approval"
)

var _ approval.Inbox = (*Store)(nil)

// ListInbox implements approval.Inbox. Each person's part is a range of
// request_deciders' primary key, (person, request_id) after the cursor, cut
// at the page size; several people's parts are united, and the requests
// read by their primary key in ID order. A page costs one query, whatever
// the number of requests stored, open or decided by others.
func (s *Store) ListInbox(ctx context.Context, q approval.InboxQuery) (approval.RequestPage, error) {
	const op = "list inbox"
	limit := approval.PageSize(q.Limit)
	if !s.dialect.canHold(q.Cursor) {
		return approval.RequestPage{}, fmt.Errorf("sqlstore: list inbox: %w %.64q (pass RequestPage.Next)", approval.ErrInvalidCursor, q.Cursor)
	}
	if len(q.People) > approval.MaxInboxPeople {
		return approval.RequestPage{}, fmt.Errorf("sqlstore: list inbox: %d people, at most %d", len(q.People), approval.MaxInboxPeople)
	}
	var people []string
	for _, p := range q.People {
		if s.dialect.canHold(p) {
			people = append(people, p)
		}
	}
	if len(people) == 0 {
		return approval.RequestPage{}, nil
	}
	args := []any{q.Cursor, limit + 1}
	for _, p := range people {
		args = append(args, p)
	}
	rows, err := s.r.QueryContext(ctx, s.dialect.inboxQuery(len(people)), args...)
	if err != nil {
		return approval.RequestPage{}, fail(ctx, op, err)
	}
	return scanPage(ctx, op, rows, limit)
}

// inboxQuery is ListInbox's query for n people: $1 is the cursor, $2 the
// page size plus one, $3... the people. Each person's range of the primary
// key is cut at the page size and the ranges are united: the sort is of at
// most n pages of IDs. The requests are then read by their primary key,
// which PostgreSQL is held to (a LATERAL read it cannot flatten) so that
// the plan does not hang on statistics: on a small or never-analyzed
// table it would rather scan the requests and hash them.
func (d Dialect) inboxQuery(n int) string {
	var ids strings.Builder
	for i := range n {
		if i > 0 {
			ids.WriteString("\n    UNION ")
		}
		fmt.Fprintf(&ids, `SELECT request_id FROM (SELECT request_id FROM request_deciders
        WHERE person = $%d AND request_id > $1 ORDER BY request_id LIMIT $2) p%d`, i+3, i)
	}
	if d == Postgres {
		return "SELECT ids.request_id, r.body FROM (" + ids.String() + `) ids
CROSS JOIN LATERAL (SELECT body FROM requests WHERE id = ids.request_id OFFSET 0) r
ORDER BY ids.request_id LIMIT $2`
	}
	return "SELECT r.id, r.body FROM requests r WHERE r.id IN (" + ids.String() + ")\nORDER BY r.id LIMIT $2"
}
