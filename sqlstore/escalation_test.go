package sqlstore

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/testkit"
)

// TestEscalationStepsRunOnceAcrossGates has two gates, each with its own
// pool on one database (two replicas), tick the same due requests at once:
// each escalation step runs exactly once per request, and each level
// transition is audited once.
func TestEscalationStepsRunOnceAcrossGates(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newDSN func(testing.TB) string) {
		dsn := newDSN(t)
		start := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
		now := testkit.NewClock()
		now.Set(start)
		clock := now.Now
		_, key, err := approval.GenerateKeys()
		require.NoError(t, err)
		dir := approval.StaticDirectory{Roles: map[string][]string{
			"team_lead": {"tl1", "tl2"}, "manager": {"m1"}, "director": {"d1"},
		}}
		policy := approval.Policy{
			Match: approval.Name("release:*"),
			Chain: []approval.Level{
				{Approvers: []approval.Approver{approval.Role("team_lead")}, Timeout: 90 * time.Minute, Escalation: []approval.EscalationStep{
					{After: 30 * time.Minute, Action: approval.StepReminder},
					{After: time.Hour, Action: approval.StepEscalate, To: []approval.Approver{approval.Role("manager")}},
				}},
				{Approvers: []approval.Approver{approval.Role("manager")}, Escalation: []approval.EscalationStep{
					{After: time.Hour, Action: approval.StepNotify, To: []approval.Approver{approval.Role("director")}},
					{After: 2 * time.Hour, Action: approval.StepAutoDeny},
				}},
			},
			OnTimeout: approval.TimeoutApprove, // level 1 passes on its timeout
			Timeout:   24 * time.Hour,
		}
		var gates [2]*approval.Gate
		for i := range gates {
			g, err := approval.New(approval.Config{Store: open(t, dsn), SigningKey: key, Directory: dir, Now: clock,
				Logger: slog.New(slog.DiscardHandler)})
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, g.Close(context.Background())) })
			require.NoError(t, g.SetPolicy("release", policy))
			gates[i] = g
		}
		const n = 30
		ids := make([]string, n)
		for i := range ids {
			res, err := gates[i%2].Guard(t.Context(), approval.Action{Name: "release:svc-" + strconv.Itoa(i), RequestedBy: "rm"})
			require.NoError(t, err)
			require.Equal(t, approval.OutcomePending, res.Status)
			ids[i] = res.RequestID
		}
		// Every half hour for four hours both gates tick at once, until
		// neither finds anything left.
		for step := 1; step <= 8; step++ {
			at := start.Add(time.Duration(step) * 30 * time.Minute)
			now.Set(at)
			var wg sync.WaitGroup
			for _, g := range gates {
				wg.Go(func() {
					for {
						changed, err := g.Tick(t.Context(), 7)
						if err != nil {
							t.Error(err)
							return
						}
						if changed == 0 {
							return
						}
					}
				})
			}
			wg.Wait()
		}
		counts := map[string]map[approval.EventType]int{}
		for q := (approval.AuditQuery{Limit: approval.MaxPageSize}); ; {
			page, err := gates[0].ListAudit(t.Context(), q)
			require.NoError(t, err)
			for _, e := range page.Events {
				if counts[e.RequestID] == nil {
					counts[e.RequestID] = map[approval.EventType]int{}
				}
				counts[e.RequestID][e.Type]++
			}
			if page.Next == "" {
				break
			}
			q.Cursor = page.Next
		}
		_, err = gates[1].VerifyAuditTrail(t.Context(), approval.VerifyAuditOptions{})
		require.NoError(t, err)
		for _, id := range ids {
			require.Equal(t, map[approval.EventType]int{
				approval.EventRequestCreated:   1,
				approval.EventRequestReminded:  1,
				approval.EventRequestEscalated: 1,
				approval.EventLevelPassed:      1, // level 1 on its timeout
				approval.EventLevelOpened:      1,
				approval.EventRequestAlerted:   1,
				approval.EventRequestDenied:    1,
			}, counts[id], "request %s", id)
			r, err := gates[0].Get(t.Context(), id)
			require.NoError(t, err)
			require.Equal(t, approval.StatusDenied, r.Status)
		}
	})
}
