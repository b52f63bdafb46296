// Package approvalotel records what approval gates do as OpenTelemetry
// metrics and traces: an approval.TraceObserver on the OpenTelemetry API.
//
//	obs, err := approvalotel.New(approvalotel.Options{}) // the global providers
//	gate, err := approval.New(approval.Config{..., Observer: obs})
//	reg, err := obs.ObserveGate(gate) // the gauges
//
// The gate hands observations to the Observer on a goroutine of its own
// (see approval.Observer): Guard and Decide never wait for a metric or a
// span, and spans are made after the fact, with the observed call's start
// and end times.
//
// # Metrics
//
// Durations are seconds, as float histograms with explicit buckets suited
// to each; counts use UCUM annotations. No metric attribute holds a
// request ID, a payload, a token, a reason or an error's text: request
// IDs are on spans only.
//
//	name                                 instrument        unit           attributes
//	approval.guard.duration              histogram         s              approval.outcome, approval.policy.matched
//	approval.guard.unmatched             counter           {call}         (none)
//	approval.request.created             counter           {request}      approval.policy, approval.outcome
//	approval.request.resolved            counter           {request}      approval.policy, approval.outcome
//	approval.request.duration            histogram         s              approval.policy, approval.outcome
//	approval.request.open                observable gauge  {request}      approval.policy
//	approval.decisions                   counter           {decision}     approval.outcome, approval.decision.rejection
//	approval.notification.attempts       counter           {attempt}      approval.channel, approval.outcome
//	approval.notification.duration       histogram         s              approval.channel, approval.outcome
//	approval.notification.dead_lettered  counter           {message}      approval.channel
//	approval.outbox.pending              observable gauge  {message}      approval.channel
//	approval.outbox.dead                 observable gauge  {message}      approval.channel
//	approval.outbox.oldest_age           observable gauge  s              approval.channel
//	approval.tick.duration               histogram         s              (none)
//	approval.observer.dropped            counter           {observation}  (none)
//
// approval.guard.duration's outcome is the Result status, or "error";
// approval.policy.matched is false for a Guard that failed before any
// policy was evaluated (an invalid action). Its buckets run from 10µs to
// 5s. A Guard no policy matched (approved at once) is the hot path of
// every ungated action: the gate counts it and reports the count about
// once a second (approval.ObserveUnmatched), so it is in
// approval.guard.unmatched and not timed.
//
// approval.request.created counts requests stored, with their status as
// they were created (pending; approved or denied when no person is
// needed); approval.request.resolved counts requests leaving the open
// states (approved, denied, timed_out, cancelled), and
// approval.request.duration is their time to decision, from creation to
// resolution by the gate's clock, with buckets from 1s to 7 days. A
// request that matched several policies counts once under each of them.
// approval.request.open is the open requests (pending or escalated) under
// each policy, 0 for a policy of the gate with none.
//
// approval.decisions counts Decide and BreakGlass calls: accepted,
// rejected (approval.decision.rejection says why: token_expired,
// token_used, token_invalid, token_mismatch, not_eligible,
// self_approval, already_decided, not_pending, action_changed, invalid,
// not_found or directory) or error (rejection "other": the store failed).
//
// approval.notification.attempts counts each attempt to send a
// notification, delivered, failed (to be retried) or dead_letter (given
// up on); approval.notification.duration times them (buckets 1ms to 60s),
// and approval.notification.dead_lettered counts the dead letters made.
// The outbox gauges are the state of each channel's messages now:
// waiting, dead (until redriven), and the age of the oldest waiting, by
// the gate's clock (absent for a channel with none waiting).
//
// The observable gauges are fed by Observer.ObserveGate, which runs one
// Gate.Stats per collection.
//
// # Traces
//
// One approval is one trace. When a Guard creates a request, the gate asks
// Observer.TraceParent for the trace context to store with it
// (approval.Request.TraceParent): that of the span in the Guard's context,
// so that the approval continues the caller's trace; or, when the context
// has none, that of the Guard's own span, approval.guard, the root of a
// new trace. What happens to the request later, in this process or
// another sharing the store, joins that trace:
//
//	span                kind      parent
//	approval.guard      internal  the Guard's span; else none: the root of the approval it asked for
//	approval.decide     internal  the stored context, linked to the caller's span (see below)
//	approval.wait       internal  the stored context, linked to the caller's span
//	approval.delivery   client    the stored context: one span per attempt
//	approval.resolved   internal  the stored context: an instant, when the request left the open states
//	approval.tick       internal  the Tick's span, else a root
//
// For a span with a stored context, if the observed call's context has a
// span of the same trace, that span is the parent (it is the closer of
// the two); if it has a span of another trace, such as the reviewer's
// HTTP request that carried a decision, the span is a child of the stored
// context and has a link to the caller's span, so that the approval's
// trace and the HTTP request's trace lead to each other. A Decide
// refused before its request was read (a bad or expired token) has no
// stored context: its span is a child of the caller's span.
//
// A Guard no policy matched makes no span (and records its histogram
// without allocating). A Guard without a span that the store answered
// with an existing request (a caller asking again, the Guard that
// consumes an approval) is the root of a trace of its own, with a link
// to that request's trace. Ticks that moved nothing and failed
// nothing make a span only inside a caller's span: a gate's Run ticks
// every second.
//
// Span attributes: approval.request.id, approval.policies (string slice),
// approval.outcome, approval.decision.rejection (a refused Decide),
// approval.channel and approval.notification.attempt (a delivery),
// approval.tick.count (a Tick). A call that failed or was refused has an
// Error status and an error.type attribute naming the class of its error
// (the rejection class; timeout, canceled, not_found, conflict, ...;
// "channel" for a channel's own error; otherwise "other"), never the
// error's text, which may hold a reason a person typed or what a
// channel's receiver answered. No span holds a payload or a token.
//
// Spans of the HTTP requests themselves come from wrapping the
// approvalhttp handler with otelhttp.NewHandler; see
// docs/OBSERVABILITY.md.
package approvalotel
