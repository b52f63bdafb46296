package approval_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	fx "github.com/signoff/approval/internal/fixture"
)

// sentTo returns what rec was sent for recipient.
func sentTo(rec *recorder, recipient string) []approval.Notification {
	var out []approval.Notification
	for _, n := range rec.sent() {
		if n.Recipient == recipient {
			out = append(out, n)
		}
	}
	return out
}

// alicesDigest is a fixture option: alice, and alice alone, has a digest
// window of 15 minutes on every channel.
func alicesDigest(rec *recorder) func(*approval.Config) {
	return func(c *approval.Config) {
		c.Channels = []approval.Channel{rec}
		c.BaseURL = "https://approvals.example.com"
		c.PollInterval = 5 * time.Millisecond
		c.Delivery.DigestWindow = func(channel, recipient string) time.Duration {
			if recipient == "alice" && channel == "recorder" {
				return 15 * time.Minute
			}
			return 0
		}
	}
}

// Fifty requests to alice within one window: nothing until the window
// ends, then one message listing all fifty, each with its own links
// signed for her; the others, without a window, got one message each. A
// request decided meanwhile is listed as decided, without decision links.
// The next window's asks, reminders among them, make the next digest.
func TestDigestGathersOneWindow(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	f := newFixture(t, alicesDigest(rec))
	f.clock.Set(time.Date(2026, 3, 2, 9, 0, 30, 0, time.UTC)) // the window ends at 9:15
	ids := make([]string, 50)
	for i := range ids {
		ids[i] = f.Pending(transfer(float64(1000 + i)))
	}
	require.Eventually(t, func() bool { return len(sentTo(rec, "bob")) == 50 }, 10*time.Second, 5*time.Millisecond,
		"approvers without a window are notified at once, one message each")
	require.Empty(t, sentTo(rec, "alice"), "alice's asks wait for the end of her window")

	_, err := f.Decide(ids[7], "bob", approval.VerdictDeny)
	require.NoError(t, err)
	fx.Settled(t, f.gate)
	f.clock.Set(time.Date(2026, 3, 2, 9, 15, 0, 0, time.UTC))
	require.Eventually(t, func() bool { return len(sentTo(rec, "alice")) > 0 }, 10*time.Second, 5*time.Millisecond)
	got := sentTo(rec, "alice")
	require.Len(t, got, 1, "one message for the window")
	d := got[0]
	require.Equal(t, approval.NotifyDigest, d.Type)
	require.Len(t, d.Digest, 50)
	listed := map[string]bool{}
	for _, n := range d.Digest {
		require.Equal(t, approval.NotifyRequested, n.Type)
		require.Equal(t, "alice", n.Recipient)
		require.Equal(t, "https://approvals.example.com/approvals/"+n.RequestID, n.ReviewURL)
		require.NotEmpty(t, n.ActionHash)
		listed[n.RequestID] = true
		if n.RequestID == ids[7] {
			require.Equal(t, approval.StatusDenied, n.Status, "decided since it was asked")
			require.Empty(t, n.ApproveURL)
			continue
		}
		u, err := url.Parse(n.ApproveURL)
		require.NoError(t, err)
		claims, err := f.gate.VerifyToken(u.Query().Get("token"))
		require.NoError(t, err)
		require.Equal(t, "alice", claims.Subject, "each item's link is signed for her alone")
		require.Equal(t, n.RequestID, claims.RequestID)
	}
	for _, id := range ids {
		require.True(t, listed[id], "request %s is in the digest", id)
	}
	inDigest := 0
	for _, e := range f.events() {
		if e.Type == approval.EventNotificationSent && strings.Contains(e.Reason, "to alice via recorder (in a digest of 50)") {
			inDigest++
			require.Len(t, e.Policies, 1, "each member's event names its own request's policies")
			require.Equal(t, "high_spend", e.Policies[0].Name)
		}
	}
	require.Equal(t, 50, inDigest, "each ask is audited as its own delivery")

	// The next window: new asks and a reminder merge into one digest.
	require.NoError(t, f.gate.SetPolicy("payouts", approval.Policy{
		Match: approval.Name("payout:*"), Approvers: []approval.Approver{approval.User("alice"), approval.User("bob")},
		RequiredApprovals: 1, ReminderInterval: 10 * time.Minute,
	}))
	fx.Settled(t, f.gate)
	f.clock.Set(time.Date(2026, 3, 2, 9, 15, 10, 0, time.UTC))
	a1, a2 := f.Pending(transfer(9001)), f.Pending(approval.Action{Name: "payout:weekly", RequestedBy: "user-1"})
	require.Eventually(t, func() bool {
		asked := map[string]bool{}
		for _, n := range sentTo(rec, "bob") {
			asked[n.RequestID] = true
		}
		return asked[a1] && asked[a2]
	}, 10*time.Second, 5*time.Millisecond)
	fx.Settled(t, f.gate)
	f.clock.Set(time.Date(2026, 3, 2, 9, 25, 10, 0, time.UTC))
	_, err = f.gate.Tick(f.ctx, 0)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		var reminded bool
		for _, n := range sentTo(rec, "bob") {
			reminded = reminded || n.Type == approval.NotifyReminder && n.RequestID == a2
		}
		return reminded
	}, 10*time.Second, 5*time.Millisecond, "bob, without a window, is reminded at once")
	require.Len(t, sentTo(rec, "alice"), 1, "nothing for alice before the window ends")
	fx.Settled(t, f.gate)
	f.clock.Set(time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC))
	require.Eventually(t, func() bool { return len(sentTo(rec, "alice")) == 2 }, 10*time.Second, 5*time.Millisecond)
	next := sentTo(rec, "alice")[1]
	require.Equal(t, approval.NotifyDigest, next.Type)
	var types []approval.NotificationType
	var reqs []string
	for _, n := range next.Digest {
		types = append(types, n.Type)
		reqs = append(reqs, n.RequestID)
	}
	require.ElementsMatch(t, []string{a1, a2, a2}, reqs)
	require.ElementsMatch(t, []approval.NotificationType{approval.NotifyRequested, approval.NotifyRequested, approval.NotifyReminder}, types)
}

// An urgent policy's asks are never held: alice gets them at once, even
// with a window; a single ask due in a window goes as itself.
func TestDigestUrgentAndSingle(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	f := newFixture(t, alicesDigest(rec))
	require.NoError(t, f.gate.SetPolicy("outage", approval.Policy{
		Match: approval.Name("incident:*"), Approvers: []approval.Approver{approval.User("alice")}, RequiredApprovals: 1, Urgent: true,
	}))
	f.clock.Set(time.Date(2026, 3, 2, 9, 0, 30, 0, time.UTC))
	urgent := f.Pending(approval.Action{Name: "incident:failover", RequestedBy: "user-1"})
	require.Eventually(t, func() bool { return len(sentTo(rec, "alice")) == 1 }, 10*time.Second, 5*time.Millisecond)
	n := sentTo(rec, "alice")[0]
	require.Equal(t, approval.NotifyRequested, n.Type)
	require.Equal(t, urgent, n.RequestID)
	require.True(t, n.Urgent)

	one := f.Pending(transfer(5000))
	require.Eventually(t, func() bool { return len(sentTo(rec, "bob")) == 1 }, 10*time.Second, 5*time.Millisecond)
	fx.Settled(t, f.gate)
	f.clock.Set(time.Date(2026, 3, 2, 9, 15, 0, 0, time.UTC))
	require.Eventually(t, func() bool { return len(sentTo(rec, "alice")) == 2 }, 10*time.Second, 5*time.Millisecond)
	n = sentTo(rec, "alice")[1]
	require.Equal(t, approval.NotifyRequested, n.Type, "one ask alone is sent as itself")
	require.Equal(t, one, n.RequestID)
	require.False(t, n.Urgent)
}
