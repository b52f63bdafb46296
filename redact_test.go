package approval_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/redact"
)

func TestActionRedact(t *testing.T) {
	t.Parallel()
	a := approval.Action{
		Name:     "wire-transfer",
		Metadata: map[string]string{"API_Key": "sk-live-1", "ticket": "FIN-1"},
		Payload:  []byte(`{"to":{"Iban":"DE89","name":"ACME"},"list":[{"\u0069ban":{"x":[1,2]}}],"api_KEY":"k","amount":5000}`),
	}
	orig := a
	origPayload := string(a.Payload)

	got, redacted := a.Redact([]string{"iban", "api_key"})
	require.True(t, redacted)
	require.JSONEq(t, `{"to":{"Iban":"[redacted]","name":"ACME"},"list":[{"\u0069ban":"[redacted]"}],"api_KEY":"[redacted]","amount":5000}`, string(got.Payload))
	require.Equal(t, map[string]string{"API_Key": approval.RedactedValue, "ticket": "FIN-1"}, got.Metadata)
	require.Equal(t, origPayload, string(a.Payload), "the original is not modified")
	require.Equal(t, "sk-live-1", orig.Metadata["API_Key"])

	// No name that applies: the payload bytes are kept as they are.
	got, redacted = a.Redact([]string{"password"})
	require.False(t, redacted)
	require.Equal(t, origPayload, string(got.Payload))

	// No names at all: nothing is even parsed.
	got, redacted = approval.Action{Payload: []byte("not json")}.Redact(nil)
	require.False(t, redacted)
	require.Equal(t, "not json", string(got.Payload))

	// Not JSON, with names: it has no fields to mask, so it is dropped.
	got, redacted = approval.Action{Payload: []byte("iban=DE89")}.Redact([]string{"iban"})
	require.True(t, redacted)
	require.Nil(t, got.Payload)
}

// FuzzRedactJSON: for any JSON payload, the redacted form is valid JSON
// in which no member named by a key keeps a value other than
// "[redacted]", and everything else decodes to what it was.
func FuzzRedactJSON(f *testing.F) {
	f.Add(`{"iban":"x","a":[{"IBAN":{"b":1}}],"c":"iban"}`, "iban")
	f.Add(`[1,{"k":null}, "k"]`, "k")
	f.Add(`{"\u006b":[{"k":2}]}`, "K")
	f.Add(` { "a" : { "k" : true } , "k":[ ] } `, "k")
	f.Fuzz(func(t *testing.T, payload, key string) {
		if !json.Valid([]byte(payload)) || key == "" {
			return
		}
		got, _ := approval.Action{Payload: []byte(payload)}.Redact([]string{key})
		require.True(t, json.Valid(got.Payload), "redacted %q to invalid %q", payload, got.Payload)
		var before, after any
		require.NoError(t, json.Unmarshal([]byte(payload), &before))
		require.NoError(t, json.Unmarshal(got.Payload, &after))
		require.True(t, sameBut(before, after, key), "%q became %q", payload, got.Payload)
	})
}

// sameBut reports whether after is before with every member named key
// (case-insensitively) replaced by "[redacted]". Duplicate member names
// decode to their last value, so both sides are compared as decoded.
func sameBut(before, after any, key string) bool {
	switch b := before.(type) {
	case map[string]any:
		a, ok := after.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, bv := range b {
			av, ok := a[k]
			if !ok {
				return false
			}
			if strings.EqualFold(k, key) {
				if av != approval.RedactedValue {
					return false
				}
			} else if !sameBut(bv, av, key) {
				return false
			}
		}
		return true
	case []any:
		a, ok := after.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range b {
			if !sameBut(b[i], a[i], key) {
				return false
			}
		}
		return true
	default:
		return before == after
	}
}

// TestNotifyRedacted: a notification carries its action masked by the
// matched policies' Redact names, with the hashes of the real bytes.
func TestNotifyRedacted(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	f := newFixture(t, func(c *approval.Config) { c.Channels = []approval.Channel{rec} })
	require.NoError(t, f.gate.SetPolicy("high_spend", approval.Policy{
		Match:             approval.CostAtLeast(1000, "USD"),
		Approvers:         []approval.Approver{approval.Group("finance")},
		RequiredApprovals: 2,
		Redact:            []string{"to", "secret"},
	}))
	a := transfer(5000)
	a.Metadata = map[string]string{"Secret": "hunter2", "ticket": "FIN-7"}
	id := f.Pending(a)
	require.NoError(t, f.gate.Close(context.Background()))

	got := rec.sent()
	require.NotEmpty(t, got)
	req := f.Get(id)
	for _, n := range got {
		require.True(t, n.Redacted)
		require.JSONEq(t, `{"to":"[redacted]","amount":5000}`, string(n.Action.Payload))
		require.Equal(t, map[string]string{"Secret": approval.RedactedValue, "ticket": "FIN-7"}, n.Action.Metadata)
		require.Equal(t, req.PayloadHash, n.PayloadHash, "the hash is of the real payload")
		require.Equal(t, req.ActionHash, n.ActionHash)
	}
	require.Contains(t, string(req.Action.Payload), "DE89", "the stored request keeps the real bytes")
}

// TestRedactKeyFolding: member names match the redaction names as
// strings.EqualFold has it, on the fast ASCII path too.
func TestRedactKeyFolding(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		key, member string
		masked      bool
	}{
		{"iban", "IBAN", true}, {"IBAN", "iban", true}, {"iban", "iban2", false}, {"iban", "iba", false},
		{"\u212Aey", "key", true}, {"me\u017Fsage", "message", true}, {"api_key", "api-key", false},
		{"clé", "CLÉ", true}, {"key", `k\u0065y`, true},
	} {
		a := approval.Action{Payload: []byte(`{"` + tc.member + `":"v"}`)}
		red, _ := a.Redact([]string{tc.key})
		require.Equal(t, tc.masked, strings.Contains(string(red.Payload), approval.RedactedValue), "%q vs %q", tc.key, tc.member)
	}
}

// TestRedactedValueIsTheRedactors: the constant the root documents is the
// one the redactor writes.
func TestRedactedValueIsTheRedactors(t *testing.T) {
	t.Parallel()
	require.Equal(t, approval.RedactedValue, redact.Value)
}
