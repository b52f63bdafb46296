package approval

import "time"

// OutboxState is the state of an outbox message. A message delivered (or
// a notice expanded) leaves the outbox; its record is the audit trail.
type OutboxState string

// Outbox states.
const (
	// OutboxPending messages wait for their next attempt.
	OutboxPending OutboxState = "pending"
	// OutboxDead messages failed every attempt their channel allows, or
	// were refused for good (SendError.Permanent); Gate.Redrive sends them
	// again.
	OutboxDead OutboxState = "dead"
)

// OutboxMessage is one notice or delivery in an Outbox.
type OutboxMessage struct {
	// ID is unique. For a delivery it is the Notification's ID.
	ID string `json:"id"`
	// RequestID is the request the message is about.
	RequestID string `json:"request_id"`
	// Type is the notification's.
	Type NotificationType `json:"type"`
	// Level is the escalation level reached, for NotifyEscalated.
	Level int `json:"level,omitempty"`
	// Channel is the channel's Name for a delivery, "" for a notice.
	Channel string `json:"channel,omitempty"`
	// Recipient is the delivery's user; empty for a notice.
	Recipient string `json:"recipient,omitempty"`
	// Body is the delivery's Notification as JSON, without its links.
	Body []byte `json:"body,omitempty"`
	// State is pending, or dead once retries ran out.
	State OutboxState `json:"state"`
	// Attempts counts the attempts made so far.
	Attempts int `json:"attempts"`
	// NextAttempt is when the message is next due.
	NextAttempt time.Time `json:"next_attempt"`
	// LeaseOwner is the worker that claimed it; empty when unclaimed.
	LeaseOwner string `json:"lease_owner,omitempty"`
	// LeaseUntil is when that claim ends unless settled.
	LeaseUntil time.Time `json:"lease_until,omitzero"`
	// LastError is the error of the latest failed attempt.
	LastError string `json:"last_error,omitempty"`
	// CreatedAt is when the message was written.
	CreatedAt time.Time `json:"created_at"`
}

// OutboxClaim is a lease request; see Outbox.ClaimOutbox.
type OutboxClaim struct {
	// Owner names the claiming worker; SettleOutbox must give it back.
	Owner string
	// Channel is the lane to claim from: a channel's Name, or "" for notices.
	Channel string
	// Recipient, if not empty, claims only the deliveries to that person
	// (the gate gathers a digest with it).
	Recipient string
	// Now is the time a message must be due by.
	Now time.Time
	// Lease is how long the claim lasts unless settled.
	Lease time.Duration
	// Limit bounds the messages claimed.
	Limit int
}

// OutboxOutcome says how SettleOutbox ends an attempt.
type OutboxOutcome int

// Outcomes of an attempt.
const (
	// OutboxDone removes the message: a delivery was sent, or a notice
	// expanded into OutboxSettle.Add.
	OutboxDone OutboxOutcome = iota + 1
	// OutboxRetry keeps the message pending, due at NextAttempt, with
	// Attempts and LastError recorded and the lease released.
	OutboxRetry
	// OutboxDeadLetter makes the message dead, with Attempts and
	// LastError recorded.
	OutboxDeadLetter
)

// OutboxSettle is the outcome of one claimed message; see
// Outbox.SettleOutbox.
type OutboxSettle struct {
	// ID is the claimed message's.
	ID string
	// Owner is the claim's (OutboxClaim.Owner): a settle by another owner
	// is refused.
	Owner string
	// Outcome says how the attempt ended.
	Outcome OutboxOutcome
	// Attempts is the message's attempt count after this one.
	Attempts int
	// NextAttempt is when a retried message is next due.
	NextAttempt time.Time
	// LastError is the attempt's error, for a retry or a dead letter.
	LastError string
	// Add is stored with the outcome: a notice's deliveries.
	Add []OutboxMessage
	// Events are appended to the audit trail with the outcome; the store
	// seals them in place.
	Events []AuditEvent
}

// OutboxQuery selects outbox messages. Zero fields do not filter.
type OutboxQuery struct {
	// State keeps messages in that state.
	State OutboxState
	// Channel keeps one channel's deliveries.
	Channel string
	// RequestID keeps one request's messages.
	RequestID string
	// Cursor continues from an earlier page's Next.
	Cursor string
	// Limit bounds the page (see PageSize).
	Limit int
}

// OutboxPage is one page of outbox messages.
type OutboxPage struct {
	// Messages are the page's messages.
	Messages []OutboxMessage
	// Next is the cursor of the next page; empty on the last.
	Next string
}
