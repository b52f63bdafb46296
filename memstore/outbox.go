package memstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/signoff/approval"
)

// The outbox (approval.Outbox) lives in memory with everything else, so
// it keeps notifications across failures of their channels, not across a
// restart of the process. Its messages are kept until delivered or, dead,
// until redriven; they are not subject to the retention of requests.

// checkNew reports whether msgs can be added: IDs new and unique. s.mu
// must be held.
func (s *Store) checkNew(msgs []approval.OutboxMessage) error {
	for i, m := range msgs {
		if m.ID == "" {
			return fmt.Errorf("outbox message without an ID: %w", approval.ErrConflict)
		}
		if _, ok := s.outbox[m.ID]; ok {
			return fmt.Errorf("outbox message %s exists: %w", m.ID, approval.ErrConflict)
		}
		for _, o := range msgs[:i] {
			if o.ID == m.ID {
				return fmt.Errorf("outbox message %s given twice: %w", m.ID, approval.ErrConflict)
			}
		}
	}
	return nil
}

// addOutbox stores copies of msgs. s.mu must be held, after checkNew.
func (s *Store) addOutbox(msgs []approval.OutboxMessage) {
	for i := range msgs {
		m := cloneMessage(&msgs[i])
		if m.State == "" {
			m.State = approval.OutboxPending
		}
		s.outbox[m.ID] = m
	}
}

func cloneMessage(m *approval.OutboxMessage) *approval.OutboxMessage {
	c := *m
	c.Body = slices.Clone(m.Body)
	return &c
}

// ClaimOutbox implements approval.Outbox.
func (s *Store) ClaimOutbox(ctx context.Context, q approval.OutboxClaim) ([]approval.OutboxMessage, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: claim outbox: %w", err)
	}
	limit := approval.PageSize(q.Limit)
	s.mu.Lock()
	defer s.mu.Unlock()
	var due []*approval.OutboxMessage
	for _, m := range s.outbox {
		if m.State == approval.OutboxPending && m.Channel == q.Channel && !m.NextAttempt.After(q.Now) && !m.LeaseUntil.After(q.Now) &&
			(q.Recipient == "" || m.Recipient == q.Recipient) {
			due = append(due, m)
		}
	}
	slices.SortFunc(due, func(a, b *approval.OutboxMessage) int {
		if c := a.NextAttempt.Compare(b.NextAttempt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	due = due[:min(len(due), limit)]
	out := make([]approval.OutboxMessage, len(due))
	for i, m := range due {
		m.LeaseOwner, m.LeaseUntil = q.Owner, q.Now.Add(q.Lease)
		out[i] = *cloneMessage(m)
	}
	return out, nil
}

// SettleOutbox implements approval.Outbox.
func (s *Store) SettleOutbox(ctx context.Context, st approval.OutboxSettle) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: settle outbox %s: %w", st.ID, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.outbox[st.ID]
	if !ok {
		return fmt.Errorf("memstore: settle outbox %s: %w", st.ID, approval.ErrNotFound)
	}
	if m.State != approval.OutboxPending || m.LeaseOwner != st.Owner {
		return fmt.Errorf("memstore: settle outbox %s: not leased by %s: %w", st.ID, st.Owner, approval.ErrConflict)
	}
	if err := s.checkNew(st.Add); err != nil {
		return fmt.Errorf("memstore: settle outbox %s: %w", st.ID, err)
	}
	switch st.Outcome {
	case approval.OutboxDone:
		delete(s.outbox, st.ID)
	case approval.OutboxRetry:
		m.Attempts, m.NextAttempt, m.LastError = st.Attempts, st.NextAttempt, st.LastError
		m.LeaseOwner, m.LeaseUntil = "", time.Time{}
	case approval.OutboxDeadLetter:
		m.State, m.Attempts, m.LastError = approval.OutboxDead, st.Attempts, st.LastError
		m.LeaseOwner, m.LeaseUntil = "", time.Time{}
	default:
		return fmt.Errorf("memstore: settle outbox %s: unknown outcome %d", st.ID, st.Outcome)
	}
	s.addOutbox(st.Add)
	s.appendAudit(st.Events)
	return nil
}

// ListOutbox implements approval.Outbox. The cursor is the ID of the last
// message of the previous page.
func (s *Store) ListOutbox(ctx context.Context, q approval.OutboxQuery) (approval.OutboxPage, error) {
	if err := ctx.Err(); err != nil {
		return approval.OutboxPage{}, fmt.Errorf("memstore: list outbox: %w", err)
	}
	limit := approval.PageSize(q.Limit)
	s.mu.Lock()
	defer s.mu.Unlock()
	if q.Cursor != "" {
		if _, ok := s.outbox[q.Cursor]; !ok && !s.outboxCursor(q.Cursor) {
			return approval.OutboxPage{}, fmt.Errorf("memstore: list outbox: %w %.64q (pass OutboxPage.Next)", approval.ErrInvalidCursor, q.Cursor)
		}
	}
	var sel []*approval.OutboxMessage
	for _, m := range s.outbox {
		if (q.State == "" || m.State == q.State) && (q.Channel == "" || m.Channel == q.Channel) &&
			(q.RequestID == "" || m.RequestID == q.RequestID) && m.ID > q.Cursor {
			sel = append(sel, m)
		}
	}
	slices.SortFunc(sel, func(a, b *approval.OutboxMessage) int { return cmp.Compare(a.ID, b.ID) })
	var page approval.OutboxPage
	if len(sel) > limit {
		sel = sel[:limit]
		page.Next = sel[limit-1].ID
	}
	for _, m := range sel {
		page.Messages = append(page.Messages, *cloneMessage(m))
	}
	return page, nil
}

// outboxCursor reports whether c has the shape of a message ID the gate
// makes (a cursor may name a message delivered since).
func (s *Store) outboxCursor(c string) bool {
	return len(c) == 36 && c[8] == '-' && c[13] == '-' && c[18] == '-' && c[23] == '-'
}

// RedriveOutbox implements approval.Outbox.
func (s *Store) RedriveOutbox(ctx context.Context, id string, now time.Time, ev *approval.AuditEvent) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: redrive %s: %w", id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.outbox[id]
	if !ok || m.State != approval.OutboxDead {
		return fmt.Errorf("memstore: redrive %.64q: no such dead letter: %w", id, approval.ErrNotFound)
	}
	m.State, m.Attempts, m.NextAttempt = approval.OutboxPending, 0, now
	m.LeaseOwner, m.LeaseUntil = "", time.Time{}
	if ev != nil {
		ev.RequestID = m.RequestID
		evs := []approval.AuditEvent{*ev}
		s.appendAudit(evs)
		*ev = evs[0]
	}
	return nil
}
