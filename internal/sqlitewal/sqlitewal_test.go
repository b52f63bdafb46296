package sqlitewal

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestCheckpoints: a writer that reports its commits gets its WAL copied
// into the database file well before SQLite's automatic checkpoint (at
// 1,000 WAL pages) would, once per Every writes and not before; after
// Close, commits start nothing.
func TestCheckpoints(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "wal.db")
	dsn := path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)"
	w, err := sql.Open("sqlite", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, w.Close()) })
	w.SetMaxOpenConns(1)
	_, err = w.Exec(`CREATE TABLE rows (id INTEGER PRIMARY KEY, body TEXT NOT NULL)`)
	require.NoError(t, err)
	c, err := Start(dsn)
	require.NoError(t, err)
	c.asked.Init() // before any Committed
	size := func() int64 {
		fi, err := os.Stat(path)
		require.NoError(t, err)
		return fi.Size()
	}
	before := size()
	write := func(n int) {
		for range n {
			_, err := w.Exec(`INSERT INTO rows (body) VALUES (?)`, strings.Repeat("x", 3000))
			require.NoError(t, err)
			c.Committed(1)
		}
	}

	write(Every - 1)
	require.Empty(t, c.asked.Pending(), "no checkpoint asked for before Every writes")
	require.Zero(t, c.Checkpoints(), "no checkpoint before Every writes")
	require.Equal(t, before, size(), "everything is still in the WAL")
	write(1)
	require.Equal(t, []int64{Every}, c.asked.Pending(), "the Every-th write asks for a checkpoint")
	require.Eventually(t, func() bool { return c.Checkpoints() == 1 && size() > before },
		10*time.Second, time.Millisecond, "no checkpoint copied the WAL into the database file")
	c.Committed(3 * Every) // many writes at once: one more checkpoint, not three
	require.Eventually(t, func() bool { return c.Checkpoints() == 2 }, 10*time.Second, time.Millisecond)

	require.NoError(t, c.Close())
	// A late commit count must not restart anything. Close has waited
	// for the checkpoint goroutine to end, so nothing can run after it:
	// the count is final without waiting.
	c.Committed(Every)
	require.Equal(t, int64(2), c.Checkpoints())
	var n int
	require.NoError(t, w.QueryRow(`SELECT count(*) FROM rows`).Scan(&n))
	require.Equal(t, Every, n)
}

// TestNil: a nil Checkpointer, a Store's when the database is not a file
// it opened, does nothing.
func TestNil(t *testing.T) {
	t.Parallel()
	var c *Checkpointer
	c.Committed(Every)
	require.Zero(t, c.Checkpoints())
	require.NoError(t, c.Close())
}
