// The crash test uses the public API only (package sqlstore_test): it
// checks what a user of the store is promised, whatever the internals.
package sqlstore_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite" // the "sqlite" driver, for the raw integrity check

	"github.com/signoff/approval"
	"github.com/signoff/approval/sqlstore"
)

// Environment of TestCrashChild, set by TestCrashSafetySQLite.
const (
	envCrashDB   = "SQLSTORE_CRASH_CHILD"      // the database file
	envCrashSync = "SQLSTORE_CRASH_CHILD_SYNC" // the sqlstore.SyncMode
)

const (
	// crashRounds is how many children are killed, one after the other, on
	// the same file, alternating SyncNormal and SyncFull.
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
// committed, in either synchronous mode. (A killed process leaves what it
// wrote in the operating system's cache, so this does not tell the modes
// apart: only a power loss would, where SyncNormal may lose the last
// commits and SyncFull may not. The rounds alternate to run both code
// paths, not to prove their durability.)
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
		before := led.commits()
		child := runAndKill(t, exe, path, mode, led)
		func() {
			defer func() {
				if t.Failed() {
					t.Logf("round %d (%s), child stderr:\n%s", round, mode, child.stderr.String())
				}
			}()
			st := checkAfterCrash(t, path, mode, led)
			extra := st.commits - led.commits() - unreported
			require.Contains(t, []int{0, 1}, extra,
				"round %d: the store holds %d commits, the children reported %d, earlier rounds left %d unreported: "+
					"a reported write is missing or the store holds writes nobody made", round, st.commits, led.commits(), unreported)
			unreported += extra
			t.Logf("round %d (%s): killed after %v; child reported %d commits; store: %d requests, %d audit events, %d unreported commit(s) so far",
				round, mode, child.ran.Round(time.Millisecond), led.commits()-before, st.requests, st.events, unreported)
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
	err := crashChild(path, sqlstore.SyncMode(os.Getenv(envCrashSync)))
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
func crashChild(path string, mode sqlstore.SyncMode) error {
	ctx := context.Background()
	s, err := sqlstore.Open(ctx, path, sqlstore.Synchronous(mode))
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
		if res.Status != approval.StatusPending {
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
		if res.Status != approval.StatusApproved || res.RequestID != id {
			return fmt.Errorf("second guard of %s: %s for %q, want approved for %s", a.RunID, res.Status, res.RequestID, id)
		}
		if err := report("consumed %s", id); err != nil {
			return err
		}
	}
}

// crashLedger is what the children reported, across rounds.
type crashLedger struct {
	reqs  map[string]*reportedRequest
	order []string // request IDs in the order reported
}

type reportedRequest struct {
	approvers []string
	consumed  bool
}

// commits counts the reported writes.
func (l *crashLedger) commits() int {
	n := 0
	for _, r := range l.reqs {
		n += 1 + len(r.approvers) + b2i(r.consumed)
	}
	return n
}

// apply records one line of a child's stdout, or returns an error if the
// line is not a report or does not follow the ones before it.
func (l *crashLedger) apply(line string) error {
	f := strings.Fields(line)
	switch {
	case len(f) == 2 && f[0] == "created":
		if l.reqs[f[1]] != nil {
			return fmt.Errorf("%s created twice", f[1])
		}
		l.reqs[f[1]] = &reportedRequest{}
		l.order = append(l.order, f[1])
	case len(f) == 3 && f[0] == "decided" && l.reqs[f[1]] != nil:
		l.reqs[f[1]].approvers = append(l.reqs[f[1]].approvers, f[2])
	case len(f) == 2 && f[0] == "consumed" && l.reqs[f[1]] != nil:
		l.reqs[f[1]].consumed = true
	default:
		return fmt.Errorf("unexpected line %q", line)
	}
	return nil
}

// crashRun is one child process's run.
type crashRun struct {
	stderr bytes.Buffer
	ran    time.Duration // from start to kill
}

// runAndKill starts the child on path, records its reports in led, kills it
// with SIGKILL at a random moment after it has gone through one whole
// Guard-Decide-Decide-Guard cycle, and waits for it.
func runAndKill(t *testing.T, exe, path string, mode sqlstore.SyncMode, led *crashLedger) *crashRun {
	t.Helper()
	run := &crashRun{}
	// -test.timeout ends a child the parent failed to kill.
	cmd := exec.CommandContext(t.Context(), exe, "-test.run=^TestCrashChild$", "-test.count=1", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), envCrashDB+"="+path, envCrashSync+"="+string(mode))
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

// crashState summarises the store after a crash.
type crashState struct {
	requests int
	events   int64
	commits  int // writes the requests show: created, each vote, consumed
}

// checkAfterCrash reopens the database a child was killed on and checks it,
// against led and against itself.
func checkAfterCrash(t *testing.T, path string, mode sqlstore.SyncMode, led *crashLedger) crashState {
	t.Helper()
	ctx := t.Context()

	// First a plain connection, which recovers the WAL the child left.
	raw, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	defer func() { require.NoError(t, raw.Close()) }()
	require.Equal(t, []string{"ok"}, queryStrings(t, raw, "PRAGMA integrity_check"))
	require.Empty(t, queryStrings(t, raw, "PRAGMA foreign_key_check"))

	// Then the store, which runs its migrations on the crashed file.
	s, err := sqlstore.Open(ctx, path, sqlstore.Synchronous(mode))
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	// The gate only reads; it needs a key all the same.
	_, key, err := approval.GenerateKeys()
	require.NoError(t, err)
	g, err := approval.New(approval.Config{Store: s, SigningKey: key})
	require.NoError(t, err)
	defer func() { require.NoError(t, g.Close(ctx)) }()

	n, err := g.VerifyAudit(ctx)
	require.NoError(t, err, "the audit chain does not verify")
	require.Positive(t, n)

	// Every event belongs to a request: the child's writes are never
	// refused, deduplicated or notified.
	events := make(map[string]map[approval.EventType]int)
	var total int64
	for q := (approval.AuditQuery{Limit: approval.MaxPageSize}); ; {
		page, err := g.ListAudit(ctx, q)
		require.NoError(t, err)
		for _, e := range page.Events {
			if events[e.RequestID] == nil {
				events[e.RequestID] = make(map[approval.EventType]int)
			}
			events[e.RequestID][e.Type]++
		}
		total += int64(len(page.Events))
		if page.Next == "" {
			break
		}
		q.Cursor = page.Next
	}
	require.Equal(t, n, total, "VerifyAudit and Audit disagree on the trail's length")

	stored := make(map[string]*approval.Request)
	for q := (approval.RequestQuery{Limit: approval.MaxPageSize}); ; {
		page, err := g.List(ctx, q)
		require.NoError(t, err)
		for _, r := range page.Requests {
			stored[r.ID] = r
		}
		if page.Next == "" {
			break
		}
		q.Cursor = page.Next
	}

	st := crashState{requests: len(stored), events: n}
	for id, r := range stored {
		st.commits += checkCrashedRequest(t, r, events[id])
		delete(events, id)
		if rep := led.reqs[id]; rep == nil {
			require.Empty(t, r.Votes, "%s: votes on a request no child reported creating", id)
		} else {
			require.LessOrEqual(t, len(r.Votes), len(rep.approvers)+1, "%s: votes nobody cast", id)
		}
	}
	require.Empty(t, events, "audit events of requests that do not exist")

	for _, id := range led.order {
		rep := led.reqs[id]
		r := stored[id]
		require.NotNil(t, r, "%s: reported created, not in the store", id)
		got, err := g.Get(ctx, id)
		require.NoError(t, err, "%s: reported created", id)
		require.Equal(t, r, got, "%s: Get and List disagree", id)
		for _, who := range rep.approvers {
			require.True(t, slices.ContainsFunc(r.Votes, func(v approval.Vote) bool { return v.Approver == who }),
				"%s: %s's vote was reported committed but is missing (votes %v)", id, who, r.Votes)
		}
		if rep.consumed {
			require.Equal(t, approval.StatusConsumed, r.Status, "%s: reported consumed", id)
		}
	}
	return st
}

// checkCrashedRequest checks that a request's version, votes, status and
// audit events agree with each other, and returns the number of writes it
// took (create, votes, consume).
func checkCrashedRequest(t *testing.T, r *approval.Request, events map[approval.EventType]int) int {
	t.Helper()
	require.Equal(t, crashRequester, r.Action.RequestedBy, r.ID)
	require.LessOrEqual(t, len(r.Votes), 2, "%s: more votes than the child casts", r.ID)
	for i, v := range r.Votes {
		require.Equal(t, approval.VerdictApprove, v.Verdict, r.ID)
		require.Contains(t, crashApprovers, v.Approver, r.ID)
		require.False(t, slices.ContainsFunc(r.Votes[:i], func(w approval.Vote) bool { return w.Approver == v.Approver }),
			"%s: %s voted twice", r.ID, v.Approver)
	}
	consumed := r.Status == approval.StatusConsumed
	switch len(r.Votes) {
	case 0, 1:
		require.Equal(t, approval.StatusPending, r.Status, r.ID)
	case 2:
		require.Contains(t, []approval.Status{approval.StatusApproved, approval.StatusConsumed}, r.Status, r.ID)
	}
	writes := 1 + len(r.Votes) + b2i(consumed)
	require.Equal(t, int64(writes), r.Version, "%s: version does not count its writes", r.ID)

	want := map[approval.EventType]int{approval.EventRequestCreated: 1}
	if len(r.Votes) > 0 {
		want[approval.EventDecisionApprove] = len(r.Votes)
	}
	if len(r.Votes) == 2 {
		want[approval.EventRequestApproved] = 1
	}
	if consumed {
		want[approval.EventApprovalConsumed] = 1
	}
	require.Equal(t, want, events, "%s (%s, %d votes): audit events do not match the request", r.ID, r.Status, len(r.Votes))
	return writes
}

// queryStrings returns the first column of every row of query.
func queryStrings(t *testing.T, db *sql.DB, query string) []string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), query)
	require.NoError(t, err, query)
	defer rows.Close()
	cols, err := rows.Columns()
	require.NoError(t, err, query)
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		require.NoError(t, rows.Scan(ptrs...), query)
		out = append(out, fmt.Sprint(vals[0]))
	}
	require.NoError(t, rows.Err(), query)
	return out
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
