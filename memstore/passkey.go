package memstore

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/signoff/approval"
)

// Passkeys (approval.Passkeys) live in memory with everything else, by
// credential ID, kept once revoked: the audit trail names them.

var _ approval.Passkeys = (*Store)(nil)

// CreatePasskey implements approval.Passkeys.
func (s *Store) CreatePasskey(ctx context.Context, p *approval.Passkey, events []approval.AuditEvent) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: create passkey: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.passkeys == nil {
		s.passkeys = make(map[string]*approval.Passkey)
	}
	if _, ok := s.passkeys[p.ID]; ok || p.ID == "" {
		return fmt.Errorf("memstore: create passkey %.64q: %w", p.ID, approval.ErrConflict)
	}
	c := p.Clone()
	c.CreatedAt = c.CreatedAt.UTC()
	s.passkeys[p.ID] = c
	s.passkeyOrder = append(s.passkeyOrder, p.ID)
	s.appendAudit(events)
	return nil
}

// GetPasskey implements approval.Passkeys.
func (s *Store) GetPasskey(ctx context.Context, id string) (*approval.Passkey, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: get passkey: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.passkeys[id]
	if !ok {
		return nil, fmt.Errorf("memstore: get passkey %.64q: %w", id, approval.ErrNotFound)
	}
	return p.Clone(), nil
}

// ListPasskeys implements approval.Passkeys.
func (s *Store) ListPasskeys(ctx context.Context, owner string) ([]approval.Passkey, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: list passkeys: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []approval.Passkey
	for _, id := range s.passkeyOrder {
		if p := s.passkeys[id]; p.Owner == owner {
			out = append(out, *p.Clone())
		}
	}
	return slices.Clip(out), nil
}

// RevokePasskey implements approval.Passkeys.
func (s *Store) RevokePasskey(ctx context.Context, id string, at time.Time, by string, events []approval.AuditEvent) (*approval.Passkey, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: revoke passkey: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.passkeys[id]
	if !ok {
		return nil, fmt.Errorf("memstore: revoke passkey %.64q: %w", id, approval.ErrNotFound)
	}
	if !p.RevokedAt.IsZero() {
		return nil, fmt.Errorf("memstore: revoke passkey %.64q: revoked at %s: %w", id, p.RevokedAt.Format(time.RFC3339), approval.ErrConflict)
	}
	p.RevokedAt, p.RevokedBy = at.UTC(), by
	s.appendAudit(events)
	return p.Clone(), nil
}
