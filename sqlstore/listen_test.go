package sqlstore

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/pgtest"
)

// promptly is how soon after a decision commits a Wait woken by a
// notification must return in these tests (it typically takes about a
// millisecond; the bound leaves room for a loaded machine).
const promptly = 200 * time.Millisecond

// observed is a Store that reports each Get, so that a test knows that
// Wait has read the request once, and is waiting, before it decides.
type observed struct {
	*Store
	gets chan string
	// missed counts the reads awaitGet took from gets while it waited
	// for another request's, for a later awaitGet of theirs.
	missed *readCounts
}

type readCounts struct {
	mu sync.Mutex
	n  map[string]int
}

func observe(s *Store) observed {
	return observed{Store: s, gets: make(chan string, 64), missed: &readCounts{n: map[string]int{}}}
}

func (o observed) Get(ctx context.Context, id string) (*approval.Request, error) {
	r, err := o.Store.Get(ctx, id)
	select {
	case o.gets <- id:
	default:
	}
	return r, err
}

// awaitGet waits for o to read request id, or returns at once if it read
// it while an earlier awaitGet waited for another request.
func (o observed) awaitGet(t testing.TB, id string) {
	t.Helper()
	o.missed.mu.Lock()
	if o.missed.n[id] > 0 {
		o.missed.n[id]--
		o.missed.mu.Unlock()
		return
	}
	o.missed.mu.Unlock()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case got := <-o.gets:
			if got == id {
				return
			}
			o.missed.mu.Lock()
			o.missed.n[got]++
			o.missed.mu.Unlock()
		case <-deadline:
			t.Fatalf("request %s was not read", id)
		}
	}
}

// replica returns a gate over s, as one replica of a service would run
// it, whose Wait polls every poll. Its one policy needs alice's approval
// of any deploy.
func replica(t testing.TB, s approval.Store, key ed25519.PrivateKey, poll time.Duration) *approval.Gate {
	t.Helper()
	g, err := approval.New(approval.Config{Store: s, SigningKey: key, PollInterval: poll, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, g.Close(context.Background())) })
	require.NoError(t, g.SetPolicy("deploys", approval.Policy{
		Match:             approval.Name("deploy:*"),
		Approvers:         []approval.Approver{approval.User("alice")},
		RequiredApprovals: 1,
	}))
	return g
}

// guardPending guards a new deploy on g and returns its pending request.
func guardPending(t testing.TB, g *approval.Gate) string {
	t.Helper()
	res, err := g.Guard(t.Context(), approval.Action{Name: "deploy:" + randomHex(), RequestedBy: "bob"})
	require.NoError(t, err)
	require.Equal(t, approval.OutcomePending, res.Status)
	return res.RequestID
}

// approve has alice approve request id through g, and returns when the
// decision has committed.
func approve(t testing.TB, g *approval.Gate, id string) time.Time {
	t.Helper()
	tok, err := g.IssueToken(id, "alice", approval.VerdictApprove, time.Hour)
	require.NoError(t, err)
	r, err := g.Decide(t.Context(), id, approval.Decision{Token: tok, Verdict: approval.VerdictApprove})
	require.NoError(t, err)
	require.Equal(t, approval.StatusApproved, r.Status)
	return time.Now()
}

type waitResult struct {
	r   *approval.Request
	err error
	at  time.Time
}

// waitAsync runs g.Wait(id) on a goroutine of its own until ctx ends.
func waitAsync(ctx context.Context, g *approval.Gate, id string) <-chan waitResult {
	done := make(chan waitResult, 1)
	go func() {
		r, err := g.Wait(ctx, id)
		done <- waitResult{r, err, time.Now()}
	}()
	return done
}

// requirePrompt requires the Wait of done to return the approved request
// within promptly of decided.
func requirePrompt(t *testing.T, done <-chan waitResult, decided time.Time) {
	t.Helper()
	select {
	case w := <-done:
		require.NoError(t, w.err)
		require.Equal(t, approval.StatusApproved, w.r.Status)
		require.Less(t, w.at.Sub(decided), promptly, "Wait returned %s after the decision committed", w.at.Sub(decided))
	case <-time.After(10 * time.Second):
		t.Fatal("Wait was not woken by the decision of the other store")
	}
}

// awaitListening waits until s's listener has begun to listen n times.
func awaitListening(t testing.TB, s *Store, n int64) {
	t.Helper()
	require.Eventually(t, func() bool { return s.listen.listens.Load() >= n && s.listen.pid.Load() != 0 },
		10*time.Second, time.Millisecond, "the listener did not (re)connect")
}

// TestWaitWokenAcrossStores: two replicas, each with its own Store and
// pool on one PostgreSQL database; a Wait on one returns within
// milliseconds of a decision on the other, though it polls once a minute.
// Without Listen, the same Wait is still waiting for its poll.
func TestWaitWokenAcrossStores(t *testing.T) {
	t.Parallel()
	dsn := postgresDSN(t)
	_, key, err := approval.GenerateKeys()
	require.NoError(t, err)
	deciding := replica(t, open(t, dsn), key, time.Minute)

	t.Run("listening", func(t *testing.T) {
		t.Parallel()
		s := observe(open(t, dsn))
		waiting := replica(t, s, key, time.Minute)
		for range 3 {
			id := guardPending(t, deciding)
			done := waitAsync(t.Context(), waiting, id)
			s.awaitGet(t, id)
			awaitListening(t, s.Store, 1)
			requirePrompt(t, done, approve(t, deciding, id))
		}
		require.Zero(t, s.watch.Len(), "each Wait stopped its subscription")
	})
	t.Run("not listening", func(t *testing.T) {
		t.Parallel()
		s := observe(open(t, dsn, Listen(false)))
		require.Nil(t, s.listen)
		waiting := replica(t, s, key, time.Minute)
		id := guardPending(t, deciding)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		done := waitAsync(ctx, waiting, id)
		s.awaitGet(t, id)
		approve(t, deciding, id)
		select {
		case w := <-done:
			t.Fatalf("Wait returned (%v, %v) without a notification or a poll", w.r, w.err)
		case <-time.After(4 * promptly):
		}
	})
}

// TestListenerReconnects: when the listening connection's server process
// is killed, the listener reconnects, wakes every Wait (which reads its
// request again, in case it missed a notification), and Waits begun
// before and after the kill are both woken promptly by later decisions.
func TestListenerReconnects(t *testing.T) {
	t.Parallel()
	dsn := postgresDSN(t)
	_, key, err := approval.GenerateKeys()
	require.NoError(t, err)
	deciding := replica(t, open(t, dsn), key, time.Minute)
	s := observe(open(t, dsn))
	waiting := replica(t, s, key, time.Minute)

	before := guardPending(t, deciding)
	doneBefore := waitAsync(t.Context(), waiting, before)
	s.awaitGet(t, before)
	awaitListening(t, s.Store, 1)
	pid := s.listen.pid.Load()

	var killed bool
	require.NoError(t, pgtest.Admin(t).QueryRowContext(t.Context(), `SELECT pg_terminate_backend($1)`, int64(pid)).Scan(&killed))
	require.True(t, killed)
	after := guardPending(t, deciding)
	doneAfter := waitAsync(t.Context(), waiting, after)
	s.awaitGet(t, after)

	awaitListening(t, s.Store, 2)
	require.NotEqual(t, pid, s.listen.pid.Load(), "a new connection")
	s.awaitGet(t, before) // woken by the reconnection, still pending
	select {
	case w := <-doneBefore:
		t.Fatalf("Wait returned (%v, %v) before the decision", w.r, w.err)
	default:
	}
	requirePrompt(t, doneAfter, approve(t, deciding, after))
	requirePrompt(t, doneBefore, approve(t, deciding, before))
}

// TestListenerPings: a listening connection silent for the ping interval
// is checked with a ping and kept; notifications still arrive after.
func TestListenerPings(t *testing.T) {
	t.Parallel()
	dsn := postgresDSN(t)
	_, key, err := approval.GenerateKeys()
	require.NoError(t, err)
	deciding := replica(t, open(t, dsn), key, time.Minute)
	s := observe(open(t, dsn))
	s.listen.ping = 20 * time.Millisecond
	s.listen.pinged.Init()
	waiting := replica(t, s, key, time.Minute)
	id := guardPending(t, deciding)
	done := waitAsync(t.Context(), waiting, id)
	s.awaitGet(t, id)
	awaitListening(t, s.Store, 1)
	pid := s.listen.pid.Load()
	for range 3 {
		require.NoError(t, s.listen.pinged.Wait(t), "the ping of a silent connection")
	}
	require.Equal(t, int64(1), s.listen.listens.Load(), "the connection was kept")
	require.Equal(t, pid, s.listen.pid.Load())
	requirePrompt(t, done, approve(t, deciding, id))
}

// TestCloseStopsListener: Close with subscriptions open stops the listener
// and closes its connection; subscribing and stopping afterwards start
// nothing and do not panic.
func TestCloseStopsListener(t *testing.T) {
	t.Parallel()
	dsn := postgresDSN(t)
	s, err := Open(t.Context(), dsn)
	require.NoError(t, err)
	var stops []func()
	for range 3 {
		_, stop := s.SubscribeResolved("req_" + randomHex())
		stops = append(stops, stop)
	}
	awaitListening(t, s, 1)
	pid := s.listen.pid.Load()

	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	select {
	case <-s.listen.done:
	default:
		t.Fatal("the listener still runs after Close")
	}
	require.Zero(t, s.listen.pid.Load())
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, pgtest.Admin(t).QueryRowContext(t.Context(), `SELECT count(*) FROM pg_stat_activity WHERE pid = $1`, int64(pid)).Scan(&n))
		return n == 0
	}, 10*time.Second, 10*time.Millisecond, "the listening connection is still open")

	_, stop := s.SubscribeResolved("req_" + randomHex())
	stop()
	for _, stop := range stops {
		stop()
		stop()
	}
	require.Equal(t, int64(1), s.listen.listens.Load(), "nothing listens again after Close")
}
