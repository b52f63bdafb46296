package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/signoff/approval"
)

func runKeygen(fset *flag.FlagSet, args []string, stdout, stderr io.Writer) int {
	out := fset.String("out", "", "`path` of the private key to write (PKCS#8 PEM, mode 0600); must not exist")
	pubPath := fset.String("pub", "", "`path` of the public key to write (PKIX PEM, mode 0644); must not exist. Defaults to <out>.pub")
	if code := parse(fset, args); code >= 0 {
		return code
	}
	if fset.NArg() > 0 {
		return usageError(fset, "unexpected argument %q", fset.Arg(0))
	}
	if *out == "" {
		return usageError(fset, "-out is required")
	}
	if *pubPath == "" {
		*pubPath = *out + ".pub"
	}
	if filepath.Clean(*pubPath) == filepath.Clean(*out) {
		return usageError(fset, "-pub and -out name the same file")
	}
	// Refuse before writing anything if either file exists, so that a
	// refusal leaves no half of a pair behind.
	for _, p := range []string{*out, *pubPath} {
		if _, err := os.Lstat(p); err == nil {
			return fail(stderr, exitUsage, fmt.Errorf("keygen: %s exists: refusing to overwrite it", p))
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fail(stderr, exitUsage, fmt.Errorf("keygen: %w", err))
		}
	}
	pub, priv, err := approval.GenerateKeys()
	if err != nil {
		return fail(stderr, exitUsage, err)
	}
	privPEM, err := approval.EncodePrivateKeyPEM(priv)
	if err != nil {
		return fail(stderr, exitUsage, err)
	}
	pubPEM, err := approval.EncodePublicKeyPEM(pub)
	if err != nil {
		return fail(stderr, exitUsage, err)
	}
	if err := writeNew(*out, privPEM, 0o600); err != nil {
		return fail(stderr, exitUsage, fmt.Errorf("keygen: %w", err))
	}
	if err := writeNew(*pubPath, pubPEM, 0o644); err != nil {
		// The private key alone is of no use to anyone who cannot
		// publish its public half: take it back.
		_ = os.Remove(*out)
		return fail(stderr, exitUsage, fmt.Errorf("keygen: %w", err))
	}
	fmt.Fprintf(stdout, "key ID %s\nprivate key %s\npublic key %s\n", approval.KeyID(pub), *out, *pubPath)
	return exitOK
}

// writeNew writes data to a new file at path with mode perm (before the
// umask), failing if path exists, and syncs it.
func writeNew(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
