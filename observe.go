package approval

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/signoff/approval/internal/relay"
)

// Observer hears what a gate does, for metrics and traces
// (Config.Observer; package approvalotel implements it on OpenTelemetry).
//
// The gate hands each Observation to a goroutine of its own, which calls
// Observe, one observation at a time, in the order they happened on each
// of the gate's paths. An Observe that panics is recovered and logged; one
// that blocks holds up only the observations after it: once
// ObserverQueue of them wait, the gate drops new ones, and says how many
// in an ObserveDropped observation when the queue has room again. Guard,
// Decide and every other path never wait for an Observer.
type Observer interface {
	// Observe records o. ctx is the context of the call that o
	// describes (Guard's, Decide's, Wait's; a background context for
	// deliveries and Tick): read its values (a trace span), not its
	// deadline, which may have passed.
	Observe(ctx context.Context, o Observation)
}

// TraceObserver is an Observer that also gives each new request the trace
// context it is stored with (Request.TraceParent), so that what happens to
// the request later, in this process or another sharing the store, joins
// the trace of the call that created it.
type TraceObserver interface {
	Observer
	// TraceParent returns the W3C trace context (a traceparent header
	// value, "00-<trace-id>-<parent-id>-<flags>") the request a Guard
	// with ctx creates is stored with, or "" for none; start is when the
	// Guard began (its observation's Start), for a span it starts. It is
	// called on the Guard's own goroutine, once per request the Guard
	// builds, before the store says whether it keeps it or answers with
	// an earlier request of the same action; so it must return at once
	// (it reads ctx or starts a span; no I/O). The Guard's observation
	// carries the value back as NewTraceParent, whether the request was
	// kept or not. A panic is recovered and stores no trace context; a
	// value that is not a well-formed traceparent is not stored.
	TraceParent(ctx context.Context, start time.Time) string
}

// ObservationKind says what an Observation describes.
type ObservationKind uint8

const (
	// ObserveGuard is one Guard call that matched a policy (or failed):
	// Start, Duration, Outcome (a Result status, or "error"), RequestID
	// (if a request answered), Policies (the matched ones), TraceParent
	// (of the request that answered), NewTraceParent, Err. A Guard no
	// policy matched is counted in ObserveUnmatched instead.
	ObserveGuard ObservationKind = iota + 1
	// ObserveCreated is a request stored: RequestID, Policies,
	// TraceParent, Outcome (its status: pending, or approved or denied as
	// it was created).
	ObserveCreated
	// ObserveResolved is a request leaving the open states: RequestID,
	// Policies, TraceParent, Outcome (approved, denied, timed_out or
	// cancelled), Duration (from its creation, by the gate's clock).
	ObserveResolved
	// ObserveDecide is one Decide (or BreakGlass) call: Start, Duration,
	// RequestID, Outcome ("accepted" or "rejected"), Class (why it was
	// rejected), Policies and TraceParent (of an accepted decision's
	// request), Err.
	ObserveDecide
	// ObserveWait is one Wait call that returned: Start, Duration,
	// RequestID, Outcome (the request's status, or "error" with Err: the
	// caller's context ended first), Policies and TraceParent when the
	// request was read.
	ObserveWait
	// ObserveTick is one Tick: Start, Duration, Count (requests it moved
	// on), Err.
	ObserveTick
	// ObserveDelivery is one attempt to send a notification: Start,
	// Duration, RequestID, Channel, Attempt, Outcome ("delivered",
	// "failed": retried later, or "dead_letter"), Policies, TraceParent,
	// Err.
	ObserveDelivery
	// ObserveDropped says Count observations were dropped because the
	// Observer fell behind (see Observer).
	ObserveDropped
	// ObserveUnmatched says Count Guards matched no policy (and were
	// approved at once) since the last ObserveUnmatched: the hot path of
	// every ungated action is counted, not timed nor observed one by
	// one. It comes about once a second while there are some, and at
	// Close.
	ObserveUnmatched
)

var kindNames = [...]string{"", "guard", "created", "resolved", "decide", "wait", "tick", "delivery", "dropped", "unmatched"}

// String returns the kind's name: "guard", "created", "resolved",
// "decide", "wait", "tick", "delivery", "dropped" or "unmatched".
func (k ObservationKind) String() string {
	if int(k) < len(kindNames) && k > 0 {
		return kindNames[k]
	}
	return fmt.Sprintf("ObservationKind(%d)", k)
}

// The outcomes of observations that are not statuses.
const (
	ObservedError      = "error"
	ObservedAccepted   = "accepted"
	ObservedRejected   = "rejected"
	ObservedDelivered  = "delivered"
	ObservedFailed     = "failed"
	ObservedDeadLetter = "dead_letter"
)

// Observation is one thing a gate did (see ObservationKind for the fields
// each kind sets). It never holds a payload, a token or a reason anyone
// typed: what it says is safe for a metrics or tracing backend.
type Observation struct {
	// Kind says what happened.
	Kind ObservationKind
	// Start is when the call began, by the real clock (time.Now, not
	// Config.Now): a span's start.
	Start time.Time
	// Duration is how long the call took, or for ObserveResolved how long
	// the request was open.
	Duration time.Duration
	// RequestID is the request's ID.
	RequestID string
	// Policies are the names of the request's policies.
	Policies []string
	// TraceParent is the request's stored trace context
	// (Request.TraceParent).
	TraceParent string
	// NewTraceParent, for ObserveGuard, is what TraceObserver.TraceParent
	// returned for the request the Guard built, or "" if it built none
	// (or the observer gave none). It equals TraceParent when that
	// request was stored, or when the Guard failed with it; it differs
	// when the store answered with an earlier request of the same action,
	// whose trace context TraceParent then is.
	NewTraceParent string
	// Outcome is what came of it; see the kinds.
	Outcome string
	// Class is why a decision was rejected, as one word: "token_expired",
	// "token_used", "token_invalid", "token_mismatch", "not_eligible",
	// "self_approval", "already_decided", "not_pending", "action_changed",
	// "invalid", "not_found", "passkey", "directory" or "other".
	Class string
	// Channel is a delivery's channel.
	Channel string
	// Attempt is a delivery's attempt number, from 1.
	Attempt int
	// Count is how many requests a Tick moved on, how many observations
	// were dropped, or how many Guards matched no policy.
	Count int
	// Err is the error the call returned, if any.
	Err error
}

// DefaultObserverQueue is the default Config.ObserverQueue.
const DefaultObserverQueue = 4096

// observer runs an Observer on a goroutine of its own (see Observer),
// through an internal/relay.
type observer struct {
	obs   Observer
	trace TraceObserver // obs, if it is one
	log   logger
	relay *relay.Relay[Observation]
	// unmatched counts the Guards no policy matched, for the next
	// ObserveUnmatched.
	unmatched atomic.Uint64
}

// logger is the part of slog.Logger the observer uses.
type logger interface {
	Error(msg string, args ...any)
}

// unmatchedEvery is how often the observer reports the Guards no policy
// matched, and the observations it dropped.
const unmatchedEvery = time.Second

func newObserver(obs Observer, queue int, log logger) *observer {
	o := &observer{obs: obs, log: log}
	o.trace, _ = obs.(TraceObserver)
	o.relay = relay.New(queue, o.call,
		func(n int) { o.call(context.Background(), Observation{Kind: ObserveDropped, Count: n}) },
		func() {
			if n := o.unmatched.Swap(0); n > 0 {
				o.call(context.Background(), Observation{Kind: ObserveUnmatched, Count: int(n)})
			}
		}, unmatchedEvery)
	return o
}

// observe queues ob, or counts it dropped if the queue is full. It never
// blocks.
func (o *observer) observe(ctx context.Context, ob Observation) { o.relay.Put(ctx, ob) }

// call runs Observe, recovering a panic.
func (o *observer) call(ctx context.Context, ob Observation) {
	defer func() {
		if p := recover(); p != nil {
			o.log.Error("approval: observer panicked; observation lost", "kind", ob.Kind.String(), "panic", p, "stack", string(debug.Stack()))
		}
	}()
	o.obs.Observe(ctx, ob)
}

// close stops the observer's goroutine once the observations queued are
// delivered, or when ctx ends.
func (o *observer) close(ctx context.Context) { o.relay.Close(ctx) }

// traceParent asks a TraceObserver for the trace context of a request a
// Guard that began at start built.
func (o *observer) traceParent(ctx context.Context, start time.Time) (tp string) {
	if o == nil || o.trace == nil {
		return ""
	}
	defer func() {
		if p := recover(); p != nil {
			o.log.Error("approval: observer's TraceParent panicked; the request has no trace context", "panic", p, "stack", string(debug.Stack()))
			tp = ""
		}
	}()
	if tp = o.trace.TraceParent(ctx, start); !validTraceParent(tp) {
		return ""
	}
	return tp
}

// validTraceParent reports whether s is a version-00 W3C traceparent
// with a trace ID and parent ID that are not all zero.
func validTraceParent(s string) bool {
	if len(s) != 55 || s[:3] != "00-" || s[35] != '-' || s[52] != '-' {
		return false
	}
	zero := func(h string) bool {
		for i := range len(h) {
			if h[i] != '0' {
				return false
			}
		}
		return true
	}
	for i := 3; i < 55; i++ {
		if i == 35 || i == 52 {
			continue
		}
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return !zero(s[3:35]) && !zero(s[36:52])
}

// policyNames returns the names of ps.
func policyNames(ps []MatchedPolicy) []string {
	if len(ps) == 0 {
		return nil
	}
	out := make([]string, len(ps))
	for i := range ps {
		out[i] = ps[i].Name
	}
	return out
}

// refNames returns the names of refs.
func refNames(refs []PolicyRef) []string {
	if len(refs) == 0 {
		return nil
	}
	out := make([]string, len(refs))
	for i := range refs {
		out[i] = refs[i].Name
	}
	return out
}

// observeCommit reports the requests created and resolved by a write of
// req with events that has committed.
func (g *Gate) observeCommit(ctx context.Context, req *Request, events []AuditEvent) {
	if g.obs == nil {
		return
	}
	for i := range events {
		e := &events[i]
		if e.RequestID != req.ID {
			continue
		}
		switch e.Type {
		case EventRequestCreated:
			g.obs.observe(ctx, Observation{Kind: ObserveCreated, RequestID: req.ID, Policies: policyNames(req.Policies),
				TraceParent: req.TraceParent, Outcome: string(req.Status)})
		case EventRequestApproved, EventRequestDenied, EventRequestTimedOut, EventRequestCancelled:
			g.obs.observe(ctx, Observation{Kind: ObserveResolved, RequestID: req.ID, Policies: policyNames(req.Policies),
				TraceParent: req.TraceParent, Outcome: resolvedOutcome(e.Type), Duration: max(e.At.Sub(req.CreatedAt), 0)})
		}
	}
}

func resolvedOutcome(t EventType) string {
	switch t {
	case EventRequestApproved:
		return string(StatusApproved)
	case EventRequestDenied:
		return string(StatusDenied)
	case EventRequestTimedOut:
		return string(StatusTimedOut)
	}
	return string(StatusCancelled)
}

// rejectClass names why a decision was refused (Observation.Class).
func rejectClass(err error) string {
	for _, c := range rejectClasses {
		if errors.Is(err, c.err) {
			return c.class
		}
	}
	if errors.Is(err, errResolveApprovers) {
		return "directory"
	}
	return "other"
}

var rejectClasses = []struct {
	err   error
	class string
}{
	{ErrTokenExpired, "token_expired"},
	{ErrTokenUsed, "token_used"},
	{ErrTokenMalformed, "token_invalid"},
	{ErrTokenSignature, "token_invalid"},
	{ErrTokenRequestMismatch, "token_mismatch"},
	{ErrTokenVerdictMismatch, "token_mismatch"},
	{ErrNotEligible, "not_eligible"},
	{ErrSelfApproval, "self_approval"},
	{ErrAlreadyDecided, "already_decided"},
	{ErrNotPending, "not_pending"},
	{ErrActionChanged, "action_changed"},
	{ErrInvalidDecision, "invalid"},
	{ErrInvalidCondition, "invalid"},
	{ErrNotFound, "not_found"},
	{ErrPasskey, "passkey"},
}
