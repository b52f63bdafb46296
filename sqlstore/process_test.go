package sqlstore

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// Environment of TestHelperProcessVoter, set by TestVotesFromTwoProcesses.
const (
	envChildDSN     = "SQLSTORE_TEST_CHILD_DSN"
	envChildRequest = "SQLSTORE_TEST_CHILD_REQUEST"
	envChildFirst   = "SQLSTORE_TEST_CHILD_FIRST"
	// envChildSingle=1 makes the child's Store run each write in a
	// transaction of its own (GroupCommit(false)).
	envChildSingle = "SQLSTORE_TEST_CHILD_SINGLE"
	// envChildSync is a directory: each child creates ready-N in it and
	// waits for start, which the parent creates once both are ready, so
	// the two processes really race.
	envChildSync = "SQLSTORE_TEST_CHILD_SYNC"
)

// childVoters is how many approvers each child process runs.
const childVoters = 16

// TestVotesFromTwoProcesses runs the vote race of
// TestConcurrentVotesTwoPools across two operating-system processes, each
// with its own store, as two replicas of a service would, on each dialect
// and write path.
func TestVotesFromTwoProcesses(t *testing.T) {
	t.Parallel()
	eachBackendPath(t, func(t *testing.T, newDSN func(testing.TB) string, opts []Option) {
		single := "0"
		if len(opts) > 0 {
			single = "1"
		}
		dsn := newDSN(t)
		s := open(t, dsn)
		r := newRequest()
		_, _, err := s.Create(t.Context(), r, []approval.AuditEvent{event(r.ID, approval.EventRequestCreated, "alice")})
		require.NoError(t, err)

		syncDir := t.TempDir()
		var wg sync.WaitGroup
		outs := make([][]byte, 2)
		errs := make([]error, 2)
		for i := range 2 {
			wg.Go(func() {
				cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperProcessVoter$", "-test.count=1")
				cmd.Env = append(os.Environ(), envChildDSN+"="+dsn, envChildRequest+"="+r.ID, envChildFirst+"="+strconv.Itoa(i*childVoters), envChildSync+"="+syncDir, envChildSingle+"="+single)
				outs[i], errs[i] = cmd.CombinedOutput()
			})
		}
		ready := waitFor(filepath.Join(syncDir, "ready-0"), filepath.Join(syncDir, "ready-"+strconv.Itoa(childVoters)))
		require.NoError(t, os.WriteFile(filepath.Join(syncDir, "start"), nil, 0o600))
		wg.Wait()
		require.True(t, ready, "children did not start:\n%s\n%s", outs[0], outs[1])
		for i := range 2 {
			require.NoError(t, errs[i], "child %d:\n%s", i, outs[i])
		}
		got, err := s.Get(t.Context(), r.ID)
		require.NoError(t, err)
		require.Len(t, got.Votes, 2*childVoters)
		require.Equal(t, int64(2*childVoters+1), got.Version)
		require.Len(t, fullTrail(t, s), 2*childVoters+1)
	})
}

// TestHelperProcessVoter is the child of TestVotesFromTwoProcesses; it
// does nothing in a normal test run.
func TestHelperProcessVoter(t *testing.T) {
	dsn := os.Getenv(envChildDSN)
	if dsn == "" {
		t.Skip("child process of TestVotesFromTwoProcesses")
	}
	first, err := strconv.Atoi(os.Getenv(envChildFirst))
	require.NoError(t, err)
	id := os.Getenv(envChildRequest)
	s := open(t, dsn, GroupCommit(os.Getenv(envChildSingle) != "1"))
	syncDir := os.Getenv(envChildSync)
	require.NoError(t, os.WriteFile(filepath.Join(syncDir, "ready-"+strconv.Itoa(first)), nil, 0o600))
	require.True(t, waitFor(filepath.Join(syncDir, "start")), "the parent did not start the race")
	var wg sync.WaitGroup
	errs := make(chan error, childVoters)
	for i := range childVoters {
		wg.Go(func() {
			approver := fmt.Sprintf("approver-%02d", first+i)
			for {
				cur, err := s.Get(t.Context(), id)
				if err != nil {
					errs <- err
					return
				}
				err = s.Update(t.Context(), approval.Update{
					Request: vote(cur, approver, "tok-"+approver), TokenID: "tok-" + approver,
					Events: []approval.AuditEvent{event(id, approval.EventDecisionApprove, approver)},
				})
				if !errors.Is(err, approval.ErrConflict) {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// waitFor waits up to 30s for the files to exist and reports whether they do.
// It polls: the files are the only signal other processes give.
func waitFor(files ...string) bool {
	deadline := time.Now().Add(30 * time.Second)
	for _, f := range files {
		for {
			if _, err := os.Stat(f); err == nil {
				break
			}
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(time.Millisecond)
		}
	}
	return true
}
