package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/signoff/approval"
)

// auditColumns is the number of columns appendEvents writes per event.
const auditColumns = 8

// chainTail is the end of the audit chain: the sequence number and hash of
// its last event (0 and "" while it is empty).
type chainTail struct {
	seq  int64
	hash string
}

// chainEnd returns the end of the chain inside a write transaction, which
// holds the chain's lock until it ends, so that appends from any number of
// processes form one gapless chain (and the primary key on seq would refuse
// a fork). SQLite needs no lock of its own: the immediate transaction
// already excludes every other writer, so the last row is read as is. A
// PostgreSQL transaction locks the chain and reads its end when it begins
// (see pgQuerier).
func (s *Store) chainEnd(ctx context.Context, q querier) (chainTail, error) {
	if t, ok := q.(*pgQuerier); ok {
		return t.chainEnd(ctx)
	}
	var t chainTail
	err := q.queryRow(ctx, `SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1`).Scan(&t.seq, &t.hash)
	if err != nil && !errNoRows(err) {
		return t, fmt.Errorf("read audit chain tail: %w", err)
	}
	return t, nil
}

// appendEvents seals copies of events onto the end of the chain and
// inserts them, inside the caller's write transaction. The caller copies
// the seals back into its events only after the transaction commits, so a
// rolled-back write leaves them untouched.
func (s *Store) appendEvents(ctx context.Context, q querier, events []approval.AuditEvent) ([]approval.AuditEvent, error) {
	if len(events) == 0 {
		return nil, nil
	}
	tail, err := s.chainEnd(ctx, q)
	if err != nil {
		return nil, err
	}
	seq, hash := tail.seq, tail.hash
	sealed := make([]approval.AuditEvent, len(events))
	args := make([]any, 0, auditColumns*len(events))
	for i := range events {
		e := events[i]
		e.Seal(seq, hash)
		seq, hash = e.Seq, e.Hash
		body, err := json.Marshal(&e)
		if err != nil {
			return nil, fmt.Errorf("encode audit event: %w", err)
		}
		if err := checkText("audit event", &e, body); err != nil {
			return nil, err
		}
		args = append(args, e.Seq, nullString(e.RequestID), string(e.Type), nullString(e.Actor),
			s.dialect.timeValue(e.At), e.PrevHash, e.Hash, string(body))
		sealed[i] = e
	}
	const insert = "INSERT INTO audit_events (seq, request_id, type, actor, at, prev_hash, hash, body) VALUES "
	if s.dialect == Postgres {
		// One statement, one round trip, for all the events.
		var b strings.Builder
		b.WriteString(insert)
		for i := range events {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteByte('(')
			placeholders(&b, i*auditColumns+1, auditColumns)
			b.WriteByte(')')
		}
		if err := q.execLast(ctx, "append audit events", b.String(), args...); err != nil {
			return nil, err
		}
		q.(*pgQuerier).appended(chainTail{seq: seq, hash: hash})
		return sealed, nil
	}
	// One prepared single-row statement, run once per event.
	for i := range events {
		if _, err := q.exec(ctx, insert+"($1, $2, $3, $4, $5, $6, $7, $8)", args[i*auditColumns:(i+1)*auditColumns]...); err != nil {
			return nil, fmt.Errorf("append audit events: %w", err)
		}
	}
	return sealed, nil
}

// writeBack copies the seal of each committed event into the caller's.
func writeBack(events, sealed []approval.AuditEvent) {
	for i := range sealed {
		events[i].Seq = sealed[i].Seq
		events[i].PrevHash = sealed[i].PrevHash
		events[i].Hash = sealed[i].Hash
		events[i].At = sealed[i].At
	}
}

// nullString maps "" to NULL, so the partial indexes on request_id and
// actor skip events without one.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// AppendAudit implements approval.Store.
func (s *Store) AppendAudit(ctx context.Context, events []approval.AuditEvent) error {
	if err := ctx.Err(); err != nil {
		return fail(ctx, "append audit", err)
	}
	if len(events) == 0 {
		return nil
	}
	var sealed []approval.AuditEvent
	err := s.write(ctx, func(ctx context.Context, q querier) error {
		var err error
		sealed, err = s.appendEvents(ctx, q, events)
		return err
	})
	if err != nil {
		return fail(ctx, "append audit", err)
	}
	writeBack(events, sealed)
	return nil
}

// ListAudit implements approval.Store. The cursor is the sequence number of
// the last event of the previous page, in decimal; any other cursor is an
// error.
func (s *Store) ListAudit(ctx context.Context, q approval.AuditQuery) (approval.AuditPage, error) {
	const op = "list audit"
	var after int64
	if q.Cursor != "" {
		n, err := strconv.ParseInt(q.Cursor, 10, 64)
		if err != nil || n < 0 {
			return approval.AuditPage{}, fmt.Errorf("sqlstore: list audit: %w %.64q (pass AuditPage.Next)", approval.ErrInvalidCursor, q.Cursor)
		}
		after = n
	}
	limit := approval.PageSize(q.Limit)
	if !s.canMatch(q.RequestID, q.Actor, string(q.Type)) {
		return approval.AuditPage{}, nil
	}
	var b strings.Builder
	args := []any{after}
	b.WriteString("SELECT " + eventColumns + " FROM audit_events WHERE seq > $1")
	where := func(cond string, arg any) {
		args = append(args, arg)
		fmt.Fprintf(&b, " AND %s $%d", cond, len(args))
	}
	if q.RequestID != "" {
		where("request_id =", q.RequestID)
	}
	if q.Actor != "" {
		where("actor =", q.Actor)
	}
	if q.Type != "" {
		where("type =", string(q.Type))
	}
	if !q.Since.IsZero() {
		where("at >=", s.dialect.boundArg(q.Since))
	}
	if !q.Until.IsZero() {
		where("at <", s.dialect.boundArg(q.Until))
	}
	args = append(args, limit+1)
	fmt.Fprintf(&b, " ORDER BY seq LIMIT $%d", len(args))

	rows, err := s.r.QueryContext(ctx, b.String(), args...)
	if err != nil {
		return approval.AuditPage{}, fail(ctx, op, err)
	}
	defer rows.Close()
	var page approval.AuditPage
	for rows.Next() {
		if len(page.Events) == limit {
			// A further match exists, so this is not the last page.
			page.Next = strconv.FormatInt(page.Events[limit-1].Seq, 10)
			break
		}
		e, err := scanEvent(rows)
		if err != nil {
			return approval.AuditPage{}, fail(ctx, op, err)
		}
		page.Events = append(page.Events, e)
	}
	if err := rows.Err(); err != nil {
		return approval.AuditPage{}, fail(ctx, op, err)
	}
	return page, nil
}

var _ approval.AuditTail = (*Store)(nil)

// LastAuditEvent implements approval.AuditTail.
func (s *Store) LastAuditEvent(ctx context.Context) (approval.AuditEvent, bool, error) {
	const op = "last audit event"
	rows, err := s.r.QueryContext(ctx, "SELECT "+eventColumns+" FROM audit_events ORDER BY seq DESC LIMIT 1")
	if err != nil {
		return approval.AuditEvent{}, false, fail(ctx, op, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return approval.AuditEvent{}, false, fail(ctx, op, err)
		}
		return approval.AuditEvent{}, false, nil
	}
	e, err := scanEvent(rows)
	if err != nil {
		return approval.AuditEvent{}, false, fail(ctx, op, err)
	}
	return e, true, nil
}

// eventColumns are the columns scanEvent reads.
const eventColumns = "seq, request_id, type, actor, at, prev_hash, hash, body"

// scanEvent reads an event's row and checks its columns against its
// body. The body is what the hash chain seals; the columns are what
// queries filter on (ListAudit's request, actor and type). Someone who
// edits a column and not the body hides an event from a query, or shows
// it under another actor, and the chain would still verify: so a row
// whose columns disagree with its body fails the read, with an
// *approval.AuditChainError naming it. VerifyAuditTrail reads every row, so
// it finds any such edit; a filtered query finds those it returns.
func scanEvent(rows interface{ Scan(...any) error }) (approval.AuditEvent, error) {
	var (
		row eventRow
		e   approval.AuditEvent
	)
	if err := row.scan(rows); err != nil {
		return e, err
	}
	err := row.decode(&e)
	return e, err
}

// eventRow is an audit_events row as read, before its body is decoded.
type eventRow struct {
	seq                       int64
	requestID, actor          sql.NullString
	typ, prevHash, hash, body string
	at                        time.Time
}

// scan reads the eventColumns of a row.
func (r *eventRow) scan(rows interface{ Scan(...any) error }) error {
	return rows.Scan(r.dest()...)
}

// dest returns what a row's eventColumns scan into: r's fields.
func (r *eventRow) dest() []any {
	return []any{&r.seq, &r.requestID, &r.typ, &r.actor, timeColumn{&r.at}, &r.prevHash, &r.hash, &r.body}
}

// decode decodes the row's body into e and checks the columns against it
// (see scanEvent).
func (r *eventRow) decode(e *approval.AuditEvent) error {
	if err := decodeEvent(r.body, e); err != nil {
		return fmt.Errorf("event %d: %w", r.seq, err)
	}
	var bad string
	switch {
	case e.Seq != r.seq:
		bad = "seq"
	case e.RequestID != r.requestID.String:
		bad = "request_id"
	case string(e.Type) != r.typ:
		bad = "type"
	case e.Actor != r.actor.String:
		bad = "actor"
	case !e.At.Equal(r.at):
		bad = "at"
	case e.PrevHash != r.prevHash:
		bad = "prev_hash"
	case e.Hash != r.hash:
		bad = "hash"
	}
	if bad != "" {
		return &approval.AuditChainError{Seq: r.seq, Reason: "column " + bad + " does not match the sealed event: the row was edited"}
	}
	return nil
}
