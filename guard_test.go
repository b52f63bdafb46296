package approval_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/memstore"
)

func TestGuardNoPolicyMatched(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	res, err := f.gate.Guard(f.ctx, transfer(10))
	require.NoError(t, err)
	require.Equal(t, approval.Result{Status: approval.OutcomeApproved, Reason: approval.ReasonNoPolicyMatched}, res)
	require.Empty(t, f.events(), "an action no policy matched is not stored")
}

func TestGuardDefaultPolicy(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *approval.Config) {
		c.Default = &approval.Policy{Approvers: []approval.Approver{approval.User("erin")}, RequiredApprovals: 1}
	})
	id := f.Pending(transfer(10))
	require.Equal(t, []string{"default"}, f.Get(id).PolicyNames())
	r, err := f.Decide(id, "erin", approval.VerdictApprove)
	require.NoError(t, err)
	require.Equal(t, approval.StatusApproved, r.Status)
}

func TestGuardDenyPolicy(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	require.NoError(t, f.gate.SetPolicy("no_sanctioned", approval.Policy{
		Match:  approval.TagAny("sanctioned-country"),
		Effect: approval.EffectDeny,
		Reason: "transfers to sanctioned countries are never allowed",
	}))
	a := transfer(5000)
	a.Tags = []string{"sanctioned-country"}
	res, err := f.gate.Guard(f.ctx, a)
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeDenied, res.Status)
	require.Equal(t, "transfers to sanctioned countries are never allowed", res.Reason)
	r := f.Get(res.RequestID)
	require.Equal(t, approval.StatusDenied, r.Status)
	require.Equal(t, []approval.EventType{approval.EventRequestCreated, approval.EventRequestDenied}, eventTypes(f.events()))

	// A denial is final: a retry is denied again, not deduplicated into approval.
	res2, err := f.gate.Guard(f.ctx, a)
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeDenied, res2.Status)
	require.NotEqual(t, res.RequestID, res2.RequestID)
}

func TestGuardDenyPolicyAddedWhileRequestIsOpen(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	open := f.Pending(transfer(5000))
	require.NoError(t, f.gate.SetPolicy("freeze", approval.Policy{
		Match: approval.Name("wire-*"), Effect: approval.EffectDeny, Reason: "payments frozen",
	}))
	res, err := f.gate.Guard(f.ctx, transfer(5000))
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeDenied, res.Status)
	require.NotEqual(t, open, res.RequestID)
	require.Equal(t, approval.StatusDenied, f.Get(res.RequestID).Status)
	require.Equal(t, approval.StatusPending, f.Get(open).Status, "the open request is left to its approvers")
}

func TestGuardInvalidActionStoresNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, a := range []approval.Action{
		{Name: "", RequestedBy: "u"},
		{Name: "x", RequestedBy: ""},
		{Name: "x", RequestedBy: "u", Cost: &approval.Cost{Amount: -1, Currency: "USD"}},
		{Name: "x", RequestedBy: "u", Risk: approval.Risk(42)},
		{Name: "x\xff", RequestedBy: "u"},
		{Name: "x", RequestedBy: "u", Payload: make([]byte, 256<<10+1)},
	} {
		res, err := f.gate.Guard(f.ctx, a)
		require.ErrorIs(t, err, approval.ErrInvalidAction)
		require.Equal(t, approval.OutcomeDenied, res.Status)
	}
	page, err := f.gate.List(f.ctx, approval.RequestQuery{})
	require.NoError(t, err)
	require.Empty(t, page.Requests)
	require.Empty(t, f.events())
}

func TestGuardIsIdempotent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.Pending(transfer(5000))

	retry := transfer(5000)
	retry.Message = "please, it is urgent" // context, not identity
	retry.Provenance = &approval.Provenance{Source: "sdk"}
	require.Equal(t, id, f.Pending(retry))

	other := transfer(5000)
	other.Payload = []byte(`{"to":"FR76 3000 6000 0112 3456 7890 189","amount":5000}`)
	require.NotEqual(t, id, f.Pending(other), "another payload is another action")

	someoneElse := transfer(5000)
	someoneElse.RequestedBy = "user-2"
	require.NotEqual(t, id, f.Pending(someoneElse), "another requester is another request")

	require.Equal(t, []approval.EventType{
		approval.EventRequestCreated, approval.EventRequestDeduplicated,
		approval.EventRequestCreated, approval.EventRequestCreated,
	}, eventTypes(f.events()))
}

func TestGuardConcurrentCallsCreateOneRequest(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const n = 64
	ids := make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			res, err := f.gate.Guard(context.Background(), transfer(5000))
			if err != nil || res.Status != approval.OutcomePending {
				t.Errorf("guard: %v %v", res, err)
			}
			ids[i] = res.RequestID
		})
	}
	close(start)
	wg.Wait()
	for _, id := range ids {
		require.Equal(t, ids[0], id)
	}
	page, err := f.gate.List(f.ctx, approval.RequestQuery{})
	require.NoError(t, err)
	require.Len(t, page.Requests, 1)
}

func TestGuardConsumesApprovalOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.Pending(transfer(5000))
	for _, who := range []string{"alice", "bob"} {
		_, err := f.Decide(id, who, approval.VerdictApprove)
		require.NoError(t, err)
	}
	// 16 concurrent retries of the approved action: exactly one runs it.
	var (
		mu       sync.Mutex
		approved int
		wg       sync.WaitGroup
	)
	for range 16 {
		wg.Go(func() {
			res, err := f.gate.Guard(context.Background(), transfer(5000))
			if err != nil {
				t.Error(err)
				return
			}
			if res.Status == approval.OutcomeApproved {
				mu.Lock()
				approved++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.Equal(t, 1, approved)
}

func TestGuardExpiredApprovalStartsOver(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.Pending(transfer(5000))
	for _, who := range []string{"alice", "bob"} {
		_, err := f.Decide(id, who, approval.VerdictApprove)
		require.NoError(t, err)
	}
	f.clock.Advance(approval.DefaultApprovalTTL + time.Second)
	next := f.Pending(transfer(5000))
	require.NotEqual(t, id, next)
	require.Equal(t, approval.StatusExpired, f.Get(id).Status)
}

// A Guard that finds its request past the deadline times it out itself,
// and, the timeout being held, returns it; after the hold it starts over.
func TestGuardTimedOutRequestStartsOver(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.Pending(transfer(5000))
	f.clock.Advance(25 * time.Hour)
	res, err := f.gate.Guard(f.ctx, transfer(5000))
	require.NoError(t, err)
	require.Equal(t, approval.Result{Status: approval.OutcomeTimedOut, RequestID: id, Reason: "timed out"}, res)
	require.Equal(t, approval.StatusTimedOut, f.Get(id).Status)
	f.clock.Advance(approval.DefaultDenialHold)
	next := f.Pending(transfer(5000))
	require.NotEqual(t, id, next)
}

func TestGuardCustomMatcherFailsClosed(t *testing.T) {
	t.Parallel()
	for name, fn := range map[string]func(approval.Action) (bool, error){
		"error": func(approval.Action) (bool, error) { return false, errors.New("fraud service down") },
		"panic": func(approval.Action) (bool, error) { panic("nil map") },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			require.NoError(t, f.gate.SetPolicy("fraud", approval.Policy{
				Match:             approval.Custom("fraud-score", fn),
				Approvers:         []approval.Approver{approval.User("erin")},
				RequiredApprovals: 1,
			}))
			id := f.Pending(transfer(10)) // below high_spend: only the failing matcher applies
			r := f.Get(id)
			require.Equal(t, []string{"fraud"}, r.PolicyNames())
			require.Contains(t, r.Policies[0].MatchError, "fraud-score")
			evs := f.events()
			require.Equal(t, approval.EventPolicyError, evs[1].Type)
			require.Equal(t, "fraud", evs[1].Policies[0].Name)
		})
	}
}

func TestGuardCombinesMatchedPolicies(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	require.NoError(t, f.gate.SetPolicy("prod", approval.Policy{
		Match:             approval.TagAny("production"),
		Approvers:         []approval.Approver{approval.Role("sre")},
		RequiredApprovals: 1,
		Timeout:           time.Hour,
		OnTimeout:         approval.TimeoutApprove,
		AllowSelfApproval: true,
		ApprovalTTL:       10 * time.Minute,
	}))
	a := transfer(5000)
	a.Tags = []string{"production"}
	r := f.Get(f.Pending(a))
	require.Equal(t, f.clock.Now().Add(time.Hour), r.Deadline, "smallest timeout")
	require.Equal(t, approval.TimeoutDeny, r.OnTimeout, "most restrictive timeout action")
	require.True(t, r.SegregateRequester, "segregation if any policy asks")
	require.Equal(t, 10*time.Minute, r.ApprovalTTL)
	require.Equal(t, r.Deadline, r.DueAt)
}

// brokenStore fails every write, to prove Guard and Decide fail closed.
type brokenStore struct{ approval.Store }

var errDiskFull = errors.New("disk full")

func (brokenStore) Create(context.Context, *approval.Request, []approval.AuditEvent) (*approval.Request, bool, error) {
	return nil, false, errDiskFull
}

func (brokenStore) Update(context.Context, approval.Update) error { return errDiskFull }

func TestGuardFailsClosedOnStoreError(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.Pending(transfer(5000))
	_, err := f.Decide(id, "alice", approval.VerdictApprove)
	require.NoError(t, err)

	broken, err := approval.New(approval.Config{Store: brokenStore{f.store}, SigningKey: f.priv, Directory: financeDir, Now: f.clock.Now})
	require.NoError(t, err)
	require.NoError(t, broken.SetPolicy("high_spend", approval.Policy{
		Match: approval.CostAtLeast(1000, "USD"), Approvers: []approval.Approver{approval.Group("finance")}, RequiredApprovals: 1,
	}))
	res, err := broken.Guard(f.ctx, transfer(9000))
	require.ErrorIs(t, err, errDiskFull)
	require.Equal(t, approval.OutcomeDenied, res.Status)

	// Bob's vote would complete the quorum, but the write fails: not approved.
	r, err := broken.Decide(f.ctx, id, approval.Decision{Token: f.Token(id, "bob", approval.VerdictApprove), Verdict: approval.VerdictApprove})
	require.ErrorIs(t, err, errDiskFull)
	require.Nil(t, r)
	require.Equal(t, approval.StatusPending, f.Get(id).Status)
}

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	_, priv, err := approval.GenerateKeys()
	require.NoError(t, err)
	for name, cfg := range map[string]approval.Config{
		"no store":        {SigningKey: priv},
		"no keys":         {Store: memstore.New()},
		"short key":       {Store: memstore.New(), SigningKey: priv[:10]},
		"bad base URL":    {Store: memstore.New(), SigningKey: priv, BaseURL: "ftp://x"},
		"negative":        {Store: memstore.New(), SigningKey: priv, DenyThreshold: -1},
		"deny default":    {Store: memstore.New(), SigningKey: priv, Default: &approval.Policy{Effect: approval.EffectDeny}},
		"invalid default": {Store: memstore.New(), SigningKey: priv, Default: &approval.Policy{RequiredApprovals: 1}},
		"nil channel":     {Store: memstore.New(), SigningKey: priv, Channels: []approval.Channel{nil}},
	} {
		_, err := approval.New(cfg)
		require.ErrorIs(t, err, approval.ErrInvalidConfig, name)
	}
}

func TestListFiltersAndPages(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var ids []string
	for i := range 7 {
		ids = append(ids, f.Pending(transfer(float64(1000+i))))
	}
	_, err := f.Decide(ids[0], "alice", approval.VerdictDeny)
	require.NoError(t, err)

	var got []string
	q := approval.RequestQuery{Status: []approval.Status{approval.StatusPending}, Limit: 4}
	for {
		page, err := f.gate.List(f.ctx, q)
		require.NoError(t, err)
		for _, r := range page.Requests {
			got = append(got, r.ID)
		}
		if page.Next == "" {
			break
		}
		q.Cursor = page.Next
	}
	require.Equal(t, ids[1:], got)

	page, err := f.gate.List(f.ctx, approval.RequestQuery{Approver: "alice"})
	require.NoError(t, err)
	require.Len(t, page.Requests, 1)
	require.Equal(t, ids[0], page.Requests[0].ID)
	require.Equal(t, fmt.Sprint(approval.StatusDenied), fmt.Sprint(page.Requests[0].Status))
}

func TestRemovePolicy(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.Pending(transfer(5000))
	require.True(t, f.gate.RemovePolicy("high_spend"))
	require.False(t, f.gate.RemovePolicy("high_spend"))
	_, ok := f.gate.PolicyHash("high_spend")
	require.False(t, ok)

	res, err := f.gate.Guard(f.ctx, transfer(9000))
	require.NoError(t, err)
	require.Equal(t, approval.ReasonNoPolicyMatched, res.Reason)

	// The open request keeps its snapshot and can still be approved.
	for _, who := range []string{"alice", "bob"} {
		_, err := f.Decide(id, who, approval.VerdictApprove)
		require.NoError(t, err)
	}
	require.Equal(t, approval.StatusApproved, f.Get(id).Status)
}

func TestAuditSinkMirrorsCommittedEvents(t *testing.T) {
	t.Parallel()
	var (
		mu   sync.Mutex
		got  []approval.AuditEvent
		fail bool
	)
	sink := approval.AuditSinkFunc(func(_ context.Context, evs []approval.AuditEvent) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, evs...)
		if fail {
			return errors.New("siem unreachable")
		}
		return nil
	})
	f := newFixture(t, func(c *approval.Config) { c.Audit = sink })
	id := f.Pending(transfer(5000))
	_, err := f.Decide(id, "alice", approval.VerdictApprove)
	require.NoError(t, err)
	_, err = f.Decide(id, "mallory", approval.VerdictApprove)
	require.ErrorIs(t, err, approval.ErrNotEligible)

	mu.Lock()
	fail = true
	mu.Unlock()
	_, err = f.Decide(id, "bob", approval.VerdictApprove)
	require.NoError(t, err, "a failing sink does not undo or fail the committed decision")

	mu.Lock()
	defer mu.Unlock()
	trail := f.events()
	last := trail[len(trail)-1]
	require.Equal(t, approval.EventAuditSinkFailed, last.Type, "the store records the sink's failure")
	require.Equal(t, id, last.RequestID)
	require.Contains(t, last.Reason, "siem unreachable")
	require.Equal(t, trail[:len(trail)-1], got,
		"the sink sees every committed event, sealed, in order, but not the record of its own failure")
}

func TestIssueTokenRejectsBadInput(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const rid = "req_0123456789abcdef0123456789abcdef"
	for name, call := range map[string]func() error{
		"not a request ID": func() error {
			_, err := f.gate.IssueToken("req_x", "bob", approval.VerdictApprove, time.Hour)
			return err
		},
		"empty request":  func() error { _, err := f.gate.IssueToken("", "bob", approval.VerdictApprove, time.Hour); return err },
		"empty approver": func() error { _, err := f.gate.IssueToken(rid, "", approval.VerdictApprove, time.Hour); return err },
		"bad verdict":    func() error { _, err := f.gate.IssueToken(rid, "bob", "maybe", time.Hour); return err },
		"zero ttl":       func() error { _, err := f.gate.IssueToken(rid, "bob", approval.VerdictDeny, 0); return err },
		"cancel without actor": func() error {
			_, err := f.gate.Cancel(f.ctx, f.Pending(transfer(5000)), "", "")
			return err
		},
	} {
		require.ErrorIs(t, call(), approval.ErrInvalidDecision, name)
	}
	verifyOnly, err := approval.New(approval.Config{Store: f.store, VerifyKeys: []ed25519PublicKey{f.priv.Public().(ed25519PublicKey)}})
	require.NoError(t, err)
	_, err = verifyOnly.IssueToken(rid, "bob", approval.VerdictApprove, time.Hour)
	require.ErrorIs(t, err, approval.ErrInvalidConfig)
}
