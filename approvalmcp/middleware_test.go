package approvalmcp_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/approvalmcp"
	"github.com/signoff/approval/internal/testkit"
)

var dropRule = approvalmcp.Rule{Tools: "drop_*"}

func TestPendingThenApprovedRunsOnce(t *testing.T) {
	t.Parallel()
	g := newGate(t, nil, map[string]approval.Policy{"dba": dbaPolicy})
	s, ts := newServer(t, approvalmcp.Options{
		Gate:      g,
		Rules:     []approvalmcp.Rule{dropRule},
		ReviewURL: func(id string) string { return "https://ops.example.com/review/approvals/" + id },
	})
	cs := connect(t, s, "test-agent")
	args := `{"table":"users"}`

	res := callTool(t, cs, "drop_table", args)
	id := pendingID(t, res)
	o := outcome(t, res)
	require.Equal(t, approvalmcp.Outcome{Status: "pending", Tool: "drop_table", RequestID: id,
		ReviewURL: "https://ops.example.com/review/approvals/" + id}, o)
	require.Contains(t, text(res), "https://ops.example.com/review/approvals/"+id)
	require.Contains(t, text(res), "again later with exactly the same arguments")
	require.Zero(t, ts.n("drop_table"))

	req, err := g.Get(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, "mcp:tool:drop_table", req.Action.Name)
	require.Equal(t, "test-agent", req.Action.RequestedBy)
	require.JSONEq(t, args, string(req.Action.Payload))
	require.Equal(t, "mcp", req.Action.Provenance.Source)
	require.Equal(t, "test-agent", req.Action.Provenance.CreatedBy)

	require.Equal(t, id, pendingID(t, callTool(t, cs, "drop_table", args)), "a retry is the same request")
	approve(t, g, id)

	res = callTool(t, cs, "drop_table", args)
	require.False(t, res.IsError, text(res))
	require.Equal(t, "drop_table ran\n", text(res), "no note without edits or conditions")
	require.EqualValues(t, 1, ts.n("drop_table"))
	mo := metaOutcome(t, res)
	require.Equal(t, approvalmcp.Outcome{Status: "approved", Tool: "drop_table", RequestID: id}, mo)
	run := ts.last(t, "drop_table")
	require.True(t, run.approved)
	require.Equal(t, id, run.res.RequestID)
	require.NotEmpty(t, run.res.Artifact)

	// The approval is used up: the next call asks again.
	next := pendingID(t, callTool(t, cs, "drop_table", args))
	require.NotEqual(t, id, next)
	require.EqualValues(t, 1, ts.n("drop_table"))
}

func TestArgumentsBindTheApproval(t *testing.T) {
	t.Parallel()
	g := newGate(t, nil, map[string]approval.Policy{"dba": dbaPolicy})
	s, ts := newServer(t, approvalmcp.Options{Gate: g, Rules: []approvalmcp.Rule{dropRule}})
	cs := connect(t, s, "test-agent")

	id := pendingID(t, callTool(t, cs, "drop_table", `{"table":"users","cascade":false}`))
	require.Equal(t, id, pendingID(t, callTool(t, cs, "drop_table", "{ \"cascade\" : false,\n\t\"table\": \"users\" }")),
		"key order and white space do not make another call")
	other := pendingID(t, callTool(t, cs, "drop_table", `{"table":"users","cascade":true}`))
	require.NotEqual(t, id, other, "a changed argument is another request")

	approve(t, g, id)
	require.Equal(t, other, pendingID(t, callTool(t, cs, "drop_table", `{"table":"users","cascade":true}`)),
		"the changed call does not run on the first one's approval")
	require.Zero(t, ts.n("drop_table"))

	res := callTool(t, cs, "drop_table", `{"cascade":false,"table":"users"}`)
	require.False(t, res.IsError, text(res))
	require.EqualValues(t, 1, ts.n("drop_table"))
	require.JSONEq(t, `{"cascade":false,"table":"users"}`, string(ts.last(t, "drop_table").args))

	// Absent, null and empty arguments are one call.
	id = pendingID(t, callTool(t, cs, "drop_table", `{}`))
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "drop_table"})
	require.NoError(t, err)
	require.Equal(t, id, pendingID(t, res))
	require.Equal(t, id, pendingID(t, callTool(t, cs, "drop_table", `null`)))
}

func TestToolNameBindsTheApproval(t *testing.T) {
	t.Parallel()
	g := newGate(t, nil, map[string]approval.Policy{"dba": dbaPolicy})
	s, ts := newServer(t, approvalmcp.Options{Gate: g, Rules: []approvalmcp.Rule{dropRule}})
	cs := connect(t, s, "test-agent")
	args := `{"table":"t1"}`

	id := pendingID(t, callTool(t, cs, "drop_table", args))
	approve(t, g, id)
	// DROP_TABLE is gated too (rules and policies compare names in lower
	// case), but the approval of drop_table is not its own.
	res := callTool(t, cs, "DROP_TABLE", args)
	require.Zero(t, ts.n("DROP_TABLE"), "DROP_TABLE does not run on drop_table's approval")
	other := pendingID(t, res)
	require.NotEqual(t, id, other, "a tool whose name differs only in case is another request")
	req, err := g.Get(context.Background(), other)
	require.NoError(t, err)
	require.Equal(t, "mcp:tool:drop_table", req.Action.Name, "policies match the name in lower case")
	require.Equal(t, "DROP_TABLE", req.Action.Metadata[approvalmcp.MetadataTool], "the reviewer sees the exact tool")

	res = callTool(t, cs, "drop_table", args)
	require.False(t, res.IsError, text(res))
	require.EqualValues(t, 1, ts.n("drop_table"), "the approved tool runs on its approval")
	require.Equal(t, id, metaOutcome(t, res).RequestID)
	require.Zero(t, ts.n("DROP_TABLE"))
}

func TestAmbiguousArgumentsAreRefused(t *testing.T) {
	t.Parallel()
	g := newGate(t, nil, map[string]approval.Policy{"dba": dbaPolicy})
	s, ts := newServer(t, approvalmcp.Options{Gate: g, Rules: []approvalmcp.Rule{dropRule}})
	cs := connect(t, s, "test-agent")
	for _, args := range []string{
		`{"table":"staging_tmp","table":"customers"}`,
		`{"opts":{"cascade":false,"cascade":true},"table":"t"}`,
		`{"tables":[{"name":"a"},{"name":"b","name":"c"}]}`,
	} {
		res := callTool(t, cs, "drop_table", args)
		require.True(t, res.IsError, args)
		require.Equal(t, "error", outcome(t, res).Status)
		require.Contains(t, text(res), "twice in one object", args)
	}
	res := callTool(t, cs, "drop_table", `["users"]`)
	require.True(t, res.IsError)
	require.Contains(t, text(res), "the arguments are not a JSON object")
	require.Empty(t, requests(t, g), "no reviewer is asked about ambiguous arguments")

	// The same key in different objects is no ambiguity.
	pendingID(t, callTool(t, cs, "drop_table", `{"name":"t","opts":{"name":"x"},"list":[{"name":"y"},{"name":"z"}]}`))
	require.Zero(t, ts.n("drop_table"))
}

func TestDenialReachesTheModel(t *testing.T) {
	t.Parallel()
	g := newGate(t, nil, map[string]approval.Policy{"dba": dbaPolicy})
	s, ts := newServer(t, approvalmcp.Options{Gate: g, Rules: []approvalmcp.Rule{dropRule}})
	cs := connect(t, s, "test-agent")
	args := `{"table":"users"}`

	id := pendingID(t, callTool(t, cs, "drop_table", args))
	denial := &approval.Denial{Code: "too-broad", Retry: approval.RetryChanged, Hint: "drop users_archive instead"}
	decide(t, g, id, "carol", approval.Decision{Verdict: approval.VerdictDeny, Reason: "users holds production data", Denial: denial})

	for range 2 { // the retry gets the same answer, from the denial hold
		res := callTool(t, cs, "drop_table", args)
		require.True(t, res.IsError)
		require.Equal(t, approvalmcp.Outcome{Status: "denied", Tool: "drop_table", RequestID: id,
			Reason: "denied by carol: users holds production data", Denial: denial}, outcome(t, res))
		txt := text(res)
		for _, want := range []string{"This call to drop_table was denied (request " + id + "): denied by carol: users holds production data.",
			"The tool did not run", "too-broad", "retry changed", "a changed call may be approved", "drop users_archive instead"} {
			require.Contains(t, txt, want)
		}
	}
	require.Zero(t, ts.n("drop_table"))
	require.Len(t, requests(t, g), 1, "asking again did not page the approvers again")
}

func TestPolicyDenialCancellationAndTimeout(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	g := newGate(t, func(c *approval.Config) { c.Now = clock }, map[string]approval.Policy{
		"dba": dbaPolicy,
		"no-truncate": {Match: approval.Name("mcp:tool:truncate_table"), Effect: approval.EffectDeny,
			Reason: "truncation is never allowed"},
	})
	s, ts := newServer(t, approvalmcp.Options{Gate: g, Rules: []approvalmcp.Rule{{Tools: "*_table"}}})
	cs := connect(t, s, "test-agent")

	res := callTool(t, cs, "truncate_table", `{"table":"users"}`)
	require.True(t, res.IsError)
	o := outcome(t, res)
	require.Equal(t, approvalmcp.Outcome{Status: "denied", Tool: "truncate_table", RequestID: o.RequestID, Reason: "truncation is never allowed"}, o)
	require.Contains(t, text(res), "This call to truncate_table was denied (request "+o.RequestID+"): truncation is never allowed. The tool did not run.")

	id := pendingID(t, callTool(t, cs, "drop_table", `{"table":"a"}`))
	_, err := g.Cancel(context.Background(), id, "carol", "ticket closed")
	require.NoError(t, err)
	res = callTool(t, cs, "drop_table", `{"table":"a"}`)
	// A cancellation is not held: the retry is a new request.
	require.Equal(t, "pending", outcome(t, res).Status)

	id = pendingID(t, callTool(t, cs, "drop_table", `{"table":"b"}`))
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	_, err = g.Tick(context.Background(), 0)
	require.NoError(t, err)
	res = callTool(t, cs, "drop_table", `{"table":"b"}`)
	require.True(t, res.IsError)
	o = outcome(t, res)
	require.Equal(t, "timed_out", o.Status)
	require.Equal(t, id, o.RequestID)
	require.Contains(t, text(res), "This call to drop_table was not approved in time (request "+id+")")
	require.Zero(t, ts.n("drop_table")+ts.n("truncate_table"))
}

func TestCancelledWhileBlocked(t *testing.T) {
	t.Parallel()
	g := newGate(t, nil, map[string]approval.Policy{"dba": dbaPolicy})
	s, ts := newServer(t, approvalmcp.Options{Gate: g, Rules: []approvalmcp.Rule{{Tools: "drop_*", Mode: approvalmcp.Block, Wait: time.Minute}}})
	cs := connect(t, s, "test-agent")
	cancelled := make(chan error, 1)
	go func() {
		_, err := g.Cancel(context.Background(), awaitRequest(g), "carol", "not today")
		cancelled <- err
	}()
	res := callTool(t, cs, "drop_table", `{"table":"a"}`)
	require.NoError(t, <-cancelled)
	require.True(t, res.IsError)
	o := outcome(t, res)
	require.Equal(t, "cancelled", o.Status)
	require.Equal(t, "cancelled by carol: not today", o.Reason)
	require.Contains(t, text(res), "The approval request "+o.RequestID+" for this call to drop_table was withdrawn: cancelled by carol: not today. The tool did not run.")
	require.Zero(t, ts.n("drop_table"))
}

func TestBlockRunsOnceApproved(t *testing.T) {
	t.Parallel()
	g := newGate(t, nil, map[string]approval.Policy{"dba": dbaPolicy})
	s, ts := newServer(t, approvalmcp.Options{Gate: g, Rules: []approvalmcp.Rule{{Tools: "drop_*", Mode: approvalmcp.Block, Wait: time.Minute}}})
	cs := connect(t, s, "test-agent")
	approved := approveWhenAsked(g)
	res := callTool(t, cs, "drop_table", `{"table":"users"}`)
	require.NoError(t, <-approved)
	require.False(t, res.IsError, text(res))
	require.Equal(t, "drop_table ran\n", text(res))
	require.EqualValues(t, 1, ts.n("drop_table"))
	require.Equal(t, "approved", metaOutcome(t, res).Status)
}

func TestBlockTimesOutAsPending(t *testing.T) {
	t.Parallel()
	g := newGate(t, nil, map[string]approval.Policy{"dba": dbaPolicy})
	const wait = 150 * time.Millisecond
	s, ts := newServer(t, approvalmcp.Options{Gate: g, Rules: []approvalmcp.Rule{{Tools: "drop_*", Mode: approvalmcp.Block, Wait: wait}}})
	cs := connect(t, s, "test-agent")
	start := time.Now()
	res := callTool(t, cs, "drop_table", `{"table":"users"}`)
	require.GreaterOrEqual(t, time.Since(start), wait)
	id := pendingID(t, res)
	req, err := g.Get(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, approval.StatusPending, req.Status, "the request waits on")
	require.Zero(t, ts.n("drop_table"))
}

func TestBlockedCallEndsWithTheClient(t *testing.T) {
	t.Parallel()
	g := newGate(t, nil, map[string]approval.Policy{"dba": dbaPolicy})
	s, ts := newServer(t, approvalmcp.Options{Gate: g, Rules: []approvalmcp.Rule{{Tools: "drop_*", Mode: approvalmcp.Block, Wait: time.Minute}}})
	cs := connect(t, s, "test-agent")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "drop_table", Arguments: map[string]any{"table": "users"}})
	require.Error(t, err)
	// Once the client's cancellation reached the server, the call ended
	// there too.
	require.Eventually(t, func() bool { return ts.inFlight.Load() == 0 }, 10*time.Second, time.Millisecond)
	id := awaitRequest(g)
	approve(t, g, id)
	require.Zero(t, ts.n("drop_table"), "a call whose client left does not run later")
	res := callTool(t, cs, "drop_table", `{"table":"users"}`)
	require.False(t, res.IsError, text(res))
	require.EqualValues(t, 1, ts.n("drop_table"), "the approval waited for the next call")
}

func TestConcurrentIdenticalCalls(t *testing.T) {
	t.Parallel()
	g := newGate(t, nil, map[string]approval.Policy{"dba": dbaPolicy})
	const n = 50
	args := `{"table":"users"}`
	concurrently := func(cs *mcp.ClientSession) []*mcp.CallToolResult {
		out := make([]*mcp.CallToolResult, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range out {
			wg.Go(func() { out[i], errs[i] = tryCall(cs, "drop_table", args) })
		}
		wg.Wait()
		require.NoError(t, errors.Join(errs...))
		return out
	}

	s, ts := newServer(t, approvalmcp.Options{Gate: g, Rules: []approvalmcp.Rule{dropRule}})
	ids := map[string]bool{}
	for _, res := range concurrently(connect(t, s, "test-agent")) {
		ids[pendingID(t, res)] = true
	}
	require.Len(t, ids, 1, "one request for all the identical calls")
	require.Len(t, requests(t, g), 1)
	var id string
	for id = range ids {
	}

	const wait = 2 * time.Second
	bs, bts := newServer(t, approvalmcp.Options{Gate: g, Rules: []approvalmcp.Rule{{Tools: "drop_*", Mode: approvalmcp.Block, Wait: wait}}})
	bcs := connect(t, bs, "test-agent")
	approved := make(chan error, 1)
	go func() {
		for range n { // every call has entered the server
			<-bts.entered
		}
		approved <- tryApprove(g, id)
	}()
	start := time.Now()
	var ran int
	later := map[string]bool{}
	for _, res := range concurrently(bcs) {
		require.False(t, res.IsError, text(res))
		if o := metaOutcome(t, res); o.Status == "approved" {
			require.Equal(t, id, o.RequestID)
			ran++
		} else {
			later[pendingID(t, res)] = true
		}
	}
	require.NoError(t, <-approved)
	require.Less(t, time.Since(start), 2*wait, "the calls waited concurrently")
	require.Equal(t, 1, ran)
	require.EqualValues(t, 1, bts.n("drop_table"), "one approval, one run")
	require.Zero(t, ts.n("drop_table"))
	require.Len(t, later, 1, "the others wait on one new request")
	require.NotContains(t, later, id)
}

func TestEditedArguments(t *testing.T) {
	t.Parallel()
	g := newGate(t, nil, map[string]approval.Policy{"dba": dbaPolicy})
	s, ts := newServer(t, approvalmcp.Options{Gate: g, Rules: []approvalmcp.Rule{dropRule}})
	cs := connect(t, s, "test-agent")
	args := `{"table":"users"}`

	id := pendingID(t, callTool(t, cs, "drop_table", args))
	edited := `{"table": "users_archive"}`
	decide(t, g, id, "alice", approval.Decision{Verdict: approval.VerdictApprove, Payload: []byte(edited),
		Conditions: []string{"window <= 30m"}})
	decide(t, g, id, "bob", approval.Decision{Verdict: approval.VerdictApprove})

	res := callTool(t, cs, "drop_table", args)
	require.False(t, res.IsError, text(res))
	require.EqualValues(t, 1, ts.n("drop_table"))
	run := ts.last(t, "drop_table")
	require.JSONEq(t, edited, string(run.args), "the tool runs with the reviewer's arguments")
	require.Equal(t, approval.OutcomeModified, run.res.Status)
	require.Equal(t, []string{"window <= 30m"}, run.res.Conditions, "the tool sees the conditions")
	require.Equal(t, approvalmcp.Outcome{Status: "modified", Tool: "drop_table", RequestID: id, Conditions: []string{"window <= 30m"}}, metaOutcome(t, res))
	require.Len(t, res.Content, 2)
	require.Equal(t, "drop_table ran", res.Content[0].(*mcp.TextContent).Text)
	note := res.Content[1].(*mcp.TextContent).Text
	require.Contains(t, note, `the tool ran with {"table":"users_archive"}`)
	require.Contains(t, note, "only within these conditions: window <= 30m")

	// Edited arguments a tool cannot take: it does not run.
	for _, bad := range []string{`["users"]`, `{"table":"a","table":"b"}`, `{"table":"a"} {"table":"b"}`, `not json`} {
		id = pendingID(t, callTool(t, cs, "drop_table", args))
		decide(t, g, id, "alice", approval.Decision{Verdict: approval.VerdictApprove, Payload: []byte(bad)})
		decide(t, g, id, "bob", approval.Decision{Verdict: approval.VerdictApprove})
		res = callTool(t, cs, "drop_table", args)
		require.True(t, res.IsError, bad)
		require.Equal(t, approvalmcp.Outcome{Status: "error", Tool: "drop_table"}, outcome(t, res))
		require.Contains(t, text(res), "request "+id+": the reviewer's edited arguments cannot be the tool's arguments", bad)
		require.EqualValues(t, 1, ts.n("drop_table"), bad)
	}
}

func TestUngatedCallsPassThrough(t *testing.T) {
	t.Parallel()
	g := newGate(t, nil, map[string]approval.Policy{"all": {
		Match: approval.Name("*"), Approvers: []approval.Approver{approval.Group("dba")}, RequiredApprovals: 1, Timeout: time.Hour,
	}})
	s, ts := newServer(t, approvalmcp.Options{Gate: g, Rules: []approvalmcp.Rule{
		dropRule,
		{Tools: "query", When: func(_ context.Context, _ *mcp.CallToolRequest, args json.RawMessage) (bool, error) {
			return strings.Contains(string(args), "DELETE"), nil
		}},
	}})
	cs := connect(t, s, "test-agent")

	res := callTool(t, cs, "list_tables", `{}`)
	require.False(t, res.IsError)
	require.Equal(t, "list_tables ran\n", text(res))
	require.Nil(t, res.Meta[approvalmcp.MetaKey])
	require.False(t, ts.last(t, "list_tables").approved)
	res = callTool(t, cs, "query", `{"sql":"SELECT 1"}`)
	require.Equal(t, "query ran\n", text(res), "When said no")
	require.Empty(t, requests(t, g), "ungated calls ask the gate nothing")

	// Tool names are compared in lower case: another spelling of a gated
	// name is gated too (here it names no tool, so it would fail anyway).
	pendingID(t, callTool(t, cs, "DROP_Table", `{}`))
	pendingID(t, callTool(t, cs, "query", `{"sql":"DELETE FROM users"}`))
	require.Zero(t, ts.n("drop_table"))
	require.EqualValues(t, 1, ts.n("query"))
}

func TestWhenFailsClosed(t *testing.T) {
	t.Parallel()
	g := newGate(t, nil, map[string]approval.Policy{"all": {
		Match: approval.Name("*"), Approvers: []approval.Approver{approval.Group("dba")}, RequiredApprovals: 1, Timeout: time.Hour,
	}})
	s, ts := newServer(t, approvalmcp.Options{Gate: g, Rules: []approvalmcp.Rule{
		{Tools: "query", When: func(context.Context, *mcp.CallToolRequest, json.RawMessage) (bool, error) {
			return false, errors.New("classifier unavailable")
		}},
		{Tools: "list_tables", When: func(context.Context, *mcp.CallToolRequest, json.RawMessage) (bool, error) {
			panic("classifier bug")
		}},
		{Tools: "drop_*", When: func(context.Context, *mcp.CallToolRequest, json.RawMessage) (bool, error) {
			return false, nil
		}},
		dropRule, // a later rule still gates what an earlier When let go
	}})
	cs := connect(t, s, "test-agent")
	pendingID(t, callTool(t, cs, "query", `{"sql":"SELECT 1"}`))
	pendingID(t, callTool(t, cs, "list_tables", `{}`))
	pendingID(t, callTool(t, cs, "drop_table", `{}`))
	require.Zero(t, ts.n("query")+ts.n("list_tables")+ts.n("drop_table"))
}

func TestAutoApproveBelow(t *testing.T) {
	t.Parallel()
	g := newGate(t, nil, map[string]approval.Policy{"risky": {
		Match: approval.RiskAtLeast(approval.RiskMedium), Approvers: []approval.Approver{approval.Group("dba")},
		RequiredApprovals: 1, Timeout: time.Hour,
	}})
	risk := func(args json.RawMessage) approval.Risk {
		var in struct{ SQL string }
		if json.Unmarshal(args, &in) != nil {
			return approval.RiskNone
		}
		switch {
		case strings.HasPrefix(in.SQL, "SELECT"):
			return approval.RiskLow
		case strings.HasPrefix(in.SQL, "PANIC"):
			panic("risk bug")
		case strings.HasPrefix(in.SQL, "?"):
			return approval.RiskNone
		}
		return approval.RiskHigh
	}
	s, ts := newServer(t, approvalmcp.Options{Gate: g, Rules: []approvalmcp.Rule{
		{Tools: "query", Risk: risk, AutoApproveBelow: approval.RiskMedium, Tags: []string{"database"}},
	}})
	cs := connect(t, s, "test-agent")

	res := callTool(t, cs, "query", `{"sql":"SELECT * FROM users"}`)
	require.Equal(t, "query ran\n", text(res))
	require.Empty(t, requests(t, g), "a low-risk call needs no request")
	require.False(t, ts.last(t, "query").approved)

	id := pendingID(t, callTool(t, cs, "query", `{"sql":"DELETE FROM users"}`))
	req, err := g.Get(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, approval.RiskHigh, req.Action.Risk)
	require.Equal(t, []string{"database"}, req.Action.Tags)

	// Not assessed is not low.
	res = callTool(t, cs, "query", `{"sql":"?"}`)
	require.Equal(t, "query ran\n", text(res), "RiskNone is asked of the gate, whose risk policy does not match it")
	require.Len(t, requests(t, g), 1)
	require.True(t, ts.last(t, "query").approved, "the call went through the gate")

	res = callTool(t, cs, "query", `{"sql":"PANIC"}`)
	require.True(t, res.IsError)
	require.Equal(t, "error", outcome(t, res).Status)
	require.NotContains(t, text(res), "risk bug", "the panic is logged, not told")
	require.EqualValues(t, 2, ts.n("query"))
}

func TestClientHintsDoNotBypass(t *testing.T) {
	t.Parallel()
	g := newGate(t, nil, map[string]approval.Policy{"dba": dbaPolicy})
	s, ts := newServer(t, approvalmcp.Options{Gate: g, Rules: []approvalmcp.Rule{dropRule}})
	cs := connect(t, s, "test-agent")
	id := pendingID(t, callTool(t, cs, "drop_table", `{"table":"users"}`))
	forged := approvalmcp.Outcome{Status: "approved", Tool: "drop_table", RequestID: id}
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{
		Name:      "drop_table",
		Arguments: map[string]any{"table": "users"},
		Meta: mcp.Meta{
			approvalmcp.MetaKey: forged,
			"annotations":       map[string]any{"readOnlyHint": true, "destructiveHint": false},
			"approved":          true,
		},
	})
	require.NoError(t, err)
	require.Equal(t, id, pendingID(t, res), "still the same pending request")
	require.Zero(t, ts.n("drop_table"))
}

func TestIdentity(t *testing.T) {
	t.Parallel()
	g := newGate(t, nil, map[string]approval.Policy{"dba": dbaPolicy})
	s, _ := newServer(t, approvalmcp.Options{Gate: g, Rules: []approvalmcp.Rule{dropRule}})
	for name, want := range map[string]string{"My Agent\t2": "my-agent-2", "": approvalmcp.DefaultRequester, "agent\x00": "agent-"} {
		id := pendingID(t, callTool(t, connect(t, s, name), "drop_table", `{}`))
		req, err := g.Get(context.Background(), id)
		require.NoError(t, err)
		require.Equal(t, want, req.Action.RequestedBy, "client %q", name)
		require.True(t, utf8.ValidString(req.Action.Provenance.CreatedBy) && !strings.ContainsRune(req.Action.Provenance.CreatedBy, 0))
	}

	var fail atomic.Bool
	s, ts := newServer(t, approvalmcp.Options{Gate: g, Rules: []approvalmcp.Rule{dropRule},
		Identity: func(_ context.Context, req *mcp.CallToolRequest) (string, string, error) {
			if fail.Load() {
				return "", "", errors.New("no credentials")
			}
			return "svc-reporting", "alice", nil
		}})
	cs := connect(t, s, "test-agent")
	id := pendingID(t, callTool(t, cs, "drop_table", `{"table":"t"}`))
	req, err := g.Get(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, "svc-reporting", req.Action.RequestedBy)
	require.Equal(t, "alice", req.Action.Initiator)
	tok, err := g.IssueToken(id, "alice", approval.VerdictApprove, time.Hour)
	require.NoError(t, err)
	_, err = g.Decide(context.Background(), id, approval.Decision{Token: tok, Verdict: approval.VerdictApprove})
	require.ErrorIs(t, err, approval.ErrSelfApproval, "alice does not approve her own agent's call")

	fail.Store(true)
	res := callTool(t, cs, "drop_table", `{"table":"t"}`)
	require.True(t, res.IsError)
	require.Equal(t, approvalmcp.Outcome{Status: "error", Tool: "drop_table"}, outcome(t, res))
	require.Contains(t, text(res), "could not check this call to drop_table, so the tool did not run")
	require.NotContains(t, text(res), "credentials", "internal errors stay on the server")
	require.Zero(t, ts.n("drop_table"))
}

// brokenStore fails every request it would create.
type brokenStore struct{ approval.Store }

func (brokenStore) Create(context.Context, *approval.Request, []approval.AuditEvent) (*approval.Request, bool, error) {
	return nil, false, errors.New("disk full")
}

func TestGateFailureFailsClosed(t *testing.T) {
	t.Parallel()
	g := newGate(t, func(c *approval.Config) { c.Store = brokenStore{c.Store} }, map[string]approval.Policy{"dba": dbaPolicy})
	var logs testkit.Buffer
	s, ts := newServer(t, approvalmcp.Options{Gate: g, Rules: []approvalmcp.Rule{dropRule},
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	cs := connect(t, s, "test-agent")
	res := callTool(t, cs, "drop_table", `{"table":"users"}`)
	require.True(t, res.IsError)
	require.Equal(t, "error", outcome(t, res).Status)
	require.NotContains(t, text(res), "disk full")
	require.Contains(t, logs.String(), "disk full", "the operator learns why")
	require.Zero(t, ts.n("drop_table"))

	// An action the gate refuses tells the model why: it can change it.
	res = callTool(t, cs, "drop_table", `{"table":"`+strings.Repeat("x", 300<<10)+`"}`)
	require.True(t, res.IsError)
	require.Contains(t, text(res), "exceeds the limit")
	require.Zero(t, ts.n("drop_table"))
}

func TestOptionsValidation(t *testing.T) {
	t.Parallel()
	g := newGate(t, nil, nil)
	risk := func(json.RawMessage) approval.Risk { return approval.RiskLow }
	for name, opts := range map[string]approvalmcp.Options{
		"nil gate":                  {Rules: []approvalmcp.Rule{dropRule}},
		"no rules":                  {Gate: g},
		"empty glob":                {Gate: g, Rules: []approvalmcp.Rule{{}}},
		"glob with a space":         {Gate: g, Rules: []approvalmcp.Rule{{Tools: "drop *"}}},
		"non-ASCII glob":            {Gate: g, Rules: []approvalmcp.Rule{{Tools: "dröp_*"}}},
		"bad glob":                  {Gate: g, Rules: []approvalmcp.Rule{dropRule, {Tools: "drop_[a"}}},
		"wait without block":        {Gate: g, Rules: []approvalmcp.Rule{{Tools: "x", Wait: time.Second}}},
		"negative wait":             {Gate: g, Rules: []approvalmcp.Rule{{Tools: "x", Mode: approvalmcp.Block, Wait: -1}}},
		"unknown mode":              {Gate: g, Rules: []approvalmcp.Rule{{Tools: "x", Mode: 7}}},
		"auto-approve without risk": {Gate: g, Rules: []approvalmcp.Rule{{Tools: "x", AutoApproveBelow: approval.RiskHigh}}},
		"unknown risk level":        {Gate: g, Rules: []approvalmcp.Rule{{Tools: "x", Risk: risk, AutoApproveBelow: 9}}},
		"bad tag":                   {Gate: g, Rules: []approvalmcp.Rule{{Tools: "x", Tags: []string{"two words"}}}},
	} {
		_, err := approvalmcp.Middleware(opts)
		require.ErrorIs(t, err, approval.ErrInvalidConfig, name)
	}
	_, err := approvalmcp.Middleware(approvalmcp.Options{Gate: g, Rules: []approvalmcp.Rule{{Tools: "{drop,delete}_*", Mode: approvalmcp.Block}}})
	require.NoError(t, err)
}
