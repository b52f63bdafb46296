package memstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/signoff/approval"
)

var _ approval.OperatorStats = (*Store)(nil)

// statsSkew is how far before Resolutions' since the backward walk of the
// trail goes on: events are appended in order, but their times come from
// the gates' clocks, which may disagree by this much.
const statsSkew = time.Hour

// OpenByPolicy implements approval.OperatorStats, from the index of open
// requests.
func (s *Store) OpenByPolicy(ctx context.Context) ([]approval.PolicyOpen, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: open by policy: %w", err)
	}
	by := map[string]*approval.PolicyOpen{}
	s.mu.Lock()
	s.open.Ascend(func(id string) bool {
		r := s.requests[id]
		if r == nil || !r.Status.Open() {
			return true
		}
		for _, p := range r.Policies {
			o := by[p.Name]
			if o == nil {
				o = &approval.PolicyOpen{Policy: p.Name, Oldest: r.CreatedAt}
				by[p.Name] = o
			}
			o.Count++
			if r.CreatedAt.Before(o.Oldest) {
				o.Oldest = r.CreatedAt
			}
		}
		return true
	})
	s.mu.Unlock()
	out := make([]approval.PolicyOpen, 0, len(by))
	for _, o := range by {
		out = append(out, *o)
	}
	slices.SortFunc(out, func(a, b approval.PolicyOpen) int { return strings.Compare(a.Policy, b.Policy) })
	return out, nil
}

// Resolutions implements approval.OperatorStats from the trail alone (the
// policies the resolution event names, the request.created event's time),
// so that requests retention dropped still count. It walks the trail back
// from its end until an hour before since (see statsSkew), copying the
// resolutions under the lock and calling fn without it.
func (s *Store) Resolutions(ctx context.Context, since time.Time, fn func(approval.Resolution) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: resolutions: %w", err)
	}
	var out []approval.Resolution
	stop := since.Add(-statsSkew)
	s.mu.Lock()
	for i := s.auditLen - 1; i >= s.auditBase; i-- {
		e := s.event(i)
		if e.At.Before(stop) {
			break
		}
		switch e.Type {
		case approval.EventRequestApproved, approval.EventRequestDenied, approval.EventRequestTimedOut, approval.EventRequestCancelled:
		default:
			continue
		}
		if e.At.Before(since) {
			continue
		}
		// The request may have been dropped (retention): its creation
		// time is its first event's, which the trail keeps longer.
		idx := s.reqEvents[e.RequestID]
		if len(idx) == 0 || idx[0] < s.auditBase {
			continue
		}
		created := s.event(idx[0])
		if created.Type != approval.EventRequestCreated {
			continue
		}
		for _, p := range e.Policies {
			out = append(out, approval.Resolution{RequestID: e.RequestID, Policy: p.Name, Event: e.Type, CreatedAt: created.At, At: e.At})
		}
	}
	s.mu.Unlock()
	for _, r := range out {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// OutboxByChannel implements approval.OperatorStats, walking the outbox
// (which holds only pending messages and dead letters).
func (s *Store) OutboxByChannel(ctx context.Context) ([]approval.ChannelHealth, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: outbox by channel: %w", err)
	}
	s.mu.Lock()
	msgs := make([]approval.OutboxMessage, 0, len(s.outbox))
	for _, m := range s.outbox {
		msgs = append(msgs, *m)
	}
	s.mu.Unlock()
	return approval.ChannelHealths(slices.Values(msgs)), nil
}
