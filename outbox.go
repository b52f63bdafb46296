package approval

import (
	"time"

	cbackoff "github.com/cenkalti/backoff/v5"
)

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

// RetryPolicy says how often, and how far apart, the outbox tries to
// deliver a message through a channel (Config.Retry, Config.ChannelRetry).
// The wait before attempt n+1 is InitialInterval × 2^(n-1), capped at
// MaxInterval, each randomised by ±50 % (jitter, so that receivers coming
// back are not met by every sender at once), and never shorter than a
// receiver's Retry-After (SendError.RetryAfter, itself capped at
// MaxInterval).
type RetryPolicy struct {
	// MaxAttempts bounds the attempts per message; after the last failed
	// one the message is dead-lettered. Defaults to 8.
	MaxAttempts int
	// InitialInterval is the wait after the first failure. Defaults to 5s.
	InitialInterval time.Duration
	// MaxInterval caps the wait. Defaults to 1h.
	MaxInterval time.Duration
}

// Retry defaults.
const (
	DefaultMaxAttempts     = 8
	DefaultInitialInterval = 5 * time.Second
	DefaultMaxInterval     = time.Hour
)

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.InitialInterval <= 0 {
		p.InitialInterval = DefaultInitialInterval
	}
	if p.MaxInterval <= 0 {
		p.MaxInterval = DefaultMaxInterval
	}
	if p.MaxInterval < p.InitialInterval {
		p.MaxInterval = p.InitialInterval
	}
	return p
}

// wait returns the wait after a failed attempt number attempts (from 1),
// given the receiver's Retry-After.
func (p RetryPolicy) wait(attempts int, retryAfter time.Duration) time.Duration {
	b := &cbackoff.ExponentialBackOff{
		InitialInterval:     p.InitialInterval,
		RandomizationFactor: 0.5,
		Multiplier:          2,
		MaxInterval:         p.MaxInterval,
	}
	b.Reset()
	var d time.Duration
	for range min(attempts, 64) {
		d = b.NextBackOff()
	}
	return max(d, min(retryAfter, p.MaxInterval))
}
