package approval_test

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/testkit"
)

// TestUnmeetableQuorumDeniedAtOnce: a quorum nobody can meet is denied when
// the request would be created, audited and returned with its reason,
// rather than left pending until the timeout.
func TestUnmeetableQuorumDeniedAtOnce(t *testing.T) {
	t.Parallel()
	dir := approval.StaticDirectory{Groups: map[string][]string{
		"pair":     {"amy", "ben"},
		"trio":     {"amy", "ben", "cy"},
		"ops":      {"ops-1", "ops-2", "ops-3"},
		"casefold": {"Dan", "dan", "DAN", "eve"},
	}}
	for _, tt := range []struct {
		name      string
		policies  map[string]approval.Policy
		requester string
		distinct  bool
		denied    string // "" if the request is pending
	}{
		{name: "five from a group of two", policies: map[string]approval.Policy{
			"p": {Approvers: []approval.Approver{approval.Group("pair")}, RequiredApprovals: 5},
		}, denied: "policy p needs 5 approvals and 2 people can give them"},
		{name: "an unknown group", policies: map[string]approval.Policy{
			"p": {Approvers: []approval.Approver{approval.Group("nobody-knows")}, RequiredApprovals: 1},
		}, denied: "policy p needs 1 approval and 0 people can give them"},
		{name: "the requester is one of two", requester: "amy", policies: map[string]approval.Policy{
			"p": {Approvers: []approval.Approver{approval.Group("pair")}, RequiredApprovals: 2},
		}, denied: "(the requester may not)"},
		{name: "the requester may self-approve", requester: "amy", policies: map[string]approval.Policy{
			"p": {Approvers: []approval.Approver{approval.Group("pair")}, RequiredApprovals: 2, AllowSelfApproval: true},
		}},
		{name: "named users, one the requester", requester: "Amy", policies: map[string]approval.Policy{
			"p": {Approvers: []approval.Approver{approval.User("amy"), approval.User("ben")}, RequiredApprovals: 2},
		}, denied: "1 person can"},
		{name: "spellings of one person count once", policies: map[string]approval.Policy{
			"p": {Approvers: []approval.Approver{approval.Group("casefold")}, RequiredApprovals: 3},
		}, denied: "3 approvals and 2 people"},
		{name: "escalation can meet it", policies: map[string]approval.Policy{
			"p": {Approvers: []approval.Approver{approval.Group("pair")}, RequiredApprovals: 3,
				Escalation: []approval.EscalationStep{{After: time.Hour, Action: approval.StepEscalate, To: []approval.Approver{approval.Group("ops")}}}},
		}},
		{name: "met exactly", policies: map[string]approval.Policy{
			"p": {Approvers: []approval.Approver{approval.Group("trio")}, RequiredApprovals: 3},
		}},
		{name: "distinct across policies: not enough people", distinct: true, policies: map[string]approval.Policy{
			"p": {Approvers: []approval.Approver{approval.Group("pair")}, RequiredApprovals: 2},
			"q": {Approvers: []approval.Approver{approval.Group("trio")}, RequiredApprovals: 2},
		}, denied: "each approver counted once"},
		{name: "distinct across policies: enough people", distinct: true, policies: map[string]approval.Policy{
			"p": {Approvers: []approval.Approver{approval.Group("pair")}, RequiredApprovals: 2},
			"q": {Approvers: []approval.Approver{approval.Group("trio"), approval.Group("ops")}, RequiredApprovals: 2},
		}},
		{name: "shared approvers, not distinct", policies: map[string]approval.Policy{
			"p": {Approvers: []approval.Approver{approval.Group("pair")}, RequiredApprovals: 2},
			"q": {Approvers: []approval.Approver{approval.Group("pair")}, RequiredApprovals: 2},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{}
			var log testkit.Buffer
			f := newFixture(t, func(c *approval.Config) {
				c.Logger = slog.New(slog.NewTextHandler(&log, nil))
				// A directory that resolves groups on demand: it cannot
				// list them, so an unknown group reaches Guard.
				c.Directory = dynamicDirectory{dir}
				c.DistinctApproversAcrossPolicies = tt.distinct
				c.Channels = []approval.Channel{rec}
			})
			require.True(t, f.gate.RemovePolicy("high_spend"))
			for name, p := range tt.policies {
				p.Match = approval.Name("deploy")
				require.NoError(t, f.gate.SetPolicy(name, p))
			}
			requester := tt.requester
			if requester == "" {
				requester = "zed"
			}
			res, err := f.gate.Guard(f.ctx, approval.Action{Name: "deploy", RequestedBy: requester})
			require.NoError(t, err)
			if tt.denied == "" {
				require.Equal(t, approval.OutcomePending, res.Status)
				return
			}
			require.Equal(t, approval.OutcomeDenied, res.Status)
			require.NotEmpty(t, res.RequestID)
			require.Contains(t, res.Reason, "quorum cannot be met")
			require.Contains(t, res.Reason, tt.denied)
			r := f.Get(res.RequestID)
			require.Equal(t, approval.StatusDenied, r.Status)
			require.Equal(t, res.Reason, r.Reason)
			evs := f.events()
			require.Equal(t, []approval.EventType{approval.EventRequestCreated, approval.EventRequestDenied}, eventTypes(evs))
			require.Equal(t, approval.SystemActor, evs[1].Actor)
			require.Equal(t, res.Reason, evs[1].Reason)
			require.NoError(t, f.gate.Close(f.ctx))
			require.Empty(t, rec.sent(), "no one is asked to meet an unmeetable quorum")
			require.Contains(t, log.String(), "quorum cannot be met")
		})
	}
}

type downDirectory struct{ approval.StaticDirectory }

func (downDirectory) Members(context.Context, approval.Approver) ([]string, error) {
	return nil, errors.New("ldap down")
}

// TestQuorumCheckDirectoryDown: when the directory cannot say, the request
// stays pending (decisions still fail closed on directory errors).
func TestQuorumCheckDirectoryDown(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *approval.Config) { c.Directory = downDirectory{financeDir} })
	id := f.Pending(transfer(5000))
	require.Equal(t, approval.StatusPending, f.Get(id).Status)
}

// hangingDirectory's Members answers only when its caller gives up.
type hangingDirectory struct {
	approval.StaticDirectory
	calls *atomic.Int32
}

func (d hangingDirectory) Members(ctx context.Context, _ approval.Approver) ([]string, error) {
	d.calls.Add(1)
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestQuorumCheckDirectoryHangs: a directory that hangs costs one Guard
// the check's bound, leaves the request pending, and is then skipped by
// the checks that follow, so Guard is not held on every call.
func TestQuorumCheckDirectoryHangs(t *testing.T) {
	t.Parallel()
	calls := &atomic.Int32{}
	f := newFixture(t, func(c *approval.Config) { c.Directory = hangingDirectory{financeDir, calls} })
	start := time.Now()
	id := f.Pending(transfer(5000))
	first := time.Since(start)
	require.GreaterOrEqual(t, first, time.Second, "the check waited for the directory")
	require.Less(t, first, 10*time.Second, "but not beyond its bound")
	require.Equal(t, approval.StatusPending, f.Get(id).Status)
	require.Positive(t, calls.Load())

	start = time.Now()
	f.Pending(transfer(5001))
	require.Less(t, time.Since(start), time.Second, "the next check skips the hanging directory")
}
