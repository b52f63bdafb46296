package approvalhttp_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/browsertest"
)

// TestBrowserBulkApprove drives the queue's bulk decision in a 1280x800
// Chromium window: alice ticks 10 of 12 open payments, approves them,
// reads the confirmation listing the 10, confirms, and sees 10 recorded;
// the gate holds 10 approvals, each with a vote and an audit event of
// its own. A selection across policies is then refused on the page.
func TestBrowserBulkApprove(t *testing.T) {
	ctx := browser(t)
	require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)))
	shots := browsertest.ScreenshotDir(t)

	site := newReviewSite(t, map[string][]string{"finance": {"alice", "bob"}}, map[string]approval.Policy{
		"payments": {
			Match:             approval.Name("payment"),
			Approvers:         []approval.Approver{approval.Group("finance")},
			RequiredApprovals: 1,
		},
		"vendor_onboarding": {
			Match:             approval.Name("vendor:add"),
			Approvers:         []approval.Approver{approval.Group("finance")},
			RequiredApprovals: 1,
		},
	})
	gate, srv := site.gate, site.srv
	var ids []string
	for i := range 12 {
		res, err := gate.Guard(ctx, approval.Action{
			Name: "payment", RequestedBy: "dave", Message: fmt.Sprintf("Invoice 2026-%04d", 100+i),
			Cost:    &approval.Cost{Amount: float64(250 + 10*i), Currency: "EUR"},
			Payload: fmt.Appendf(nil, `{"invoice":"2026-%04d","amount":%d,"currency":"EUR"}`, 100+i, 250+10*i),
		})
		require.NoError(t, err)
		require.Equal(t, approval.OutcomePending, res.Status)
		ids = append(ids, res.RequestID)
	}
	vendor, err := gate.Guard(ctx, approval.Action{Name: "vendor:add", RequestedBy: "dave", Message: "Add Globex", Payload: []byte(`{"vendor":"Globex"}`)})
	require.NoError(t, err)

	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		require.NoError(t, err, sel)
		return strings.Join(strings.Fields(v), " ")
	}
	count := func(sel string) int {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(`+"`"+sel+"`"+`).length`))
		require.NoError(t, err, sel)
		return v
	}

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/login?as=alice"), chromedp.WaitReady(chromedp.CSS("body")),
		chromedp.Navigate(srv.URL+"/review/approvals"), chromedp.WaitVisible(chromedp.CSS("#bulk-form")),
	))
	require.Equal(t, 13, count(`#queue input[type=checkbox][name=id]`), "a checkbox on each open request alice may decide")
	picked := ids[:10]
	for _, id := range picked {
		require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#pick-"+id))))
	}
	require.Equal(t, 10, count(`#queue input[name=id]:checked`))
	_, err = chromedp.Run(ctx, chromedp.Evaluate[int](`window.scrollTo(0, 0), 0`))
	require.NoError(t, err)
	browsertest.Screenshot(t, ctx, shots, "bulk-1-queue.png")

	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#bulk-approve")), chromedp.WaitVisible(chromedp.CSS("#bulk-confirm"))))
	require.Equal(t, 10, count(`#bulk-items li.bulk-item`), "the confirmation lists the 10 selected")
	for i, id := range picked {
		r, err := gate.Get(ctx, id)
		require.NoError(t, err)
		item := text("#item-" + id)
		require.Contains(t, item, r.ActionHash)
		require.Contains(t, item, fmt.Sprintf(`"invoice": "2026-%04d"`, 100+i))
		require.Contains(t, item, "requested by dave")
		require.Empty(t, r.Votes, "nothing is decided before the confirmation")
	}
	require.Equal(t, "Approve these 10", text("#bulk-confirm"))
	require.Equal(t, "payments", text("#bulk-policies"))
	browsertest.Screenshot(t, ctx, shots, "bulk-2-confirm.png")

	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#bulk-confirm")), chromedp.WaitVisible(chromedp.CSS("#bulk-summary"))))
	require.Equal(t, "10", attrOf(t, ctx, "#bulk-summary", "data-recorded"))
	require.Equal(t, "0", attrOf(t, ctx, "#bulk-summary", "data-refused"))
	require.Equal(t, 10, count(`#bulk-results tr[data-status=recorded]`))
	browsertest.Screenshot(t, ctx, shots, "bulk-3-results.png")

	tokens := map[string]bool{}
	for _, id := range picked {
		r, err := gate.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, approval.StatusApproved, r.Status)
		require.Len(t, r.Votes, 1)
		require.Equal(t, "alice", r.Votes[0].Approver)
		tokens[r.Votes[0].TokenID] = true
		page, err := gate.ListAudit(ctx, approval.AuditQuery{RequestID: id, Type: approval.EventDecisionApprove})
		require.NoError(t, err)
		require.Len(t, page.Events, 1)
		require.Equal(t, "alice", page.Events[0].Actor)
	}
	require.Len(t, tokens, 10, "a token of its own for each vote")
	for _, id := range ids[10:] {
		r, err := gate.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, approval.StatusPending, r.Status)
		require.Empty(t, r.Votes)
	}

	// A selection across policies is refused, and decides nothing.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("#back")), chromedp.WaitVisible(chromedp.CSS("#bulk-form")),
		chromedp.Click(chromedp.CSS("#pick-"+ids[10])), chromedp.Click(chromedp.CSS("#pick-"+vendor.RequestID)),
		chromedp.Click(chromedp.CSS("#bulk-approve")), chromedp.WaitVisible(chromedp.CSS("#message")),
	))
	require.Equal(t, "mixed_policies", attrOf(t, ctx, "#message", "data-code"))
	require.Contains(t, text("#message"), "Nothing was decided")
	require.Contains(t, text("#refused-"+vendor.RequestID), "vendor_onboarding")
	browsertest.Screenshot(t, ctx, shots, "bulk-4-refused.png")
	for _, id := range []string{ids[10], vendor.RequestID} {
		r, err := gate.Get(ctx, id)
		require.NoError(t, err)
		require.Empty(t, r.Votes)
	}
}
