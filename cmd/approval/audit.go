package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/signoff/approval"
)

// headsFlag is the repeatable -expect-head flag: audit heads as
// approval.ParseAuditHead reads them.
type headsFlag []approval.AuditHead

func (h *headsFlag) String() string {
	s := make([]string, len(*h))
	for i, a := range *h {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}

func (h *headsFlag) Set(v string) error {
	a, err := approval.ParseAuditHead(v)
	if err != nil {
		return errors.New(bare(err))
	}
	*h = append(*h, a)
	return nil
}

func runVerifyAudit(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) int {
	dsn := dbFlag(fs)
	var anchors headsFlag
	fs.Var(&anchors, "expect-head", "a head kept outside the database, `SEQ:HASH` (checkpoint's, or one verify-audit printed): fail if the trail now ends before SEQ or its event SEQ has another hash; repeat for several")
	var keyPaths listFlag
	fs.Var(&keyPaths, "key", "`path` of a public key (PKIX PEM) whose checkpoints verify, or of a private key (PKCS#8 PEM), whose public half is used; repeat for several")
	if code := parseStore(fs, args, dsn, false); code >= 0 {
		return code
	}
	keys := make([]ed25519.PublicKey, 0, len(keyPaths))
	for _, p := range keyPaths {
		k, err := readVerifyKey(p)
		if err != nil {
			return fail(stderr, exitUsage, fmt.Errorf("verify-audit: %w", err))
		}
		keys = append(keys, k)
	}
	ctx := context.Background()
	s, closeStore, err := openStore(ctx, *dsn, false)
	if err != nil {
		return fail(stderr, exitUsage, fmt.Errorf("verify-audit: %s", bare(err)))
	}
	defer closeStore()

	// No gate: verifying needs the store and the public keys alone.
	rep, err := approval.VerifyAuditTrail(ctx, s, approval.VerifyAuditOptions{
		Anchors: anchors,
		Keys:    keys,
		// A verifier without keys still checks that each checkpoint signs
		// an event of the chain by its hash; it says below what it did not
		// check.
		AllowUnknownKeys: len(keys) == 0,
	})
	// The store's read may wrap the verification error in its own
	// context: print the verdict alone.
	if chainErr, ok := errors.AsType[*approval.AuditChainError](err); ok {
		return fail(stderr, exitFailed, chainErr)
	}
	if stateErr, ok := errors.AsType[*approval.AuditStateError](err); ok {
		return fail(stderr, exitFailed, stateErr)
	}
	if err != nil {
		return fail(stderr, exitUsage, fmt.Errorf("verify-audit: %s", bare(err)))
	}
	printAuditReport(stdout, rep, len(keys) > 0)
	for _, a := range anchors {
		fmt.Fprintf(stdout, "saved head %d found: the trail continues from it\n", a.Seq)
	}
	if n := rep.UnverifiedCheckpoints; n > 0 {
		were := "checkpoints were"
		if n == 1 {
			were = "checkpoint was"
		}
		fmt.Fprintf(stderr, "approval verify-audit: warning: %d %s not verified: pass the gate's public key with -key to check their signatures\n", n, were)
	}
	return exitOK
}

// printAuditReport prints what verify-audit verified. Its first line is
// "verified N events; head SEQ HASH", which scripts may parse.
func printAuditReport(w io.Writer, rep approval.AuditReport, withKeys bool) {
	if rep.Events == 0 {
		fmt.Fprintf(w, "verified 0 events; no head: the trail is empty\n")
	} else {
		fmt.Fprintf(w, "verified %d events; head %d %s\n", rep.Events, rep.Head.Seq, rep.Head.Hash)
	}
	switch {
	case rep.Checkpoints+rep.UnverifiedCheckpoints == 0:
		fmt.Fprintf(w, "checkpoints: none\n")
	case withKeys:
		fmt.Fprintf(w, "checkpoints: %d verified, last %s\n", rep.Checkpoints, rep.LastCheckpoint)
	default:
		fmt.Fprintf(w, "checkpoints: %d not verified (no -key), last %s\n", rep.UnverifiedCheckpoints, rep.LastCheckpoint)
	}
	fmt.Fprintf(w, "requests: %d checked against the trail\n", rep.Requests)
}

func runCheckpoint(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) int {
	dsn := dbFlag(fs)
	keyPath := fs.String("key", "", "`path` of the private key that signs (PKCS#8 PEM, as keygen -out writes it): the gate's SigningKey")
	if code := parseStore(fs, args, dsn, false); code >= 0 {
		return code
	}
	if *keyPath == "" {
		return usageError(fs, "-key is required: a checkpoint is signed with the gate's private key")
	}
	data, err := os.ReadFile(*keyPath)
	if err != nil {
		return fail(stderr, exitUsage, fmt.Errorf("checkpoint: read key: %w", err))
	}
	key, err := approval.DecodePrivateKeyPEM(data)
	if err != nil {
		if _, perr := approval.DecodePublicKeyPEM(data); perr == nil {
			return usageError(fs, "-key %s is a public key: signing a checkpoint needs the private key (PKCS#8 PEM); give the public key to verify-audit -key", *keyPath)
		}
		return fail(stderr, exitUsage, fmt.Errorf("checkpoint: key %s: %s", *keyPath, bare(err)))
	}
	ctx := context.Background()
	g, closeGate, err := openGate(ctx, *dsn, true, key)
	if err != nil {
		return fail(stderr, exitUsage, fmt.Errorf("checkpoint: %s", bare(err)))
	}
	defer closeGate()

	h, err := g.Checkpoint(ctx)
	if err != nil {
		return fail(stderr, exitUsage, err)
	}
	fmt.Fprintf(stdout, "checkpoint %s\n", h)
	fmt.Fprintf(stdout, "keep this head outside the database, and check the trail against it later: approval verify-audit -db DSN -key PUBLIC.pem -expect-head %s\n", h)
	return exitOK
}
