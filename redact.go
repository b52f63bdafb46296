package approval

import (
	"encoding/json"

	"github.com/signoff/approval/internal/redact"
)

// RedactedValue replaces a masked payload field or metadata value.
const RedactedValue = "[redacted]"

// RedactKeys returns the names the request's matched policies ask to mask
// (Policy.Redact), in policy order, possibly with repeats.
func (r *Request) RedactKeys() []string {
	var keys []string
	for _, p := range r.Policies {
		keys = append(keys, p.Redact...)
	}
	return keys
}

// Redact returns a copy of a with the payload fields and metadata values
// that keys name masked, and whether anything was masked or hidden. a
// itself is never modified.
//
// A metadata value is masked when its key equals a name case-insensitively.
// A payload field is a JSON object member, at any depth, whose key equals a
// name case-insensitively after JSON unescaping ("\u0069ban" is "iban");
// its whole value, object or array included, becomes the string
// "[redacted]" and the rest of the payload is kept byte for byte. A payload
// that is not JSON has no fields, so when keys is not empty it is dropped
// (Payload nil) rather than shown. With no keys a is returned as it is.
//
// The gate's hashes (Request.ActionHash, PayloadHash) cover the real
// bytes, so a redacted action still identifies the one that was approved.
// Notifications carry their request's action redacted by RedactKeys;
// approvalhttp adds the host's names (Options.Redact).
func (a Action) Redact(keys []string) (Action, bool) {
	if len(keys) == 0 {
		return a, false
	}
	var any bool
	a.Metadata, any = redact.Metadata(a.Metadata, keys)
	switch {
	case len(a.Payload) == 0:
	case json.Valid(a.Payload):
		var n int
		a.Payload, n = redact.JSON(a.Payload, keys)
		any = any || n > 0
	default:
		a.Payload, any = nil, true
	}
	return a, any
}
