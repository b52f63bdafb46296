package scale

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// allRequests lists every request of s, in ID order.
func allRequests(t *testing.T, s approval.Store) []*approval.Request {
	t.Helper()
	var all []*approval.Request
	q := approval.RequestQuery{Limit: approval.MaxPageSize}
	for {
		page, err := s.List(t.Context(), q)
		require.NoError(t, err)
		all = append(all, page.Requests...)
		if page.Next == "" {
			return all
		}
		q.Cursor = page.Next
	}
}

// TestBuild: a built store is one the gate could have made. Its trail
// verifies against its requests; it holds the Spec's kinds; nothing in it
// is due, so a Tick changes nothing; a Guard of a stored live action finds
// its request, a stored pending request takes a decision, a new action
// creates one. Every backend holds the same requests and the same trail.
func TestBuild(t *testing.T) {
	t.Parallel()
	spec := Spec{Requests: 600, End: time.Now().UTC().Truncate(time.Second)}
	counts, err := spec.withDefaults().counts()
	require.NoError(t, err)
	var (
		want      []*approval.Request
		wantTrail approval.AuditHead
	)
	for _, backend := range Backends {
		t.Run(string(backend), func(t *testing.T) {
			b := Build(t, backend, spec)
			ctx := context.Background()
			report, err := approval.VerifyAuditTrail(ctx, b.Store, approval.VerifyAuditOptions{})
			require.NoError(t, err)
			require.Equal(t, int64(spec.Requests), report.Requests)
			require.Equal(t, b.Events, report.Events)

			got := allRequests(t, b.Store)
			require.Len(t, got, spec.Requests)
			byStatus := map[approval.Status]int{}
			for _, r := range got {
				byStatus[r.Status]++
				require.False(t, r.CreatedAt.After(spec.End), r.ID)
				require.True(t, r.DueAt.IsZero() || r.DueAt.After(spec.End.Add(time.Hour)), "%s is due at %s", r.ID, r.DueAt)
			}
			wantStatuses := map[approval.Status]int{}
			for k, n := range counts {
				wantStatuses[wantStatus[k]] += n
			}
			require.Equal(t, wantStatuses, byStatus)
			if want == nil {
				want, wantTrail = got, report.Head
			} else {
				require.Equal(t, want, got, "the same requests as on %s", Backends[0])
				require.Equal(t, wantTrail, report.Head, "the same trail as on %s", Backends[0])
			}

			g := NewGate(t, b.Store, nil)
			n, err := g.Tick(ctx, 0)
			require.NoError(t, err)
			require.Zero(t, n, "requests due")

			pending, err := b.Store.List(ctx, approval.RequestQuery{Status: []approval.Status{approval.StatusPending}, Limit: 1})
			require.NoError(t, err)
			require.Len(t, pending.Requests, 1)
			r := pending.Requests[0]
			res, err := g.Guard(ctx, r.Action)
			require.NoError(t, err)
			require.Equal(t, approval.OutcomePending, res.Status)
			require.Equal(t, r.ID, res.RequestID, "the live request of the action")
			who := "approver-3"
			if len(r.Votes) > 0 && r.Votes[0].Approver == who {
				who = "approver-2"
			}
			tok, err := g.IssueToken(r.ID, who, approval.VerdictDeny, time.Hour)
			require.NoError(t, err)
			decided, err := g.Decide(ctx, r.ID, approval.Decision{Token: tok, Verdict: approval.VerdictDeny})
			require.NoError(t, err)
			require.Equal(t, approval.StatusDenied, decided.Status)

			res, err = g.Guard(ctx, Action("new-action", 1))
			require.NoError(t, err)
			require.Equal(t, approval.OutcomePending, res.Status)
			_, err = approval.VerifyAuditTrail(ctx, b.Store, approval.VerifyAuditOptions{})
			require.NoError(t, err)
		})
	}
}

// TestSpecCounts: the kinds' counts add up to the requests, shared by
// weight.
func TestSpecCounts(t *testing.T) {
	t.Parallel()
	counts, err := Spec{Requests: 1001, Mix: Mix{Pending: 1, Consumed: 3}}.withDefaults().counts()
	require.NoError(t, err)
	require.Equal(t, map[Kind]int{Pending: 250, Consumed: 751, ConsumedKeyed: 0, Denied: 0, TimedOut: 0, Cancelled: 0, Expired: 0, PendingVoted: 0, Approved: 0}, counts)
	_, err = Spec{Requests: 10, Mix: Mix{"archived": 1}}.withDefaults().counts()
	require.ErrorContains(t, err, `"archived"`)
	_, err = Spec{Requests: 10, Mix: Mix{Pending: 0}}.withDefaults().counts()
	require.ErrorContains(t, err, "no weight")
}
