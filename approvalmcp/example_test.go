package approvalmcp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/signoff/approval"
	"github.com/signoff/approval/approvalmcp"
	"github.com/signoff/approval/memstore"
)

// Gate the drop_table tool of an MCP server: two DBAs approve each call.
// The model's first call is pending; once approved, the same call runs.
func Example() {
	ctx := context.Background()
	_, priv, err := approval.GenerateKeys()
	if err != nil {
		log.Fatal(err)
	}
	gate, err := approval.New(approval.Config{
		Store:      memstore.New(),
		SigningKey: priv,
		Directory:  approval.StaticDirectory{Groups: map[string][]string{"dba": {"alice", "bob", "carol"}}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer gate.Close(ctx)
	err = gate.SetPolicy("drop", approval.Policy{
		Match:             approval.Name(approvalmcp.ActionPrefix + "drop_*"),
		Approvers:         []approval.Approver{approval.Group("dba")},
		RequiredApprovals: 2,
		Timeout:           time.Hour,
	})
	if err != nil {
		log.Fatal(err)
	}

	server := mcp.NewServer(&mcp.Implementation{Name: "db", Version: "1"}, nil)
	type dropArgs struct {
		Table string `json:"table"`
	}
	mcp.AddTool(server, &mcp.Tool{Name: "drop_table", Description: "Drop a table"},
		func(ctx context.Context, req *mcp.CallToolRequest, in dropArgs) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "dropped " + in.Table}}}, nil, nil
		})
	mw, err := approvalmcp.Middleware(approvalmcp.Options{
		Gate:  gate,
		Rules: []approvalmcp.Rule{{Tools: "drop_*", Mode: approvalmcp.ReturnPending}},
	})
	if err != nil {
		log.Fatal(err)
	}
	server.AddReceivingMiddleware(mw)

	// The agent's side.
	ct, st := mcp.NewInMemoryTransports()
	if _, err := server.Connect(ctx, st, nil); err != nil {
		log.Fatal(err)
	}
	agent, err := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer agent.Close()
	dropUsers := &mcp.CallToolParams{Name: "drop_table", Arguments: map[string]any{"table": "users"}}
	res, err := agent.CallTool(ctx, dropUsers)
	if err != nil {
		log.Fatal(err)
	}
	status := res.StructuredContent.(map[string]any)
	fmt.Println("1st call:", status["status"], "error:", res.IsError)

	// Two DBAs approve, with the tokens their links would carry.
	id := status["request_id"].(string)
	for _, who := range []string{"alice", "bob"} {
		tok, err := gate.IssueToken(id, who, approval.VerdictApprove, time.Hour)
		if err != nil {
			log.Fatal(err)
		}
		if _, err := gate.Decide(ctx, id, approval.Decision{Token: tok, Verdict: approval.VerdictApprove}); err != nil {
			log.Fatal(err)
		}
	}

	for _, call := range []string{"2nd", "3rd"} {
		res, err = agent.CallTool(ctx, dropUsers)
		if err != nil {
			log.Fatal(err)
		}
		if res.StructuredContent != nil {
			fmt.Println(call+" call:", res.StructuredContent.(map[string]any)["status"])
		} else {
			fmt.Println(call+" call:", res.Content[0].(*mcp.TextContent).Text)
		}
	}
	// Output:
	// 1st call: pending error: false
	// 2nd call: dropped users
	// 3rd call: pending
}

// One developer and their assistant: dana approves her assistant's
// drop_table calls herself, in a form her MCP client shows.
func ExampleRule_confirmAtClient() {
	ctx := context.Background()
	_, priv, err := approval.GenerateKeys()
	if err != nil {
		log.Fatal(err)
	}
	gate, err := approval.New(approval.Config{Store: memstore.New(), SigningKey: priv})
	if err != nil {
		log.Fatal(err)
	}
	defer gate.Close(ctx)
	err = gate.SetPolicy("drop", approval.Policy{
		Match:             approval.Name(approvalmcp.ActionPrefix + "drop_*"),
		Approvers:         []approval.Approver{approval.User("dana")},
		RequiredApprovals: 1,
		// dana is the call's initiator and its approver.
		AllowSelfApproval: true,
	})
	if err != nil {
		log.Fatal(err)
	}

	server := mcp.NewServer(&mcp.Implementation{Name: "db", Version: "1"}, nil)
	server.AddTool(&mcp.Tool{Name: "drop_table", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "dropped"}}}, nil
		})
	mw, err := approvalmcp.Middleware(approvalmcp.Options{
		Gate:  gate,
		Rules: []approvalmcp.Rule{{Tools: "drop_*", ConfirmAtClient: true}},
		// In a real server both come from the session's authentication.
		Identity: func(context.Context, *mcp.CallToolRequest) (string, string, error) {
			return "assistant", "dana", nil
		},
		ClientApprover: func(context.Context, *mcp.CallToolRequest) (string, error) { return "dana", nil },
	})
	if err != nil {
		log.Fatal(err)
	}
	server.AddReceivingMiddleware(mw)

	// dana's client shows her the question; she approves.
	client := mcp.NewClient(&mcp.Implementation{Name: "ide", Version: "1"}, &mcp.ClientOptions{
		ElicitationHandler: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			for _, line := range strings.Split(req.Params.Message, "\n")[2:4] {
				fmt.Println("asked:", line)
			}
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"decision": "approve"}}, nil
		},
	})
	ct, st := mcp.NewInMemoryTransports()
	if _, err := server.Connect(ctx, st, nil); err != nil {
		log.Fatal(err)
	}
	session, err := client.Connect(ctx, ct, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer session.Close()
	res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "drop_table", Arguments: map[string]any{"table": "users"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("result:", res.Content[0].(*mcp.TextContent).Text)
	// Output:
	// asked: Tool: drop_table
	// asked: Arguments: {"table":"users"}
	// result: dropped
}
