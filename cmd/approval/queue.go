package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/wire"
)

func runList(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) int {
	dsn := dbFlag(fs)
	statuses := fs.String("status", "", "keep requests in these `statuses`, comma-separated (pending, escalated, approved, denied, cancelled, timed_out, consumed, expired). Defaults to all")
	limit := fs.Int("limit", 50, "print at most `n` requests")
	if code := parseStore(fs, args, dsn, false); code >= 0 {
		return code
	}
	if *limit < 1 {
		return usageError(fs, "-limit %d: want 1 or more", *limit)
	}
	var q approval.RequestQuery
	if *statuses != "" {
		for s := range strings.SplitSeq(*statuses, ",") {
			st := approval.Status(strings.TrimSpace(s))
			if !st.Valid() {
				return usageError(fs, "-status: unknown status %q", s)
			}
			q.Status = append(q.Status, st)
		}
	}
	ctx := context.Background()
	g, closeGate, err := openGate(ctx, *dsn, false, nil)
	if err != nil {
		return fail(stderr, exitUsage, fmt.Errorf("list: %s", bare(err)))
	}
	defer closeGate()

	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tACTION\tREQUESTED BY\tCREATED\tDEADLINE")
	shown, more := 0, false
	for {
		q.Limit = min(*limit-shown, approval.MaxPageSize)
		page, err := g.List(ctx, q)
		if err != nil {
			return fail(stderr, exitUsage, err)
		}
		for _, r := range page.Requests {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Status, oneLine(r.Action.Name), oneLine(r.Action.RequestedBy), stamp(r.CreatedAt), stamp(r.Deadline))
			shown++
		}
		if page.Next == "" {
			break
		}
		if shown >= *limit {
			more = true
			break
		}
		q.Cursor = page.Next
	}
	if err := tw.Flush(); err != nil {
		return fail(stderr, exitUsage, err)
	}
	if more {
		fmt.Fprintf(stderr, "approval: showing the first %d requests; there may be more: raise -limit\n", *limit)
	}
	return exitOK
}

func runShow(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) int {
	dsn := dbFlag(fs)
	if code := parseStore(fs, args, dsn, true); code >= 0 {
		return code
	}
	if fs.NArg() != 1 {
		return usageError(fs, "want one request ID, got %d arguments", fs.NArg())
	}
	id := fs.Arg(0)
	ctx := context.Background()
	g, closeGate, err := openGate(ctx, *dsn, false, nil)
	if err != nil {
		return fail(stderr, exitUsage, fmt.Errorf("show: %s", bare(err)))
	}
	defer closeGate()

	r, err := g.Get(ctx, id)
	if errors.Is(err, approval.ErrNotFound) {
		return fail(stderr, exitFailed, fmt.Errorf("show: no request %q", id))
	} else if err != nil {
		return fail(stderr, exitUsage, err)
	}
	events := []approval.AuditEvent{}
	q := approval.AuditQuery{RequestID: r.ID, Limit: approval.MaxPageSize}
	for {
		page, err := g.ListAudit(ctx, q)
		if err != nil {
			return fail(stderr, exitUsage, err)
		}
		events = append(events, page.Events...)
		if page.Next == "" {
			break
		}
		q.Cursor = page.Next
	}
	out := struct {
		Request *wire.Request         `json:"request"`
		Audit   []approval.AuditEvent `json:"audit"`
	}{wire.ShowRequest(r), events}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return fail(stderr, exitUsage, err)
	}
	fmt.Fprintf(stdout, "%s\n", b)
	return exitOK
}

func runOutbox(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) int {
	dsn := dbFlag(fs)
	dead := fs.Bool("dead", false, "list only dead letters")
	limit := fs.Int("limit", 100, "print at most `n` messages")
	if code := parseStore(fs, args, dsn, false); code >= 0 {
		return code
	}
	if *limit < 1 {
		return usageError(fs, "-limit %d: want 1 or more", *limit)
	}
	q := approval.OutboxQuery{}
	if *dead {
		q.State = approval.OutboxDead
	}
	ctx := context.Background()
	g, closeGate, err := openGate(ctx, *dsn, false, nil)
	if err != nil {
		return fail(stderr, exitUsage, fmt.Errorf("outbox: %s", bare(err)))
	}
	defer closeGate()

	msgs, more, err := listOutbox(ctx, g, q, *limit)
	if err != nil {
		return fail(stderr, exitUsage, err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tTYPE\tREQUEST\tCHANNEL\tRECIPIENT\tATTEMPTS\tNEXT ATTEMPT\tLAST ERROR")
	for _, m := range msgs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", m.ID, m.State, m.Type, m.RequestID,
			dash(m.Channel), dash(oneLine(m.Recipient)), m.Attempts, stamp(m.NextAttempt), dash(oneLine(m.LastError)))
	}
	if err := tw.Flush(); err != nil {
		return fail(stderr, exitUsage, err)
	}
	if more {
		fmt.Fprintf(stderr, "approval: showing the first %d messages; there may be more: raise -limit\n", *limit)
	}
	return exitOK
}

func runRedrive(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) int {
	dsn := dbFlag(fs)
	actor := fs.String("actor", "", "who redrives, `NAME` as the audit trail records it")
	if code := parse(fs, args); code >= 0 {
		return code
	}
	if missing := required(fs, "db", "actor"); missing != "" {
		return usageError(fs, "-%s is required", missing)
	}
	ctx := context.Background()
	g, closeGate, err := openGate(ctx, *dsn, true, nil)
	if err != nil {
		return fail(stderr, exitUsage, fmt.Errorf("redrive: %s", bare(err)))
	}
	defer closeGate()

	ids := fs.Args()
	if len(ids) == 0 {
		msgs, _, err := listOutbox(ctx, g, approval.OutboxQuery{State: approval.OutboxDead}, -1)
		if err != nil {
			return fail(stderr, exitUsage, err)
		}
		for _, m := range msgs {
			ids = append(ids, m.ID)
		}
		if len(ids) == 0 {
			fmt.Fprintln(stdout, "no dead letters")
			return exitOK
		}
	}
	n, err := g.Redrive(ctx, *actor, ids...)
	fmt.Fprintf(stdout, "redrove %d of %d dead letters\n", n, len(ids))
	switch {
	case errors.Is(err, approval.ErrNotFound):
		return fail(stderr, exitFailed, err)
	case err != nil: // a bad -actor (ErrInvalidDecision) or the store
		return fail(stderr, exitUsage, err)
	}
	return exitOK
}

// runCancel is "approval cancel": an operator ends a request, audited as
// request.cancelled with the actor named: through a served handler's API
// (-url), where the server names the operator from the credentials sent
// (-header), or on the store (-db), where -actor names them.
func runCancel(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) int {
	dsn := dbFlag(fs)
	server := fs.String("url", "", "the review pages' `URL` (https://ops.example.com/review): cancel through its API, as the operator its credentials name")
	var headers listFlag
	fs.Var(&headers, "header", "a `Name: value` header to send with -url (the operator's credentials); repeatable")
	actor := fs.String("actor", "", "with -db: who cancels, `NAME` as the audit trail records it")
	reason := fs.String("reason", "", "why, as the audit trail records it")
	if code := parse(fs, args); code >= 0 {
		return code
	}
	switch {
	case (*dsn == "") == (*server == ""):
		return usageError(fs, "give -db or -url, not both")
	case *reason == "":
		return usageError(fs, "-reason is required")
	case *dsn != "" && *actor == "":
		return usageError(fs, "-actor is required with -db")
	case *server != "" && *actor != "":
		return usageError(fs, "-actor goes with -db: through -url the server names the operator from the credentials")
	case fs.NArg() != 1:
		return usageError(fs, "want exactly one request ID")
	}
	if *server != "" {
		return cancelRemote(*server, headers, fs.Arg(0), *reason, stdout, stderr)
	}
	ctx := context.Background()
	g, closeGate, err := openGate(ctx, *dsn, true, nil)
	if err != nil {
		return fail(stderr, exitUsage, fmt.Errorf("cancel: %s", bare(err)))
	}
	defer closeGate()
	r, err := g.Cancel(ctx, fs.Arg(0), *actor, *reason)
	switch {
	case errors.Is(err, approval.ErrNotFound), errors.Is(err, approval.ErrNotPending):
		return fail(stderr, exitFailed, err)
	case err != nil: // a bad -actor or -reason (ErrInvalidDecision) or the store
		return fail(stderr, exitUsage, err)
	}
	fmt.Fprintf(stdout, "cancelled %s (%s)\n", r.ID, r.Action.Name)
	return exitOK
}

// cancelRemote cancels request id through the API of the handler served
// at base.
func cancelRemote(base string, headers []string, id, reason string, stdout, stderr io.Writer) int {
	u, err := url.Parse(strings.TrimSpace(base))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fail(stderr, exitUsage, errors.New("cancel: -url must be the http(s) address of the review pages"))
	}
	body, err := json.Marshal(map[string]string{"reason": reason})
	if err != nil {
		return fail(stderr, exitUsage, err)
	}
	req, err := http.NewRequest(http.MethodPost, u.JoinPath("api", "approvals", id, "cancel").String(), bytes.NewReader(body))
	if err != nil {
		return fail(stderr, exitUsage, fmt.Errorf("cancel: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return fail(stderr, exitUsage, fmt.Errorf("cancel: -header %q is not Name: value", h))
		}
		req.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	hc := &http.Client{Timeout: decideTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var out decided
	if err := exchange(hc, req, &out); err != nil {
		return fail(stderr, exitFailed, fmt.Errorf("cancel %s: %w", id, err))
	}
	fmt.Fprintf(stdout, "cancelled %s (now %s)\n", out.RequestID, out.Status)
	return exitOK
}

// listOutbox returns up to limit messages matching q (all of them if
// limit < 0), and whether there are more.
func listOutbox(ctx context.Context, g *approval.Gate, q approval.OutboxQuery, limit int) ([]approval.OutboxMessage, bool, error) {
	var msgs []approval.OutboxMessage
	for {
		q.Limit = approval.MaxPageSize
		if limit >= 0 {
			q.Limit = min(limit-len(msgs), approval.MaxPageSize)
		}
		page, err := g.ListOutbox(ctx, q)
		if err != nil {
			return nil, false, err
		}
		msgs = append(msgs, page.Messages...)
		if page.Next == "" {
			return msgs, false, nil
		}
		if limit >= 0 && len(msgs) >= limit {
			return msgs, true, nil
		}
		q.Cursor = page.Next
	}
}

// stamp formats a time for a table; "-" for none.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine keeps a value that came from a requester or a channel on its
// table row: control characters, tabs and newlines become spaces.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
