package approvalmcp_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/approvalmcp"
	"github.com/signoff/approval/internal/fixture"
)

// soloPolicy: alice approves the drop_* calls of the agent she works
// through, alone; she is the requester's initiator, so it must allow
// self-approval for her vote to count.
var soloPolicy = approval.Policy{
	Match:             approval.Name(approvalmcp.ActionPrefix + "drop_*"),
	Approvers:         []approval.Approver{approval.User("alice")},
	RequiredApprovals: 1,
	AllowSelfApproval: true,
	Timeout:           time.Hour,
}

// confirmOptions gate drop_* with ConfirmAtClient, for the agent
// test-agent working for alice, who is the person at the client.
func confirmOptions(g *approval.Gate) approvalmcp.Options {
	return approvalmcp.Options{
		Gate:  g,
		Rules: []approvalmcp.Rule{{Tools: "drop_*", ConfirmAtClient: true}},
		Identity: func(context.Context, *mcp.CallToolRequest) (string, string, error) {
			return "test-agent", "alice", nil
		},
		ClientApprover: func(context.Context, *mcp.CallToolRequest) (string, error) { return "alice", nil },
	}
}

// signedGate is newGate with a signing key the test knows.
func signedGate(t *testing.T, policies map[string]approval.Policy) (*approval.Gate, ed25519.PublicKey) {
	t.Helper()
	pub, priv, err := approval.GenerateKeys()
	require.NoError(t, err)
	return newGate(t, func(c *approval.Config) { c.SigningKey = priv }, policies), pub
}

// person is the person at an MCP client: they answer each question the
// server puts to them through the client, and remember it.
type person struct {
	answer func(*mcp.ElicitParams) *mcp.ElicitResult
	mu     sync.Mutex
	asked  []*mcp.ElicitParams
}

func (p *person) handle(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
	p.mu.Lock()
	p.asked = append(p.asked, req.Params)
	p.mu.Unlock()
	return p.answer(req.Params), nil
}

func (p *person) questions() []*mcp.ElicitParams {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*mcp.ElicitParams(nil), p.asked...)
}

// answers is a person who always answers with the form content given, or
// with action alone (decline, cancel) when content is nil.
func answers(action string, content map[string]any) *person {
	return &person{answer: func(*mcp.ElicitParams) *mcp.ElicitResult {
		return &mcp.ElicitResult{Action: action, Content: content}
	}}
}

var approves = map[string]any{"decision": "approve"}

// legacyProtocol is a protocol version before multi-round-trip requests:
// the server asks in an elicitation request of its own.
const legacyProtocol = "2025-11-25"

// protocols are the two ways to ask the client: in the result (the SDK's
// latest protocol, whose client retries the call with the answer), and in
// a request of the server's (earlier protocols).
var protocols = []struct{ name, version string }{
	{"multi-round-trip", ""},
	{"elicitation request", legacyProtocol},
}

// connectClient connects a client named test-agent to s with opts, at
// protocol version (the latest if empty).
func connectClient(t *testing.T, s *mcp.Server, opts *mcp.ClientOptions, version string) *mcp.ClientSession {
	t.Helper()
	ctx := context.Background()
	ct, st := mcp.NewInMemoryTransports()
	ss, err := s.Connect(ctx, st, nil)
	require.NoError(t, err)
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test-agent", Version: "1"}, opts).
		Connect(ctx, ct, &mcp.ClientSessionOptions{ProtocolVersion: version})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = cs.Close()
		_ = ss.Wait()
	})
	return cs
}

// audit is request id's audit trail.
func audit(t *testing.T, g *approval.Gate, id string) []approval.AuditEvent {
	t.Helper()
	return fixture.AuditTrail(t, g, approval.AuditQuery{RequestID: id})
}

// event returns the only event of type typ in events.
func event(t *testing.T, events []approval.AuditEvent, typ approval.EventType) approval.AuditEvent {
	t.Helper()
	var found []approval.AuditEvent
	for _, e := range events {
		if e.Type == typ {
			found = append(found, e)
		}
	}
	require.Len(t, found, 1, "one %s event in %v", typ, events)
	return found[0]
}

func hasEvent(events []approval.AuditEvent, typ approval.EventType) bool {
	for _, e := range events {
		if e.Type == typ {
			return true
		}
	}
	return false
}

func TestConfirmAtClientApproves(t *testing.T) {
	t.Parallel()
	for _, proto := range protocols {
		t.Run(proto.name, func(t *testing.T) {
			t.Parallel()
			g, pub := signedGate(t, map[string]approval.Policy{"solo": soloPolicy})
			s, ts := newServer(t, confirmOptions(g))
			alice := answers("accept", map[string]any{"decision": "approve", "reason": "drop it"})
			cs := connectClient(t, s, &mcp.ClientOptions{ElicitationHandler: alice.handle}, proto.version)

			res := callTool(t, cs, "drop_table", `{"table":"users"}`)
			require.False(t, res.IsError, text(res))
			require.Equal(t, "drop_table ran\n", text(res))
			require.EqualValues(t, 1, ts.n("drop_table"))
			o := metaOutcome(t, res)
			require.Equal(t, "approved", o.Status)
			if proto.version == "" {
				require.Len(t, ts.entered, 2, "the client retried the call with the answer")
			} else {
				require.Len(t, ts.entered, 1, "the server asked within the call")
			}

			req, err := g.Get(context.Background(), o.RequestID)
			require.NoError(t, err)
			require.Equal(t, approval.StatusConsumed, req.Status)

			// What alice saw: the tool, the arguments and the hash her
			// vote binds, and whose vote it is.
			asked := alice.questions()
			require.Len(t, asked, 1)
			q := asked[0]
			require.Contains(t, q.Message, "Tool: drop_table\n")
			require.Contains(t, q.Message, `Arguments: {"table":"users"}`+"\n")
			require.Contains(t, q.Message, "Action hash: "+req.ActionHash+"\n")
			require.Contains(t, q.Message, "the vote of alice on approval request "+req.ID)
			require.Contains(t, q.Message, "Requested by: test-agent\n")

			// Her answer is her vote, saying where it came from.
			require.Len(t, req.Votes, 1)
			v := req.Votes[0]
			require.Equal(t, "alice", v.Approver)
			require.Equal(t, approval.VerdictApprove, v.Verdict)
			require.True(t, strings.HasPrefix(v.Reason, approvalmcp.ClientVoteReason+` "test-agent"`), v.Reason)
			require.True(t, strings.HasSuffix(v.Reason, ": drop it"), v.Reason)

			ev := event(t, audit(t, g, req.ID), approval.EventDecisionApprove)
			require.Equal(t, "alice", ev.Actor)
			require.Equal(t, v.Reason, ev.Reason)

			// The artifact the tool ran on carries her vote.
			run := ts.last(t, "drop_table")
			require.True(t, run.approved)
			require.Empty(t, run.state, "the question's state is not the tool's")
			require.Empty(t, run.responses, "nor the answer")
			art, err := approval.VerifyArtifact(run.res.Artifact, req.Action, []ed25519.PublicKey{pub})
			require.NoError(t, err)
			require.Len(t, art.Votes, 1)
			require.Equal(t, "alice", art.Votes[0].Approver)
			require.Equal(t, v.TokenID, art.Votes[0].TokenID)
		})
	}
}

func TestConfirmAtClientDeclinedStaysPending(t *testing.T) {
	t.Parallel()
	answersOf := map[string]*person{
		"decline": answers("decline", nil),
		"cancel":  answers("cancel", nil),
	}
	for _, proto := range protocols {
		for name, p := range answersOf {
			t.Run(proto.name+"/"+name, func(t *testing.T) {
				t.Parallel()
				g := newGate(t, nil, map[string]approval.Policy{"solo": soloPolicy})
				s, ts := newServer(t, confirmOptions(g))
				p := &person{answer: p.answer}
				cs := connectClient(t, s, &mcp.ClientOptions{ElicitationHandler: p.handle}, proto.version)

				id := pendingID(t, callTool(t, cs, "drop_table", `{"table":"users"}`))
				require.Len(t, p.questions(), 1)
				require.Zero(t, ts.n("drop_table"))
				req, err := g.Get(context.Background(), id)
				require.NoError(t, err)
				require.Equal(t, approval.StatusPending, req.Status)
				require.Empty(t, req.Votes)
				require.False(t, hasEvent(audit(t, g, id), approval.EventDecisionRejected))
			})
		}
	}
}

func TestConfirmAtClientDeny(t *testing.T) {
	t.Parallel()
	g := newGate(t, nil, map[string]approval.Policy{"solo": soloPolicy})
	s, ts := newServer(t, confirmOptions(g))
	alice := answers("accept", map[string]any{"decision": "deny", "reason": "wrong table"})
	cs := connectClient(t, s, &mcp.ClientOptions{ElicitationHandler: alice.handle}, "")

	res := callTool(t, cs, "drop_table", `{"table":"users"}`)
	require.True(t, res.IsError, text(res))
	o := outcome(t, res)
	require.Equal(t, "denied", o.Status)
	require.Contains(t, o.Reason, "denied by alice")
	require.Contains(t, o.Reason, "wrong table")
	require.Zero(t, ts.n("drop_table"))

	req, err := g.Get(context.Background(), o.RequestID)
	require.NoError(t, err)
	require.Equal(t, approval.StatusDenied, req.Status)
	ev := event(t, audit(t, g, req.ID), approval.EventDecisionDeny)
	require.Equal(t, "alice", ev.Actor)
	require.True(t, strings.HasPrefix(ev.Reason, approvalmcp.ClientVoteReason), ev.Reason)
}

// A client whose multi-round-trip support is off gets the question as an
// input-required result; unanswered, the request stays pending, and the
// call retried with the answer and the state counts it.
func TestConfirmAtClientMultiRoundTripDisabled(t *testing.T) {
	t.Parallel()
	g := newGate(t, nil, map[string]approval.Policy{"solo": soloPolicy})
	s, ts := newServer(t, confirmOptions(g))
	alice := answers("accept", approves)
	cs := connectClient(t, s, &mcp.ClientOptions{
		ElicitationHandler: alice.handle,
		MultiRoundTrip:     &mcp.MultiRoundTripOptions{Disabled: true},
	}, "")
	args := json.RawMessage(`{"table":"users"}`)

	res := callTool(t, cs, "drop_table", string(args))
	require.True(t, res.NeedsInput(), "an input-required result: %s", text(res))
	require.Empty(t, alice.questions(), "the SDK's client does not answer by itself")
	require.Zero(t, ts.n("drop_table"))
	page := requests(t, g)
	require.Len(t, page, 1)
	req := page[0]
	require.Equal(t, approval.StatusPending, req.Status)
	ep, ok := res.InputRequests[approvalmcp.ConfirmKey].(*mcp.ElicitParams)
	require.True(t, ok, "%#v", res.InputRequests)
	require.Contains(t, ep.Message, "Action hash: "+req.ActionHash+"\n")
	require.Contains(t, ep.Message, `Arguments: {"table":"users"}`)

	// A retry without an answer is asked again, and changes nothing.
	again := callTool(t, cs, "drop_table", string(args))
	require.True(t, again.NeedsInput())
	require.Equal(t, res.RequestState, again.RequestState)

	// Declined: the usual pending answer.
	declined, err := cs.CallTool(context.Background(), &mcp.CallToolParams{
		Name: "drop_table", Arguments: args, RequestState: res.RequestState,
		InputResponses: mcp.InputResponseMap{approvalmcp.ConfirmKey: &mcp.ElicitResult{Action: "decline"}},
	})
	require.NoError(t, err)
	require.False(t, declined.NeedsInput())
	require.Equal(t, req.ID, pendingID(t, declined))

	// An answer without a verdict is none.
	unclear, err := cs.CallTool(context.Background(), &mcp.CallToolParams{
		Name: "drop_table", Arguments: args, RequestState: res.RequestState,
		InputResponses: mcp.InputResponseMap{approvalmcp.ConfirmKey: &mcp.ElicitResult{Action: "accept", Content: map[string]any{"decision": "yes"}}},
	})
	require.NoError(t, err)
	require.Equal(t, req.ID, pendingID(t, unclear))
	require.Empty(t, requests(t, g)[0].Votes)

	// Approved: the tool runs, once, with the input meant for it but not
	// the question's.
	done, err := cs.CallTool(context.Background(), &mcp.CallToolParams{
		Name: "drop_table", Arguments: args, RequestState: res.RequestState,
		InputResponses: mcp.InputResponseMap{
			approvalmcp.ConfirmKey: &mcp.ElicitResult{Action: "accept", Content: approves},
			"tool-question":        &mcp.ElicitResult{Action: "decline"},
		},
	})
	require.NoError(t, err)
	require.False(t, done.IsError, text(done))
	require.Equal(t, "drop_table ran\n", text(done))
	require.EqualValues(t, 1, ts.n("drop_table"))
	run := ts.last(t, "drop_table")
	require.Empty(t, run.state)
	require.Equal(t, []string{"tool-question"}, run.responses)
	got, err := g.Get(context.Background(), req.ID)
	require.NoError(t, err)
	require.Equal(t, approval.StatusConsumed, got.Status)
	require.Equal(t, "alice", got.Votes[0].Approver)
}

// An answer whose state names another request (a stale or forged one) is
// not counted.
func TestConfirmAtClientAnswerForAnotherRequest(t *testing.T) {
	t.Parallel()
	g := newGate(t, nil, map[string]approval.Policy{"solo": soloPolicy})
	s, ts := newServer(t, confirmOptions(g))
	cs := connectClient(t, s, &mcp.ClientOptions{
		ElicitationHandler: answers("accept", approves).handle,
		MultiRoundTrip:     &mcp.MultiRoundTripOptions{Disabled: true},
	}, "")
	first := callTool(t, cs, "drop_table", `{"table":"users"}`)
	require.True(t, first.NeedsInput())

	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{
		Name: "drop_table", Arguments: json.RawMessage(`{"table":"orders"}`), RequestState: first.RequestState,
		InputResponses: mcp.InputResponseMap{approvalmcp.ConfirmKey: &mcp.ElicitResult{Action: "accept", Content: approves}},
	})
	require.NoError(t, err)
	id := pendingID(t, res)
	require.Zero(t, ts.n("drop_table"))
	for _, r := range requests(t, g) {
		require.Equal(t, approval.StatusPending, r.Status, r.ID)
		require.Empty(t, r.Votes, r.ID)
	}
	require.NotContains(t, first.RequestState, id)
}

func TestConfirmAtClientCannotElicit(t *testing.T) {
	t.Parallel()
	clients := map[string]struct {
		opts    *mcp.ClientOptions
		version string
	}{
		"multi-round-trip":    {&mcp.ClientOptions{MultiRoundTrip: &mcp.MultiRoundTripOptions{Disabled: true}}, ""},
		"elicitation request": {nil, legacyProtocol},
		"url elicitation only": {&mcp.ClientOptions{
			ElicitationHandler: answers("accept", approves).handle,
			Capabilities:       &mcp.ClientCapabilities{Elicitation: &mcp.ElicitationCapabilities{URL: &mcp.URLElicitationCapabilities{}}},
		}, ""},
	}
	for name, c := range clients {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			g := newGate(t, nil, map[string]approval.Policy{"solo": soloPolicy})
			s, ts := newServer(t, confirmOptions(g))
			cs := connectClient(t, s, c.opts, c.version)

			res := callTool(t, cs, "drop_table", `{"table":"users"}`)
			require.False(t, res.NeedsInput(), "not asked")
			id := pendingID(t, res)
			require.Len(t, ts.entered, 1)
			require.Zero(t, ts.n("drop_table"))
			req, err := g.Get(context.Background(), id)
			require.NoError(t, err)
			require.Empty(t, req.Votes)
		})
	}
}

// Requester segregation holds for the person at the client: alice, on
// whose behalf the agent asks, may not approve her own request unless the
// policy allows it.
func TestConfirmAtClientSegregation(t *testing.T) {
	t.Parallel()
	for _, proto := range protocols {
		t.Run(proto.name, func(t *testing.T) {
			t.Parallel()
			p := soloPolicy
			p.AllowSelfApproval = false
			p.Approvers = []approval.Approver{approval.User("alice"), approval.User("bob")}
			g := newGate(t, nil, map[string]approval.Policy{"solo": p})
			s, ts := newServer(t, confirmOptions(g))
			alice := answers("accept", approves)
			cs := connectClient(t, s, &mcp.ClientOptions{ElicitationHandler: alice.handle}, proto.version)

			id := pendingID(t, callTool(t, cs, "drop_table", `{"table":"users"}`))
			require.Len(t, alice.questions(), 1)
			require.Zero(t, ts.n("drop_table"))
			req, err := g.Get(context.Background(), id)
			require.NoError(t, err)
			require.Equal(t, approval.StatusPending, req.Status)
			require.Empty(t, req.Votes)
			ev := event(t, audit(t, g, id), approval.EventDecisionRejected)
			require.Equal(t, "alice", ev.Actor)
			require.Contains(t, ev.Reason, approval.ErrSelfApproval.Error())
		})
	}
}

func TestConfirmAtClientOnlyWithTheRule(t *testing.T) {
	t.Parallel()
	for _, proto := range protocols {
		t.Run(proto.name, func(t *testing.T) {
			t.Parallel()
			g := newGate(t, nil, map[string]approval.Policy{"solo": soloPolicy})
			opts := confirmOptions(g)
			opts.Rules = []approvalmcp.Rule{{Tools: "drop_*"}}
			s, ts := newServer(t, opts)
			alice := answers("accept", approves)
			cs := connectClient(t, s, &mcp.ClientOptions{ElicitationHandler: alice.handle}, proto.version)

			pendingID(t, callTool(t, cs, "drop_table", `{"table":"users"}`))
			require.Empty(t, alice.questions())
			require.Zero(t, ts.n("drop_table"))
		})
	}
}

// The person's vote is one of the quorum: the call waits for the others,
// and the person is not asked again.
func TestConfirmAtClientIsOneVote(t *testing.T) {
	t.Parallel()
	g := newGate(t, nil, map[string]approval.Policy{"dba": dbaPolicy})
	opts := confirmOptions(g)
	opts.Identity = nil // the client's name; alice is a DBA of her own
	s, ts := newServer(t, opts)
	alice := answers("accept", approves)
	cs := connectClient(t, s, &mcp.ClientOptions{ElicitationHandler: alice.handle}, "")
	args := `{"table":"users"}`

	id := pendingID(t, callTool(t, cs, "drop_table", args))
	req, err := g.Get(context.Background(), id)
	require.NoError(t, err)
	require.Len(t, req.Votes, 1)
	require.Equal(t, "alice", req.Votes[0].Approver)

	require.Equal(t, id, pendingID(t, callTool(t, cs, "drop_table", args)))
	require.Len(t, alice.questions(), 1, "alice answered already")
	require.Zero(t, ts.n("drop_table"))

	decide(t, g, id, "bob", approval.Decision{Verdict: approval.VerdictApprove})
	res := callTool(t, cs, "drop_table", args)
	require.False(t, res.IsError, text(res))
	require.EqualValues(t, 1, ts.n("drop_table"))
	require.Len(t, alice.questions(), 1)
}

// Whom ClientApprover does not name is not asked.
func TestConfirmAtClientNoPerson(t *testing.T) {
	t.Parallel()
	for name, fn := range map[string]func(context.Context, *mcp.CallToolRequest) (string, error){
		"empty": func(context.Context, *mcp.CallToolRequest) (string, error) { return "", nil },
		"error": func(context.Context, *mcp.CallToolRequest) (string, error) {
			return "alice", errors.New("no session user")
		},
		"panic": func(context.Context, *mcp.CallToolRequest) (string, error) { panic("boom") },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			g := newGate(t, nil, map[string]approval.Policy{"solo": soloPolicy})
			opts := confirmOptions(g)
			opts.ClientApprover = fn
			s, ts := newServer(t, opts)
			alice := answers("accept", approves)
			cs := connectClient(t, s, &mcp.ClientOptions{ElicitationHandler: alice.handle}, "")

			pendingID(t, callTool(t, cs, "drop_table", `{"table":"users"}`))
			require.Empty(t, alice.questions())
			require.Zero(t, ts.n("drop_table"))
		})
	}
}

func TestConfirmAtClientNeedsClientApprover(t *testing.T) {
	t.Parallel()
	g := newGate(t, nil, nil)
	_, err := approvalmcp.Middleware(approvalmcp.Options{Gate: g, Rules: []approvalmcp.Rule{{Tools: "drop_*", ConfirmAtClient: true}}})
	require.ErrorIs(t, err, approval.ErrInvalidConfig)
	require.ErrorContains(t, err, "ClientApprover")
}

// The question shows what the vote binds, with the characters that could
// make it read otherwise escaped: a right-to-left override shown as is
// would reverse what follows it.
func TestConfirmAtClientShowsEscapedArguments(t *testing.T) {
	t.Parallel()
	g := newGate(t, nil, map[string]approval.Policy{"solo": soloPolicy})
	s, _ := newServer(t, confirmOptions(g))
	alice := answers("decline", nil)
	cs := connectClient(t, s, &mcp.ClientOptions{ElicitationHandler: alice.handle}, "")

	pendingID(t, callTool(t, cs, "drop_table", "{\"table\": \"users\u202e--\", \"note\":\"caf\u00e9 \u2028\"}"))
	asked := alice.questions()
	require.Len(t, asked, 1)
	require.Contains(t, asked[0].Message, `Arguments: {"table":"users\u202e--","note":"café \u2028"}`+"\n")
	require.NotContains(t, asked[0].Message, "\u202e")
}
