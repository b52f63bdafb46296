package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/signoff/approval"
)

var _ approval.Outbox = (*Store)(nil)

// The outbox table (migration 0003). Claims are one statement each, an
// UPDATE of the due rows RETURNING them: on PostgreSQL the rows are
// chosen FOR UPDATE SKIP LOCKED, so concurrent claims, from any number of
// processes, take disjoint rows without waiting on each other; SQLite has
// one writer at a time. Claims lock no audit chain, and take no row
// another transaction holds, so they cannot deadlock with the writes that
// lock the chain first.

const outboxColumns = 14

const outboxInsert = `INSERT INTO outbox (id, request_id, type, level, channel, recipient, body, state, attempts,
    next_at, lease_owner, lease_until, last_error, created_at) VALUES `

// noticeInsert is outboxInsert for a bare notice (isBareNotice).
const noticeInsert = outboxInsert + "($1, $2, $3, $4, '', '', NULL, 'pending', 0, $5, NULL, NULL, NULL, $5)"

// isBareNotice reports whether m is a new notice as the gate stores it
// with a change: no channel, recipient or body, pending, unclaimed,
// untried, due when created.
func isBareNotice(m *approval.OutboxMessage) bool {
	return m.ID != "" && m.Channel == "" && m.Recipient == "" && m.Body == nil &&
		(m.State == "" || m.State == approval.OutboxPending) && m.Attempts == 0 &&
		m.LeaseOwner == "" && m.LeaseUntil.IsZero() && m.LastError == "" && m.NextAttempt.Equal(m.CreatedAt)
}

// insertOutbox inserts msgs inside the caller's write transaction: on
// PostgreSQL as one statement sent with the commit, on SQLite one
// prepared row at a time.
func (s *Store) insertOutbox(ctx context.Context, q querier, msgs []approval.OutboxMessage) error {
	if len(msgs) == 0 {
		return nil
	}
	if s.dialect == SQLite && len(msgs) == 1 && isBareNotice(&msgs[0]) {
		// Guard's notice: five arguments rather than fourteen, the
		// others being the constants of a new notice.
		m := &msgs[0]
		if _, err := q.exec(ctx, noticeInsert, m.ID, m.RequestID, string(m.Type), m.Level, s.dialect.timeValue(m.CreatedAt)); err != nil {
			return fmt.Errorf("store outbox messages: %w", err)
		}
		return nil
	}
	args := make([]any, 0, outboxColumns*len(msgs))
	for i := range msgs {
		m := &msgs[i]
		if m.ID == "" {
			return fmt.Errorf("outbox message without an ID: %w", approval.ErrConflict)
		}
		state := m.State
		if state == "" {
			state = approval.OutboxPending
		}
		var body any
		if m.Body != nil {
			body = string(m.Body)
		}
		args = append(args, m.ID, m.RequestID, string(m.Type), m.Level, m.Channel, m.Recipient, body, string(state),
			m.Attempts, s.dialect.timeValue(m.NextAttempt), nullString(m.LeaseOwner), s.dialect.timeArg(m.LeaseUntil),
			nullString(m.LastError), s.dialect.timeValue(m.CreatedAt))
	}
	if s.dialect == Postgres {
		var b strings.Builder
		b.WriteString(outboxInsert)
		for i := range msgs {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteByte('(')
			placeholders(&b, i*outboxColumns+1, outboxColumns)
			b.WriteByte(')')
		}
		return q.execLast(ctx, "store outbox messages", b.String(), args...)
	}
	one := outboxInsert + "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
	for i := range msgs {
		if _, err := q.exec(ctx, one, args[i*outboxColumns:(i+1)*outboxColumns]...); err != nil {
			return fmt.Errorf("store outbox messages: %w", err)
		}
	}
	return nil
}

// outboxSelect is the column list of a message as scanOutbox reads it,
// times as Unix microseconds in both dialects.
func (s *Store) outboxSelect() string {
	t := func(c string) string {
		if s.dialect == Postgres {
			return "(EXTRACT(EPOCH FROM " + c + ") * 1000000)::bigint"
		}
		return c
	}
	return "id, request_id, type, level, channel, recipient, body, state, attempts, " + t("next_at") +
		", lease_owner, " + t("lease_until") + ", last_error, " + t("created_at")
}

func scanOutbox(rows *sql.Rows) (approval.OutboxMessage, error) {
	var (
		m                    approval.OutboxMessage
		typ, state           string
		body, owner, lastErr sql.NullString
		nextAt, createdAt    int64
		leaseUntil           sql.NullInt64
	)
	if err := rows.Scan(&m.ID, &m.RequestID, &typ, &m.Level, &m.Channel, &m.Recipient, &body, &state, &m.Attempts,
		&nextAt, &owner, &leaseUntil, &lastErr, &createdAt); err != nil {
		return m, err
	}
	m.Type, m.State = approval.NotificationType(typ), approval.OutboxState(state)
	if body.Valid {
		m.Body = []byte(body.String)
	}
	m.LeaseOwner, m.LastError = owner.String, lastErr.String
	m.NextAttempt, m.CreatedAt = time.UnixMicro(nextAt).UTC(), time.UnixMicro(createdAt).UTC()
	if leaseUntil.Valid {
		m.LeaseUntil = time.UnixMicro(leaseUntil.Int64).UTC()
	}
	return m, nil
}

func collectOutbox(rows *sql.Rows, limit int) ([]approval.OutboxMessage, error) {
	defer rows.Close()
	var out []approval.OutboxMessage
	for rows.Next() {
		if len(out) == limit {
			break
		}
		m, err := scanOutbox(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// CreateWithOutbox implements approval.Outbox: Create, with msgs stored in
// its transaction if it creates req.
func (s *Store) CreateWithOutbox(ctx context.Context, req *approval.Request, events []approval.AuditEvent, msgs []approval.OutboxMessage) (*approval.Request, bool, error) {
	return s.create(ctx, req, events, msgs, nil)
}

// ClaimOutbox implements approval.Outbox.
func (s *Store) ClaimOutbox(ctx context.Context, c approval.OutboxClaim) ([]approval.OutboxMessage, error) {
	const op = "claim outbox"
	limit := approval.PageSize(c.Limit)
	if !s.canMatch(c.Owner, c.Channel) {
		return nil, nil
	}
	now, until := s.dialect.timeValue(c.Now), s.dialect.timeValue(c.Now.Add(c.Lease))
	lock := ""
	if s.dialect == Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	args := []any{c.Owner, until, c.Channel, now, limit}
	recipient := ""
	if c.Recipient != "" {
		if !s.dialect.canHold(c.Recipient) {
			return nil, nil
		}
		recipient, args = " AND recipient = $6", append(args, c.Recipient)
	}
	query := `UPDATE outbox SET lease_owner = $1, lease_until = $2
WHERE id IN (SELECT id FROM outbox
    WHERE state = 'pending' AND channel = $3 AND next_at <= $4 AND (lease_until IS NULL OR lease_until <= $4)` + recipient + `
    ORDER BY next_at, id LIMIT $5` + lock + `)
RETURNING ` + s.outboxSelect()
	rows, err := s.w.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fail(ctx, op, s.wrapBusy(err))
	}
	msgs, err := collectOutbox(rows, limit)
	if err != nil {
		return nil, fail(ctx, op, s.wrapBusy(err))
	}
	// RETURNING does not follow the subquery's order.
	sortOutbox(msgs)
	return msgs, nil
}

func sortOutbox(msgs []approval.OutboxMessage) {
	slices.SortFunc(msgs, func(a, b approval.OutboxMessage) int {
		if c := a.NextAttempt.Compare(b.NextAttempt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// SettleOutbox implements approval.Outbox.
func (s *Store) SettleOutbox(ctx context.Context, st approval.OutboxSettle) error {
	op := "settle outbox " + st.ID
	if err := ctx.Err(); err != nil {
		return fail(ctx, op, err)
	}
	if !s.canMatch(st.ID, st.Owner) {
		return fmt.Errorf("sqlstore: %s: %w", op, approval.ErrNotFound)
	}
	var sealed []approval.AuditEvent
	err := s.write(ctx, func(ctx context.Context, q querier) error {
		sealed = nil
		var (
			n   int64
			err error
		)
		const owned = " WHERE id = $1 AND state = 'pending' AND lease_owner = $2"
		switch st.Outcome {
		case approval.OutboxDone:
			n, err = q.exec(ctx, "DELETE FROM outbox"+owned, st.ID, st.Owner)
		case approval.OutboxRetry:
			n, err = q.exec(ctx, `UPDATE outbox SET attempts = $3, next_at = $4, last_error = $5, lease_owner = NULL, lease_until = NULL`+owned,
				st.ID, st.Owner, st.Attempts, s.dialect.timeValue(st.NextAttempt), nullString(st.LastError))
		case approval.OutboxDeadLetter:
			n, err = q.exec(ctx, `UPDATE outbox SET state = 'dead', attempts = $3, last_error = $4, lease_owner = NULL, lease_until = NULL`+owned,
				st.ID, st.Owner, st.Attempts, nullString(st.LastError))
		default:
			return fmt.Errorf("unknown outcome %d", st.Outcome)
		}
		if err != nil {
			return err
		}
		if n == 0 {
			var one int
			err := q.queryRow(ctx, "SELECT 1 FROM outbox WHERE id = $1", st.ID).Scan(&one)
			switch {
			case errNoRows(err):
				return approval.ErrNotFound
			case err != nil:
				return err
			}
			return fmt.Errorf("not leased by %s: %w", st.Owner, approval.ErrConflict)
		}
		if err := s.insertOutbox(ctx, q, st.Add); err != nil {
			return err
		}
		sealed, err = s.appendEvents(ctx, q, st.Events)
		return err
	})
	if err != nil {
		if isUniqueViolation(err) {
			err = fmt.Errorf("%w: %w", approval.ErrConflict, err)
		}
		return fail(ctx, op, err)
	}
	writeBack(st.Events, sealed)
	return nil
}

// ListOutbox implements approval.Outbox. The cursor is the ID of the last
// message of the previous page.
func (s *Store) ListOutbox(ctx context.Context, q approval.OutboxQuery) (approval.OutboxPage, error) {
	const op = "list outbox"
	limit := approval.PageSize(q.Limit)
	if q.Cursor != "" && !isOutboxID(q.Cursor) {
		return approval.OutboxPage{}, fmt.Errorf("sqlstore: list outbox: %w %.64q (pass OutboxPage.Next)", approval.ErrInvalidCursor, q.Cursor)
	}
	if !s.canMatch(string(q.State), q.Channel, q.RequestID) {
		return approval.OutboxPage{}, nil
	}
	var b strings.Builder
	args := []any{q.Cursor}
	b.WriteString("SELECT " + s.outboxSelect() + " FROM outbox WHERE id > $1")
	where := func(cond string, arg any) {
		args = append(args, arg)
		fmt.Fprintf(&b, " AND %s $%d", cond, len(args))
	}
	if q.State != "" {
		where("state =", string(q.State))
	}
	if q.Channel != "" {
		where("channel =", q.Channel)
	}
	if q.RequestID != "" {
		where("request_id =", q.RequestID)
	}
	args = append(args, limit+1)
	fmt.Fprintf(&b, " ORDER BY id LIMIT $%d", len(args))
	rows, err := s.r.QueryContext(ctx, b.String(), args...)
	if err != nil {
		return approval.OutboxPage{}, fail(ctx, op, err)
	}
	msgs, err := collectOutbox(rows, limit+1)
	if err != nil {
		return approval.OutboxPage{}, fail(ctx, op, err)
	}
	var page approval.OutboxPage
	if len(msgs) > limit {
		msgs = msgs[:limit]
		page.Next = msgs[limit-1].ID
	}
	page.Messages = msgs
	return page, nil
}

// isOutboxID reports whether c has the shape of the IDs the gate gives
// outbox messages (UUIDs), so that a cursor can be one.
func isOutboxID(c string) bool {
	if len(c) != 36 {
		return false
	}
	for i := 0; i < len(c); i++ {
		switch ch := c[i]; {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if ch != '-' {
				return false
			}
		case '0' <= ch && ch <= '9', 'a' <= ch && ch <= 'f':
		default:
			return false
		}
	}
	return true
}

// RedriveOutbox implements approval.Outbox.
func (s *Store) RedriveOutbox(ctx context.Context, id string, now time.Time, ev *approval.AuditEvent) error {
	op := fmt.Sprintf("redrive %.64q", id)
	if err := ctx.Err(); err != nil {
		return fail(ctx, op, err)
	}
	if !s.canMatch(id) {
		return fmt.Errorf("sqlstore: %s: no such dead letter: %w", op, approval.ErrNotFound)
	}
	var (
		events []approval.AuditEvent
		sealed []approval.AuditEvent
	)
	err := s.write(ctx, func(ctx context.Context, q querier) error {
		sealed, events = nil, nil
		var requestID string
		err := q.queryRow(ctx, `UPDATE outbox SET state = 'pending', attempts = 0, next_at = $2, lease_owner = NULL, lease_until = NULL
WHERE id = $1 AND state = 'dead' RETURNING request_id`, id, s.dialect.timeValue(now)).Scan(&requestID)
		if errNoRows(err) {
			return fmt.Errorf("no such dead letter: %w", approval.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if ev != nil {
			e := *ev
			e.RequestID = requestID
			events = []approval.AuditEvent{e}
			sealed, err = s.appendEvents(ctx, q, events)
		}
		return err
	})
	if err != nil {
		return fail(ctx, op, err)
	}
	if ev != nil {
		writeBack(events, sealed)
		*ev = events[0]
	}
	return nil
}
