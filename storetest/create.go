package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// runRequestTests checks Create and Get.
func runRequestTests(t *testing.T, newStore func(t *testing.T) approval.Store) {
	// Get returns exactly what Create stored: every field, including times
	// to the microsecond, votes, policy snapshots and the action's optional
	// parts. Create returns the same.
	t.Run("create then get", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		for _, want := range []*approval.Request{newRequest(), fullRequest()} {
			stored, created, err := s.Create(t.Context(), want.Clone(), nil)
			require.NoError(t, err)
			require.True(t, created)
			require.Equal(t, want, stored)
			require.Equal(t, want, get(t, s, want.ID))
		}
	})

	// Get of an ID that was never stored returns an error wrapping
	// ErrNotFound.
	t.Run("get unknown id", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		create(t, s, newRequest())
		_, err := s.Get(t.Context(), newID())
		require.ErrorIs(t, err, approval.ErrNotFound)
		for _, id := range oddText {
			_, err := s.Get(t.Context(), id)
			require.ErrorIs(t, err, approval.ErrNotFound, "Get(%q)", id)
		}
	})

	// A store either keeps text exactly or refuses it: a request holding
	// a string that is not valid UTF-8 is stored and read back unchanged,
	// or Create fails and stores nothing (no request, no event).
	t.Run("create text kept or refused", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		in := newRequest()
		in.Reason = "bo\xeete"
		in.Action.Metadata = map[string]string{"note": "\xff"}
		_, _, err := s.Create(t.Context(), in, []approval.AuditEvent{event(in.ID, approval.EventRequestCreated, "alice")})
		if err != nil {
			_, gerr := s.Get(t.Context(), in.ID)
			require.ErrorIs(t, gerr, approval.ErrNotFound, "Create failed (%v) but stored the request", err)
			require.Empty(t, fullTrail(t, s))
			return
		}
		require.Equal(t, in, get(t, s, in.ID))
	})

	// Create keeps its own copy: changing the request passed in, or the
	// one returned, afterwards does not change the stored request.
	t.Run("create copies the request", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		in := fullRequest()
		want := in.Clone()
		stored, _, err := s.Create(t.Context(), in, nil)
		require.NoError(t, err)
		scribble(in)
		scribble(stored)
		require.Equal(t, want, get(t, s, want.ID))
	})

	// Get returns a copy: changing it does not change the stored request.
	t.Run("get returns a copy", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		want := create(t, s, fullRequest()).Clone()
		scribble(get(t, s, want.ID))
		require.Equal(t, want, get(t, s, want.ID))
	})

	// Create of an ID that is already stored returns an error wrapping
	// ErrConflict and writes nothing: neither the request nor its events.
	t.Run("create duplicate id", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		first := create(t, s, newRequest(), event("", approval.EventRequestCreated, "alice"))
		dup := newRequest()
		dup.ID = first.ID
		dup.Action.RequestedBy = "mallory"
		_, _, err := s.Create(t.Context(), dup, []approval.AuditEvent{event(dup.ID, approval.EventRequestCreated, "mallory")})
		require.ErrorIs(t, err, approval.ErrConflict)
		require.Equal(t, first, get(t, s, first.ID))
		require.Len(t, fullTrail(t, s), 1)
		// The rejected request's ActionHash did not become live.
		again := newRequest()
		again.ActionHash = dup.ActionHash
		create(t, s, again)
	})

	// While a request for an ActionHash is not terminal (pending, escalated
	// or approved but not consumed), Create of the same ActionHash stores
	// nothing, appends no events, and returns that request with created ==
	// false.
	t.Run("create deduplicates live action", func(t *testing.T) {
		t.Parallel()
		for _, status := range []approval.Status{approval.StatusPending, approval.StatusEscalated, approval.StatusApproved} {
			t.Run(string(status), func(t *testing.T) {
				t.Parallel()
				s := newStore(t)
				first := create(t, s, newRequest(), event("", approval.EventRequestCreated, "alice"))
				if status != approval.StatusPending {
					first = update(t, s, first.ID, func(r *approval.Request) { r.Status = status })
				}
				before := fullTrail(t, s)

				second := newRequest()
				second.ActionHash = first.ActionHash
				stored, created, err := s.Create(t.Context(), second, []approval.AuditEvent{event(second.ID, approval.EventRequestCreated, "alice")})
				require.NoError(t, err)
				require.False(t, created)
				require.Equal(t, first, stored)
				scribble(stored) // a copy, like every request a store returns
				require.Equal(t, first, get(t, s, first.ID))
				_, err = s.Get(t.Context(), second.ID)
				require.ErrorIs(t, err, approval.ErrNotFound)
				require.Equal(t, before, fullTrail(t, s))
			})
		}
	})

	// A request created terminal (an action a deny policy refused) is stored
	// even while a live request for its ActionHash exists, and does not
	// displace it.
	t.Run("create terminal beside live", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		live := create(t, s, newRequest())
		denied := newRequest()
		denied.ActionHash = live.ActionHash
		denied.Status = approval.StatusDenied
		stored, created, err := s.Create(t.Context(), denied, nil)
		require.NoError(t, err)
		require.True(t, created)
		require.Equal(t, denied, stored)
		require.Equal(t, denied, get(t, s, denied.ID))

		again := newRequest()
		again.ActionHash = live.ActionHash
		stored, created, err = s.Create(t.Context(), again, nil)
		require.NoError(t, err)
		require.False(t, created)
		require.Equal(t, live.ID, stored.ID)
	})

	// Once the request for an ActionHash is terminal, Create of the same
	// ActionHash stores a new request, which then blocks the next one.
	t.Run("create after terminal", func(t *testing.T) {
		t.Parallel()
		for _, status := range []approval.Status{
			approval.StatusDenied, approval.StatusCancelled, approval.StatusTimedOut,
			approval.StatusConsumed, approval.StatusExpired,
		} {
			t.Run(string(status), func(t *testing.T) {
				t.Parallel()
				s := newStore(t)
				first := create(t, s, newRequest())
				update(t, s, first.ID, func(r *approval.Request) { r.Status = status })

				second := newRequest()
				second.ActionHash = first.ActionHash
				stored, created, err := s.Create(t.Context(), second, nil)
				require.NoError(t, err)
				require.True(t, created)
				require.Equal(t, second, stored)

				third := newRequest()
				third.ActionHash = first.ActionHash
				stored, created, err = s.Create(t.Context(), third, nil)
				require.NoError(t, err)
				require.False(t, created)
				require.Equal(t, second.ID, stored.ID)
			})
		}
	})

	// A request that ended with a HoldUntil (a person denied it, or it
	// timed out) holds its action: until HoldUntil, Create of a live
	// request for that ActionHash stores nothing and returns the held
	// request. The hold is compared with the new request's CreatedAt.
	t.Run("create returns a held request", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		first := create(t, s, newRequest())
		held := update(t, s, first.ID, func(r *approval.Request) {
			r.Status, r.Reason = approval.StatusDenied, "denied by bob: no"
			r.HoldUntil = r.CreatedAt.Add(time.Hour)
		})
		for _, at := range []time.Duration{0, time.Minute, time.Hour - time.Microsecond} {
			again := newRequest()
			again.ActionHash = first.ActionHash
			again.CreatedAt = first.CreatedAt.Add(at)
			stored, created, err := s.Create(t.Context(), again, []approval.AuditEvent{event(again.ID, approval.EventRequestCreated, "alice")})
			require.NoError(t, err)
			require.False(t, created, "held %s after", at)
			require.Equal(t, held, stored)
			_, err = s.Get(t.Context(), again.ID)
			require.ErrorIs(t, err, approval.ErrNotFound, "nothing stored")
		}
		require.Empty(t, fullTrail(t, s), "no event appended")

		// A terminal request (a deny policy's refusal) is stored anyway.
		refused := newRequest()
		refused.ActionHash, refused.Status = first.ActionHash, approval.StatusDenied
		create(t, s, refused)

		// At HoldUntil the hold has ended.
		after := newRequest()
		after.ActionHash = first.ActionHash
		after.CreatedAt = held.HoldUntil
		stored, created, err := s.Create(t.Context(), after, nil)
		require.NoError(t, err)
		require.True(t, created)
		require.Equal(t, after, stored)
	})

	// Of several holds of one action the latest is returned; a live
	// request comes before any hold.
	t.Run("create returns the latest hold", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		base := now()
		hold := func(createdAt time.Time, until time.Duration, status approval.Status) *approval.Request {
			r := newRequest()
			r.ActionHash = "held-" + t.Name()
			r.CreatedAt, r.UpdatedAt = createdAt, createdAt
			create(t, s, r)
			return update(t, s, r.ID, func(r *approval.Request) { r.Status, r.HoldUntil = status, createdAt.Add(until) })
		}
		hold(base, time.Minute, approval.StatusDenied)
		second := hold(base.Add(2*time.Minute), time.Hour, approval.StatusTimedOut)
		probe := newRequest()
		probe.ActionHash, probe.CreatedAt = second.ActionHash, base.Add(3*time.Minute)
		stored, created, err := s.Create(t.Context(), probe, nil)
		require.NoError(t, err)
		require.False(t, created)
		require.Equal(t, second.ID, stored.ID)
	})

	// Concurrent Creates of a held action all return the hold.
	t.Run("create concurrent held action", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		first := create(t, s, newRequest())
		update(t, s, first.ID, func(r *approval.Request) { r.Status, r.HoldUntil = approval.StatusDenied, r.CreatedAt.Add(time.Hour) })
		var wg sync.WaitGroup
		errs := make([]error, 16)
		for i := range errs {
			wg.Go(func() {
				req := newRequest()
				req.ActionHash, req.CreatedAt = first.ActionHash, first.CreatedAt.Add(time.Second)
				stored, created, err := s.Create(t.Context(), req, nil)
				if err == nil && (created || stored.ID != first.ID) {
					err = fmt.Errorf("created %v, returned %s, want the hold %s", created, stored.ID, first.ID)
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for _, err := range errs {
			require.NoError(t, err)
		}
		require.Len(t, listAll(t, s, approval.RequestQuery{}), 1)
	})

	// A request created in a terminal status does not block a later
	// request for the same ActionHash.
	t.Run("create terminal does not block", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		denied := newRequest()
		denied.Status = approval.StatusDenied
		create(t, s, denied)
		next := newRequest()
		next.ActionHash = denied.ActionHash
		create(t, s, next)
	})

	// Concurrent Creates of one ActionHash create exactly one request; every
	// other call returns that request with created == false, and only the
	// winner's events reach the trail.
	t.Run("create concurrent same action", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		const n = 32
		hash := newRequest().ActionHash
		type result struct {
			id, storedID string
			created      bool
			err          error
		}
		results := make([]result, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				req := newRequest()
				req.ActionHash = hash
				<-start
				stored, created, err := s.Create(t.Context(), req, []approval.AuditEvent{event(req.ID, approval.EventRequestCreated, "alice")})
				results[i] = result{id: req.ID, created: created, err: err}
				if err == nil {
					results[i].storedID = stored.ID
				}
			})
		}
		close(start)
		wg.Wait()

		var winner string
		for _, r := range results {
			require.NoError(t, r.err)
			if r.created {
				require.Empty(t, winner, "two Creates of one action both created a request")
				winner = r.id
			}
		}
		require.NotEmpty(t, winner, "no Create created a request")
		for _, r := range results {
			require.Equal(t, winner, r.storedID)
		}
		all := listAll(t, s, approval.RequestQuery{})
		require.Equal(t, []string{winner}, ids(all))
		events := fullTrail(t, s)
		require.Len(t, events, 1)
		require.Equal(t, winner, events[0].RequestID)
	})
}

// scribble changes every part of r that a store might share with its own
// copy, to catch aliasing.
func scribble(r *approval.Request) {
	r.Status = approval.StatusCancelled
	r.Action.Name = "scribbled"
	if r.Action.Cost != nil {
		r.Action.Cost.Amount = -1
	}
	if len(r.Action.Tags) > 0 {
		r.Action.Tags[0] = "scribbled"
	}
	for k := range r.Action.Metadata {
		r.Action.Metadata[k] = "scribbled"
	}
	r.Action.Metadata = map[string]string{"scribbled": "yes"}
	if len(r.Action.Constraints) > 0 {
		r.Action.Constraints[0] = "scribbled"
	}
	if len(r.Action.Payload) > 0 {
		r.Action.Payload[0] = 'X'
	}
	if r.Action.Provenance != nil {
		r.Action.Provenance.Source = "scribbled"
	}
	if len(r.Action.Diff) > 0 {
		r.Action.Diff[0].Path = "scribbled"
		if len(r.Action.Diff[0].Hunks) > 0 {
			r.Action.Diff[0].Hunks[0].Body = "scribbled"
		}
	}
	for i := range r.Policies {
		p := &r.Policies[i]
		p.Name = "scribbled"
		if len(p.Approvers) > 0 {
			p.Approvers[0] = approval.User("scribbled")
		}
		if len(p.Escalation) > 0 && len(p.Escalation[0].To) > 0 {
			p.Escalation[0].To[0] = approval.User("scribbled")
		}
		if len(p.Chain) > 0 && len(p.Chain[0].Approvers) > 0 {
			p.Chain[0].Approvers[0] = approval.User("scribbled")
		}
		if len(p.Progress.Members) > 1 && len(p.Progress.Members[1]) > 0 {
			p.Progress.Members[1][0] = "scribbled"
		}
	}
	for i := range r.Votes {
		r.Votes[i].Approver = "scribbled"
		if len(r.Votes[i].Policies) > 0 {
			r.Votes[i].Policies[0] = "scribbled"
		}
	}
	r.Votes = append(r.Votes, approval.Vote{Approver: "scribbled"})
	r.Version = 99
}
