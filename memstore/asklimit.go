package memstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/signoff/approval"
)

// askState is one AskCheck key's state (approval.AskLimits).
type askState struct {
	open    map[string]struct{} // the requests counted open
	tat     time.Time           // the rate's theoretical arrival time
	audited time.Time           // the end of the refusal audit window
}

// CreateLimited implements approval.AskLimits: Create (with msgs, as
// CreateWithOutbox), the limits checked and taken under the same lock.
func (s *Store) CreateLimited(ctx context.Context, req *approval.Request, events []approval.AuditEvent, msgs []approval.OutboxMessage, limits []approval.AskCheck) (*approval.Request, bool, error) {
	return s.createWith(ctx, req, events, msgs, limits)
}

// admit checks limits for req, a request about to be stored, and takes
// them if every one allows. s.mu must be held.
func (s *Store) admit(req *approval.Request, limits []approval.AskCheck) error {
	if len(limits) == 0 {
		return nil
	}
	tats := make([]time.Time, len(limits))
	for i := range limits {
		c := &limits[i]
		st := s.asks[c.Key()]
		if st == nil {
			st = &askState{}
		}
		if n := len(st.open); c.Limit.MaxOpen > 0 && n >= c.Limit.MaxOpen {
			return &approval.AskLimitError{Check: *c, Open: n}
		}
		next, ok, retry := c.Take(st.tat, req.CreatedAt)
		if !ok {
			return &approval.AskLimitError{Check: *c, RetryAt: retry}
		}
		tats[i] = next
	}
	if s.asks == nil {
		s.asks = make(map[string]*askState)
		s.askKeys = make(map[string][]string)
	}
	for i := range limits {
		c := &limits[i]
		k := c.Key()
		st := s.asks[k]
		if st == nil {
			st = &askState{open: make(map[string]struct{})}
			s.asks[k] = st
		}
		st.tat = tats[i]
		if c.Limit.MaxOpen > 0 {
			st.open[req.ID] = struct{}{}
			s.askKeys[req.ID] = append(s.askKeys[req.ID], k)
		}
	}
	return nil
}

// release stops counting request id open under its keys, and forgets a
// key's state once it holds nothing a later check needs. s.mu must be
// held.
func (s *Store) release(id string, now time.Time) {
	for _, k := range s.askKeys[id] {
		st := s.asks[k]
		delete(st.open, id)
		if len(st.open) == 0 && !st.tat.After(now) && !st.audited.After(now) {
			delete(s.asks, k)
		}
	}
	delete(s.askKeys, id)
}

// RecordAskRefusal implements approval.AskLimits.
func (s *Store) RecordAskRefusal(ctx context.Context, key string, now, until time.Time, events []approval.AuditEvent) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("memstore: record ask refusal: %w", err)
	}
	if key == "" {
		return false, errors.New("memstore: record ask refusal: empty key")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.asks[key]
	if st != nil && st.audited.After(now) {
		return false, nil
	}
	if st == nil {
		if s.asks == nil {
			s.asks = make(map[string]*askState)
			s.askKeys = make(map[string][]string)
		}
		st = &askState{open: make(map[string]struct{})}
		s.asks[key] = st
	}
	st.audited = until
	s.appendAudit(events)
	return true, nil
}
