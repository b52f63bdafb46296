// Package wire holds the JSON shapes every output of the module shares
// (the HTTP API, webhook bodies, the command's output and inputs), so that
// a payload and a duration look the same wherever they appear: a payload
// that is JSON as JSON, text as text, other bytes in base64, and a
// duration as a string in Go's duration syntax. docs/FORMATS.md is the
// schema these types implement.
//
// The stored forms are not these: stores keep approval.Request's own JSON,
// and hashes and signatures are over the canonical forms, which no type
// here touches.
package wire

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/canon"
)

// Payload is a payload in a JSON document: one of its three fields for a
// payload, none for an empty one.
type Payload struct {
	// JSON is a payload that is a JSON value other than a string or null,
	// as itself.
	JSON json.RawMessage `json:"payload,omitempty"`
	// Text is a payload of UTF-8 text: text that is not JSON, a JSON
	// string (its quotes are part of the payload), null, and JSON that the
	// document cannot carry as itself (see Show and Exact).
	Text *string `json:"payload_text,omitempty"`
	// Base64 is any other payload, in standard base64 with padding.
	Base64 []byte `json:"payload_base64,omitempty"`
}

// Show returns p as an output shows it: JSON as itself when its payload
// hash (approval.PayloadHash) is the hash of its canonical form (RFC
// 8785), so that a reader who re-encodes or canonicalizes the value,
// in any language, gets the same payload hash; text or base64 otherwise.
// JSON hashed as its raw bytes (a number a double does not hold exactly,
// a key twice) is text: parsing it would lose what the hash binds.
func Show(p []byte) Payload { return of(p, false) }

// Exact returns p so that a reader gets its exact bytes back: as Show,
// but JSON as itself only when the JSON encoder also leaves it byte for
// byte (compact, and without <, > or &). It is the form of a payload that
// a caller runs an action with.
func Exact(p []byte) Payload { return of(p, true) }

func of(p []byte, exact bool) Payload {
	switch {
	case len(p) == 0:
		return Payload{}
	case asJSON(p, exact):
		return Payload{JSON: bytes.Clone(p)}
	case utf8.Valid(p):
		s := string(p)
		return Payload{Text: &s}
	}
	return Payload{Base64: bytes.Clone(p)}
}

// asJSON reports whether p travels as a JSON value.
func asJSON(p []byte, exact bool) bool {
	t := bytes.TrimLeft(p, " \t\r\n")
	if len(t) == 0 || t[0] == '"' || t[0] == 'n' || !utf8.Valid(p) || !json.Valid(p) {
		// A string or null in "payload" would read as the legacy forms
		// (see Legacy); invalid UTF-8 would make the document invalid.
		return false
	}
	c, err := canon.AppendJSON(nil, p)
	if err != nil {
		return false
	}
	if sum := sha256.Sum256(c); approval.PayloadHash(p) != hex.EncodeToString(sum[:]) {
		return false // hashed as its raw bytes
	}
	if !exact {
		return true
	}
	enc, err := json.Marshal(json.RawMessage(p))
	return err == nil && bytes.Equal(enc, p)
}

// Legacy says what a JSON string in "payload" means. Outputs never write
// one (Show and Exact put strings in payload_text); each document that
// carried a payload before payload_text existed keeps the meaning it gave
// a string then.
type Legacy int

const (
	// StringIsText: the string's content is the payload (the body of POST
	// /api/approvals).
	StringIsText Legacy = iota
	// StringIsBase64: the string is the payload in standard base64
	// (approval.Action's encoding/json form: verify-artifact -action, a
	// decision's body, the Guard result and webhook bodies before).
	StringIsBase64
	// StringIsJSON: the string, quotes included, is the payload (the API's
	// request object before).
	StringIsJSON
)

// Bytes returns the payload w carries, nil for none; a JSON null is none.
// A JSON string in JSON is read as legacy says. More than one field set,
// or a string that legacy cannot read, is an error.
func (w Payload) Bytes(legacy Legacy) ([]byte, error) {
	n := 0
	for _, set := range [...]bool{len(w.JSON) > 0, w.Text != nil, w.Base64 != nil} {
		if set {
			n++
		}
	}
	switch {
	case n > 1:
		return nil, errors.New("more than one of payload, payload_text and payload_base64")
	case w.Text != nil:
		return []byte(*w.Text), nil
	case w.Base64 != nil:
		return bytes.Clone(w.Base64), nil
	}
	p := bytes.TrimSpace(w.JSON)
	if len(p) == 0 || string(p) == "null" {
		return nil, nil
	}
	if p[0] != '"' || legacy == StringIsJSON {
		return bytes.Clone(p), nil
	}
	var s string
	if err := json.Unmarshal(p, &s); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	if legacy == StringIsText {
		return []byte(s), nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("payload: a string in payload is base64 here (send JSON as itself, text in payload_text)")
	}
	return b, nil
}

// Action is approval.Action in a JSON document: its own fields, with the
// payload in Payload's form in place of Action.Payload's base64. The
// fields declared here take the place of the embedded Action's Payload,
// which is left empty.
type Action struct {
	approval.Action
	// Payload is the payload when it is JSON, as it is.
	Payload json.RawMessage `json:"payload,omitempty"`
	// PayloadText is the payload when it is UTF-8 text but not JSON.
	PayloadText *string `json:"payload_text,omitempty"`
	// PayloadBase64 is any other payload.
	PayloadBase64 []byte `json:"payload_base64,omitempty"`
}

// ShowAction returns a as an output shows it (see Show).
func ShowAction(a approval.Action) Action {
	w := Action{Action: a}
	w.Action.Payload = nil
	w.SetPayload(Show(a.Payload))
	return w
}

// SetPayload puts p in a's payload fields.
func (a *Action) SetPayload(p Payload) {
	a.Payload, a.PayloadText, a.PayloadBase64 = p.JSON, p.Text, p.Base64
}

// Wire returns a's payload fields as a Payload.
func (a *Action) Wire() Payload {
	return Payload{JSON: a.Payload, Text: a.PayloadText, Base64: a.PayloadBase64}
}

// Decode returns the approval.Action a carries, its payload read as
// legacy says (see Payload.Bytes).
func (a *Action) Decode(legacy Legacy) (approval.Action, error) {
	out := a.Action
	p, err := a.Wire().Bytes(legacy)
	if err != nil {
		return out, err
	}
	out.Payload = p
	return out, nil
}

// Duration is a time.Duration in a JSON document: a string in Go's
// duration syntax, as time.Duration.String writes it ("1h30m0s", "1.5s",
// "0s"). Reading also takes a number, of nanoseconds: the form of earlier
// versions.
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return strconv.AppendQuote(nil, time.Duration(d).String()), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		*d = Duration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("duration: want a string such as \"1h30m\", or nanoseconds: %w", err)
	}
	*d = Duration(n)
	return nil
}

// MatchedPolicy is approval.MatchedPolicy in a JSON document, its
// durations (and its levels' and steps') as Duration.
type MatchedPolicy struct {
	approval.MatchedPolicy
	// Escalation is MatchedPolicy.Escalation.
	Escalation []Step `json:"escalation_steps,omitempty"`
	// Chain is MatchedPolicy.Chain.
	Chain []Level `json:"chain,omitempty"`
	// ReminderInterval is MatchedPolicy.ReminderInterval.
	ReminderInterval Duration `json:"reminder_interval,omitempty"`
	// Limit is MatchedPolicy.Limit.
	Limit *AskLimit `json:"limit,omitempty"`
}

// AskLimit is approval.AskLimit in a JSON document.
type AskLimit struct {
	approval.AskLimit
	// Per is AskLimit.Per.
	Per Duration `json:"per,omitempty"`
}

// Level is approval.Level in a JSON document.
type Level struct {
	approval.Level
	// Timeout is Level.Timeout.
	Timeout Duration `json:"timeout,omitempty"`
	// Escalation is Level.Escalation.
	Escalation []Step `json:"escalation,omitempty"`
}

// Step is approval.EscalationStep in a JSON document.
type Step struct {
	approval.EscalationStep
	// After is EscalationStep.After.
	After Duration `json:"after,omitempty"`
	// Before is EscalationStep.Before.
	Before Duration `json:"before,omitempty"`
}

// Policies returns ps in their JSON form.
func Policies(ps []approval.MatchedPolicy) []MatchedPolicy {
	if ps == nil {
		return nil
	}
	out := make([]MatchedPolicy, len(ps))
	for i, p := range ps {
		out[i] = MatchedPolicy{MatchedPolicy: p, Escalation: steps(p.Escalation), ReminderInterval: Duration(p.ReminderInterval)}
		if p.Limit != nil {
			out[i].Limit = &AskLimit{AskLimit: *p.Limit, Per: Duration(p.Limit.Per)}
		}
		if p.Chain != nil {
			out[i].Chain = make([]Level, len(p.Chain))
			for j, l := range p.Chain {
				out[i].Chain[j] = Level{Level: l, Timeout: Duration(l.Timeout), Escalation: steps(l.Escalation)}
			}
		}
	}
	return out
}

func steps(ss []approval.EscalationStep) []Step {
	if ss == nil {
		return nil
	}
	out := make([]Step, len(ss))
	for i, s := range ss {
		out[i] = Step{EscalationStep: s, After: Duration(s.After), Before: Duration(s.Before)}
	}
	return out
}

// FromPolicies returns the policies ps carry: the inverse of Policies.
func FromPolicies(ps []MatchedPolicy) []approval.MatchedPolicy {
	if ps == nil {
		return nil
	}
	out := make([]approval.MatchedPolicy, len(ps))
	for i, w := range ps {
		p := w.MatchedPolicy
		p.ReminderInterval = time.Duration(w.ReminderInterval)
		p.Limit = nil
		if w.Limit != nil {
			l := w.Limit.AskLimit
			l.Per = time.Duration(w.Limit.Per)
			p.Limit = &l
		}
		p.Escalation = fromSteps(w.Escalation)
		p.Chain = nil
		if w.Chain != nil {
			p.Chain = make([]approval.Level, len(w.Chain))
			for j, wl := range w.Chain {
				l := wl.Level
				l.Timeout = time.Duration(wl.Timeout)
				l.Escalation = fromSteps(wl.Escalation)
				p.Chain[j] = l
			}
		}
		out[i] = p
	}
	return out
}

func fromSteps(ws []Step) []approval.EscalationStep {
	if ws == nil {
		return nil
	}
	out := make([]approval.EscalationStep, len(ws))
	for i, w := range ws {
		s := w.EscalationStep
		s.After, s.Before = time.Duration(w.After), time.Duration(w.Before)
		out[i] = s
	}
	return out
}

// Request is approval.Request in a JSON document: its own JSON (so a
// field added to Request appears here too), with the action and the
// edited payload in Payload's form and the durations as Duration. The
// embedded copy's Action, Edit, ApprovalTTL and Policies are hidden by the
// fields declared here.
type Request struct {
	*approval.Request
	// Action is Request.Action.
	Action Action `json:"action"`
	// Edit is Request.Edit.
	Edit *Edit `json:"edit,omitempty"`
	// ApprovalTTL is Request.ApprovalTTL.
	ApprovalTTL Duration `json:"approval_ttl"`
	// Policies is Request.Policies.
	Policies []MatchedPolicy `json:"policies"`
}

// Edit is approval.PayloadEdit in a JSON document, its payload in
// Payload's form.
type Edit struct {
	approval.PayloadEdit
	// Payload is the payload when it is JSON, as it is.
	Payload json.RawMessage `json:"payload,omitempty"`
	// PayloadText is the payload when it is UTF-8 text but not JSON.
	PayloadText *string `json:"payload_text,omitempty"`
	// PayloadBase64 is any other payload.
	PayloadBase64 []byte `json:"payload_base64,omitempty"`
}

// ShowRequest returns r as an output shows it, unredacted: redact first
// where the output needs it.
func ShowRequest(r *approval.Request) *Request {
	w := &Request{Request: r, Action: ShowAction(r.Action), ApprovalTTL: Duration(r.ApprovalTTL), Policies: Policies(r.Policies)}
	if r.Edit != nil {
		w.Edit = &Edit{PayloadEdit: *r.Edit}
		w.Edit.PayloadEdit.Payload = nil
		p := Show(r.Edit.Payload)
		w.Edit.Payload, w.Edit.PayloadText, w.Edit.PayloadBase64 = p.JSON, p.Text, p.Base64
	}
	return w
}
