package approval

import (
	"context"
	"errors"
	"time"

	"github.com/signoff/approval/internal/delivery"
)

// Channel delivers notifications to people: a webhook, Slack, email, or
// anything else (package channels ships all three). The gate calls it off
// the request path, so a slow or failing channel never delays or fails
// Guard or Decide; each outcome is written to the audit trail
// (notification.sent, notification.failed, notification.dead_lettered).
//
// Delivery is at least once, from an outbox (the engine is the internal
// package delivery): the notices a change causes are kept with the change,
// each recipient's delivery is retried with backoff (Config.Delivery's
// Retry and ChannelRetry; a Send returns a SendError to mark a refusal as
// permanent or to pass on a Retry-After) and, after its last attempt,
// dead-lettered for Gate.ListOutbox and Gate.Redrive. Every attempt
// carries the same Notification.ID, the key receivers deduplicate on.
// Each channel runs up to Delivery.SendConcurrency sends at once, so one
// recipient whose sends hang does not hold up the others; there is no
// ordering between notifications.
//
// With a Store that implements Outbox (memstore, sqlstore), the outbox is
// the Store's: notices are stored in the change's own atomic step, survive
// a crash, and memory does not grow with the messages waiting: they wait
// in the store. With any other Store, the gate keeps the outbox in memory
// (Delivery.MemoryLimit): the same retries and dead letters while the
// process lives, a crash loses what it holds, a notification that does
// not fit, or that a gate closed before delivery leaves, is audited as
// notification.failed and logged, and its notices are expanded with the
// request as the change left it.
//
// Send gets a context that ends after Delivery.SendTimeout (30s by
// default); a Send still running then is abandoned and its attempt
// failed. After three sends in a row that ran out of time, the channel is
// blocked: its notifications wait, unattempted, except for one probe a
// minute (by Config.Now), and a probe that returns in time, with or
// without an error, unblocks it.
//
// A Send or a Name that panics is recovered: the send is audited as
// failed. Name is called once, by New (a panic there fails New); names
// must be unique among a gate's channels.
type Channel interface {
	// Name identifies the channel in the audit trail ("slack", "email").
	Name() string
	// Send delivers n, and should return when ctx ends. A receiver that
	// needs exactly once should deduplicate on Notification.ID. Send is
	// called by up to Config.Delivery.SendConcurrency goroutines at once.
	// An abandoned Send may still be running when the next begins.
	Send(ctx context.Context, n Notification) error
}

// Pager is a Channel that speaks of requests rather than to people: a
// paging or incident service, such as channels.PagerDuty, whose one alert
// per request is routed by the service to whoever is on call. A Pager is
// not part of a request's ordinary fan-out: the notices that go to
// approvers, the requester and voters never reach it, and a list of
// channels that defaults to "every channel" (EscalationStep.Channels,
// BreakGlass.SecurityChannels) means every channel but the Pagers. It
// gets a notification only
//
//   - when an escalation step (StepNotify, StepEscalate, StepReassign or
//     StepReminder) names it in EscalationStep.Channels, or a break-glass
//     alert in BreakGlass.SecurityChannels: one notification per notice,
//     of the notice's type, however many people the step names;
//   - when the request is resolved (NotifyResolved) or times out
//     (NotifyTimedOut), if an escalation step of any of its matched
//     policies, at any level, names it: one notification, whether or not
//     the step ran. The request's policy snapshot decides, so the answer
//     is the same on every gate and after a restart; the Pager must
//     therefore take a resolution of something it never raised as a
//     no-op (PagerDuty drops a resolve whose alert is not open).
//
// A Pager's notification has no Recipient, OnBehalfOf, ApproveURL or
// DenyURL: it is shared by whoever the service pages, and a decision
// link is a bearer token. ReviewURL is set as for anyone.
//
// There is no ordering between notifications, so a page held back by
// retries could otherwise reach the service after the request's
// resolution and stay open for good. Before each attempt of a
// notification that asks (any type but NotifyResolved and
// NotifyTimedOut) made while the request was open, the gate reads the
// request again; if it has been resolved since, the attempt carries the
// resolution instead (Type NotifyResolved or NotifyTimedOut, with the
// request's Status and Reason), which the audit trail says. A break-glass
// alert (NotifyAlert whose Note begins "BREAK-GLASS: ") is sent as it is:
// it reports something that happened, not a question.
type Pager interface {
	Channel
	// PagesRequests marks the channel as a Pager. The gate never calls
	// it.
	PagesRequests()
}

// SendError is an error a Channel's Send may return (or wrap) to steer
// retries. Any other error is transient: the message is retried with
// backoff until its channel's attempt limit.
type SendError struct {
	// Err is the failure itself, for logs and the audit trail.
	Err error
	// Permanent says no retry can succeed (the receiver refused the
	// message, as an HTTP 4xx other than 408 and 429 does): the message is
	// dead-lettered at once.
	Permanent bool
	// RetryAfter is how long the receiver asked the sender to wait (an
	// HTTP Retry-After); the next attempt is not before it. Zero: the
	// backoff decides.
	RetryAfter time.Duration
}

func (e *SendError) Error() string {
	if e.Err == nil {
		return "send failed"
	}
	return e.Err.Error()
}

func (e *SendError) Unwrap() error { return e.Err }

// Permanent wraps err as a send failure that retrying cannot fix.
func Permanent(err error) error { return &SendError{Err: err, Permanent: true} }

// RetryAfter wraps err as a transient send failure whose receiver asked
// for a wait of d before the next attempt.
func RetryAfter(err error, d time.Duration) error { return &SendError{Err: err, RetryAfter: d} }

// sendErrorOf returns the SendError in err's chain, or a zero one.
func sendErrorOf(err error) SendError {
	var se *SendError
	if errors.As(err, &se) {
		return *se
	}
	return SendError{Err: err}
}

// RetryPolicy says how often, and how far apart, the outbox tries to
// deliver a message through a channel (DeliveryConfig.Retry and
// ChannelRetry). It is data: the delivery engine computes the waits. The
// wait before attempt n+1 is InitialInterval × 2^(n-1), capped at
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

// policy is p as the delivery engine's schedule.
func (p RetryPolicy) policy() delivery.Policy {
	return delivery.Policy{MaxAttempts: p.MaxAttempts, InitialInterval: p.InitialInterval, MaxInterval: p.MaxInterval}
}

// NotificationType says why a notification was sent.
type NotificationType string

// Notification types.
const (
	// NotifyRequested goes to each eligible approver of a new request,
	// with that approver's own approve and deny links: the approvers of
	// each policy's current level, and again, when a chain's next level
	// opens or a step reassigns one, to its approvers.
	NotifyRequested NotificationType = "approval.requested"
	// NotifyReminder reminds the approvers of an open request who have not
	// answered yet, every Policy.ReminderInterval (sent by Tick).
	NotifyReminder NotificationType = "approval.reminder"
	// NotifyEscalated goes to the approvers an escalation step added.
	NotifyEscalated NotificationType = "approval.escalated"
	// NotifyResolved goes to the requester and the voters when a request is
	// approved, denied or cancelled.
	NotifyResolved NotificationType = "approval.resolved"
	// NotifyTimedOut goes to the requester and the approvers when a request
	// times out.
	NotifyTimedOut NotificationType = "approval.timed_out"
	// NotifyDigest gathers, for one recipient and channel, the asks
	// (NotifyRequested, NotifyReminder, NotifyEscalated) that waited for
	// the end of their digest window (DeliveryConfig.DigestWindow) into one
	// message: Notification.Digest holds each, with its own links. Its
	// RequestID, Action and hashes are empty: each item has its own.
	NotifyDigest NotificationType = "approval.digest"
)

// Digestible reports whether a notification of type t asks its recipient
// to decide, and may therefore wait in a digest.
func (t NotificationType) Digestible() bool {
	return t == NotifyRequested || t == NotifyReminder || t == NotifyEscalated
}

// Notification is one message to one recipient.
type Notification struct {
	// ID is unique per notification; receivers deduplicate on it.
	ID string `json:"id"`
	// Type says why it was sent.
	Type NotificationType `json:"type"`
	// RequestID is the request it is about.
	RequestID string `json:"request_id"`
	// Recipient is the user ID the notification is for; empty for a
	// Pager's (see Pager).
	Recipient string `json:"recipient"`
	// Status is the request's status when the notification was made.
	Status Status `json:"status"`
	// Action is what a vote on the request binds: the action asked for,
	// or, once an approver edited the payload, the action with the edited
	// payload (see Edit). It is redacted by the matched policies' Redact
	// names (Action.Redact); the hashes cover the real bytes.
	Action Action `json:"action"`
	// Redacted is set when a payload field or metadata value of Action is
	// masked, or its payload hidden.
	Redacted bool `json:"redacted,omitempty"`
	// ActionHash and PayloadHash are those of Action's real bytes: what
	// an approval binds.
	ActionHash string `json:"action_hash"`
	// PayloadHash is the payload's, beside ActionHash.
	PayloadHash string `json:"payload_hash,omitempty"`
	// Edit is set when an approver replaced the payload asked for: who
	// did, the original hashes, and what changed, redacted as Action is.
	Edit *EditSummary `json:"edit,omitempty"`
	// Policies names the matched policies and their snapshot hashes.
	Policies []PolicyRef `json:"policies"`
	// Reason is the policy reason for a new request, or the resolution.
	Reason string `json:"reason,omitempty"`
	// OnBehalfOf is set when Recipient is asked as a delegate: the
	// approver they stand in for (see Delegation).
	OnBehalfOf string `json:"on_behalf_of,omitempty"`
	// Note is the reason of the escalation step that sent it, if one did.
	Note string `json:"note,omitempty"`
	// Prior is the request's Prior: an identical action was approved and
	// ran recently, so approving this one runs it again. Channels show it
	// to the people who decide. Nil when there was none.
	Prior *PriorRun `json:"prior,omitempty"`
	// ReviewURL, set when Config.BaseURL is, opens the request's review
	// page. ApproveURL and DenyURL, set with it for an open request, carry
	// one token signed for Recipient alone, which allows either answer;
	// they open the review page with that answer first rather than
	// deciding on a bare GET, so link scanners and previews cannot decide,
	// and the page offers both.
	ReviewURL string `json:"review_url,omitempty"`
	// ApproveURL opens the review page with Approve first (see ReviewURL).
	ApproveURL string `json:"approve_url,omitempty"`
	// DenyURL opens it with Deny first.
	DenyURL string `json:"deny_url,omitempty"`
	// Progress is where each matched policy stood when the notification
	// was made (Request.Standing): its level, and per level or parallel
	// group the approvals counted, the approvals needed and who gave them.
	// It is information for the reader: a vote binds ActionHash, never
	// the progress shown. Nil for a request of no policies.
	Progress []PolicyStanding `json:"progress,omitempty"`
	// Votes are the votes cast so far, approvals and denials, in the
	// order they were recorded. Nil before the first.
	Votes []VoteSummary `json:"votes,omitempty"`
	// Urgent is set when a matched policy is urgent (Policy.Urgent): the
	// notification was sent at once, never held for a digest.
	Urgent bool `json:"urgent,omitempty"`
	// Digest, with NotifyDigest, holds the notifications gathered, oldest
	// first: each a whole notification for the same recipient, with its
	// own request, action, hashes, status as the digest was sent, and
	// links. Nil otherwise.
	Digest []Notification `json:"digest,omitempty"`
	// Deadline is when the request times out, if it does.
	Deadline time.Time `json:"deadline,omitzero"`
	// At is when the notification was made.
	At time.Time `json:"at"`
	// Attempt counts the deliveries of this notification, from 1; a
	// retry carries the same ID with a higher Attempt.
	Attempt int `json:"attempt,omitempty"`
	// TraceParent is the request's trace context (Request.TraceParent),
	// for a channel that propagates it (a traceparent header); empty
	// without one.
	TraceParent string `json:"trace_parent,omitempty"`
}

// VoteSummary is one vote as a notification shows it: who cast it, for
// whom, and the answer. The vote's comment, conditions and token stay on
// the request.
type VoteSummary struct {
	// Approver is the person who decided.
	Approver string `json:"approver"`
	// OnBehalfOf names the approver a delegate acted for, if any.
	OnBehalfOf string `json:"on_behalf_of,omitempty"`
	// Verdict is the answer.
	Verdict Verdict `json:"verdict"`
	// At is when the vote was recorded.
	At time.Time `json:"at"`
}

// ReviewPath is the path, below Config.BaseURL, of a request's review page:
// ReviewPath + request ID. Approve and deny links add "?verdict=...&token=...".
const ReviewPath = "/approvals/"
