// Quickstart: a wire transfer over 1,000 USD needs two approvals from the
// finance group. It guards the transfer (pending), lets two approvers decide
// with their signed tokens, guards again (approved, and the approval is
// used up), then prints and verifies the audit trail.
//
// State lives in SQLite, the embedded default: a file in a temporary
// directory, or the file named by -db (run twice with the same -db to see
// the audit trail grow and still verify). The token signing key lives in a
// PEM file beside the database (-key to put it elsewhere), created on the
// first run and loaded on the next, so links sent before a restart still
// work after it.
//
//	go run ./examples/quickstart
//	go run ./examples/quickstart -db approvals.db   # key in approvals.db.key
package main

import (
	"context"
	"crypto/ed25519"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/signoff/approval"
	"github.com/signoff/approval/sqlstore"
)

func main() {
	db := flag.String("db", "", "SQLite file to keep the state in (default: a temporary file)")
	key := flag.String("key", "", "PEM file holding the token signing key, created if missing (default: the -db file name plus .key)")
	flag.Parse()
	if err := run(context.Background(), os.Stdout, *db, *key); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, out io.Writer, path, keyPath string) error {
	if path == "" {
		dir, err := os.MkdirTemp("", "approval-quickstart-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		path = filepath.Join(dir, "approvals.db")
	}
	store, err := sqlstore.Open(ctx, path)
	if err != nil {
		return err
	}
	defer store.Close()
	fmt.Fprintf(out, "store:   SQLite at %s\n", path)

	// The key that signs approvers' tokens must survive restarts, or every
	// link already sent fails with "unknown key ID".
	if keyPath == "" {
		keyPath = path + ".key"
	}
	priv, created, err := approval.LoadOrCreateKeyFile(keyPath)
	if err != nil {
		return err
	}
	verb := "loaded"
	if created {
		verb = "created"
	}
	fmt.Fprintf(out, "key:     %s %s (key ID %s)\n", verb, keyPath, approval.KeyID(priv.Public().(ed25519.PublicKey)))
	gate, err := approval.New(approval.Config{
		Store:      store,
		SigningKey: priv,
		Directory: approval.StaticDirectory{
			Groups: map[string][]string{"finance": {"alice", "bob", "carol"}},
		},
	})
	if err != nil {
		return err
	}
	defer gate.Close(ctx)

	err = gate.SetPolicy("high_spend", approval.Policy{
		Match:             approval.CostAtLeast(1000, "USD"),
		Approvers:         []approval.Approver{approval.Group("finance")},
		RequiredApprovals: 2,
		Timeout:           24 * time.Hour,
		OnTimeout:         approval.TimeoutDeny,
		Reason:            "transfers of 1,000 USD or more need two finance approvals",
	})
	if err != nil {
		return err
	}

	transfer := approval.Action{
		Name:        "wire-transfer",
		RequestedBy: "user-1",
		Cost:        &approval.Cost{Amount: 5000, Currency: "USD"},
		Message:     "Pay invoice INV-2291 to ACME GmbH",
		Payload:     []byte(`{"iban":"DE89370400440532013000","amount":5000,"currency":"USD"}`),
		// A distinct run per invocation, so a kept -db starts a new request.
		RunID: time.Now().UTC().Format(time.RFC3339Nano),
	}

	res, err := gate.Guard(ctx, transfer)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "guard:   %s (request %s)\n", res.Status, res.RequestID)
	if res.Status != approval.OutcomePending {
		return fmt.Errorf("expected pending, got %s", res.Status)
	}

	for _, approver := range []string{"alice", "bob"} {
		// In production the token arrives in the approver's Slack or email
		// link; here we issue it directly.
		tok, err := gate.IssueToken(res.RequestID, approver, approval.VerdictApprove, time.Hour)
		if err != nil {
			return err
		}
		req, err := gate.Decide(ctx, res.RequestID, approval.Decision{Token: tok, Verdict: approval.VerdictApprove, Reason: "invoice checked"})
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "decide:  %s approves -> %s (%d of 2)\n", approver, req.Status, len(req.Votes))
	}

	res, err = gate.Guard(ctx, transfer)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "guard:   %s (%s)\n", res.Status, res.Reason)
	if res.Status != approval.OutcomeApproved {
		return fmt.Errorf("expected approved, got %s", res.Status)
	}
	// The side that runs the transfer checks the evidence first: signed by
	// the gate's key, for exactly this action and payload, not expired.
	art, err := approval.VerifyArtifactAt(res.Artifact, transfer, []ed25519.PublicKey{priv.Public().(ed25519.PublicKey)}, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "artifact: verified: %d votes, policy %s, valid until %s\n",
		len(art.Votes), art.Policies[0].Name, art.ExpiresAt.Format(time.RFC3339))
	fmt.Fprintln(out, "         -> the transfer runs now; the approval is used up")

	fmt.Fprintln(out, "\naudit trail:")
	page, err := gate.ListAudit(ctx, approval.AuditQuery{RequestID: res.RequestID})
	if err != nil {
		return err
	}
	for _, e := range page.Events {
		fmt.Fprintf(out, "  #%d %-20s %-8s %s\n", e.Seq, e.Type, e.Actor, e.Hash[:16])
	}
	rep, err := gate.VerifyAuditTrail(ctx, approval.VerifyAuditOptions{})
	if err != nil {
		return fmt.Errorf("audit chain: %w", err)
	}
	fmt.Fprintf(out, "audit chain verified: %d events, unbroken\n", rep.Events)
	return nil
}
