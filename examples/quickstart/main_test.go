package main

import (
	"context"
	"path/filepath"
	"testing"
)

// TestQuickstart runs the demo twice on one SQLite file: both runs must
// reach approved and verify the whole (growing) audit trail.
func TestQuickstart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "approvals.db")
	for range 2 {
		if err := run(context.Background(), path); err != nil {
			t.Fatal(err)
		}
	}
}
