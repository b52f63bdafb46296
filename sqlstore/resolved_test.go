package sqlstore

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// TestSubscribeResolved: an Update that moves a request out of the open
// states wakes its subscriptions, whether the Store knew the replaced
// version's status (it wrote it) or had to read it; on PostgreSQL, it
// also wakes those of another Store on the database. An Update that
// leaves the request open, or changes one already resolved (an approval
// consumed), wakes nobody.
func TestSubscribeResolved(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		ctx := t.Context()
		dsn := newDSN(t)
		s, other := open(t, dsn), open(t, dsn)
		if s.listen != nil {
			s.listen.delivered.Init() // before the listener starts
		}
		subscribe := func(id string) (mine, others <-chan struct{}) {
			mine, stop := s.SubscribeResolved(id)
			t.Cleanup(stop)
			others, stop = other.SubscribeResolved(id)
			t.Cleanup(stop)
			if s.dialect == Postgres {
				awaitListening(t, s, 1)
				awaitListening(t, other, 1)
			}
			// Drain the wake-ups of the listeners' first connection.
			drain(mine)
			drain(others)
			return mine, others
		}
		woken := func(ch <-chan struct{}) bool {
			select {
			case <-ch:
				return true
			case <-time.After(10 * time.Second):
				return false
			}
		}
		// quiet reports whether ch stays silent for long enough that a
		// notification would have arrived.
		quiet := func(ch <-chan struct{}) bool {
			select {
			case <-ch:
				return false
			case <-time.After(2 * promptly):
				return true
			}
		}
		create := func() *approval.Request {
			r := newRequest()
			_, _, err := s.Create(ctx, r, []approval.AuditEvent{event(r.ID, approval.EventRequestCreated, "alice")})
			require.NoError(t, err)
			return r
		}
		approved := func(r *approval.Request) *approval.Request {
			n := vote(r, "bob", "tok-"+randomHex())
			n.Status, n.ResolvedAt = approval.StatusApproved, n.UpdatedAt
			return n
		}
		consumed := func(r *approval.Request) *approval.Request {
			n := r.Clone()
			n.Version++
			n.Status = approval.StatusConsumed
			return n
		}

		// Known: s wrote the version it replaces.
		r := create()
		mine, others := subscribe(r.ID)
		pending := vote(r, "carol", "tok-"+randomHex())
		require.NoError(t, s.Update(ctx, approval.Update{Request: pending}))
		require.True(t, quiet(mine), "a vote that leaves the request pending")
		require.True(t, quiet(others))
		done := approved(pending)
		require.NoError(t, s.Update(ctx, approval.Update{Request: done}))
		require.True(t, woken(mine), "approved by this store")
		if s.dialect == Postgres {
			require.True(t, woken(others), "approved by another store")
		}
		// On PostgreSQL this Store's own notification wakes mine again, once
		// its listener hears it.
		if s.dialect == Postgres {
			s.listen.delivered.WaitFor(t, "the notification of "+done.ID, func(p string) bool { return p == done.ID })
		}
		drain(mine)
		drain(others)
		require.NoError(t, s.Update(ctx, approval.Update{Request: consumed(done)}))
		require.True(t, quiet(mine), "an approval consumed")
		require.True(t, quiet(others))

		// Read: other never saw the version it replaces.
		r = create()
		mine, others = subscribe(r.ID)
		require.NoError(t, other.Update(ctx, approval.Update{Request: approved(r)}))
		require.True(t, woken(others), "approved by this store")
		if s.dialect == Postgres {
			require.True(t, woken(mine), "approved by another store")
		}
	})
}

func drain(ch <-chan struct{}) {
	select {
	case <-ch:
	default:
	}
}

func TestChannelName(t *testing.T) {
	t.Parallel()
	require.Equal(t, "approval_resolved:public", channelName("public"))
	require.Equal(t, "approval_resolved", channelName(""))
	long := channelName(strings.Repeat("s", 63))
	require.LessOrEqual(t, len(long), maxChannelBytes)
	require.True(t, strings.HasPrefix(long, "approval_resolved:"))
	require.NotEqual(t, long, channelName(strings.Repeat("s", 62)+"t"))
}

// TestOpenDBListens: a Store over a caller's pool (OpenDB) notifies and
// listens on the channel of a Store Open made on the same schema, and
// listens on a connection outside that pool, which it leaves free.
func TestOpenDBListens(t *testing.T) {
	t.Parallel()
	dsn := postgresDSN(t)
	opened := open(t, dsn)
	db, err := sqlOpen(Postgres, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	db.SetMaxOpenConns(1)
	s, err := OpenDB(t.Context(), db, Postgres)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	require.Equal(t, opened.channel, s.channel)
	require.True(t, strings.HasPrefix(s.channel, "approval_resolved:sqlstore_test_"), s.channel)

	r := newRequest()
	_, _, err = opened.Create(t.Context(), r, nil)
	require.NoError(t, err)
	wake, stop := s.SubscribeResolved(r.ID)
	defer stop()
	awaitListening(t, s, 1)
	drain(wake)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err = s.Get(ctx, r.ID)
	require.NoError(t, err, "the pool's one connection is free while the Store listens")

	n := vote(r, "bob", "tok-"+randomHex())
	n.Status, n.ResolvedAt = approval.StatusApproved, n.UpdatedAt
	require.NoError(t, opened.Update(t.Context(), approval.Update{Request: n}))
	select {
	case <-wake:
	case <-time.After(10 * time.Second):
		t.Fatal("the OpenDB Store was not woken by the other Store's decision")
	}
}
