package approvalhttp_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// TestRepeatShownAndRefused: a new request for an action identical to one
// that ran says so on its page, in the queue and in the API; through the
// HTTP API and Client, an operation with an idempotency key that already
// ran answers "consumed" with the earlier request, and nothing new opens.
func TestRepeatShownAndRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := f.newClient("")

	// Without a key: the duplicate is visible to its reviewers.
	a := agentTransfer(5000)
	res, err := c.Guard(f.ctx, a)
	require.NoError(t, err)
	first := res.RequestID
	f.approve(first)
	res, err = c.Guard(f.ctx, a)
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeApproved, res.Status, "it ran")
	res, err = c.Guard(f.ctx, a)
	require.NoError(t, err)
	require.Equal(t, approval.OutcomePending, res.Status)
	dup := res.RequestID
	require.NotEqual(t, first, dup)

	page := f.get("/approvals/"+dup, "carol").html(t, http.StatusOK)
	require.Equal(t, first, attr(page, "prior", "data-request"))
	require.Contains(t, page, "An identical action was approved and ran at")
	require.Less(t, strings.Index(page, `id="prior"`), strings.Index(page, `id="approve"`), "said before the buttons")
	queue := f.get("/approvals", "carol").html(t, http.StatusOK)
	require.Contains(t, section(t, queue, `id="row-`+dup+`"`, `</tr>`), "ran before")
	var got struct {
		Prior *approval.PriorRun `json:"prior"`
	}
	f.get("/api/approvals/"+dup, "carol").json(t, &got)
	require.NotNil(t, got.Prior)
	require.Equal(t, first, got.Prior.RequestID)

	// With a key: the operation runs once.
	k := agentTransfer(7000)
	k.IdempotencyKey = "PAY-2026-0042"
	res, err = c.Guard(f.ctx, k)
	require.NoError(t, err)
	require.Equal(t, approval.OutcomePending, res.Status)
	keyed := res.RequestID
	f.approve(keyed)
	res, err = c.Guard(f.ctx, k)
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeApproved, res.Status)
	for range 2 {
		res, err = c.Guard(f.ctx, k)
		require.NoError(t, err)
		require.Equal(t, approval.OutcomeAlreadyRan, res.Status, "already ran: nothing to run")
		require.Equal(t, keyed, res.RequestID)
	}
	other := agentTransfer(7001)
	other.IdempotencyKey = k.IdempotencyKey
	_, err = c.Guard(f.ctx, other)
	require.ErrorIs(t, err, approval.ErrInvalidAction, "a key reused with another action")
}
