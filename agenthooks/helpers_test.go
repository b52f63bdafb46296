package agenthooks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/agenthooks"
	"github.com/signoff/approval/internal/fixture"
	"github.com/signoff/approval/memstore"
)

// bashPolicy: a gated Bash call of either agent needs two of the leads.
var bashPolicy = approval.Policy{
	Match:             approval.Name("*:bash"),
	Approvers:         []approval.Approver{approval.Group("leads")},
	RequiredApprovals: 2,
	Timeout:           time.Hour,
	Reason:            "destructive shell commands need two leads",
}

// dangerous are the Bash commands the tests gate.
var dangerous = regexp.MustCompile(`rm -rf|git push --force|kubectl delete`)

// rules gate dangerous Bash commands and every Write.
var rules = []agenthooks.Rule{
	{Tools: "Bash", When: agenthooks.InputMatches("command", dangerous)},
	{Tools: "Write"},
}

// keys are the developers' hook keys: the bearer token names the requester.
var keys = map[string]string{"key-dana": "dana", "key-erin": "erin"}

func authenticate(r *http.Request) (string, error) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if who, known := keys[tok]; ok && known {
		return who, nil
	}
	return "", errors.New("no known hook key")
}

// reviewURL is the tests' review page address.
func reviewURL(id string) string { return "https://ops.example.com/review" + approval.ReviewPath + id }

// newGate returns a gate over a memstore with the leads group and the
// policies named.
func newGate(t testing.TB, mod func(*approval.Config), policies map[string]approval.Policy) *approval.Gate {
	t.Helper()
	cfg := approval.Config{
		Store:        memstore.New(),
		Directory:    approval.StaticDirectory{Groups: map[string][]string{"leads": {"alice", "bob", "carol"}}},
		PollInterval: 5 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	return fixture.NewGate(t, cfg, policies)
}

// serve returns the URL of a test server of the handler newH builds from
// opts, with the tests' defaults filled in.
func serve(t testing.TB, newH func(agenthooks.Options) (http.Handler, error), opts agenthooks.Options) string {
	t.Helper()
	if opts.Rules == nil {
		opts.Rules = rules
	}
	if opts.Authenticate == nil {
		opts.Authenticate = authenticate
	}
	if opts.ReviewURL == nil {
		opts.ReviewURL = reviewURL
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h, err := newH(opts)
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// post sends body to url with key's bearer token ("" sends none), as the
// agent's hook does, and returns the status and the response body.
func post(t testing.TB, url, key, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, out
}

// output is a hook's JSON answer, every field the documentation gives
// PreToolUse and PermissionRequest; decoded strictly, so a field the
// documentation does not name fails the test.
type output struct {
	HookSpecificOutput struct {
		HookEventName            string          `json:"hookEventName"`
		PermissionDecision       string          `json:"permissionDecision"`
		PermissionDecisionReason string          `json:"permissionDecisionReason"`
		UpdatedInput             json.RawMessage `json:"updatedInput"`
		Decision                 *decisionOut    `json:"decision"`
	} `json:"hookSpecificOutput"`
}

// decisionOut is PermissionRequest's hookSpecificOutput.decision.
type decisionOut struct {
	Behavior     string          `json:"behavior"`
	UpdatedInput json.RawMessage `json:"updatedInput"`
	Message      string          `json:"message"`
}

// answer posts body and decodes the 200 answer, which must be a JSON
// object of the documented shape.
func answer(t testing.TB, url, key, body string) output {
	t.Helper()
	status, out := post(t, url, key, body)
	require.Equal(t, http.StatusOK, status, string(out))
	require.NotEmpty(t, out, "an answer with a decision")
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.DisallowUnknownFields()
	var o output
	require.NoError(t, dec.Decode(&o), string(out))
	return o
}

// noDecision posts body and requires the documented "no decision": a 200
// with an empty body.
func noDecision(t testing.TB, url, key, body string) {
	t.Helper()
	status, out := post(t, url, key, body)
	require.Equal(t, http.StatusOK, status, string(out))
	require.Empty(t, out, "no decision: the agent's own permission flow applies")
}

var requestID = regexp.MustCompile(`req_[0-9a-f]{32}`)

// pendingID returns the request ID a pending answer's reason names.
func pendingID(t testing.TB, reason string) string {
	t.Helper()
	require.Contains(t, reason, "is waiting for one")
	id := requestID.FindString(reason)
	require.NotEmpty(t, id, reason)
	return id
}

// decide records who's decision on request id.
func decide(t testing.TB, g *approval.Gate, id, who string, d approval.Decision) {
	t.Helper()
	_, err := fixture.Decide(g, id, who, d)
	require.NoError(t, err)
}

// openRequest waits for the one open request of the gate and returns it.
func openRequest(t testing.TB, g *approval.Gate) *approval.Request {
	t.Helper()
	var r *approval.Request
	require.Eventually(t, func() bool {
		page, err := g.List(context.Background(), approval.RequestQuery{Status: []approval.Status{approval.StatusPending}})
		require.NoError(t, err)
		if len(page.Requests) == 1 {
			r = page.Requests[0]
		}
		return r != nil
	}, 10*time.Second, 5*time.Millisecond)
	return r
}

// brokenStore fails every request it would create.
type brokenStore struct{ approval.Store }

func (brokenStore) Create(context.Context, *approval.Request, []approval.AuditEvent) (*approval.Request, bool, error) {
	return nil, false, errors.New("disk full")
}
