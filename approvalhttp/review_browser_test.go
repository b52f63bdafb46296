package approvalhttp_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/browsertest"
)

// TestBrowserReviewerReadsThenDecides drives the pages a finance reviewer
// uses in a 1280x800 Chromium window: an approve link, the signed-in
// page, a chain's page after its first level passed, and the queue. On
// every page a reviewer can decide from, what is approved (the amount and
// the payload) comes before both buttons, the progress is right before and
// after each vote, and no two notices contradict each other.
func TestBrowserReviewerReadsThenDecides(t *testing.T) {
	ctx := browser(t)
	require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)))
	shots := browsertest.ScreenshotDir(t)

	site := newReviewSite(t, map[string][]string{"finance": {"alice", "bob", "carol"}, "leads": {"sam"}}, map[string]approval.Policy{
		"high_spend": {
			Match:             approval.All(approval.Name("wire-transfer"), approval.CostAtLeast(1000, "USD")),
			Reason:            "transfers of 1,000 USD or more need two finance approvals",
			Approvers:         []approval.Approver{approval.Group("finance")},
			RequiredApprovals: 2,
			Timeout:           24 * time.Hour,
			Redact:            []string{"iban"},
		},
		"vendor_onboarding": {
			Match: approval.Name("vendor:add"),
			Chain: []approval.Level{
				{Name: "Team lead", Approvers: []approval.Approver{approval.Group("leads")}, Require: approval.Threshold(1)},
				{Name: "Finance", Approvers: []approval.Approver{approval.Group("finance")}, Require: approval.Threshold(1)},
			},
		},
	})
	gate, links, srv := site.gate, site.links, site.srv

	wire, err := gate.Guard(ctx, approval.Action{
		Name: "wire-transfer", RequestedBy: "dave", Message: "Q4 settlement, invoice 2026-0042",
		Cost:    &approval.Cost{Amount: 125000, Currency: "USD"},
		Payload: []byte(`{"to":{"name":"ACME GmbH","iban":"DE89370400440532013000"},"amount":125000,"currency":"USD","reference":"INV-2026-0042"}`),
	})
	require.NoError(t, err)
	vendor, err := gate.Guard(ctx, approval.Action{
		Name: "vendor:add", RequestedBy: "dave", Message: "Add Globex as a supplier",
		Payload: []byte(`{"vendor":"Globex","country":"DE","terms_days":30}`),
	})
	require.NoError(t, err)

	as := func(who string) chromedp.Action[chromedp.Void] {
		return chromedp.Steps(chromedp.Navigate(srv.URL+"/login?as="+who), chromedp.WaitReady(chromedp.CSS("body")))
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		require.NoError(t, err, sel)
		return strings.Join(strings.Fields(v), " ")
	}
	is := func(js string) bool {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		require.NoError(t, err, js)
		return v
	}
	shot := func(name string) {
		t.Helper()
		b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(shots, name+".png"), b, 0o644))
	}
	// decidable checks a page a reviewer can decide from.
	decidable := func(page string) {
		t.Helper()
		require.True(t, is(`!!document.getElementById("payload") && !!document.getElementById("approve") && !!document.getElementById("deny")`),
			"%s: the payload and both decision buttons", page)
		require.True(t, is(`(document.getElementById("payload").compareDocumentPosition(document.getElementById("approve")) & Node.DOCUMENT_POSITION_FOLLOWING) !== 0`),
			"%s: the payload precedes the buttons", page)
		require.True(t, is(`(document.getElementById("what").compareDocumentPosition(document.getElementById("decide-form")) & Node.DOCUMENT_POSITION_FOLLOWING) !== 0`),
			"%s: what is approved precedes the decision", page)
	}
	// consistent checks that no two notices contradict each other.
	consistent := func(page string) {
		t.Helper()
		require.False(t, is(`!!document.getElementById("flash") && !!document.getElementById("cannot-decide")`),
			"%s: a recorded vote and a refusal at once", page)
		require.False(t, is(`!!document.getElementById("flash") && !!document.getElementById("decide-form")`),
			"%s: a recorded vote and a form to vote again", page)
	}

	// 1. Alice follows the approve link of her notification.
	require.NoError(t, chromedp.Do(ctx, as(""), chromedp.Navigate(links.link(t, "alice")), chromedp.WaitVisible(chromedp.CSS("#approve"))))
	decidable("link page")
	consistent("link page")
	require.Equal(t, "125,000.00 USD", text("#amount"))
	require.Equal(t, "high_spend: 0 of 2 from finance", text("#progress"))
	require.Contains(t, text("#payload"), `"reference": "INV-2026-0042"`)
	require.Contains(t, text("#payload"), `"iban": "[redacted]"`)
	require.True(t, is(`document.querySelectorAll("#history li").length <= 2`), "the history of a request nobody voted on is short")
	shot("1-link-page")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#approve")), chromedp.WaitVisible(chromedp.CSS("#flash"))))
	require.Equal(t, "Your approval was recorded.", text("#flash"))
	require.Equal(t, "high_spend: 1 of 2 from finance; alice approved", text("#progress"))
	consistent("link page after the vote")

	// 2. Bob, signed in, opens the request from the queue and completes it.
	require.NoError(t, chromedp.Do(ctx, as("bob"), chromedp.Navigate(srv.URL+"/review/approvals/"+wire.RequestID), chromedp.WaitVisible(chromedp.CSS("#approve"))))
	decidable("session page")
	consistent("session page")
	require.Equal(t, "high_spend: 1 of 2 from finance; alice approved", text("#progress"))
	shot("2-session-page")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#approve")), chromedp.WaitVisible(chromedp.CSS("#flash"))))
	require.Equal(t, "approved", attrOf(t, ctx, "#status", "data-status"))
	require.Equal(t, "high_spend: met; approved by alice, bob", text("#progress"))
	consistent("session page after the vote")

	// 3. Sam passes the chain's first level; the page says so once.
	require.NoError(t, chromedp.Do(ctx, as("sam"), chromedp.Navigate(srv.URL+"/review/approvals/"+vendor.RequestID), chromedp.WaitVisible(chromedp.CSS("#approve"))))
	decidable("chain page")
	require.Equal(t, "vendor_onboarding · level 1 of 2 (Team lead): 0 of 1 from leads", text("#progress"))
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#approve")), chromedp.WaitVisible(chromedp.CSS("#flash"))))
	require.Equal(t, "Your approval was recorded.", text("#flash"))
	require.Equal(t, "vendor_onboarding · level 2 of 2 (Finance): 0 of 1 from finance", text("#progress"))
	require.False(t, is(`document.body.innerText.includes("not an approver")`), "no refusal beside the recorded vote")
	consistent("chain page after the vote")
	shot("3-chain-page")

	// 4. Carol's queue: what awaits her, with the progress of each row.
	require.NoError(t, chromedp.Do(ctx, as("carol"), chromedp.Navigate(srv.URL+"/review/approvals"), chromedp.WaitVisible(chromedp.CSS("#queue"))))
	require.Equal(t, "true", attrOf(t, ctx, "#row-"+vendor.RequestID, "data-mine"))
	require.Equal(t, "false", attrOf(t, ctx, "#row-"+wire.RequestID, "data-mine"))
	require.Equal(t, "level 2/2: 0 of 1", text("#progress-"+vendor.RequestID))
	require.Equal(t, "Your decision", text("#mine-"+vendor.RequestID))
	require.Contains(t, text("#row-"+wire.RequestID), "125,000.00 USD")
	shot("4-queue")

	// 5. An edit: bob approves a payment with another payee and amount;
	// carol's page shows the edited payload, who edited it and the change.
	require.NoError(t, gate.SetPolicy("any_transfer", approval.Policy{Match: approval.Name("wire-transfer"),
		Approvers: []approval.Approver{approval.Group("finance")}, RequiredApprovals: 2}))
	pay, err := gate.Guard(ctx, approval.Action{
		Name: "wire-transfer", RequestedBy: "dave", Cost: &approval.Cost{Amount: 100, Currency: "USD"},
		Payload: []byte(`{"to":"ACME-ORIGINAL-PAYEE","amount":100}`), Message: "refund",
	})
	require.NoError(t, err)
	tok, err := gate.IssueToken(pay.RequestID, "bob", approval.VerdictApprove, time.Hour)
	require.NoError(t, err)
	_, err = gate.Decide(ctx, pay.RequestID, approval.Decision{Token: tok, Verdict: approval.VerdictApprove,
		Payload: []byte(`{"to":"EVE-EDITED-PAYEE","amount":990000}`)})
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(ctx, as("carol"), chromedp.Navigate(srv.URL+"/review/approvals/"+pay.RequestID), chromedp.WaitVisible(chromedp.CSS("#approve"))))
	decidable("edited page")
	require.Contains(t, text("#edit"), "The payload was edited by bob")
	require.Equal(t, `amount 100 990000`, text(`#changes tr[data-path="amount"]`))
	require.Equal(t, `to "ACME-ORIGINAL-PAYEE" "EVE-EDITED-PAYEE"`, text(`#changes tr[data-path="to"]`))
	require.Contains(t, text("#payload"), "EVE-EDITED-PAYEE")
	require.NotContains(t, text("#payload"), "ACME-ORIGINAL-PAYEE")
	require.True(t, is(`(document.getElementById("edit").compareDocumentPosition(document.getElementById("approve")) & Node.DOCUMENT_POSITION_FOLLOWING) !== 0`),
		"the edit is read before the buttons")
	require.Equal(t, "any_transfer: 1 of 2 from finance; bob approved", text("#progress"))
	shot("5-edited-page")
}

func attrOf(t *testing.T, ctx context.Context, sel, name string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(sel), name))
	require.NoError(t, err, sel)
	return v.Value
}
