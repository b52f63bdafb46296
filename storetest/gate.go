package storetest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// RunShared runs the gate-level part of the suite with two gates, each over
// its own store, where both stores share one backing database: two
// connection pools, or two processes' worth of state. It proves that
// separate gates on one database behave as one gate. newStores returns two
// fresh stores on one empty database, and registers its own cleanup.
func RunShared(t *testing.T, newStores func(t *testing.T) (approval.Store, approval.Store)) {
	t.Helper()
	runGateTests(t, newStores)
	runSharedOutboxTests(t, newStores)
	runAskLimitGateTests(t, newStores)
}

// runGateTests drives real gates over the stores: the behaviours users rely
// on (no lost or doubled vote, one request per action, single-use tokens)
// hold only if the store's atomic steps are really atomic. The two gates of
// each test use the two stores newStores returns, which may be one.
func runGateTests(t *testing.T, newStores func(t *testing.T) (approval.Store, approval.Store)) {
	t.Run("gate: concurrent approvers are counted exactly", func(t *testing.T) {
		// 64 eligible approvers race, through two gates, on a request that
		// needs all 64: every vote must land exactly once, each on its own
		// compare-and-set.
		t.Parallel()
		g, other := newGatePair(t, newStores, 64, 64)
		id := guardPending(t, g)
		errs := decideSplit(t, g, other, id, approverNames(64))
		for _, err := range errs {
			require.NoError(t, err)
		}
		r, err := g.Get(context.Background(), id)
		require.NoError(t, err)
		require.Equal(t, approval.StatusApproved, r.Status)
		require.Len(t, r.Votes, 64)
		seen := map[string]bool{}
		for _, v := range r.Votes {
			require.False(t, seen[v.Approver], "vote of %s counted twice", v.Approver)
			seen[v.Approver] = true
		}
		verifyTrail(t, g)
	})

	t.Run("gate: a quorum closes the request to latecomers", func(t *testing.T) {
		// 64 eligible approvers race on a request that needs 2, through two
		// gates: exactly two votes count and 62 are refused as not pending.
		t.Parallel()
		g1, g2 := newGatePair(t, newStores, 64, 2)
		id := guardPending(t, g1)
		names := approverNames(64)
		errs := decideSplit(t, g1, g2, id, names)
		ok, closed := 0, 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, approval.ErrNotPending):
				closed++
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}
		require.Equal(t, 2, ok)
		require.Equal(t, 62, closed)
		r, err := g1.Get(context.Background(), id)
		require.NoError(t, err)
		require.Equal(t, approval.StatusApproved, r.Status)
		require.Len(t, r.Votes, 2)
		verifyTrail(t, g1)
	})

	t.Run("gate: concurrent guards of one action create one request", func(t *testing.T) {
		// 32 goroutines, split over two gates, guard the same action at once:
		// one request is created and every caller gets its ID.
		t.Parallel()
		g1, g2 := newGatePair(t, newStores, 3, 2)
		ids := make([]string, 32)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range ids {
			g := g1
			if i%2 == 1 {
				g = g2
			}
			wg.Go(func() {
				<-start
				res, err := g.Guard(context.Background(), gateAction())
				if err != nil {
					t.Errorf("guard: %v", err)
					return
				}
				ids[i] = res.RequestID
			})
		}
		close(start)
		wg.Wait()
		for _, id := range ids {
			require.Equal(t, ids[0], id)
		}
		page, err := g1.List(context.Background(), approval.RequestQuery{})
		require.NoError(t, err)
		require.Len(t, page.Requests, 1)
	})

	t.Run("gate: one person under several spellings votes once", func(t *testing.T) {
		// The directory matches names without regard to case, as LDAP does.
		// Spellings of one person race through two gates: one vote counts,
		// the others are refused, and the requester cannot approve under
		// another spelling. Identities are stored and listed canonically.
		t.Parallel()
		g1, g2 := newFoldingGatePair(t, newStores, []string{"Ünïcode-Requester", "approver-01", "approver-02"})
		a := gateAction()
		a.RequestedBy = "ÜNÏCODE-requester"
		res, err := g1.Guard(context.Background(), a)
		require.NoError(t, err)
		require.Equal(t, approval.OutcomePending, res.Status)
		id := res.RequestID

		_, err = g2.Decide(context.Background(), id, approval.Decision{Token: issue(t, g2, id, "ünïcode-REQUESTER"), Verdict: approval.VerdictApprove})
		require.ErrorIs(t, err, approval.ErrSelfApproval)

		spellings := []string{"approver-01", "Approver-01", "APPROVER-01", "\uff41pprover-01", "approver\uff0d01"}
		errs := decideSplit(t, g1, g2, id, spellings)
		counted := 0
		for i, err := range errs {
			if err == nil {
				counted++
				continue
			}
			require.ErrorIs(t, err, approval.ErrAlreadyDecided, spellings[i])
		}
		require.Equal(t, 1, counted, "one person, one vote")
		r, err := g2.Get(context.Background(), id)
		require.NoError(t, err)
		require.Equal(t, approval.StatusPending, r.Status, "a quorum of 2 is not met by one person")
		require.Len(t, r.Votes, 1)
		require.Equal(t, "approver-01", r.Votes[0].Approver)
		require.Equal(t, "ünïcode-requester", r.Action.RequestedBy)

		for _, q := range []approval.RequestQuery{{RequestedBy: "Ünïcode-Requester"}, {Approver: "APPROVER-01"}} {
			p, err := g1.List(context.Background(), q)
			require.NoError(t, err)
			require.Len(t, p.Requests, 1, "%+v", q)
			require.Equal(t, id, p.Requests[0].ID)
		}
		p, err := g1.List(context.Background(), approval.RequestQuery{RequestedBy: "unicode-requester"})
		require.NoError(t, err)
		require.Empty(t, p.Requests, "ü and u are different letters")
		verifyTrail(t, g1)
	})

	t.Run("gate: a token used through one gate is refused through another", func(t *testing.T) {
		// A token is single use across every gate sharing the store; the
		// replay changes nothing and is audited.
		t.Parallel()
		g1, g2 := newGatePair(t, newStores, 3, 2)
		ctx := context.Background()
		id := guardPending(t, g1)
		tok, err := g1.IssueToken(id, "approver-00", approval.VerdictApprove, time.Hour)
		require.NoError(t, err)
		_, err = g1.Decide(ctx, id, approval.Decision{Token: tok, Verdict: approval.VerdictApprove})
		require.NoError(t, err)
		before, err := g2.Get(ctx, id)
		require.NoError(t, err)
		_, err = g2.Decide(ctx, id, approval.Decision{Token: tok, Verdict: approval.VerdictApprove})
		require.ErrorIs(t, err, approval.ErrTokenUsed)
		after, err := g2.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, before, after)
		page, err := g2.ListAudit(ctx, approval.AuditQuery{RequestID: id})
		require.NoError(t, err)
		last := page.Events[len(page.Events)-1]
		require.Equal(t, approval.EventDecisionRejected, last.Type)
		require.Equal(t, "approver-00", last.Actor)
		verifyTrail(t, g1)
	})

	t.Run("gate: an approval is consumed once", func(t *testing.T) {
		// After approval, concurrent Guards of the action through two gates
		// return approved exactly once.
		t.Parallel()
		g1, g2 := newGatePair(t, newStores, 3, 1)
		ctx := context.Background()
		id := guardPending(t, g1)
		tok, err := g1.IssueToken(id, "approver-01", approval.VerdictApprove, time.Hour)
		require.NoError(t, err)
		conds := []string{"max_retries <= 2"}
		_, err = g1.Decide(ctx, id, approval.Decision{Token: tok, Verdict: approval.VerdictApprove, Conditions: conds})
		require.NoError(t, err)
		var approved atomic.Int32
		var wg sync.WaitGroup
		for i := range 16 {
			g := g1
			if i%2 == 1 {
				g = g2
			}
			wg.Go(func() {
				res, err := g.Guard(ctx, gateAction())
				if err != nil {
					t.Errorf("guard: %v", err)
				}
				if res.Status == approval.OutcomeApproved {
					approved.Add(1)
					if !slices.Equal(conds, res.Conditions) {
						t.Errorf("conditions: got %q, want %q", res.Conditions, conds)
					}
				}
			})
		}
		wg.Wait()
		require.EqualValues(t, 1, approved.Load())
		page, err := g2.ListAudit(ctx, approval.AuditQuery{RequestID: id})
		require.NoError(t, err)
		require.Equal(t, approval.EventDecisionApprove, page.Events[1].Type)
		require.Equal(t, conds, page.Events[1].Conditions, "the conditions are in the trail")
		verifyTrail(t, g1)
	})

	runIdempotencyGateTests(t, newStores)
}

// newGatePair returns two gates, one over each of a fresh pair of stores,
// sharing one signing key, with a policy needing quorum approvals from a
// group of n approvers.
func newGatePair(t *testing.T, newStores func(t *testing.T) (approval.Store, approval.Store), n, quorum int) (*approval.Gate, *approval.Gate) {
	t.Helper()
	s1, s2 := newStores(t)
	stores := []approval.Store{s1, s2}
	_, priv, err := approval.GenerateKeys()
	require.NoError(t, err)
	dir := approval.StaticDirectory{Groups: map[string][]string{"approvers": approverNames(n)}}
	gates := make([]*approval.Gate, 2)
	for i := range gates {
		g, err := approval.New(approval.Config{
			Store: stores[i], SigningKey: priv, Directory: dir,
			Logger: slog.New(slog.DiscardHandler),
		})
		require.NoError(t, err)
		require.NoError(t, g.SetPolicy("gated", approval.Policy{
			Match:             approval.Name("storetest:*"),
			Approvers:         []approval.Approver{approval.Group("approvers")},
			RequiredApprovals: quorum,
		}))
		t.Cleanup(func() { _ = g.Close(context.Background()) })
		gates[i] = g
	}
	return gates[0], gates[1]
}

// foldingDirectory is a directory that, like LDAP, matches names without
// regard to case.
type foldingDirectory []string

func (d foldingDirectory) IsMember(_ context.Context, a approval.Approver, user string) (bool, error) {
	return a.Name == "approvers" && slices.ContainsFunc(d, func(m string) bool { return strings.EqualFold(m, user) }), nil
}

func (d foldingDirectory) Members(_ context.Context, a approval.Approver) ([]string, error) {
	if a.Name != "approvers" {
		return nil, nil
	}
	return d, nil
}

// newFoldingGatePair is newGatePair with a foldingDirectory of members and a
// quorum of 2.
func newFoldingGatePair(t *testing.T, newStores func(t *testing.T) (approval.Store, approval.Store), members []string) (*approval.Gate, *approval.Gate) {
	t.Helper()
	s1, s2 := newStores(t)
	_, priv, err := approval.GenerateKeys()
	require.NoError(t, err)
	var gates []*approval.Gate
	for _, s := range []approval.Store{s1, s2} {
		g, err := approval.New(approval.Config{
			Store: s, SigningKey: priv, Directory: foldingDirectory(members),
			Logger: slog.New(slog.DiscardHandler),
		})
		require.NoError(t, err)
		require.NoError(t, g.SetPolicy("gated", approval.Policy{
			Match:             approval.Name("storetest:*"),
			Approvers:         []approval.Approver{approval.Group("approvers")},
			RequiredApprovals: 2,
		}))
		t.Cleanup(func() { _ = g.Close(context.Background()) })
		gates = append(gates, g)
	}
	return gates[0], gates[1]
}

func issue(t *testing.T, g *approval.Gate, id, who string) string {
	t.Helper()
	tok, err := g.IssueToken(id, who, approval.VerdictApprove, time.Hour)
	require.NoError(t, err)
	return tok
}

func approverNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("approver-%02d", i)
	}
	return names
}

func gateAction() approval.Action {
	return approval.Action{Name: "storetest:transfer", RequestedBy: "requester", Payload: []byte(`{"amount":5000}`)}
}

func guardPending(t *testing.T, g *approval.Gate) string {
	t.Helper()
	res, err := g.Guard(context.Background(), gateAction())
	require.NoError(t, err)
	require.Equal(t, approval.OutcomePending, res.Status)
	return res.RequestID
}

// decideSplit has every named approver approve at once, alternating gates.
func decideSplit(t *testing.T, g1, g2 *approval.Gate, id string, names []string) []error {
	t.Helper()
	toks := make([]string, len(names))
	for i, n := range names {
		tok, err := g1.IssueToken(id, n, approval.VerdictApprove, time.Hour)
		require.NoError(t, err)
		toks[i] = tok
	}
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range names {
		g := g1
		if i%2 == 1 {
			g = g2
		}
		wg.Go(func() {
			<-start
			_, errs[i] = g.Decide(context.Background(), id, approval.Decision{Token: toks[i], Verdict: approval.VerdictApprove})
		})
	}
	close(start)
	wg.Wait()
	return errs
}

func verifyTrail(t *testing.T, g *approval.Gate) {
	t.Helper()
	n, err := g.VerifyAuditTrail(context.Background(), approval.VerifyAuditOptions{})
	require.NoError(t, err)
	require.Positive(t, n.Events)
}
