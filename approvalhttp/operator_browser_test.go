package approvalhttp_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/browsertest"
)

// TestBrowserOperatorPage: the on-call operator opens the operator page
// in a 1280x800 Chromium window, reads what waits, how long decisions
// take, and which channel fails, and redrives a dead letter; the page
// after the redirect says so, and the audit trail names the operator.
func TestBrowserOperatorPage(t *testing.T) {
	ctx := browser(t)
	require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)))
	shots := browsertest.ScreenshotDir(t)

	f, w := newOpsFixture(t)
	mux := http.NewServeMux()
	mux.Handle("/", f.h)
	mux.HandleFunc("/login", func(rw http.ResponseWriter, r *http.Request) {
		http.SetCookie(rw, &http.Cookie{Name: "test-user", Value: r.URL.Query().Get("as"), Path: "/"})
		_, _ = rw.Write([]byte("signed in"))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

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
	shot := func(name string, full bool) {
		t.Helper()
		var b []byte
		var err error
		if full {
			b, err = chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
		} else {
			b, err = chromedp.Run(ctx, chromedp.CaptureScreenshot())
		}
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(shots, name+".png"), b, 0o644))
	}

	// A reviewer who is not an operator is refused.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/login?as=alice"), chromedp.WaitReady(chromedp.CSS("body")),
		chromedp.Navigate(srv.URL+"/operator"), chromedp.WaitVisible(chromedp.CSS("#message"))))
	require.Equal(t, "forbidden", attrOf(t, ctx, "#message", "data-code"))

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/login?as="+operatorID), chromedp.WaitReady(chromedp.CSS("body")),
		chromedp.Navigate(srv.URL+"/operator"), chromedp.WaitVisible(chromedp.CSS("#open"))))
	require.Equal(t, "2", text(`#open tr[data-policy="high_spend"] .count`))
	require.Equal(t, "3h 12m", text(`#open tr[data-policy="high_spend"] .age`))
	require.Equal(t, "20m", text(`#decision-times tr[data-policy="deploy"] .day-p50`))
	require.Equal(t, "3h", text(`#decision-times tr[data-policy="deploy"] .week-p90`))
	require.Equal(t, "2", text(`#channel-health tr[data-channel="pager"] .dead`))
	require.Equal(t, "2", text(`#channel-health tr[data-channel="chat"] .retrying`))
	require.Equal(t, "5m", text(`#channel-health tr[data-channel="chat"] .lag`))
	require.True(t, is(`document.querySelectorAll("script").length === 0`), "no script")
	widths, err := chromedp.Run(ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("table")].map(t => t.id + ": " + t.scrollWidth).join(", ")`))
	require.NoError(t, err)
	require.True(t, is(`document.documentElement.scrollWidth <= window.innerWidth`), "nothing wider than the window: %s", widths)
	// The chart is drawn: the p90 bar of 3 to 4 days ago is the full
	// height, its p50 a third of it; a screen reader gets the numbers.
	require.True(t, is(`(() => {
		const g = document.querySelectorAll('#decision-times tr[data-policy="deploy"] svg g.day')[3];
		const p90 = g.querySelector("rect.p90").getBoundingClientRect(), p50 = g.querySelector("rect.p50").getBoundingClientRect();
		return p90.height === 56 && p50.height === 19 && getComputedStyle(g.querySelector("rect.p50")).fill !== getComputedStyle(g.querySelector("rect.p90")).fill;
	})()`), "the bars are drawn to scale, in two colours")
	require.Contains(t, attrOf(t, ctx, `#decision-times tr[data-policy="deploy"] svg`, "aria-label"), "Last 24 hours: 3 decisions, p50 20m, p90 40m")
	// The pending table and the audit trail share the first screen.
	require.True(t, is(`document.getElementById("verify-now").getBoundingClientRect().bottom < 800`), "Verify now on the first screen")
	require.True(t, is(`document.querySelector('#channel-health tr[data-channel="pager"]').getBoundingClientRect().bottom < 800`), "the failing channel on the first screen")
	shot("operator-1-first-screen", false)
	shot("operator-2-whole-page", true)

	// Redrive the first dead letter; the pager holds it, so it stays
	// pending.
	w.pager.holdSends()
	id := w.dead[0].ID
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("redrive-"+id)),
		chromedp.WaitVisible(chromedp.ID("flash"))))
	require.Equal(t, "false", attrOf(t, ctx, "#flash", "data-error"))
	require.Contains(t, text("#flash"), "Message "+id+" was redriven")
	require.Equal(t, "1", text(`#channel-health tr[data-channel="pager"] .dead`))
	require.False(t, is(`!!document.getElementById("dead-`+id+`")`), "no longer listed as dead")
	require.True(t, is(`location.pathname === "/operator" && location.hash === "#dead-letters"`), "back on the operator page")
	require.True(t, is(`(() => { const r = document.getElementById("flash").getBoundingClientRect(); return r.top >= 0 && r.bottom <= window.innerHeight; })()`),
		"the notice is in view, beside the dead letters")
	shot("operator-3-redriven", false)

	evs := f.auditEvents(approval.EventNotificationRedriven)
	require.Len(t, evs, 1)
	require.Equal(t, operatorID, evs[0].Actor)
	require.Contains(t, evs[0].Reason, id)

	// Verify now: the whole trail, then the page shows the verified head.
	// (The redrive's notice goes first, so that the one waited for is
	// the new page's.)
	_, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("flash").remove() || true`))
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("verify-now")),
		chromedp.WaitVisible(chromedp.ID("flash"))))
	require.Equal(t, "false", attrOf(t, ctx, "#flash", "data-error"))
	require.Contains(t, text("#flash"), "The audit trail verified:")
	st, err := f.gate.Stats(f.ctx)
	require.NoError(t, err)
	require.Positive(t, st.Verified.Head.Seq)
	require.Equal(t, strconv.FormatInt(st.Verified.Head.Seq, 10), attrOf(t, ctx, "#verified", "data-seq"))
	shot("operator-4-verified", false)
}
