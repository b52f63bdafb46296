package approvalhttp

import (
	"slices"
	"strings"

	"github.com/signoff/approval"
)

// Redaction masks, on the pages and in the API, the payload fields and
// metadata values that a matched policy (Policy.Redact) or the host
// (Options.Redact) names, as approval.Action.Redact defines. The hashes
// always cover the real bytes.

// keysFor returns the names to mask on r: the host's and every matched
// policy's.
func (h *handler) keysFor(r *approval.Request) []string {
	keys := h.redact
	for _, p := range r.Policies {
		if len(p.Redact) > 0 {
			keys = append(slices.Clip(keys), p.Redact...) // never into h.redact
		}
	}
	return keys
}

// masked reports whether keys names the metadata key k.
func masked(keys []string, k string) bool {
	for _, m := range keys {
		if strings.EqualFold(m, k) {
			return true
		}
	}
	return false
}
