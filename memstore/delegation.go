package memstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/signoff/approval"
)

// Delegations (approval.Delegations) live in memory with everything else,
// by ID; they are few (one per absence), and are kept, revoked or not,
// for the life of the store: the audit trail refers to them.

var _ approval.Delegations = (*Store)(nil)

// CreateDelegation implements approval.Delegations.
func (s *Store) CreateDelegation(ctx context.Context, d *approval.Delegation, events []approval.AuditEvent) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: create delegation: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.delegations == nil {
		s.delegations = make(map[string]*approval.Delegation)
	}
	if _, ok := s.delegations[d.ID]; ok || d.ID == "" {
		return fmt.Errorf("memstore: create delegation %q: %w", d.ID, approval.ErrConflict)
	}
	s.delegations[d.ID] = d.Clone()
	s.appendAudit(events)
	return nil
}

// RevokeDelegation implements approval.Delegations.
func (s *Store) RevokeDelegation(ctx context.Context, id string, at time.Time, by string, events []approval.AuditEvent) (*approval.Delegation, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: revoke delegation: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.delegations[id]
	if !ok {
		return nil, fmt.Errorf("memstore: revoke delegation %q: %w", id, approval.ErrNotFound)
	}
	if !d.RevokedAt.IsZero() {
		return nil, fmt.Errorf("memstore: revoke delegation %s: revoked at %s: %w", id, d.RevokedAt.Format(time.RFC3339), approval.ErrConflict)
	}
	d.RevokedAt, d.RevokedBy = at, by
	s.appendAudit(events)
	return d.Clone(), nil
}

// ListDelegations implements approval.Delegations.
func (s *Store) ListDelegations(ctx context.Context, q approval.DelegationQuery) ([]approval.Delegation, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: list delegations: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []approval.Delegation
	for _, d := range s.delegations {
		if q.Matches(d) {
			out = append(out, *d.Clone())
		}
	}
	slices.SortFunc(out, func(a, b approval.Delegation) int { return strings.Compare(a.ID, b.ID) })
	if n := approval.PageSize(q.Limit); len(out) > n {
		out = out[:n]
	}
	return out, nil
}
