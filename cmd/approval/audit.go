package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/signoff/approval"
)

// head is the end of an audit trail: its last event's Seq and Hash.
type head struct {
	seq  int64
	hash string
}

func (h head) String() string { return fmt.Sprintf("%d:%s", h.seq, h.hash) }

var hashPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

func parseHead(s string) (head, error) {
	seqText, hash, ok := strings.Cut(s, ":")
	seq, err := strconv.ParseInt(seqText, 10, 64)
	if !ok || err != nil || seq < 1 || !hashPattern.MatchString(hash) {
		return head{}, fmt.Errorf("-expect-head %q is not SEQ:HASH (a sequence number from 1, a colon, 64 lowercase hex digits), as verify-audit prints it", s)
	}
	return head{seq, hash}, nil
}

func runVerifyAudit(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) int {
	dsn := dbFlag(fs)
	expect := fs.String("expect-head", "", "a head saved earlier, `SEQ:HASH`: fail if the trail now ends before SEQ or its event SEQ has another hash")
	if code := parseStore(fs, args, dsn, false); code >= 0 {
		return code
	}
	var want *head
	if *expect != "" {
		h, err := parseHead(*expect)
		if err != nil {
			return usageError(fs, "%s", err)
		}
		want = &h
	}
	ctx := context.Background()
	g, closeGate, err := openGate(ctx, *dsn, false)
	if err != nil {
		return fail(stderr, exitUsage, fmt.Errorf("verify-audit: %s", bare(err)))
	}
	defer closeGate()

	n, err := g.VerifyAudit(ctx)
	if chainErr, ok := errors.AsType[*approval.AuditChainError](err); ok {
		return fail(stderr, exitFailed, chainErr)
	} else if err != nil {
		return fail(stderr, exitUsage, err)
	}
	last, atSeq, err := scanTrail(ctx, g, n, want)
	if err != nil {
		return fail(stderr, exitUsage, err)
	}
	if last == nil {
		fmt.Fprintf(stdout, "verified 0 events; no head: the trail is empty\n")
	} else {
		fmt.Fprintf(stdout, "verified %d events; head %d %s\n", n, last.seq, last.hash)
	}
	if want == nil {
		return exitOK
	}
	switch {
	case last == nil || last.seq < want.seq:
		have := "it is empty"
		if last != nil {
			have = fmt.Sprintf("it now ends at seq %d", last.seq)
		}
		return fail(stderr, exitFailed, fmt.Errorf("audit trail truncated: the saved head is seq %d but %s", want.seq, have))
	case atSeq == nil:
		// A store that prunes its trail no longer holds the event.
		return fail(stderr, exitFailed, fmt.Errorf("cannot check the saved head: the trail no longer holds event %d", want.seq))
	case atSeq.hash != want.hash:
		return fail(stderr, exitFailed, fmt.Errorf("audit trail truncated or rewritten: event %d has hash %s, the saved head has %s", want.seq, atSeq.hash, want.hash))
	}
	fmt.Fprintf(stdout, "saved head %d found: the trail continues from it\n", want.seq)
	return exitOK
}

// scanTrail reads the first n events of the trail (those VerifyAudit
// verified; more may have been appended since) and returns the last of
// them and, if want is set, the one at want.seq; either is nil when there
// is none.
func scanTrail(ctx context.Context, g *approval.Gate, n int64, want *head) (last, atSeq *head, err error) {
	q := approval.AuditQuery{Limit: approval.MaxPageSize}
	var read int64
	for read < n {
		page, err := g.ListAudit(ctx, q)
		if err != nil {
			return nil, nil, err
		}
		for _, e := range page.Events {
			if read == n {
				break
			}
			read++
			last = &head{e.Seq, e.Hash}
			if want != nil && e.Seq == want.seq {
				atSeq = last
			}
		}
		if page.Next == "" || len(page.Events) == 0 {
			break
		}
		q.Cursor = page.Next
	}
	return last, atSeq, nil
}
