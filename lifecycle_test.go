package approval_test

import (
	"context"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/memstore"
)

func TestTickTimesOutOpenRequests(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	require.NoError(t, f.gate.SetPolicy("small", approval.Policy{
		Match:             approval.CostBelow(100, "USD"),
		Approvers:         []approval.Approver{approval.User("erin")},
		RequiredApprovals: 1,
		Timeout:           time.Hour,
		OnTimeout:         approval.TimeoutApprove,
	}))
	big := f.Pending(transfer(5000))
	small := f.Pending(transfer(50))

	n, err := f.gate.Tick(f.ctx, 0)
	require.NoError(t, err)
	require.Zero(t, n, "nothing is due yet")

	f.clock.Advance(time.Hour)
	n, err = f.gate.Tick(f.ctx, 0)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, approval.StatusApproved, f.Get(small).Status, "OnTimeout: Approve")
	require.Equal(t, approval.StatusPending, f.Get(big).Status)

	f.clock.Advance(23 * time.Hour)
	n, err = f.gate.Tick(f.ctx, 0)
	require.NoError(t, err)
	require.Equal(t, 2, n, "big times out; small's approval expires")
	require.Equal(t, approval.StatusTimedOut, f.Get(big).Status)
	require.Equal(t, approval.StatusExpired, f.Get(small).Status)

	_, err = f.Decide(big, "alice", approval.VerdictApprove)
	require.ErrorIs(t, err, approval.ErrNotPending)
}

func TestDecideAfterDeadlineTimesOut(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.Pending(transfer(5000))
	tok, err := f.gate.IssueToken(id, "alice", approval.VerdictApprove, 48*time.Hour)
	require.NoError(t, err)
	f.clock.Advance(24 * time.Hour)
	_, err = f.gate.Decide(f.ctx, id, approval.Decision{Token: tok, Verdict: approval.VerdictApprove})
	require.ErrorIs(t, err, approval.ErrNotPending)
	require.Equal(t, approval.StatusTimedOut, f.Get(id).Status)
}

func TestTickEscalates(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	require.NoError(t, f.gate.SetPolicy("high_spend", approval.Policy{
		Match:             approval.CostAtLeast(1000, "USD"),
		Approvers:         []approval.Approver{approval.User("alice")},
		RequiredApprovals: 1,
		Timeout:           24 * time.Hour,
		Escalation:        []approval.EscalationStep{{After: 4 * time.Hour, Action: approval.StepEscalate, To: []approval.Approver{approval.Group("finance-leads")}}},
	}))
	id := f.Pending(transfer(5000))
	require.Equal(t, f.clock.Now().Add(4*time.Hour), f.Get(id).DueAt)

	_, err := f.Decide(id, "erin", approval.VerdictApprove)
	require.ErrorIs(t, err, approval.ErrNotEligible, "erin is eligible only after escalation")

	f.clock.Advance(4 * time.Hour)
	n, err := f.gate.Tick(f.ctx, 0)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	r := f.Get(id)
	require.Equal(t, approval.StatusEscalated, r.Status)
	require.Equal(t, 1, r.EscalationLevel)
	require.Equal(t, r.Deadline, r.DueAt, "no level left: next due is the deadline")

	r, err = f.Decide(id, "erin", approval.VerdictApprove)
	require.NoError(t, err)
	require.Equal(t, approval.StatusApproved, r.Status)
	require.Contains(t, eventTypes(f.events()), approval.EventRequestEscalated)
}

func TestCancel(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.Pending(transfer(5000))
	r, err := f.gate.Cancel(f.ctx, id, "user-1", "typo in amount")
	require.NoError(t, err)
	require.Equal(t, approval.StatusCancelled, r.Status)
	_, err = f.gate.Cancel(f.ctx, id, "user-1", "")
	require.ErrorIs(t, err, approval.ErrNotPending)
	_, err = f.gate.Cancel(f.ctx, "req_missing", "user-1", "")
	require.ErrorIs(t, err, approval.ErrNotFound)
	_, err = f.Decide(id, "alice", approval.VerdictApprove)
	require.ErrorIs(t, err, approval.ErrNotPending)
	ev := f.lastEvent()
	require.Equal(t, approval.EventDecisionRejected, ev.Type)
}

func TestWait(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *approval.Config) { c.PollInterval = time.Hour })
	id := f.Pending(transfer(5000))

	done := make(chan *approval.Request)
	go func() {
		r, err := f.gate.Wait(context.Background(), id)
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	for _, who := range []string{"alice", "bob"} {
		_, err := f.Decide(id, who, approval.VerdictApprove)
		require.NoError(t, err)
	}
	select {
	case r := <-done:
		require.Equal(t, approval.StatusApproved, r.Status)
	case <-time.After(10 * time.Second):
		t.Fatal("Wait was not woken by the deciding vote")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := f.gate.Wait(ctx, f.Pending(transfer(6000)))
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestWaitSeesOtherGates(t *testing.T) {
	t.Parallel()
	var gs *getSignalStore
	f := newFixture(t, func(c *approval.Config) {
		gs = &getSignalStore{Store: c.Store, gets: make(chan *approval.Request, 64)}
		c.Store = gs
		c.PollInterval = 5 * time.Millisecond
	})
	other, err := approval.New(approval.Config{Store: f.store, SigningKey: f.priv, Directory: financeDir, Now: f.clock.Now})
	require.NoError(t, err)
	id := f.Pending(transfer(5000))
	for len(gs.gets) > 0 { // Guard's
		<-gs.gets
	}
	done := waitAsync(t, f.gate, id)
	// Wait has read the request pending: only a poll can show it the
	// cancellation by the other gate.
	require.Equal(t, approval.StatusPending, (<-gs.gets).Status)
	_, err = other.Cancel(context.Background(), id, "ops", "")
	require.NoError(t, err)
	select {
	case r := <-done:
		require.Equal(t, approval.StatusCancelled, r.Status)
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not see the other gate's cancellation")
	}
}

// getSignalStore sends each request its Gets read, after they return.
type getSignalStore struct {
	approval.Store
	gets chan *approval.Request
}

func (s *getSignalStore) Get(ctx context.Context, id string) (*approval.Request, error) {
	r, err := s.Store.Get(ctx, id)
	if err == nil {
		select {
		case s.gets <- r:
		default:
		}
	}
	return r, err
}

// notifyingStore is a Store with a ResolutionNotifier that the test drives:
// a subscriber is woken only when the test calls fire.
type notifyingStore struct {
	approval.Store
	// subscribed receives the ID of each subscription; gets the ID of each
	// Get, after it returns.
	subscribed, gets chan string

	mu   sync.Mutex
	subs map[string]chan struct{}
	// blindGets counts the Gets of a request nobody had subscribed to.
	blindGets int
}

func newNotifyingStore(s approval.Store) *notifyingStore {
	return &notifyingStore{Store: s, subscribed: make(chan string, 16), gets: make(chan string, 64), subs: map[string]chan struct{}{}}
}

func (s *notifyingStore) SubscribeResolved(id string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	s.subs[id] = ch
	s.mu.Unlock()
	s.subscribed <- id
	return ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.subs[id] == ch {
			delete(s.subs, id)
		}
	}
}

func (s *notifyingStore) Get(ctx context.Context, id string) (*approval.Request, error) {
	s.mu.Lock()
	if s.subs[id] == nil {
		s.blindGets++
	}
	s.mu.Unlock()
	r, err := s.Store.Get(ctx, id)
	select {
	case s.gets <- id:
	default:
	}
	return r, err
}

func (s *notifyingStore) fire(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch := s.subs[id]; ch != nil {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (s *notifyingStore) watching() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs)
}

// waitAsync runs gate.Wait(id) on a goroutine of its own.
func waitAsync(t *testing.T, gate *approval.Gate, id string) <-chan *approval.Request {
	done := make(chan *approval.Request, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		r, err := gate.Wait(ctx, id)
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	return done
}

// TestWaitSubscribes: over a ResolutionNotifier, Wait subscribes before it
// first reads the request, returns when the store wakes it (a decision
// made elsewhere, with a poll too slow to see it), and stops the
// subscription.
func TestWaitSubscribes(t *testing.T) {
	t.Parallel()
	var ns *notifyingStore
	f := newFixture(t, func(c *approval.Config) {
		ns = newNotifyingStore(c.Store)
		c.Store = ns
		c.PollInterval = time.Hour
	})
	elsewhere, err := approval.New(approval.Config{Store: ns.Store, SigningKey: f.priv, Directory: financeDir, Now: f.clock.Now})
	require.NoError(t, err)
	id := f.Pending(transfer(5000))
	done := waitAsync(t, f.gate, id)
	require.Equal(t, id, <-ns.subscribed)
	require.Equal(t, id, <-ns.gets, "Wait reads the request once it has subscribed")

	_, err = elsewhere.Cancel(f.ctx, id, "ops", "")
	require.NoError(t, err)
	select {
	case <-done:
		t.Fatal("Wait returned before the store woke it")
	case <-time.After(50 * time.Millisecond):
	}
	ns.fire(id)
	select {
	case r := <-done:
		require.Equal(t, approval.StatusCancelled, r.Status)
	case <-time.After(10 * time.Second):
		t.Fatal("Wait was not woken by the store's notification")
	}
	require.Zero(t, ns.watching(), "Wait stopped its subscription")
	ns.mu.Lock()
	defer ns.mu.Unlock()
	require.Zero(t, ns.blindGets, "Wait read the request before subscribing")
}

// TestWaitPollsBesideNotifier: a notifier that never fires (its connection
// lost, say) delays Wait by at most PollInterval.
func TestWaitPollsBesideNotifier(t *testing.T) {
	t.Parallel()
	var ns *notifyingStore
	f := newFixture(t, func(c *approval.Config) {
		ns = newNotifyingStore(c.Store)
		c.Store = ns
		c.PollInterval = 5 * time.Millisecond
	})
	elsewhere, err := approval.New(approval.Config{Store: ns.Store, SigningKey: f.priv, Directory: financeDir, Now: f.clock.Now})
	require.NoError(t, err)
	id := f.Pending(transfer(5000))
	done := waitAsync(t, f.gate, id)
	require.Equal(t, id, <-ns.subscribed)
	_, err = elsewhere.Cancel(f.ctx, id, "ops", "")
	require.NoError(t, err)
	select {
	case r := <-done:
		require.Equal(t, approval.StatusCancelled, r.Status)
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not poll while the notifier was silent")
	}
	require.Zero(t, ns.watching())
}

// TestTickReminds: every ReminderInterval, the approvers who have not
// answered are reminded, once per interval however many gates tick; missed
// intervals are caught up with one reminder.
func TestTickReminds(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	f := newFixture(t, func(c *approval.Config) { c.Channels = []approval.Channel{rec} })
	require.NoError(t, f.gate.SetPolicy("high_spend", approval.Policy{
		Match:             approval.CostAtLeast(1000, "USD"),
		Approvers:         []approval.Approver{approval.Group("finance")},
		RequiredApprovals: 2,
		Timeout:           24 * time.Hour,
		ReminderInterval:  time.Hour,
	}))
	id := f.Pending(transfer(5000))
	created := f.clock.Now()
	require.Equal(t, created.Add(time.Hour), f.Get(id).DueAt)
	_, err := f.Decide(id, "bob", approval.VerdictApprove)
	require.NoError(t, err)

	reminders := func() []string {
		var to []string
		for _, n := range rec.sent() {
			if n.Type == approval.NotifyReminder {
				require.Equal(t, id, n.RequestID)
				to = append(to, n.Recipient)
			}
		}
		sort.Strings(to)
		return to
	}
	tick := func(want int) {
		t.Helper()
		n, err := f.gate.Tick(f.ctx, 0)
		require.NoError(t, err)
		require.Equal(t, want, n)
	}

	f.clock.Advance(59 * time.Minute)
	tick(0)
	f.clock.Advance(time.Minute)
	tick(1)
	tick(0) // once per interval
	require.Eventually(t, func() bool { return len(reminders()) == 3 }, 5*time.Second, time.Millisecond)
	require.Equal(t, []string{"alice", "carol", "dave"}, reminders(), "not bob, who answered, nor the requester")
	r := f.Get(id)
	require.Equal(t, 1, r.Reminders)
	require.Equal(t, created.Add(2*time.Hour), r.DueAt)
	var reminded []approval.AuditEvent
	for _, ev := range f.events() {
		if ev.Type == approval.EventRequestReminded {
			reminded = append(reminded, ev)
		}
	}
	require.Len(t, reminded, 1)
	require.Equal(t, approval.SystemActor, reminded[0].Actor)
	require.Equal(t, id, reminded[0].RequestID)

	f.clock.Advance(3*time.Hour + 30*time.Minute) // 4.5h since creation
	tick(1)
	tick(0)
	r = f.Get(id)
	require.Equal(t, 4, r.Reminders, "missed intervals are caught up")
	require.Equal(t, created.Add(5*time.Hour), r.DueAt)
	require.Eventually(t, func() bool { return len(reminders()) == 6 }, 5*time.Second, time.Millisecond)

	_, err = f.Decide(id, "carol", approval.VerdictApprove)
	require.NoError(t, err)
	require.Equal(t, approval.StatusApproved, f.Get(id).Status)
	f.clock.Advance(2 * time.Hour)
	n, err := f.gate.Tick(f.ctx, 0)
	require.NoError(t, err)
	require.LessOrEqual(t, n, 1, "an approved request is never reminded; at most its approval expires")
	require.Len(t, reminders(), 6)
}

// TestReminderIntervalInPolicyHash: reminders are part of the policy
// snapshot and its hash, and a policy without them hashes as before.
func TestReminderIntervalInPolicyHash(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := approval.Policy{Match: approval.Name("x"), Approvers: []approval.Approver{approval.User("erin")}, RequiredApprovals: 1}
	require.NoError(t, f.gate.SetPolicy("p", p))
	without, _ := f.gate.PolicyHash("p")
	p.ReminderInterval = time.Hour
	require.NoError(t, f.gate.SetPolicy("p", p))
	with, _ := f.gate.PolicyHash("p")
	require.NotEqual(t, without, with)
	p.Redact = []string{"iban"}
	require.NoError(t, f.gate.SetPolicy("p", p))
	redacted, _ := f.gate.PolicyHash("p")
	require.NotEqual(t, with, redacted, "what reviewers are shown is part of the policy")
	p.Redact = []string{""}
	require.ErrorIs(t, f.gate.SetPolicy("p", p), approval.ErrInvalidPolicy)
	p.Redact = nil
	p.ReminderInterval = -time.Hour
	require.ErrorIs(t, f.gate.SetPolicy("p", p), approval.ErrInvalidPolicy)
}

// failingUpdates is a store whose Update fails for some requests.
type failingUpdates struct {
	approval.Store
	mu   sync.Mutex
	fail map[string]bool
}

func (s *failingUpdates) Update(ctx context.Context, u approval.Update) error {
	s.mu.Lock()
	bad := s.fail[u.Request.ID]
	s.mu.Unlock()
	if bad {
		return errors.New("disk full")
	}
	return s.Store.Update(ctx, u)
}

// TestTickProgressPastFailures: requests that keep failing to update do not
// stop Tick from reaching the due requests after them.
func TestTickProgressPastFailures(t *testing.T) {
	t.Parallel()
	store := &failingUpdates{Store: memstore.New(), fail: map[string]bool{}}
	f := newFixture(t, func(c *approval.Config) { c.Store = store })
	var ids []string
	for i := range 5 {
		ids = append(ids, f.Pending(transfer(5000+float64(i))))
	}
	store.mu.Lock()
	store.fail[ids[0]], store.fail[ids[1]] = true, true // the first page of two
	store.mu.Unlock()
	f.clock.Advance(25 * time.Hour)

	timedOut := 0
	for range 4 {
		n, err := f.gate.Tick(f.ctx, 2)
		timedOut += n
		if err != nil {
			require.ErrorContains(t, err, "disk full")
		}
	}
	require.Equal(t, 3, timedOut, "every request that can be updated is reached")
	for _, id := range ids[2:] {
		require.Equal(t, approval.StatusTimedOut, f.Get(id).Status)
	}
	for _, id := range ids[:2] {
		require.Equal(t, approval.StatusPending, f.Get(id).Status)
	}
}
