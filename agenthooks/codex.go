package agenthooks

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// Codex returns the http.Handler of OpenAI Codex's hooks for the
// PreToolUse and PermissionRequest events, which a command hook posts with
// curl (Codex has no http hook type; see the package doc). It returns an
// error wrapping approval.ErrInvalidConfig if opts is not valid. The
// handler is safe for concurrent use.
func Codex(opts Options) (http.Handler, error) {
	return newHandler(opts, codex{})
}

// codex is Codex's hook protocol (https://developers.openai.com/codex/hooks):
// Claude Code's input and output shapes, of which Codex honours less. On
// PreToolUse it enforces deny only (allow, ask and updatedInput are
// ignored), and on PermissionRequest allow and deny, refusing
// updatedInput.
type codex struct{}

func (codex) agent() string { return "codex" }

func (codex) decode(body []byte) (call, error) { return decodeHookInput(body) }

func (codex) encode(c call, v verdict) []byte {
	switch {
	case v.decision == noDecision:
		return nil
	case v.decision == allow && v.input != nil:
		// Codex cannot run a call with an edited input: deny the call as
		// sent, and show the model what was approved.
		var in bytes.Buffer
		if json.Compact(&in, v.input) != nil || in.Len() > 4<<10 {
			in.Reset()
			in.WriteString("(too long to quote)")
		}
		return marshal(denyOutput(c.Event, v.reason+", not as sent: a reviewer approved only this edited input to "+c.Tool+": "+in.String()+
			". Codex cannot run a hook's edited input, so the call as sent is denied and the approval is used up. Calling "+c.Tool+" with the edited input is a new request."))
	case v.decision == allow && c.Event == eventPreToolUse:
		// Codex ignores allow on PreToolUse: answer no decision, and
		// Codex's own approval flow goes on.
		return nil
	case v.decision == allow:
		return marshal(allowOutput(c.Event, v.reason, nil))
	}
	return marshal(denyOutput(c.Event, v.reason))
}
