package sqlstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/signoff/approval"
	"github.com/signoff/approval/sqlstore"
)

// Open takes a SQLite file path (created with its schema on first use)
// or a PostgreSQL URL; the gate's requests and audit trail outlive the
// process.
func ExampleOpen() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "approvals")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "approvals.db") // or "postgres://user@host/db"

	store, err := sqlstore.Open(ctx, path)
	if err != nil {
		fmt.Println(err)
		return
	}
	_, priv, _ := approval.GenerateKeys()
	gate, _ := approval.New(approval.Config{Store: store, SigningKey: priv})
	_ = gate.SetPolicy("deploys", approval.Policy{
		Match: approval.Name("deploy:*"), Approvers: []approval.Approver{approval.User("sam")}, RequiredApprovals: 1,
	})
	res, _ := gate.Guard(ctx, approval.Action{Name: "deploy:production", RequestedBy: "ci"})
	_ = gate.Close(ctx)
	_ = store.Close()

	// Another process, later: the request is still there.
	store, _ = sqlstore.Open(ctx, path)
	defer store.Close()
	req, _ := store.Get(ctx, res.RequestID)
	fmt.Println(req.Action.Name, req.Status)
	// Output:
	// deploy:production pending
}
