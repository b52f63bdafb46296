package sqlstore

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"time"

	"github.com/signoff/approval"
)

var _ approval.OperatorStats = (*Store)(nil)

// micros is a time column as Unix microseconds, the form every dialect
// scans into an int64.
func (d Dialect) micros(col string) string {
	if d == Postgres {
		return "(EXTRACT(EPOCH FROM " + col + ") * 1000000)::bigint"
	}
	return col
}

// OpenByPolicy implements approval.OperatorStats: one query over the
// requests_status index of the open requests, joined to their policies.
func (s *Store) OpenByPolicy(ctx context.Context) ([]approval.PolicyOpen, error) {
	const op = "open by policy"
	rows, err := s.readRows(ctx, `SELECT p.policy, COUNT(*), MIN(`+s.dialect.micros("r.created_at")+`)
FROM requests r JOIN request_policies p ON p.request_id = r.id
WHERE r.status IN ('pending', 'escalated')
GROUP BY p.policy ORDER BY p.policy`)
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	defer rows.Close()
	var out []approval.PolicyOpen
	for rows.Next() {
		var o approval.PolicyOpen
		var oldest int64
		if err := rows.Scan(&o.Policy, &o.Count, &oldest); err != nil {
			return nil, fail(ctx, op, err)
		}
		o.Oldest = time.UnixMicro(oldest).UTC()
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fail(ctx, op, err)
	}
	return out, nil
}

// Resolutions implements approval.OperatorStats: the resolution events by
// the audit_events_at index, each joined to its request and its
// policies.
func (s *Store) Resolutions(ctx context.Context, since time.Time, fn func(approval.Resolution) error) error {
	const op = "resolutions"
	rows, err := s.readRows(ctx, `SELECT r.id, p.policy, e.type, `+s.dialect.micros("r.created_at")+`, `+s.dialect.micros("e.at")+`
FROM audit_events e
JOIN requests r ON r.id = e.request_id
JOIN request_policies p ON p.request_id = r.id
WHERE e.at >= $1 AND e.type IN ('request.approved', 'request.denied', 'request.timed_out', 'request.cancelled')`,
		s.dialect.timeValue(s.dialect.clamp(utcMicro(since))))
	if err != nil {
		return fail(ctx, op, err)
	}
	defer rows.Close()
	for rows.Next() {
		var r approval.Resolution
		var created, at int64
		if err := rows.Scan(&r.RequestID, &r.Policy, &r.Event, &created, &at); err != nil {
			return fail(ctx, op, err)
		}
		r.CreatedAt, r.At = time.UnixMicro(created).UTC(), time.UnixMicro(at).UTC()
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fail(ctx, op, err)
	}
	return nil
}

// OutboxByChannel implements approval.OperatorStats: one query over the
// outbox, which holds only pending messages and dead letters, and one for
// each channel's newest error.
func (s *Store) OutboxByChannel(ctx context.Context) ([]approval.ChannelHealth, error) {
	const op = "outbox by channel"
	rows, err := s.readRows(ctx, `SELECT channel,
    SUM(CASE WHEN state = 'pending' THEN 1 ELSE 0 END),
    MIN(CASE WHEN state = 'pending' THEN `+s.dialect.micros("created_at")+` END),
    SUM(CASE WHEN state = 'pending' AND attempts > 0 THEN 1 ELSE 0 END),
    SUM(CASE WHEN state = 'dead' THEN 1 ELSE 0 END)
FROM outbox GROUP BY channel ORDER BY channel`)
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	var out []approval.ChannelHealth
	err = func() error {
		defer rows.Close()
		for rows.Next() {
			var h approval.ChannelHealth
			var oldest sql.NullInt64
			if err := rows.Scan(&h.Channel, &h.Pending, &oldest, &h.Retrying, &h.Dead); err != nil {
				return err
			}
			if oldest.Valid {
				h.OldestPending = time.UnixMicro(oldest.Int64).UTC()
			}
			out = append(out, h)
		}
		return rows.Err()
	}()
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	// The newest error of each channel, a pending message's before a dead
	// letter's.
	for i := range out {
		err := s.readRow(ctx, `SELECT last_error FROM outbox
WHERE channel = $1 AND last_error IS NOT NULL AND last_error <> ''
ORDER BY CASE WHEN state = 'pending' THEN 0 ELSE 1 END, created_at DESC, id DESC LIMIT 1`, out[i].Channel).Scan(&out[i].LastError)
		if err != nil && err != sql.ErrNoRows {
			return nil, fail(ctx, op, err)
		}
	}
	slices.SortFunc(out, func(a, b approval.ChannelHealth) int { return strings.Compare(a.Channel, b.Channel) })
	return out, nil
}
