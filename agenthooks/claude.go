package agenthooks

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/signoff/approval/internal/text"
)

// Claude returns the http.Handler of Claude Code's http hooks for the
// PreToolUse and PermissionRequest events (see the package doc). It
// returns an error wrapping approval.ErrInvalidConfig if opts is not
// valid. The handler is safe for concurrent use.
func Claude(opts Options) (http.Handler, error) {
	return newHandler(opts, claude{})
}

// claude is Claude Code's hook protocol
// (https://code.claude.com/docs/en/hooks).
type claude struct{}

func (claude) agent() string { return "claude" }

// hookInput is the part of a PreToolUse or PermissionRequest hook's input
// the handlers read; Claude Code and Codex share it. Anything else in the
// body (transcript_path, permission_mode, tool_use_id, turn_id, model, a
// field naming a requester) is ignored.
type hookInput struct {
	SessionID     string          `json:"session_id"`
	Cwd           string          `json:"cwd"`
	HookEventName string          `json:"hook_event_name"`
	ToolName      string          `json:"tool_name"`
	ToolInput     json.RawMessage `json:"tool_input"`
}

// decodeHookInput reads the common input of the two events.
func decodeHookInput(body []byte) (call, error) {
	if err := checkInput(body); err != nil {
		return call{}, fmt.Errorf("the hook input: %w", errors.Unwrap(err))
	}
	var in hookInput
	if err := json.Unmarshal(body, &in); err != nil {
		return call{}, fmt.Errorf("the hook input: %v", err)
	}
	switch in.HookEventName {
	case eventPreToolUse, eventPermissionRequest:
	default:
		return call{}, fmt.Errorf("hook_event_name %q: this endpoint answers PreToolUse and PermissionRequest", text.Clip(in.HookEventName, 64))
	}
	if in.ToolName == "" {
		return call{}, errors.New("tool_name is empty")
	}
	return call{Event: in.HookEventName, Tool: in.ToolName, Input: in.ToolInput, Session: in.SessionID, Cwd: in.Cwd}, nil
}

func (claude) decode(body []byte) (call, error) { return decodeHookInput(body) }

// hookOutput is the JSON a hook answers with: hookSpecificOutput only.
type hookOutput struct {
	HookSpecificOutput hookSpecific `json:"hookSpecificOutput"`
}

type hookSpecific struct {
	HookEventName string `json:"hookEventName"`
	// PreToolUse.
	PermissionDecision       string          `json:"permissionDecision,omitempty"`
	PermissionDecisionReason string          `json:"permissionDecisionReason,omitempty"`
	UpdatedInput             json.RawMessage `json:"updatedInput,omitempty"`
	// PermissionRequest.
	Decision *permissionDecision `json:"decision,omitempty"`
}

type permissionDecision struct {
	Behavior     string          `json:"behavior"`
	UpdatedInput json.RawMessage `json:"updatedInput,omitempty"`
	Message      string          `json:"message,omitempty"`
}

func (claude) encode(c call, v verdict) []byte {
	var s hookSpecific
	switch v.decision {
	case noDecision:
		return nil
	case allow:
		s = allowOutput(c.Event, v.reason, v.input)
	default:
		s = denyOutput(c.Event, v.reason)
	}
	return marshal(s)
}

// allowOutput is the hookSpecificOutput allowing c, with an edited input.
func allowOutput(event, reason string, input json.RawMessage) hookSpecific {
	if event == eventPermissionRequest {
		return hookSpecific{HookEventName: event, Decision: &permissionDecision{Behavior: "allow", UpdatedInput: input}}
	}
	return hookSpecific{HookEventName: event, PermissionDecision: "allow", PermissionDecisionReason: reason, UpdatedInput: input}
}

// denyOutput is the hookSpecificOutput denying c, the reason said to the
// model.
func denyOutput(event, reason string) hookSpecific {
	if event == eventPermissionRequest {
		return hookSpecific{HookEventName: event, Decision: &permissionDecision{Behavior: "deny", Message: reason}}
	}
	return hookSpecific{HookEventName: event, PermissionDecision: "deny", PermissionDecisionReason: reason}
}

func marshal(s hookSpecific) []byte {
	b, err := json.Marshal(hookOutput{HookSpecificOutput: s})
	if err != nil {
		// Only an edited input that is not JSON could fail, and it was
		// checked; deny rather than answer nothing.
		b, _ = json.Marshal(hookOutput{HookSpecificOutput: denyOutput(s.HookEventName, "The approval gate could not encode its answer, so the call is denied.")})
	}
	return b
}
