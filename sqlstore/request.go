package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/signoff/approval"
)

// liveStatuses is the SQL list of the statuses that are not terminal (see
// approval.Status.Terminal); the partial indexes use the same list.
const liveStatuses = `('pending', 'escalated', 'approved')`

// maxCreateAttempts bounds how often Create retries when the live request
// its insert collided with has become terminal before it could be read.
const maxCreateAttempts = 16

// Create implements approval.Store. The live-request check is the
// database's: a partial unique index on action_hash over the live
// statuses. Create inserts with ON CONFLICT DO NOTHING and, when nothing
// was inserted, returns the live request of the ActionHash, or
// approval.ErrConflict if it was req.ID that was taken. When a live request
// and req.ID both collide, the live request wins (created == false). A
// terminal req is outside the index, so it is stored whatever else exists.
// The returned request is a copy of req with its times in UTC at
// microsecond precision, which is how it is stored.
func (s *Store) Create(ctx context.Context, req *approval.Request, events []approval.AuditEvent) (*approval.Request, bool, error) {
	if req == nil {
		return nil, false, errors.New("sqlstore: create: nil request")
	}
	op := "create " + req.ID
	if err := ctx.Err(); err != nil {
		return nil, false, fail(ctx, op, err)
	}
	row, err := encodeRequest(req)
	if err != nil {
		return nil, false, fail(ctx, op, err)
	}
	var (
		existing *approval.Request
		sealed   []approval.AuditEvent
	)
	err = s.write(ctx, func(q querier) error {
		existing, sealed = nil, nil
		for range maxCreateAttempts {
			inserted, tail, err := s.insertRequest(ctx, q, row, len(events) > 0)
			if err != nil {
				return err
			}
			if inserted {
				sealed, err = s.appendEvents(ctx, q, tail, events)
				return err
			}
			if row.req.Status.Terminal() {
				// A terminal request is outside the live index, so only its
				// ID can have collided.
				return fmt.Errorf("a request with this ID exists: %w", approval.ErrConflict)
			}
			var body []byte
			err = q.queryRow(ctx, `SELECT body FROM requests
WHERE action_hash = $1 AND status IN `+liveStatuses+`
ORDER BY id LIMIT 1`, req.ActionHash).Scan(&body)
			if err == nil {
				existing, err = decodeRequest(body)
				return err
			}
			if !errNoRows(err) {
				return err
			}
			var one int
			err = q.queryRow(ctx, `SELECT 1 FROM requests WHERE id = $1`, req.ID).Scan(&one)
			if err == nil {
				return fmt.Errorf("a request with this ID exists: %w", approval.ErrConflict)
			}
			if !errNoRows(err) {
				return err
			}
			// The live request the insert collided with became terminal
			// (PostgreSQL, another process) before it could be read: the
			// action is free again, so insert again.
		}
		return fmt.Errorf("the action's live request kept changing after %d attempts: %w", maxCreateAttempts, approval.ErrConflict)
	})
	if err != nil {
		if isUniqueViolation(err) {
			err = fmt.Errorf("%w: %w", approval.ErrConflict, err)
		}
		return nil, false, fail(ctx, op, err)
	}
	if existing != nil {
		return existing, false, nil
	}
	writeBack(events, sealed)
	return row.req, true, nil
}

// pgInsertRequest inserts a request and its side-table rows in one
// statement (one round trip) and, if it inserted the request and $12 is
// true, locks and returns the tail of the audit chain (audit_tail), which
// the events are appended to next. The request's insert runs first (the
// main query counts its rows), so the chain lock is taken after the
// request's own locks; the side-table rows, which belong to the new
// request and so wait for no one, are written at the end of the statement.
const pgInsertRequest = `WITH ins AS (
    INSERT INTO requests (id, status, action_hash, requested_by, created_at, updated_at, due_at, version, body)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    ON CONFLICT DO NOTHING
    RETURNING id
), policies AS (
    INSERT INTO request_policies (request_id, policy) SELECT id, unnest($10::text[]) FROM ins
), approvers AS (
    INSERT INTO request_approvers (request_id, approver) SELECT id, unnest($11::text[]) FROM ins
)
SELECT n.n, t.seq, t.hash FROM (SELECT count(*) AS n FROM ins) n
LEFT JOIN LATERAL audit_tail(n.n > 0 AND $12::boolean) t ON true`

// insertRequest inserts row and its side-table rows unless a live request
// of its action or a request with its ID exists, and reports whether it
// did. If it did, and lockTail is set, it may also return the locked tail
// of the audit chain (PostgreSQL does, in the same round trip); if it
// returns nil, appendEvents locks the tail itself.
func (s *Store) insertRequest(ctx context.Context, q querier, row requestRow, lockTail bool) (bool, *chainTail, error) {
	if s.dialect == Postgres {
		var (
			n    int64
			seq  sql.NullInt64
			hash sql.NullString
		)
		args := append(s.requestArgs(row), policyNames(row.req), voterNames(row.req), lockTail)
		if err := q.queryRow(ctx, pgInsertRequest, args...).Scan(&n, &seq, &hash); err != nil || n == 0 {
			return false, nil, err
		}
		if !lockTail {
			return true, nil, nil
		}
		if !seq.Valid {
			return false, nil, errors.New("read audit chain tail: none returned")
		}
		return true, &chainTail{seq: seq.Int64, hash: hash.String}, nil
	}
	n, err := q.exec(ctx, `INSERT INTO requests
    (id, status, action_hash, requested_by, created_at, updated_at, due_at, version, body)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT DO NOTHING`, s.requestArgs(row)...)
	if err != nil || n == 0 {
		return false, nil, err
	}
	if err := s.syncNames(ctx, q, policiesTable, row.req.ID, nil, policyNames(row.req)); err != nil {
		return false, nil, err
	}
	return true, nil, s.syncNames(ctx, q, approversTable, row.req.ID, nil, voterNames(row.req))
}

// requestArgs returns the column values of a request row, in the order of
// the INSERT statements.
func (s *Store) requestArgs(row requestRow) []any {
	r := row.req
	return []any{
		r.ID, string(r.Status), r.ActionHash, r.Action.RequestedBy,
		s.dialect.timeValue(r.CreatedAt), s.dialect.timeValue(r.UpdatedAt), s.dialect.timeArg(r.DueAt),
		r.Version, string(row.body),
	}
}

// Get implements approval.Store.
func (s *Store) Get(ctx context.Context, id string) (*approval.Request, error) {
	op := "get " + id
	var body []byte
	err := s.readRow(ctx, `SELECT body FROM requests WHERE id = $1`, id).Scan(&body)
	if errNoRows(err) {
		return nil, fmt.Errorf("sqlstore: get %s: %w", id, approval.ErrNotFound)
	}
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	r, err := decodeRequest(body)
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	return r, nil
}

// Update implements approval.Store. It reads the stored version under a
// row lock (PostgreSQL's SELECT ... FOR UPDATE; SQLite's immediate
// transaction locks the whole database), so the compare and the set are one
// step across processes. It checks the version before the token, so an
// Update that is both stale and replayed reports approval.ErrConflict.
func (s *Store) Update(ctx context.Context, u approval.Update) error {
	if u.Request == nil {
		return errors.New("sqlstore: update: nil request")
	}
	id := u.Request.ID
	op := "update " + id
	if err := ctx.Err(); err != nil {
		return fail(ctx, op, err)
	}
	row, err := encodeRequest(u.Request)
	if err != nil {
		return fail(ctx, op, err)
	}
	usedAt := row.req.UpdatedAt
	if usedAt.IsZero() {
		usedAt = utcMicro(time.Now())
	}
	var sealed []approval.AuditEvent
	err = s.write(ctx, func(q querier) error {
		sealed = nil
		var old storedRow
		err := q.queryRow(ctx, `SELECT version, status, action_hash, requested_by, created_at, due_at, body
FROM requests WHERE id = $1`+s.dialect.forUpdate(), id).Scan(
			&old.version, &old.status, &old.actionHash, &old.requestedBy, &old.createdAt, &old.dueAt, &old.body)
		if errNoRows(err) {
			return approval.ErrNotFound
		}
		if err != nil {
			return err
		}
		if old.version != row.req.Version-1 {
			return fmt.Errorf("stored version %d, update to %d: %w", old.version, row.req.Version, approval.ErrConflict)
		}
		w, err := s.newRequestWrite(old, row, u.TokenID, usedAt)
		if err != nil {
			return err
		}
		fresh, tail, err := s.updateRequest(ctx, q, id, w, len(u.Events) > 0)
		if err != nil {
			if isUniqueViolation(err) {
				return fmt.Errorf("another request for the action is live: %w: %w", approval.ErrConflict, err)
			}
			return err
		}
		if !fresh {
			return fmt.Errorf("token %s: %w", u.TokenID, approval.ErrTokenUsed)
		}
		sealed, err = s.appendEvents(ctx, q, tail, u.Events)
		return err
	})
	if err != nil {
		return fail(ctx, op, err)
	}
	writeBack(u.Events, sealed)
	return nil
}
