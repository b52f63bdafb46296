package approvalhttp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/wire"
)

// The JSON forms of the API, documented in docs/FORMATS.md. Requests and
// audit events travel in the root package's own JSON form (its field
// tags), with the differences internal/wire makes in every output: a
// payload is a JSON value, text or base64 (wire.Payload), durations are
// strings ("1h0m0s"); and redacted fields are masked.

// actionBody is the body of POST /api/approvals: an Action, with the
// payload in wire.Payload's form, where a string in "payload" is text (as
// it always was here). RequestedBy is accepted only when it names the
// authenticated caller.
type actionBody struct {
	Name          string               `json:"name"`
	RequestedBy   string               `json:"requested_by,omitempty"`
	Cost          *approval.Cost       `json:"cost,omitempty"`
	Risk          approval.Risk        `json:"risk,omitempty"`
	Tags          []string             `json:"tags,omitempty"`
	Metadata      map[string]string    `json:"metadata,omitempty"`
	Message       string               `json:"message,omitempty"`
	RunID         string               `json:"run_id,omitempty"`
	StepID        string               `json:"step_id,omitempty"`
	Constraints   []string             `json:"constraints,omitempty"`
	Payload       json.RawMessage      `json:"payload,omitempty"`
	PayloadText   *string              `json:"payload_text,omitempty"`
	PayloadBase64 []byte               `json:"payload_base64,omitempty"`
	Provenance    *approval.Provenance `json:"provenance,omitempty"`
	Diff          []approval.FileDiff  `json:"diff,omitempty"`
	// IdempotencyKey names the business operation (see
	// approval.Action.IdempotencyKey): once its approval was used, the
	// answer is status "consumed" with the earlier request, and nothing
	// new is opened.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// bodyOf returns the body that carries a to POST /api/approvals, the
// inverse of actionBody.action: the server stores exactly a's payload
// bytes. A payload travels in wire.Exact's form: as itself when it is JSON
// hashed in canonical form that the JSON encoder leaves byte for byte, as
// a JSON string of its text when it is other UTF-8 text (white space,
// escapes and key order then survive too; every version of the server
// reads that), and in payload_base64 otherwise. An Initiator and a Recommendation have
// no form in the body: ErrInvalidAction.
func bodyOf(a approval.Action) (*actionBody, error) {
	switch {
	case a.Initiator != "":
		return nil, fmt.Errorf("%w: the HTTP API takes no initiator", approval.ErrInvalidAction)
	case a.Recommendation != nil:
		return nil, fmt.Errorf("%w: the HTTP API takes no recommendation", approval.ErrInvalidAction)
	}
	b := &actionBody{
		Name: a.Name, RequestedBy: a.RequestedBy, Cost: a.Cost, Risk: a.Risk, Tags: a.Tags, Metadata: a.Metadata,
		Message: a.Message, RunID: a.RunID, StepID: a.StepID, Constraints: a.Constraints,
		Provenance: a.Provenance, Diff: a.Diff, IdempotencyKey: a.IdempotencyKey,
	}
	p := wire.Exact(a.Payload)
	b.Payload, b.PayloadBase64 = p.JSON, p.Base64
	if p.Text != nil {
		enc, err := json.Marshal(*p.Text)
		if err != nil {
			return nil, err
		}
		b.Payload = enc
	}
	return b, nil
}

// action returns the Action b describes. A JSON string payload is text
// (its content, unquoted, is the payload); any other JSON value is the
// payload as sent; payload_text and payload_base64 are the payload.
func (b *actionBody) action() (approval.Action, error) {
	a := approval.Action{
		Name: b.Name, Cost: b.Cost, Risk: b.Risk, Tags: b.Tags, Metadata: b.Metadata,
		Message: b.Message, RunID: b.RunID, StepID: b.StepID, Constraints: b.Constraints,
		Provenance: b.Provenance, Diff: b.Diff, IdempotencyKey: b.IdempotencyKey,
	}
	p, err := wire.Payload{JSON: b.Payload, Text: b.PayloadText, Base64: b.PayloadBase64}.Bytes(wire.StringIsText)
	if err != nil {
		return a, errMalformed(err.Error())
	}
	a.Payload = p
	if a.Provenance == nil {
		a.Provenance = &approval.Provenance{Source: "api"}
	}
	return a, nil
}

// guardResult is approval.Result with JSON names: the answer of POST
// /api/approvals is guardJSON, which carries it. It has exactly Result's
// fields, in Result's order, so a field added to Result stops the
// conversions (approval.Result(gr) in Client.Guard, guardResult(res) in
// the handler) compiling until it is added here too: one line, and both
// sides carry it.
type guardResult struct {
	Status    approval.Outcome `json:"status"`
	RequestID string           `json:"request_id,omitempty"`
	Reason    string           `json:"reason,omitempty"`
	// Artifact travels in base64 (standard, padded), so that its bytes,
	// which its signature covers, arrive exactly as signed.
	Artifact   []byte           `json:"artifact,omitempty"`
	Conditions []string         `json:"conditions,omitempty"`
	Denial     *approval.Denial `json:"denial,omitempty"`
	// Payload (OutcomeModified) travels in guardJSON's payload fields.
	Payload []byte `json:"-"`
}

var _ = approval.Result(guardResult{})

// guardJSON is the Guard result on the wire: guardResult, with the
// edited payload (OutcomeModified) in wire.Exact's form, so that the
// Client runs the action with exactly the bytes the artifact binds.
type guardJSON struct {
	guardResult
	Payload       json.RawMessage `json:"payload,omitempty"`
	PayloadText   *string         `json:"payload_text,omitempty"`
	PayloadBase64 []byte          `json:"payload_base64,omitempty"`
}

func toGuardJSON(res approval.Result) *guardJSON {
	g := &guardJSON{guardResult: guardResult(res)}
	p := wire.Exact(res.Payload)
	g.Payload, g.PayloadText, g.PayloadBase64 = p.JSON, p.Text, p.Base64
	return g
}

// result returns the approval.Result g carries. A string in "payload" is
// base64, the form of servers before payload_text.
func (g *guardJSON) result() (approval.Result, error) {
	res := approval.Result(g.guardResult)
	p, err := wire.Payload{JSON: g.Payload, Text: g.PayloadText, Base64: g.PayloadBase64}.Bytes(wire.StringIsBase64)
	res.Payload = p
	return res, err
}

// decideBody is the body of POST /api/approvals/{id}/approve and /deny.
type decideBody struct {
	Token  string `json:"token"`
	Reason string `json:"reason"`
	// Conditions narrow an approval (approval.Decision.Conditions).
	Conditions []string `json:"conditions,omitempty"`
	// Payload, PayloadText or PayloadBase64 approves an edited payload
	// (approval.Decision.Payload), in wire.Payload's form; a string in
	// "payload" is base64, as it always was here.
	Payload       json.RawMessage `json:"payload,omitempty"`
	PayloadText   *string         `json:"payload_text,omitempty"`
	PayloadBase64 []byte          `json:"payload_base64,omitempty"`
	// Denial is a deny's structured reason (approval.Decision.Denial).
	Denial *approval.Denial `json:"denial,omitempty"`
	// Reuse lets the approval be used again ({"for": "30m", "uses": 5},
	// approval.Decision.Reuse), within the policies' MaxReuse.
	Reuse *approval.Reuse `json:"reuse,omitempty"`
	// ActionHash is the action hash the approver was shown (the edit's,
	// once edited): a decision on a request that now binds another
	// action is refused (409 action_changed). Optional; a client that
	// shows a person the request should send it.
	ActionHash string `json:"action_hash,omitempty"`
	// Passkey is the approver's WebAuthn assertion of the vote's challenge
	// (approval.Decision.Passkey), its bytes in base64url: required to
	// approve under a policy with RequirePasskey.
	Passkey *passkeyJSON `json:"passkey,omitempty"`
}

// payload returns the edited payload b carries, nil for none.
func (b *decideBody) payload() ([]byte, error) {
	p, err := wire.Payload{JSON: b.Payload, Text: b.PayloadText, Base64: b.PayloadBase64}.Bytes(wire.StringIsBase64)
	if err != nil {
		return nil, errMalformed(err.Error())
	}
	return p, nil
}

// decideResult is the answer of a decision: the request's state after it,
// and the vote recorded.
type decideResult struct {
	RequestID string          `json:"request_id"`
	Status    approval.Status `json:"status"`
	Reason    string          `json:"reason,omitempty"`
	Vote      *approval.Vote  `json:"vote,omitempty"`
}

// requestJSON is a request as the API shows it: approval.Request's own
// JSON in wire.Request's form (so a field added to Request appears here
// too), with the action and the edited payload replaced by their
// redacted forms. The embedded copy's action and edit are zeroed, so
// nothing unredacted is even held; TestEveryPayloadFieldIsRedacted finds
// any other field of Request that carries payload bytes.
type requestJSON struct {
	wire.Request
	Action actionJSON `json:"action"`
	// Edit is the payload an approver put in place of the one asked for:
	// what the next vote binds, redacted as Action is, with what changed.
	Edit *editJSON `json:"edit,omitempty"`
	// Progress says where each matched policy stands.
	Progress []approval.PolicyStanding `json:"progress,omitempty"`
	// Redacted is set when a payload field or metadata value is masked,
	// in the action or the edit.
	Redacted bool        `json:"redacted,omitempty"`
	Viewer   *viewerJSON `json:"viewer,omitempty"`
}

// payloadJSON is a payload as the API shows it: in wire.Show's form, or
// none of its fields when redaction hides a payload that is not JSON.
// Size is that of the real bytes.
type payloadJSON struct {
	wire.Payload
	PayloadSize int `json:"payload_size"`
}

// actionJSON is Action with its metadata redacted and its payload in
// payloadJSON's form. The fields declared here take the place of the
// embedded Action's of the same JSON name; the embedded copy's Payload and
// Metadata are cleared.
type actionJSON struct {
	wire.Action
	Metadata    map[string]string `json:"metadata,omitempty"`
	PayloadSize int               `json:"payload_size"`
}

func (a *actionJSON) setPayload(p payloadJSON) {
	a.SetPayload(p.Payload)
	a.PayloadSize = p.PayloadSize
}

// editJSON is approval.PayloadEdit as the API shows it: the edited
// payload redacted, in payloadJSON's form, with the original hashes and
// the changes (approval.EditSummary).
type editJSON struct {
	payloadJSON
	PayloadHash string `json:"payload_hash"`
	ActionHash  string `json:"action_hash"`
	*approval.EditSummary
}

// showPayload returns p as the API shows it once redacted to red (with
// keys set, approval.Action.Redact keeps only JSON, and drops the rest).
func showPayload(p, red []byte) payloadJSON {
	return payloadJSON{Payload: wire.Show(red), PayloadSize: len(p)}
}

// bytes returns the payload p shows. A string in "payload" is itself
// JSON, as servers before payload_text showed it.
func (p *payloadJSON) bytes() []byte {
	b, err := p.Bytes(wire.StringIsJSON)
	if err != nil {
		return nil
	}
	return b
}

// viewerJSON says who is looking and whether they may decide.
type viewerJSON struct {
	ID string `json:"id"`
	// Via is "session" (Options.Identity), "token" (a link's token) or
	// "requester" (Options.Authenticate, reading its own request).
	Via string `json:"via"`
	// TokenAllows is the token's verdict scope, for a token viewer.
	TokenAllows approval.Verdict `json:"token_allows,omitempty"`
	MayDecide   bool             `json:"may_decide"`
	// WhyNot is the problem code of the refusal a decision would meet.
	WhyNot string `json:"why_not,omitempty"`
}

// toJSON returns r as the API shows it, masking the fields keys name.
func toJSON(r *approval.Request, keys []string) *requestJSON {
	a := &r.Action
	rc := *r
	rc.Action, rc.Edit = approval.Action{}, nil
	v := &requestJSON{
		Request: wire.Request{Request: &rc, ApprovalTTL: wire.Duration(r.ApprovalTTL), Policies: wire.Policies(r.Policies)},
		Action:  actionJSON{Action: wire.Action{Action: *a}}, Progress: r.Standing(),
	}
	v.Action.Action.Action.Payload, v.Action.Action.Action.Metadata = nil, nil
	red, redacted := a.Redact(keys)
	v.Action.Metadata = red.Metadata
	v.Action.setPayload(showPayload(a.Payload, red.Payload))
	if e := r.Edit; e != nil {
		ea := approval.Action{Payload: e.Payload}
		ered, eredacted := ea.Redact(keys)
		v.Edit = &editJSON{payloadJSON: showPayload(e.Payload, ered.Payload),
			PayloadHash: e.PayloadHash, ActionHash: e.ActionHash, EditSummary: r.EditSummary(keys)}
		redacted = redacted || eredacted
	}
	v.Redacted = redacted
	return v
}

// request returns the request v shows, as Client.Wait reads it: the
// inverse of toJSON, but for what redaction masked. Its Action and Edit
// are the ones the API shows (a JSON payload compacted, masked values
// "[redacted]"); the hashes are the stored ones, of the real bytes.
func (v *requestJSON) request() *approval.Request {
	r := *v.Request.Request
	r.ApprovalTTL = time.Duration(v.ApprovalTTL)
	r.Policies = wire.FromPolicies(v.Policies)
	a := &v.Action
	r.Action = a.Action.Action
	r.Action.Metadata = a.Metadata
	r.Action.Payload = (&payloadJSON{Payload: a.Wire()}).bytes()
	if e := v.Edit; e != nil {
		r.Edit = &approval.PayloadEdit{Payload: e.bytes(), PayloadHash: e.PayloadHash, ActionHash: e.ActionHash}
		if e.EditSummary != nil {
			r.Edit.By, r.Edit.At = e.By, e.At
		}
	}
	return &r
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func getBuf() *bytes.Buffer {
	b := bufPool.Get().(*bytes.Buffer)
	b.Reset()
	return b
}

func putBuf(b *bytes.Buffer) {
	if b.Cap() <= 1<<20 {
		bufPool.Put(b)
	}
}

// writeJSON writes v with the given status, encoded into a pooled buffer
// first so that an encoding error can still become a 500.
func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	buf := getBuf()
	defer putBuf(buf)
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		buf.Reset()
		status = http.StatusInternalServerError
		contentType = "application/problem+json"
		_ = json.NewEncoder(buf).Encode(classify(err))
	}
	hd := w.Header()
	hd.Set("Content-Type", contentType)
	hd.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// decodeJSON reads r's body, at most limit bytes, into v: one JSON value,
// no unknown fields, nothing after it. An empty body leaves v as it is
// when emptyOK. The body must be declared JSON (415 otherwise), so that a
// form or text/plain post can never be read as an API call.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any, limit int64, emptyOK bool) error {
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	if ct := r.Header.Get("Content-Type"); ct != "" || !emptyOK {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !(len(mt) > 5 && mt[len(mt)-5:] == "+json")) {
			return &httpError{http.StatusUnsupportedMediaType, "unsupported_media_type", "Unsupported media type",
				"send the body as application/json"}
		}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) && emptyOK {
			return nil
		}
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return jsonError(err)
		}
		return errMalformed("unexpected data after the JSON value")
	}
	return nil
}

func jsonError(err error) error {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return err
	case errors.Is(err, approval.ErrInvalidAction):
		return err // a field's own check, such as an unknown risk level
	case errors.Is(err, io.EOF):
		return errMalformed("empty body: send a JSON object")
	}
	return errMalformed("malformed JSON: " + err.Error())
}
