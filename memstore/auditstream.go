package memstore

import (
	"context"
	"fmt"
	"slices"

	"github.com/signoff/approval"
)

var _ approval.AuditStream = (*Store)(nil)

// streamChunk is how many events StreamAudit copies under the lock at a
// time.
const streamChunk = 1024

// StreamAudit implements approval.AuditStream. It copies the trail a chunk
// at a time under the Store's lock, and calls fn without it.
func (s *Store) StreamAudit(ctx context.Context, after int64, fn func(*approval.AuditEvent) error) error {
	chunk := make([]approval.AuditEvent, 0, streamChunk)
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("memstore: stream audit: %w", err)
		}
		chunk = chunk[:0]
		s.mu.Lock()
		for i := min(max(after, s.auditBase), s.auditLen); i < s.auditLen && len(chunk) < streamChunk; i++ {
			chunk = append(chunk, s.event(i).Clone())
		}
		s.mu.Unlock()
		if len(chunk) == 0 {
			return nil
		}
		for i := range chunk {
			if err := fn(&chunk[i]); err != nil {
				return err
			}
		}
		after = chunk[len(chunk)-1].Seq
	}
}

// AuditedRequests implements approval.AuditStream.
func (s *Store) AuditedRequests(ctx context.Context, q approval.AuditedRequestQuery) ([]approval.AuditedRequest, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: audited requests: %w", err)
	}
	limit := approval.PageSize(q.Limit)
	s.mu.Lock()
	defer s.mu.Unlock()
	start := 0
	if q.After != "" {
		var found bool
		start, found = slices.BinarySearch(s.ids, q.After)
		if found {
			start++
		}
	}
	var out []approval.AuditedRequest
	for _, id := range s.ids[start:] {
		if len(out) == limit {
			break
		}
		r, ok := s.requests[id]
		if !ok || r.CreatedAt.Before(q.CreatedFrom) {
			continue
		}
		out = append(out, r.Audited())
	}
	return out, nil
}
