package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// keyed returns a valid pending request with a fresh ID and ActionHash and
// the idempotency key k.
func keyed(k string) *approval.Request {
	r := newRequest()
	r.Action.IdempotencyKey = k
	return r
}

// runIdempotencyTests checks the optional approval.IdempotencyKeys and
// approval.PriorRuns capabilities, on stores that have them.
func runIdempotencyTests(t *testing.T, newStore func(t *testing.T) approval.Store) {
	keys := func(t *testing.T) (approval.IdempotencyKeys, approval.Store) {
		t.Helper()
		s := newStore(t)
		ks, ok := s.(approval.IdempotencyKeys)
		if !ok {
			t.Skip("the store does not implement approval.IdempotencyKeys")
		}
		return ks, s
	}

	// A live request with an idempotency key blocks its key, whatever the
	// ActionHash: Create of a live request with the key stores nothing and
	// returns it. Requests with other keys, or none, are other actions
	// even with the same ActionHash, both ways.
	t.Run("create deduplicates live key", func(t *testing.T) {
		t.Parallel()
		for _, status := range []approval.Status{approval.StatusPending, approval.StatusEscalated, approval.StatusApproved} {
			t.Run(string(status), func(t *testing.T) {
				t.Parallel()
				_, s := keys(t)
				plain := create(t, s, newRequest())
				first := create(t, s, keyed("pay-1"), event("", approval.EventRequestCreated, "alice"))
				if status != approval.StatusPending {
					first = update(t, s, first.ID, func(r *approval.Request) { r.Status = status })
				}
				before := fullTrail(t, s)

				other := keyed("pay-1") // another ActionHash
				stored, created, err := s.Create(t.Context(), other, []approval.AuditEvent{event(other.ID, approval.EventRequestCreated, "alice")})
				require.NoError(t, err)
				require.False(t, created)
				require.Equal(t, first, stored)
				_, err = s.Get(t.Context(), other.ID)
				require.ErrorIs(t, err, approval.ErrNotFound)
				require.Equal(t, before, fullTrail(t, s))

				sameBytes := keyed("pay-2")
				sameBytes.ActionHash = first.ActionHash
				create(t, s, sameBytes)
				unkeyed := newRequest()
				unkeyed.ActionHash = first.ActionHash
				create(t, s, unkeyed)
				keyedPlain := keyed("pay-3")
				keyedPlain.ActionHash = plain.ActionHash
				create(t, s, keyedPlain)
			})
		}
	})

	// A request with a key that ended with a HoldUntil (a denial, or an
	// approval a Guard consumed under the key) holds its key: until
	// HoldUntil, Create of a live request with the key, whatever its
	// ActionHash, stores nothing and returns it. It holds no request
	// without the key, and a terminal request is stored anyway.
	t.Run("create returns a request held by key", func(t *testing.T) {
		t.Parallel()
		_, s := keys(t)
		first := create(t, s, keyed("pay-1"))
		held := update(t, s, first.ID, func(r *approval.Request) {
			r.Status, r.Uses = approval.StatusConsumed, 1
			r.HoldUntil = r.CreatedAt.Add(time.Hour)
		})
		for _, hash := range []string{first.ActionHash, randomHex() + randomHex()} {
			again := keyed("pay-1")
			again.ActionHash = hash
			again.CreatedAt = first.CreatedAt.Add(time.Minute)
			stored, created, err := s.Create(t.Context(), again, nil)
			require.NoError(t, err)
			require.False(t, created)
			require.Equal(t, held, stored)
		}
		unkeyed := newRequest()
		unkeyed.ActionHash = first.ActionHash
		create(t, s, unkeyed)
		refused := keyed("pay-1")
		refused.Status = approval.StatusDenied
		create(t, s, refused)

		after := keyed("pay-1")
		after.ActionHash, after.CreatedAt = first.ActionHash, held.HoldUntil
		create(t, s, after)
	})

	// RequestByIdempotencyKey returns the request Create would return
	// for the key: the live one, or else the latest hold after the time
	// given; an error wrapping ErrNotFound when no request holds the key
	// (none has it, it ended without a hold, or its hold has passed). It
	// returns a copy.
	t.Run("request by idempotency key", func(t *testing.T) {
		t.Parallel()
		ks, s := keys(t)
		ctx := t.Context()
		notFound := func(key string, at time.Time) {
			t.Helper()
			_, err := ks.RequestByIdempotencyKey(ctx, key, at)
			require.ErrorIs(t, err, approval.ErrNotFound, "key %q", key)
		}
		base := now()
		for _, k := range append([]string{"pay-1", ""}, oddText...) {
			notFound(k, base)
		}
		create(t, s, newRequest()) // no key

		first := create(t, s, keyed("pay-1"))
		got, err := ks.RequestByIdempotencyKey(ctx, "pay-1", base)
		require.NoError(t, err)
		require.Equal(t, first, got)
		scribble(got)
		require.Equal(t, first, get(t, s, first.ID))
		notFound("pay-2", base)
		notFound("PAY-1", base)

		update(t, s, first.ID, func(r *approval.Request) { r.Status = approval.StatusCancelled })
		notFound("pay-1", base)

		second := create(t, s, keyed("pay-1"))
		held := update(t, s, second.ID, func(r *approval.Request) {
			r.Status, r.HoldUntil = approval.StatusDenied, base.Add(time.Hour)
		})
		got, err = ks.RequestByIdempotencyKey(ctx, "pay-1", base.Add(time.Minute))
		require.NoError(t, err)
		require.Equal(t, held, got)
		notFound("pay-1", held.HoldUntil)

		// A live request comes before any hold.
		third := keyed("pay-1")
		third.CreatedAt = held.HoldUntil
		create(t, s, third)
		got, err = ks.RequestByIdempotencyKey(ctx, "pay-1", base.Add(time.Minute))
		require.NoError(t, err)
		require.Equal(t, third.ID, got.ID)
	})

	// Concurrent Creates with one key, each of another ActionHash, create
	// exactly one request; every other call returns it.
	t.Run("create concurrent same key", func(t *testing.T) {
		t.Parallel()
		_, s := keys(t)
		const n = 32
		ids := make([]string, n)
		createdBy := make([]bool, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				req := keyed("pay-1")
				<-start
				stored, created, err := s.Create(t.Context(), req, []approval.AuditEvent{event(req.ID, approval.EventRequestCreated, "alice")})
				errs[i], createdBy[i] = err, created
				if err == nil {
					ids[i] = stored.ID
				}
			})
		}
		close(start)
		wg.Wait()
		winners := 0
		for i := range n {
			require.NoError(t, errs[i])
			require.Equal(t, ids[0], ids[i])
			if createdBy[i] {
				winners++
			}
		}
		require.Equal(t, 1, winners)
		require.Len(t, listAll(t, s, approval.RequestQuery{}), 1)
		require.Len(t, fullTrail(t, s), 1)
	})

	// LastRun returns the consumed request of an ActionHash with the latest
	// UpdatedAt not before since, as its ID and UpdatedAt; false if there is
	// none. Requests in other statuses, or of other actions, are not runs.
	t.Run("last run", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		runs, ok := s.(approval.PriorRuns)
		if !ok {
			t.Skip("the store does not implement approval.PriorRuns")
		}
		ctx := t.Context()
		hash := randomHex() + randomHex()
		none := func(hash string, since time.Time) {
			t.Helper()
			run, found, err := runs.LastRun(ctx, hash, since)
			require.NoError(t, err)
			require.False(t, found, "found %+v", run)
		}
		base := now()
		none(hash, base.Add(-time.Hour))
		for _, h := range oddText {
			none(h, base)
		}
		ran := func(status approval.Status, at time.Time, hash string) *approval.Request {
			r := newRequest()
			r.ActionHash, r.CreatedAt, r.UpdatedAt = hash, at, at
			create(t, s, r)
			return update(t, s, r.ID, func(r *approval.Request) { r.Status, r.UpdatedAt, r.Uses = status, at.Add(time.Minute), 1 })
		}
		first := ran(approval.StatusConsumed, base, hash)
		ran(approval.StatusExpired, base.Add(time.Hour), hash)
		ran(approval.StatusConsumed, base.Add(2*time.Hour), randomHex()+randomHex())
		live := newRequest()
		live.ActionHash = hash
		create(t, s, live)

		run, found, err := runs.LastRun(ctx, hash, base.Add(-time.Hour))
		require.NoError(t, err)
		require.True(t, found)
		require.Equal(t, approval.PriorRun{RequestID: first.ID, At: first.UpdatedAt}, run)
		_, found, err = runs.LastRun(ctx, hash, first.UpdatedAt)
		require.NoError(t, err)
		require.True(t, found, "since is inclusive")
		none(hash, first.UpdatedAt.Add(time.Microsecond))

		update(t, s, live.ID, func(r *approval.Request) {
			r.Status, r.UpdatedAt, r.Uses = approval.StatusConsumed, base.Add(3*time.Hour), 1
		})
		run, found, err = runs.LastRun(ctx, hash, base)
		require.NoError(t, err)
		require.True(t, found)
		require.Equal(t, live.ID, run.RequestID, "the latest run")
		require.True(t, base.Add(3*time.Hour).Equal(run.At))
	})

	// A Create of many requests with keys, and without, keeps each key's
	// requests apart from the others.
	t.Run("create keys kept apart", func(t *testing.T) {
		t.Parallel()
		_, s := keys(t)
		hash := randomHex() + randomHex()
		for i := range 8 {
			r := keyed(fmt.Sprintf("pay-%d", i))
			r.ActionHash = hash
			create(t, s, r)
		}
		r := newRequest()
		r.ActionHash = hash
		create(t, s, r)
		require.Len(t, listAll(t, s, approval.RequestQuery{}), 9)
	})
}

// runIdempotencyGateTests drives two gates over the stores, on stores that
// implement approval.IdempotencyKeys: an action with a key runs once,
// however many Guards race, through however many gates.
func runIdempotencyGateTests(t *testing.T, newStores func(t *testing.T) (approval.Store, approval.Store)) {
	pair := func(t *testing.T) (*approval.Gate, *approval.Gate) {
		t.Helper()
		g1, g2 := newGatePair(t, func(t *testing.T) (approval.Store, approval.Store) {
			s1, s2 := newStores(t)
			if _, ok := s1.(approval.IdempotencyKeys); !ok {
				t.Skip("the store does not implement approval.IdempotencyKeys")
			}
			return s1, s2
		}, 3, 1)
		return g1, g2
	}
	approve := func(t *testing.T, g *approval.Gate, id string) {
		t.Helper()
		_, err := g.Decide(context.Background(), id, approval.Decision{Token: issue(t, g, id, "approver-01"), Verdict: approval.VerdictApprove})
		require.NoError(t, err)
	}
	payment := func() approval.Action {
		a := gateAction()
		a.IdempotencyKey = "storetest:INSTR-1"
		return a
	}
	// do runs approval.Do on a through g, counting the runs of its
	// function in runs.
	do := func(g *approval.Gate, a approval.Action, runs *atomic.Int32) (approval.Result, error) {
		return approval.Do(context.Background(), g, a, approval.DoOptions{}, func(context.Context, approval.Result) error {
			runs.Add(1)
			return nil
		})
	}

	t.Run("gate: an action runs once under its idempotency key", func(t *testing.T) {
		// Approved once, a payment is let run by one of 16 racing Do
		// calls through two gates; every other call, and two more racing
		// calls after it ran, learn that it ran (ErrAlreadyRan, the
		// request's ID and artifact). No new request is opened.
		t.Parallel()
		g1, g2 := pair(t)
		ctx := context.Background()
		id := guardPending(t, g1) // the same bytes without a key: a request of their own
		res, err := g1.Guard(ctx, payment())
		require.NoError(t, err)
		require.Equal(t, approval.OutcomePending, res.Status)
		require.NotEqual(t, id, res.RequestID, "a key keeps its request apart from the same bytes without one")
		id = res.RequestID
		approve(t, g2, id)

		var runs atomic.Int32
		race := func(n int) []error {
			errs := make([]error, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				g := g1
				if i%2 == 1 {
					g = g2
				}
				wg.Go(func() {
					<-start
					res, err := do(g, payment(), &runs)
					if err == nil || errors.Is(err, approval.ErrAlreadyRan) {
						if res.RequestID != id || len(res.Artifact) == 0 {
							err = fmt.Errorf("result %+v, want request %s with its artifact: %w", res, id, err)
						}
					}
					errs[i] = err
				})
			}
			close(start)
			wg.Wait()
			return errs
		}
		ran := 0
		for _, err := range race(16) {
			if err == nil {
				ran++
				continue
			}
			require.ErrorIs(t, err, approval.ErrAlreadyRan)
		}
		require.Equal(t, 1, ran)
		for _, err := range race(2) {
			require.ErrorIs(t, err, approval.ErrAlreadyRan)
		}
		require.EqualValues(t, 1, runs.Load(), "the function ran once")

		r, err := g2.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, approval.StatusConsumed, r.Status)
		page, err := g1.List(ctx, approval.RequestQuery{})
		require.NoError(t, err)
		require.Len(t, page.Requests, 2, "the keyless request and the payment's, nothing more")
		audit, err := g1.ListAudit(ctx, approval.AuditQuery{RequestID: id, Type: approval.EventRequestDeduplicated})
		require.NoError(t, err)
		require.Len(t, audit.Events, 17, "every answer from the earlier outcome is audited")
		require.Contains(t, audit.Events[0].Reason, "already ran")
		verifyTrail(t, g1)
	})

	t.Run("gate: an idempotency key reused with another action is refused", func(t *testing.T) {
		// While the key's request is open, and after it ran, a Guard with
		// the key and other bytes is ErrInvalidAction naming the key and
		// the request; the bytes under another key are a request of their
		// own.
		t.Parallel()
		g1, g2 := pair(t)
		ctx := context.Background()
		res, err := g1.Guard(ctx, payment())
		require.NoError(t, err)
		id := res.RequestID
		other := payment()
		other.Payload = []byte(`{"amount":9000}`)
		for _, g := range []*approval.Gate{g2, g1} {
			res, err = g.Guard(ctx, other)
			require.ErrorIs(t, err, approval.ErrInvalidAction)
			require.ErrorContains(t, err, "storetest:INSTR-1")
			require.ErrorContains(t, err, id)
			require.Equal(t, approval.OutcomeDenied, res.Status)
		}
		approve(t, g1, id)
		var runs atomic.Int32
		_, err = do(g2, payment(), &runs)
		require.NoError(t, err)
		_, err = do(g1, other, &runs)
		require.ErrorIs(t, err, approval.ErrInvalidAction)
		require.EqualValues(t, 1, runs.Load())

		other.IdempotencyKey = "storetest:INSTR-2"
		res, err = g2.Guard(ctx, other)
		require.NoError(t, err)
		require.Equal(t, approval.OutcomePending, res.Status)
		verifyTrail(t, g1)
	})

	t.Run("gate: a new request for an action that ran says so", func(t *testing.T) {
		// Once an action ran, a new request for the identical action, with
		// no key or another one, names the earlier request and when it ran
		// (Request.Prior), whichever gate creates it.
		t.Parallel()
		g1, g2 := pair(t)
		ctx := context.Background()
		first := guardPending(t, g1)
		r, err := g1.Get(ctx, first)
		require.NoError(t, err)
		require.Nil(t, r.Prior, "nothing ran before")
		approve(t, g1, first)
		res, err := g1.Guard(ctx, gateAction())
		require.NoError(t, err)
		require.Equal(t, approval.OutcomeApproved, res.Status)
		ran, err := g1.Get(ctx, first)
		require.NoError(t, err)

		for _, a := range []approval.Action{gateAction(), payment()} {
			res, err = g2.Guard(ctx, a)
			require.NoError(t, err)
			require.Equal(t, approval.OutcomePending, res.Status)
			r, err = g2.Get(ctx, res.RequestID)
			require.NoError(t, err)
			require.NotNil(t, r.Prior)
			require.Equal(t, first, r.Prior.RequestID)
			require.True(t, ran.UpdatedAt.Equal(r.Prior.At), "ran at %s, prior says %s", ran.UpdatedAt, r.Prior.At)
		}
	})
}
