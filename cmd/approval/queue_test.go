package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/sqlstore"
)

func TestListShow(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "approval.db")
	ids := seed(t, path)

	t.Run("list", func(t *testing.T) {
		r := cli(t, "list", "-db", path)
		requireExit(t, r, exitOK)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		require.Len(t, lines, 3, r.stdout)
		require.Regexp(t, `^ID\s+STATUS\s+ACTION`, lines[0])
		require.Regexp(t, `^`+ids.approved+`\s+approved\s+wire-transfer\s+user-1\s+\S+\s+\S+$`, lines[1])
		require.Regexp(t, `^`+ids.pending+`\s+pending\s+wire-transfer\s+user-1\s+\S+\s+\S+$`, lines[2])
	})
	t.Run("list -status", func(t *testing.T) {
		r := cli(t, "list", "-db", path, "-status", "pending")
		requireExit(t, r, exitOK)
		require.Contains(t, r.stdout, ids.pending)
		require.NotContains(t, r.stdout, ids.approved)

		r = cli(t, "list", "-db", path, "-status", "denied,cancelled")
		requireExit(t, r, exitOK)
		require.Equal(t, 1, strings.Count(r.stdout, "\n"), "the header alone: %s", r.stdout)

		requireExit(t, cli(t, "list", "-db", path, "-status", "waiting"), exitUsage)
	})
	t.Run("list -limit", func(t *testing.T) {
		r := cli(t, "list", "-db", path, "-limit", "1")
		requireExit(t, r, exitOK)
		require.Contains(t, r.stdout, ids.approved)
		require.NotContains(t, r.stdout, ids.pending)
		require.Contains(t, r.stderr, "raise -limit")

		requireExit(t, cli(t, "list", "-db", path, "-limit", "0"), exitUsage)
	})
	t.Run("show", func(t *testing.T) {
		r := cli(t, "show", "-db", path, ids.approved)
		requireExit(t, r, exitOK)
		var out struct {
			Request struct {
				ID          string          `json:"id"`
				Status      approval.Status `json:"status"`
				Votes       []approval.Vote `json:"votes"`
				ApprovalTTL string          `json:"approval_ttl"`
				Action      struct {
					Payload map[string]string `json:"payload"`
				} `json:"action"`
			} `json:"request"`
			Audit []approval.AuditEvent `json:"audit"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
		require.Equal(t, ids.approved, out.Request.ID)
		require.Equal(t, approval.StatusApproved, out.Request.Status)
		require.Len(t, out.Request.Votes, 2)
		require.Equal(t, "1h0m0s", out.Request.ApprovalTTL, "a duration in Go's syntax")
		require.NotEmpty(t, out.Request.Action.Payload["to"], "the JSON payload as JSON")
		var types []approval.EventType
		for _, e := range out.Audit {
			require.Equal(t, ids.approved, e.RequestID)
			types = append(types, e.Type)
		}
		require.Contains(t, types, approval.EventRequestCreated)
		require.Contains(t, types, approval.EventDecisionApprove)
		require.Contains(t, types, approval.EventRequestApproved)
	})
	t.Run("show unknown ID", func(t *testing.T) {
		r := cli(t, "show", "-db", path, "req_nosuchrequest")
		requireExit(t, r, exitFailed)
		require.Contains(t, r.stderr, `approval: show: no request "req_nosuchrequest"`)
	})
	t.Run("show usage", func(t *testing.T) {
		requireExit(t, cli(t, "show", "-db", path), exitUsage)
		requireExit(t, cli(t, "show", "-db", path, ids.approved, ids.pending), exitUsage)
	})
}

// goneChannel refuses every notification for good.
type goneChannel struct{}

func (goneChannel) Name() string { return "gone" }

func (goneChannel) Send(context.Context, approval.Notification) error {
	return approval.Permanent(errors.New("410 recipient gone"))
}

func TestOutboxRedrive(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "approval.db")
	seed(t, path, goneChannel{})
	dead := deadLetters(t, path)
	require.NotEmpty(t, dead, "the seeded gate dead-lettered nothing")

	r := cli(t, "outbox", "-db", path, "-dead")
	requireExit(t, r, exitOK)
	for _, id := range dead {
		require.Contains(t, r.stdout, id)
	}
	require.Contains(t, r.stdout, "410 recipient gone")

	t.Run("unknown ID", func(t *testing.T) {
		r := cli(t, "redrive", "-db", path, "-actor", "ops", "ntf_nosuchmessage")
		requireExit(t, r, exitFailed)
		require.Contains(t, r.stderr, "not found")
	})
	t.Run("usage", func(t *testing.T) {
		requireExit(t, cli(t, "redrive", "-db", path), exitUsage)
		r := cli(t, "redrive", "-db", path, "-actor", "   ")
		requireExit(t, r, exitUsage)
	})
	t.Run("one", func(t *testing.T) {
		r := cli(t, "redrive", "-db", path, "-actor", "ops", dead[0])
		requireExit(t, r, exitOK)
		require.Contains(t, r.stdout, "redrove 1 of 1")
		require.NotContains(t, deadLetters(t, path), dead[0])
	})
	t.Run("all", func(t *testing.T) {
		r := cli(t, "redrive", "-db", path, "-actor", "ops")
		requireExit(t, r, exitOK)
		require.Contains(t, r.stdout, "redrove")
		require.Empty(t, deadLetters(t, path))

		r = cli(t, "outbox", "-db", path)
		requireExit(t, r, exitOK)
		for _, id := range dead {
			require.Regexp(t, id+`\s+pending`, r.stdout)
		}
		r = cli(t, "redrive", "-db", path, "-actor", "ops")
		requireExit(t, r, exitOK)
		require.Equal(t, "no dead letters\n", r.stdout)
	})
	t.Run("audited", func(t *testing.T) {
		s, err := sqlstore.Open(t.Context(), path)
		require.NoError(t, err)
		defer s.Close()
		page, err := s.ListAudit(t.Context(), approval.AuditQuery{Actor: "ops", Limit: approval.MaxPageSize})
		require.NoError(t, err)
		require.Len(t, page.Events, len(dead))
		for _, e := range page.Events {
			require.Equal(t, approval.EventNotificationRedriven, e.Type)
		}
		verifyAuditOK(t, path)
	})
}

func TestOutboxEmpty(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "approval.db")
	seed(t, path)
	r := cli(t, "outbox", "-db", path)
	requireExit(t, r, exitOK)
	require.Equal(t, 1, strings.Count(r.stdout, "\n"), "the header alone: %s", r.stdout)
}

// deadLetters returns the IDs of the dead letters in the store at path.
func deadLetters(t *testing.T, path string) []string {
	t.Helper()
	s, err := sqlstore.Open(t.Context(), path)
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	page, err := s.ListOutbox(t.Context(), approval.OutboxQuery{State: approval.OutboxDead, Limit: approval.MaxPageSize})
	require.NoError(t, err)
	ids := []string{}
	for _, m := range page.Messages {
		ids = append(ids, m.ID)
	}
	return ids
}

func TestCancel(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "approval.db")
	s := seed(t, path)

	t.Run("usage", func(t *testing.T) {
		requireExit(t, cli(t, "cancel", "-db", path, "-reason", "x", s.pending), exitUsage)
		requireExit(t, cli(t, "cancel", "-db", path, "-actor", "ops", s.pending), exitUsage)
		requireExit(t, cli(t, "cancel", "-db", path, "-actor", "ops", "-reason", "x"), exitUsage)
		requireExit(t, cli(t, "cancel", "-db", path, "-actor", "   ", "-reason", "x", s.pending), exitUsage)
	})
	t.Run("unknown ID", func(t *testing.T) {
		r := cli(t, "cancel", "-db", path, "-actor", "ops", "-reason", "x", "req_0123456789abcdef0123456789abcdef")
		requireExit(t, r, exitFailed)
		require.Contains(t, r.stderr, "not found")
	})
	t.Run("cancels, audited, with its notices stored for the delivering gate", func(t *testing.T) {
		r := cli(t, "cancel", "-db", path, "-actor", "ops", "-reason", "superseded by INC-42", s.pending)
		requireExit(t, r, exitOK)
		require.Equal(t, "cancelled "+s.pending+" (wire-transfer)\n", r.stdout)

		st, err := sqlstore.Open(t.Context(), path)
		require.NoError(t, err)
		defer st.Close()
		req, err := st.Get(t.Context(), s.pending)
		require.NoError(t, err)
		require.Equal(t, approval.StatusCancelled, req.Status)
		page, err := st.ListAudit(t.Context(), approval.AuditQuery{RequestID: s.pending, Type: approval.EventRequestCancelled})
		require.NoError(t, err)
		require.Len(t, page.Events, 1)
		require.Equal(t, "ops", page.Events[0].Actor)
		require.Equal(t, "superseded by INC-42", page.Events[0].Reason)
		notices, err := st.ListOutbox(t.Context(), approval.OutboxQuery{RequestID: s.pending, State: approval.OutboxPending})
		require.NoError(t, err)
		require.Len(t, notices.Messages, 1, "the resolution's notice waits for a gate that delivers")
		require.Equal(t, approval.NotifyResolved, notices.Messages[0].Type)

		// A gate that delivers from the store sends it.
		sent := make(chan approval.Notification, 16)
		_, priv, err := approval.GenerateKeys()
		require.NoError(t, err)
		g, err := approval.New(approval.Config{Store: st, SigningKey: priv, Directory: finance,
			Channels: []approval.Channel{sendTo(sent)}, Logger: slog.New(slog.DiscardHandler)})
		require.NoError(t, err)
		defer g.Close(context.Background())
		select {
		case n := <-sent:
			require.Equal(t, approval.NotifyResolved, n.Type)
			require.Equal(t, s.pending, n.RequestID)
			require.Equal(t, approval.StatusCancelled, n.Status)
		case <-time.After(20 * time.Second):
			t.Fatal("no gate delivered the cancellation")
		}
		verifyAuditOK(t, path)

		r = cli(t, "cancel", "-db", path, "-actor", "ops", "-reason", "again", s.pending)
		requireExit(t, r, exitFailed)
		require.Contains(t, r.stderr, "not pending")
	})
}

// sendTo is a channel that hands every notification to c.
type sendTo chan approval.Notification

func (sendTo) Name() string { return "record" }

func (c sendTo) Send(_ context.Context, n approval.Notification) error {
	c <- n
	return nil
}
