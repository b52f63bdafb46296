package approvalhttp_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/approvalhttp"
	"github.com/signoff/approval/internal/browsertest"
	"github.com/signoff/approval/memstore"
)

// browser starts headless Chromium for t, or skips without one (see
// internal/browsertest).
func browser(t *testing.T) context.Context {
	t.Helper()
	return browsertest.Start(t, 1280, 2000)
}

// linkRecorder is a channel keeping each recipient's approve link.
type linkRecorder struct {
	mu    sync.Mutex
	links map[string]string // recipient -> approve URL
}

func (r *linkRecorder) Name() string { return "links" }

func (r *linkRecorder) Send(_ context.Context, n approval.Notification) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n.Type == approval.NotifyRequested {
		r.links[n.Recipient] = n.ApproveURL
	}
	return nil
}

func (r *linkRecorder) link(t *testing.T, who string) string {
	t.Helper()
	var l string
	require.Eventually(t, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		l = r.links[who]
		return l != ""
	}, 10*time.Second, 5*time.Millisecond, "approve link for %s", who)
	return l
}

// reviewSite is a gate over memory whose notification links are recorded,
// served by the handler under /review/ on a test server; /login?as=NAME
// signs a reviewer in (a cookie the handler's Identity reads).
type reviewSite struct {
	srv   *httptest.Server
	gate  *approval.Gate
	links *linkRecorder
}

func newReviewSite(t *testing.T, groups map[string][]string, policies map[string]approval.Policy) *reviewSite {
	t.Helper()
	site := &reviewSite{links: &linkRecorder{links: map[string]string{}}}
	mux := http.NewServeMux()
	site.srv = httptest.NewServer(mux)
	t.Cleanup(site.srv.Close)
	_, priv, err := approval.GenerateKeys()
	require.NoError(t, err)
	site.gate, err = approval.New(approval.Config{
		Store:      memstore.New(),
		SigningKey: priv,
		BaseURL:    site.srv.URL + "/review",
		Directory:  approval.StaticDirectory{Groups: groups},
		Channels:   []approval.Channel{site.links},
		Logger:     slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = site.gate.Close(context.Background()) })
	for name, p := range policies {
		require.NoError(t, site.gate.SetPolicy(name, p))
	}
	h, err := approvalhttp.New(site.gate, approvalhttp.Options{
		Identity: func(r *http.Request) (string, error) {
			if c, err := r.Cookie("test-user"); err == nil {
				return c.Value, nil
			}
			return "", nil
		},
	})
	require.NoError(t, err)
	mux.Handle("/review/", http.StripPrefix("/review", h))
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "test-user", Value: r.URL.Query().Get("as"), Path: "/"})
		_, _ = w.Write([]byte("signed in"))
	})
	return site
}

// TestBrowserApproveFlow drives the review pages in headless Chromium: an
// approver opens the link from a notification, reviews the request (hashes,
// diff, hostile text shown as text), approves; a second approver completes
// the quorum. Nothing decides on the GET of a link.
func TestBrowserApproveFlow(t *testing.T) {
	ctx := browser(t)

	site := newReviewSite(t, map[string][]string{"finance": {"alice", "bob", "carol"}}, map[string]approval.Policy{
		"high_spend": {
			Match:             approval.CostAtLeast(1000, "USD"),
			Approvers:         []approval.Approver{approval.Group("finance")},
			RequiredApprovals: 2,
		},
	})
	gate, links := site.gate, site.links

	const hostile = `<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">`
	res, err := gate.Guard(ctx, approval.Action{
		Name:        "wire-transfer",
		RequestedBy: "dave",
		Message:     "Pay the supplier " + hostile,
		Cost:        &approval.Cost{Amount: 5000, Currency: "USD"},
		Payload:     []byte(`{"to":"DE89 3704 0044 0532 0130 00","amount":5000}`),
		Diff: []approval.FileDiff{{Path: "payees/" + hostile + ".yaml", Hunks: []approval.Hunk{{
			OldStart: 1, OldLines: 1, NewStart: 1, NewLines: 2,
			Body: "-iban: old\n+iban: DE89\n+note: " + hostile + "\n",
		}}}},
	})
	require.NoError(t, err)
	require.Equal(t, approval.OutcomePending, res.Status)
	r, err := gate.Get(ctx, res.RequestID)
	require.NoError(t, err)

	// Alice opens her link: a review page with a confirm button, not a
	// decision.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(links.link(t, "alice")),
		chromedp.WaitVisible(chromedp.ID("approve")),
	))
	text := func(id string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID(id)))
		require.NoError(t, err, "#%s", id)
		return v
	}
	status := func() string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.ID("status"), "data-status"))
		require.NoError(t, err)
		return v.Value
	}
	eval := func(js string) bool {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		require.NoError(t, err, js)
		return v
	}
	require.Equal(t, "pending", status(), "opening a link decides nothing")
	require.Equal(t, r.ActionHash, strings.TrimSpace(text("action-hash")))
	require.Equal(t, r.PayloadHash, strings.TrimSpace(text("payload-hash")))
	require.Contains(t, text("message"), "<script>window.__pwned = 1</script>", "hostile text is shown as text")
	diff := text("diff")
	require.Contains(t, diff, "+iban: DE89")
	require.Contains(t, diff, `onerror="window.__pwned = 2"`)
	require.True(t, eval(`document.querySelectorAll("script").length === 0`), "no script element on the page, hostile or not")
	require.False(t, eval(`window.__pwned !== undefined || document.querySelector("#diff img, #message img, #request script") !== null`),
		"no hostile markup became an element or ran")
	got, err := gate.Get(ctx, res.RequestID)
	require.NoError(t, err)
	require.Empty(t, got.Votes)

	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(90))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(t.TempDir(), "review.png"), shot, 0o644))
	require.NotEmpty(t, shot)

	// She approves: one vote of two.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("reason"), "payee verified"),
		chromedp.Click(chromedp.ID("approve")),
		chromedp.WaitVisible(chromedp.CSS(`#votes tr[data-approver="alice"]`)),
	))
	require.Equal(t, "pending", status(), "one vote of two")

	// Bob's link completes the quorum.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(links.link(t, "bob")),
		chromedp.WaitVisible(chromedp.ID("approve")),
		chromedp.Click(chromedp.ID("approve")),
		chromedp.WaitVisible(chromedp.CSS(`#status[data-status="approved"]`)),
	))
	got, err = gate.Get(ctx, res.RequestID)
	require.NoError(t, err)
	require.Equal(t, approval.StatusApproved, got.Status)
	require.Len(t, got.Votes, 2)
	require.Equal(t, "payee verified", got.Votes[0].Reason)

	// Alice's link, used once, no longer decides.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(links.link(t, "alice")),
		chromedp.WaitReady(chromedp.CSS("body")),
	))
	require.Equal(t, "approved", status())
	require.False(t, eval(`document.querySelector("#approve") !== null`), "a resolved request offers no buttons")
}
