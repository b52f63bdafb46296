package approvalmcp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/approvalmcp"
)

// benchRules are a server's typical rules: none matches list_tables.
var benchRules = []approvalmcp.Rule{
	{Tools: "drop_*"},
	{Tools: "{delete,truncate}_*", Mode: approvalmcp.Block},
	{Tools: "query", When: func(context.Context, *mcp.CallToolRequest, json.RawMessage) (bool, error) { return true, nil }},
}

// benchCalls calls list_tables b.N times on a server built by opts.
func benchCalls(b *testing.B, opts approvalmcp.Options) {
	s, ts := newServer(b, opts)
	cs := connect(b, s, "bench-agent")
	params := &mcp.CallToolParams{Name: "list_tables", Arguments: json.RawMessage(`{"schema":"public"}`)}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := cs.CallTool(ctx, params); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	require.EqualValues(b, b.N, ts.n("list_tables"))
}

// BenchmarkBareCall is a tool call over in-memory transports, with no
// middleware: the yardstick of BenchmarkUngatedCall.
func BenchmarkBareCall(b *testing.B) {
	benchCalls(b, approvalmcp.Options{})
}

// BenchmarkUngatedCall is the same call through the middleware, no rule
// matching it.
func BenchmarkUngatedCall(b *testing.B) {
	benchCalls(b, approvalmcp.Options{Gate: newGate(b, nil, nil), Rules: benchRules})
}

// approvedActions opens and approves n requests for drop_table calls with
// distinct arguments, as the middleware would ask them for client
// bench-agent, and returns the arguments and the actions.
func approvedActions(b *testing.B, g *approval.Gate, n int) ([]json.RawMessage, []approval.Action) {
	ctx := context.Background()
	args := make([]json.RawMessage, n)
	actions := make([]approval.Action, n)
	for i := range n {
		args[i] = json.RawMessage(fmt.Sprintf(`{"table":"t%d"}`, i))
		actions[i] = approval.Action{Name: approvalmcp.ActionPrefix + "drop_table", RequestedBy: "bench-agent",
			Metadata: map[string]string{approvalmcp.MetadataTool: "drop_table"}, Payload: args[i]}
		res, err := g.Guard(ctx, actions[i])
		require.NoError(b, err)
		require.Equal(b, approval.StatusPending, res.Status)
		_, err = tryDecide(g, res.RequestID, "alice", approval.Decision{Verdict: approval.VerdictApprove})
		require.NoError(b, err)
	}
	return args, actions
}

// onePerson: drop_* calls need one DBA's approval.
var onePerson = map[string]approval.Policy{"dba": {
	Match:             approval.Name(approvalmcp.ActionPrefix + "drop_*"),
	Approvers:         []approval.Approver{approval.Group("dba")},
	RequiredApprovals: 1,
	Timeout:           time.Hour,
}}

// BenchmarkApprovedCall is a gated call whose request is approved: the
// middleware consumes the approval and runs the tool.
func BenchmarkApprovedCall(b *testing.B) {
	g := newGate(b, nil, onePerson)
	s, ts := newServer(b, approvalmcp.Options{Gate: g, Rules: benchRules})
	cs := connect(b, s, "bench-agent")
	args, _ := approvedActions(b, g, b.N)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "drop_table", Arguments: args[i]}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	require.EqualValues(b, b.N, ts.n("drop_table"), "every call ran on its approval")
}

// BenchmarkGuardOnly is Gate.Guard alone consuming the same approvals: the
// yardstick of BenchmarkApprovedCall.
func BenchmarkGuardOnly(b *testing.B) {
	g := newGate(b, nil, onePerson)
	_, actions := approvedActions(b, g, b.N)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		res, err := g.Guard(ctx, actions[i])
		if err != nil || res.Status != approval.OutcomeApproved {
			b.Fatal(res.Status, err)
		}
	}
}

// BenchmarkUngatedMiddleware is the middleware alone passing an ungated
// call on, without a transport or a server.
func BenchmarkUngatedMiddleware(b *testing.B) {
	mw, err := approvalmcp.Middleware(approvalmcp.Options{Gate: newGate(b, nil, nil), Rules: benchRules})
	require.NoError(b, err)
	want := &mcp.CallToolResult{}
	h := mw(func(context.Context, string, mcp.Request) (mcp.Result, error) { return want, nil })
	req := &mcp.CallToolRequest{Params: &mcp.CallToolParamsRaw{Name: "list_tables", Arguments: json.RawMessage(`{"schema":"public"}`)}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if res, err := h(ctx, "tools/call", req); err != nil || res != want {
			b.Fatal(res, err)
		}
	}
}
