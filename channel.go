package approval

import (
	"context"
	"time"
)

// Channel delivers notifications to people: a webhook, Slack, email, or
// anything else. Send may be called concurrently. The gate calls it off the
// request path, so a slow or failing channel never delays or fails Guard or
// Decide; each outcome is written to the audit trail.
type Channel interface {
	// Name identifies the channel in the audit trail ("slack", "email").
	Name() string
	// Send delivers n. Delivery is at least once: a receiver may see the
	// same Notification.ID twice and should deduplicate on it.
	Send(ctx context.Context, n Notification) error
}

// NotificationType says why a notification was sent.
type NotificationType string

// Notification types.
const (
	// NotifyRequested goes to each eligible approver of a new request,
	// with that approver's own approve and deny links.
	NotifyRequested NotificationType = "approval.requested"
	// NotifyReminder reminds the approvers of an open request who have not
	// answered yet, every Policy.ReminderInterval (sent by Tick).
	NotifyReminder NotificationType = "approval.reminder"
	// NotifyEscalated goes to the approvers of a newly reached escalation
	// level.
	NotifyEscalated NotificationType = "approval.escalated"
	// NotifyResolved goes to the requester and the voters when a request is
	// approved, denied or cancelled.
	NotifyResolved NotificationType = "approval.resolved"
	// NotifyTimedOut goes to the requester and the approvers when a request
	// times out.
	NotifyTimedOut NotificationType = "approval.timed_out"
)

// Notification is one message to one recipient.
type Notification struct {
	// ID is unique per notification; receivers deduplicate on it.
	ID        string           `json:"id"`
	Type      NotificationType `json:"type"`
	RequestID string           `json:"request_id"`
	// Recipient is the user ID the notification is for.
	Recipient string `json:"recipient"`
	// Status is the request's status when the notification was made.
	Status Status `json:"status"`
	// Action is what the request is about, with the hashes reviewers check.
	Action      Action `json:"action"`
	ActionHash  string `json:"action_hash"`
	PayloadHash string `json:"payload_hash,omitempty"`
	// Policies names the matched policies and their snapshot hashes.
	Policies []PolicyRef `json:"policies"`
	// Reason is the policy reason for a new request, or the resolution.
	Reason string `json:"reason,omitempty"`
	// ReviewURL, ApproveURL and DenyURL are set when Config.BaseURL is.
	// ApproveURL and DenyURL carry a token signed for Recipient alone; they
	// open a confirmation page rather than deciding on a bare GET, so link
	// scanners and previews cannot decide.
	ReviewURL  string `json:"review_url,omitempty"`
	ApproveURL string `json:"approve_url,omitempty"`
	DenyURL    string `json:"deny_url,omitempty"`
	// Deadline is when the request times out, if it does.
	Deadline time.Time `json:"deadline,omitzero"`
	At       time.Time `json:"at"`
}

// ReviewPath is the path, below Config.BaseURL, of a request's review page:
// ReviewPath + request ID. Approve and deny links add "?verdict=...&token=...".
const ReviewPath = "/approvals/"
