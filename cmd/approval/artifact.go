package main

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/wire"
)

func runVerifyArtifact(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) int {
	artPath := fs.String("artifact", "", "`path` of the approval artifact (JSON, as Gate.Artifact or Result.Artifact gives it)")
	actionPath := fs.String("action", "", "`path` of the action about to run, as JSON: its payload as JSON in \"payload\", or as text in \"payload_text\", or in base64 in \"payload_base64\" (a string in \"payload\" is base64, as encoding/json writes approval.Action)")
	var keyPaths listFlag
	fs.Var(&keyPaths, "key", "`path` of a trusted key: public (PKIX PEM) or private (PKCS#8 PEM); repeat for several")
	at := fs.String("at", "", "verify as of this `time` (RFC 3339). Defaults to now")
	if code := parse(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(fs, "unexpected argument %q", fs.Arg(0))
	}
	if missing := required(fs, "artifact", "action"); missing != "" {
		return usageError(fs, "-%s is required", missing)
	}
	if len(keyPaths) == 0 {
		return usageError(fs, "-key is required")
	}
	now := time.Now()
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return usageError(fs, "-at %q is not an RFC 3339 time such as 2026-03-01T09:30:00Z", *at)
		}
		now = t
	}
	artifact, err := os.ReadFile(*artPath)
	if err != nil {
		return fail(stderr, exitUsage, fmt.Errorf("read artifact: %w", err))
	}
	actionJSON, err := os.ReadFile(*actionPath)
	if err != nil {
		return fail(stderr, exitUsage, fmt.Errorf("read action: %w", err))
	}
	var wa wire.Action
	if err := json.Unmarshal(actionJSON, &wa); err != nil {
		return fail(stderr, exitUsage, fmt.Errorf("action %s is not an action in JSON: %w", *actionPath, err))
	}
	action, err := wa.Decode(wire.StringIsBase64)
	if err != nil {
		return fail(stderr, exitUsage, fmt.Errorf("action %s: %w", *actionPath, err))
	}
	keys := make([]ed25519.PublicKey, 0, len(keyPaths))
	for _, p := range keyPaths {
		k, err := readVerifyKey(p)
		if err != nil {
			return fail(stderr, exitUsage, err)
		}
		keys = append(keys, k)
	}

	a, err := approval.VerifyArtifactAt(artifact, action, keys, now)
	if err != nil {
		return fail(stderr, exitFailed, fmt.Errorf("artifact refused: %s", bare(err)))
	}
	printArtifact(stdout, a)
	return exitOK
}

// readVerifyKey reads a public key PEM file, or the public half of a
// private key PEM file.
func readVerifyKey(path string) (ed25519.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	pub, perr := approval.DecodePublicKeyPEM(data)
	if perr == nil {
		return pub, nil
	}
	if priv, err := approval.DecodePrivateKeyPEM(data); err == nil {
		return priv.Public().(ed25519.PublicKey), nil
	}
	return nil, fmt.Errorf("key %s: %w (nor is it a PKCS#8 private key)", path, perr)
}

func printArtifact(w io.Writer, a *approval.Artifact) {
	fmt.Fprintf(w, "artifact OK: request %s approved (%s), key %s\n", a.RequestID, a.Reason, a.KeyID)
	for _, p := range a.Policies {
		fmt.Fprintf(w, "policy  %s %s\n", p.Name, p.Hash)
	}
	for _, v := range a.Votes {
		who := v.Approver
		if v.OnBehalfOf != "" {
			who += " for " + v.OnBehalfOf
		}
		fmt.Fprintf(w, "vote    %s %s at %s\n", v.Verdict, who, v.At.UTC().Format(time.RFC3339Nano))
		if p := v.Passkey; p != nil {
			// VerifyArtifact checked it: this key signed this vote's challenge.
			sum := sha256.Sum256(p.PublicKey)
			fmt.Fprintf(w, "        confirmed with passkey %s for %s, key sha256:%s\n", p.CredentialID, p.RPID, hex.EncodeToString(sum[:]))
		}
	}
	fmt.Fprintf(w, "issued  %s\nexpires %s\n", a.IssuedAt.UTC().Format(time.RFC3339Nano), a.ExpiresAt.UTC().Format(time.RFC3339Nano))
}
