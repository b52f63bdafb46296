package approval_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/signoff/approval"
	"github.com/signoff/approval/memstore"
)

// exampleGate is a gate over memory with one policy: deploys to
// production need one approval from sam or ana.
func exampleGate() (*approval.Gate, func()) {
	_, priv, _ := approval.GenerateKeys()
	gate, _ := approval.New(approval.Config{Store: memstore.New(), SigningKey: priv})
	_ = gate.SetPolicy("deploys", approval.Policy{
		Match:             approval.Name("deploy:*"),
		Approvers:         []approval.Approver{approval.User("sam"), approval.User("ana")},
		RequiredApprovals: 1,
	})
	return gate, func() { _ = gate.Close(context.Background()) }
}

// approve records who's approval of request id.
func approve(gate *approval.Gate, id, who string) {
	tok, _ := gate.IssueToken(id, who, approval.VerdictApprove, time.Hour)
	_, _ = gate.Decide(context.Background(), id, approval.Decision{Token: tok, Verdict: approval.VerdictApprove})
}

// Do runs a function once its action is approved, at most once per
// approval: here the first call returns ErrPending, a person approves, and
// the retry runs the deploy.
func ExampleDo() {
	ctx := context.Background()
	gate, done := exampleGate()
	defer done()
	deploy := approval.Action{Name: "deploy:production", RequestedBy: "ci", Payload: []byte(`{"version":"1.4.2"}`)}
	run := func(ctx context.Context, res approval.Result) error {
		fmt.Println("deploying", string(deploy.Payload))
		return nil
	}

	res, err := approval.Do(ctx, gate, deploy, approval.DoOptions{}, run)
	fmt.Println("first call:", errors.Is(err, approval.ErrPending))
	approve(gate, res.RequestID, "sam")
	res, err = approval.Do(ctx, gate, deploy, approval.DoOptions{}, run)
	fmt.Println("retry:", res.Status, err)
	// Output:
	// first call: true
	// deploying {"version":"1.4.2"}
	// retry: approved <nil>
}

// An approval comes with a signed artifact that the executor verifies
// against the exact action it is about to run, with the gate's public key
// alone.
func ExampleVerifyArtifact() {
	ctx := context.Background()
	pub, priv, _ := approval.GenerateKeys()
	gate, _ := approval.New(approval.Config{Store: memstore.New(), SigningKey: priv})
	defer gate.Close(ctx)
	_ = gate.SetPolicy("deploys", approval.Policy{
		Match: approval.Name("deploy:*"), Approvers: []approval.Approver{approval.User("sam")}, RequiredApprovals: 1,
	})
	deploy := approval.Action{Name: "deploy:production", RequestedBy: "ci", Payload: []byte(`{"version":"1.4.2"}`)}
	res, _ := gate.Guard(ctx, deploy)
	approve(gate, res.RequestID, "sam")
	res, _ = gate.Guard(ctx, deploy)

	art, err := approval.VerifyArtifact(res.Artifact, deploy, []ed25519.PublicKey{pub})
	fmt.Println("verified:", err == nil, "votes:", len(art.Votes), "by", art.Votes[0].Approver)
	other := deploy
	other.Payload = []byte(`{"version":"6.6.6"}`)
	_, err = approval.VerifyArtifact(res.Artifact, other, []ed25519.PublicKey{pub})
	fmt.Println("another payload:", errors.Is(err, approval.ErrArtifactPayloadMismatch))
	// Output:
	// verified: true votes: 1 by sam
	// another payload: true
}

// A delegation lends an approver's authority for a while: ana decides in
// sam's place during his leave, and the vote says so.
func ExampleGate_Delegate() {
	ctx := context.Background()
	_, priv, _ := approval.GenerateKeys()
	gate, _ := approval.New(approval.Config{Store: memstore.New(), SigningKey: priv})
	defer gate.Close(ctx)
	_ = gate.SetPolicy("payroll", approval.Policy{
		Match: approval.Name("payroll:*"), Approvers: []approval.Approver{approval.User("sam")}, RequiredApprovals: 1,
	})
	_, err := gate.Delegate(ctx, "sam", approval.Delegation{From: "sam", To: "ana",
		NotAfter: time.Now().Add(14 * 24 * time.Hour), Reason: "parental leave"})
	fmt.Println("delegated:", err)

	res, _ := gate.Guard(ctx, approval.Action{Name: "payroll:run", RequestedBy: "hr-bot"})
	approve(gate, res.RequestID, "ana")
	req, _ := gate.Get(ctx, res.RequestID)
	fmt.Println(req.Status, "by", req.Votes[0].Approver, "for", req.Votes[0].OnBehalfOf)
	// Output:
	// delegated: <nil>
	// approved by ana for sam
}
