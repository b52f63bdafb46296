package approval_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/memstore"
)

// limitPolicy registers "agent-tools": tool:* actions, one approval from
// finance, limited by l.
func limitPolicy(t *testing.T, f *fixture, l approval.AskLimit) {
	t.Helper()
	require.NoError(t, f.gate.SetPolicy("agent-tools", approval.Policy{
		Match: approval.Name("tool:*"), Approvers: []approval.Approver{approval.Group("finance")}, RequiredApprovals: 1,
		Timeout: 2 * time.Hour, Limit: &l,
	}))
}

func toolCall(by string, i int) approval.Action {
	return approval.Action{Name: "tool:run", RequestedBy: by, Payload: fmt.Appendf(nil, `{"call":%d}`, i)}
}

func limitedEvents(f *fixture) []approval.AuditEvent {
	var out []approval.AuditEvent
	for _, e := range f.events() {
		if e.Type == approval.EventAskLimited {
			out = append(out, e)
		}
	}
	return out
}

// A rate of 2 an hour: two requests open, the third is denied with a
// structured denial that says when to ask again, audited once in the
// window however often the agent insists; the bucket refills; after the
// window, a refusal is audited again.
func TestAskLimitRate(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	limitPolicy(t, f, approval.AskLimit{Rate: 2, Per: time.Hour})
	t0 := f.clock.Now()
	for i := range 2 {
		res, err := f.gate.Guard(f.ctx, toolCall("agent-1", i))
		require.NoError(t, err)
		require.Equal(t, approval.OutcomePending, res.Status)
	}
	for i := 2; i < 10; i++ {
		res, err := f.gate.Guard(f.ctx, toolCall("agent-1", i))
		require.NoError(t, err, "a limit is an answer, not an error")
		require.Equal(t, approval.OutcomeDenied, res.Status)
		require.Empty(t, res.RequestID, "no request was opened")
		require.Equal(t, &approval.Denial{Code: approval.DenialAskLimit, Retry: approval.RetryLater,
			RetryAt: t0.Add(30 * time.Minute), Hint: "ask again after " + t0.Add(30*time.Minute).Format(time.RFC3339)}, res.Denial)
		require.Contains(t, res.Reason, "agent-1")
	}
	evs := limitedEvents(f)
	require.Len(t, evs, 1, "eight refusals, one event")
	require.Equal(t, "agent-1", evs[0].Actor)
	require.Equal(t, []approval.PolicyRef{{Name: "agent-tools", Hash: mustHash(t, f, "agent-tools")}}, evs[0].Policies)
	require.Empty(t, evs[0].RequestID)
	require.NotEmpty(t, evs[0].ActionHash)

	// Another agent has a bucket of its own.
	res, err := f.gate.Guard(f.ctx, toolCall("agent-2", 0))
	require.NoError(t, err)
	require.Equal(t, approval.OutcomePending, res.Status)

	f.clock.Advance(30 * time.Minute)
	res, err = f.gate.Guard(f.ctx, toolCall("agent-1", 100))
	require.NoError(t, err)
	require.Equal(t, approval.OutcomePending, res.Status, "the bucket refilled one")
	res, err = f.gate.Guard(f.ctx, toolCall("agent-1", 101))
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeDenied, res.Status)
	require.Len(t, limitedEvents(f), 1, "still the first window")

	f.clock.Advance(31 * time.Minute)
	res, err = f.gate.Guard(f.ctx, toolCall("agent-1", 102))
	require.NoError(t, err)
	require.Equal(t, approval.OutcomePending, res.Status)
	res, err = f.gate.Guard(f.ctx, toolCall("agent-1", 103))
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeDenied, res.Status)
	require.Len(t, limitedEvents(f), 2, "a new window audits again")
}

func mustHash(t *testing.T, f *fixture, name string) string {
	t.Helper()
	h, ok := f.gate.PolicyHash(name)
	require.True(t, ok)
	return h
}

// A cap of 2 open requests, for the agent and for the person behind it:
// asking again for an open request is not limited; a decision or a
// timeout frees a place; the initiator's cap spans their agents.
func TestAskLimitOpenCap(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	limitPolicy(t, f, approval.AskLimit{MaxOpen: 2})
	var ids []string
	for i := range 2 {
		res, err := f.gate.Guard(f.ctx, toolCall("agent-1", i))
		require.NoError(t, err)
		ids = append(ids, res.RequestID)
	}
	res, err := f.gate.Guard(f.ctx, toolCall("agent-1", 2))
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeDenied, res.Status)
	require.Equal(t, approval.RetryLater, res.Denial.Retry)
	require.True(t, res.Denial.RetryAt.IsZero(), "a cap frees a place when a request ends, not at a known time")
	require.Equal(t, "ask again once one of the open requests is decided", res.Denial.Hint)

	again, err := f.gate.Guard(f.ctx, toolCall("agent-1", 1))
	require.NoError(t, err)
	require.Equal(t, approval.OutcomePending, again.Status, "asking again for an open request answers with it")
	require.Equal(t, ids[1], again.RequestID)

	_, err = f.Decide(ids[0], "alice", approval.VerdictDeny)
	require.NoError(t, err)
	res, err = f.gate.Guard(f.ctx, toolCall("agent-1", 2))
	require.NoError(t, err)
	require.Equal(t, approval.OutcomePending, res.Status, "a denial frees a place")

	f.clock.Advance(3 * time.Hour)
	_, err = f.gate.Tick(f.ctx, 0)
	require.NoError(t, err)
	for i := 3; i < 5; i++ {
		res, err = f.gate.Guard(f.ctx, toolCall("agent-1", i))
		require.NoError(t, err)
		require.Equal(t, approval.OutcomePending, res.Status, "timeouts free places")
	}

	// dana's two agents share her cap as initiator.
	for i, agent := range []string{"agent-a", "agent-b", "agent-a"} {
		a := toolCall(agent, 50+i)
		a.Initiator = "dana"
		res, err := f.gate.Guard(f.ctx, a)
		require.NoError(t, err)
		if i < 2 {
			require.Equal(t, approval.OutcomePending, res.Status)
			continue
		}
		require.Equal(t, approval.OutcomeDenied, res.Status)
		require.Contains(t, res.Reason, "initiator dana")
	}
}

// refusalFails is a memstore whose refusal audit fails.
type refusalFails struct{ *memstore.Store }

func (refusalFails) RecordAskRefusal(context.Context, string, time.Time, time.Time, []approval.AuditEvent) (bool, error) {
	return false, errors.New("disk full")
}

// A refusal that cannot be audited still refuses: Guard fails closed,
// denied, with the error.
func TestAskLimitUnauditedRefusalFailsClosed(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *approval.Config) { c.Store = refusalFails{memstore.New()} })
	limitPolicy(t, f, approval.AskLimit{MaxOpen: 1})
	res, err := f.gate.Guard(f.ctx, toolCall("agent-1", 0))
	require.NoError(t, err)
	require.Equal(t, approval.OutcomePending, res.Status)
	res, err = f.gate.Guard(f.ctx, toolCall("agent-1", 1))
	require.ErrorContains(t, err, "disk full")
	require.Equal(t, approval.OutcomeDenied, res.Status)
	require.Empty(t, res.RequestID)
	page, err := f.gate.List(f.ctx, approval.RequestQuery{})
	require.NoError(t, err)
	require.Len(t, page.Requests, 1, "nothing opened")
}

// A Limit is checked when the policy is registered: its values, a deny
// policy, and a store that cannot keep it.
func TestAskLimitValidation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, l := range []approval.AskLimit{{}, {MaxOpen: -1}, {Rate: -1}, {Burst: 2}, {Rate: 1, Per: time.Millisecond},
		{Rate: 1 << 40, Per: time.Second}} {
		err := f.gate.SetPolicy("p", approval.Policy{Match: approval.Name("x"), Approvers: []approval.Approver{approval.User("a")},
			RequiredApprovals: 1, Limit: &l})
		require.ErrorIs(t, err, approval.ErrInvalidPolicy, "%+v", l)
	}
	err := f.gate.SetPolicy("p", approval.Policy{Match: approval.Name("x"), Effect: approval.EffectDeny, Limit: &approval.AskLimit{MaxOpen: 1}})
	require.ErrorIs(t, err, approval.ErrInvalidPolicy)

	plain := newFixture(t, inProcess)
	err = plain.gate.SetPolicy("p", approval.Policy{Match: approval.Name("x"), Approvers: []approval.Approver{approval.User("a")},
		RequiredApprovals: 1, Limit: &approval.AskLimit{MaxOpen: 1}})
	require.ErrorIs(t, err, approval.ErrInvalidPolicy)
	require.ErrorContains(t, err, "AskLimits")

	// The limit is part of the policy's hash; no limit leaves it as it was.
	base := approval.Policy{Match: approval.Name("x"), Approvers: []approval.Approver{approval.User("a")}, RequiredApprovals: 1}
	require.NoError(t, f.gate.SetPolicy("a", base))
	limited := base
	limited.Limit = &approval.AskLimit{MaxOpen: 1}
	require.NoError(t, f.gate.SetPolicy("b", limited))
	require.NoError(t, f.gate.SetPolicy("c", base))
	require.NotEqual(t, mustHash(t, f, "a"), mustHash(t, f, "b"))
}
