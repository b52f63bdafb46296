package main

import (
	"context"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestQuickstart runs the demo twice on one SQLite file: both runs must
// reach approved and verify the whole (growing) audit trail, and the second
// must sign with the key the first created beside the database.
func TestQuickstart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "approvals.db")
	keyLine := regexp.MustCompile(`(?m)^key: +(created|loaded) (\S+) \(key ID (\S+)\)$`)
	var runs [][]string
	for range 2 {
		var out strings.Builder
		require.NoError(t, run(context.Background(), &out, path, ""))
		m := keyLine.FindStringSubmatch(out.String())
		require.NotNil(t, m, "no key line in:\n%s", out.String())
		require.Contains(t, out.String(), "\nartifact: verified: 2 votes, policy high_spend, valid until ")
		runs = append(runs, m[1:])
	}
	require.Equal(t, []string{"created", path + ".key"}, runs[0][:2])
	require.Equal(t, []string{"loaded", path + ".key"}, runs[1][:2])
	require.Equal(t, runs[0][2], runs[1][2], "the second run signs with the first run's key")
}

// TestQuickstartNoSetup is `go run ./examples/quickstart`: state and key in
// a temporary directory.
func TestQuickstartNoSetup(t *testing.T) {
	require.NoError(t, run(context.Background(), io.Discard, "", ""))
}
