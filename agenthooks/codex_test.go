package agenthooks_test

import (
	"context"
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

// The fixtures follow OpenAI Codex's hooks documentation,
// https://developers.openai.com/codex/hooks: the common input fields
// (session_id, transcript_path, cwd, hook_event_name, model,
// permission_mode, and turn_id on turn-scoped events), PreToolUse's
// tool_name ("Bash", "apply_patch", "mcp__server__tool"), tool_input and
// tool_use_id, and PermissionRequest's tool_name and tool_input (with an
// optional description). Outputs: PreToolUse's hookSpecificOutput
// {hookEventName, permissionDecision "deny", permissionDecisionReason},
// the only decision Codex enforces there (allow, ask and updatedInput are
// parsed and ignored); PermissionRequest's hookSpecificOutput
// {hookEventName, decision {behavior allow|deny, message}}, with
// updatedInput reserved (refused). No output is no decision: Codex's own
// approval flow goes on.

// codexPreToolUse is the documented PreToolUse input.
func codexPreToolUse(tool, input string) string {
	return `{
  "session_id": "019e5d2c-5a3f-7c11-9a0b-2f6d1c3e4b5a",
  "turn_id": "019e5d2c-6b40-7d22-8c1d-3a7e2d4f5c6b",
  "transcript_path": "/home/user/.codex/sessions/2026/12/07/rollout.jsonl",
  "cwd": "/home/user/my-project",
  "hook_event_name": "PreToolUse",
  "model": "gpt-5",
  "permission_mode": "default",
  "tool_name": "` + tool + `",
  "tool_input": ` + input + `,
  "tool_use_id": "call_a1b2c3"
}`
}

// codexPermissionRequest is the documented PermissionRequest input for a
// shell approval.
func codexPermissionRequest(tool, input string) string {
	return `{
  "session_id": "019e5d2c-5a3f-7c11-9a0b-2f6d1c3e4b5a",
  "turn_id": "019e5d2c-6b40-7d22-8c1d-3a7e2d4f5c6b",
  "transcript_path": "/home/user/.codex/sessions/2026/12/07/rollout.jsonl",
  "cwd": "/home/user/my-project",
  "hook_event_name": "PermissionRequest",
  "model": "gpt-5",
  "permission_mode": "default",
  "tool_name": "` + tool + `",
  "tool_input": ` + input + `
}`
}

const codexRm = `{"command": "rm -rf target"}`

func TestCodexUngated(t *testing.T) {
	t.Parallel()
	g := newGate(t, nil, map[string]approval.Policy{"bash": bashPolicy})
	url := serve(t, agenthooks.Codex, agenthooks.Options{Gate: g})
	noDecision(t, url, "key-dana", codexPreToolUse("Bash", `{"command": "cargo test"}`))
	noDecision(t, url, "key-dana", codexPreToolUse("apply_patch", `{"command": "*** Begin Patch\n*** End Patch"}`))
	noDecision(t, url, "key-dana", codexPermissionRequest("Bash", `{"command": "cargo test", "description": "run the tests"}`))
	// Codex ignores allow on PreToolUse, so AllowUngated answers it with
	// no decision, and PermissionRequest with allow.
	url = serve(t, agenthooks.Codex, agenthooks.Options{Gate: g, AllowUngated: true})
	noDecision(t, url, "key-dana", codexPreToolUse("Bash", `{"command": "cargo test"}`))
	o := answer(t, url, "key-dana", codexPermissionRequest("Bash", `{"command": "cargo test"}`))
	require.Equal(t, "PermissionRequest", o.HookSpecificOutput.HookEventName)
	require.Equal(t, "allow", o.HookSpecificOutput.Decision.Behavior)
	require.Nil(t, o.HookSpecificOutput.Decision.UpdatedInput, "Codex refuses updatedInput")
}

func TestCodexPendingThenApproved(t *testing.T) {
	t.Parallel()
	g := newGate(t, nil, map[string]approval.Policy{"bash": bashPolicy})
	url := serve(t, agenthooks.Codex, agenthooks.Options{Gate: g, MaxWait: 20 * time.Millisecond})
	body := strings.Replace(codexPreToolUse("Bash", codexRm), `"model"`, `"requested_by": "mallory", "model"`, 1)

	o := answer(t, url, "key-erin", body)
	require.Equal(t, "PreToolUse", o.HookSpecificOutput.HookEventName)
	require.Equal(t, "deny", o.HookSpecificOutput.PermissionDecision)
	reason := o.HookSpecificOutput.PermissionDecisionReason
	id := pendingID(t, reason)
	require.Contains(t, reason, "Review page: https://ops.example.com/review/approvals/"+id+" .")
	require.Contains(t, reason, "ask again after approval")
	req, err := g.Get(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, "erin", req.Action.RequestedBy)
	require.Equal(t, "codex:bash", req.Action.Name)
	require.Equal(t, codexRm, string(req.Action.Payload))
	require.Equal(t, "codex", req.Action.Provenance.Source)

	decide(t, g, id, "alice", approval.Decision{Verdict: approval.VerdictApprove})
	decide(t, g, id, "bob", approval.Decision{Verdict: approval.VerdictApprove})
	// Approved: no decision (Codex does not honour allow on PreToolUse),
	// and the approval is used.
	noDecision(t, url, "key-erin", body)
	req, err = g.Get(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, approval.StatusConsumed, req.Status)

	// PermissionRequest: allow, once approved while the hook waits.
	url = serve(t, agenthooks.Codex, agenthooks.Options{Gate: g, MaxWait: 20 * time.Second})
	got := make(chan output, 1)
	go func() { got <- answer(t, url, "key-erin", codexPermissionRequest("Bash", codexRm)) }()
	r := openRequest(t, g)
	decide(t, g, r.ID, "alice", approval.Decision{Verdict: approval.VerdictApprove})
	decide(t, g, r.ID, "carol", approval.Decision{Verdict: approval.VerdictApprove})
	o = <-got
	require.Equal(t, "PermissionRequest", o.HookSpecificOutput.HookEventName)
	require.Equal(t, "allow", o.HookSpecificOutput.Decision.Behavior)
}

func TestCodexDenied(t *testing.T) {
	t.Parallel()
	g := newGate(t, nil, map[string]approval.Policy{"bash": bashPolicy})
	url := serve(t, agenthooks.Codex, agenthooks.Options{Gate: g, MaxWait: 20 * time.Millisecond})
	denial := &approval.Denial{Code: "unsafe", Retry: approval.RetryNever}
	o := answer(t, url, "key-dana", codexPreToolUse("Bash", codexRm))
	id := pendingID(t, o.HookSpecificOutput.PermissionDecisionReason)
	decide(t, g, id, "bob", approval.Decision{Verdict: approval.VerdictDeny, Reason: "target holds the release", Denial: denial})
	o = answer(t, url, "key-dana", codexPreToolUse("Bash", codexRm))
	require.Equal(t, "deny", o.HookSpecificOutput.PermissionDecision)
	require.Contains(t, o.HookSpecificOutput.PermissionDecisionReason, "denied by bob: target holds the release")
	require.Contains(t, o.HookSpecificOutput.PermissionDecisionReason, "Denial code unsafe, retry never: do not ask for this again, changed or not.")
	o = answer(t, url, "key-dana", codexPermissionRequest("Bash", codexRm))
	require.Equal(t, "deny", o.HookSpecificOutput.Decision.Behavior)
	require.Contains(t, o.HookSpecificOutput.Decision.Message, "Denial code unsafe, retry never")
}

func TestCodexEditedInput(t *testing.T) {
	t.Parallel()
	g := newGate(t, nil, map[string]approval.Policy{"bash": bashPolicy})
	url := serve(t, agenthooks.Codex, agenthooks.Options{Gate: g, MaxWait: 20 * time.Millisecond})
	edited := `{"command": "rm -rf target/debug"}`
	for _, body := range []string{codexPreToolUse("Bash", codexRm), codexPermissionRequest("Bash", codexRm)} {
		o := answer(t, url, "key-dana", body)
		id := pendingID(t, o.HookSpecificOutput.PermissionDecisionReason+o.HookSpecificOutput.Decision.GetMessage())
		decide(t, g, id, "alice", approval.Decision{Verdict: approval.VerdictApprove, Payload: []byte(edited)})
		decide(t, g, id, "bob", approval.Decision{Verdict: approval.VerdictApprove})
		o = answer(t, url, "key-dana", body)
		reason := o.HookSpecificOutput.PermissionDecisionReason
		if o.HookSpecificOutput.HookEventName == "PreToolUse" {
			require.Equal(t, "deny", o.HookSpecificOutput.PermissionDecision)
			require.Nil(t, o.HookSpecificOutput.UpdatedInput, "Codex ignores updatedInput")
		} else {
			require.Equal(t, "deny", o.HookSpecificOutput.Decision.Behavior, "Codex refuses updatedInput")
			require.Nil(t, o.HookSpecificOutput.Decision.UpdatedInput)
			reason = o.HookSpecificOutput.Decision.Message
		}
		require.Contains(t, reason, `a reviewer approved only this edited input to Bash: {"command":"rm -rf target/debug"}`)
		require.Contains(t, reason, "(request "+id+")")
	}
}

func TestCodexUnauthenticatedAndFailure(t *testing.T) {
	t.Parallel()
	g := newGate(t, func(c *approval.Config) { c.Store = brokenStore{c.Store} }, map[string]approval.Policy{"bash": bashPolicy})
	var logs testkit.Buffer
	url := serve(t, agenthooks.Codex, agenthooks.Options{Gate: g, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	status, out := post(t, url, "", codexPreToolUse("Bash", codexRm))
	require.Equal(t, http.StatusUnauthorized, status, string(out))

	o := answer(t, url, "key-dana", codexPreToolUse("Bash", codexRm))
	require.Equal(t, "deny", o.HookSpecificOutput.PermissionDecision)
	require.Contains(t, o.HookSpecificOutput.PermissionDecisionReason, "could not check this call to Bash, so it is denied")
	o = answer(t, url, "key-dana", codexPermissionRequest("Bash", codexRm))
	require.Equal(t, "deny", o.HookSpecificOutput.Decision.Behavior)
	require.Contains(t, logs.String(), "disk full")
}
