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

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/signoff/approval/internal/testkit"
)

// connect connects an MCP client to srv over in-memory transports.
func connect(t *testing.T, srv *server) *mcp.ClientSession {
	t.Helper()
	ct, st := mcp.NewInMemoryTransports()
	ss, err := srv.mcp.Connect(context.Background(), st, nil)
	require.NoError(t, err)
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test-agent", Version: "1"}, nil).Connect(context.Background(), ct, nil)
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = cs.Close()
		_ = ss.Wait()
	})
	return cs
}

func callText(t *testing.T, cs *mcp.ClientSession, tool string, args map[string]any) (string, *mcp.CallToolResult) {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: args})
	require.NoError(t, err)
	var b strings.Builder
	for _, c := range res.Content {
		b.WriteString(c.(*mcp.TextContent).Text)
	}
	return b.String(), res
}

// TestMCPServer drives the example with the SDK's client: list_tables runs;
// drop_table waits, then answers pending with the review page; two of the
// printed links, confirmed on the review pages, approve it; the same call
// then drops the table, once.
func TestMCPServer(t *testing.T) {
	out := &testkit.Buffer{}
	const origin = "http://example.test"
	srv, err := newServer(context.Background(), out, config{DB: filepath.Join(t.TempDir(), "a.db"), Wait: 100 * time.Millisecond}, origin)
	require.NoError(t, err)
	defer srv.close()
	cs := connect(t, srv)

	txt, res := callText(t, cs, "list_tables", nil)
	require.False(t, res.IsError, txt)
	require.Equal(t, "tables: [customers orders sessions_2019]", txt)

	drop := map[string]any{"table": "sessions_2019"}
	start := time.Now()
	txt, res = callText(t, cs, "drop_table", drop)
	require.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond, "the call waited")
	require.False(t, res.IsError, txt)
	status := res.StructuredContent.(map[string]any)
	require.Equal(t, "pending", status["status"])
	id := status["request_id"].(string)
	require.Equal(t, origin+"/review/approvals/"+id, status["review_url"])
	require.Contains(t, txt, "Call drop_table again later with exactly the same arguments")
	txt, _ = callText(t, cs, "list_tables", nil)
	require.Contains(t, txt, "sessions_2019", "nothing was dropped")

	linkRE := regexp.MustCompile(`(?m)^approve as (\w+): (\S+)$`)
	var links [][]string
	require.Eventually(t, func() bool {
		links = linkRE.FindAllStringSubmatch(out.String(), -1)
		return len(links) == 3
	}, 10*time.Second, 10*time.Millisecond, out.String())
	for _, l := range links[:2] {
		confirm(t, srv.handler, l[1], l[2])
	}

	txt, res = callText(t, cs, "drop_table", drop)
	require.False(t, res.IsError, txt)
	require.Equal(t, "dropped sessions_2019 (approved in request "+id+")", txt)
	txt, _ = callText(t, cs, "list_tables", nil)
	require.Equal(t, "tables: [customers orders]", txt)

	// The approval is spent: asking again is a new request.
	txt, res = callText(t, cs, "drop_table", drop)
	require.False(t, res.IsError, txt)
	require.NotEqual(t, id, res.StructuredContent.(map[string]any)["request_id"])
}

// confirm opens an approve link on the review pages, as the approver would,
// and confirms it.
func confirm(t *testing.T, h http.Handler, who, link string) {
	t.Helper()
	u, err := url.Parse(link)
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, link, nil))
	page := rec.Body.String()
	require.Equal(t, http.StatusOK, rec.Code, page)
	require.Contains(t, page, "This link is for <strong>"+who+"</strong>")
	require.Contains(t, page, "mcp:tool:drop_table")
	tok := regexp.MustCompile(`name="token" value="([^"]+)"`).FindStringSubmatch(page)
	require.NotNil(t, tok)
	action := u.ResolveReference(&url.URL{Path: regexp.MustCompile(`action="([^"]+)"`).FindStringSubmatch(page)[1]})
	form := url.Values{"token": {tok[1]}, "verdict": {"approve"}}
	req := httptest.NewRequest(http.MethodPost, action.String(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Less(t, rec.Code, 400, rec.Body.String())
}

// TestRunServesHTTP runs the example on a free port and calls a tool over
// streamable HTTP.
func TestRunServesHTTP(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out := &testkit.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, out, config{DB: filepath.Join(t.TempDir(), "a.db"), Addr: "127.0.0.1:0", Wait: time.Second})
	}()
	mcpRE := regexp.MustCompile(`(?m)^mcp: +(http\S+)$`)
	require.Eventually(t, func() bool { return mcpRE.MatchString(out.String()) }, 20*time.Second, 10*time.Millisecond, out.String())
	endpoint := mcpRE.FindStringSubmatch(out.String())[1]
	review := regexp.MustCompile(`(?m)^review: +(\S+)$`).FindStringSubmatch(out.String())[1]

	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test-agent", Version: "1"}, nil).
		Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint}, nil)
	require.NoError(t, err)
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "list_tables"})
	require.NoError(t, err)
	require.Equal(t, "tables: [customers orders sessions_2019]", res.Content[0].(*mcp.TextContent).Text)
	require.NoError(t, cs.Close())

	resp, err := http.Get(review)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "the queue needs a signed-in reviewer; links work without")

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not stop")
	}
}
