package approvalhttp

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// TestRequestJSONFollowsRequest: the API's request is approval.Request's own
// JSON with the action redacted, so a field of Request (hold_until here)
// shows without being listed again, and the secret is nowhere in it.
func TestRequestJSONFollowsRequest(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	r := &approval.Request{
		ID: "req_0123456789abcdef0123456789abcdef", Status: approval.StatusDenied,
		Action: approval.Action{
			Name: "wire-transfer", RequestedBy: "dave",
			Metadata: map[string]string{"iban": "DE89SECRET", "ticket": "OPS-1"},
			Payload:  []byte(`{"to":{"iban":"DE89SECRET"},"amount":5}`),
		},
		CreatedAt: at, UpdatedAt: at, HoldUntil: at.Add(time.Hour), Reminders: 2, Version: 3,
	}
	b, err := json.Marshal(toJSON(r, []string{"iban"}))
	require.NoError(t, err)
	body := string(b)
	require.NotContains(t, body, "DE89SECRET")
	require.Equal(t, 1, strings.Count(body, `"action":`))
	require.Equal(t, 1, strings.Count(body, `"payload":`))
	require.Equal(t, 1, strings.Count(body, `"metadata":`))
	var got struct {
		HoldUntil time.Time `json:"hold_until"`
		Reminders int       `json:"reminders"`
		Redacted  bool      `json:"redacted"`
		Action    struct {
			Name        string            `json:"name"`
			Metadata    map[string]string `json:"metadata"`
			PayloadSize int               `json:"payload_size"`
		} `json:"action"`
	}
	require.NoError(t, json.Unmarshal(b, &got))
	require.Equal(t, r.HoldUntil, got.HoldUntil)
	require.Equal(t, 2, got.Reminders)
	require.True(t, got.Redacted)
	require.Equal(t, "wire-transfer", got.Action.Name)
	require.Equal(t, "OPS-1", got.Action.Metadata["ticket"])
	require.Equal(t, len(r.Action.Payload), got.Action.PayloadSize)
	require.Equal(t, "DE89SECRET", r.Action.Metadata["iban"], "the caller's request is untouched")
}

// TestBodyOfKeepsPayloadBytes: the body Client.Guard sends carries the
// payload so that the handler reads back exactly its bytes: as itself
// when the encoder leaves it as it is, as text otherwise.
func TestBodyOfKeepsPayloadBytes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		payload string
		raw     bool // sent as itself, not as a JSON string
	}{
		{`{"b":1,"a":[true,null,"x"]}`, true},
		{`[1,2,3]`, true},
		{`12345678901234567890`, false},   // hashed as its raw bytes: text
		{`{"a": 1}`, false},               // whitespace the encoder would drop
		{"{\"a\":1}\n", false},            // so is a trailing newline
		{`{"html":"<b>&</b>"}`, false},    // escaped by the encoder
		{`{"s":"\u00e9"}`, true},          // escapes are kept as written
		{`"a JSON string"`, false},        // a string is read back as text
		{`null`, false},                   // null is read back as no payload
		{"line 1\nline 2\t\u2028", false}, // text
		{`{"a":1`, false},                 // not JSON: text
	} {
		b, err := bodyOf(approval.Action{Name: "x", RequestedBy: "agent-1", Payload: []byte(tc.payload)})
		require.NoError(t, err, tc.payload)
		enc, err := json.Marshal(b)
		require.NoError(t, err)
		require.Equal(t, tc.raw, !strings.HasPrefix(string(b.Payload), `"`), tc.payload)
		var back actionBody
		dec := json.NewDecoder(strings.NewReader(string(enc)))
		dec.DisallowUnknownFields()
		require.NoError(t, dec.Decode(&back))
		a, err := back.action()
		require.NoError(t, err)
		require.Equal(t, []byte(tc.payload), a.Payload, tc.payload)
	}
	b, err := bodyOf(approval.Action{Name: "x", RequestedBy: "agent-1"})
	require.NoError(t, err)
	enc, err := json.Marshal(b)
	require.NoError(t, err)
	require.JSONEq(t, `{"name":"x","requested_by":"agent-1"}`, string(enc), "what is not set is left out")
	b, err = bodyOf(approval.Action{Name: "x", RequestedBy: "agent-1", Payload: []byte("\xff\x00")})
	require.NoError(t, err)
	enc, err = json.Marshal(b)
	require.NoError(t, err)
	require.JSONEq(t, `{"name":"x","requested_by":"agent-1","payload_base64":"/wA="}`, string(enc), "bytes that are not text travel in base64")
	var back actionBody
	require.NoError(t, json.Unmarshal(enc, &back))
	a, err := back.action()
	require.NoError(t, err)
	require.Equal(t, []byte("\xff\x00"), a.Payload)
}

// TestProblemRoundTrip: every sentinel the handler maps to a problem comes
// back from the problem's JSON as that sentinel, through Problem.Unwrap.
func TestProblemRoundTrip(t *testing.T) {
	t.Parallel()
	for _, c := range errorClasses {
		p := classify(fmt.Errorf("approval: something req_x: %w", c.err))
		require.Equal(t, c.code, p.Code)
		b, err := json.Marshal(p)
		require.NoError(t, err)
		var got Problem
		require.NoError(t, json.Unmarshal(b, &got))
		require.ErrorIs(t, &got, c.err, c.code)
		require.Contains(t, got.Error(), c.code)
	}
	p := classify(errUnauthenticated)
	require.NoError(t, p.Unwrap())
	require.Equal(t, "server answered 401 unauthenticated: sign in, or open the link you were sent", p.Error())
}
