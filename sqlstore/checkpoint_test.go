package sqlstore

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/sqlitewal"
)

// TestBackgroundCheckpoint checks that a SQLite Store counts its writes
// for its checkpointer (see sqlitewal), on either write path, so that its
// WAL is copied into the database file by itself, well before SQLite's
// automatic checkpoint (at 1,000 WAL pages) would. A Store over a
// caller's pool leaves checkpoints to SQLite.
func TestBackgroundCheckpoint(t *testing.T) {
	t.Parallel()
	eachPath(t, func(t *testing.T, opts []Option) {
		path := sqliteDSN(t)
		s, err := Open(t.Context(), path, opts...)
		require.NoError(t, err)
		size := func() int64 {
			fi, err := os.Stat(path)
			require.NoError(t, err)
			return fi.Size()
		}
		before := size()

		// Each append puts about 4 pages in the WAL: 2*Every appends stay
		// far below the automatic checkpoint.
		for range 2 * sqlitewal.Every {
			require.NoError(t, s.AppendAudit(t.Context(), []approval.AuditEvent{event("req_1", approval.EventNotificationSent, "system")}))
		}
		require.Eventually(t, func() bool { return s.ckpt.Checkpoints() >= 1 && size() > before },
			10*time.Second, 10*time.Millisecond, "no background checkpoint copied the WAL into the database file")
		require.NoError(t, s.Close())

		// The file holds everything, and the trail verifies.
		again := open(t, path)
		require.Len(t, fullTrail(t, again), 2*sqlitewal.Every)
	})
	t.Run("OpenDB", func(t *testing.T) {
		t.Parallel()
		require.Nil(t, openSQLiteDB(t).ckpt)
	})
}
