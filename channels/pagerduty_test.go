package channels_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/channels"
	"github.com/signoff/approval/internal/fixture"
	"github.com/signoff/approval/internal/testkit"
	"github.com/signoff/approval/memstore"
	"github.com/signoff/approval/oncall"
)

const pdKey = "e93facc04764012d7bfb002500d5d1a6" // the documented example's routing_key

// checkPagerDutyEvent checks body against the Events API v2 request
// schema: the "Send an Alert Event" page
// (https://developer.pagerduty.com/docs/events-api-v2/trigger-events/) and
// the OpenAPI document of the Events API v2 (github.com/PagerDuty/api-schema,
// reference/events-v2/openapiv3.json). Required: routing_key (the 32
// character Integration Key), event_action (trigger, acknowledge or
// resolve); dedup_key at most 255 characters, required for a resolve; for
// a trigger, payload with summary (at most 1024 characters), source and
// severity (critical, error, warning or info), an optional ISO 8601
// timestamp, component, group, class and custom_details (an object);
// links of {href, text}; images of {src, href, alt}; client and
// client_url. No other field. The body is at most 512 KB ("Events API
// payloads are limited to 512 KB", the Events API v2 overview).
func checkPagerDutyEvent(t *testing.T, body []byte) map[string]any {
	t.Helper()
	require.LessOrEqual(t, len(body), 512<<10)
	var ev map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	require.NoError(t, dec.Decode(&ev), "%s", body)
	only := func(obj map[string]any, what string, keys ...string) {
		for k := range obj {
			require.Contains(t, keys, k, "%s has a field the schema does not define: %s", what, body)
		}
	}
	str := func(obj map[string]any, k string) (string, bool) {
		v, ok := obj[k]
		if !ok {
			return "", false
		}
		s, isStr := v.(string)
		require.True(t, isStr, "%s is not a string: %s", k, body)
		return s, true
	}
	only(ev, "the event", "routing_key", "event_action", "dedup_key", "payload", "client", "client_url", "links", "images")
	key, ok := str(ev, "routing_key")
	require.True(t, ok, "routing_key is required")
	require.Len(t, key, 32)
	action, ok := str(ev, "event_action")
	require.True(t, ok, "event_action is required")
	require.Contains(t, []string{"trigger", "acknowledge", "resolve"}, action)
	dedup, ok := str(ev, "dedup_key")
	if action != "trigger" {
		require.True(t, ok, "dedup_key is required for %s", action)
	}
	require.LessOrEqual(t, utf8.RuneCountInString(dedup), 255)
	if u, ok := str(ev, "client_url"); ok {
		_, err := url.ParseRequestURI(u)
		require.NoError(t, err)
	}
	_, _ = str(ev, "client")
	if links, ok := ev["links"]; ok {
		for _, l := range links.([]any) {
			link := l.(map[string]any)
			only(link, "a link", "href", "text")
			href, ok := str(link, "href")
			require.True(t, ok, "a link's href is required")
			_, err := url.ParseRequestURI(href)
			require.NoError(t, err)
			_, _ = str(link, "text")
		}
	}
	require.NotContains(t, ev, "images") // this channel sends none
	p, ok := ev["payload"]
	if action != "trigger" {
		return ev
	}
	require.True(t, ok, "a trigger needs a payload")
	payload := p.(map[string]any)
	only(payload, "the payload", "summary", "timestamp", "severity", "source", "component", "group", "class", "custom_details")
	summary, ok := str(payload, "summary")
	require.True(t, ok && summary != "", "payload.summary is required")
	require.LessOrEqual(t, utf8.RuneCountInString(summary), 1024)
	source, ok := str(payload, "source")
	require.True(t, ok && source != "", "payload.source is required")
	severity, ok := str(payload, "severity")
	require.True(t, ok, "payload.severity is required")
	require.Contains(t, []string{"critical", "error", "warning", "info"}, severity)
	if ts, ok := str(payload, "timestamp"); ok {
		_, err := time.Parse(time.RFC3339, ts)
		require.NoError(t, err)
	}
	for _, k := range []string{"component", "group", "class"} {
		_, _ = str(payload, k)
	}
	if cd, ok := payload["custom_details"]; ok {
		_, isObj := cd.(map[string]any)
		require.True(t, isObj, "custom_details is an object")
	}
	return ev
}

// pdReceiver is a local Events API v2 endpoint: it checks each event
// against the schema and answers as PagerDuty does (202 and
// {"status":"success","message":"Event processed","dedup_key":...}), or
// with the status fail returns.
type pdReceiver struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	events []map[string]any
	got    chan struct{}
	fail   func(n int) int // status for the nth event (from 1); 0 accepts
}

func newPDReceiver(t *testing.T) *pdReceiver {
	r := &pdReceiver{t: t, got: make(chan struct{}, 100)}
	r.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if req.Method != http.MethodPost || req.URL.Path != "/v2/enqueue" || req.Header.Get("Content-Type") != "application/json" {
			t.Errorf("unexpected request %s %s %s", req.Method, req.URL.Path, req.Header.Get("Content-Type"))
		}
		ev := checkPagerDutyEvent(t, body)
		r.mu.Lock()
		r.events = append(r.events, ev)
		n, fail := len(r.events), r.fail
		r.mu.Unlock()
		if fail != nil {
			if code := fail(n); code != 0 {
				w.Header().Set("Retry-After", "7")
				w.WriteHeader(code)
				_, _ = io.WriteString(w, `{"status":"invalid event","message":"Event object is invalid","errors":["Length of 'routing_key' is incorrect"]}`)
				r.got <- struct{}{}
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "success", "message": "Event processed", "dedup_key": ev["dedup_key"].(string)})
		r.got <- struct{}{}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *pdReceiver) channel(t *testing.T, mod ...func(*channels.PagerDutyConfig)) *channels.PagerDuty {
	cfg := channels.PagerDutyConfig{RoutingKey: pdKey, EventsURL: r.srv.URL + "/v2/enqueue", Client: r.srv.Client()}
	for _, m := range mod {
		m(&cfg)
	}
	pd, err := channels.NewPagerDuty(cfg)
	require.NoError(t, err)
	return pd
}

// wait waits for n more events.
func (r *pdReceiver) wait(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-r.got:
		case <-time.After(10 * time.Second):
			t.Fatalf("PagerDuty got %d events, want %d more", len(r.all()), n)
		}
	}
}

func (r *pdReceiver) all() []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]map[string]any(nil), r.events...)
}

func pdNotification() approval.Notification {
	return approval.Notification{
		ID: "n1", Type: approval.NotifyAlert, RequestID: "req_0123", Status: approval.StatusPending,
		Action:     approval.Action{Name: "deploy:production", RequestedBy: "ci", Message: "Roll out 1.2", Risk: approval.RiskHigh},
		ActionHash: "sha256:abc", Policies: []approval.PolicyRef{{Name: "deploys", Hash: "h"}},
		Reason: "production deploys need an SRE", Note: "no answer in 15 minutes",
		ReviewURL:  "https://approvals.example.com/approvals/req_0123?token=secret",
		ApproveURL: "https://approvals.example.com/approvals/req_0123?verdict=approve&token=secret",
		Deadline:   time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), At: time.Date(2026, 1, 2, 2, 4, 5, 0, time.UTC),
	}
}

func TestPagerDutyTriggerAndResolve(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newPDReceiver(t)
	pd := r.channel(t, func(c *channels.PagerDutyConfig) { c.Source, c.Component = "deploy-gate", "approvals" })
	require.Equal(t, "pagerduty", pd.Name())
	var _ approval.Pager = pd

	n := pdNotification()
	require.NoError(t, pd.Send(ctx, n))
	ev := r.all()[0]
	require.Equal(t, "trigger", ev["event_action"])
	require.Equal(t, pdKey, ev["routing_key"])
	require.Equal(t, "approval/req_0123", ev["dedup_key"])
	require.Equal(t, channels.PagerDutyDedupKey("req_0123"), ev["dedup_key"])
	p := ev["payload"].(map[string]any)
	require.Equal(t, "Approval waiting: deploy:production, requested by ci (no answer in 15 minutes)", p["summary"])
	require.Equal(t, "deploy-gate", p["source"])
	require.Equal(t, "approvals", p["component"])
	require.Equal(t, "error", p["severity"], "high risk")
	require.Equal(t, "2026-01-02T02:04:05Z", p["timestamp"])
	d := p["custom_details"].(map[string]any)
	require.Equal(t, "req_0123", d["request_id"])
	require.Equal(t, "deploy:production", d["action"])
	require.Equal(t, "ci", d["requested_by"])
	require.Equal(t, "Roll out 1.2", d["message"])
	require.Equal(t, "production deploys need an SRE", d["reason"])
	require.Equal(t, "2026-01-02T03:04:05Z", d["deadline"])
	require.Equal(t, []any{"deploys"}, d["policies"])
	require.Equal(t, "sha256:abc", d["action_hash"])
	links := ev["links"].([]any)
	require.Len(t, links, 1)
	require.Equal(t, "https://approvals.example.com/approvals/req_0123", links[0].(map[string]any)["href"], "no token on a shared alert")
	raw, _ := json.Marshal(ev)
	require.NotContains(t, string(raw), "secret")

	n.Type, n.Status = approval.NotifyResolved, approval.StatusApproved
	require.NoError(t, pd.Send(ctx, n))
	require.Equal(t, map[string]any{"routing_key": pdKey, "event_action": "resolve", "dedup_key": "approval/req_0123"}, r.all()[1])

	n.Type, n.Status = approval.NotifyTimedOut, approval.StatusTimedOut
	require.NoError(t, pd.Send(ctx, n))
	require.Equal(t, "resolve", r.all()[2]["event_action"])
}

func TestPagerDutySeverityAndBounds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newPDReceiver(t)
	pd := r.channel(t, func(c *channels.PagerDutyConfig) { c.Severity = "critical" })
	for risk, want := range map[approval.Risk]string{approval.RiskNone: "critical", approval.RiskLow: "info",
		approval.RiskMedium: "warning", approval.RiskCritical: "critical"} {
		n := pdNotification()
		n.Action.Risk = risk
		require.NoError(t, pd.Send(ctx, n))
		evs := r.all()
		require.Equal(t, want, evs[len(evs)-1]["payload"].(map[string]any)["severity"], risk.String())
	}

	n := pdNotification()
	n.Action.Name = strings.Repeat("ü", 5000)
	n.Action.Message = strings.Repeat("m", 1<<20)
	n.Note = strings.Repeat("\x1b[31m", 400)
	n.RequestID = strings.Repeat("r", 400)
	n.ReviewURL = ""
	require.NoError(t, pd.Send(ctx, n))
	evs := r.all()
	ev := evs[len(evs)-1]
	require.Equal(t, channels.PagerDutyDedupKey(n.RequestID), ev["dedup_key"])
	require.True(t, strings.HasPrefix(ev["dedup_key"].(string), "approval/sha256:"))
	require.NotContains(t, ev["payload"].(map[string]any)["summary"], "\x1b")
	require.NotContains(t, ev, "links")

	n = pdNotification()
	n.Note = "BREAK-GLASS: break-glass by erin: outage"
	require.NoError(t, pd.Send(ctx, n))
	evs = r.all()
	require.Equal(t, "approval/req_0123/break-glass", evs[len(evs)-1]["dedup_key"], "no resolve names a break-glass alert")
}

func TestPagerDutyAnswers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for code, check := range map[int]func(t *testing.T, err error){
		http.StatusBadRequest: func(t *testing.T, err error) {
			var se *approval.SendError
			require.ErrorAs(t, err, &se)
			require.True(t, se.Permanent)
		},
		http.StatusTooManyRequests: func(t *testing.T, err error) {
			var se *approval.SendError
			require.ErrorAs(t, err, &se)
			require.False(t, se.Permanent)
			require.Equal(t, 7*time.Second, se.RetryAfter)
		},
		http.StatusBadGateway: func(t *testing.T, err error) {
			var se *approval.SendError
			require.ErrorAs(t, err, &se)
			require.False(t, se.Permanent)
		},
	} {
		r := newPDReceiver(t)
		r.fail = func(int) int { return code }
		err := r.channel(t).Send(ctx, pdNotification())
		require.Error(t, err, code)
		require.NotContains(t, err.Error(), pdKey)
		check(t, err)
	}
}

func TestNewPagerDutyConfig(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]channels.PagerDutyConfig{
		"no key":       {},
		"short key":    {RoutingKey: pdKey[:31]},
		"bad key":      {RoutingKey: pdKey[:31] + "!"},
		"http":         {RoutingKey: pdKey, EventsURL: "http://events.pagerduty.com/v2/enqueue"},
		"bad severity": {RoutingKey: pdKey, Severity: "fatal"},
	} {
		_, err := channels.NewPagerDuty(cfg)
		require.ErrorIs(t, err, channels.ErrInvalidConfig, name)
		require.NotContains(t, err.Error(), pdKey[:31], name)
	}
	pd, err := channels.NewPagerDuty(channels.PagerDutyConfig{RoutingKey: pdKey})
	require.NoError(t, err)
	require.Equal(t, "pagerduty", pd.Name())
}

// recorder is an ordinary channel that records what it gets.
type recorder struct {
	mu sync.Mutex
	ns []approval.Notification
}

func (r *recorder) Name() string { return "chat" }
func (r *recorder) Send(_ context.Context, n approval.Notification) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ns = append(r.ns, n)
	return nil
}

// TestPagerDutyOnCallGate runs a real gate with both: a policy whose
// approvers are the on-call SRE, resolved through PagerDuty's on-call list
// (the documented response fixture of package oncall), and whose
// escalation step pages PagerDuty after 15 minutes.
func TestPagerDutyOnCallGate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pdr := newPDReceiver(t)

	// The REST API, serving the shift the test sets.
	var mu sync.Mutex
	shift := "oncalls_day.json"
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/oncalls" || r.URL.Query().Get("schedule_ids[]") != "PI7DH85" || r.Header.Get("Authorization") != "Token token=k" {
			t.Errorf("unexpected on-call request %s %v", r.URL, r.Header)
		}
		mu.Lock()
		body, err := os.ReadFile("../oncall/testdata/" + shift)
		mu.Unlock()
		require.NoError(t, err)
		_, _ = w.Write(body)
	}))
	t.Cleanup(api.Close)

	clock := testkit.NewClock()
	dir, err := oncall.NewPagerDuty(oncall.PagerDutyConfig{Token: "k", APIURL: api.URL, Client: api.Client(), Now: clock.Now,
		Roles: map[string]oncall.PagerDutyTarget{"oncall-sre": {Schedule: "PI7DH85"}}})
	require.NoError(t, err)
	chat := &recorder{}
	pd := pdr.channel(t)
	_, priv, err := approval.GenerateKeys()
	require.NoError(t, err)
	gate := fixture.NewGate(t, approval.Config{Store: memstore.New(), Directory: dir, Now: clock.Now, SigningKey: priv,
		Channels: []approval.Channel{chat, pd}, BaseURL: "https://approvals.example.com", Logger: slog.New(slog.DiscardHandler)},
		map[string]approval.Policy{"deploys": {
			Match:             approval.Name("deploy:*"),
			Approvers:         []approval.Approver{approval.Role("oncall-sre")},
			RequiredApprovals: 1,
			Timeout:           2 * time.Hour,
			Escalation: []approval.EscalationStep{{After: 15 * time.Minute, Action: approval.StepNotify,
				To: []approval.Approver{approval.Role("oncall-sre")}, Channels: []string{"pagerduty"}, Reason: "no answer in 15 minutes"}},
		}})

	// An ordinary request: the on-call SRE is asked through chat only.
	id := guardDeploy(t, gate)
	require.Eventually(t, func() bool { chat.mu.Lock(); defer chat.mu.Unlock(); return len(chat.ns) == 1 }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, "tim.wright@example.com", chat.ns[0].Recipient)

	// 15 minutes on, Tick runs the step: one page, whoever is on call.
	fixture.Settled(t, gate)
	clock.Advance(16 * time.Minute)
	_, err = gate.Tick(ctx, 10)
	require.NoError(t, err)
	pdr.wait(t, 1)
	evs := pdr.all()
	require.Equal(t, "trigger", evs[0]["event_action"])
	require.Equal(t, "approval/"+id, evs[0]["dedup_key"])
	require.Contains(t, evs[0]["payload"].(map[string]any)["summary"], "no answer in 15 minutes")

	// Someone not on call cannot decide; the on-call engineer can.
	_, err = fixture.Decide(gate, id, "earline.greenholt@example.com", approval.Decision{Verdict: approval.VerdictApprove})
	require.ErrorIs(t, err, approval.ErrNotEligible)
	_, err = fixture.Decide(gate, id, "tim.wright@example.com", approval.Decision{Verdict: approval.VerdictApprove})
	require.NoError(t, err)
	pdr.wait(t, 1)
	require.Equal(t, map[string]any{"routing_key": pdKey, "event_action": "resolve", "dedup_key": "approval/" + id}, pdr.all()[1])

	var sent []string
	require.Eventually(t, func() bool {
		sent = sent[:0]
		for _, ev := range auditOf(t, gate, id) {
			if ev.Type == approval.EventNotificationSent && strings.Contains(ev.Reason, "via pagerduty") {
				sent = append(sent, ev.Reason)
			}
		}
		return len(sent) == 2
	}, 10*time.Second, 5*time.Millisecond)
	require.ElementsMatch(t, []string{"approval.alert via pagerduty", "approval.resolved via pagerduty"}, sent)

	// The shift changes: after the directory's TTL, the next request is
	// Earline's to decide, and a timeout resolves its page.
	mu.Lock()
	shift = "oncalls_night.json"
	mu.Unlock()
	fixture.Settled(t, gate)
	clock.Advance(2 * time.Minute)
	id2 := guardAction(t, gate, "deploy:staging", "ci")
	_, err = fixture.Decide(gate, id2, "tim.wright@example.com", approval.Decision{Verdict: approval.VerdictApprove})
	require.ErrorIs(t, err, approval.ErrNotEligible)
	fixture.Settled(t, gate)
	clock.Advance(16 * time.Minute)
	_, err = gate.Tick(ctx, 10)
	require.NoError(t, err)
	pdr.wait(t, 1)
	require.Equal(t, "trigger", pdr.all()[2]["event_action"])
	require.Equal(t, "approval/"+id2, pdr.all()[2]["dedup_key"])
	fixture.Settled(t, gate)
	clock.Advance(2 * time.Hour)
	_, err = gate.Tick(ctx, 10)
	require.NoError(t, err)
	pdr.wait(t, 1)
	require.Equal(t, "resolve", pdr.all()[3]["event_action"])
	require.Equal(t, "approval/"+id2, pdr.all()[3]["dedup_key"])
	r2, err := gate.Get(ctx, id2)
	require.NoError(t, err)
	require.Equal(t, approval.StatusTimedOut, r2.Status)

	// Chat got every ordinary notice; PagerDuty none of them.
	require.Len(t, pdr.all(), 4)
	chat.mu.Lock()
	defer chat.mu.Unlock()
	for _, n := range chat.ns {
		require.NotEmpty(t, n.Recipient)
	}
}

// TestPagerDutyLatePageResolves shows a page held back by PagerDuty's
// answers until after the request was decided: it goes out as a resolve,
// never as a trigger that would stay open.
func TestPagerDutyLatePageResolves(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pdr := newPDReceiver(t)
	pdr.fail = func(n int) int {
		if n == 1 {
			return http.StatusTooManyRequests
		}
		return 0
	}
	clock := testkit.NewClock()
	gate := newFixtureGate(t, func(c *approval.Config) {
		c.Now = clock.Now
		c.Channels = []approval.Channel{pdr.channel(t)}
		c.Delivery.Retry = approval.RetryPolicy{InitialInterval: time.Second, MaxInterval: time.Second}
	})
	require.NoError(t, gate.SetPolicy("deploys", approval.Policy{Match: approval.Name("deploy:*"),
		Approvers: []approval.Approver{approval.User("alice")}, RequiredApprovals: 1,
		Escalation: []approval.EscalationStep{{After: time.Minute, Action: approval.StepEscalate,
			To: []approval.Approver{approval.User("bob")}, Channels: []string{"pagerduty"}}}}))
	id := guardDeploy(t, gate)
	clock.Advance(2 * time.Minute)
	_, err := gate.Tick(ctx, 10)
	require.NoError(t, err)
	pdr.wait(t, 1) // the trigger, refused with 429
	require.Equal(t, "trigger", pdr.all()[0]["event_action"])
	require.Eventually(t, func() bool {
		return slices.ContainsFunc(auditOf(t, gate, id), func(ev approval.AuditEvent) bool { return ev.Type == approval.EventNotificationFailed })
	}, 10*time.Second, 5*time.Millisecond)

	_, err = fixture.Decide(gate, id, "bob", approval.Decision{Verdict: approval.VerdictDeny, Reason: "not now"})
	require.NoError(t, err)
	pdr.wait(t, 1)           // the resolution
	clock.Advance(time.Hour) // past the Retry-After
	pdr.wait(t, 1)           // the retried page
	for _, ev := range pdr.all()[1:] {
		require.Equal(t, "resolve", ev["event_action"])
		require.Equal(t, "approval/"+id, ev["dedup_key"])
	}
	require.Eventually(t, func() bool {
		for _, ev := range auditOf(t, gate, id) {
			if ev.Type == approval.EventNotificationSent &&
				ev.Reason == "approval.escalated via pagerduty (sent as approval.resolved: the request was resolved first) (attempt 2)" {
				return true
			}
		}
		return false
	}, 10*time.Second, 5*time.Millisecond, "%v", auditOf(t, gate, id))
}

// TestPagerDutyBreakGlass shows a Pager named in BreakGlass.SecurityChannels
// raising one alert of its own per break-glass, which the request's
// resolution does not resolve, and no page for the other notices.
func TestPagerDutyBreakGlass(t *testing.T) {
	t.Parallel()
	pdr := newPDReceiver(t)
	chat := &recorder{}
	gate := newFixtureGate(t, func(c *approval.Config) {
		c.Channels = []approval.Channel{chat, pdr.channel(t)}
		c.BreakGlass = &approval.BreakGlass{Approvers: []approval.Approver{approval.User("erin")},
			Security: []approval.Approver{approval.User("sec")}, SecurityChannels: []string{"chat", "pagerduty"}}
	})
	id := guardDeploy(t, gate)
	tok, err := gate.IssueToken(id, "erin", approval.VerdictApprove, time.Hour)
	require.NoError(t, err)
	_, err = gate.BreakGlass(context.Background(), id, approval.Decision{Token: tok, Verdict: approval.VerdictApprove, Reason: "outage"})
	require.NoError(t, err)
	pdr.wait(t, 1)
	ev := pdr.all()[0]
	require.Equal(t, "trigger", ev["event_action"])
	require.Equal(t, "approval/"+id+"/break-glass", ev["dedup_key"])
	require.Contains(t, ev["payload"].(map[string]any)["summary"], "break-glass by erin: outage")
	// Chat tells security and the approvers; the resolution reaches chat
	// and not PagerDuty (no escalation step names it).
	require.Eventually(t, func() bool {
		chat.mu.Lock()
		defer chat.mu.Unlock()
		return slices.ContainsFunc(chat.ns, func(n approval.Notification) bool {
			return n.Type == approval.NotifyAlert && n.Recipient == "sec"
		}) && slices.ContainsFunc(chat.ns, func(n approval.Notification) bool { return n.Type == approval.NotifyResolved })
	}, 10*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool {
		n := 0
		for _, ev := range auditOf(t, gate, id) {
			if ev.Type == approval.EventNotificationSent {
				n++
			}
		}
		page, err := gate.ListOutbox(context.Background(), approval.OutboxQuery{RequestID: id})
		require.NoError(t, err)
		chat.mu.Lock()
		defer chat.mu.Unlock()
		return n == len(chat.ns)+1 && len(page.Messages) == 0 // every notice expanded and delivered
	}, 10*time.Second, 5*time.Millisecond)
	require.Len(t, pdr.all(), 1)
}
