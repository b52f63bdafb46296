package approvalmcp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/approvalmcp"
	"github.com/signoff/approval/internal/fixture"
	"github.com/signoff/approval/memstore"
)

// dbaPolicy: every drop_* call needs two approvals from the dba group.
var dbaPolicy = approval.Policy{
	Match:             approval.Name(approvalmcp.ActionPrefix + "drop_*"),
	Approvers:         []approval.Approver{approval.Group("dba")},
	RequiredApprovals: 2,
	Timeout:           time.Hour,
	Reason:            "dropping a table needs two DBAs",
}

// newGate returns a gate over a memstore, with the dba group and the
// policies named, polling every 5ms.
func newGate(t testing.TB, mod func(*approval.Config), policies map[string]approval.Policy) *approval.Gate {
	t.Helper()
	cfg := approval.Config{
		Store:        memstore.New(),
		Directory:    approval.StaticDirectory{Groups: map[string][]string{"dba": {"alice", "bob", "carol"}}},
		PollInterval: 5 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	return fixture.NewGate(t, cfg, policies)
}

// call is one run of a tool: its arguments and the approval it ran on.
type call struct {
	args     json.RawMessage
	res      approval.Result
	approved bool // ResultFromContext's ok
	// state and responses are the call's RequestState and the keys of its
	// InputResponses, as the tool received them.
	state     string
	responses []string
}

// tools counts and records the runs of the test server's tools.
type tools struct {
	// inFlight counts the tools/call requests the server is handling,
	// middleware included.
	inFlight atomic.Int64
	// entered receives a value as each tools/call request enters the
	// server, middleware included.
	entered chan struct{}
	mu      sync.Mutex
	runs    map[string]*atomic.Int64
	calls   map[string][]call
}

func (ts *tools) n(name string) int64 { return ts.runs[name].Load() }

func (ts *tools) last(t testing.TB, name string) call {
	t.Helper()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	cs := ts.calls[name]
	require.NotEmpty(t, cs, "%s never ran", name)
	return cs[len(cs)-1]
}

// toolNames are the test server's tools; each answers "NAME ran".
// DROP_TABLE is a tool of its own, whose name differs from drop_table only
// in case (the SDK takes both).
var toolNames = []string{"drop_table", "DROP_TABLE", "list_tables", "query", "truncate_table"}

// newServer returns an MCP server with the test tools, gated by a
// middleware of opts, and its tool counters. A nil Gate leaves the server
// without the middleware.
func newServer(t testing.TB, opts approvalmcp.Options) (*mcp.Server, *tools) {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "test-server", Version: "1"}, nil)
	ts := &tools{runs: map[string]*atomic.Int64{}, calls: map[string][]call{}, entered: make(chan struct{}, 1000)}
	for _, name := range toolNames {
		ts.runs[name] = new(atomic.Int64)
		s.AddTool(&mcp.Tool{
			Name:        name,
			InputSchema: json.RawMessage(`{"type":"object"}`),
			// A client's or a server's hints never open the gate.
			Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true},
		}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			ts.runs[name].Add(1)
			res, ok := approvalmcp.ResultFromContext(ctx)
			ts.mu.Lock()
			c := call{args: append(json.RawMessage(nil), req.Params.Arguments...), res: res, approved: ok, state: req.Params.RequestState}
			for k := range req.Params.InputResponses {
				c.responses = append(c.responses, k)
			}
			ts.calls[name] = append(ts.calls[name], c)
			ts.mu.Unlock()
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: name + " ran"}}}, nil
		})
	}
	if opts.Gate != nil {
		if opts.Logger == nil {
			opts.Logger = slog.New(slog.DiscardHandler)
		}
		mw, err := approvalmcp.Middleware(opts)
		require.NoError(t, err)
		s.AddReceivingMiddleware(mw)
	}
	s.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if method == "tools/call" {
				ts.inFlight.Add(1)
				defer ts.inFlight.Add(-1)
				select {
				case ts.entered <- struct{}{}:
				default:
				}
			}
			return next(ctx, method, req)
		}
	})
	return s, ts
}

// connect connects a client named clientName to s over in-memory
// transports.
func connect(t testing.TB, s *mcp.Server, clientName string) *mcp.ClientSession {
	t.Helper()
	ctx := context.Background()
	ct, st := mcp.NewInMemoryTransports()
	ss, err := s.Connect(ctx, st, nil)
	require.NoError(t, err)
	cs, err := mcp.NewClient(&mcp.Implementation{Name: clientName, Version: "1"}, nil).Connect(ctx, ct, nil)
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = cs.Close()
		_ = ss.Wait()
	})
	return cs
}

// callTool calls tool with the arguments args (JSON text).
func callTool(t testing.TB, cs *mcp.ClientSession, tool, args string) *mcp.CallToolResult {
	t.Helper()
	res, err := tryCall(cs, tool, args)
	require.NoError(t, err)
	return res
}

func tryCall(cs *mcp.ClientSession, tool, args string) (*mcp.CallToolResult, error) {
	return cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: json.RawMessage(args)})
}

// outcome decodes the Outcome of a result the middleware made, and checks
// that its _meta carries the same.
func outcome(t testing.TB, res *mcp.CallToolResult) approvalmcp.Outcome {
	t.Helper()
	var o approvalmcp.Outcome
	b, err := json.Marshal(res.StructuredContent)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &o))
	require.Equal(t, o, metaOutcome(t, res), "structured content and _meta agree")
	return o
}

// metaOutcome decodes the Outcome in a result's _meta.
func metaOutcome(t testing.TB, res *mcp.CallToolResult) approvalmcp.Outcome {
	t.Helper()
	v, ok := res.Meta[approvalmcp.MetaKey]
	require.True(t, ok, "_meta has %s: %v", approvalmcp.MetaKey, res.Meta)
	var o approvalmcp.Outcome
	b, err := json.Marshal(v)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &o))
	return o
}

// text is the concatenated text content of res.
func text(res *mcp.CallToolResult) string {
	var s string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			s += tc.Text + "\n"
		}
	}
	return s
}

// pendingID requires res to be a pending result and returns its request.
func pendingID(t testing.TB, res *mcp.CallToolResult) string {
	t.Helper()
	require.False(t, res.IsError, text(res))
	o := outcome(t, res)
	require.Equal(t, "pending", o.Status, text(res))
	require.NotEmpty(t, o.RequestID)
	require.Contains(t, text(res), o.RequestID)
	return o.RequestID
}

// decide records who's verdict on request id.
func decide(t testing.TB, g *approval.Gate, id, who string, d approval.Decision) *approval.Request {
	t.Helper()
	req, err := tryDecide(g, id, who, d)
	require.NoError(t, err)
	return req
}

var tryDecide = fixture.Decide

// approve has alice and bob approve request id.
func approve(t testing.TB, g *approval.Gate, id string) {
	t.Helper()
	require.NoError(t, tryApprove(g, id))
}

// tryApprove is approve for another goroutine than the test's.
func tryApprove(g *approval.Gate, id string) error {
	for _, who := range []string{"alice", "bob"} {
		req, err := tryDecide(g, id, who, approval.Decision{Verdict: approval.VerdictApprove})
		if err != nil {
			return err
		}
		if who == "bob" && req.Status != approval.StatusApproved {
			return fmt.Errorf("request %s is %s after two approvals", id, req.Status)
		}
	}
	return nil
}

// awaitRequest waits for the gate's first open request and returns its ID
// ("" after 10s). It polls the store: a gate signals nothing when it opens
// a request, and the request listed is the honest check.
func awaitRequest(g *approval.Gate) string {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		page, err := g.List(context.Background(), approval.RequestQuery{Status: []approval.Status{approval.StatusPending}})
		if err == nil && len(page.Requests) > 0 {
			return page.Requests[0].ID
		}
	}
	return ""
}

// approveWhenAsked approves the first request the gate opens, from another
// goroutine, and reports its ID or the error.
func approveWhenAsked(g *approval.Gate) <-chan error {
	done := make(chan error, 1)
	go func() {
		id := awaitRequest(g)
		if id == "" {
			done <- errors.New("no request was opened")
			return
		}
		done <- tryApprove(g, id)
	}()
	return done
}

// requests lists the gate's requests.
func requests(t testing.TB, g *approval.Gate) []*approval.Request {
	t.Helper()
	page, err := g.List(context.Background(), approval.RequestQuery{})
	require.NoError(t, err)
	return page.Requests
}
