package approvalmcp_test

import (
	"context"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/approvalmcp"
)

// rowArgs are the arguments of the typed tool delete_rows.
type rowArgs struct {
	ID    int64    `json:"id"`
	Ratio float64  `json:"ratio,omitempty"`
	Rows  []rowArg `json:"rows,omitempty"`
	Note  string   `json:"note,omitempty"`
}

type rowArg struct {
	ID int64 `json:"id"`
}

// typedServer returns an MCP server whose tool delete_rows is added with
// mcp.AddTool (the SDK decodes and validates its arguments), gated by
// the rule delete_*, two DBAs approving each call; and the arguments of
// each run.
func typedServer(t *testing.T) (*approval.Gate, *mcp.ClientSession, func() []rowArgs) {
	t.Helper()
	p := dbaPolicy
	p.Match = approval.Name(approvalmcp.ActionPrefix + "delete_*")
	g := newGate(t, nil, map[string]approval.Policy{"dba": p})
	s, _ := newServer(t, approvalmcp.Options{Gate: g, Rules: []approvalmcp.Rule{{Tools: "delete_*"}}})
	var (
		mu   sync.Mutex
		runs []rowArgs
	)
	mcp.AddTool(s, &mcp.Tool{Name: "delete_rows"}, func(_ context.Context, _ *mcp.CallToolRequest, in rowArgs) (*mcp.CallToolResult, any, error) {
		mu.Lock()
		defer mu.Unlock()
		runs = append(runs, in)
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "deleted"}}}, nil, nil
	})
	return g, connect(t, s, "test-agent"), func() []rowArgs {
		mu.Lock()
		defer mu.Unlock()
		return append([]rowArgs(nil), runs...)
	}
}

func TestTypedToolRunsWithTheApprovedNumbers(t *testing.T) {
	t.Parallel()
	g, cs, runs := typedServer(t)

	// Ordinary values run as approved, nested ones included.
	for args, want := range map[string]rowArgs{
		`{"id":42}`:            {ID: 42},
		`{"id":7,"ratio":1.5}`: {ID: 7, Ratio: 1.5},
		`{"id":1e3,"ratio":0.1,"rows":[{"id":9007199254740992},{"id":-3}]}`: {ID: 1000, Ratio: 0.1, Rows: []rowArg{{ID: 9007199254740992}, {ID: -3}}},
		`{"id":3,"note":"\ud83d\ude00 \\ud800"}`:                            {ID: 3, Note: "\U0001F600 \\ud800"},
	} {
		approve(t, g, pendingID(t, callTool(t, cs, "delete_rows", args)))
		res := callTool(t, cs, "delete_rows", args)
		require.False(t, res.IsError, text(res))
		got := runs()
		require.Equal(t, want, got[len(got)-1], args)
	}
	n := len(runs())

	// A value the SDK would hand the tool changed is refused before
	// anyone is asked, saying why.
	for args, why := range map[string]string{
		`{"id":9007199254740993}`:                            "the number 9007199254740993, which the tool would receive as 9007199254740992",
		`{"id":1,"rows":[{"id":2},{"id":9007199254740993}]}`: "the number 9007199254740993, which the tool would receive as 9007199254740992",
		`{"id":1,"ratio":1e400}`:                             "the number 1e400, which a 64-bit float cannot hold",
		`{"id":1,"note":"\ud800"}`:                           "half a UTF-16 surrogate pair",
	} {
		res := callTool(t, cs, "delete_rows", args)
		require.True(t, res.IsError, "%s: %s", args, text(res))
		require.Equal(t, approvalmcp.Outcome{Status: "error", Tool: "delete_rows"}, outcome(t, res))
		require.Contains(t, text(res), why, args)
	}
	require.Len(t, runs(), n)
	require.Len(t, requests(t, g), n, "nobody was asked")

	// A reviewer's edit to such a number does not run either.
	id := pendingID(t, callTool(t, cs, "delete_rows", `{"id":5}`))
	decide(t, g, id, "alice", approval.Decision{Verdict: approval.VerdictApprove, Payload: []byte(`{"id":9007199254740993}`)})
	decide(t, g, id, "bob", approval.Decision{Verdict: approval.VerdictApprove})
	res := callTool(t, cs, "delete_rows", `{"id":5}`)
	for _, r := range runs()[n:] {
		require.NotEqual(t, int64(9007199254740992), r.ID, "the tool ran with a number nobody approved")
	}
	require.True(t, res.IsError, text(res))
	require.Contains(t, text(res), "request "+id+": the reviewer's edited arguments cannot be the tool's arguments")
	require.Contains(t, text(res), "9007199254740993, which the tool would receive as 9007199254740992")
	require.Len(t, runs(), n)
}
