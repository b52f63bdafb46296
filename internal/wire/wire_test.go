package wire_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/wire"
)

// field names the one field of p that is set, or "" for none.
func field(p wire.Payload) string {
	switch {
	case len(p.JSON) > 0:
		return "payload"
	case p.Text != nil:
		return "payload_text"
	case p.Base64 != nil:
		return "payload_base64"
	}
	return ""
}

// TestShowAndExact: which field carries a payload, and that a reader of
// the encoded document gets back the same payload hash (Show) or the
// same bytes (Exact).
func TestShowAndExact(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		payload     string
		show, exact string
	}{
		{``, "", ""},
		{`{"b":1,"a":[true,null]}`, "payload", "payload"},
		{`[1,2]`, "payload", "payload"},
		{`42`, "payload", "payload"},
		{`false`, "payload", "payload"},
		{"{\n  \"a\": 1\n}\n", "payload", "payload_text"},
		{`{"html":"<b>&"}`, "payload", "payload_text"},
		{`{"n":9007199254740993}`, "payload_text", "payload_text"}, // hashed as its raw bytes
		{`{"a":1,"a":2}`, "payload_text", "payload_text"},          // likewise
		{`{"n":1e2, "m":1.50}`, "payload", "payload_text"},         // canonical: {"m":1.5,"n":100}
		{`"a JSON string"`, "payload_text", "payload_text"},
		{`null`, "payload_text", "payload_text"},
		{`{"a":1`, "payload_text", "payload_text"},
		{"plain text\n", "payload_text", "payload_text"},
		{"{\"a\":\"\xff\"}", "payload_base64", "payload_base64"},
		{"\x00\x01\xfe", "payload_base64", "payload_base64"},
	} {
		p := []byte(tc.payload)
		for _, m := range []struct {
			name string
			fn   func([]byte) wire.Payload
			want string
		}{{"show", wire.Show, tc.show}, {"exact", wire.Exact, tc.exact}} {
			w := m.fn(p)
			require.Equal(t, m.want, field(w), "%s %q", m.name, tc.payload)
			enc, err := json.Marshal(w)
			require.NoError(t, err)
			var back wire.Payload
			require.NoError(t, json.Unmarshal(enc, &back))
			got, err := back.Bytes(wire.StringIsBase64)
			require.NoError(t, err)
			if m.name == "exact" || field(w) != "payload" {
				require.Equal(t, string(p), string(got), "%s %q: the exact bytes", m.name, tc.payload)
			}
			require.Equal(t, approval.PayloadHash(p), approval.PayloadHash(got), "%s %q: the same payload hash", m.name, tc.payload)
		}
	}
}

// TestBytesLegacy: a string in "payload" means what the document it is
// in always meant by it; more than one field is refused.
func TestBytesLegacy(t *testing.T) {
	t.Parallel()
	str := wire.Payload{JSON: json.RawMessage(`"eyJhIjoxfQ=="`)}
	for legacy, want := range map[wire.Legacy]string{
		wire.StringIsText:   "eyJhIjoxfQ==",
		wire.StringIsBase64: `{"a":1}`,
		wire.StringIsJSON:   `"eyJhIjoxfQ=="`,
	} {
		got, err := str.Bytes(legacy)
		require.NoError(t, err)
		require.Equal(t, want, string(got))
	}
	_, err := wire.Payload{JSON: json.RawMessage(`"not base64!"`)}.Bytes(wire.StringIsBase64)
	require.ErrorContains(t, err, "base64")
	got, err := wire.Payload{JSON: json.RawMessage(`null`)}.Bytes(wire.StringIsText)
	require.NoError(t, err)
	require.Nil(t, got)
	text := ""
	_, err = wire.Payload{JSON: json.RawMessage(`{}`), Text: &text}.Bytes(wire.StringIsText)
	require.ErrorContains(t, err, "more than one")
	_, err = wire.Payload{Text: &text, Base64: []byte{1}}.Bytes(wire.StringIsText)
	require.ErrorContains(t, err, "more than one")
}

// TestDuration: a string in Go's syntax out; a string or nanoseconds in.
func TestDuration(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(struct {
		A wire.Duration `json:"a"`
		B wire.Duration `json:"b,omitempty"`
		C wire.Duration `json:"c"`
	}{wire.Duration(90 * time.Minute), 0, wire.Duration(1500 * time.Millisecond)})
	require.NoError(t, err)
	require.Equal(t, `{"a":"1h30m0s","c":"1.5s"}`, string(b))
	for in, want := range map[string]time.Duration{
		`"1h30m"`: 90 * time.Minute, `"0s"`: 0, `3600000000000`: time.Hour, `"-2s"`: -2 * time.Second,
	} {
		var d wire.Duration
		require.NoError(t, json.Unmarshal([]byte(in), &d), in)
		require.Equal(t, want, time.Duration(d), in)
	}
	for _, in := range []string{`"1 hour"`, `1.5`, `true`} {
		var d wire.Duration
		require.Error(t, json.Unmarshal([]byte(in), &d), in)
	}
}

// TestPoliciesRoundTrip: every duration of a matched policy, its levels
// and its steps is a string, and reads back to the same policy; the
// stored form of earlier versions (nanoseconds) reads too.
func TestPoliciesRoundTrip(t *testing.T) {
	t.Parallel()
	ps := []approval.MatchedPolicy{{
		Name: "p", Hash: "h", ReminderInterval: time.Hour,
		Escalation: []approval.EscalationStep{{After: 2 * time.Hour, Action: approval.StepReminder}},
	}, {
		Name: "chain", Hash: "h2",
		Chain: []approval.Level{{Name: "one", Timeout: 4 * time.Hour, Require: approval.RequireAny,
			Escalation: []approval.EscalationStep{{Before: time.Minute, Action: approval.StepNotify, To: []approval.Approver{approval.User("bob")}}}}},
	}}
	b, err := json.Marshal(wire.Policies(ps))
	require.NoError(t, err)
	s := string(b)
	for _, want := range []string{`"reminder_interval":"1h0m0s"`, `"after":"2h0m0s"`, `"timeout":"4h0m0s"`, `"before":"1m0s"`} {
		require.Contains(t, s, want)
	}
	require.NotContains(t, s, "000000000", "no nanoseconds")
	var back []wire.MatchedPolicy
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, ps, wire.FromPolicies(back))

	old, err := json.Marshal(ps) // the root package's own form, as stores keep it
	require.NoError(t, err)
	require.Contains(t, string(old), `"reminder_interval":3600000000000`)
	back = nil
	require.NoError(t, json.Unmarshal(old, &back))
	require.Equal(t, ps, wire.FromPolicies(back))
	require.Nil(t, wire.Policies(nil))
	require.Nil(t, wire.FromPolicies(nil))
}

// TestShowRequest: a request in the outputs' form shows its payloads as
// JSON and its durations as strings.
func TestShowRequest(t *testing.T) {
	t.Parallel()
	r := &approval.Request{
		ID: "req_0123456789abcdef0123456789abcdef", Status: approval.StatusPending,
		Action:      approval.Action{Name: "x", RequestedBy: "u", Payload: []byte(`{"a":1}`)},
		Edit:        &approval.PayloadEdit{Payload: []byte("text"), PayloadHash: "ph", ActionHash: "ah", By: "bob"},
		ApprovalTTL: time.Hour,
		Policies:    []approval.MatchedPolicy{{Name: "p", Hash: "h"}},
	}
	b, err := json.Marshal(wire.ShowRequest(r))
	require.NoError(t, err)
	var got map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b, &got))
	require.JSONEq(t, `{"name":"x","requested_by":"u","payload":{"a":1}}`, string(got["action"]))
	require.JSONEq(t, `{"payload_text":"text","payload_hash":"ph","action_hash":"ah","by":"bob","at":"0001-01-01T00:00:00Z"}`, string(got["edit"]))
	require.Equal(t, `"1h0m0s"`, string(got["approval_ttl"]))
	require.JSONEq(t, `[{"name":"p","hash":"h"}]`, string(got["policies"]))
	require.Equal(t, `"req_0123456789abcdef0123456789abcdef"`, string(got["id"]))
	require.Equal(t, []byte(`{"a":1}`), r.Action.Payload, "the request is untouched")
}
