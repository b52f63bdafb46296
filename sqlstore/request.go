package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
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
			res, err := q.ExecContext(ctx, `INSERT INTO requests
    (id, status, action_hash, requested_by, created_at, updated_at, due_at, version, body)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT DO NOTHING`, s.requestArgs(row)...)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 1 {
				if err := s.insertNames(ctx, q, "request_policies", "policy", req.ID, policyNames(row.req)); err != nil {
					return err
				}
				if err := s.insertNames(ctx, q, "request_approvers", "approver", req.ID, voterNames(row.req)); err != nil {
					return err
				}
				sealed, err = s.appendEvents(ctx, q, events)
				return err
			}
			if row.req.Status.Terminal() {
				// A terminal request is outside the live index, so only its
				// ID can have collided.
				return fmt.Errorf("a request with this ID exists: %w", approval.ErrConflict)
			}
			var body []byte
			err = q.QueryRowContext(ctx, `SELECT body FROM requests
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
			err = q.QueryRowContext(ctx, `SELECT 1 FROM requests WHERE id = $1`, req.ID).Scan(&one)
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

// requestArgs returns the column values of a request row, in the order of
// the INSERT and UPDATE statements.
func (s *Store) requestArgs(row requestRow) []any {
	r := row.req
	return []any{
		r.ID, string(r.Status), r.ActionHash, r.Action.RequestedBy,
		s.dialect.timeValue(r.CreatedAt), s.dialect.timeValue(r.UpdatedAt), s.dialect.timeArg(r.DueAt),
		r.Version, string(row.body),
	}
}

// insertNames inserts (id, name) rows into one of the side tables.
func (s *Store) insertNames(ctx context.Context, q querier, table, column, id string, names []string) error {
	if len(names) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("INSERT INTO " + table + " (request_id, " + column + ") VALUES ")
	args := make([]any, 0, 1+len(names))
	args = append(args, id)
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "($1, $%d)", i+2)
		args = append(args, n)
	}
	_, err := q.ExecContext(ctx, b.String(), args...)
	return err
}

// deleteNames deletes (id, name) rows from one of the side tables.
func (s *Store) deleteNames(ctx context.Context, q querier, table, column, id string, names []string) error {
	if len(names) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("DELETE FROM " + table + " WHERE request_id = $1 AND " + column + " IN (")
	placeholders(&b, 2, len(names))
	b.WriteByte(')')
	args := make([]any, 0, 1+len(names))
	args = append(args, id)
	for _, n := range names {
		args = append(args, n)
	}
	_, err := q.ExecContext(ctx, b.String(), args...)
	return err
}

// syncNames makes a side table hold names for id, given that it holds old.
func (s *Store) syncNames(ctx context.Context, q querier, table, column, id string, old, names []string) error {
	var gone, added []string
	for _, n := range old {
		if !slices.Contains(names, n) {
			gone = append(gone, n)
		}
	}
	for _, n := range names {
		if !slices.Contains(old, n) {
			added = append(added, n)
		}
	}
	if err := s.deleteNames(ctx, q, table, column, id, gone); err != nil {
		return err
	}
	return s.insertNames(ctx, q, table, column, id, added)
}

// Get implements approval.Store.
func (s *Store) Get(ctx context.Context, id string) (*approval.Request, error) {
	op := "get " + id
	var body []byte
	err := s.r.QueryRowContext(ctx, `SELECT body FROM requests WHERE id = $1`, id).Scan(&body)
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
	var sealed []approval.AuditEvent
	err = s.write(ctx, func(q querier) error {
		sealed = nil
		var (
			version int64
			oldBody []byte
		)
		err := q.QueryRowContext(ctx, `SELECT version, body FROM requests WHERE id = $1`+s.dialect.forUpdate(), id).Scan(&version, &oldBody)
		if errNoRows(err) {
			return approval.ErrNotFound
		}
		if err != nil {
			return err
		}
		if version != row.req.Version-1 {
			return fmt.Errorf("stored version %d, update to %d: %w", version, row.req.Version, approval.ErrConflict)
		}
		if u.TokenID != "" {
			usedAt := row.req.UpdatedAt
			if usedAt.IsZero() {
				usedAt = utcMicro(time.Now())
			}
			res, err := q.ExecContext(ctx, `INSERT INTO used_tokens (token_id, request_id, used_at) VALUES ($1, $2, $3)
ON CONFLICT DO NOTHING`, u.TokenID, id, s.dialect.timeValue(usedAt))
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 0 {
				return fmt.Errorf("token %s: %w", u.TokenID, approval.ErrTokenUsed)
			}
		}
		args := append(s.requestArgs(row), version)
		if _, err := q.ExecContext(ctx, `UPDATE requests SET
    status = $2, action_hash = $3, requested_by = $4, created_at = $5,
    updated_at = $6, due_at = $7, version = $8, body = $9
WHERE id = $1 AND version = $10`, args...); err != nil {
			if isUniqueViolation(err) {
				return fmt.Errorf("another request for the action is live: %w: %w", approval.ErrConflict, err)
			}
			return err
		}
		oldPolicies, oldVoters, err := indexedNames(oldBody)
		if err != nil {
			return err
		}
		if err := s.syncNames(ctx, q, "request_policies", "policy", id, oldPolicies, policyNames(row.req)); err != nil {
			return err
		}
		if err := s.syncNames(ctx, q, "request_approvers", "approver", id, oldVoters, voterNames(row.req)); err != nil {
			return err
		}
		sealed, err = s.appendEvents(ctx, q, u.Events)
		return err
	})
	if err != nil {
		return fail(ctx, op, err)
	}
	writeBack(u.Events, sealed)
	return nil
}
