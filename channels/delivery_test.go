package channels_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/channels"
	"github.com/signoff/approval/internal/pgtest"
	"github.com/signoff/approval/sqlstore"
)

// These tests hold the outbox to its promise end to end: real stores
// (SQLite files, PostgreSQL), the real webhook channel, a real HTTP
// receiver, and processes that die.

var deliverySecret = []byte("delivery-test-secret-0123456789")

// receiver is a webhook endpoint that checks every signature and counts
// each message's attempts and deliveries by idempotency key.
type receiver struct {
	t        *testing.T
	failRate float64 // answer 503 to this share of the requests, at random

	mu        sync.Mutex
	attempts  map[string][]int // idempotency key -> Notification.Attempt of each request
	delivered map[string]int   // idempotency key -> 200s answered
	byProcess map[string]int   // X-Process -> 200s answered
	requests  map[string]string
	got       chan string
}

func newReceiver(t *testing.T, failRate float64) (*receiver, *httptest.Server) {
	rc := &receiver{t: t, failRate: failRate, attempts: map[string][]int{}, delivered: map[string]int{},
		byProcess: map[string]int{}, requests: map[string]string{}, got: make(chan string, 10_000)}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return rc, srv
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := channels.VerifyRequest(deliverySecret, r, time.Hour)
	if err != nil {
		rc.t.Errorf("receiver: %v", err)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	n, err := channels.DecodeWebhook(body)
	if err != nil {
		rc.t.Errorf("receiver: %v", err)
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	key := r.Header.Get(channels.HeaderIdempotencyKey)
	if key != n.ID {
		rc.t.Errorf("receiver: idempotency key %q, body id %q", key, n.ID)
	}
	fail := rand.Float64() < rc.failRate
	rc.mu.Lock()
	rc.attempts[key] = append(rc.attempts[key], n.Attempt)
	rc.requests[key] = n.RequestID
	if !fail {
		rc.delivered[key]++
		rc.byProcess[r.Header.Get("X-Process")]++
	}
	rc.mu.Unlock()
	if fail {
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusNoContent)
	rc.got <- key
}

// await waits until n distinct messages were delivered.
func (rc *receiver) await(t *testing.T, n int, limit time.Duration) {
	t.Helper()
	deadline := time.After(limit)
	for {
		rc.mu.Lock()
		have := len(rc.delivered)
		rc.mu.Unlock()
		if have >= n {
			return
		}
		select {
		case <-rc.got:
		case <-deadline:
			t.Fatalf("%d of %d messages delivered within %s", have, n, limit)
		}
	}
}

// deliveryGate returns a gate on store that notifies alice, the one
// approver of every "deliver:*" action, through a webhook to url.
func deliveryGate(t testingT, store approval.Store, url, process string, mod func(*approval.Config)) *approval.Gate {
	t.Helper()
	hook, err := channels.NewWebhook(channels.WebhookConfig{URL: url, Secret: deliverySecret,
		Headers: http.Header{"X-Process": {process}}})
	require.NoError(t, err)
	_, priv, err := approval.GenerateKeys()
	require.NoError(t, err)
	cfg := approval.Config{
		Store: store, SigningKey: priv, Channels: []approval.Channel{hook},
		BaseURL:      "https://approvals.example.com",
		PollInterval: 10 * time.Millisecond,
		Delivery: approval.DeliveryConfig{
			Retry: approval.RetryPolicy{MaxAttempts: 40, InitialInterval: time.Millisecond, MaxInterval: 20 * time.Millisecond},
		},
		Logger: slog.New(slog.DiscardHandler),
	}
	if mod != nil {
		mod(&cfg)
	}
	g, err := approval.New(cfg)
	require.NoError(t, err)
	require.NoError(t, g.SetPolicy("deliveries", approval.Policy{
		Match:             approval.Name("deliver:*"),
		Approvers:         []approval.Approver{approval.User("alice")},
		RequiredApprovals: 1,
	}))
	return g
}

func guardN(t testingT, g *approval.Gate, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		res, err := g.Guard(context.Background(), approval.Action{Name: "deliver:" + strconv.Itoa(i), RequestedBy: "bob"})
		require.NoError(t, err)
		require.Equal(t, approval.OutcomePending, res.Status)
	}
}

func sqliteDSN(t *testing.T) string { return filepath.Join(t.TempDir(), "approval.db") }

// postgresDSN returns a DSN for a schema of the test's own, or skips
// (fails when APPROVAL_REQUIRE_POSTGRES=1, as in CI).
func postgresDSN(t *testing.T) string { return pgtest.DSN(t) }

func openStore(t *testing.T, dsn string) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestDeliveryFlakyWebhook: 200 Guards notify through a webhook that
// fails half of its requests at random. Every message is delivered at
// least once, every attempt of a message carries its one idempotency key,
// and the audit trail accounts for each attempt and each delivery.
func TestDeliveryFlakyWebhook(t *testing.T) {
	t.Parallel()
	for name, dsn := range map[string]func(*testing.T) string{"sqlite": sqliteDSN, "postgres": postgresDSN} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			store := openStore(t, dsn(t))
			rc, srv := newReceiver(t, 0.5)
			g := deliveryGate(t, store, srv.URL, "p1", nil)
			guardN(t, g, 0, 200)
			rc.await(t, 200, 60*time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			require.NoError(t, g.Close(ctx))

			rc.mu.Lock()
			defer rc.mu.Unlock()
			require.Len(t, rc.delivered, 200, "every message delivered")
			failures := 0
			for key, atts := range rc.attempts {
				require.GreaterOrEqual(t, rc.delivered[key], 1, key)
				for i, a := range atts {
					require.Equal(t, i+1, a, "attempts of %s in order under one key", key)
				}
				failures += len(atts) - rc.delivered[key]
			}
			require.Positive(t, failures)

			sent, failed := 0, 0
			for cur := ""; ; {
				page, err := g.ListAudit(context.Background(), approval.AuditQuery{Cursor: cur, Limit: 1000})
				require.NoError(t, err)
				for _, e := range page.Events {
					switch e.Type {
					case approval.EventNotificationSent:
						sent++
					case approval.EventNotificationFailed:
						failed++
					case approval.EventNotificationDeadLettered:
						t.Errorf("dead letter: %s", e.Reason)
					}
				}
				if cur = page.Next; cur == "" {
					break
				}
			}
			require.Equal(t, 200, sent, "one notification.sent per message")
			require.Equal(t, failures, failed, "one notification.failed per failed attempt")
			left, err := g.ListOutbox(context.Background(), approval.OutboxQuery{})
			require.NoError(t, err)
			require.Empty(t, left.Messages)
			rep, err := g.VerifyAuditTrail(context.Background(), approval.VerifyAuditOptions{})
			n := rep.Events
			require.NoError(t, err)
			require.Positive(t, n)
		})
	}
}

const childEnv = "APPROVAL_DELIVERY_CHILD"

// testingT is what deliveryGate and guardN need of a test: a *testing.T,
// or the child processes' childT.
type testingT interface {
	require.TestingT
	Helper()
}

// childT reports a failure of a child process on stderr and exits 1, so
// that its parent test fails on the exit status.
type childT struct{}

func (childT) Errorf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
func (childT) FailNow()                          { os.Exit(1) }
func (childT) Helper()                           {}

// TestMain runs the child processes of the crash and two-process tests,
// selected by childEnv, instead of the tests.
func TestMain(m *testing.M) {
	if role := os.Getenv(childEnv); role != "" {
		runChild(role)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runChild(role string) {
	t := childT{}
	dsn, url := os.Getenv("CHILD_DSN"), os.Getenv("CHILD_URL")
	store, err := sqlstore.Open(context.Background(), dsn)
	require.NoError(t, err)
	switch role {
	case "crash":
		// Deliveries hang, so the process dies holding its claims.
		g := deliveryGate(t, store, url, "crash", func(c *approval.Config) { c.Delivery.SendTimeout = time.Hour })
		guardN(t, g, 0, 20)
		fmt.Println("GUARDED")
		time.Sleep(time.Hour) // not a wait: the process hangs until killed
	case "deliver":
		from, _ := strconv.Atoi(os.Getenv("CHILD_FROM"))
		g := deliveryGate(t, store, url, os.Getenv("CHILD_NAME"), nil)
		guardN(t, g, from, 250)
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			page, err := g.ListOutbox(context.Background(), approval.OutboxQuery{Limit: 1})
			require.NoError(t, err)
			if len(page.Messages) == 0 {
				break
			}
			// Polled: the outbox, shared with the other processes, is
			// the only report of their deliveries.
			time.Sleep(20 * time.Millisecond)
		}
		require.NoError(t, g.Close(context.Background()))
		fmt.Println("DELIVERED")
	default:
		t.Errorf("unknown child role %q", role)
		t.FailNow()
	}
}

func child(t *testing.T, ctx context.Context, role string, env ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), childEnv+"="+role), env...)
	cmd.Stderr = os.Stderr
	return cmd
}

// TestDeliveryAfterCrash: a process Guards, its deliveries hang, and it is
// killed with SIGKILL before it delivers anything. A new process on the
// same database delivers every message, once the dead one's leases end.
func TestDeliveryAfterCrash(t *testing.T) {
	t.Parallel()
	dsn := sqliteDSN(t)
	openStore(t, dsn) // migrate before the child runs
	rc, srv := newReceiver(t, 0)
	sending := make(chan struct{}, 100)
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case sending <- struct{}{}:
		default:
		}
		_, _ = io.Copy(io.Discard, r.Body) // so that the server notices the connection close
		<-r.Context().Done()
	}))
	t.Cleanup(func() { hang.CloseClientConnections(); hang.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := child(t, ctx, "crash", "CHILD_DSN="+dsn, "CHILD_URL="+hang.URL)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	sc := bufio.NewScanner(out)
	for sc.Scan() && sc.Text() != "GUARDED" {
	}
	select { // it has claimed and is sending
	case <-sending:
	case <-ctx.Done():
		t.Fatal("the child sent nothing")
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	go io.Copy(io.Discard, out)

	store := openStore(t, dsn)
	page, err := store.ListOutbox(context.Background(), approval.OutboxQuery{})
	require.NoError(t, err)
	require.NotEmpty(t, page.Messages, "the dead process left its messages in the outbox")

	// The new process's clock is past the dead one's leases (an hour's
	// send timeout plus a minute): as if it started that much later.
	later := func() time.Time { return time.Now().Add(2 * time.Hour) }
	g := deliveryGate(t, store, srv.URL, "p2", func(c *approval.Config) { c.Now = later })
	rc.await(t, 20, 30*time.Second)
	require.NoError(t, g.Close(context.Background()))
	rc.mu.Lock()
	defer rc.mu.Unlock()
	require.Len(t, rc.delivered, 20)
	for key, n := range rc.delivered {
		require.Equal(t, 1, n, key)
	}
}

// TestDeliveryTwoProcesses: two processes on one PostgreSQL database each
// Guard 250 requests and deliver from the shared outbox. Every one of the
// 500 messages arrives, and none twice: no message was sent by both.
func TestDeliveryTwoProcesses(t *testing.T) {
	t.Parallel()
	dsn := postgresDSN(t)
	openStore(t, dsn)
	rc, srv := newReceiver(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var cmds []*exec.Cmd
	for i, name := range []string{"p1", "p2"} {
		cmd := child(t, ctx, "deliver", "CHILD_DSN="+dsn, "CHILD_URL="+srv.URL, "CHILD_NAME="+name,
			"CHILD_FROM="+strconv.Itoa(i*250))
		cmd.Stdout = io.Discard
		require.NoError(t, cmd.Start())
		cmds = append(cmds, cmd)
	}
	for _, cmd := range cmds {
		require.NoError(t, cmd.Wait())
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	require.Len(t, rc.delivered, 500)
	for key, n := range rc.delivered {
		require.Equal(t, 1, n, "message %s delivered %d times", key, n)
	}
	require.Positive(t, rc.byProcess["p1"])
	require.Positive(t, rc.byProcess["p2"])
	t.Logf("deliveries by process: %v", rc.byProcess)
}

// BenchmarkDeliveryThroughput: Guards b.N requests on SQLite, each
// notifying one approver through the webhook to a local receiver, and
// waits for every delivery: ns/op is the time per delivered message,
// Guard included, with the default SendConcurrency.
//
//	go test -run '^$' -bench DeliveryThroughput -benchtime 2000x ./channels
func BenchmarkDeliveryThroughput(b *testing.B) {
	var delivered atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := channels.VerifyRequest(deliverySecret, r, time.Hour); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		delivered.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	store, err := sqlstore.Open(context.Background(), filepath.Join(b.TempDir(), "approval.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	hook, err := channels.NewWebhook(channels.WebhookConfig{URL: srv.URL, Secret: deliverySecret})
	if err != nil {
		b.Fatal(err)
	}
	_, priv, _ := approval.GenerateKeys()
	g, err := approval.New(approval.Config{Store: store, SigningKey: priv, Channels: []approval.Channel{hook},
		BaseURL: "https://approvals.example.com", PollInterval: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	if err := g.SetPolicy("deliveries", approval.Policy{Match: approval.Name("deliver:*"),
		Approvers: []approval.Approver{approval.User("alice")}, RequiredApprovals: 1}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if _, err := g.Guard(context.Background(), approval.Action{Name: "deliver:" + strconv.Itoa(i), RequestedBy: "bob"}); err != nil {
			b.Fatal(err)
		}
	}
	for delivered.Load() < int64(b.N) {
		time.Sleep(time.Millisecond) // polled: a benchmark's bookkeeping, not a test's check
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "deliveries/s")
	_ = g.Close(context.Background())
}
