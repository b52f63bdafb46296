package agenthooks_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval/agenthooks"
)

// allowJSON is the answer the benchmarks' calls get: allow, no reason.
const allowJSON = `{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"allow"}}`

// benchRoundTrips posts body to h b.N times over loopback HTTP, with a
// real client keeping its connection alive, and checks every answer.
func benchRoundTrips(b *testing.B, h http.Handler, body string) {
	srv := httptest.NewServer(h)
	defer srv.Close()
	client := srv.Client()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		req, err := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer key-dana")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		out, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || string(out) != allowJSON {
			b.Fatalf("%d %s %v", resp.StatusCode, out, err)
		}
	}
}

// BenchmarkHookBare is the yardstick: a handler that reads the hook's
// body and answers the same JSON, with no gate.
func BenchmarkHookBare(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, allowJSON)
	})
	benchRoundTrips(b, h, claudePreToolUse("Read", `{"file_path": "/home/user/my-project/README.md"}`))
}

// BenchmarkHookUngated is a Read call no rule gates (AllowUngated).
func BenchmarkHookUngated(b *testing.B) {
	h, err := agenthooks.Claude(agenthooks.Options{Gate: newGate(b, nil, nil), Rules: rules, Authenticate: authenticate, AllowUngated: true})
	require.NoError(b, err)
	benchRoundTrips(b, h, claudePreToolUse("Read", `{"file_path": "/home/user/my-project/README.md"}`))
}

// BenchmarkHookAutoApproved is a Write call a rule gates and the gate
// approves at once (no policy matches it).
func BenchmarkHookAutoApproved(b *testing.B) {
	h, err := agenthooks.Claude(agenthooks.Options{Gate: newGate(b, nil, nil), Rules: rules, Authenticate: authenticate, AllowUngated: true})
	require.NoError(b, err)
	benchRoundTrips(b, h, claudePreToolUse("Write", `{"file_path": "/home/user/my-project/notes.txt", "content": "hello"}`))
}
