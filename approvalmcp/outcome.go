package approvalmcp

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/signoff/approval"
)

// MetaKey is the _meta key under which a gated call's result carries its
// Outcome. The middleware only writes it; a client that sends it gains
// nothing.
const MetaKey = "io.github.signoff/approval"

// Outcome is the gate's answer to one gated call, as the client receives
// it: the StructuredContent of the results the middleware makes in place
// of the tool's (pending, refused, failed), and the _meta MetaKey entry of
// every result of a call that asked the gate.
type Outcome struct {
	// Status is "approved" or "modified" (the tool ran, with the
	// reviewer's arguments for "modified"), "pending" (call again later
	// with the same arguments), "denied", "timed_out", "cancelled", or
	// "error" (the gate could not decide). Only "approved" and
	// "modified" mean that the tool ran.
	Status string `json:"status"`
	// Tool is the tool's name, as called.
	Tool string `json:"tool"`
	// RequestID names the approval request; empty when there is none (a
	// failure before a request was made).
	RequestID string `json:"request_id,omitempty"`
	// ReviewURL is the request's review page (Options.ReviewURL), with
	// "pending".
	ReviewURL string `json:"review_url,omitempty"`
	// Reason is the reviewer's or the policy's reason, when refused.
	Reason string `json:"reason,omitempty"`
	// Denial is the reviewer's structured denial, with "denied": whether
	// asking again can help.
	Denial *approval.Denial `json:"denial,omitempty"`
	// Conditions are the limits the approvers set, with "approved" and
	// "modified".
	Conditions []string `json:"conditions,omitempty"`
}

// maxNoteArgs bounds the edited arguments quoted in an approved result's
// note (the tool received all of them).
const maxNoteArgs = 4 << 10

// decorate adds the approval's Outcome to the result of a tool that ran on
// one: in _meta, and, when the arguments were edited or conditions set, in
// a last text content the model reads.
func decorate(tool string, out mcp.Result, res approval.Result) mcp.Result {
	tr, ok := out.(*mcp.CallToolResult)
	if !ok || tr == nil || res.RequestID == "" {
		return out // no request: nobody approved anything to report
	}
	o := Outcome{Status: string(res.Status), Tool: tool, RequestID: res.RequestID, Conditions: res.Conditions}
	c := *tr
	c.Meta = maps.Clone(tr.Meta)
	if c.Meta == nil {
		c.Meta = mcp.Meta{}
	}
	var note []string
	if res.Status == approval.OutcomeModified {
		var b bytes.Buffer
		if json.Compact(&b, res.Payload) != nil || b.Len() > maxNoteArgs {
			note = append(note, "A reviewer changed the arguments before approving (request "+res.RequestID+"); the tool ran with the changed arguments.")
		} else {
			note = append(note, "A reviewer changed the arguments before approving (request "+res.RequestID+"); the tool ran with "+b.String()+".")
		}
	}
	if len(res.Conditions) > 0 {
		note = append(note, "The approval (request "+res.RequestID+") holds only within these conditions: "+strings.Join(res.Conditions, "; ")+".")
	}
	if len(note) > 0 {
		c.Content = append(c.Content[:len(c.Content):len(c.Content)], &mcp.TextContent{Text: strings.Join(note, " ")})
	}
	c.Meta[MetaKey] = o
	return &c
}

// pending is the result of a call whose request waits for people.
func (g *gated) pending(tool string, res approval.Result) *mcp.CallToolResult {
	o := Outcome{Status: string(approval.StatusPending), Tool: tool, RequestID: res.RequestID}
	if g.reviewURL != nil {
		if err := host("ReviewURL", func() error { o.ReviewURL = g.reviewURL(res.RequestID); return nil }); err != nil {
			g.log.Error("approvalmcp: ReviewURL failed; the pending result has no review URL", "request", res.RequestID, "err", err)
		}
	}
	var b strings.Builder
	b.WriteString("This call to " + tool + " was not run: it needs approval by a person, and request " + res.RequestID + " is waiting for one.")
	if o.ReviewURL != "" {
		b.WriteString(" Review page: " + o.ReviewURL + ".")
	}
	b.WriteString(" Call " + tool + " again later with exactly the same arguments: once the request is approved, that call runs, once. A call with other arguments is a new request.")
	return result(b.String(), o, false)
}

// refused is the result of a call that was denied, timed out or was
// cancelled.
func refused(tool string, res approval.Result) *mcp.CallToolResult {
	o := Outcome{Status: string(res.Status), Tool: tool, RequestID: res.RequestID, Reason: res.Reason, Denial: res.Denial}
	var b strings.Builder
	// Reason says who or what refused ("denied by carol: ...", a deny
	// policy's reason, "cancelled by ...").
	switch res.Status {
	case approval.OutcomeTimedOut:
		b.WriteString("This call to " + tool + " was not approved in time (request " + res.RequestID + ")")
	case approval.OutcomeCancelled:
		b.WriteString("The approval request " + res.RequestID + " for this call to " + tool + " was withdrawn")
	default:
		o.Status = string(approval.StatusDenied)
		b.WriteString("This call to " + tool + " was denied (request " + res.RequestID + ")")
	}
	if res.Reason != "" {
		b.WriteString(": " + res.Reason)
	}
	b.WriteString(". The tool did not run.")
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
	return result(b.String(), o, true)
}

// failed is the result of a call the gate could not decide: the tool did
// not run. The error is logged, and told to the model only when the call
// itself or a reviewer's edit of it is at fault (an invalid action), since
// it may name the server's internals otherwise.
func (g *gated) failed(tool string, err error) *mcp.CallToolResult {
	g.log.Error("approvalmcp: the gate could not check a tool call; it did not run", "tool", tool, "err", err)
	text := "The approval gate could not check this call to " + tool + ", so the tool did not run."
	if errors.Is(err, approval.ErrInvalidAction) || errors.Is(err, errBadEdit) {
		text += " " + err.Error()
	} else {
		text += " Tell the user if calling again fails too."
	}
	r := result(text, Outcome{Status: "error", Tool: tool}, true)
	r.SetError(err)
	return r
}

// result is a tool result the middleware makes in place of the tool's.
func result(text string, o Outcome, isError bool) *mcp.CallToolResult {
	return &mcp.CallToolResult{
		Meta:              mcp.Meta{MetaKey: o},
		Content:           []mcp.Content{&mcp.TextContent{Text: text}},
		StructuredContent: o,
		IsError:           isError,
	}
}
