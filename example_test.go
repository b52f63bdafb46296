package approval_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/signoff/approval"
	"github.com/signoff/approval/memstore"
)

// Two finance approvals for transfers of 1,000 USD or more.
func Example() {
	ctx := context.Background()
	_, priv, _ := approval.GenerateKeys()
	gate, _ := approval.New(approval.Config{
		Store:      memstore.New(),
		SigningKey: priv,
		Directory:  approval.StaticDirectory{Groups: map[string][]string{"finance": {"alice", "bob"}}},
	})
	defer gate.Close(ctx)
	_ = gate.SetPolicy("high_spend", approval.Policy{
		Match:             approval.CostAtLeast(1000, "USD"),
		Approvers:         []approval.Approver{approval.Group("finance")},
		RequiredApprovals: 2,
	})

	transfer := approval.Action{Name: "wire-transfer", RequestedBy: "user-1", Cost: &approval.Cost{Amount: 5000, Currency: "USD"}}
	res, _ := gate.Guard(ctx, transfer)
	fmt.Println("guard:", res.Status)

	for _, who := range []string{"alice", "bob"} {
		tok, _ := gate.IssueToken(res.RequestID, who, approval.VerdictApprove, time.Hour)
		req, _ := gate.Decide(ctx, res.RequestID, approval.Decision{Token: tok, Verdict: approval.VerdictApprove})
		fmt.Println(who, "approves:", req.Status)
	}

	res, _ = gate.Guard(ctx, transfer)
	fmt.Println("guard:", res.Status)
	res, _ = gate.Guard(ctx, transfer)
	fmt.Println("guard again:", res.Status, "(the approval was single use)")
	// Output:
	// guard: pending
	// alice approves: pending
	// bob approves: approved
	// guard: approved
	// guard again: pending (the approval was single use)
}

// A matcher tree: high-risk actions that touch production or customer data.
func ExampleAll() {
	m := approval.All(
		approval.RiskAtLeast(approval.RiskHigh),
		approval.TagAny("production", "customer-data"),
	)
	for _, a := range []approval.Action{
		{Name: "drop-table", RequestedBy: "u", Risk: approval.RiskCritical, Tags: []string{"production"}},
		{Name: "drop-table", RequestedBy: "u", Risk: approval.RiskCritical, Tags: []string{"staging"}},
		{Name: "export", RequestedBy: "u", Risk: approval.RiskLow, Tags: []string{"customer-data"}},
	} {
		ok, _ := m.Match(&a)
		fmt.Println(a.Name, a.Risk, a.Tags, ok)
	}
	// Output:
	// drop-table critical [production] true
	// drop-table critical [staging] false
	// export low [customer-data] false
}

// Decide refuses a replayed token with ErrTokenUsed, and audits the attempt.
func ExampleGate_Decide_replay() {
	ctx := context.Background()
	_, priv, _ := approval.GenerateKeys()
	gate, _ := approval.New(approval.Config{Store: memstore.New(), SigningKey: priv})
	defer gate.Close(ctx)
	_ = gate.SetPolicy("deploys", approval.Policy{
		Match:             approval.Name("deploy:*"),
		Approvers:         []approval.Approver{approval.User("sam"), approval.User("ana")},
		RequiredApprovals: 2,
	})
	res, _ := gate.Guard(ctx, approval.Action{Name: "deploy:production", RequestedBy: "ci"})
	tok, _ := gate.IssueToken(res.RequestID, "sam", approval.VerdictApprove, time.Hour)

	_, err := gate.Decide(ctx, res.RequestID, approval.Decision{Token: tok, Verdict: approval.VerdictApprove})
	fmt.Println("first use:", err)
	_, err = gate.Decide(ctx, res.RequestID, approval.Decision{Token: tok, Verdict: approval.VerdictApprove})
	fmt.Println("replay is ErrTokenUsed:", errors.Is(err, approval.ErrTokenUsed))

	page, _ := gate.ListAudit(ctx, approval.AuditQuery{RequestID: res.RequestID})
	last := page.Events[len(page.Events)-1]
	fmt.Println("audited:", last.Type, "by", last.Actor)
	// Output:
	// first use: <nil>
	// replay is ErrTokenUsed: true
	// audited: decision.rejected by sam
}

// An AI agent gates a tool call on its exact payload and waits for a human.
func ExampleGate_Wait() {
	ctx := context.Background()
	_, priv, _ := approval.GenerateKeys()
	gate, _ := approval.New(approval.Config{Store: memstore.New(), SigningKey: priv})
	defer gate.Close(ctx)
	_ = gate.SetPolicy("agent_writes", approval.Policy{
		Match:             approval.All(approval.Name("tool:*"), approval.TagAny("write")),
		Approvers:         []approval.Approver{approval.User("oncall")},
		RequiredApprovals: 1,
	})
	call := approval.Action{
		Name: "tool:sql.execute", RequestedBy: "agent-7", Tags: []string{"write"},
		Payload: []byte(`{"query":"DELETE FROM sessions WHERE expired"}`),
	}
	res, _ := gate.Guard(ctx, call)
	again, _ := gate.Guard(ctx, call) // the agent retries: same request
	fmt.Println(res.Status, res.RequestID == again.RequestID)

	go func() { // the on-call engineer clicks approve
		tok, _ := gate.IssueToken(res.RequestID, "oncall", approval.VerdictApprove, time.Hour)
		_, _ = gate.Decide(ctx, res.RequestID, approval.Decision{Token: tok, Verdict: approval.VerdictApprove})
	}()
	req, _ := gate.Wait(ctx, res.RequestID)
	fmt.Println("resolved:", req.Status)
	res, _ = gate.Guard(ctx, call)
	fmt.Println("run the tool:", res.Status == approval.OutcomeApproved)
	// Output:
	// pending true
	// resolved: approved
	// run the tool: true
}
