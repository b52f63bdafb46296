package approval_test

import (
	"context"
	"errors"
	"net/url"
	"sort"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// recorder is a Channel that keeps what it is sent.
type recorder struct {
	mu   sync.Mutex
	got  []approval.Notification
	fail error
	hold chan struct{} // if not nil, Send blocks until it is closed
}

func (r *recorder) Name() string { return "recorder" }

func (r *recorder) Send(ctx context.Context, n approval.Notification) error {
	if r.hold != nil {
		select {
		case <-r.hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, n)
	return r.fail
}

func (r *recorder) sent() []approval.Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]approval.Notification(nil), r.got...)
}

func TestNotifyRequestedPerApproverWithLinks(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	f := newFixture(t, func(c *approval.Config) {
		c.Channels = []approval.Channel{rec}
		c.BaseURL = "https://approvals.example.com/"
	})
	a := transfer(5000)
	a.RequestedBy = "dave" // in finance, so segregated out of the recipients
	id := f.Pending(a)
	require.NoError(t, f.gate.Close(context.Background()))

	got := rec.sent()
	var to []string
	for _, n := range got {
		to = append(to, n.Recipient)
		require.Equal(t, approval.NotifyRequested, n.Type)
		require.Equal(t, id, n.RequestID)
		require.Equal(t, "https://approvals.example.com/approvals/"+id, n.ReviewURL)
		require.NotEmpty(t, n.ActionHash)

		for v, link := range map[approval.Verdict]string{approval.VerdictApprove: n.ApproveURL, approval.VerdictDeny: n.DenyURL} {
			u, err := url.Parse(link)
			require.NoError(t, err)
			require.Equal(t, string(v), u.Query().Get("verdict"))
			claims, err := f.gate.VerifyToken(u.Query().Get("token"))
			require.NoError(t, err)
			require.Equal(t, n.Recipient, claims.Subject, "each link is signed for its recipient alone")
			require.Equal(t, approval.VerdictBoth, claims.Act, "the page either link opens offers both answers")
			require.Equal(t, id, claims.RequestID)
		}
	}
	sort.Strings(to)
	require.Equal(t, []string{"alice", "bob", "carol"}, to)

	// Alice's approve link decides for alice.
	var alice approval.Notification
	for _, n := range got {
		if n.Recipient == "alice" {
			alice = n
		}
	}
	u, _ := url.Parse(alice.ApproveURL)
	r, err := f.gate.Decide(f.ctx, id, approval.Decision{Token: u.Query().Get("token"), Verdict: approval.VerdictApprove})
	require.NoError(t, err)
	require.Equal(t, "alice", r.Votes[0].Approver)

	counts := map[approval.EventType]int{}
	for _, e := range f.events() {
		counts[e.Type]++
	}
	require.Equal(t, 3, counts[approval.EventNotificationSent])
}

func TestNotifyFailureDoesNotFailGuard(t *testing.T) {
	t.Parallel()
	rec := &recorder{fail: errors.New("smtp: 451 try later")}
	f := newFixture(t, func(c *approval.Config) { c.Channels = []approval.Channel{rec} })
	f.Pending(transfer(5000))
	require.NoError(t, f.gate.Close(context.Background()))
	var failed []approval.AuditEvent
	for _, e := range f.events() {
		if e.Type == approval.EventNotificationFailed {
			failed = append(failed, e)
		}
	}
	require.Len(t, failed, 4)
	require.Contains(t, failed[0].Reason, "451 try later")
}

// TestNotifyFailureTextIsStorable has a channel fail with a message that
// is not valid UTF-8 and holds a NUL byte, as a mail server's Latin-1
// reply might: the audited reason must be valid UTF-8 without NUL, so that
// every store keeps the event exactly as it was hashed.
func TestNotifyFailureTextIsStorable(t *testing.T) {
	t.Parallel()
	rec := &recorder{fail: errors.New("smtp: 550 bo\xeete \x00pleine")}
	f := newFixture(t, func(c *approval.Config) { c.Channels = []approval.Channel{rec} })
	f.Pending(transfer(5000))
	require.NoError(t, f.gate.Close(context.Background()))
	failed := 0
	for _, e := range f.events() {
		if e.Type == approval.EventNotificationFailed {
			failed++
			require.True(t, utf8.ValidString(e.Reason), "reason %q", e.Reason)
			require.NotContains(t, e.Reason, "\x00")
			require.Contains(t, e.Reason, "smtp: 550 bo\uFFFDte \uFFFDpleine")
		}
	}
	require.Positive(t, failed)
	_, err := f.gate.VerifyAuditTrail(context.Background(), approval.VerifyAuditOptions{})
	require.NoError(t, err)
}

func TestNotifySlowChannelDoesNotBlockGuard(t *testing.T) {
	t.Parallel()
	rec := &recorder{hold: make(chan struct{})}
	f := newFixture(t, func(c *approval.Config) { c.Channels = []approval.Channel{rec} })
	for i := range 20 {
		f.Pending(transfer(float64(2000 + i)))
	}
	require.Empty(t, rec.sent(), "the channel is still blocked, yet every Guard returned")
	close(rec.hold)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, f.gate.Close(ctx))
	require.Len(t, rec.sent(), 20*4)
}

func TestNotifyResolved(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	f := newFixture(t, func(c *approval.Config) { c.Channels = []approval.Channel{rec} })
	id := f.Pending(transfer(5000))
	_, err := f.Decide(id, "alice", approval.VerdictDeny)
	require.NoError(t, err)
	require.NoError(t, f.gate.Close(context.Background()))
	var to []string
	for _, n := range rec.sent() {
		if n.Type == approval.NotifyResolved {
			to = append(to, n.Recipient)
			require.Equal(t, approval.StatusDenied, n.Status)
			require.Empty(t, n.ApproveURL)
		}
	}
	require.ElementsMatch(t, []string{"user-1", "alice"}, to)
}

func TestNotifyEscalatedLevel(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	f := newFixture(t, func(c *approval.Config) {
		c.Channels = []approval.Channel{rec}
		c.BaseURL = "https://approvals.example.com"
	})
	require.NoError(t, f.gate.SetPolicy("high_spend", approval.Policy{
		Match:             approval.CostAtLeast(1000, "USD"),
		Approvers:         []approval.Approver{approval.User("alice")},
		RequiredApprovals: 1,
		Escalation:        []approval.EscalationStep{{After: time.Hour, Action: approval.StepEscalate, To: []approval.Approver{approval.Group("finance-leads")}}},
	}))
	id := f.Pending(transfer(5000))
	f.clock.Advance(time.Hour)
	_, err := f.gate.Tick(f.ctx, 0)
	require.NoError(t, err)
	require.NoError(t, f.gate.Close(context.Background()))

	var escalated []approval.Notification
	for _, n := range rec.sent() {
		if n.Type == approval.NotifyEscalated {
			escalated = append(escalated, n)
		}
	}
	require.Len(t, escalated, 1)
	require.Equal(t, "erin", escalated[0].Recipient)
	require.Equal(t, id, escalated[0].RequestID)
	require.NotEmpty(t, escalated[0].ApproveURL)
}
