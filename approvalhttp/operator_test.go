package approvalhttp_test

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/approvalhttp"
	"github.com/signoff/approval/memstore"
)

// operatorID is the operator of the operator fixture; alice and the
// others are reviewers who are not.
const operatorID = "olivia"

// pagerError is the pager's refusal: long, and with markup, to be cut
// and escaped on the page.
var pagerError = "receiver answered 410 Gone: <b>integration key revoked</b> for service PXYZ123; " +
	strings.Repeat("rotate the key in the pager's console and update the channel's secret. ", 3)

// brokenChannel fails every notification about the restart-db action:
// the pager for good (a dead letter at the first attempt), the chat for
// now (retried hours later). Notifications about other actions go
// through. With hold set, a send about restart-db blocks until release
// closes (a redriven message stays pending, claimed).
type brokenChannel struct {
	name      string
	permanent bool

	mu      sync.Mutex
	hold    bool
	release chan struct{}
}

func (c *brokenChannel) Name() string { return c.name }

func (c *brokenChannel) Send(ctx context.Context, n approval.Notification) error {
	if n.Action.Name != "restart-db" {
		return nil
	}
	c.mu.Lock()
	hold := c.hold
	c.mu.Unlock()
	if hold {
		select {
		case <-c.release:
		case <-ctx.Done():
		}
		return errors.New("released")
	}
	if c.permanent {
		return approval.Permanent(errors.New(pagerError))
	}
	return errors.New("chat API answered 503 Service Unavailable")
}

func (c *brokenChannel) holdSends() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hold = true
}

// opsWorld is what the operator fixture seeded, with "now" the clock's
// time when it returns.
type opsWorld struct {
	pager, chat *brokenChannel
	store       *memstore.Store
	restart     string // the open restart-db request whose notifications fail
	dead        []approval.OutboxMessage
}

// newOpsFixture is a gate with two channels, pager and chat, and three
// policies with a history, seeded by the clock (now is 8 days after it
// started):
//
//   - deploy (one of sre): resolved 4 days ago in 1h (approved) and 3h
//     (denied); in the last 24 hours in 10m and 20m (approved) and 40m
//     (cancelled). Day: 3, p50 20m, p90 40m; week: 5, p50 40m, p90 3h.
//   - high_spend: one timed out after its 24h, 2 days ago; open: two,
//     the oldest created 3h 12m ago.
//   - restart_db (one of sre): one open request, 5m old, whose
//     notifications the pager dead-letters (2: sam and olga) and the chat
//     retries (2 pending, retrying).
//
// olivia is the operator; the reviewers are named by X-Test-User or the
// test-user cookie.
func newOpsFixture(t *testing.T) (*fixture, *opsWorld) {
	t.Helper()
	w := &opsWorld{pager: &brokenChannel{name: "pager", permanent: true, release: make(chan struct{})},
		chat: &brokenChannel{name: "chat", release: make(chan struct{})}}
	f := newFixture(t, fixtureOpt{
		cfg: func(c *approval.Config) {
			c.Directory = approval.StaticDirectory{Groups: map[string][]string{
				"finance": {"alice", "bob", "carol"}, "sre": {"sam", "olga"}}}
			// Keep the resolved requests: deliveries run behind the
			// test's clock, which jumps days ahead.
			w.store = memstore.New(memstore.WithRetention(-1))
			c.Store = w.store
			c.Channels = []approval.Channel{w.pager, w.chat}
			c.BaseURL = "https://approvals.example.com"
			c.PollInterval = 5 * time.Millisecond
			c.Delivery.ChannelRetry = map[string]approval.RetryPolicy{
				"chat": {MaxAttempts: 5, InitialInterval: 6 * time.Hour, MaxInterval: 6 * time.Hour}}
		},
		opts: func(o *approvalhttp.Options) {
			o.Identity = func(r *http.Request) (string, error) {
				if c, err := r.Cookie("test-user"); err == nil {
					return c.Value, nil
				}
				return r.Header.Get(userHeader), nil
			}
			o.Operator = func(_ *http.Request, who string) bool { return who == operatorID }
		},
	})
	t.Cleanup(func() { close(w.pager.release); close(w.chat.release) })
	sre := []approval.Approver{approval.Group("sre")}
	require.NoError(t, f.gate.SetPolicy("deploy", approval.Policy{Match: approval.Name("deploy"), Approvers: sre, RequiredApprovals: 1, Timeout: 48 * time.Hour}))
	require.NoError(t, f.gate.SetPolicy("restart_db", approval.Policy{Match: approval.Name("restart-db"), Approvers: sre, RequiredApprovals: 1, Timeout: 48 * time.Hour}))

	t0 := f.clock.Now()
	now := t0.Add(8 * 24 * time.Hour)
	at := func(d time.Duration) { f.clock.Set(now.Add(-d)) }
	deploys := 0
	deploy := func() string {
		deploys++
		return f.pending(approval.Action{Name: "deploy", RequestedBy: "dev", Message: "roll out api", Payload: fmt.Appendf(nil, `{"version":"2.%d"}`, deploys)})
	}
	decide := func(id, who string, v approval.Verdict) {
		_, err := f.gate.Decide(f.ctx, id, approval.Decision{Token: f.token(id, who, v), Verdict: v})
		require.NoError(t, err)
	}

	at(4 * 24 * time.Hour)
	a := deploy()
	f.clock.Advance(time.Hour)
	decide(a, "sam", approval.VerdictApprove)
	b := deploy()
	f.clock.Advance(3 * time.Hour)
	decide(b, "olga", approval.VerdictDeny)

	at(3*24*time.Hour + time.Hour)
	late := f.pending(transfer(2500))
	at(2*24*time.Hour + time.Hour)
	_, err := f.gate.Tick(f.ctx, 0)
	require.NoError(t, err)
	require.Equal(t, approval.StatusTimedOut, f.request(late).Status)

	at(20 * time.Hour)
	c := deploy()
	f.clock.Advance(10 * time.Minute)
	decide(c, "sam", approval.VerdictApprove)
	at(18 * time.Hour)
	d := deploy()
	f.clock.Advance(20 * time.Minute)
	decide(d, "olga", approval.VerdictApprove)
	at(16 * time.Hour)
	e := deploy()
	f.clock.Advance(40 * time.Minute)
	_, err = f.gate.Cancel(f.ctx, e, "dev", "wrong branch")
	require.NoError(t, err)

	at(6 * time.Hour)
	_, err = f.gate.Checkpoint(f.ctx)
	require.NoError(t, err)
	at(3*time.Hour + 12*time.Minute)
	f.pending(transfer(5000))
	at(time.Hour)
	f.pending(transfer(7000))
	at(5 * time.Minute)
	w.restart = f.pending(approval.Action{Name: "restart-db", RequestedBy: "dev", Message: "primary is wedged"})
	settled(t, f)
	f.clock.Set(now)
	dead, err := f.gate.ListOutbox(f.ctx, approval.OutboxQuery{State: approval.OutboxDead})
	require.NoError(t, err)
	w.dead = dead.Messages
	return f, w
}

// settled waits until the deliveries, which run on their own goroutines,
// are done with all but what fails: the outbox holds the pager's two dead
// letters and the chat's two messages waiting for their retry, and no
// notice waits to be expanded.
func settled(t *testing.T, f *fixture) {
	t.Helper()
	require.Eventually(t, func() bool {
		all, err := f.gate.ListOutbox(f.ctx, approval.OutboxQuery{Limit: approval.MaxPageSize})
		require.NoError(t, err)
		var dead, retrying int
		for _, m := range all.Messages {
			switch {
			case m.State == approval.OutboxDead && m.Channel == "pager":
				dead++
			case m.State == approval.OutboxPending && m.Channel == "chat" && m.Attempts == 1 && m.LeaseOwner == "":
				retrying++
			}
		}
		return len(all.Messages) == 4 && dead == 2 && retrying == 2
	}, 10*time.Second, 2*time.Millisecond, "the pager's dead letters and the chat's retries, and nothing else")
}

// cell returns the text of the first element of class class inside the
// row of table #table whose attribute attr is val, tags stripped and
// spaces joined.
func cell(t *testing.T, page, table, attr, val, class string) string {
	t.Helper()
	tbl := regexp.MustCompile(`(?s)<table id="` + table + `".*?</table>`).FindString(page)
	require.NotEmpty(t, tbl, "no table #%s", table)
	row := regexp.MustCompile(`(?s)<tr [^>]*` + attr + `="` + regexp.QuoteMeta(val) + `"[^>]*>.*?</tr>`).FindString(tbl)
	require.NotEmpty(t, row, "no row %s=%q", attr, val)
	var m []string
	for _, tag := range []string{"td", "span"} {
		if m = regexp.MustCompile(`(?s)<` + tag + `[^>]* class="(?:[^"]* )?` + regexp.QuoteMeta(class) + `(?: [^"]*)?"[^>]*>(.*?)</` + tag + `>`).FindStringSubmatch(row); m != nil {
			break
		}
	}
	require.NotNil(t, m, "no .%s in row %s=%q", class, attr, val)
	return strings.Join(strings.Fields(html.UnescapeString(regexp.MustCompile(`<[^>]+>`).ReplaceAllString(m[1], " "))), " ")
}

func (f *fixture) auditEvents(typ approval.EventType) []approval.AuditEvent {
	f.t.Helper()
	var out []approval.AuditEvent
	q := approval.AuditQuery{Type: typ, Limit: approval.MaxPageSize}
	for {
		page, err := f.gate.ListAudit(f.ctx, q)
		require.NoError(f.t, err)
		out = append(out, page.Events...)
		if page.Next == "" {
			return out
		}
		q.Cursor = page.Next
	}
}

// TestOperatorPageShowsStats: the operator page shows the seeded numbers
// where an operator reads them: what waits and since when, the time to
// decision by policy, per day as a chart, the channels' health and their
// dead letters, the audit trail's head and checkpoint.
func TestOperatorPageShowsStats(t *testing.T) {
	t.Parallel()
	f, w := newOpsFixture(t)
	page := f.get("/operator", operatorID).html(t, http.StatusOK)

	// 1. Pending by policy, in policy order, with the queue filtered.
	require.Equal(t, "2", cell(t, page, "open", "data-policy", "high_spend", "count"))
	require.Equal(t, "3h 12m", cell(t, page, "open", "data-policy", "high_spend", "age"))
	require.Equal(t, "1", cell(t, page, "open", "data-policy", "restart_db", "count"))
	require.Equal(t, "5m", cell(t, page, "open", "data-policy", "restart_db", "age"))
	require.Less(t, strings.Index(page, `<tr data-policy="high_spend"><td><a`), strings.Index(page, `<tr data-policy="restart_db"><td><a`))
	require.Contains(t, page, `<a href="./approvals?policy=high_spend&amp;status=open">high_spend</a>`)
	q := f.get("/approvals?policy=high_spend&status=open", operatorID).html(t, http.StatusOK)
	require.Len(t, queueRows(q), 2, "the link lists the policy's open requests")
	oldest := f.clock.Now().Add(-3*time.Hour - 12*time.Minute).UTC().Format("2006-01-02 15:04:05 UTC")
	require.Contains(t, page, oldest)

	// 2. Time to decision.
	require.Equal(t, "3", cell(t, page, "decision-times", "data-policy", "deploy", "day-count"))
	require.Equal(t, "20m", cell(t, page, "decision-times", "data-policy", "deploy", "day-p50"))
	require.Equal(t, "40m", cell(t, page, "decision-times", "data-policy", "deploy", "day-p90"))
	require.Equal(t, "5", cell(t, page, "decision-times", "data-policy", "deploy", "week-count"))
	require.Equal(t, "40m", cell(t, page, "decision-times", "data-policy", "deploy", "week-p50"))
	require.Equal(t, "3h", cell(t, page, "decision-times", "data-policy", "deploy", "week-p90"))
	require.Equal(t, "3 approved 1 denied 1 cancelled", cell(t, page, "decision-times", "data-policy", "deploy", "outcomes"))
	require.Equal(t, "0", cell(t, page, "decision-times", "data-policy", "high_spend", "day-count"))
	require.Equal(t, "–", cell(t, page, "decision-times", "data-policy", "high_spend", "day-p50"))
	require.Equal(t, "1d", cell(t, page, "decision-times", "data-policy", "high_spend", "week-p50"))
	require.Equal(t, "1 timed out", cell(t, page, "decision-times", "data-policy", "high_spend", "outcomes"))
	// The chart: one group per day, oldest first, the numbers in words
	// for a screen reader, the bars to scale (3h is the tallest p90).
	row := regexp.MustCompile(`(?s)<tr data-policy="deploy">.*?</tr>`).FindString(page)
	require.Contains(t, row, `aria-label="Time to decision of deploy per day, oldest first: 6 to 7 days ago: no decisions; `)
	require.Contains(t, row, `3 to 4 days ago: 2 decisions, p50 1h, p90 3h;`)
	require.Contains(t, row, `Last 24 hours: 3 decisions, p50 20m, p90 40m.`)
	require.Equal(t, 7, strings.Count(row, `<g class="day`))
	require.Contains(t, row, `<rect class="p90" x="94" y="14" width="22" height="56"></rect><rect class="p50" x="99" y="51" width="12" height="19"></rect>`,
		"day 3: p90 3h, the full height; p50 1h, a third of it")
	require.Contains(t, row, `<rect class="p90" x="184" y="58" width="22" height="12"></rect><rect class="p50" x="189" y="64" width="12" height="6"></rect>`,
		"the last day: p90 40m and p50 20m on the 3h scale")
	require.NotContains(t, row, "style=", "no inline style")

	// 3. Channels and dead letters.
	require.Equal(t, "2", cell(t, page, "channel-health", "data-channel", "pager", "dead"))
	require.Equal(t, "0", cell(t, page, "channel-health", "data-channel", "pager", "pending"))
	require.Equal(t, "2", cell(t, page, "channel-health", "data-channel", "chat", "pending"))
	require.Equal(t, "2", cell(t, page, "channel-health", "data-channel", "chat", "retrying"))
	require.Equal(t, "5m", cell(t, page, "channel-health", "data-channel", "chat", "lag"))
	require.Equal(t, "0", cell(t, page, "channel-health", "data-channel", "chat", "dead"))
	require.Contains(t, cell(t, page, "channel-health", "data-channel", "chat", "last-error"), "chat API answered 503 Service Unavailable")
	require.NotContains(t, page, "<b>integration key revoked</b>", "an error is text")
	require.Contains(t, page, "&lt;b&gt;integration key revoked&lt;/b&gt;")
	require.Contains(t, page, `<summary title="`+html.EscapeString(pagerError)+`">`, "the whole error a hover away")
	require.Len(t, w.dead, 2)
	for _, m := range w.dead {
		require.Contains(t, page, `<tr id="dead-`+m.ID+`" data-channel="pager">`)
		require.Contains(t, page, `<a href="./approvals/`+w.restart+`"><code class="id">`+w.restart+`</code></a>`)
		require.Contains(t, page, `<input type="hidden" name="id" value="`+m.ID+`"><button type="submit" id="redrive-`+m.ID+`">Redrive</button>`)
	}
	require.Contains(t, page, `<form method="post" action="./operator/redrive" class="inline">`)

	// 4. The audit trail: the head, the checkpoint 6h ago, no verification yet.
	st, err := f.gate.Stats(f.ctx)
	require.NoError(t, err)
	require.Positive(t, st.Head.Seq)
	require.Contains(t, page, fmt.Sprintf(`seq <strong id="head-seq">%d</strong> <details class="hash-d"><summary><code title="%s">%s…</code></summary><code class="hash">%s</code></details>`,
		st.Head.Seq, st.Head.Hash, st.Head.Hash[:12], st.Head.Hash))
	require.Contains(t, page, fmt.Sprintf("seq %d ", st.LastCheckpoint.Seq))
	require.Contains(t, page, "(6h ago)")
	require.Contains(t, page, "not verified since this process started")

	// The JSON API has the same numbers, for the operator only.
	var js struct {
		Open []struct {
			Policy string
			Count  int
		}
		Decisions []struct {
			Policy string
			Day    struct {
				Count    int
				P50, P90 string
			}
			Daily []struct{ Count int }
		}
		Channels []struct {
			Channel       string
			Pending, Dead int
			Retrying      int
			LastError     string `json:"last_error"`
		}
		Head struct{ Seq int64 }
	}
	f.get("/api/stats", operatorID).json(t, &js)
	require.Equal(t, "high_spend", js.Open[0].Policy)
	require.Equal(t, 2, js.Open[0].Count)
	require.Equal(t, "deploy", js.Decisions[0].Policy)
	require.Equal(t, "20m0s", js.Decisions[0].Day.P50)
	require.Equal(t, "40m0s", js.Decisions[0].Day.P90)
	require.Len(t, js.Decisions[0].Daily, 7)
	require.Equal(t, 2, js.Decisions[0].Daily[3].Count)
	require.Equal(t, "chat", js.Channels[0].Channel)
	require.Equal(t, 2, js.Channels[0].Retrying)
	require.Equal(t, 2, js.Channels[1].Dead)
	require.Equal(t, pagerError, js.Channels[1].LastError)
	require.Equal(t, st.Head.Seq, js.Head.Seq)
}

// TestOperatorPageForOperatorsOnly: a reviewer who is not an operator, or
// nobody signed in, gets neither the page, nor the API, nor the forms,
// and the forms change nothing.
func TestOperatorPageForOperatorsOnly(t *testing.T) {
	t.Parallel()
	f, w := newOpsFixture(t)
	require.Equal(t, "forbidden", attr(f.get("/operator", "alice").html(t, http.StatusForbidden), "message", "data-code"))
	require.Equal(t, "unauthenticated", attr(f.get("/operator", "").html(t, http.StatusUnauthorized), "message", "data-code"))
	f.get("/api/stats", "alice").problem(t, http.StatusForbidden, "forbidden")
	f.get("/api/stats", "").problem(t, http.StatusUnauthorized, "unauthenticated")

	before := len(f.auditEvents(""))
	r := f.postForm("/operator/redrive", "alice", url.Values{"id": {w.dead[0].ID}})
	require.Equal(t, "forbidden", attr(r.html(t, http.StatusForbidden), "message", "data-code"))
	r = f.postForm("/operator/verify", "alice", nil)
	require.Equal(t, "forbidden", attr(r.html(t, http.StatusForbidden), "message", "data-code"))
	dead, err := f.gate.ListOutbox(f.ctx, approval.OutboxQuery{State: approval.OutboxDead})
	require.NoError(t, err)
	require.Len(t, dead.Messages, 2, "nothing redriven")
	require.Len(t, f.auditEvents(""), before, "nothing audited")
	st, err := f.gate.Stats(f.ctx)
	require.NoError(t, err)
	require.Zero(t, st.Verified, "nothing verified")

	// Without Options.Operator nobody is an operator.
	g := newFixture(t)
	require.Equal(t, "forbidden", attr(g.get("/operator", "alice").html(t, http.StatusForbidden), "message", "data-code"))
	// A panicking Operator names nobody.
	p := newFixture(t, fixtureOpt{opts: func(o *approvalhttp.Options) {
		o.Operator = func(*http.Request, string) bool { panic("directory down") }
	}})
	require.Equal(t, "forbidden", attr(p.get("/operator", operatorID).html(t, http.StatusForbidden), "message", "data-code"))
	// Operator needs Identity.
	_, err = approvalhttp.New(f.gate, approvalhttp.Options{Operator: func(*http.Request, string) bool { return true }})
	require.ErrorContains(t, err, "Options.Operator needs Options.Identity")
}

// TestOperatorRedrive: the operator's Redrive makes the dead letter
// pending again, audited with the operator as actor, and the page says
// so; an ID that is no dead letter changes nothing and the page says
// that; a cross-origin POST is refused.
func TestOperatorRedrive(t *testing.T) {
	t.Parallel()
	f, w := newOpsFixture(t)
	w.pager.holdSends() // the redriven message stays pending, claimed
	id := w.dead[0].ID

	// Cross-origin: refused, nothing changed.
	for name, hd := range map[string]http.Header{
		"Sec-Fetch-Site cross-site": {"Sec-Fetch-Site": {"cross-site"}},
		"Origin elsewhere":          {"Origin": {"https://evil.example"}},
	} {
		for _, path := range []string{"/operator/redrive", "/operator/verify"} {
			r := f.do(req{method: http.MethodPost, path: path, user: operatorID, body: url.Values{"id": {id}}.Encode(),
				ctype: "application/x-www-form-urlencoded", header: hd})
			require.Equal(t, "cross_origin", attr(r.html(t, http.StatusForbidden), "message", "data-code"), "%s %s", name, path)
		}
	}
	require.Empty(t, f.auditEvents(approval.EventNotificationRedriven))
	st, err := f.gate.Stats(f.ctx)
	require.NoError(t, err)
	require.Zero(t, st.Verified, "nothing verified")

	r := f.postForm("/operator/redrive", operatorID, url.Values{"id": {id}})
	require.Equal(t, http.StatusSeeOther, r.StatusCode, r.text())
	loc := r.Header.Get("Location")
	require.Equal(t, "../operator?id="+id+"&redriven=1#dead-letters", loc)
	evs := f.auditEvents(approval.EventNotificationRedriven)
	require.Len(t, evs, 1)
	require.Equal(t, operatorID, evs[0].Actor)
	require.Equal(t, w.restart, evs[0].RequestID)
	require.Contains(t, evs[0].Reason, id)
	pending, err := f.gate.ListOutbox(f.ctx, approval.OutboxQuery{State: approval.OutboxPending, Channel: "pager"})
	require.NoError(t, err)
	require.Len(t, pending.Messages, 1)
	require.Equal(t, id, pending.Messages[0].ID)

	page := f.get("/operator?id="+id+"&redriven=1", operatorID).html(t, http.StatusOK)
	require.Equal(t, "false", attr(page, "flash", "data-error"))
	require.Contains(t, page, "Message "+id+" was redriven: it is pending again")
	require.Equal(t, "1", cell(t, page, "channel-health", "data-channel", "pager", "dead"))
	require.Equal(t, "1", cell(t, page, "channel-health", "data-channel", "pager", "pending"))
	require.NotContains(t, page, `id="dead-`+id+`"`)

	// Again: no longer a dead letter. So for an ID that never was.
	for _, bad := range []string{id, "0190b6c1-0000-7000-8000-000000000000"} {
		r = f.postForm("/operator/redrive", operatorID, url.Values{"id": {bad}})
		require.Equal(t, http.StatusSeeOther, r.StatusCode, r.text())
		require.Equal(t, "../operator?id="+bad+"&redrive=not_found#dead-letters", r.Header.Get("Location"))
		page = f.get("/operator?id="+bad+"&redrive=not_found", operatorID).html(t, http.StatusOK)
		require.Equal(t, "true", attr(page, "flash", "data-error"))
		require.Contains(t, page, "Nothing was redriven: message "+bad+" is not a dead letter")
	}
	require.Len(t, f.auditEvents(approval.EventNotificationRedriven), 1, "nothing more audited")
	dead, err := f.gate.ListOutbox(f.ctx, approval.OutboxQuery{State: approval.OutboxDead})
	require.NoError(t, err)
	require.Len(t, dead.Messages, 1)

	// Without an ID: malformed. A crafted link puts no words on the page.
	r = f.postForm("/operator/redrive", operatorID, url.Values{})
	require.Equal(t, "malformed_request", attr(r.html(t, http.StatusBadRequest), "message", "data-code"))
	page = f.get("/operator?"+url.Values{"id": {"<script>call 555-0100</script>"}, "redriven": {"1"}}.Encode(), operatorID).html(t, http.StatusOK)
	require.NotContains(t, page, `id="flash"`)
	require.NotContains(t, page, "555-0100")
}

// TestOperatorVerify: Verify now verifies the whole trail, then only
// what was appended since, and the page shows the verified head; a trail
// that no longer verifies shows why.
func TestOperatorVerify(t *testing.T) {
	t.Parallel()
	f, w := newOpsFixture(t)
	st, err := f.gate.Stats(f.ctx)
	require.NoError(t, err)

	r := f.postForm("/operator/verify", operatorID, nil)
	require.Equal(t, http.StatusSeeOther, r.StatusCode, r.text())
	loc := r.Header.Get("Location")
	require.Equal(t, fmt.Sprintf("../operator?seq=%d&verified=%d#audit", st.Head.Seq, st.Head.Seq), loc, "the whole trail, from seq 1")
	page := f.get("/operator?"+strings.TrimSuffix(strings.TrimPrefix(loc, "../operator?"), "#audit"), operatorID).html(t, http.StatusOK)
	require.Contains(t, page, fmt.Sprintf("The audit trail verified: %d events, the whole trail to seq %d.", st.Head.Seq, st.Head.Seq))
	require.Equal(t, fmt.Sprint(st.Head.Seq), attr(page, "verified", "data-seq"))
	require.Contains(t, page, `<code title="`+st.Head.Hash+`">`)
	require.NotContains(t, page, "not verified since this process started")
	require.NotContains(t, page, `id="behind"`)

	// Two events later, the next run starts at the verified head.
	f.pending(transfer(3000))
	f.pending(transfer(4000))
	settled(t, f)
	now, err := f.gate.Stats(f.ctx)
	require.NoError(t, err)
	require.Greater(t, now.Head.Seq, st.Head.Seq)
	page = f.get("/operator", operatorID).html(t, http.StatusOK)
	require.Contains(t, page, fmt.Sprintf(`<span class="warn" id="behind">%d newer events not verified yet</span>`, now.Head.Seq-st.Head.Seq))
	require.Contains(t, page, fmt.Sprintf("from seq %d, the head last verified", st.Head.Seq))
	r = f.postForm("/operator/verify", operatorID, nil)
	require.Equal(t, fmt.Sprintf("../operator?from=%d&seq=%d&verified=%d#audit", st.Head.Seq, now.Head.Seq, now.Head.Seq-st.Head.Seq+1),
		r.Header.Get("Location"), "from the verified head, itself included")
	after, err := f.gate.Stats(f.ctx)
	require.NoError(t, err)
	require.Equal(t, now.Head, after.Verified.Head)

	// A request row forged since, without its events: the run fails,
	// the page says why, and the verified head stays.
	f.clock.Advance(time.Minute)
	forged := f.request(w.restart).Clone()
	forged.ID, forged.ActionHash = "req_"+strings.Repeat("f", 32), strings.Repeat("ab", 32)
	forged.Status, forged.CreatedAt = approval.StatusApproved, f.clock.Now()
	_, created, err := w.store.Create(f.ctx, forged, nil)
	require.NoError(t, err)
	require.True(t, created)
	r = f.postForm("/operator/verify", operatorID, nil)
	require.Equal(t, "../operator?verify=failed#audit", r.Header.Get("Location"))
	page = f.get("/operator?verify=failed", operatorID).html(t, http.StatusOK)
	require.Equal(t, "true", attr(page, "flash", "data-error"))
	want := "request " + forged.ID + " is approved but the audit trail has no request.created event for it"
	require.Contains(t, page, "The audit trail did not verify: approval: "+want)
	require.Contains(t, page, "(by "+operatorID+"): approval: "+want)
	failed, err := f.gate.Stats(f.ctx)
	require.NoError(t, err)
	require.Equal(t, now.Head, failed.Verified.Head, "a failed run verifies nothing")
}

// bareStore is a Store with none of the optional capabilities (no
// OperatorStats, no Outbox, no AuditTail, no AuditStream), whose reads
// fail on demand.
type bareStore struct {
	approval.Store
	mu                  sync.Mutex
	failList, failTrail bool
}

func (s *bareStore) set(list, trail bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failList, s.failTrail = list, trail
}

func (s *bareStore) List(ctx context.Context, q approval.RequestQuery) (approval.RequestPage, error) {
	s.mu.Lock()
	fail := s.failList
	s.mu.Unlock()
	if fail {
		return approval.RequestPage{}, errors.New("dial tcp 10.0.0.7:5432: connection refused")
	}
	return s.Store.List(ctx, q)
}

// ListAudit fails, when failTrail is set, for a read of the whole trail
// (a verification's), not for Stats' reads of one event type.
func (s *bareStore) ListAudit(ctx context.Context, q approval.AuditQuery) (approval.AuditPage, error) {
	s.mu.Lock()
	fail := s.failTrail && q.Type == "" && q.RequestID == ""
	s.mu.Unlock()
	if fail {
		return approval.AuditPage{}, errors.New("dial tcp 10.0.0.7:5432: connection refused")
	}
	return s.Store.ListAudit(ctx, q)
}

// TestOperatorPageStoreFailures: on a store without the optional
// capabilities the page still shows what Stats finds, and says there is
// no outbox; a store that fails is a 500 without its words, and a
// verification it breaks says the cause was logged.
func TestOperatorPageStoreFailures(t *testing.T) {
	t.Parallel()
	store := &bareStore{Store: memstore.New()}
	f := newFixture(t, fixtureOpt{
		cfg: func(c *approval.Config) { c.Store = store },
		opts: func(o *approvalhttp.Options) {
			o.Operator = func(_ *http.Request, who string) bool { return who == operatorID }
		},
	})
	f.pending(transfer(5000))
	_, err := f.gate.Stats(f.ctx)
	require.NoError(t, err)
	page := f.get("/operator", operatorID).html(t, http.StatusOK)
	require.Equal(t, "1", cell(t, page, "open", "data-policy", "high_spend", "count"))
	require.Contains(t, page, "This gate has no outbox: nothing is dead-lettered.")
	require.Contains(t, page, `<span id="head-seq" class="sub">empty trail</span>`, "without AuditTail, Stats has no head")

	store.set(true, false)
	for _, path := range []string{"/operator", "/operator?redriven=1"} {
		page = f.get(path, operatorID).html(t, http.StatusInternalServerError)
		require.Equal(t, "internal", attr(page, "message", "data-code"))
		require.NotContains(t, page, "10.0.0.7")
	}
	require.NotContains(t, f.get("/api/stats", operatorID).problem(t, http.StatusInternalServerError, "internal").Detail, "10.0.0.7")
	r := f.postForm("/operator/verify", operatorID, nil)
	require.Equal(t, "internal", attr(r.html(t, http.StatusInternalServerError), "message", "data-code"), "no Stats, no verification")

	store.set(false, true)
	r = f.postForm("/operator/verify", operatorID, nil)
	require.Equal(t, "../operator?verify=failed#audit", r.Header.Get("Location"))
	page = f.get("/operator?verify=failed", operatorID).html(t, http.StatusOK)
	require.Contains(t, page, "The audit trail did not verify: the verification could not run; the server logged the cause.")
	require.NotContains(t, page, "10.0.0.7")
	r = f.postForm("/operator/redrive", operatorID, url.Values{"id": {"0190b6c1-0000-7000-8000-000000000000"}})
	require.Equal(t, "unsupported", attr(r.html(t, http.StatusNotImplemented), "message", "data-code"), "no outbox to redrive from")
}
