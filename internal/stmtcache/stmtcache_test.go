package stmtcache

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite" // the "sqlite" driver
)

func openDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "stmt.db"))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	db.SetMaxOpenConns(1)
	return db
}

// TestMissedThenPrepared: a statement is missed once, prepared by
// PrepareMissed, and found from then on; the statement found runs.
func TestMissedThenPrepared(t *testing.T) {
	t.Parallel()
	c := New(openDB(t))
	t.Cleanup(func() { require.NoError(t, c.Close()) })
	require.Nil(t, c.Lookup("SELECT 1 + ?"))
	require.Nil(t, c.Lookup("SELECT 1 + ?"), "still missed until PrepareMissed")
	p, m := c.Len()
	require.Equal(t, [2]int{0, 1}, [2]int{p, m})
	c.PrepareMissed(t.Context())
	st := c.Lookup("SELECT 1 + ?")
	require.NotNil(t, st)
	var n int
	require.NoError(t, st.QueryRowContext(t.Context(), 41).Scan(&n))
	require.Equal(t, 42, n)
	p, m = c.Len()
	require.Equal(t, [2]int{1, 0}, [2]int{p, m})
}

// TestLookupHoldingTheConnection: Lookup never takes a connection, so a
// caller holding the pool's only one can use it; PrepareMissed, once the
// connection is back, prepares what it missed.
func TestLookupHoldingTheConnection(t *testing.T) {
	t.Parallel()
	db := openDB(t)
	c := New(db)
	t.Cleanup(func() { require.NoError(t, c.Close()) })
	conn, err := db.Conn(t.Context())
	require.NoError(t, err)
	done := make(chan *sql.Stmt, 1)
	go func() { done <- c.Lookup("SELECT 2") }()
	select {
	case st := <-done:
		require.Nil(t, st)
	case <-time.After(10 * time.Second):
		t.Fatal("Lookup waited for the pool's connection")
	}
	require.NoError(t, conn.Close())
	require.NotNil(t, c.Prepared(t.Context(), "SELECT 2"))
}

// TestFull: a full cache remembers no more misses and prepares nothing
// more; what it holds it keeps serving. A statement that fails to
// prepare is missed again next time.
func TestFull(t *testing.T) {
	t.Parallel()
	c := New(openDB(t))
	t.Cleanup(func() { require.NoError(t, c.Close()) })
	for i := range Max + 10 {
		require.Nil(t, c.Lookup(fmt.Sprintf("SELECT %d", i)))
	}
	_, m := c.Len()
	require.Equal(t, Max, m)
	c.PrepareMissed(t.Context())
	p, _ := c.Len()
	require.Equal(t, Max, p)
	require.NotNil(t, c.Prepared(t.Context(), "SELECT 0"))
	require.Nil(t, c.Prepared(t.Context(), "SELECT -1"), "a full cache prepares nothing more")

	c2 := New(openDB(t))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.Nil(t, c2.Prepared(ctx, "SELECT 3"), "preparing with an ended context fails")
	require.NotNil(t, c2.Prepared(t.Context(), "SELECT 3"), "and is tried again")
	require.NoError(t, c2.Close())
}

// TestNil: a nil Cache prepares and closes nothing.
func TestNil(t *testing.T) {
	t.Parallel()
	var c *Cache
	c.PrepareMissed(t.Context())
	require.NoError(t, c.Close())
}
