package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval/internal/testkit"
)

// TestReviewServer runs the example on a free port: it prints the three
// approvers' links; two of them, confirmed, approve the request; the queue
// is closed without -dev-user.
func TestReviewServer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out := &testkit.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, out, config{DB: filepath.Join(t.TempDir(), "a.db"), Addr: "127.0.0.1:0"})
	}()
	linkRE := regexp.MustCompile(`(?m)^approve as (\w+): (\S+)$`)
	var links [][]string
	require.Eventually(t, func() bool {
		links = linkRE.FindAllStringSubmatch(out.String(), -1)
		return len(links) == 3 && strings.Contains(out.String(), "serving: ")
	}, 20*time.Second, 20*time.Millisecond, out.String())
	serving := regexp.MustCompile(`serving: (\S+)`).FindStringSubmatch(out.String())[1]
	require.Contains(t, serving, "/review/approvals")

	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var status string
	for _, l := range links[:2] {
		resp, err := client.Get(l[2])
		require.NoError(t, err)
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, string(page))
		require.Contains(t, string(page), "This link is for <strong>"+l[1]+"</strong>")
		require.NotContains(t, string(page), "DE89370400440532013000", "the IBAN is redacted")
		tok := regexp.MustCompile(`name="token" value="([^"]+)"`).FindSubmatch(page)
		require.NotNil(t, tok)
		u, err := url.Parse(l[2])
		require.NoError(t, err)
		action := u.ResolveReference(&url.URL{Path: regexp.MustCompile(`action="([^"]+)"`).FindStringSubmatch(string(page))[1]})
		resp, err = client.PostForm(action.String(), url.Values{"token": {string(tok[1])}, "verdict": {"approve"}})
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "a link's decision shows its outcome")
		resp, err = client.Get(strings.SplitN(l[2], "?", 2)[0] + "?token=" + url.QueryEscape(u.Query().Get("token")))
		require.NoError(t, err)
		page, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		status = regexp.MustCompile(`data-status="([a-z_]+)"`).FindStringSubmatch(string(page))[1]
	}
	require.Equal(t, "approved", status)

	resp, err := http.Get(serving)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "no session identity by default")

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not stop")
	}
}

// TestReviewServerDevUser: -dev-user opens the queue as that reviewer.
func TestReviewServerDevUser(t *testing.T) {
	out := &testkit.Buffer{}
	srv, err := setup(context.Background(), out, config{DB: filepath.Join(t.TempDir(), "a.db"), DevUser: "Alice"}, "http://example.test")
	require.NoError(t, err)
	defer srv.close()
	require.Contains(t, out.String(), "WARNING: -dev-user: every visitor is alice")
	rec := httptest.NewRecorder()
	srv.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://example.test/review/approvals", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Body.String(), `id="viewer">alice<`)

	_, err = setup(context.Background(), io.Discard, config{DB: filepath.Join(t.TempDir(), "b.db"), DevUser: "al ice"}, "http://example.test")
	require.Error(t, err)
}
