package channels_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// progressNotification is a reminder about a request of two approvals
// that alice has given one of, as the gate makes it.
func progressNotification(t *testing.T) approval.Notification {
	t.Helper()
	gate := newFixtureGate(t, func(c *approval.Config) { c.BaseURL = "https://approvals.example.com" })
	id := guardAction(t, gate, "pair:rotate-keys", "ci")
	r := decideAs(t, gate, id, "alice", approval.VerdictApprove)
	n := gate.NotificationFor(r, approval.NotifyReminder)
	require.Len(t, n.Progress, 1)
	require.Equal(t, "pair", n.Progress[0].Policy)
	require.Equal(t, []string{"alice"}, n.Progress[0].ApprovedBy)
	require.Equal(t, []approval.VoteSummary{{Approver: "alice", Verdict: approval.VerdictApprove, At: r.Votes[0].At}}, n.Votes)
	require.Empty(t, n.ApproveURL, "no one's token")
	require.Equal(t, "https://approvals.example.com/approvals/"+id, n.ReviewURL)
	require.Equal(t, r.ActionHash, n.ActionHash)
	return n
}

// Each chat channel shows who has voted and where the policy stands.
func TestChannelsShowProgress(t *testing.T) {
	t.Parallel()
	n := progressNotification(t)

	slack := postSlack(t, n, true).allMrkdwn()
	require.Contains(t, slack, "Approved by alice\n*Progress*\n• pair: 1 of 2 approvals (alice)")

	body := postTeams(t, n)
	lines := decodeTeams(t, body).lines()
	require.Contains(t, lines, "Progress")
	require.Contains(t, lines, "Approved by alice")
	require.Contains(t, lines, "• pair: 1 of 2 approvals (alice)")
	rep := validateCard(t, body)
	var texts []string
	for _, e := range rep.Elements {
		texts = append(texts, e.Text)
	}
	require.Contains(t, strings.Join(texts, "\n"), "pair: 1 of 2 approvals (alice)", "the library read the progress")

	d := postDiscord(t, n)
	votes, ok := d.field("Votes")
	require.True(t, ok)
	require.Equal(t, "Approved by alice", votes)
	progress, ok := d.field("Progress")
	require.True(t, ok)
	require.Equal(t, `pair\: 1 of 2 approvals \(alice\)`, progress)
}

// The gate's notifications carry the progress: a new request's says no
// approval is counted yet.
func TestNotificationsFromGateCarryProgress(t *testing.T) {
	t.Parallel()
	srv, got := slackServer(t, http.StatusOK, "ok")
	gate := newFixtureGate(t, func(c *approval.Config) { c.Channels = []approval.Channel{newSlack(t, srv, true)} })
	guardDeploy(t, gate)
	require.NoError(t, gate.Close(context.Background()))
	bodies := got()
	require.Len(t, bodies, 2)
	for _, b := range bodies {
		require.Contains(t, decodeBlockKit(t, b).allMrkdwn(), "*Progress*\n• deploys: 0 of 1 approvals")
	}
}
