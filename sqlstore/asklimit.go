package sqlstore

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/signoff/approval"
)

// Limits on asking (approval.AskLimits) live in ask_limits and ask_open
// (migration 0008). A Create with limits inserts the request first, so
// that deduplication answers before any limit is read, then locks each
// check's ask_limits row in key order (FOR UPDATE on PostgreSQL; SQLite's
// write transactions are exclusive already), counts the key's open
// requests, applies the rate, and writes the new state with the request;
// a refusal returns an error and rolls the insert back. Concurrent Creates
// of one person therefore take turns on the row and each counts the
// requests the others committed.

var _ approval.AskLimits = (*Store)(nil)

// CreateLimited implements approval.AskLimits.
func (s *Store) CreateLimited(ctx context.Context, req *approval.Request, events []approval.AuditEvent, msgs []approval.OutboxMessage, limits []approval.AskCheck) (*approval.Request, bool, error) {
	return s.create(ctx, req, events, msgs, limits)
}

// admit checks limits for req, just inserted, and takes them; an
// *approval.AskLimitError refuses it (the caller rolls back).
func (s *Store) admit(ctx context.Context, q querier, req *approval.Request, limits []approval.AskCheck) error {
	if len(limits) == 0 {
		return nil
	}
	keys := make([]string, len(limits))
	for i := range limits {
		keys[i] = limits[i].Key()
		if !s.dialect.canHold(keys[i]) {
			return fmt.Errorf("limit key %.64q: %w", keys[i], ErrInvalidText)
		}
	}
	order := slices.Clone(keys)
	slices.Sort(order)
	tats := make(map[string]time.Time, len(keys))
	for _, k := range slices.Compact(order) {
		if _, err := q.exec(ctx, `INSERT INTO ask_limits (key, tat, audited) VALUES ($1, 0, 0) ON CONFLICT (key) DO NOTHING`, k); err != nil {
			return err
		}
		var tat int64
		if err := q.queryRow(ctx, `SELECT tat FROM ask_limits WHERE key = $1`+s.dialect.forUpdate(), k).Scan(&tat); err != nil {
			return err
		}
		tats[k] = microTime(tat)
	}
	next := make([]time.Time, len(limits))
	for i := range limits {
		c := &limits[i]
		if c.Limit.MaxOpen > 0 {
			var n int
			if err := q.queryRow(ctx, `SELECT count(*) FROM ask_open WHERE key = $1`, keys[i]).Scan(&n); err != nil {
				return err
			}
			if n >= c.Limit.MaxOpen {
				return &approval.AskLimitError{Check: *c, Open: n}
			}
		}
		t, ok, retry := c.Take(tats[keys[i]], req.CreatedAt)
		if !ok {
			return &approval.AskLimitError{Check: *c, RetryAt: retry}
		}
		next[i] = t
	}
	for i := range limits {
		c := &limits[i]
		if c.Limit.Rate > 0 {
			if _, err := q.exec(ctx, `UPDATE ask_limits SET tat = $2 WHERE key = $1`, keys[i], utcMicro(next[i]).UnixMicro()); err != nil {
				return err
			}
		}
		if c.Limit.MaxOpen > 0 {
			if _, err := q.exec(ctx, `INSERT INTO ask_open (key, request_id) VALUES ($1, $2)`, keys[i], req.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// microTime is a stored time in microseconds since the Unix epoch; 0 is
// the zero time.
func microTime(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

// releaseOpen stops counting request id open, in the Update that made it
// not open.
func releaseOpen(ctx context.Context, q querier, id string) error {
	_, err := q.exec(ctx, `DELETE FROM ask_open WHERE request_id = $1`, id)
	return err
}

// RecordAskRefusal implements approval.AskLimits: one conditional UPDATE
// of the key's row, so that of concurrent calls in one window exactly one
// changes it and appends events.
func (s *Store) RecordAskRefusal(ctx context.Context, key string, now, until time.Time, events []approval.AuditEvent) (bool, error) {
	op := fmt.Sprintf("record ask refusal %.64q", key)
	if err := ctx.Err(); err != nil {
		return false, fail(ctx, op, err)
	}
	if key == "" {
		return false, fmt.Errorf("sqlstore: %s: empty key", op)
	}
	if !s.dialect.canHold(key) {
		return false, fmt.Errorf("sqlstore: %s: %w", op, ErrInvalidText)
	}
	var (
		sealed   []approval.AuditEvent
		recorded bool
	)
	err := s.write(ctx, func(ctx context.Context, q querier) error {
		sealed, recorded = nil, false
		if _, err := q.exec(ctx, `INSERT INTO ask_limits (key, tat, audited) VALUES ($1, 0, 0) ON CONFLICT (key) DO NOTHING`, key); err != nil {
			return err
		}
		n, err := q.exec(ctx, `UPDATE ask_limits SET audited = $2 WHERE key = $1 AND audited <= $3`,
			key, utcMicro(until).UnixMicro(), utcMicro(now).UnixMicro())
		if err != nil || n == 0 {
			return err
		}
		recorded = true
		sealed, err = s.appendEvents(ctx, q, events)
		return err
	})
	if err != nil {
		return false, fail(ctx, op, err)
	}
	if recorded {
		writeBack(events, sealed)
	}
	return recorded, nil
}
