package sqlstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/signoff/approval"
)

// Passkeys (approval.Passkeys) live in the passkeys table (migration
// 0007), a row each, the approval.Passkey's JSON in body, kept once
// revoked. Each write commits its row and its audit events in one
// transaction, like every other write; a revoke is one UPDATE of a row
// not yet revoked, so of concurrent revokes exactly one changes it.

var _ approval.Passkeys = (*Store)(nil)

// CreatePasskey implements approval.Passkeys. A taken ID inserts nothing
// (ON CONFLICT DO NOTHING) and is approval.ErrConflict.
func (s *Store) CreatePasskey(ctx context.Context, p *approval.Passkey, events []approval.AuditEvent) error {
	if p == nil {
		return errors.New("sqlstore: create passkey: nil passkey")
	}
	op := fmt.Sprintf("create passkey %.64q", p.ID)
	if err := ctx.Err(); err != nil {
		return fail(ctx, op, err)
	}
	if p.ID == "" {
		return fmt.Errorf("sqlstore: %s: empty ID: %w", op, approval.ErrConflict)
	}
	if path, bad := invalidText(reflect.ValueOf(p), "passkey"); bad {
		return fmt.Errorf("sqlstore: %s: %w: %s", op, ErrInvalidText, path)
	}
	if err := s.checkTime("CreatedAt", p.CreatedAt); err != nil {
		return fail(ctx, op, err)
	}
	c := p.Clone()
	c.CreatedAt = utcMicro(c.CreatedAt)
	body, err := json.Marshal(c)
	if err != nil {
		return fail(ctx, op, err)
	}
	var sealed []approval.AuditEvent
	err = s.write(ctx, func(ctx context.Context, q querier) error {
		sealed = nil
		n, err := q.exec(ctx, `INSERT INTO passkeys (id, owner, created_at, revoked_at, body)
VALUES ($1, $2, $3, NULL, $4) ON CONFLICT DO NOTHING`, c.ID, c.Owner, s.dialect.timeValue(c.CreatedAt), string(body))
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("a passkey with this ID exists: %w", approval.ErrConflict)
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

// GetPasskey implements approval.Passkeys.
func (s *Store) GetPasskey(ctx context.Context, id string) (*approval.Passkey, error) {
	op := fmt.Sprintf("get passkey %.64q", id)
	if !s.dialect.canHold(id) {
		return nil, fmt.Errorf("sqlstore: %s: %w", op, approval.ErrNotFound)
	}
	var body []byte
	err := s.readRow(ctx, `SELECT body FROM passkeys WHERE id = $1`, id).Scan(&body)
	if errNoRows(err) {
		return nil, fmt.Errorf("sqlstore: %s: %w", op, approval.ErrNotFound)
	}
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	return decodePasskey(ctx, op, body)
}

func decodePasskey(ctx context.Context, op string, body []byte) (*approval.Passkey, error) {
	var p approval.Passkey
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fail(ctx, op, fmt.Errorf("decode passkey: %w", err))
	}
	return &p, nil
}

// ListPasskeys implements approval.Passkeys, by the passkeys_owner index.
func (s *Store) ListPasskeys(ctx context.Context, owner string) ([]approval.Passkey, error) {
	const op = "list passkeys"
	if !s.dialect.canHold(owner) {
		return nil, nil
	}
	rows, err := s.readRows(ctx, `SELECT body FROM passkeys WHERE owner = $1 ORDER BY created_at, id`, owner)
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	defer rows.Close()
	var out []approval.Passkey
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			return nil, fail(ctx, op, err)
		}
		p, err := decodePasskey(ctx, op, body)
		if err != nil {
			return nil, err
		}
		out = append(out, *p)
	}
	if err := rows.Err(); err != nil {
		return nil, fail(ctx, op, err)
	}
	return out, nil
}

// RevokePasskey implements approval.Passkeys: one UPDATE of the row where
// revoked_at is NULL, its body rewritten with the revocation.
func (s *Store) RevokePasskey(ctx context.Context, id string, at time.Time, by string, events []approval.AuditEvent) (*approval.Passkey, error) {
	op := fmt.Sprintf("revoke passkey %.64q", id)
	if err := ctx.Err(); err != nil {
		return nil, fail(ctx, op, err)
	}
	if !s.dialect.canHold(id) {
		return nil, fmt.Errorf("sqlstore: %s: %w", op, approval.ErrNotFound)
	}
	if err := s.checkTime("revocation time", at); err != nil {
		return nil, fail(ctx, op, err)
	}
	if !s.dialect.canHold(by) {
		return nil, fmt.Errorf("sqlstore: %s: %w: revoked by", op, ErrInvalidText)
	}
	var (
		p      *approval.Passkey
		sealed []approval.AuditEvent
	)
	err := s.write(ctx, func(ctx context.Context, q querier) error {
		p, sealed = nil, nil
		var body []byte
		err := q.queryRow(ctx, `SELECT body FROM passkeys WHERE id = $1 AND revoked_at IS NULL`, id).Scan(&body)
		if errNoRows(err) {
			var one int
			if err := q.queryRow(ctx, `SELECT 1 FROM passkeys WHERE id = $1`, id).Scan(&one); errNoRows(err) {
				return approval.ErrNotFound
			} else if err != nil {
				return err
			}
			return fmt.Errorf("already revoked: %w", approval.ErrConflict)
		}
		if err != nil {
			return err
		}
		if p, err = decodePasskey(ctx, op, body); err != nil {
			return err
		}
		p.RevokedAt, p.RevokedBy = utcMicro(at), by
		next, err := json.Marshal(p)
		if err != nil {
			return err
		}
		n, err := q.exec(ctx, `UPDATE passkeys SET revoked_at = $2, body = $3 WHERE id = $1 AND revoked_at IS NULL`,
			id, s.dialect.timeValue(p.RevokedAt), string(next))
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("revoked meanwhile: %w", approval.ErrConflict)
		}
		sealed, err = s.appendEvents(ctx, q, events)
		return err
	})
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	writeBack(events, sealed)
	return p, nil
}
