package sqlstore

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/testkit"
)

// TestConcurrentRevokeTwoPools revokes each of 25 delegations from 8
// goroutines at once, half through each of two stores with their own
// pools on one database: each time exactly one revoke wins and appends its
// event, the others get ErrConflict and write nothing, and the trail stays
// one chain.
func TestConcurrentRevokeTwoPools(t *testing.T) {
	t.Parallel()
	eachBackendPath(t, func(t *testing.T, newDSN func(testing.TB) string, opts []Option) {
		stores := twoStores(t, newDSN, opts...)
		ctx := t.Context()
		const rounds, revokers = 25, 8
		winners := map[string]string{} // delegation ID -> who revoked it
		for round := range rounds {
			d := newDelegation()
			granted := []approval.AuditEvent{{Type: approval.EventDelegationGranted, Actor: "admin", OnBehalfOf: d.From, Reason: d.ID, At: now()}}
			require.NoError(t, stores[round%2].CreateDelegation(ctx, d, granted))

			var (
				wg    sync.WaitGroup
				start = make(chan struct{})
				got   = make([]*approval.Delegation, revokers)
				errs  = make([]error, revokers)
				evs   = make([][]approval.AuditEvent, revokers)
			)
			for i := range revokers {
				by := fmt.Sprintf("admin-%d", i)
				evs[i] = []approval.AuditEvent{{Type: approval.EventDelegationRevoked, Actor: by, Reason: d.ID, At: now()}}
				wg.Go(func() {
					<-start
					got[i], errs[i] = stores[i%2].RevokeDelegation(ctx, d.ID, now(), by, evs[i])
				})
			}
			close(start)
			wg.Wait()
			won := -1
			for i, err := range errs {
				if err != nil {
					require.ErrorIs(t, err, approval.ErrConflict, "revoker %d", i)
					require.Nil(t, got[i])
					require.Empty(t, evs[i][0].Hash, "a losing revoke's event is not sealed")
					continue
				}
				require.Equal(t, -1, won, "revokers %d and %d both won", won, i)
				won = i
			}
			require.NotEqual(t, -1, won, "one revoke wins")
			by := fmt.Sprintf("admin-%d", won)
			require.Equal(t, by, got[won].RevokedBy)
			require.False(t, got[won].RevokedAt.IsZero())
			require.NotEmpty(t, evs[won][0].Hash, "the winner's event is sealed in place")
			winners[d.ID] = by
			for _, s := range stores {
				listed, err := s.ListDelegations(ctx, approval.DelegationQuery{After: d.ID[:len(d.ID)-1], Limit: approval.MaxPageSize})
				require.NoError(t, err)
				require.Contains(t, listed, *got[won], "both stores read the winner's revoke")
			}
		}
		for _, s := range stores {
			trail := fullTrail(t, s)
			require.Len(t, trail, 2*rounds)
			revoked := map[string]string{}
			for _, e := range trail {
				if e.Type != approval.EventDelegationRevoked {
					continue
				}
				_, dup := revoked[e.Reason]
				require.False(t, dup, "delegation %s revoked twice in the trail", e.Reason)
				revoked[e.Reason] = e.Actor
			}
			require.Equal(t, winners, revoked)
		}
	})
}

// TestGateDelegationTwoGates grants a delegation through one gate and has
// the delegate decide through another, each over its own Store on one
// database: the vote counts as the original's, and once revoked the
// delegation lends nothing.
func TestGateDelegationTwoGates(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		dsn := newDSN(t)
		ctx := t.Context()
		start := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
		clock := testkit.NewClock()
		clock.Set(start)
		_, key, err := approval.GenerateKeys()
		require.NoError(t, err)
		dir := approval.StaticDirectory{Groups: map[string][]string{"finance": {"alice", "bob", "carol"}}}
		var gates [2]*approval.Gate
		for i := range gates {
			g, err := approval.New(approval.Config{Store: open(t, dsn), SigningKey: key, Directory: dir,
				Now: clock.Now, Logger: slog.New(slog.DiscardHandler)})
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, g.Close(context.Background())) })
			require.NoError(t, g.SetPolicy("high_spend", approval.Policy{
				Match:             approval.CostAtLeast(1000, "USD"),
				Approvers:         []approval.Approver{approval.Group("finance")},
				RequiredApprovals: 2,
				Timeout:           24 * time.Hour,
			}))
			gates[i] = g
		}
		guard := func(g *approval.Gate, amount float64) string {
			t.Helper()
			res, err := g.Guard(ctx, approval.Action{Name: "wire-transfer", RequestedBy: "user-1",
				Cost: &approval.Cost{Amount: amount, Currency: "USD"}})
			require.NoError(t, err)
			require.Equal(t, approval.OutcomePending, res.Status)
			return res.RequestID
		}
		decide := func(g *approval.Gate, id, who string) (*approval.Request, error) {
			tok, err := g.IssueToken(id, who, approval.VerdictApprove, time.Hour)
			require.NoError(t, err)
			return g.Decide(ctx, id, approval.Decision{Token: tok, Verdict: approval.VerdictApprove})
		}

		d, err := gates[0].Delegate(ctx, "admin", approval.Delegation{From: "Alice", To: "Erin",
			NotAfter: start.Add(24 * time.Hour), Policies: []string{"high_spend"}, Reason: "out of office"})
		require.NoError(t, err)
		listed, err := gates[1].ListDelegations(ctx, approval.DelegationQuery{To: "erin", ActiveAt: start})
		require.NoError(t, err)
		require.Equal(t, []approval.Delegation{*d}, listed)

		id := guard(gates[1], 5000)
		r, err := decide(gates[1], id, "erin")
		require.NoError(t, err)
		require.Equal(t, approval.StatusPending, r.Status, "one approval of two")
		require.Equal(t, "erin", r.Votes[0].Approver)
		require.Equal(t, "alice", r.Votes[0].OnBehalfOf)
		_, err = decide(gates[0], id, "alice")
		require.ErrorIs(t, err, approval.ErrAlreadyDecided, "alice and her delegate count once")
		r, err = decide(gates[0], id, "bob")
		require.NoError(t, err)
		require.Equal(t, approval.StatusApproved, r.Status)

		later := start.Add(time.Hour)
		clock.Set(later)
		revoked, err := gates[1].RevokeDelegation(ctx, d.ID, "alice", "back early")
		require.NoError(t, err)
		require.Equal(t, later, revoked.RevokedAt)
		require.Equal(t, "alice", revoked.RevokedBy)
		_, err = gates[0].RevokeDelegation(ctx, d.ID, "admin", "")
		require.ErrorIs(t, err, approval.ErrConflict)
		_, err = decide(gates[0], guard(gates[0], 6000), "erin")
		require.ErrorIs(t, err, approval.ErrNotEligible, "the revoked delegation lends nothing")

		for _, g := range gates {
			rep, err := g.VerifyAuditTrail(ctx, approval.VerifyAuditOptions{})
			n := rep.Events
			require.NoError(t, err)
			page, err := g.ListAudit(ctx, approval.AuditQuery{Limit: approval.MaxPageSize})
			require.NoError(t, err)
			require.Equal(t, int64(len(page.Events)), n)
			var granted, revokes, onBehalf int
			for _, e := range page.Events {
				switch {
				case e.Type == approval.EventDelegationGranted:
					granted++
				case e.Type == approval.EventDelegationRevoked:
					revokes++
				case e.Type == approval.EventDecisionApprove && e.Actor == "erin":
					require.Equal(t, "alice", e.OnBehalfOf)
					onBehalf++
				}
			}
			require.Equal(t, []int{1, 1, 1}, []int{granted, revokes, onBehalf})
		}
	})
}

// TestDelegationRefusals provokes each refusal of the store's delegation
// methods: each writes nothing.
func TestDelegationRefusals(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		s := open(t, newDSN(t))
		ctx := t.Context()
		ev := func(typ approval.EventType) []approval.AuditEvent {
			return []approval.AuditEvent{{Type: typ, Actor: "admin", At: now()}}
		}
		nothingWritten := func() {
			t.Helper()
			got, err := s.ListDelegations(ctx, approval.DelegationQuery{})
			require.NoError(t, err)
			require.Empty(t, got)
			require.Empty(t, fullTrail(t, s))
		}

		require.ErrorContains(t, s.CreateDelegation(ctx, nil, nil), "nil delegation")
		d := newDelegation()
		d.ID = ""
		require.ErrorIs(t, s.CreateDelegation(ctx, d, ev(approval.EventDelegationGranted)), approval.ErrConflict)

		d = newDelegation()
		d.Reason = "bad \xff"
		require.ErrorIs(t, s.CreateDelegation(ctx, d, ev(approval.EventDelegationGranted)), ErrInvalidText)
		d = newDelegation()
		d.Policies = []string{"ok", "\xfe"}
		err := s.CreateDelegation(ctx, d, ev(approval.EventDelegationGranted))
		require.ErrorIs(t, err, ErrInvalidText)
		require.ErrorContains(t, err, "delegation.Policies[1]")

		d = newDelegation()
		d.NotAfter = time.Unix(1<<62, 0)
		require.ErrorContains(t, s.CreateDelegation(ctx, d, ev(approval.EventDelegationGranted)), "NotAfter")
		d = newDelegation()
		d.CreatedAt = time.Unix(-1<<62, 0)
		require.ErrorContains(t, s.CreateDelegation(ctx, d, ev(approval.EventDelegationGranted)), "outside the times")

		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		require.ErrorIs(t, s.CreateDelegation(cancelled, newDelegation(), ev(approval.EventDelegationGranted)), context.Canceled)
		nothingWritten()

		// A NUL byte: PostgreSQL text holds none; SQLite keeps it exactly.
		d = newDelegation()
		d.From = "ali\x00ce"
		err = s.CreateDelegation(ctx, d, nil)
		if s.Dialect() == Postgres {
			require.ErrorIs(t, err, ErrInvalidText)
			nothingWritten()
		} else {
			require.NoError(t, err)
			got, err := s.ListDelegations(ctx, approval.DelegationQuery{From: "ali\x00ce"})
			require.NoError(t, err)
			require.Equal(t, []approval.Delegation{*d}, got)
			_, err = s.RevokeDelegation(ctx, d.ID, now(), "admin\x00", nil)
			require.NoError(t, err)
		}

		d = newDelegation()
		require.NoError(t, s.CreateDelegation(ctx, d, nil))
		for _, c := range []struct {
			at   time.Time
			by   string
			want string
		}{
			{time.Time{}, "admin", "zero revocation time"},
			{time.Unix(1<<62, 0), "admin", "outside the times"},
			{now(), "admin \xff", ErrInvalidText.Error()},
		} {
			_, err := s.RevokeDelegation(ctx, d.ID, c.at, c.by, ev(approval.EventDelegationRevoked))
			require.ErrorContains(t, err, c.want)
		}
		_, err = s.RevokeDelegation(cancelled, d.ID, now(), "admin", ev(approval.EventDelegationRevoked))
		require.ErrorIs(t, err, context.Canceled)
		got, err := s.ListDelegations(ctx, approval.DelegationQuery{To: "bob", ActiveAt: now()})
		require.NoError(t, err)
		require.Equal(t, []approval.Delegation{*d}, got, "still active")
		for _, e := range fullTrail(t, s) {
			require.NotEqual(t, approval.EventDelegationRevoked, e.Type)
		}

		_, err = s.ListDelegations(ctx, approval.DelegationQuery{After: "dlg_\xff"})
		require.ErrorIs(t, err, approval.ErrInvalidCursor)
		_, err = s.ListDelegations(cancelled, approval.DelegationQuery{})
		require.ErrorIs(t, err, context.Canceled)
		for _, at := range []time.Time{time.Unix(1<<62, 0), time.Unix(-1<<62, 0)} {
			got, err := s.ListDelegations(ctx, approval.DelegationQuery{ActiveAt: at})
			require.NoError(t, err)
			require.Empty(t, got, "active at %s", at)
		}
		got, err = s.ListDelegations(ctx, approval.DelegationQuery{To: "bob\xff"})
		require.NoError(t, err)
		require.Empty(t, got)
	})
}

// TestDelegationStoredExactly reads back what was written: zero times,
// sub-microsecond times normalised, no policies, and ID order byte by
// byte (as Go compares strings, whatever the database's collation),
// walked page by page.
func TestDelegationStoredExactly(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		s := open(t, newDSN(t))
		ctx := t.Context()
		d := &approval.Delegation{ID: "dlg_zero", From: "alice", To: "bob", Policies: []string{},
			NotAfter: time.Date(2026, 6, 1, 9, 0, 0, 123456789, time.FixedZone("CEST", 2*3600))}
		require.NoError(t, s.CreateDelegation(ctx, d, nil))
		got, err := s.ListDelegations(ctx, approval.DelegationQuery{})
		require.NoError(t, err)
		require.Equal(t, []approval.Delegation{{ID: "dlg_zero", From: "alice", To: "bob",
			NotAfter: time.Date(2026, 6, 1, 7, 0, 0, 123456000, time.UTC)}}, got)
		require.Nil(t, got[0].Policies)

		// Active until NotAfter, exclusive, compared to the microsecond
		// the store keeps.
		for _, c := range []struct {
			at     time.Time
			active bool
		}{
			{time.Date(2026, 6, 1, 7, 0, 0, 123455999, time.UTC), true},
			{time.Date(2026, 6, 1, 7, 0, 0, 123456000, time.UTC), false},
			{time.Date(2026, 6, 1, 7, 0, 0, 123456001, time.UTC), false},
		} {
			got, err := s.ListDelegations(ctx, approval.DelegationQuery{ActiveAt: c.at})
			require.NoError(t, err)
			require.Equal(t, c.active, len(got) == 1, "active at %s", c.at.Format(time.RFC3339Nano))
		}

		ids := []string{"dlg_B", "dlg_a", "dlg_-", "dlg_b", "dlg_A1", "dlg_~"}
		for _, id := range ids {
			d := newDelegation()
			d.ID, d.To = id, "carol"
			require.NoError(t, s.CreateDelegation(ctx, d, nil))
		}
		want := []string{"dlg_-", "dlg_A1", "dlg_B", "dlg_a", "dlg_b", "dlg_~"}
		var walked []string
		q := approval.DelegationQuery{To: "carol", Limit: 4}
		for {
			page, err := s.ListDelegations(ctx, q)
			require.NoError(t, err)
			require.LessOrEqual(t, len(page), 4)
			for _, d := range page {
				walked = append(walked, d.ID)
			}
			if len(page) < q.Limit {
				break
			}
			q.After = page[len(page)-1].ID
		}
		require.Equal(t, want, walked)
	})
}
