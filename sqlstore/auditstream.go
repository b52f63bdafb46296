package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/signoff/approval"
)

var _ approval.AuditStream = (*Store)(nil)

// StreamAudit implements approval.AuditStream. It reads the trail a
// chunk of rows at a time, each chunk by one query on the read pool
// (keyset, by seq) whose rows are all read before the query ends: no
// connection is held while fn runs, and no read transaction lasts longer
// than one chunk. A goroutine reads the next chunk while the rows of this
// one are decoded, each once, their columns checked against their bodies
// as ListAudit does, and given to fn: a row that fails, fails StreamAudit
// once fn has had every event before it.
func (s *Store) StreamAudit(ctx context.Context, after int64, fn func(*approval.AuditEvent) error) error {
	const op = "stream audit"
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	// Two chunks go round: one is read while fn has the other.
	full, free := make(chan *streamChunk, 2), make(chan *streamChunk, 2)
	free <- new(streamChunk)
	free <- new(streamChunk)
	wg.Go(func() {
		defer close(full)
		for {
			var c *streamChunk
			select {
			case c = <-free:
			case <-ctx.Done():
				return
			}
			c.read(ctx, s, after)
			last := c.err != nil || len(c.rows) < streamChunkRows
			if !last {
				after = c.rows[len(c.rows)-1].seq
			}
			select {
			case full <- c:
			case <-ctx.Done():
				return
			}
			if last {
				return
			}
		}
	})
	var e approval.AuditEvent
	for c := range full {
		for i := range c.rows {
			if err := c.rows[i].decode(&e); err != nil {
				return fail(ctx, op, err)
			}
			if err := fn(&e); err != nil {
				return err
			}
		}
		if c.err != nil {
			return fail(ctx, op, c.err)
		}
		free <- c
	}
	// The reader stops early only when ctx ends.
	if err := ctx.Err(); err != nil {
		return fail(ctx, op, err)
	}
	return nil
}

// streamChunkRows is how many rows of the trail StreamAudit reads with
// one query.
const streamChunkRows = 2048

// streamChunk is a chunk of the trail read by StreamAudit: its rows, and
// the error that ended it early.
type streamChunk struct {
	rows []eventRow
	err  error
}

// read reads the rows of up to streamChunkRows events after seq after.
func (c *streamChunk) read(ctx context.Context, s *Store, after int64) {
	c.rows = c.rows[:0]
	c.err = s.auditChunk(ctx, after, &c.rows)
}

// auditChunk appends to chunk the rows of up to streamChunkRows events after
// seq after, in order.
func (s *Store) auditChunk(ctx context.Context, after int64, chunk *[]eventRow) error {
	rows, err := s.r.QueryContext(ctx, "SELECT "+eventColumns+" FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2", after, streamChunkRows)
	if err != nil {
		return err
	}
	defer rows.Close()
	var row eventRow
	dest := row.dest()
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		*chunk = append(*chunk, row)
	}
	return rows.Err()
}

// AuditedRequests implements approval.AuditStream. It reads the body
// column alone, and decodes of it the members the trail accounts for,
// checking that the rest is well-formed JSON.
func (s *Store) AuditedRequests(ctx context.Context, q approval.AuditedRequestQuery) ([]approval.AuditedRequest, error) {
	const op = "audited requests"
	if !s.dialect.canHold(q.After) {
		return nil, fmt.Errorf("sqlstore: %s: %w %.64q (pass a stored request's ID)", op, approval.ErrInvalidCursor, q.After)
	}
	limit := approval.PageSize(q.Limit)
	var b strings.Builder
	args := []any{q.After}
	b.WriteString("SELECT body FROM requests WHERE id > $1")
	if !q.CreatedFrom.IsZero() {
		args = append(args, s.dialect.boundArg(q.CreatedFrom))
		b.WriteString(" AND created_at >= $2")
	}
	args = append(args, limit)
	fmt.Fprintf(&b, " ORDER BY id LIMIT $%d", len(args))
	rows, err := s.r.QueryContext(ctx, b.String(), args...)
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	defer rows.Close()
	var out []approval.AuditedRequest
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, fail(ctx, op, err)
		}
		a, err := decodeAudited(body)
		if err != nil {
			return nil, fail(ctx, op, err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fail(ctx, op, err)
	}
	return out, nil
}
