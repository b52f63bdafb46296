// Package agenthooks serves coding agents' permission hooks as
// http.Handlers that ask an approval.Gate: before Claude Code or OpenAI
// Codex runs a tool call a rule gates, people approve that exact call.
//
//	h, err := agenthooks.Claude(agenthooks.Options{
//		Gate:         gate,
//		Authenticate: hookKeys.Developer, // func(*http.Request) (string, error)
//		Rules: []agenthooks.Rule{
//			{Tools: "Bash", When: agenthooks.InputMatches("command", regexp.MustCompile(`rm -rf|git push --force`))},
//			{Tools: "{Write,Edit}"},
//		},
//		ReviewURL: func(id string) string { return "https://ops.example.com/review" + approval.ReviewPath + id },
//	})
//	if err != nil { ... }
//	mux.Handle("/hooks/claude", h)
//
// # What is gated
//
// The handlers answer the PreToolUse and PermissionRequest hook events
// (input fields hook_event_name, tool_name, tool_input, session_id, cwd).
// The first Rule whose Tools glob matches the tool's name exactly (no
// case folding, as the agents' own matchers), and whose When (if set)
// returns true or an error, gates the call. A gated call is the action
//
//	Name:        "claude:" + tool name, or "codex:" + tool name (the gate folds it to lower case, as policies match it)
//	RequestedBy: the caller Options.Authenticate names: never a field of the body
//	Metadata:    MetadataTool ("agent.tool"): the tool name exactly as sent
//	Payload:     tool_input, the exact bytes sent
//	Message:     who asks to run which tool, and the cwd the agent reports
//	Provenance:  Source "claude" or "codex", SourceID the session_id the agent reports
//
// so a policy such as Match: approval.Name("claude:bash") decides who
// approves Claude Code's Bash calls, and approval.Name("*:bash") both
// agents'. An approval binds the exact tool name and input: key order and
// white space aside, any change of input is a request of its own. A
// tool_input that is not a JSON object, or holds a key twice in one
// object, is denied before anyone is asked. The session and cwd are shown
// to reviewers but bound to nothing and trusted for nothing: the agent
// writes them.
//
// # Answers
//
//   - A call no rule gates, or a gated call no policy matches: no
//     decision (an empty 200), and the agent's own permission rules apply
//     as if the hook were not there; with Options.AllowUngated, allow.
//   - Approved by people: allow. With an input a reviewer edited
//     (approval.OutcomeModified), allow with updatedInput, the edited input
//     (Claude Code). The approval is used up: the next identical call is
//     a new request.
//   - Pending: the handler waits up to Options.MaxWait (approval.Do, which
//     waits with Gate.Wait) and answers as above if people decide in time;
//     else deny, with the request ID, its review page (Options.ReviewURL),
//     and "ask again after approval": the identical call, once approved,
//     is allowed once (Guard finds the same request and consumes its
//     approval).
//   - Denied, timed out or cancelled: deny, with the reviewer's reason and
//     the structured denial (code, retry never, changed or later, hint),
//     so the model learns whether asking again can help.
//   - The gate could not decide (a store failure, a panic in a rule's When,
//     an input refused as above): deny. Failures never allow.
//
// In Claude Code's format a PreToolUse answer is
// {"hookSpecificOutput": {"hookEventName": "PreToolUse",
// "permissionDecision": "allow"|"deny", "permissionDecisionReason": ...,
// "updatedInput"?: {...}}}, and a PermissionRequest answer
// {"hookSpecificOutput": {"hookEventName": "PermissionRequest",
// "decision": {"behavior": "allow"|"deny", "updatedInput"?: ..., "message"?: ...}}}.
//
// # Authentication and failures
//
// Options.Authenticate names the requester from the HTTP request: a key
// per developer (or machine) the agent sends in a header, such as
// "Authorization: Bearer $APPROVAL_HOOK_KEY". A request it does not name
// is answered 401 and nothing is asked. Claude Code treats a non-2xx
// answer, a connection failure and a timeout as a non-blocking error: the
// call goes ahead. Configure the hook with "onFailure": "block" (Claude
// Code 2.1.295 and later), which blocks the call instead; the README has
// the settings. Codex has no http hook type: a command hook posts the
// input with curl, and "|| exit 2" makes a failure block the call.
//
// # Codex
//
// Codex speaks Claude Code's shapes but honours less of them: on
// PreToolUse only deny (allow, ask and updatedInput are ignored), on
// PermissionRequest allow and deny (updatedInput refused). So Codex's
// handler answers an approved PreToolUse call with no decision (Codex's
// own approval flow goes on), and a call approved with an edited input
// with deny, quoting the edited input: the approval is used up, and the
// edited call is a new request.
//
// # Adding an agent
//
// Each agent is a format: how to decode its hook input into a call, and
// how to spell the core's verdict (no decision, allow with an optional
// edited input, deny with a reason) in its output. claude.go and codex.go
// are the two; a third is one small file.
package agenthooks
