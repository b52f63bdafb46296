package sqlstore

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// twoStores opens two Stores, each with its own connection pool, on one new
// database: what two processes of one service would have.
func twoStores(t *testing.T, newDSN func(testing.TB) string, opts ...Option) [2]*Store {
	dsn := newDSN(t)
	return [2]*Store{open(t, dsn, opts...), open(t, dsn, opts...)}
}

// TestConcurrentVotesTwoPools has 64 approvers vote on one request at once,
// half through each store, retrying on ErrConflict as the gate does: no vote
// may be lost or counted twice, and the audit trail stays one chain.
func TestConcurrentVotesTwoPools(t *testing.T) {
	t.Parallel()
	eachBackendPath(t, func(t *testing.T, newDSN func(testing.TB) string, opts []Option) {
		stores := twoStores(t, newDSN, opts...)
		ctx := t.Context()
		r := newRequest()
		_, _, err := stores[0].Create(ctx, r, []approval.AuditEvent{event(r.ID, approval.EventRequestCreated, "alice")})
		require.NoError(t, err)

		const voters = 64
		var conflicts atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, voters)
		for i := range voters {
			wg.Go(func() {
				s := stores[i%2]
				approver := fmt.Sprintf("approver-%02d", i)
				for {
					cur, err := s.Get(ctx, r.ID)
					if err != nil {
						errs <- err
						return
					}
					next := vote(cur, approver, "tok-"+approver)
					evs := []approval.AuditEvent{event(r.ID, approval.EventDecisionApprove, approver)}
					err = s.Update(ctx, approval.Update{Request: next, TokenID: "tok-" + approver, Events: evs})
					if errors.Is(err, approval.ErrConflict) {
						conflicts.Add(1)
						continue
					}
					errs <- err
					return
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		t.Logf("%d compare-and-set conflicts retried", conflicts.Load())

		for _, s := range stores {
			got, err := s.Get(ctx, r.ID)
			require.NoError(t, err)
			require.Len(t, got.Votes, voters)
			require.Equal(t, int64(voters+1), got.Version)
			seen := map[string]bool{}
			for _, v := range got.Votes {
				require.False(t, seen[v.Approver], "vote of %s counted twice", v.Approver)
				seen[v.Approver] = true
			}
			trail := fullTrail(t, s)
			require.Len(t, trail, voters+1)
		}
		page, err := stores[1].List(ctx, approval.RequestQuery{Approver: "approver-63"})
		require.NoError(t, err)
		require.Len(t, page.Requests, 1)
	})
}

// TestConcurrentCreateTwoPools has 32 goroutines, half on each store,
// create a request for the same action at once: exactly one is created and
// every caller gets it.
func TestConcurrentCreateTwoPools(t *testing.T) {
	t.Parallel()
	eachBackendPath(t, func(t *testing.T, newDSN func(testing.TB) string, opts []Option) {
		stores := twoStores(t, newDSN, opts...)
		ctx := t.Context()
		hash := randomHex()
		const callers = 32
		var created atomic.Int64
		ids := make([]string, callers)
		var wg sync.WaitGroup
		errs := make(chan error, callers)
		for i := range callers {
			wg.Go(func() {
				r := newRequest()
				r.ActionHash = hash
				got, ok, err := stores[i%2].Create(ctx, r, []approval.AuditEvent{event(r.ID, approval.EventRequestCreated, "alice")})
				if err != nil {
					errs <- err
					return
				}
				if ok {
					created.Add(1)
				}
				ids[i] = got.ID
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		require.Equal(t, int64(1), created.Load())
		for _, id := range ids {
			require.Equal(t, ids[0], id)
		}
		page, err := stores[0].List(ctx, approval.RequestQuery{})
		require.NoError(t, err)
		require.Len(t, page.Requests, 1)
		require.Len(t, fullTrail(t, stores[1]), 1, "only the created request's event is written")
	})
}

// TestTokenReplayAcrossPools spends one token on 16 different requests at
// once through two stores: exactly one Update succeeds.
func TestTokenReplayAcrossPools(t *testing.T) {
	t.Parallel()
	eachBackendPath(t, func(t *testing.T, newDSN func(testing.TB) string, opts []Option) {
		stores := twoStores(t, newDSN, opts...)
		ctx := t.Context()
		const n = 16
		reqs := make([]*approval.Request, n)
		for i := range reqs {
			reqs[i] = newRequest()
			_, _, err := stores[0].Create(ctx, reqs[i], nil)
			require.NoError(t, err)
		}
		var ok, used atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i, r := range reqs {
			wg.Go(func() {
				evs := []approval.AuditEvent{event(r.ID, approval.EventDecisionApprove, "bob")}
				err := stores[i%2].Update(ctx, approval.Update{Request: vote(r, "bob", "the-token"), TokenID: "the-token", Events: evs})
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, approval.ErrTokenUsed):
					used.Add(1)
				default:
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		require.Equal(t, int64(1), ok.Load())
		require.Equal(t, int64(n-1), used.Load())
		require.Len(t, fullTrail(t, stores[1]), 1)
		page, err := stores[1].List(ctx, approval.RequestQuery{Approver: "bob"})
		require.NoError(t, err)
		require.Len(t, page.Requests, 1)
	})
}

// TestAuditChainAcrossPools appends from many goroutines through two stores
// and checks that the result is one gapless chain.
func TestAuditChainAcrossPools(t *testing.T) {
	t.Parallel()
	eachBackendPath(t, func(t *testing.T, newDSN func(testing.TB) string, opts []Option) {
		stores := twoStores(t, newDSN, opts...)
		ctx := t.Context()
		const writers, each = 16, 8
		var wg sync.WaitGroup
		errs := make(chan error, writers*each)
		for i := range writers {
			wg.Go(func() {
				for j := range each {
					evs := []approval.AuditEvent{
						event(fmt.Sprintf("req_%d", i), approval.EventNotificationSent, "system"),
						event(fmt.Sprintf("req_%d", i), approval.EventNotificationFailed, fmt.Sprint(j)),
					}
					if err := stores[i%2].AppendAudit(ctx, evs); err != nil {
						errs <- err
						return
					}
					if evs[1].Seq != evs[0].Seq+1 || evs[1].PrevHash != evs[0].Hash {
						errs <- fmt.Errorf("one AppendAudit's events were not adjacent: %d, %d", evs[0].Seq, evs[1].Seq)
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		require.Len(t, fullTrail(t, stores[0]), writers*each*2)
	})
}
