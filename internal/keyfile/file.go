package keyfile

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// LoadOrCreate returns the Ed25519 private key in the PKCS#8 PEM file at
// path, or, when no file is there, generates a key and writes it there with
// mode 0600; created reports which.
//
// The file is written atomically (a temporary file in the same directory,
// synced, then linked into place), and an existing file is never replaced:
// one that is not a valid Ed25519 key reports ErrInvalid, and one that
// cannot be read reports the file system's error. If two processes create
// the key at once, one key wins and both return it.
func LoadOrCreate(path string) (priv ed25519.PrivateKey, created bool, err error) {
	priv, err = load(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return priv, false, err
	}
	_, priv, err = ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("create key file %s: %w", path, err)
	}
	data, err := EncodePrivate(priv)
	if err != nil {
		return nil, false, fmt.Errorf("create key file %s: %w", path, err)
	}
	switch err := writeNewFile(path, data); {
	case errors.Is(err, fs.ErrExist):
		// Another process created it first: use its key.
		priv, err = load(path)
		return priv, false, err
	case err != nil:
		return nil, false, fmt.Errorf("create key file %s: %w", path, err)
	}
	return priv, true, nil
}

func load(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	priv, err := decodePrivate(data)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return priv, nil
}

// writeNewFile writes data to a new file at path, all or nothing, with mode
// 0600. It reports an error wrapping fs.ErrExist if path exists.
func writeNewFile(path string, data []byte) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	// os.CreateTemp creates the file with mode 0600.
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a link, only the temporary name goes
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	// A rename would replace a file created meanwhile; a hard link fails
	// instead. Where the file system has no hard links, rename after a
	// check, which leaves a narrow race between two creators.
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		if _, serr := os.Lstat(path); serr == nil {
			return fs.ErrExist
		}
		if err := os.Rename(tmp, path); err != nil {
			return err
		}
	}
	return syncDir(dir)
}

// syncDir makes a new directory entry durable. Windows cannot sync a
// directory handle; NTFS journals the entry itself.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
