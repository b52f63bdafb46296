package approval

import (
	"context"
	"time"

	cbackoff "github.com/cenkalti/backoff/v5"
)

// Outbox is an optional Store capability, found by type assertion: a store
// that keeps the notifications a change causes with the change itself, in
// the same atomic step, and hands them to delivery workers under a lease.
// With it, notifications survive a crash, are retried with backoff until
// their channel's attempt limit, and end, if every attempt failed, as dead
// letters an operator can list (Gate.ListOutbox) and send again
// (Gate.Redrive). memstore and sqlstore implement it; a store without it
// keeps in-process delivery (see Channel), which a crash loses.
//
// An outbox holds two kinds of message. A notice (Channel "") says that a
// notification of Type is due about a request; a worker expands it, once
// it has resolved the recipients, into one delivery per recipient and
// channel (SettleOutbox with Add), in one atomic step. A delivery carries
// its Notification (Body, JSON, without links: they are signed at each
// attempt, so no token is stored) and its ID is the Notification's ID,
// the same at every attempt: the idempotency key receivers deduplicate on.
//
// A message is claimed for a lease (ClaimOutbox): no other claim returns it
// until the lease ends, so workers in several processes sharing a database
// never send one message at once; a worker that dies holding a claim loses
// it when the lease ends, and the message goes to the next claim. Only the
// lease's owner can settle a message.
//
// storetest.Run checks an Outbox against this contract.
type Outbox interface {
	// CreateWithOutbox is Store.Create that, if it creates req, stores
	// msgs in the same atomic step; if it creates nothing, it stores none.
	CreateWithOutbox(ctx context.Context, req *Request, events []AuditEvent, msgs []OutboxMessage) (*Request, bool, error)

	// ClaimOutbox leases up to PageSize(q.Limit) pending messages of
	// q.Channel ("" for notices) whose NextAttempt is not after q.Now and
	// whose lease, if any, has ended, oldest NextAttempt first: it sets
	// their LeaseOwner to q.Owner and LeaseUntil to q.Now + q.Lease and
	// returns them.
	ClaimOutbox(ctx context.Context, q OutboxClaim) ([]OutboxMessage, error)

	// SettleOutbox records the outcome of a claimed message, and appends
	// s.Events, atomically. It returns ErrConflict, writing nothing, if
	// the message is not pending with LeaseOwner s.Owner (its lease ended
	// and another worker claimed it), and ErrNotFound if there is no such
	// message.
	SettleOutbox(ctx context.Context, s OutboxSettle) error

	// ListOutbox returns messages matching q in ascending ID order, at
	// most PageSize(q.Limit), and a cursor for the next page, empty on the
	// last page. A cursor the store did not issue is an error wrapping
	// ErrInvalidCursor.
	ListOutbox(ctx context.Context, q OutboxQuery) (OutboxPage, error)

	// RedriveOutbox makes the dead message id pending again, due at now,
	// with its attempts counted from zero, and appends event, with its
	// RequestID set to the message's, atomically; it seals event in place.
	// It returns ErrNotFound, writing nothing, if no dead message has that
	// ID.
	RedriveOutbox(ctx context.Context, id string, now time.Time, event *AuditEvent) error
}

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
