package keyfile

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestWriteNewFileRefusesToReplace: the last step of creating a key file
// fails, rather than replace, when a file appeared at the path meanwhile
// (LoadOrCreate then loads that file), and leaves nothing behind.
func TestWriteNewFileRefusesToReplace(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "gate.key")
	require.NoError(t, writeNewFile(path, []byte("first")))
	err := writeNewFile(path, []byte("second"))
	require.ErrorIs(t, err, fs.ErrExist)
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "first", string(got))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "the temporary file is removed")
}
