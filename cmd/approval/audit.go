package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-isatty"

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

// headFlag is the -from flag: one audit head, as approval.ParseAuditHead
// reads it.
type headFlag struct{ approval.AuditHead }

func (h *headFlag) String() string {
	if h.Seq == 0 {
		return ""
	}
	return h.AuditHead.String()
}

func (h *headFlag) Set(v string) error {
	a, err := approval.ParseAuditHead(v)
	if err != nil {
		return errors.New(bare(err))
	}
	h.AuditHead = a
	return nil
}

func runVerifyAudit(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) int {
	dsn := dbFlag(fs)
	var anchors headsFlag
	fs.Var(&anchors, "expect-head", "a head kept outside the database, `SEQ:HASH` (checkpoint's, or one verify-audit printed): fail if the trail now ends before SEQ or its event SEQ has another hash; repeat for several")
	var keyPaths listFlag
	fs.Var(&keyPaths, "key", "`path` of a public key (PKIX PEM) whose checkpoints verify, or of a private key (PKCS#8 PEM), whose public half is used; repeat for several")
	var from headFlag
	fs.Var(&from, "from", "verify from the head `SEQ:HASH` of an earlier run (the head it printed, or a checkpoint's) instead of from the start: the event must still have that hash; the events before it, and the requests made before it, are not checked (a nightly run; verify the whole trail now and then)")
	if code := parseStore(fs, args, dsn, false); code >= 0 {
		return code
	}
	for _, a := range anchors {
		if from.Seq > 0 && a.Seq < from.Seq {
			return usageError(fs, "-expect-head %d is before -from %d: only a run from the start of the trail checks it", a.Seq, from.Seq)
		}
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
	opts := approval.VerifyAuditOptions{
		Anchors: anchors,
		Keys:    keys,
		// A verifier without keys still checks that each checkpoint signs
		// an event of the chain by its hash; it says below what it did not
		// check.
		AllowUnknownKeys: len(keys) == 0,
		From:             from.AuditHead,
	}
	var progress *progressLine
	if f, ok := stderr.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
		// A person watches: show how far it is, on one line of stderr,
		// never in the output.
		progress = &progressLine{w: stderr, start: time.Now()}
		if last, found, err := s.LastAuditEvent(ctx); err == nil && found {
			progress.total = last.Seq - max(from.Seq, 1) + 1
		}
		opts.Progress = func(pr approval.AuditProgress) { progress.show(time.Now(), pr) }
	}
	rep, err := approval.VerifyAuditTrail(ctx, s, opts)
	progress.clear()
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
	if from.Seq > 0 {
		fmt.Fprintf(stdout, "from seq %d: the events before it, and the requests made before it, were not checked in this run\n", from.Seq)
	}
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

// progressLine shows a verification's progress on a terminal, on one
// line that each call writes over: events verified, the rate, and the
// time left when the trail's length is known.
type progressLine struct {
	w     io.Writer
	start time.Time
	total int64 // the events to verify; 0 if unknown
	width int   // of the line on the terminal now
}

// show writes the line for pr, at time now.
func (p *progressLine) show(now time.Time, pr approval.AuditProgress) {
	line := "verify-audit: " + thousands(pr.Events)
	if p.total > 0 {
		line += " of " + thousands(max(p.total, pr.Events))
	}
	line += " events verified"
	if s := now.Sub(p.start).Seconds(); s > 0 && pr.Events > 0 {
		rate := float64(pr.Events) / s
		line += ", " + thousands(int64(rate)) + "/s"
		if left := p.total - pr.Events; left > 0 {
			d := max(time.Duration(float64(left)/rate*float64(time.Second)).Round(time.Second), time.Second)
			line += ", about " + d.String() + " left"
		}
	}
	pad := max(p.width-len(line), 0)
	fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
	p.width = len(line)
}

// clear blanks the line, if one was shown. A nil p shows nothing.
func (p *progressLine) clear() {
	if p == nil || p.width == 0 {
		return
	}
	fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.width))
	p.width = 0
}

// thousands writes n with commas between groups of three digits.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	if n < 0 {
		return "-" + thousands(-n)
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
