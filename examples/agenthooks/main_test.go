package main

import (
	"context"
	"encoding/json"
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

// preToolUse is Claude Code's PreToolUse hook input
// (https://code.claude.com/docs/en/hooks) for tool with input.
func preToolUse(tool string, input map[string]any) string {
	b, _ := json.Marshal(map[string]any{
		"session_id": "abc123", "transcript_path": "/tmp/t.jsonl", "cwd": "/home/user/my-project",
		"permission_mode": "default", "hook_event_name": "PreToolUse",
		"tool_name": tool, "tool_input": input, "tool_use_id": "toolu_01",
	})
	return string(b)
}

// hook posts body to the Claude endpoint of h with key, and returns the
// status and hookSpecificOutput (nil for an empty body).
func hook(t *testing.T, h http.Handler, key, body string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "http://example.test"+claudePath, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || rec.Body.Len() == 0 {
		return rec.Code, nil
	}
	var out struct {
		HookSpecificOutput map[string]any `json:"hookSpecificOutput"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out), rec.Body.String())
	return rec.Code, out.HookSpecificOutput
}

// TestAgentHooks drives the example's Claude endpoint: ungated calls get
// no decision; rm -rf waits, then is denied with its review page; two of
// the printed links, confirmed on the review pages, approve it; the same
// call is then allowed, once. A Write outside the repository needs one
// lead; inside it, nobody.
func TestAgentHooks(t *testing.T) {
	out := &testkit.Buffer{}
	repo := t.TempDir()
	srv, err := newServer(out, config{Repo: repo, Developer: "dana", HookKey: "hk_test", Wait: 100 * time.Millisecond}, "http://example.test")
	require.NoError(t, err)
	defer srv.close()
	h := srv.handler

	for _, body := range []string{
		preToolUse("Read", map[string]any{"file_path": "/etc/hosts"}),
		preToolUse("Bash", map[string]any{"command": "go test ./..."}),
		preToolUse("Write", map[string]any{"file_path": filepath.Join(repo, "notes.txt"), "content": "hi"}),
	} {
		status, o := hook(t, h, "hk_test", body)
		require.Equal(t, http.StatusOK, status)
		require.Nil(t, o, "no decision: %s", body)
	}
	rm := preToolUse("Bash", map[string]any{"command": "rm -rf build"})
	status, _ := hook(t, h, "", rm)
	require.Equal(t, http.StatusUnauthorized, status)
	status, _ = hook(t, h, "hk_wrong", rm)
	require.Equal(t, http.StatusUnauthorized, status)

	start := time.Now()
	status, o := hook(t, h, "hk_test", rm)
	require.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond, "the call waited")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "deny", o["permissionDecision"])
	reason := o["permissionDecisionReason"].(string)
	id := regexp.MustCompile(`req_[0-9a-f]+`).FindString(reason)
	require.Contains(t, reason, "Review page: http://example.test/review/approvals/"+id)
	req, err := srv.gate.Get(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, "dana", req.Action.RequestedBy)

	for _, l := range links(t, out, id, 3)[:2] {
		confirm(t, h, l[1], l[2])
	}
	_, o = hook(t, h, "hk_test", rm)
	require.Equal(t, "allow", o["permissionDecision"])
	_, o = hook(t, h, "hk_test", rm)
	require.Equal(t, "deny", o["permissionDecision"], "the approval is used up")

	write := preToolUse("Write", map[string]any{"file_path": filepath.Join(filepath.Dir(repo), "elsewhere.txt"), "content": "hi"})
	_, o = hook(t, h, "hk_test", write)
	require.Equal(t, "deny", o["permissionDecision"])
	id = regexp.MustCompile(`req_[0-9a-f]+`).FindString(o["permissionDecisionReason"].(string))
	confirm(t, h, links(t, out, id, 3)[0][1], links(t, out, id, 3)[0][2])
	_, o = hook(t, h, "hk_test", write)
	require.Equal(t, "allow", o["permissionDecision"], "one lead approves a write outside the repository")
}

// links waits for the n approve links of request id the example prints.
func links(t *testing.T, out *testkit.Buffer, id string, n int) [][]string {
	t.Helper()
	linkRE := regexp.MustCompile(`(?m)^approve as (\w+): (\S+/approvals/` + id + `\?\S+)$`)
	var ls [][]string
	require.Eventually(t, func() bool {
		ls = linkRE.FindAllStringSubmatch(out.String(), -1)
		return len(ls) == n
	}, 10*time.Second, 10*time.Millisecond, out.String())
	return ls
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

// TestRunServesHTTP is `go run ./examples/agenthooks` on a free port: it
// prints the endpoints and the hook key, and answers a hook over HTTP.
func TestRunServesHTTP(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out := &testkit.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, out, config{Addr: "127.0.0.1:0", Repo: t.TempDir(), Developer: "dev", Wait: time.Second})
	}()
	keyRE := regexp.MustCompile(`(?m)^hook key for dev: export APPROVAL_HOOK_KEY=(hk_[0-9a-f]{32})$`)
	require.Eventually(t, func() bool { return keyRE.MatchString(out.String()) }, 20*time.Second, 10*time.Millisecond, out.String())
	key := keyRE.FindStringSubmatch(out.String())[1]
	claude := regexp.MustCompile(`(?m)^claude: +(http\S+)$`).FindStringSubmatch(out.String())[1]
	require.Regexp(t, `(?m)^codex: +http\S+/hooks/codex$`, out.String())
	require.Regexp(t, `(?m)^review: +http\S+/review/approvals$`, out.String())

	req, err := http.NewRequest(http.MethodPost, claude, strings.NewReader(preToolUse("Read", map[string]any{"file_path": "/etc/hosts"})))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	cancel()
	require.NoError(t, <-done)
}
