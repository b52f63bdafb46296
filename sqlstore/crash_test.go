// The crash test uses the public API only (package sqlstore_test): it
// checks what a user of the store is promised, whatever the internals.
package sqlstore_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/sqlstore"
)

// Environment of TestCrashChild, set by TestCrashSafetySQLite.
const (
	envCrashDB     = "SQLSTORE_CRASH_CHILD"        // the database file
	envCrashSync   = "SQLSTORE_CRASH_CHILD_SYNC"   // the sqlstore.SyncMode
	envCrashSingle = "SQLSTORE_CRASH_CHILD_SINGLE" // "1": sqlstore.GroupCommit(false)
)

const (
	// crashRounds is how many children are killed, one after the other, on
	// the same file, alternating SyncNormal and SyncFull, two rounds with
	// group commit and two without.
	crashRounds = 12
	// crashRequester asks; two of crashApprovers must approve.
	crashRequester = "rita"
	crashAction    = "crash-test"
)

var crashApprovers = []string{"ann", "bob", "cat"}

// TestCrashSafetySQLite kills a process that is deciding and guarding in a
// loop with SIGKILL, again and again on one database file, and checks after
// each kill that the file is intact, the audit chain verifies, and every
// write the child saw commit is there: a process crash loses nothing
// committed, in either synchronous mode and on either write path. (A
// killed process leaves what it wrote in the operating system's cache, so
// this does not tell the modes apart: only a power loss would, where
// SyncNormal may lose the last commits and SyncFull may not. The rounds
// alternate to run both code paths, not to prove their durability.) Half
// the rounds' children run each write in a transaction of its own
// (GroupCommit(false)); the others group their writes, though a child
// writes one thing at a time, so each of its transactions carries one.
//
// The child reports each write on stdout only after the call returned, so
// the store may hold at most one write per round that was never reported
// (committed, then killed before the report). Each request's version,
// votes, status and audit events must tell the same story, since a
// request and its events commit in one transaction.
func TestCrashSafetySQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("kills child processes; skipped with -short")
	}
	t.Parallel()
	exe, err := os.Executable()
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "crash.db")

	led := &crashLedger{reqs: make(map[string]*reportedRequest)}
	unreported := 0 // commits found in the store that no child reported
	for round := range crashRounds {
		mode := sqlstore.SyncNormal
		if round%2 == 1 {
			mode = sqlstore.SyncFull
		}
		single := round%4 >= 2
		before := led.commits()
		child := runAndKill(t, exe, path, mode, single, led)
		func() {
			defer func() {
				if t.Failed() {
					t.Logf("round %d (%s, single=%v), child stderr:\n%s", round, mode, single, child.stderr.String())
				}
			}()
			st := checkAfterCrash(t, path, mode, led)
			extra := st.commits - led.commits() - unreported
			require.Contains(t, []int{0, 1}, extra,
				"round %d: the store holds %d commits, the children reported %d, earlier rounds left %d unreported: "+
					"a reported write is missing or the store holds writes nobody made", round, st.commits, led.commits(), unreported)
			unreported += extra
			t.Logf("round %d (%s, single=%v): killed after %v; child reported %d commits; store: %d requests, %d audit events, %d unreported commit(s) so far",
				round, mode, single, child.ran.Round(time.Millisecond), led.commits()-before, st.requests, st.events, unreported)
		}()
	}
}

// TestCrashChild is the child process of TestCrashSafetySQLite; it does
// nothing in a normal test run. It loops until killed, so it never returns.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(envCrashDB)
	if path == "" {
		t.Skip("child process of TestCrashSafetySQLite")
	}
	// Errors go to stderr and end the process: the parent fails on either.
	err := crashChild(path, sqlstore.Synchronous(sqlstore.SyncMode(os.Getenv(envCrashSync))),
		sqlstore.GroupCommit(os.Getenv(envCrashSingle) != "1"))
	fmt.Fprintln(os.Stderr, "crash child:", err)
	os.Exit(3)
}

// crashChild runs the child's loop: Guard a new action (pending), two
// approvals (the second approves), Guard again (consumes). It reports each
// step on stdout, one line per write, after the write committed:
//
//	created <id>
//	decided <id> <approver>
//	consumed <id>
func crashChild(path string, opts ...sqlstore.Option) error {
	ctx := context.Background()
	s, err := sqlstore.Open(ctx, path, opts...)
	if err != nil {
		return err
	}
	// Never closed: the process ends by SIGKILL.
	_, key, err := approval.GenerateKeys()
	if err != nil {
		return err
	}
	g, err := approval.New(approval.Config{Store: s, SigningKey: key})
	if err != nil {
		return err
	}
	approvers := make([]approval.Approver, len(crashApprovers))
	for i, a := range crashApprovers {
		approvers[i] = approval.User(a)
	}
	err = g.SetPolicy("crash", approval.Policy{Match: approval.Name(crashAction), Approvers: approvers, RequiredApprovals: 2})
	if err != nil {
		return err
	}
	// os.Stdout is unbuffered: a line is in the pipe when Fprintf returns,
	// and a short write to a pipe is atomic, so a kill never splits a line.
	report := func(format string, args ...any) error {
		_, err := fmt.Fprintf(os.Stdout, format+"\n", args...)
		return err
	}
	for i := 0; ; i++ {
		a := approval.Action{Name: crashAction, RequestedBy: crashRequester, RunID: fmt.Sprintf("%d-%d", os.Getpid(), i)}
		res, err := g.Guard(ctx, a)
		if err != nil {
			return err
		}
		if res.Status != approval.OutcomePending {
			return fmt.Errorf("first guard of %s: %s, want pending", a.RunID, res.Status)
		}
		id := res.RequestID
		if err := report("created %s", id); err != nil {
			return err
		}
		// A different pair of the three approvers each time.
		for j := range 2 {
			who := crashApprovers[(i+j)%len(crashApprovers)]
			tok, err := g.IssueToken(id, who, approval.VerdictApprove, time.Hour)
			if err != nil {
				return err
			}
			r, err := g.Decide(ctx, id, approval.Decision{Token: tok, Verdict: approval.VerdictApprove})
			if err != nil {
				return err
			}
			if want := []approval.Status{approval.StatusPending, approval.StatusApproved}[j]; r.Status != want {
				return fmt.Errorf("%s after %d approvals: %s, want %s", id, j+1, r.Status, want)
			}
			if err := report("decided %s %s", id, who); err != nil {
				return err
			}
		}
		res, err = g.Guard(ctx, a)
		if err != nil {
			return err
		}
		if res.Status != approval.OutcomeApproved || res.RequestID != id {
			return fmt.Errorf("second guard of %s: %s for %q, want approved for %s", a.RunID, res.Status, res.RequestID, id)
		}
		if err := report("consumed %s", id); err != nil {
			return err
		}
	}
}

// crashRun is one child process's run.
type crashRun struct {
	stderr bytes.Buffer
	ran    time.Duration // from start to kill
}

// runAndKill starts the child on path, records its reports in led, kills it
// with SIGKILL at a random moment after it has gone through one whole
// Guard-Decide-Decide-Guard cycle, and waits for it.
func runAndKill(t *testing.T, exe, path string, mode sqlstore.SyncMode, single bool, led *crashLedger) *crashRun {
	t.Helper()
	run := &crashRun{}
	// -test.timeout ends a child the parent failed to kill.
	cmd := exec.CommandContext(t.Context(), exe, "-test.run=^TestCrashChild$", "-test.count=1", "-test.timeout=2m")
	env := envCrashSingle + "=0"
	if single {
		env = envCrashSingle + "=1"
	}
	cmd.Env = append(os.Environ(), envCrashDB+"="+path, envCrashSync+"="+string(mode), env)
	cmd.Stderr = &run.stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	start := time.Now()

	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		br := bufio.NewReader(stdout)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return // EOF; a line cut short (it cannot be) is not a report
			}
			lines <- strings.TrimSuffix(line, "\n")
		}
	}()

	var (
		killAt   <-chan time.Time
		timeout  = time.After(30 * time.Second)
		killed   bool
		consumed int
		bad      []string
	)
	kill := func() {
		if !killed {
			killed = true
			run.ran = time.Since(start)
			_ = cmd.Process.Kill() // SIGKILL on Unix
		}
	}
	for lines != nil {
		select {
		case line, ok := <-lines:
			if !ok {
				lines = nil
				break
			}
			if err := led.apply(line); err != nil {
				bad = append(bad, err.Error())
				kill()
			}
			if strings.HasPrefix(line, "consumed ") {
				consumed++
				if consumed == 1 {
					killAt = time.After(10*time.Millisecond + rand.N(190*time.Millisecond))
				}
			}
		case <-killAt:
			kill()
		case <-timeout:
			bad = append(bad, "no complete cycle within 30s")
			kill()
		}
	}
	exited := !killed // stdout closed before the kill: the child died by itself
	werr := cmd.Wait()
	require.False(t, exited, "the child exited by itself (%v), stderr:\n%s", werr, run.stderr.String())
	require.Empty(t, bad, "child stderr:\n%s", run.stderr.String())
	require.Empty(t, run.stderr.String(), "the child wrote to stderr")
	return run
}
