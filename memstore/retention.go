package memstore

import (
	"container/heap"
	"context"
	"slices"
	"time"

	"github.com/signoff/approval"
)

// DefaultRetention is how long a Store keeps a request after it ended
// (denied, cancelled, timed out, consumed, expired), unless WithRetention
// says otherwise.
const DefaultRetention = 24 * time.Hour

// Option configures New.
type Option func(*Store)

// WithRetention sets how long a request is kept after it ended: after d,
// it and the IDs of the tokens its updates recorded are dropped, and Get, List
// and Update no longer find it. A request whose denial still holds its
// action (approval.Request.HoldUntil) is kept until the hold ends, however
// short d is. A negative d keeps every request. Defaults to
// DefaultRetention.
//
// The Store has no clock of its own: "now" is the latest CreatedAt or
// UpdatedAt among the requests it was given, so a gate with a test clock
// sees retention follow that clock. Dropped requests' audit events stay in
// the trail (see WithMaxAuditEvents).
func WithRetention(d time.Duration) Option {
	return func(s *Store) { s.retention = d }
}

// WithMaxAuditEvents bounds the audit trail to about the newest n events:
// when more are held, the oldest are dropped 1,024 at a time, so between n
// and n+1,024 are kept. The Store then implements approval.PrunedAudit, so
// approval.VerifyAuditTrail verifies the kept part from where it begins (and checks
// only the requests created after it begins against their events). The
// gate consumes an approval only while its request.approved event is
// kept: choose n so that an approval's events outlive its ApprovalTTL.
// n of 0 or
// less keeps every event, the default: the trail is the record, and a
// service that must keep it for long belongs on sqlstore.
func WithMaxAuditEvents(n int) Option {
	return func(s *Store) { s.maxAudit = int64(max(n, 0)) }
}

var _ approval.PrunedAudit = (*Store)(nil)

// AuditAnchor implements approval.PrunedAudit: the sequence number and
// hash of the newest event dropped, or 0 and "" if none was.
func (s *Store) AuditAnchor(ctx context.Context) (int64, string, error) {
	if err := ctx.Err(); err != nil {
		return 0, "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.auditBase, s.anchorHash, nil
}

// drop is a request due to be dropped at a time.
type drop struct {
	at time.Time
	id string
}

// dropQueue is a min-heap of drops by time.
type dropQueue []drop

func (q dropQueue) Len() int           { return len(q) }
func (q dropQueue) Less(i, j int) bool { return q[i].at.Before(q[j].at) }
func (q dropQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *dropQueue) Push(x any)        { *q = append(*q, x.(drop)) }
func (q *dropQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

// dropAt returns when a terminal request may be dropped.
func (s *Store) dropAt(r *approval.Request) time.Time {
	end := r.UpdatedAt
	if end.IsZero() {
		end = r.CreatedAt
	}
	at := end.Add(s.retention)
	if r.HoldUntil.After(at) {
		at = r.HoldUntil
	}
	return at
}

// observe advances the Store's clock to t and drops what is due. s.mu must
// be held.
func (s *Store) observe(t time.Time) {
	if t.After(s.clock) {
		s.clock = t
	}
	for len(s.drops) > 0 && !s.drops[0].at.After(s.clock) {
		d := heap.Pop(&s.drops).(drop)
		r, ok := s.requests[d.id]
		// A request revived, or ended again later, has its own entry.
		if ok && r.Status.Terminal() && !s.dropAt(r).After(s.clock) {
			s.dropRequest(r)
		}
	}
}

// ended schedules the drop of r, which just became terminal.
func (s *Store) ended(r *approval.Request) {
	if s.retention >= 0 {
		heap.Push(&s.drops, drop{at: s.dropAt(r), id: r.ID})
	}
}

// dropRequest forgets r. s.ids keeps its ID until enough are dropped to
// compact it in one pass.
func (s *Store) dropRequest(r *approval.Request) {
	delete(s.requests, r.ID)
	for _, tok := range s.reqTokens[r.ID] {
		delete(s.tokens, tok)
	}
	delete(s.reqTokens, r.ID)
	if k := keyOf(r); s.held[k] == r.ID {
		delete(s.held, k)
	}
	if s.ran[r.ActionHash] == r.ID {
		delete(s.ran, r.ActionHash)
	}
	s.droppedIDs++
	if s.droppedIDs > 1024 && s.droppedIDs > len(s.ids)/2 {
		kept := s.ids[:0]
		for _, id := range s.ids {
			if _, ok := s.requests[id]; ok {
				kept = append(kept, id)
			}
		}
		clear(s.ids[len(kept):])
		s.ids, s.droppedIDs = kept, 0
	}
}

// pruneAudit drops the oldest chunks of the trail beyond the bound. s.mu
// must be held.
func (s *Store) pruneAudit() {
	if s.maxAudit <= 0 {
		return
	}
	for s.auditLen-s.auditBase > s.maxAudit+auditChunk && len(s.audit) > 1 {
		s.anchorHash = s.audit[0][auditChunk-1].Hash
		s.auditBase += auditChunk
		for i := range s.audit[0] {
			id := s.audit[0][i].RequestID
			idx, ok := s.reqEvents[id]
			if !ok {
				continue
			}
			start, _ := slices.BinarySearch(idx, s.auditBase)
			if start == len(idx) {
				delete(s.reqEvents, id)
			} else if start > 0 {
				s.reqEvents[id] = slices.Delete(idx, 0, start)
			}
		}
		s.audit[0] = nil
		s.audit = s.audit[1:]
	}
}
