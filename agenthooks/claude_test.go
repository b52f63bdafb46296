package agenthooks_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/agenthooks"
	"github.com/signoff/approval/internal/testkit"
)

// The fixtures follow Claude Code's hooks reference,
// https://code.claude.com/docs/en/hooks (formerly
// https://docs.anthropic.com/en/docs/claude-code/hooks): "PreToolUse
// input", "PermissionRequest input" (the common input fields session_id,
// transcript_path, cwd, permission_mode and hook_event_name, then
// tool_name, tool_input, tool_use_id, and permission_suggestions), "HTTP
// hooks" (the input is the POST body; a 2xx with an empty body is success
// with no decision) and the decision control of each event: PreToolUse's
// hookSpecificOutput {hookEventName, permissionDecision allow|deny|ask,
// permissionDecisionReason, updatedInput}, PermissionRequest's
// hookSpecificOutput {hookEventName, decision {behavior allow|deny,
// updatedInput (allow), message (deny)}}.

// claudePreToolUse is the documented PreToolUse input with the tool and
// its input; tool_input is inserted as is.
func claudePreToolUse(tool, input string) string {
	return `{
  "session_id": "abc123",
  "transcript_path": "/home/user/.claude/projects/my-project/00893aaf-19fa-41d2-8238-13269b9b3ca0.jsonl",
  "cwd": "/home/user/my-project",
  "permission_mode": "default",
  "hook_event_name": "PreToolUse",
  "tool_name": "` + tool + `",
  "tool_input": ` + input + `,
  "tool_use_id": "toolu_01ABC123"
}`
}

// claudePermissionRequest is the documented PermissionRequest input.
func claudePermissionRequest(tool, input string) string {
	return `{
  "session_id": "abc123",
  "transcript_path": "/home/user/.claude/projects/my-project/00893aaf-19fa-41d2-8238-13269b9b3ca0.jsonl",
  "cwd": "/home/user/my-project",
  "permission_mode": "default",
  "hook_event_name": "PermissionRequest",
  "tool_name": "` + tool + `",
  "tool_input": ` + input + `,
  "permission_suggestions": [{"type": "toolAlwaysAllow", "tool": "` + tool + `"}]
}`
}

const rmInput = `{"command": "rm -rf node_modules", "description": "Remove dependencies"}`

func TestClaudeUngated(t *testing.T) {
	t.Parallel()
	g := newGate(t, nil, map[string]approval.Policy{"bash": bashPolicy})
	url := serve(t, agenthooks.Claude, agenthooks.Options{Gate: g})
	noDecision(t, url, "key-dana", claudePreToolUse("Read", `{"file_path": "/home/user/my-project/README.md"}`))
	noDecision(t, url, "key-dana", claudePreToolUse("Bash", `{"command": "npm test", "description": "Run test suite"}`))
	noDecision(t, url, "key-dana", claudePermissionRequest("Bash", `{"command": "npm test"}`))
	// Tool names are matched exactly: "bash" is not the tool Bash.
	noDecision(t, url, "key-dana", claudePreToolUse("bash", rmInput))

	url = serve(t, agenthooks.Claude, agenthooks.Options{Gate: g, AllowUngated: true})
	o := answer(t, url, "key-dana", claudePreToolUse("Read", `{"file_path": "README.md"}`))
	require.Equal(t, "PreToolUse", o.HookSpecificOutput.HookEventName)
	require.Equal(t, "allow", o.HookSpecificOutput.PermissionDecision)
	require.Nil(t, o.HookSpecificOutput.UpdatedInput)
	o = answer(t, url, "key-dana", claudePermissionRequest("Read", `{"file_path": "README.md"}`))
	require.Equal(t, "PermissionRequest", o.HookSpecificOutput.HookEventName)
	require.Equal(t, "allow", o.HookSpecificOutput.Decision.Behavior)
	require.Empty(t, o.HookSpecificOutput.PermissionDecision)

	page, err := g.List(context.Background(), approval.RequestQuery{})
	require.NoError(t, err)
	require.Empty(t, page.Requests, "nothing ungated asks anyone")
}

func TestClaudePendingThenApprovedOnRetry(t *testing.T) {
	t.Parallel()
	g := newGate(t, nil, map[string]approval.Policy{"bash": bashPolicy})
	url := serve(t, agenthooks.Claude, agenthooks.Options{Gate: g, MaxWait: 20 * time.Millisecond})
	// The body claims another requester; the hook key names dana.
	body := strings.Replace(claudePreToolUse("Bash", rmInput), `"session_id"`, `"requested_by": "mallory", "RequestedBy": "mallory", "session_id"`, 1)

	o := answer(t, url, "key-dana", body)
	require.Equal(t, "PreToolUse", o.HookSpecificOutput.HookEventName)
	require.Equal(t, "deny", o.HookSpecificOutput.PermissionDecision)
	reason := o.HookSpecificOutput.PermissionDecisionReason
	id := pendingID(t, reason)
	require.Contains(t, reason, "Review page: https://ops.example.com/review/approvals/"+id+" .")
	require.Contains(t, reason, "ask again after approval: the same call (the same tool with exactly the same input) will then be allowed, once")

	req, err := g.Get(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, "dana", req.Action.RequestedBy, "the requester is the authenticated caller")
	require.Equal(t, "claude:bash", req.Action.Name)
	require.Equal(t, "Bash", req.Action.Metadata[agenthooks.MetadataTool])
	require.Equal(t, rmInput, string(req.Action.Payload), "the payload is tool_input as sent")
	require.Equal(t, "claude", req.Action.Provenance.Source)
	require.Equal(t, "abc123", req.Action.Provenance.SourceID)
	require.Contains(t, req.Action.Message, "/home/user/my-project")

	// Asking again while pending finds the same request.
	o = answer(t, url, "key-dana", body)
	require.Equal(t, id, pendingID(t, o.HookSpecificOutput.PermissionDecisionReason))
	// Another developer's identical call is a request of its own.
	o = answer(t, url, "key-erin", body)
	require.NotEqual(t, id, pendingID(t, o.HookSpecificOutput.PermissionDecisionReason))

	decide(t, g, id, "alice", approval.Decision{Verdict: approval.VerdictApprove})
	o = answer(t, url, "key-dana", body)
	require.Equal(t, id, pendingID(t, o.HookSpecificOutput.PermissionDecisionReason), "one approval of two")
	decide(t, g, id, "bob", approval.Decision{Verdict: approval.VerdictApprove})

	o = answer(t, url, "key-dana", body)
	require.Equal(t, "allow", o.HookSpecificOutput.PermissionDecision)
	require.Contains(t, o.HookSpecificOutput.PermissionDecisionReason, id)
	require.Nil(t, o.HookSpecificOutput.UpdatedInput, "the input as sent")

	// The approval is used up: the next identical call asks again.
	o = answer(t, url, "key-dana", body)
	require.NotEqual(t, id, pendingID(t, o.HookSpecificOutput.PermissionDecisionReason))
}

func TestClaudeApprovedWhileWaiting(t *testing.T) {
	t.Parallel()
	g := newGate(t, nil, map[string]approval.Policy{"bash": bashPolicy})
	url := serve(t, agenthooks.Claude, agenthooks.Options{Gate: g, MaxWait: 20 * time.Second})
	for _, ev := range []string{"PreToolUse", "PermissionRequest"} {
		body := claudePreToolUse("Bash", `{"command": "git push --force origin main"}`)
		if ev == "PermissionRequest" {
			body = claudePermissionRequest("Bash", `{"command": "git push --force origin main"}`)
		}
		got := make(chan output, 1)
		go func() { got <- answer(t, url, "key-dana", body) }()
		r := openRequest(t, g)
		decide(t, g, r.ID, "alice", approval.Decision{Verdict: approval.VerdictApprove})
		decide(t, g, r.ID, "carol", approval.Decision{Verdict: approval.VerdictApprove})
		o := <-got
		require.Equal(t, ev, o.HookSpecificOutput.HookEventName)
		if ev == "PreToolUse" {
			require.Equal(t, "allow", o.HookSpecificOutput.PermissionDecision)
		} else {
			require.Equal(t, "allow", o.HookSpecificOutput.Decision.Behavior)
		}
		r, err := g.Get(context.Background(), r.ID)
		require.NoError(t, err)
		require.Equal(t, approval.StatusConsumed, r.Status, "the hook's allow used the approval")
	}
}

func TestClaudeDenied(t *testing.T) {
	t.Parallel()
	g := newGate(t, nil, map[string]approval.Policy{"bash": bashPolicy})
	url := serve(t, agenthooks.Claude, agenthooks.Options{Gate: g, MaxWait: 20 * time.Second})
	denial := &approval.Denial{Code: "too-broad", Retry: approval.RetryChanged, Hint: "delete only the build directory"}
	for _, ev := range []string{"PreToolUse", "PermissionRequest"} {
		input := `{"command": "kubectl delete namespace ` + ev + `"}`
		body := claudePreToolUse("Bash", input)
		if ev == "PermissionRequest" {
			body = claudePermissionRequest("Bash", input)
		}
		got := make(chan output, 1)
		go func() { got <- answer(t, url, "key-dana", body) }()
		r := openRequest(t, g)
		decide(t, g, r.ID, "carol", approval.Decision{Verdict: approval.VerdictDeny, Reason: "not the whole namespace", Denial: denial})
		for i, o := range []output{<-got, answer(t, url, "key-dana", body)} { // the held denial answers a retry
			require.Equal(t, ev, o.HookSpecificOutput.HookEventName)
			reason := o.HookSpecificOutput.PermissionDecisionReason
			if ev == "PreToolUse" {
				require.Equal(t, "deny", o.HookSpecificOutput.PermissionDecision)
			} else {
				require.Equal(t, "deny", o.HookSpecificOutput.Decision.Behavior)
				reason = o.HookSpecificOutput.Decision.Message
			}
			require.Contains(t, reason, "was denied (request "+r.ID+"): denied by carol: not the whole namespace", "answer %d", i)
			require.Contains(t, reason, "Denial code too-broad, retry changed: do not repeat this call as it is; a changed call may be approved.")
			require.Contains(t, reason, "Hint: delete only the build directory")
		}
	}
}

func TestClaudeEditedInput(t *testing.T) {
	t.Parallel()
	g := newGate(t, nil, map[string]approval.Policy{"bash": bashPolicy})
	url := serve(t, agenthooks.Claude, agenthooks.Options{Gate: g, MaxWait: 20 * time.Millisecond})
	edited := `{"command": "rm -rf node_modules/.cache", "description": "Remove the cache"}`
	for _, ev := range []string{"PreToolUse", "PermissionRequest"} {
		body := claudePreToolUse("Bash", rmInput)
		if ev == "PermissionRequest" {
			body = claudePermissionRequest("Bash", rmInput)
		}
		o := answer(t, url, "key-dana", body)
		id := pendingID(t, o.HookSpecificOutput.PermissionDecisionReason+o.HookSpecificOutput.Decision.GetMessage())
		decide(t, g, id, "alice", approval.Decision{Verdict: approval.VerdictApprove, Payload: []byte(edited)})
		decide(t, g, id, "bob", approval.Decision{Verdict: approval.VerdictApprove})
		o = answer(t, url, "key-dana", body)
		require.Equal(t, ev, o.HookSpecificOutput.HookEventName)
		if ev == "PreToolUse" {
			require.Equal(t, "allow", o.HookSpecificOutput.PermissionDecision)
			require.JSONEq(t, edited, string(o.HookSpecificOutput.UpdatedInput), "the agent runs the reviewer's input")
			require.Contains(t, o.HookSpecificOutput.PermissionDecisionReason, "edited input (request "+id+")")
		} else {
			require.Equal(t, "allow", o.HookSpecificOutput.Decision.Behavior)
			require.JSONEq(t, edited, string(o.HookSpecificOutput.Decision.UpdatedInput))
		}
	}
}

func TestClaudeUnauthenticated(t *testing.T) {
	t.Parallel()
	g := newGate(t, nil, map[string]approval.Policy{"bash": bashPolicy})
	panicking := func(*http.Request) (string, error) { panic("broken key store") }
	invalid := func(*http.Request) (string, error) { return "two words", nil }
	for name, auth := range map[string]func(*http.Request) (string, error){"keys": authenticate, "panics": panicking, "invalid": invalid} {
		url := serve(t, agenthooks.Claude, agenthooks.Options{Gate: g, Authenticate: auth})
		body := strings.Replace(claudePreToolUse("Bash", rmInput), `"session_id"`, `"requested_by": "dana", "session_id"`, 1)
		for _, key := range []string{"", "key-mallory"} {
			status, out := post(t, url, key, body)
			require.Equal(t, http.StatusUnauthorized, status, "%s %q: %s", name, key, out)
		}
	}
	page, err := g.List(context.Background(), approval.RequestQuery{})
	require.NoError(t, err)
	require.Empty(t, page.Requests, "nobody is asked on an unauthenticated call's behalf")
}

func TestClaudeGateFailureDenies(t *testing.T) {
	t.Parallel()
	g := newGate(t, func(c *approval.Config) { c.Store = brokenStore{c.Store} }, map[string]approval.Policy{"bash": bashPolicy})
	var logs testkit.Buffer
	url := serve(t, agenthooks.Claude, agenthooks.Options{Gate: g, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	o := answer(t, url, "key-dana", claudePreToolUse("Bash", rmInput))
	require.Equal(t, "deny", o.HookSpecificOutput.PermissionDecision)
	require.Contains(t, o.HookSpecificOutput.PermissionDecisionReason, "could not check this call to Bash, so it is denied")
	require.NotContains(t, o.HookSpecificOutput.PermissionDecisionReason, "disk full", "internal errors stay on the server")
	require.Contains(t, logs.String(), "disk full", "the operator learns why")

	// A rule's When that panics gates the call (and the broken store
	// denies it); one that errs on a non-string command too.
	url = serve(t, agenthooks.Claude, agenthooks.Options{Gate: g, Rules: []agenthooks.Rule{
		{Tools: "Bash", When: func(json.RawMessage) (bool, error) { panic("bad rule") }},
	}})
	o = answer(t, url, "key-dana", claudePreToolUse("Bash", `{"command": "ls"}`))
	require.Equal(t, "deny", o.HookSpecificOutput.PermissionDecision)
	url = serve(t, agenthooks.Claude, agenthooks.Options{Gate: g})
	o = answer(t, url, "key-dana", claudePreToolUse("Bash", `{"command": ["ls"]}`))
	require.Equal(t, "deny", o.HookSpecificOutput.PermissionDecision)
}

func TestClaudeRefusedInput(t *testing.T) {
	t.Parallel()
	g := newGate(t, nil, map[string]approval.Policy{"bash": bashPolicy})
	url := serve(t, agenthooks.Claude, agenthooks.Options{Gate: g})
	for name, input := range map[string]string{
		"a key twice": `{"command": "rm -rf /tmp/x", "command": "ls"}`,
		"not object":  `["rm -rf /"]`,
		"too big":     `{"command": "rm -rf ` + strings.Repeat("x", 300<<10) + `"}`,
	} {
		status, out := post(t, url, "key-dana", claudePreToolUse("Write", input))
		if name == "a key twice" {
			// The whole body is refused: which value would Claude Code run?
			require.Equal(t, http.StatusBadRequest, status, string(out))
			continue
		}
		require.Equal(t, http.StatusOK, status, string(out))
		o := answer(t, url, "key-dana", claudePreToolUse("Write", input))
		require.Equal(t, "deny", o.HookSpecificOutput.PermissionDecision, name)
		require.Contains(t, o.HookSpecificOutput.PermissionDecisionReason, "could not check this call to Write", name)
	}
}

func TestClaudeBadRequests(t *testing.T) {
	t.Parallel()
	g := newGate(t, nil, nil)
	url := serve(t, agenthooks.Claude, agenthooks.Options{Gate: g})
	resp, err := http.Get(url)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	for name, body := range map[string]string{
		"not JSON":      `{"hook_event_name":`,
		"other event":   strings.Replace(claudePreToolUse("Bash", rmInput), `"PreToolUse"`, `"PostToolUse"`, 1),
		"no tool":       claudePreToolUse("", rmInput),
		"a key twice":   strings.Replace(claudePreToolUse("Read", `{}`), `"cwd"`, `"tool_name": "Bash", "cwd"`, 1),
		"not an object": `[]`,
	} {
		status, out := post(t, url, "key-dana", body)
		require.Equal(t, http.StatusBadRequest, status, "%s: %s", name, out)
	}
}

func TestOptionsValidation(t *testing.T) {
	t.Parallel()
	g := newGate(t, nil, nil)
	for name, opts := range map[string]agenthooks.Options{
		"nil gate":        {Rules: rules, Authenticate: authenticate},
		"no rules":        {Gate: g, Authenticate: authenticate},
		"no authenticate": {Gate: g, Rules: rules},
		"negative wait":   {Gate: g, Rules: rules, Authenticate: authenticate, MaxWait: -time.Second},
		"empty glob":      {Gate: g, Rules: []agenthooks.Rule{{}}, Authenticate: authenticate},
		"malformed glob":  {Gate: g, Rules: []agenthooks.Rule{{Tools: "Bash"}, {Tools: "[Wr"}}, Authenticate: authenticate},
	} {
		for _, newH := range []func(agenthooks.Options) (http.Handler, error){agenthooks.Claude, agenthooks.Codex} {
			_, err := newH(opts)
			require.ErrorIs(t, err, approval.ErrInvalidConfig, name)
		}
	}
	_, err := agenthooks.Claude(agenthooks.Options{Gate: g, Rules: rules, Authenticate: authenticate})
	require.NoError(t, err)
}

// GetMessage is the deny message of a PermissionRequest answer, or "".
func (d *decisionOut) GetMessage() string {
	if d == nil {
		return ""
	}
	return d.Message
}
