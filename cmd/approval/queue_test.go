package main

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

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
