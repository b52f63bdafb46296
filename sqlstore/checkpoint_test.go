package sqlstore

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// TestBackgroundCheckpoint checks that a SQLite Store copies its WAL into
// the database file by itself, well before SQLite's automatic checkpoint
// (at 1,000 WAL pages) would, and stops doing so at Close.
func TestBackgroundCheckpoint(t *testing.T) {
	t.Parallel()
	path := sqliteDSN(t)
	s, err := Open(t.Context(), path)
	require.NoError(t, err)
	require.NotNil(t, s.ckpt)
	size := func() int64 {
		fi, err := os.Stat(path)
		require.NoError(t, err)
		return fi.Size()
	}
	before := size()

	// Each append puts about 4 pages in the WAL: 2*checkpointEvery appends
	// stay far below the automatic checkpoint.
	for range 2 * checkpointEvery {
		require.NoError(t, s.AppendAudit(t.Context(), []approval.AuditEvent{event("req_1", approval.EventNotificationSent, "system")}))
	}
	require.Eventually(t, func() bool { return s.ckpt.runs.Load() >= 1 && size() > before },
		10*time.Second, 10*time.Millisecond, "no background checkpoint copied the WAL into the database file")

	require.NoError(t, s.Close())
	require.Error(t, s.ckpt.ctx.Err(), "Close stops the checkpointer")
	runs := s.ckpt.runs.Load()
	s.ckpt.committed(1) // a late commit count must not restart anything
	time.Sleep(10 * time.Millisecond)
	require.Equal(t, runs, s.ckpt.runs.Load())

	// The file holds everything, and the trail verifies.
	again := open(t, path)
	require.Len(t, fullTrail(t, again), 2*checkpointEvery)
}
