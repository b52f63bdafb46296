package agenthooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"
	"unicode"

	"github.com/gobwas/glob"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/text"
)

// MetadataTool is the Metadata key under which a gated call's action holds
// the tool's name exactly as the agent sent it. The gate folds an action's
// Name to lower case, as policies match it; the metadata is part of the
// action hash, so an approval of a tool "Bash" is never one of "bash".
const MetadataTool = "agent.tool"

// DefaultMaxWait is Options.MaxWait's default: within the 30-second
// timeout the README's settings give the hook (Claude Code's own default
// for an http hook is far longer, 10 minutes).
const DefaultMaxWait = 25 * time.Second

// MaxBodyBytes bounds a hook request's body. A tool input larger than the
// gate's payload limit (approval.Limits) is denied with the reason.
const MaxBodyBytes = 8 << 20

// Rule says which tool calls go through the gate.
type Rule struct {
	// Tools is a glob over the tool's name, compared exactly, as the
	// agents' own matchers compare it: '*' matches any run of
	// characters, '?' one, '[abc]' and '{a,b}' as usual; "Bash",
	// "{Write,Edit}", "mcp__github__*". Required.
	Tools string
	// When, if set, gates a call the glob matched only when it returns
	// true; false lets later rules decide. An error (or a panic) gates
	// the call: the rule fails closed. input is the tool_input as sent.
	// InputMatches builds the common one. Defaults to nil: every
	// matched call is gated.
	When func(input json.RawMessage) (bool, error)
}

// InputMatches returns a Rule.When that is true when the input's string
// field (such as "command" for Bash, "file_path" for Write) matches re.
// An input that is not a JSON object, or whose field is present but not a
// string, is an error, which gates the call; an absent field does not
// match.
func InputMatches(field string, re interface{ MatchString(string) bool }) func(json.RawMessage) (bool, error) {
	return func(input json.RawMessage) (bool, error) {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(input, &obj); err != nil {
			return false, fmt.Errorf("tool_input is not a JSON object: %w", err)
		}
		raw, ok := obj[field]
		if !ok {
			return false, nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return false, fmt.Errorf("tool_input.%s is not a string", field)
		}
		return re.MatchString(s), nil
	}
}

// Options configure the handlers (Claude, Codex).
type Options struct {
	// Gate decides the gated calls. Required.
	Gate *approval.Gate
	// Rules say which calls are gated; the first that applies decides. A
	// call no rule gates gets no decision (see AllowUngated). At least
	// one is required.
	Rules []Rule
	// Authenticate names the caller of the hook, from the request: the
	// person (or machine) whose key the hook sends, such as a bearer
	// token the host maps to a developer. It becomes the action's
	// RequestedBy, and must be a valid identity (approval.CanonicalID).
	// An error, a panic or an invalid identity answers 401. Nothing in
	// the hook's body (session, cwd, transcript) names the requester: an
	// agent can write anything there. Required.
	Authenticate func(*http.Request) (string, error)
	// MaxWait bounds how long the handler holds a gated call open
	// waiting for people, before it answers deny with the request's ID
	// and review page. Keep it below the hook's timeout in the agent's
	// settings. Defaults to DefaultMaxWait.
	MaxWait time.Duration
	// AllowUngated answers allow for calls no rule gates, so the agent
	// skips its own permission prompt for them (Claude Code; Codex does
	// not honour allow on PreToolUse). Defaults to false: no decision,
	// and the agent's own permission rules apply, as if the hook were
	// not there.
	AllowUngated bool
	// ReviewURL, if set, returns the address of a request's review page,
	// for pending answers: with approvalhttp mounted under BASE, BASE +
	// approval.ReviewPath + id. Defaults to nil: no URL.
	ReviewURL func(requestID string) string
	// Logger receives the failures a call fails closed on. Defaults to
	// slog.Default().
	Logger *slog.Logger
}

// rule is a Rule with its compiled glob.
type rule struct {
	Rule
	tools *glob.Pattern
}

// handler is one agent's hook endpoint: the core, and the agent's format.
type handler struct {
	gate         *approval.Gate
	rules        []rule
	auth         func(*http.Request) (string, error)
	maxWait      time.Duration
	allowUngated bool
	reviewURL    func(string) string
	log          *slog.Logger
	format       format
}

// call is one tool call, as an agent's hook reports it.
type call struct {
	// Event is the hook event: eventPreToolUse or eventPermissionRequest.
	Event string
	// Tool is the tool's name, exactly as sent.
	Tool string
	// Input is the tool's input, the exact bytes sent.
	Input json.RawMessage
	// Session and Cwd are what the agent says of itself: shown to
	// reviewers, never trusted.
	Session, Cwd string
}

// The hook events the handlers answer.
const (
	eventPreToolUse        = "PreToolUse"
	eventPermissionRequest = "PermissionRequest"
)

// decision is the core's answer to a call, before an agent's format
// spells it.
type decision int

const (
	// noDecision: the agent's own permission flow decides.
	noDecision decision = iota
	// allow: run the call (with verdict.input if set).
	allow
	// deny: do not run it; verdict.reason tells the model why.
	deny
)

// verdict is the core's answer to one call.
type verdict struct {
	decision decision
	// reason is said to the model (deny) or the user (allow).
	reason string
	// input, with allow, is the reviewer's edited tool input, a JSON
	// object: run the call with it in place of the one sent.
	input json.RawMessage
}

// format is one agent's hook protocol: adding an agent is a format.
type format interface {
	// agent names the agent: the action's name prefix is agent + ":",
	// and its Provenance.Source is agent.
	agent() string
	// decode reads a hook request's body. An error answers 400.
	decode(body []byte) (call, error)
	// encode spells v as the response body for c; nil is an empty body
	// (no decision).
	encode(c call, v verdict) []byte
}

func newHandler(opts Options, f format) (*handler, error) {
	pkg := "agenthooks: "
	switch {
	case opts.Gate == nil:
		return nil, fmt.Errorf("%s%w: Options.Gate is nil", pkg, approval.ErrInvalidConfig)
	case len(opts.Rules) == 0:
		return nil, fmt.Errorf("%s%w: Options.Rules is empty, so no call would be gated (Tools: \"*\" gates every tool)", pkg, approval.ErrInvalidConfig)
	case opts.Authenticate == nil:
		return nil, fmt.Errorf("%s%w: Options.Authenticate is nil: the requester must be the authenticated caller of the hook", pkg, approval.ErrInvalidConfig)
	case opts.MaxWait < 0:
		return nil, fmt.Errorf("%s%w: Options.MaxWait %v is negative", pkg, approval.ErrInvalidConfig, opts.MaxWait)
	}
	h := &handler{gate: opts.Gate, auth: opts.Authenticate, maxWait: opts.MaxWait, allowUngated: opts.AllowUngated,
		reviewURL: opts.ReviewURL, log: opts.Logger, format: f}
	if h.maxWait == 0 {
		h.maxWait = DefaultMaxWait
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	for i, r := range opts.Rules {
		if r.Tools == "" {
			return nil, fmt.Errorf("%s%w: Rules[%d]: Tools is empty", pkg, approval.ErrInvalidConfig, i)
		}
		g, err := glob.Compile(r.Tools)
		if err != nil {
			return nil, fmt.Errorf("%s%w: Rules[%d]: Tools %q: %v", pkg, approval.ErrInvalidConfig, i, r.Tools, err)
		}
		h.rules = append(h.rules, rule{Rule: r, tools: g})
	}
	return h, nil
}

// ServeHTTP answers one hook request.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "agenthooks: POST a hook event", http.StatusMethodNotAllowed)
		return
	}
	by, err := h.authenticate(r)
	if err != nil {
		h.log.Warn("agenthooks: unauthenticated hook request", "agent", h.format.agent(), "remote", r.RemoteAddr, "err", err)
		w.Header().Set("WWW-Authenticate", `Bearer realm="approval hooks"`)
		http.Error(w, "agenthooks: unauthenticated", http.StatusUnauthorized)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		http.Error(w, "agenthooks: reading the body: "+err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	c, err := h.format.decode(body)
	if err != nil {
		http.Error(w, "agenthooks: "+err.Error(), http.StatusBadRequest)
		return
	}
	v, ok := h.decide(r.Context(), by, c)
	if !ok {
		return // the agent hung up: nobody reads an answer
	}
	out := h.format.encode(c, v)
	w.Header().Set("Cache-Control", "no-store")
	if out == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

// authenticate returns the canonical requester Options.Authenticate names.
func (h *handler) authenticate(r *http.Request) (string, error) {
	var by string
	if err := host("Authenticate", func() (err error) { by, err = h.auth(r); return err }); err != nil {
		return "", err
	}
	return approval.CanonicalID(by)
}

// decide runs c through the rules and the gate. ok is false when ctx
// ended first.
func (h *handler) decide(ctx context.Context, by string, c call) (v verdict, ok bool) {
	rl, err := h.match(c)
	if rl == nil {
		if h.allowUngated {
			return verdict{decision: allow}, true
		}
		return verdict{decision: noDecision}, true
	}
	if err != nil {
		h.log.Warn("agenthooks: a rule's When failed; the call is gated", "tool", c.Tool, "err", err)
	}
	if err := checkInput(c.Input); err != nil {
		return h.failed(c, err), true
	}
	agent := h.format.agent()
	msg := fmt.Sprintf("%s's %s asks to run %s", by, agent, text.Cut(c.Tool, 256))
	if c.Cwd != "" {
		msg += " in " + text.Cut(printable(c.Cwd), 1024) + " (the directory the agent reports)"
	}
	a := approval.Action{
		Name:        agent + ":" + c.Tool,
		RequestedBy: by,
		Metadata:    map[string]string{MetadataTool: c.Tool},
		Payload:     c.Input,
		Message:     msg,
		Provenance:  &approval.Provenance{Source: agent, CreatedBy: by, SourceID: text.Cut(printable(c.Session), approval.MaxIDBytes)},
	}
	var ran approval.Result
	res, err := approval.Do(ctx, h.gate, a, approval.DoOptions{Wait: h.maxWait}, func(_ context.Context, res approval.Result) error {
		ran = res
		return nil
	})
	if na := (*approval.NotApprovedError)(nil); errors.As(err, &na) {
		if errors.Is(err, approval.ErrPending) {
			return h.pending(c, na.Result), true
		}
		return refused(c, na.Result), true
	}
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return verdict{}, false
		}
		return h.failed(c, err), true
	}
	res = ran
	switch {
	case res.Status == approval.OutcomeModified:
		if err := checkInput(res.Payload); err != nil || len(bytes.TrimSpace(res.Payload)) == 0 {
			if err == nil {
				err = errors.New("it is empty")
			}
			return h.failed(c, fmt.Errorf("request %s: %w: %w; its approval is used up", res.RequestID, errBadEdit, err)), true
		}
		return verdict{decision: allow, input: res.Payload,
			reason: "Approved by people with an edited input (request " + res.RequestID + ")" + conditions(res)}, true
	case res.RequestID == "":
		// No policy matched: nobody approved anything, so the hook
		// leaves the call to the agent's own permission flow.
		if h.allowUngated {
			return verdict{decision: allow}, true
		}
		return verdict{decision: noDecision}, true
	}
	return verdict{decision: allow, reason: "Approved by people (request " + res.RequestID + ")" + conditions(res)}, true
}

// conditions is the approvers' conditions, said after an approval.
func conditions(res approval.Result) string {
	if len(res.Conditions) == 0 {
		return ""
	}
	return "; run it only within these conditions: " + strings.Join(res.Conditions, "; ")
}

// match returns the rule that gates c, or nil. Its error is When's, when
// that failed and the rule gates c for it.
func (h *handler) match(c call) (*rule, error) {
	for i := range h.rules {
		rl := &h.rules[i]
		if !rl.tools.Match(c.Tool) {
			continue
		}
		if rl.When == nil {
			return rl, nil
		}
		var on bool
		err := host("When", func() (err error) { on, err = rl.When(c.Input); return err })
		if err != nil || on {
			return rl, err
		}
	}
	return nil, nil
}

// pending is the answer to a call whose request still waits for people
// after MaxWait: deny, saying how to get it run.
func (h *handler) pending(c call, res approval.Result) verdict {
	var b strings.Builder
	b.WriteString("This call to " + c.Tool + " was not run: it needs approval by a person, and approval request " + res.RequestID + " is waiting for one.")
	if h.reviewURL != nil {
		var u string
		if err := host("ReviewURL", func() error { u = h.reviewURL(res.RequestID); return nil }); err != nil {
			h.log.Error("agenthooks: ReviewURL failed; the answer has no review link", "request", res.RequestID, "err", err)
		} else if u != "" {
			b.WriteString(" Review page: " + u + " .")
		}
	}
	b.WriteString(" Tell the user, and ask again after approval: the same call (the same tool with exactly the same input) will then be allowed, once. A changed call is a new request.")
	return verdict{decision: deny, reason: b.String()}
}

// refused is the answer to a call that was denied, timed out or was
// cancelled, or that already ran under its key.
func refused(c call, res approval.Result) verdict {
	var b strings.Builder
	switch res.Status {
	case approval.OutcomeTimedOut:
		b.WriteString("This call to " + c.Tool + " was not approved in time (request " + res.RequestID + ")")
	case approval.OutcomeCancelled:
		b.WriteString("The approval request " + res.RequestID + " for this call to " + c.Tool + " was withdrawn")
	default:
		b.WriteString("This call to " + c.Tool + " was denied (request " + res.RequestID + ")")
	}
	if res.Reason != "" {
		b.WriteString(": " + res.Reason)
	}
	b.WriteString(". It did not run.")
	if d := res.Denial; d != nil {
		b.WriteString(" Denial code " + d.Code + ", retry " + string(d.Retry) + ": ")
		switch d.Retry {
		case approval.RetryNever:
			b.WriteString("do not ask for this again, changed or not.")
		case approval.RetryChanged:
			b.WriteString("do not repeat this call as it is; a changed call may be approved.")
		default:
			b.WriteString("the same call may be asked for again later.")
		}
		if d.Hint != "" {
			b.WriteString(" Hint: " + d.Hint)
		}
	}
	return verdict{decision: deny, reason: b.String()}
}

// errBadEdit: the reviewer's edited payload cannot be a tool input.
var errBadEdit = errors.New("the reviewer's edited input cannot be the tool's input")

// failed is the answer to a call the gate could not decide: deny, fail
// closed. The model is told why only when its call, or a reviewer's edit
// of it, is at fault; the error may name the server's internals
// otherwise.
func (h *handler) failed(c call, err error) verdict {
	h.log.Error("agenthooks: the gate could not check a tool call; it is denied", "agent", h.format.agent(), "tool", c.Tool, "err", err)
	reason := "The approval gate could not check this call to " + c.Tool + ", so it is denied."
	if errors.Is(err, approval.ErrInvalidAction) || errors.Is(err, errBadEdit) {
		reason += " " + err.Error()
	} else {
		reason += " Tell the user if asking again fails too."
	}
	return verdict{decision: deny, reason: reason}
}

// host runs a hook of the host's, turning a panic into an error.
func host(what string, fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s panicked: %v\n%s", what, p, debug.Stack())
		}
	}()
	return fn()
}

// printable returns s with '-' in place of each control or format
// character.
func printable(s string) string {
	return strings.Map(func(c rune) rune {
		if unicode.IsControl(c) || unicode.Is(unicode.Cf, c) {
			return '-'
		}
		return c
	}, strings.ToValidUTF8(s, "\uFFFD"))
}
