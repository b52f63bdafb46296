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
	ID        string           `json:"id"`
	RequestID string           `json:"request_id"`
	Type      NotificationType `json:"type"`
	// Level is the escalation level reached, for NotifyEscalated.
	Level int `json:"level,omitempty"`
	// Channel is the channel's Name for a delivery, "" for a notice.
	Channel   string `json:"channel,omitempty"`
	Recipient string `json:"recipient,omitempty"`
	// Body is the delivery's Notification as JSON, without its links.
	Body        []byte      `json:"body,omitempty"`
	State       OutboxState `json:"state"`
	Attempts    int         `json:"attempts"`
	NextAttempt time.Time   `json:"next_attempt"`
	LeaseOwner  string      `json:"lease_owner,omitempty"`
	LeaseUntil  time.Time   `json:"lease_until,omitzero"`
	// LastError is the error of the latest failed attempt.
	LastError string    `json:"last_error,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// OutboxClaim is a lease request; see Outbox.ClaimOutbox.
type OutboxClaim struct {
	Owner   string
	Channel string
	Now     time.Time
	Lease   time.Duration
	Limit   int
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
	ID, Owner   string
	Outcome     OutboxOutcome
	Attempts    int
	NextAttempt time.Time
	LastError   string
	// Add is stored with the outcome: a notice's deliveries.
	Add []OutboxMessage
	// Events are appended to the audit trail with the outcome; the store
	// seals them in place.
	Events []AuditEvent
}

// OutboxQuery selects outbox messages. Zero fields do not filter.
type OutboxQuery struct {
	State     OutboxState
	Channel   string
	RequestID string
	Cursor    string
	Limit     int
}

// OutboxPage is one page of outbox messages.
type OutboxPage struct {
	Messages []OutboxMessage
	Next     string
}
