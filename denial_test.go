package approval_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

func TestDenialReachesTheRequester(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := transfer(5000)
	id := f.Pending(a)
	deny := func(d *approval.Denial, v approval.Verdict) error {
		_, err := f.gate.Decide(f.ctx, id, approval.Decision{Token: f.Token(id, "alice", approval.VerdictBoth), Verdict: v, Reason: "too much at once", Denial: d})
		return err
	}
	for _, bad := range []*approval.Denial{
		{Code: "", Retry: approval.RetryNever},
		{Code: "too broad", Retry: approval.RetryNever},
		{Code: "too-broad", Retry: "maybe"},
		{Code: "too-broad", Retry: approval.RetryChanged, Hint: "\xff"},
	} {
		require.ErrorIs(t, deny(bad, approval.VerdictDeny), approval.ErrInvalidDecision, bad)
	}
	require.ErrorIs(t, deny(&approval.Denial{Code: "too-broad", Retry: approval.RetryChanged}, approval.VerdictApprove), approval.ErrInvalidDecision)
	require.Empty(t, f.Get(id).Votes, "a refused decision records nothing")

	want := &approval.Denial{Code: "too-broad", Retry: approval.RetryChanged, Hint: "split it into transfers under 1000"}
	require.NoError(t, deny(want, approval.VerdictDeny))
	r := f.Get(id)
	require.Equal(t, approval.StatusDenied, r.Status)
	require.Equal(t, want, r.Denial())
	ev := f.events()
	var seen bool
	for _, e := range ev {
		if e.Type == approval.EventDecisionDeny {
			seen = true
			require.Equal(t, "too much at once (code too-broad, retry changed, hint: split it into transfers under 1000)", e.Reason)
		}
	}
	require.True(t, seen)

	// The requester asking again gets the denial, not a new request.
	res, err := f.gate.Guard(f.ctx, a)
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeDenied, res.Status)
	require.Equal(t, id, res.RequestID)
	require.Equal(t, want, res.Denial)
	res.Denial.Hint = "changed by the caller"
	require.Equal(t, want.Hint, f.Get(id).Denial().Hint, "the caller owns its copy")
}
