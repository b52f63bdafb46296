package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/signoff/approval"
)

// Delegations (approval.Delegations) live in the delegations table
// (migration 0004), a row each, kept once revoked or over: the audit trail
// names them. Each write commits its row change and its audit events in
// one transaction, which on PostgreSQL locks the audit chain first, like
// every other write. A revoke is one UPDATE of a row not yet revoked, so
// of any number of concurrent revokes, from any number of processes,
// exactly one changes the row and appends its events; the others find it
// revoked and write nothing.

var _ approval.Delegations = (*Store)(nil)

// delegationColumns is the column list of a delegation as scanDelegation
// reads it.
const delegationColumns = `id, from_id, to_id, not_before, not_after, policies, reason, created_by, created_at, revoked_by, revoked_at`

// CreateDelegation implements approval.Delegations. The insert does
// nothing on a taken ID (ON CONFLICT DO NOTHING), which is then
// approval.ErrConflict, rather than fail and abort a PostgreSQL
// transaction other writes share (see Group commit). The stored copy has
// its times in UTC at microsecond precision, and an empty Policies comes
// back nil. It refuses, writing nothing, a delegation holding text that
// cannot be stored exactly (ErrInvalidText) or a time outside the range
// of the database's time columns.
func (s *Store) CreateDelegation(ctx context.Context, d *approval.Delegation, events []approval.AuditEvent) error {
	if d == nil {
		return errors.New("sqlstore: create delegation: nil delegation")
	}
	op := fmt.Sprintf("create delegation %.64q", d.ID)
	if err := ctx.Err(); err != nil {
		return fail(ctx, op, err)
	}
	if d.ID == "" {
		return fmt.Errorf("sqlstore: %s: empty ID: %w", op, approval.ErrConflict)
	}
	args, err := s.delegationArgs(d)
	if err != nil {
		return fail(ctx, op, err)
	}
	var sealed []approval.AuditEvent
	err = s.write(ctx, func(ctx context.Context, q querier) error {
		sealed = nil
		n, err := q.exec(ctx, `INSERT INTO delegations (`+delegationColumns+`)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING`, args...)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("a delegation with this ID exists: %w", approval.ErrConflict)
		}
		sealed, err = s.appendEvents(ctx, q, events)
		return err
	})
	if err != nil {
		return fail(ctx, op, err)
	}
	writeBack(events, sealed)
	return nil
}

// delegationArgs checks d and returns its column values, in the order of
// delegationColumns.
func (s *Store) delegationArgs(d *approval.Delegation) ([]any, error) {
	if path, bad := invalidText(reflect.ValueOf(d), "delegation"); bad {
		return nil, fmt.Errorf("%w: %s", ErrInvalidText, path)
	}
	if s.dialect == Postgres {
		for _, f := range []struct{ name, v string }{
			{"ID", d.ID}, {"From", d.From}, {"To", d.To}, {"Reason", d.Reason}, {"CreatedBy", d.CreatedBy}, {"RevokedBy", d.RevokedBy},
		} {
			if !s.dialect.canHold(f.v) {
				return nil, fmt.Errorf("%w: delegation.%s", ErrInvalidText, f.name)
			}
		}
	}
	for _, f := range []struct {
		name string
		t    time.Time
	}{{"NotBefore", d.NotBefore}, {"NotAfter", d.NotAfter}, {"CreatedAt", d.CreatedAt}, {"RevokedAt", d.RevokedAt}} {
		if err := s.checkTime(f.name, f.t); err != nil {
			return nil, err
		}
	}
	var policies any
	if len(d.Policies) > 0 {
		b, err := json.Marshal(d.Policies)
		if err != nil {
			return nil, fmt.Errorf("encode delegation policies: %w", err)
		}
		policies = string(b)
	}
	return []any{
		d.ID, d.From, d.To, s.dialect.timeValue(d.NotBefore), s.dialect.timeValue(d.NotAfter), policies,
		d.Reason, d.CreatedBy, s.dialect.timeValue(d.CreatedAt), d.RevokedBy, s.dialect.timeArg(d.RevokedAt),
	}, nil
}

// checkTime returns an error if t is outside the range of the dialect's
// time columns, which would store it altered (SQLite's microseconds
// overflow) or refuse it (PostgreSQL).
func (s *Store) checkTime(name string, t time.Time) error {
	if s.dialect.holdsTime(t) {
		return nil
	}
	lo, hi := s.dialect.timeRange()
	return fmt.Errorf("%s %s is outside the times a %s store keeps, %s to %s", name,
		t.UTC().Format(time.RFC3339), s.dialect, lo.Format(time.RFC3339), hi.Format(time.RFC3339))
}

// timeRange returns the earliest and latest time the columns of d hold.
func (d Dialect) timeRange() (lo, hi time.Time) {
	if d == Postgres {
		return postgresMinTime, postgresMaxTime
	}
	return sqliteMinTime, sqliteMaxTime
}

// holdsTime reports whether the columns of d hold t.
func (d Dialect) holdsTime(t time.Time) bool {
	lo, hi := d.timeRange()
	return !t.Before(lo) && !t.After(hi)
}

// RevokeDelegation implements approval.Delegations. It refuses a zero at,
// which would leave the delegation unrevoked, and, as CreateDelegation
// does, a by holding text that cannot be stored exactly or an at outside
// the range of the time columns, writing nothing.
func (s *Store) RevokeDelegation(ctx context.Context, id string, at time.Time, by string, events []approval.AuditEvent) (*approval.Delegation, error) {
	op := fmt.Sprintf("revoke delegation %.64q", id)
	if err := ctx.Err(); err != nil {
		return nil, fail(ctx, op, err)
	}
	if !s.dialect.canHold(id) {
		return nil, fmt.Errorf("sqlstore: %s: %w", op, approval.ErrNotFound)
	}
	if at.IsZero() {
		return nil, fmt.Errorf("sqlstore: %s: zero revocation time", op)
	}
	if err := s.checkTime("revocation time", at); err != nil {
		return nil, fail(ctx, op, err)
	}
	if !s.dialect.canHold(by) {
		return nil, fmt.Errorf("sqlstore: %s: %w: revoked by", op, ErrInvalidText)
	}
	var (
		d      approval.Delegation
		sealed []approval.AuditEvent
	)
	err := s.write(ctx, func(ctx context.Context, q querier) error {
		d, sealed = approval.Delegation{}, nil
		err := scanDelegation(q.queryRow(ctx, `UPDATE delegations SET revoked_at = $2, revoked_by = $3
WHERE id = $1 AND revoked_at IS NULL RETURNING `+delegationColumns, id, s.dialect.timeValue(at), by), &d)
		if errNoRows(err) {
			var revokedAt time.Time
			err := q.queryRow(ctx, `SELECT revoked_at FROM delegations WHERE id = $1`, id).Scan(timeColumn{&revokedAt})
			if errNoRows(err) {
				return approval.ErrNotFound
			}
			if err != nil {
				return err
			}
			return fmt.Errorf("revoked at %s: %w", revokedAt.Format(time.RFC3339Nano), approval.ErrConflict)
		}
		if err != nil {
			return err
		}
		sealed, err = s.appendEvents(ctx, q, events)
		return err
	})
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	writeBack(events, sealed)
	return &d, nil
}

// ListDelegations implements approval.Delegations. Every filter is the
// database's: From and To by the indexes on (from_id, not_after) and
// (to_id, not_after), ActiveAt by the window and the revocation time, and
// After by the primary key, walked in ID order. An After that is not
// text the store can hold is refused with approval.ErrInvalidCursor, as a
// cursor of List is.
func (s *Store) ListDelegations(ctx context.Context, q approval.DelegationQuery) ([]approval.Delegation, error) {
	const op = "list delegations"
	if !s.dialect.canHold(q.After) {
		return nil, fmt.Errorf("sqlstore: %s: %w %.64q (pass the ID of the last delegation listed)", op, approval.ErrInvalidCursor, q.After)
	}
	if !s.canMatch(q.From, q.To) || !q.ActiveAt.IsZero() && !s.dialect.holdsTime(q.ActiveAt) {
		// No stored delegation can match: its text is storable and its
		// times within the columns' range.
		return nil, nil
	}
	var b strings.Builder
	args := []any{q.After}
	b.WriteString("SELECT " + delegationColumns + " FROM delegations WHERE id > $1")
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if q.From != "" {
		b.WriteString(" AND from_id = " + arg(q.From))
	}
	if q.To != "" {
		b.WriteString(" AND to_id = " + arg(q.To))
	}
	if !q.ActiveAt.IsZero() {
		// Stored times are whole microseconds, so comparing them with
		// ActiveAt floored to one selects exactly those that compare so
		// with ActiveAt itself.
		t := arg(s.dialect.timeValue(utcMicro(q.ActiveAt)))
		b.WriteString(" AND not_before <= " + t + " AND not_after > " + t + " AND (revoked_at IS NULL OR revoked_at > " + t + ")")
	}
	limit := approval.PageSize(q.Limit)
	b.WriteString(" ORDER BY id LIMIT " + arg(limit))
	rows, err := s.r.QueryContext(ctx, b.String(), args...)
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	defer rows.Close()
	var out []approval.Delegation
	for rows.Next() {
		var d approval.Delegation
		if err := scanDelegation(rows, &d); err != nil {
			return nil, fail(ctx, op, err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fail(ctx, op, err)
	}
	return out, nil
}

// scanDelegation reads a row of delegationColumns into d.
func scanDelegation(row scanner, d *approval.Delegation) error {
	var policies sql.NullString
	err := row.Scan(&d.ID, &d.From, &d.To, timeColumn{&d.NotBefore}, timeColumn{&d.NotAfter}, &policies,
		&d.Reason, &d.CreatedBy, timeColumn{&d.CreatedAt}, &d.RevokedBy, timeColumn{&d.RevokedAt})
	if err != nil {
		return err
	}
	d.Policies = nil
	if policies.Valid {
		if err := json.Unmarshal([]byte(policies.String), &d.Policies); err != nil {
			return fmt.Errorf("decode stored delegation %s policies: %w", d.ID, err)
		}
	}
	return nil
}

// timeColumn scans a time column of either dialect into *t, in UTC:
// SQLite's Unix microseconds, PostgreSQL's timestamptz, and NULL as the
// zero time.
type timeColumn struct{ t *time.Time }

func (c timeColumn) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*c.t = time.Time{}
	case int64:
		*c.t = time.UnixMicro(v).UTC()
	case time.Time:
		*c.t = v.UTC()
	default:
		return fmt.Errorf("scan a time column: unexpected %T", v)
	}
	return nil
}
