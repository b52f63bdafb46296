package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/approvalhttp"
	"github.com/signoff/approval/memstore"
)

// cliInput is cli with input on the command's stdin.
func cliInput(t *testing.T, input string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(input), &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if exit, ok := errors.AsType[*exec.ExitError](err); ok {
		r.code = exit.ExitCode()
	} else {
		require.NoError(t, err, "run %s", args)
	}
	return r
}

// reviewServer serves a gate's review pages and API over real HTTP, under
// a prefix, as a host mounts them.
func reviewServer(t *testing.T) (*approval.Gate, *httptest.Server, func(id, who string, v approval.Verdict) string) {
	t.Helper()
	_, priv, err := approval.GenerateKeys()
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(nil)
	g, err := approval.New(approval.Config{
		Store: memstore.New(), SigningKey: priv, Logger: slog.New(slog.DiscardHandler),
		BaseURL: "http://" + srv.Listener.Addr().String() + "/review",
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = g.Close(context.Background()) })
	require.NoError(t, g.SetPolicy("payments", approval.Policy{
		Match:             approval.Name("wire-transfer"),
		Approvers:         []approval.Approver{approval.User("alice"), approval.User("bob")},
		RequiredApprovals: 1,
	}))
	h, err := approvalhttp.New(g, approvalhttp.Options{})
	require.NoError(t, err)
	mux := httptestMux(h)
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(srv.Close)
	link := func(id, who string, v approval.Verdict) string {
		tok, err := g.IssueToken(id, who, v, time.Hour)
		require.NoError(t, err)
		return srv.URL + "/review/approvals/" + id + "?verdict=" + string(v) + "&token=" + url.QueryEscape(tok)
	}
	return g, srv, link
}

func guardTransfer(t *testing.T, g *approval.Gate, payload, message string) string {
	t.Helper()
	res, err := g.Guard(t.Context(), approval.Action{Name: "wire-transfer", RequestedBy: "user-1", Message: message,
		Payload: []byte(payload)})
	require.NoError(t, err)
	require.Equal(t, approval.OutcomePending, res.Status)
	return res.RequestID
}

func TestDecide(t *testing.T) {
	g, _, link := reviewServer(t)

	t.Run("shows the request, then approves as the link's holder", func(t *testing.T) {
		id := guardTransfer(t, g, `{"to":"DE89 3704","amount":5000}`, "pay the supplier")
		r := cliInput(t, "y\n", "decide", "-reason", "invoice checked", link(id, "alice", approval.VerdictApprove))
		requireExit(t, r, exitOK)
		require.Contains(t, r.stdout, "action    wire-transfer")
		require.Contains(t, r.stdout, "requester user-1")
		require.Contains(t, r.stdout, "why       pay the supplier")
		require.Contains(t, r.stdout, `"to": "DE89 3704"`, "the payload, indented")
		req, err := g.Get(t.Context(), id)
		require.NoError(t, err)
		require.Contains(t, r.stdout, "binds     action "+req.ActionHash)
		require.Contains(t, r.stdout, "approved: request "+id+" is now approved")
		require.Contains(t, r.stderr, "approve request "+id+" as shown above? [y/N]")
		require.Equal(t, approval.StatusApproved, req.Status)
		require.Len(t, req.Votes, 1)
		require.Equal(t, "alice", req.Votes[0].Approver)
		require.Equal(t, "invoice checked", req.Votes[0].Reason)

		// The link works once: a replay is refused by the server, and
		// audited there.
		r = cliInput(t, "", "decide", "-yes", link(id, "bob", approval.VerdictApprove))
		requireExit(t, r, exitFailed)
		require.Contains(t, r.stderr, "is approved: there is nothing to decide")
	})

	t.Run("a used token is refused and audited", func(t *testing.T) {
		id := guardTransfer(t, g, `{"amount":1}`, "")
		l := link(id, "alice", approval.VerdictDeny)
		requireExit(t, cliInput(t, "", "decide", "-yes", "-reason", "no", l), exitOK)
		id2 := guardTransfer(t, g, `{"amount":2}`, "")
		// The same token on another request's link: the token is for id.
		other := strings.Replace(l, id, id2, 1)
		r := cliInput(t, "", "decide", "-yes", other)
		requireExit(t, r, exitFailed)
		require.Contains(t, r.stderr, "the server refused")
		req, err := g.Get(t.Context(), id2)
		require.NoError(t, err)
		require.Empty(t, req.Votes)
	})

	t.Run("without confirmation nothing is sent", func(t *testing.T) {
		id := guardTransfer(t, g, `{"amount":3}`, "")
		r := cliInput(t, "n\n", "decide", link(id, "alice", approval.VerdictApprove))
		requireExit(t, r, exitFailed)
		require.Contains(t, r.stderr, "not confirmed; nothing was sent")
		r = cliInput(t, "", "decide", link(id, "alice", approval.VerdictApprove))
		requireExit(t, r, exitFailed) // no answer (stdin closed) is no
		req, err := g.Get(t.Context(), id)
		require.NoError(t, err)
		require.Empty(t, req.Votes)
		require.Equal(t, approval.StatusPending, req.Status)
	})

	t.Run("a verdict the link's token does not allow is refused before anything is sent", func(t *testing.T) {
		id := guardTransfer(t, g, `{"amount":4}`, "")
		r := cliInput(t, "", "decide", "-deny", "-yes", link(id, "alice", approval.VerdictApprove))
		requireExit(t, r, exitUsage)
		require.Contains(t, r.stderr, "the link's token is for approve, not deny")
	})

	t.Run("the requester's text cannot drive the terminal", func(t *testing.T) {
		id := guardTransfer(t, g, `{"amount":5}`, "ok\x1b[2J\x1b[1;1Happroved by the CFO")
		r := cliInput(t, "n\n", "decide", link(id, "alice", approval.VerdictApprove))
		requireExit(t, r, exitFailed)
		require.NotContains(t, r.stdout, "\x1b")
		require.Contains(t, r.stdout, `ok\x1b[2J\x1b[1;1Happroved by the CFO`)
	})

	t.Run("malformed links", func(t *testing.T) {
		for _, l := range []string{
			"not a link",
			"ftp://example.com/approvals/req_1?token=x",
			"https://example.com/approvals/req_1", // no token
			"https://example.com/queue?token=x",   // not a review link
			"https://example.com/approvals/req_1?verdict=maybe&token=x",
		} {
			r := cliInput(t, "", "decide", "-yes", l)
			requireExit(t, r, exitUsage)
		}
		requireExit(t, cliInput(t, "", "decide", "-yes"), exitUsage)
	})
}

// httptestMux mounts h under /review, as a host mounts the handler.
func httptestMux(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/review/", http.StripPrefix("/review", h))
	return mux
}

// TestCancelThroughServer: approval cancel -url cancels through a served
// handler's API, as the operator the server names from the credentials
// sent; someone the server does not name an operator changes nothing.
func TestCancelThroughServer(t *testing.T) {
	_, priv, err := approval.GenerateKeys()
	require.NoError(t, err)
	g, err := approval.New(approval.Config{Store: memstore.New(), SigningKey: priv, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = g.Close(context.Background()) })
	require.NoError(t, g.SetPolicy("payments", approval.Policy{Match: approval.Name("wire-transfer"),
		Approvers: []approval.Approver{approval.User("alice")}, RequiredApprovals: 1}))
	bearer := map[string]string{"Bearer ops-key": "olivia", "Bearer dev-key": "dave"}
	h, err := approvalhttp.New(g, approvalhttp.Options{
		Identity: func(r *http.Request) (string, error) { return bearer[r.Header.Get("Authorization")], nil },
		Operator: func(_ *http.Request, who string) bool { return who == "olivia" },
	})
	require.NoError(t, err)
	srv := httptest.NewServer(httptestMux(h))
	t.Cleanup(srv.Close)
	id := guardTransfer(t, g, `{"amount":9}`, "")

	r := cliInput(t, "", "cancel", "-url", srv.URL+"/review", "-header", "Authorization: Bearer dev-key", "-reason", "not mine to cancel", id)
	requireExit(t, r, exitFailed)
	require.Contains(t, r.stderr, "403")
	r = cliInput(t, "", "cancel", "-url", srv.URL+"/review", "-reason", "no credentials", id)
	requireExit(t, r, exitFailed)
	require.Contains(t, r.stderr, "401")
	req, err := g.Get(t.Context(), id)
	require.NoError(t, err)
	require.Equal(t, approval.StatusPending, req.Status)

	requireExit(t, cliInput(t, "", "cancel", "-url", srv.URL+"/review", "-actor", "olivia", "-reason", "x", id), exitUsage)
	r = cliInput(t, "", "cancel", "-url", srv.URL+"/review", "-header", "Authorization: Bearer ops-key", "-reason", "superseded by INC-42", id)
	requireExit(t, r, exitOK)
	require.Equal(t, "cancelled "+id+" (now cancelled)\n", r.stdout)
	page, err := g.ListAudit(t.Context(), approval.AuditQuery{RequestID: id, Type: approval.EventRequestCancelled})
	require.NoError(t, err)
	require.Len(t, page.Events, 1)
	require.Equal(t, "olivia", page.Events[0].Actor, "the operator the server named, not a name the command gave")
	require.Equal(t, "superseded by INC-42", page.Events[0].Reason)

	r = cliInput(t, "", "cancel", "-url", srv.URL+"/review", "-header", "Authorization: Bearer ops-key", "-reason", "again", id)
	requireExit(t, r, exitFailed)
	require.Contains(t, r.stderr, "409")
}
