package channels_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// envRequireNode turns the skips of the tests that run Node.js (Microsoft's
// Adaptive Cards library, Node's own Ed25519) into failures. CI sets it.
const envRequireNode = "APPROVAL_REQUIRE_NODE"

// teamsNodeDir holds the card validator and its locked npm dependencies.
var teamsNodeDir = filepath.Join("testdata", "teams")

// nodeOrSkip returns the path of node, or skips the test (fails it with
// APPROVAL_REQUIRE_NODE=1) when it is not installed.
func nodeOrSkip(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv(envRequireNode) == "1" {
			t.Fatalf("node is not on the PATH and %s=1", envRequireNode)
		}
		t.Skipf("node is not on the PATH (install Node.js 20 or later); %s=1 makes this a failure", envRequireNode)
	}
	return node
}

var (
	npmOnce sync.Once
	npmErr  error
	npmOut  []byte
)

// adaptiveCardsOrSkip returns node once Microsoft's adaptivecards package
// is installed in testdata/teams: CI runs npm ci there; otherwise the
// first test to need it does, from the committed package-lock.json. With
// no node, or no npm and no installed package, the test is skipped (a
// failure with APPROVAL_REQUIRE_NODE=1).
func adaptiveCardsOrSkip(t *testing.T) string {
	t.Helper()
	node := nodeOrSkip(t)
	npmOnce.Do(func() {
		if _, err := os.Stat(filepath.Join(teamsNodeDir, "node_modules", "adaptivecards", "package.json")); err == nil {
			return
		}
		npm, err := exec.LookPath("npm")
		if err != nil {
			npmErr = err
			return
		}
		cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts")
		cmd.Dir = teamsNodeDir
		npmOut, npmErr = cmd.CombinedOutput()
	})
	if npmErr != nil {
		if os.Getenv(envRequireNode) == "1" {
			t.Fatalf("cannot install the adaptivecards package (npm ci --prefix channels/testdata/teams): %v\n%s", npmErr, npmOut)
		}
		t.Skipf("cannot install the adaptivecards package (npm ci --prefix channels/testdata/teams): %v; %s=1 makes this a failure", npmErr, envRequireNode)
	}
	return node
}

// runNode runs script (a file in dir) with stdin and returns its stdout.
func runNode(t *testing.T, node, dir, script string, stdin []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), node, append([]string{script}, args...)...)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "node %s: %s", script, stderr.String())
	return out
}
