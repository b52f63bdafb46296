package approvalhttp

import (
	"encoding/json"
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
