package approvalmcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/text"
)

// ClientVoteReason begins the Reason of every vote cast by the person at
// the client (Rule.ConfirmAtClient), as the request's vote and the audit
// trail's decision event keep it: "answered at the MCP client NAME
// (session ID)", then ": " and the person's own reason if they gave one.
const ClientVoteReason = "answered at the MCP client"

// ConfirmKey is the key of the question in the InputRequests of an
// input-required result (protocol 2026-07-28 and later), and of its answer
// in the retried call's InputResponses.
const ConfirmKey = MetaKey + "/confirm"

// confirmStatePrefix begins the RequestState of the question, followed by the
// JSON of a confirmState.
const confirmStatePrefix = ConfirmKey + " "

// multiRoundTripVersion is the first protocol version in which a server
// asks the client for input in its result (multi-round-trip requests), and
// may no longer send it an elicitation request of its own.
const multiRoundTripVersion = "2026-07-28"

// maxShownArgs bounds the arguments a question shows. A call with more is
// not asked at the client: its person would not see all that the vote
// binds.
const maxShownArgs = 8 << 10

// maxClientReason bounds the reason the person at the client gives.
const maxClientReason = 1 << 10

// confirmTokenTTL is the life of the token a client vote is cast with: it
// is issued and used at once, in process.
const confirmTokenTTL = time.Minute

// confirmSchema is the form the person at the client fills in.
var confirmSchema = json.RawMessage(`{"type":"object","properties":{` +
	`"decision":{"type":"string","title":"Decision","enum":["approve","deny"],"description":"approve: this exact call may run; deny: it must not"},` +
	`"reason":{"type":"string","title":"Reason","description":"Optional; kept with your vote","maxLength":1024}},` +
	`"required":["decision"]}`)

// confirmState is what the RequestState of a question carries to the
// retry: the request asked about and the action hash shown. The client
// may change it, as it may answer anything: it only says which question
// the answer is for, and the gate refuses a vote on a hash the request
// does not bind.
type confirmState struct {
	Request    string `json:"request"`
	ActionHash string `json:"action_hash"`
}

// clientAnswer is the person's answer: a verdict, or none (declined,
// cancelled, or no choice made).
type clientAnswer struct {
	verdict approval.Verdict
	reason  string
}

// confirm runs a call whose rule has ConfirmAtClient: asked once, a
// pending request is put to the person at the client, and their answer is
// cast as their vote before the call answers as the rule's Mode says.
func (g *gated) confirm(ctx context.Context, c *gatedCall, rl *rule, a approval.Action) (mcp.Result, error) {
	st, ans, replied := takeAnswer(c)
	res, err := g.run(ctx, c, a, 0)
	if c.ran || !errors.Is(err, approval.ErrPending) {
		return g.respond(ctx, c, res, err)
	}
	id := res.RequestID
	switch {
	case replied:
		// The retry of a call the client was asked about: never ask again
		// in this round, or a client would loop.
		if st == nil || st.Request != id {
			g.log.Warn("approvalmcp: an answer from the client names no question of this call's request; not counted", "tool", c.r.Params.Name, "request", id)
			break
		}
		g.vote(ctx, c.r, id, st.ActionHash, ans)
	default:
		q, ok := g.question(ctx, c.r, id, a.RequestedBy)
		if !ok {
			break
		}
		if multiRoundTrip(c.r) {
			return inputRequired(q), nil
		}
		got, err := elicit(ctx, c.r.Session, q.params)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			g.log.Warn("approvalmcp: asking the person at the client failed; the request stays pending", "tool", c.r.Params.Name, "request", id, "err", err)
			break
		}
		g.vote(ctx, c.r, id, q.state.ActionHash, got)
	}
	res, err = g.run(ctx, c, a, rl.waitFor())
	return g.respond(ctx, c, res, err)
}

// takeAnswer removes this package's answer and state from the call the
// tool receives, and returns them: replied if the call carries an answer
// under ConfirmKey, st if its state is this package's.
func takeAnswer(c *gatedCall) (st *confirmState, ans clientAnswer, replied bool) {
	p := c.r.Params
	resp, replied := p.InputResponses[ConfirmKey]
	state, ours := strings.CutPrefix(p.RequestState, confirmStatePrefix)
	if !replied && !ours {
		return nil, clientAnswer{}, false
	}
	cp := *p
	if replied {
		cp.InputResponses = make(mcp.InputResponseMap, len(p.InputResponses)-1)
		for k, v := range p.InputResponses {
			if k != ConfirmKey {
				cp.InputResponses[k] = v
			}
		}
		if len(cp.InputResponses) == 0 {
			cp.InputResponses = nil
		}
		if er, ok := resp.(*mcp.ElicitResult); ok {
			ans = answerOf(er)
		}
	}
	if ours {
		cp.RequestState = ""
		var s confirmState
		if json.Unmarshal([]byte(state), &s) == nil {
			st = &s
		}
	}
	cr := *c.r
	cr.Params = &cp
	c.r = &cr
	return st, ans, replied
}

// answerOf reads the person's answer from the form they submitted.
func answerOf(er *mcp.ElicitResult) clientAnswer {
	if er == nil || er.Action != "accept" {
		return clientAnswer{}
	}
	var v approval.Verdict
	switch d, _ := er.Content["decision"].(string); d {
	case "approve":
		v = approval.VerdictApprove
	case "deny":
		v = approval.VerdictDeny
	default:
		return clientAnswer{}
	}
	reason, _ := er.Content["reason"].(string)
	return clientAnswer{verdict: v, reason: text.Cut(printable(reason, false), maxClientReason)}
}

// clientQuestion is a question to the person at the client.
type clientQuestion struct {
	params *mcp.ElicitParams
	state  confirmState
}

// question returns the question to put to the person at the client of r
// about pending request id, or false if there is none to ask: the client
// cannot elicit, no person is named, or the arguments are too long to
// show, or the person voted on the request already.
func (g *gated) question(ctx context.Context, r *mcp.CallToolRequest, id, requestedBy string) (clientQuestion, bool) {
	if !canElicit(r) {
		return clientQuestion{}, false
	}
	person, err := g.clientApprover(ctx, r)
	if err != nil || person == "" {
		if err != nil {
			g.log.Warn("approvalmcp: ClientApprover failed; nobody is asked at the client", "tool", r.Params.Name, "request", id, "err", err)
		}
		return clientQuestion{}, false
	}
	req, err := g.gate.Get(ctx, id)
	if err != nil {
		g.log.Warn("approvalmcp: reading the request to ask at the client failed; nobody is asked", "request", id, "err", err)
		return clientQuestion{}, false
	}
	for _, v := range req.Votes {
		if strings.EqualFold(v.Approver, person) {
			return clientQuestion{}, false // asked before, and answered
		}
	}
	// What the vote binds: the payload and hash a reviewer's edit put in
	// place of the call's, if any.
	args, hash := req.Action.Payload, req.ActionHash
	if req.Edit != nil {
		args, hash = req.Edit.Payload, req.Edit.ActionHash
	}
	shown, ok := showJSON(args)
	if !ok {
		g.log.Info("approvalmcp: the arguments are too long to show at the client; nobody is asked", "request", id)
		return clientQuestion{}, false
	}
	var b strings.Builder
	b.WriteString("Approve this tool call? Your answer is recorded as the vote of " + person + " on approval request " + id + ".\n\n")
	b.WriteString("Tool: " + printable(r.Params.Name, false) + "\n")
	if req.Edit != nil {
		b.WriteString("Arguments (as " + req.Edit.By + " edited them): " + shown + "\n")
	} else {
		b.WriteString("Arguments: " + shown + "\n")
	}
	b.WriteString("Requested by: " + requestedBy + "\n")
	b.WriteString("Action hash: " + hash + "\n\n")
	b.WriteString("Approve only if you mean this exact call to run. It runs once the request has every approval it needs; yours may be enough.")
	return clientQuestion{
		params: &mcp.ElicitParams{Mode: "form", Message: b.String(), RequestedSchema: confirmSchema},
		state:  confirmState{Request: id, ActionHash: hash},
	}, true
}

// clientApprover is Options.ClientApprover, with its answer checked.
func (g *gated) clientApprover(ctx context.Context, r *mcp.CallToolRequest) (string, error) {
	var person string
	err := host("ClientApprover", func() (err error) {
		person, err = g.approver(ctx, r)
		return err
	})
	if err != nil || person == "" {
		return "", err
	}
	return approval.CanonicalID(person)
}

// vote casts the person's answer on request id as their vote, with the
// action hash they were shown. A vote the gate refuses (segregation, an
// approver the policies do not name, a changed action) is audited by the
// gate, logged here, and leaves the request as it was.
func (g *gated) vote(ctx context.Context, r *mcp.CallToolRequest, id, hash string, ans clientAnswer) {
	if ans.verdict == "" {
		g.log.Info("approvalmcp: the person at the client gave no verdict; the request stays pending", "request", id)
		return
	}
	person, err := g.clientApprover(ctx, r)
	if err != nil || person == "" {
		g.log.Warn("approvalmcp: no person for the answer at the client; not counted", "request", id, "err", err)
		return
	}
	tok, err := g.gate.IssueToken(id, person, ans.verdict, confirmTokenTTL)
	if err != nil {
		g.log.Error("approvalmcp: could not issue the token for the answer at the client; not counted", "request", id, "err", err)
		return
	}
	reason := clientVoteReason(r)
	if ans.reason != "" {
		reason += ": " + ans.reason
	}
	if _, err := g.gate.Decide(ctx, id, approval.Decision{Token: tok, Verdict: ans.verdict, Reason: reason, ActionHash: hash}); err != nil {
		g.log.Warn("approvalmcp: the gate refused the answer at the client; the request stays as it was", "request", id, "approver", person, "err", err)
	}
}

// clientVoteReason is the provenance a client vote's Reason begins with.
func clientVoteReason(r *mcp.CallToolRequest) string {
	s := ClientVoteReason
	if name := text.Cut(printable(clientName(r), false), approval.MaxIDBytes); name != "" {
		s += " " + fmt.Sprintf("%q", name)
	}
	if r.Session != nil {
		if id := text.Cut(printable(r.Session.ID(), false), 256); id != "" {
			s += " (session " + id + ")"
		}
	}
	return s
}

// canElicit reports whether r's client takes form elicitation: it
// declared the capability, and form mode (its default) among its modes.
func canElicit(r *mcp.CallToolRequest) bool {
	caps := r.ClientCapabilities()
	if caps == nil || caps.Elicitation == nil {
		return false
	}
	return caps.Elicitation.Form != nil || caps.Elicitation.URL == nil
}

// multiRoundTrip reports whether r's protocol asks for input in the
// result (2026-07-28 and later; the SDK's default without a version)
// rather than in a request to the client.
func multiRoundTrip(r *mcp.CallToolRequest) bool {
	v := r.ProtocolVersion()
	return v == "" || v >= multiRoundTripVersion
}

// elicit asks the question in an elicitation request of the server's, as
// earlier protocols do.
func elicit(ctx context.Context, ss *mcp.ServerSession, p *mcp.ElicitParams) (clientAnswer, error) {
	if ss == nil {
		return clientAnswer{}, errors.New("the call has no session")
	}
	er, err := ss.Elicit(ctx, p)
	if err != nil {
		return clientAnswer{}, err
	}
	return answerOf(er), nil
}

// inputRequired is the result asking the client q (multi-round-trip
// requests): the client retries the call with the answer.
func inputRequired(q clientQuestion) mcp.Result {
	st, _ := json.Marshal(q.state) // strings only: cannot fail
	return inputRequiredResult{&mcp.CallToolResult{
		Content:       []mcp.Content{},
		InputRequests: mcp.InputRequestMap{ConfirmKey: q.params},
		RequestState:  confirmStatePrefix + string(st),
	}}
}

// inputRequiredResult is a tools/call result that asks the client for
// input. The SDK marks a result "input_required" only when a tool handler
// returns it; what a receiving middleware returns is sent as it is, so
// this result marks itself.
type inputRequiredResult struct{ *mcp.CallToolResult }

// MarshalJSON adds "resultType":"input_required" to the result's JSON.
func (r inputRequiredResult) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(r.CallToolResult)
	if err != nil {
		return nil, err
	}
	if len(b) < 2 || b[0] != '{' {
		return nil, fmt.Errorf("approvalmcp: unexpected tool result JSON %.20q", b)
	}
	head := []byte(`{"resultType":"input_required"`)
	if b[1] == '}' {
		return append(head, '}'), nil
	}
	return append(append(head, ','), b[1:]...), nil
}

// showJSON returns args as compact JSON for a person to read, with every
// character that is not graphic (controls, format characters such as
// bidirectional overrides, separators other than the space) escaped, so
// that what they read is what the vote binds; false if it is longer than
// maxShownArgs or not JSON.
func showJSON(args []byte) (string, bool) {
	var b bytes.Buffer
	if err := json.Compact(&b, args); err != nil || b.Len() > maxShownArgs {
		return "", false
	}
	var out strings.Builder
	for _, c := range b.String() {
		if unicode.IsGraphic(c) { // letters, marks, numbers, punctuation, symbols, spaces
			out.WriteRune(c)
			continue
		}
		if c > 0xffff {
			r1, r2 := utf16.EncodeRune(c)
			fmt.Fprintf(&out, `\u%04x\u%04x`, r1, r2)
			continue
		}
		fmt.Fprintf(&out, `\u%04x`, c)
	}
	return out.String(), true
}
