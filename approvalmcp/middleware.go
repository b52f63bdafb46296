package approvalmcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"
	"unicode"

	"github.com/signoff/approval/internal/text"

	"github.com/gobwas/glob"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/signoff/approval"
)

// ActionPrefix begins the name of every gated call's action: the action of
// a call to tool drop_table is "mcp:tool:drop_table".
const ActionPrefix = "mcp:tool:"

// MetadataTool is the Metadata key under which a gated call's action holds
// the tool's name exactly as called. The action's Name is folded to lower
// case, as policies match it; the metadata is part of the action hash, so
// an approval of drop_table is never one of DROP_TABLE, a tool of its own.
const MetadataTool = "mcp.tool"

// DefaultWait is Block's bound when Rule.Wait is zero.
const DefaultWait = 30 * time.Second

// DefaultRequester is the RequestedBy of a call whose client gave no
// usable name, with the default Options.Identity.
const DefaultRequester = "mcp-client"

// methodCallTool is the MCP method the middleware gates.
const methodCallTool = "tools/call"

// Mode says what a gated call does while its request waits for people.
type Mode int

const (
	// ReturnPending answers a call whose request is pending at once, with
	// a pending result; the model calls again later. It is the zero Mode.
	ReturnPending Mode = iota
	// Block holds the call open until people decide, up to Rule.Wait, and
	// then answers as ReturnPending would. Keep Wait below the client's
	// own timeout for a tool call.
	Block
)

// String returns "return-pending" or "block".
func (m Mode) String() string {
	switch m {
	case ReturnPending:
		return "return-pending"
	case Block:
		return "block"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Rule says which tool calls go through the gate, and how.
type Rule struct {
	// Tools is a glob over the tool's name, as approval.Name has it: '*'
	// matches any run of characters, '?' one, '[abc]' and '{a,b}' as
	// usual; "drop_*", "{delete,drop}_*", "*". Names and the pattern are
	// compared in lower case. The pattern must be printable ASCII without
	// spaces. Required.
	Tools string
	// When, if set, gates a call the glob matched only when it returns
	// true; false lets later rules decide. An error (or a panic) gates
	// the call: the rule fails closed. args are the call's arguments as
	// received. Defaults to nil: every matched call is gated.
	When func(ctx context.Context, req *mcp.CallToolRequest, args json.RawMessage) (bool, error)
	// Mode is ReturnPending (the zero value) or Block.
	Mode Mode
	// Wait bounds how long Block holds a call open. It must be zero for
	// ReturnPending. Defaults to DefaultWait with Block.
	Wait time.Duration
	// Risk, if set, assesses the call from its arguments; it becomes the
	// action's Risk, which policies match with approval.RiskAtLeast. A
	// panic in it fails the call closed. Defaults to nil: approval.RiskNone.
	Risk func(args json.RawMessage) approval.Risk
	// AutoApproveBelow runs a call whose assessed Risk is below it (and not
	// approval.RiskNone, which means not assessed) without asking the gate:
	// no request, no audit event. It needs Risk. Defaults to
	// approval.RiskNone: every gated call asks the gate.
	AutoApproveBelow approval.Risk
	// Tags label the action (approval.TagAny and the like match them).
	// Each must be a valid tag (see approval.CanonicalID). Defaults to none.
	Tags []string
	// ConfirmAtClient asks the person at the client (Options.ClientApprover
	// names them) to approve or deny a call whose request is pending,
	// through the client (MCP elicitation), before the call answers as Mode
	// says. The answer is that person's vote, with every check of
	// approval.Gate.Decide: they must be an approver the policies name, and
	// requester segregation holds unless the policy has AllowSelfApproval.
	// A client that cannot elicit, or a person who declines, leaves the
	// request pending. Meant for setups where the person at the client is
	// the approver; see "Confirming at the client" in the package doc for
	// what the answer proves. Needs Options.ClientApprover. Defaults to
	// false: nobody is asked through the client.
	ConfirmAtClient bool
}

// Options configure Middleware.
type Options struct {
	// Gate decides the gated calls. Required.
	Gate *approval.Gate
	// Rules say which calls are gated; the first that applies to a call
	// decides (see the package doc). At least one is required.
	Rules []Rule
	// Identity names who asks: requestedBy (the client, agent or service:
	// the action's RequestedBy) and, if known, initiator (the person on
	// whose behalf the agent works: the action's Initiator, whom requester
	// segregation keeps from approving). Both must be valid identities
	// (approval.CanonicalID). An error, or a panic, fails the call closed.
	// Derive them from what the transport authenticated, such as
	// req.Extra.TokenInfo behind the SDK's bearer-token middleware.
	// Defaults to the client's name as it gave it (the session's
	// InitializeParams.ClientInfo, or the request's client info from
	// protocol 2026-07-28 on), white space replaced by '-', or
	// DefaultRequester; no initiator. A client can call itself anything,
	// so the default names a client but proves nothing.
	Identity func(ctx context.Context, req *mcp.CallToolRequest) (requestedBy, initiator string, err error)
	// ReviewURL, if set, returns the address of the review page of a
	// request, for pending results: with approvalhttp mounted under
	// BASE, BASE + approval.ReviewPath + id. Defaults to nil: no URL.
	ReviewURL func(requestID string) string
	// ClientApprover names the person at the client of a call, whose
	// answer counts as their vote with Rule.ConfirmAtClient: an approver
	// ID as the gate's policies and Directory know it (approval.CanonicalID).
	// "" asks nobody; an error (or a panic) is logged and asks nobody.
	// Derive it from what the transport authenticated (req.Extra.TokenInfo
	// behind the SDK's bearer-token middleware), never from what the
	// client says about itself: whoever holds the session answers as this
	// person. Required if a rule has ConfirmAtClient; defaults to nil.
	ClientApprover func(ctx context.Context, req *mcp.CallToolRequest) (string, error)
	// Logger receives the failures a call fails closed on (a store error,
	// a panic in a hook). Defaults to slog.Default().
	Logger *slog.Logger
}

// rule is a Rule with its compiled glob.
type rule struct {
	Rule
	tools *glob.Pattern
	wait  time.Duration
}

// gated is the compiled Options.
type gated struct {
	gate      *approval.Gate
	rules     []rule
	identity  func(context.Context, *mcp.CallToolRequest) (string, string, error)
	approver  func(context.Context, *mcp.CallToolRequest) (string, error)
	reviewURL func(string) string
	log       *slog.Logger
}

// Middleware returns receiving middleware for an mcp.Server
// (Server.AddReceivingMiddleware) that gates tools/call as the package doc
// describes and passes every other request on untouched. Add it after any
// middleware that authenticates the caller, so that Identity sees it. It
// returns an error wrapping approval.ErrInvalidConfig if opts is not
// valid. The middleware is safe for concurrent use; one may serve any
// number of servers and sessions.
func Middleware(opts Options) (mcp.Middleware, error) {
	g, err := compile(opts)
	if err != nil {
		return nil, err
	}
	return g.wrap, nil
}

func compile(opts Options) (*gated, error) {
	if opts.Gate == nil {
		return nil, fmt.Errorf("approvalmcp: %w: Options.Gate is nil", approval.ErrInvalidConfig)
	}
	if len(opts.Rules) == 0 {
		return nil, fmt.Errorf("approvalmcp: %w: Options.Rules is empty, so no call would be gated (Tools: \"*\" gates every tool)", approval.ErrInvalidConfig)
	}
	g := &gated{gate: opts.Gate, identity: opts.Identity, approver: opts.ClientApprover, reviewURL: opts.ReviewURL, log: opts.Logger}
	if g.identity == nil {
		g.identity = defaultIdentity
	}
	if g.log == nil {
		g.log = slog.Default()
	}
	for i, r := range opts.Rules {
		cr, err := compileRule(r)
		if err != nil {
			return nil, fmt.Errorf("approvalmcp: %w: Rules[%d]: %w", approval.ErrInvalidConfig, i, err)
		}
		if r.ConfirmAtClient && g.approver == nil {
			return nil, fmt.Errorf("approvalmcp: %w: Rules[%d]: ConfirmAtClient needs Options.ClientApprover, to name the person at the client", approval.ErrInvalidConfig, i)
		}
		g.rules = append(g.rules, cr)
	}
	return g, nil
}

func compileRule(r Rule) (rule, error) {
	if r.Tools == "" {
		return rule{}, errors.New("Tools is empty")
	}
	for i := 0; i < len(r.Tools); i++ {
		if c := r.Tools[i]; c <= ' ' || c >= 0x7f {
			return rule{}, fmt.Errorf("Tools %q must be printable ASCII without spaces; byte %d is %q", r.Tools, i, c)
		}
	}
	p, err := glob.Compile(strings.ToLower(r.Tools))
	if err != nil {
		return rule{}, fmt.Errorf("Tools %q: %v", r.Tools, err)
	}
	cr := rule{Rule: r, tools: p, wait: r.Wait}
	switch r.Mode {
	case ReturnPending:
		if r.Wait != 0 {
			return rule{}, fmt.Errorf("Wait is %v, but it applies to Block only", r.Wait)
		}
	case Block:
		if r.Wait < 0 {
			return rule{}, fmt.Errorf("Wait %v is negative", r.Wait)
		}
		if r.Wait == 0 {
			cr.wait = DefaultWait
		}
	default:
		return rule{}, fmt.Errorf("unknown %v (want ReturnPending or Block)", r.Mode)
	}
	if r.AutoApproveBelow < approval.RiskNone || r.AutoApproveBelow > approval.RiskCritical {
		return rule{}, fmt.Errorf("AutoApproveBelow: unknown risk level %d", int(r.AutoApproveBelow))
	}
	if r.AutoApproveBelow != approval.RiskNone && r.Risk == nil {
		return rule{}, errors.New("AutoApproveBelow needs Risk to assess the call")
	}
	cr.Tags = append([]string(nil), r.Tags...)
	for _, t := range cr.Tags {
		if _, err := approval.CanonicalID(t); err != nil {
			return rule{}, fmt.Errorf("tag %q: %v", t, err)
		}
	}
	return cr, nil
}

// wrap is the mcp.Middleware.
func (g *gated) wrap(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		if method != methodCallTool {
			return next(ctx, method, req)
		}
		r, ok := req.(*mcp.CallToolRequest)
		if !ok {
			// Not the SDK's shape for tools/call: nothing here could tell
			// which tool would run, so none does.
			return nil, fmt.Errorf("approvalmcp: %s: unexpected request type %T", method, req)
		}
		if r.Params == nil {
			return next(ctx, method, req) // no tool to run; the SDK answers
		}
		rl, err := g.match(ctx, r)
		if rl == nil {
			return next(ctx, method, req)
		}
		if err != nil {
			g.log.Warn("approvalmcp: a rule's When failed; the call is gated", "tool", r.Params.Name, "err", err)
		}
		return g.guard(ctx, next, method, r, rl)
	}
}

// match returns the rule that gates r, or nil. Its error is When's, when
// that failed and the rule gates r for it.
func (g *gated) match(ctx context.Context, r *mcp.CallToolRequest) (*rule, error) {
	name := foldASCII(r.Params.Name)
	for i := range g.rules {
		rl := &g.rules[i]
		if !rl.tools.Match(name) {
			continue
		}
		if rl.When == nil {
			return rl, nil
		}
		var on bool
		err := host("When", func() (err error) {
			on, err = rl.When(ctx, r, r.Params.Arguments)
			return err
		})
		if err != nil || on {
			return rl, err
		}
	}
	return nil, nil
}

// foldASCII lower-cases the ASCII letters of s, allocating only if it has
// upper-case ones.
func foldASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// errBadEdit: the approvers' edited payload cannot be a tool's arguments.
var errBadEdit = errors.New("the reviewer's edited arguments cannot be the tool's arguments")

// guard runs a gated call through approval.Do.
func (g *gated) guard(ctx context.Context, next mcp.MethodHandler, method string, r *mcp.CallToolRequest, rl *rule) (mcp.Result, error) {
	tool := r.Params.Name
	args := r.Params.Arguments
	if err := checkArgs(args); err != nil {
		return g.failed(tool, err), nil
	}
	var risk approval.Risk
	if rl.Risk != nil {
		if err := host("Risk", func() error { risk = rl.Risk(args); return nil }); err != nil {
			return g.failed(tool, err), nil
		}
	}
	if rl.AutoApproveBelow != approval.RiskNone && risk != approval.RiskNone && risk < rl.AutoApproveBelow {
		return next(ctx, method, r)
	}
	var by, initiator string
	err := host("Identity", func() (err error) {
		by, initiator, err = g.identity(ctx, r)
		return err
	})
	if err != nil {
		return g.failed(tool, fmt.Errorf("identifying the caller: %w", err)), nil
	}
	client := text.Cut(printable(clientName(r), false), approval.MaxIDBytes)
	var session string
	if r.Session != nil {
		session = r.Session.ID()
	}
	a := approval.Action{
		// The gate folds Name to lower case; the metadata binds the tool
		// that runs, byte for byte.
		Name:        ActionPrefix + tool,
		RequestedBy: by,
		Initiator:   initiator,
		Risk:        risk,
		Tags:        rl.Tags,
		Metadata:    map[string]string{MetadataTool: tool},
		Payload:     payload(args),
		Message:     fmt.Sprintf("%s calls the MCP tool %s", by, text.Cut(tool, 256)),
		Provenance:  &approval.Provenance{Source: "mcp", CreatedBy: client, SourceID: session},
	}
	c := &gatedCall{next: next, method: method, r: r}
	if rl.ConfirmAtClient {
		return g.confirm(ctx, c, rl, a)
	}
	res, err := g.run(ctx, c, a, rl.waitFor())
	return g.respond(ctx, c, res, err)
}

// gatedCall is one gated tools/call on its way to the tool.
type gatedCall struct {
	next   mcp.MethodHandler
	method string
	// r is the call as the tool receives it (without this package's
	// input response, when it asked the client).
	r *mcp.CallToolRequest
	// ran is set once the tool ran, with its result in out and outErr.
	ran    bool
	out    mcp.Result
	outErr error
}

// run runs c through approval.Do, waiting up to wait for people.
func (g *gated) run(ctx context.Context, c *gatedCall, a approval.Action, wait time.Duration) (approval.Result, error) {
	return approval.Do(ctx, g.gate, a, approval.DoOptions{Wait: wait}, func(ctx context.Context, res approval.Result) error {
		call := c.r
		if res.Status == approval.OutcomeModified {
			if len(bytes.TrimSpace(res.Payload)) == 0 {
				return fmt.Errorf("%w: they are empty", errBadEdit)
			}
			if err := checkArgs(res.Payload); err != nil {
				return fmt.Errorf("%w: %w", errBadEdit, err)
			}
			p := *c.r.Params
			p.Arguments = json.RawMessage(res.Payload)
			cr := *c.r
			cr.Params = &p
			call = &cr
		}
		c.ran = true
		c.out, c.outErr = c.next(context.WithValue(ctx, resultKey{}, res), c.method, call)
		return nil
	})
}

// respond is the answer to c, once run returned res and err.
func (g *gated) respond(ctx context.Context, c *gatedCall, res approval.Result, err error) (mcp.Result, error) {
	tool := c.r.Params.Name
	if c.ran {
		return decorate(tool, c.out, res), c.outErr
	}
	if na := (*approval.NotApprovedError)(nil); errors.As(err, &na) {
		if errors.Is(err, approval.ErrPending) {
			return g.pending(tool, na.Result), nil
		}
		return refused(tool, na.Result), nil
	}
	switch {
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		// The client is gone (or cancelled the call): nobody reads a
		// result, and the request stays as it is.
		return nil, err
	case errors.Is(err, errBadEdit):
		err = fmt.Errorf("request %s: %w; its approval is used up", res.RequestID, err)
	}
	return g.failed(tool, err), nil
}

// waitFor is the DoOptions.Wait of a call the rule gates.
func (rl *rule) waitFor() time.Duration {
	if rl.Mode == Block {
		return rl.wait
	}
	return 0
}

type resultKey struct{}

// ResultFromContext returns the approval a gated call runs on, from the
// context the middleware passes to the tool handler: its RequestID,
// Conditions (run within them), Artifact (the signed evidence), and
// Payload with approval.OutcomeModified (the arguments the tool receives).
// ok is false for a call that was not gated, or ran below its rule's
// AutoApproveBelow; a gated call no policy matched has ok and no RequestID.
func ResultFromContext(ctx context.Context) (res approval.Result, ok bool) {
	res, ok = ctx.Value(resultKey{}).(approval.Result)
	return res, ok
}

// defaultIdentity is Options.Identity's default.
func defaultIdentity(_ context.Context, r *mcp.CallToolRequest) (string, string, error) {
	name := printable(clientName(r), true)
	if id, err := approval.CanonicalID(text.Cut(name, approval.MaxIDBytes)); err == nil {
		return id, "", nil
	}
	return DefaultRequester, "", nil
}

// clientName is the name the client gave: the session's, from its
// initialize request, or else the request's own client info.
func clientName(r *mcp.CallToolRequest) string {
	if r.Session != nil {
		if p := r.Session.InitializeParams(); p != nil && p.ClientInfo != nil && p.ClientInfo.Name != "" {
			return p.ClientInfo.Name
		}
	}
	if ci := r.ClientInfo(); ci != nil {
		return ci.Name
	}
	return ""
}

// printable returns s as valid UTF-8 with '-' in place of each control
// or format character, and of each space if space is set.
func printable(s string, space bool) string {
	return strings.Map(func(c rune) rune {
		if unicode.IsControl(c) || unicode.Is(unicode.Cf, c) || space && unicode.IsSpace(c) {
			return '-'
		}
		return c
	}, s)
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
