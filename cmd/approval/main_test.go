package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/sqlstore"
)

// binary is the command, built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "approval-cli-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "approval")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build the approval command:", err)
		return 1
	}
	return m.Run()
}

// result is what a run of the command left.
type result struct {
	code           int
	stdout, stderr string
}

// cli runs the command with args and returns its exit code and output.
func cli(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if exit, ok := errors.AsType[*exec.ExitError](err); ok {
		r.code = exit.ExitCode()
	} else {
		require.NoError(t, err, "run %s", args)
	}
	return r
}

// requireExit fails the test unless r exited with code.
func requireExit(t *testing.T, r result, code int) {
	t.Helper()
	require.Equal(t, code, r.code, "exit code\nstdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
}

func TestHelp(t *testing.T) {
	t.Parallel()
	r := cli(t, "help")
	requireExit(t, r, exitOK)
	for _, c := range commands {
		require.Contains(t, r.stdout, c.name)
	}
	r = cli(t, "help", "verify-audit")
	requireExit(t, r, exitOK)
	require.Contains(t, r.stdout, "-expect-head")
	require.Contains(t, r.stdout, "-from")
	require.Contains(t, r.stdout, "-key")
	r = cli(t, "help", "checkpoint")
	requireExit(t, r, exitOK)
	require.Contains(t, r.stdout, "usage: approval checkpoint -db DSN -key key.pem")
	r = cli(t, "list", "-h")
	requireExit(t, r, exitOK)
	require.Contains(t, r.stderr, "-status")

	requireExit(t, cli(t), exitUsage)
	r = cli(t, "frobnicate")
	requireExit(t, r, exitUsage)
	require.Contains(t, r.stderr, `approval: unknown command "frobnicate"`)
	requireExit(t, cli(t, "list", "-no-such-flag"), exitUsage)
	requireExit(t, cli(t, "list"), exitUsage)
}

// finance is the directory of the seeded gates.
var finance = approval.StaticDirectory{Groups: map[string][]string{"finance": {"alice", "bob", "carol"}}}

// seeded is what seed left in a store.
type seeded struct {
	approved, pending string // request IDs
}

// seed fills the store at dsn through a gate: a request approved by
// alice and bob, and one left pending. Channels, if any, are the gate's,
// which delivers through the store's outbox until seed returns.
func seed(t *testing.T, dsn string, channels ...approval.Channel) seeded {
	t.Helper()
	ctx := t.Context()
	s, err := sqlstore.Open(ctx, dsn)
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	_, priv, err := approval.GenerateKeys()
	require.NoError(t, err)
	g, err := approval.New(approval.Config{
		Store:      s,
		SigningKey: priv,
		Directory:  finance,
		Channels:   channels,
		Logger:     slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	defer func() { require.NoError(t, g.Close(ctx)) }()
	require.NoError(t, g.SetPolicy("high_spend", approval.Policy{
		Match:             approval.CostAtLeast(1000, "USD"),
		Approvers:         []approval.Approver{approval.Group("finance")},
		RequiredApprovals: 2,
		Timeout:           24 * time.Hour,
	}))
	guard := func(to string) string {
		res, err := g.Guard(ctx, approval.Action{
			Name: "wire-transfer", RequestedBy: "user-1",
			Cost:    &approval.Cost{Amount: 5000, Currency: "USD"},
			Payload: []byte(`{"to":"` + to + `"}`),
		})
		require.NoError(t, err)
		require.Equal(t, approval.OutcomePending, res.Status)
		return res.RequestID
	}
	var out seeded
	out.approved = guard("DE89 3704 0044 0532 0130 00")
	for _, who := range []string{"alice", "bob"} {
		tok, err := g.IssueToken(out.approved, who, approval.VerdictApprove, time.Hour)
		require.NoError(t, err)
		_, err = g.Decide(ctx, out.approved, approval.Decision{Token: tok, Verdict: approval.VerdictApprove, Reason: "ok by " + who})
		require.NoError(t, err)
	}
	r, err := g.Get(ctx, out.approved)
	require.NoError(t, err)
	require.Equal(t, approval.StatusApproved, r.Status)
	out.pending = guard("GB29 NWBK 6016 1331 9268 19")
	if len(channels) > 0 {
		// Let the gate attempt every notification before it closes.
		require.Eventually(t, func() bool {
			p, err := s.ListOutbox(ctx, approval.OutboxQuery{State: approval.OutboxPending})
			require.NoError(t, err)
			return len(p.Messages) == 0
		}, 20*time.Second, 20*time.Millisecond, "notifications still pending")
	}
	return out
}
