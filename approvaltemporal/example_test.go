package approvaltemporal_test

import (
	"context"
	"log"
	"time"

	"github.com/signoff/approval"
	"github.com/signoff/approval/approvaltemporal"
	"github.com/signoff/approval/memstore"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// Payout is a workflow with an approval step.
func Payout(ctx workflow.Context, payload []byte) (approvaltemporal.Result, error) {
	res, err := approvaltemporal.Approve(ctx, approval.Action{
		Name: "wire-transfer", RequestedBy: "payouts-workflow", Payload: payload,
	}, approvaltemporal.Options{Timeout: 72 * time.Hour})
	if err != nil || (res.Status != approval.OutcomeApproved && res.Status != approval.OutcomeModified) {
		return res, err // denied (res.Denial), timed out, cancelled, already ran
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	return res, workflow.ExecuteActivity(actx, "SendWire", res).Get(ctx, nil)
}

// A worker: Approve's activities with the process's gate, and the
// Notifier as the gate's observer.
func Example_worker() {
	c, err := client.Dial(client.Options{HostPort: "localhost:7233"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	_, priv, _ := approval.GenerateKeys() // LoadOrCreateKeyFile in production
	notifier := approvaltemporal.NewNotifier(c, approvaltemporal.NotifierOptions{})
	gate, err := approval.New(approval.Config{
		Store:      memstore.New(), // sqlstore on PostgreSQL for replicas: each runs a Notifier
		SigningKey: priv,
		Directory:  approval.StaticDirectory{Groups: map[string][]string{"finance": {"alice", "bob"}}},
		Observer:   notifier,
	})
	if err != nil {
		log.Fatal(err)
	}
	notifier.Attach(gate)
	ctx := context.Background()
	defer gate.Close(ctx)
	go gate.Run(ctx, time.Second) // the policies' timeouts, expiry of unused approvals

	w := worker.New(c, "payments", worker.Options{})
	(&approvaltemporal.Activities{Gate: gate}).Register(w)
	w.RegisterWorkflow(Payout)
	w.RegisterActivityWithOptions(func(ctx context.Context, res approvaltemporal.Result) error {
		return approvaltemporal.Do(ctx, gate, res, func(ctx context.Context, r approval.Result) error {
			return nil // send the wire: r.Payload is the approved payload when a reviewer edited it
		})
	}, activity.RegisterOptions{Name: "SendWire"})
	if err := w.Run(worker.InterruptCh()); err != nil {
		log.Fatal(err)
	}
}
