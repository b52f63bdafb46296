package approvalotel

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/signoff/approval"
)

// ScopeName is the instrumentation scope of the tracer and meter an
// Observer uses.
const ScopeName = "github.com/signoff/approval/approvalotel"

// DefaultStatsTimeout is the default Options.StatsTimeout.
const DefaultStatsTimeout = 5 * time.Second

// Options configures an Observer. The zero value uses the global
// providers.
type Options struct {
	// TracerProvider makes the spans. Defaults to otel.GetTracerProvider().
	TracerProvider trace.TracerProvider
	// MeterProvider makes the instruments. Defaults to
	// otel.GetMeterProvider().
	MeterProvider metric.MeterProvider
	// StatsTimeout bounds the Gate.Stats that each collection of the
	// observable gauges runs (see Observer.ObserveGate). Defaults to
	// DefaultStatsTimeout.
	StatsTimeout time.Duration
}

// Observer records what gates do as OpenTelemetry metrics and spans: it is
// an approval.TraceObserver, for approval.Config.Observer. Make one with
// New (the zero value is not usable); it is safe for concurrent use, and
// one Observer may serve several gates.
type Observer struct {
	tracer       trace.Tracer
	statsTimeout time.Duration
	ins          instruments

	// guardOpts are the measurement options of every Guard outcome a gate
	// returns, built once so that recording a Guard allocates nothing.
	guardOpts map[guardKey]*measureOpts
	// attrs caches the measurement options of the other observations.
	attrs attrCache
	// onePolicy caches the approval.policies span attribute of each
	// policy matched alone.
	onePolicy sync.Map // string → attribute.KeyValue
	// roots are the approval.guard root spans TraceParent started, for
	// the Guards' observations to end.
	roots rootSpans
}

var _ approval.TraceObserver = (*Observer)(nil)

// New returns an Observer on the providers opts names. It fails only if
// the MeterProvider refuses an instrument.
func New(opts Options) (*Observer, error) {
	if opts.StatsTimeout < 0 {
		return nil, fmt.Errorf("approvalotel: New: Options.StatsTimeout is negative (%s): use 0 for the default", opts.StatsTimeout)
	}
	tp := opts.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	mp := opts.MeterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	o := &Observer{
		tracer:       tp.Tracer(ScopeName),
		statsTimeout: opts.StatsTimeout,
	}
	if o.statsTimeout == 0 {
		o.statsTimeout = DefaultStatsTimeout
	}
	var err error
	if o.ins, err = newInstruments(mp.Meter(ScopeName)); err != nil {
		return nil, fmt.Errorf("approvalotel: New: %w", err)
	}
	o.guardOpts = guardOptions()
	return o, nil
}

// Observe records ob as metrics and, for what concerns a request, a span
// (see the package doc). The gate calls it; ctx is the observed call's.
func (o *Observer) Observe(ctx context.Context, ob approval.Observation) {
	switch ob.Kind {
	case approval.ObserveGuard:
		o.guard(ctx, &ob)
	case approval.ObserveCreated:
		o.createdRequest(ctx, &ob)
	case approval.ObserveResolved:
		o.resolved(ctx, &ob)
	case approval.ObserveDecide:
		o.decide(ctx, &ob)
	case approval.ObserveWait:
		o.wait(ctx, &ob)
	case approval.ObserveTick:
		o.tick(ctx, &ob)
	case approval.ObserveDelivery:
		o.delivery(ctx, &ob)
	case approval.ObserveDropped:
		o.ins.dropped.Add(ctx, int64(ob.Count))
	case approval.ObserveUnmatched:
		o.ins.unmatched.Add(ctx, int64(ob.Count))
	}
}

func (o *Observer) guard(ctx context.Context, ob *approval.Observation) {
	matched := len(ob.Policies) > 0
	m := o.guardOpts[guardKey{ob.Outcome, matched}]
	if m == nil {
		m = o.attrs.get(attrKey{kind: approval.ObserveGuard, outcome: ob.Outcome, matched: matched})
	}
	o.ins.guardDuration.Record(ctx, ob.Duration.Seconds(), m.record...)
	traced := trace.SpanContextFromContext(ctx).IsValid()
	if !traced { // TraceParent started a root for this Guard
		if id, ok := rootID(ob.NewTraceParent); ok {
			if span := o.roots.take(id); span != nil {
				o.endRoot(span, ob)
				return
			}
		}
	}
	if !matched && ob.RequestID == "" && ob.Err == nil {
		return // no policy matched: nothing to trace
	}
	parent := ctx
	if !traced && ob.TraceParent != "" {
		// A caller without a span whose root was not kept (see rootSpans):
		// the Guard joins the trace of the request that answered it.
		parent, _ = withRemoteParent(ctx, ob.TraceParent)
	}
	o.span(parent, ob, spanGuard, trace.SpanKindInternal)
}

// endRoot ends span, the approval.guard root that TraceParent started
// for the Guard ob observes, as that Guard's span. A Guard the store
// answered with an earlier request of its action (a caller asking again,
// the Guard that consumes an approval) keeps its own trace, with a link
// to that request's.
func (o *Observer) endRoot(span trace.Span, ob *approval.Observation) {
	kvs := attrPool.Get().(*[]attribute.KeyValue)
	*kvs = o.spanAttributes((*kvs)[:0], ob)
	span.SetAttributes(*kvs...)
	clear(*kvs)
	attrPool.Put(kvs)
	if ob.TraceParent != "" && ob.TraceParent != ob.NewTraceParent {
		if _, sc := withRemoteParent(context.Background(), ob.TraceParent); sc.IsValid() {
			span.AddLink(trace.Link{SpanContext: sc})
		}
	}
	o.finish(span, ob, ob.Start.Add(ob.Duration))
}

func (o *Observer) createdRequest(ctx context.Context, ob *approval.Observation) {
	o.perPolicy(ob, func(m *measureOpts) { o.ins.created.Add(ctx, 1, m.add...) })
}

func (o *Observer) resolved(ctx context.Context, ob *approval.Observation) {
	secs := ob.Duration.Seconds()
	o.perPolicy(ob, func(m *measureOpts) {
		o.ins.resolved.Add(ctx, 1, m.add...)
		o.ins.requestDuration.Record(ctx, secs, m.record...)
	})
	if ob.TraceParent == "" {
		return // no trace to mark the resolution in
	}
	// An instant in the approval's trace: when it was resolved.
	at := time.Now()
	o.spanAt(ctx, ob, spanResolved, trace.SpanKindInternal, at, at)
}

func (o *Observer) decide(ctx context.Context, ob *approval.Observation) {
	o.ins.decisions.Add(ctx, 1, o.attrs.get(attrKey{kind: approval.ObserveDecide, outcome: ob.Outcome, class: ob.Class}).add...)
	o.span(ctx, ob, spanDecide, trace.SpanKindInternal)
}

func (o *Observer) wait(ctx context.Context, ob *approval.Observation) {
	o.span(ctx, ob, spanWait, trace.SpanKindInternal)
}

func (o *Observer) tick(ctx context.Context, ob *approval.Observation) {
	o.ins.tickDuration.Record(ctx, ob.Duration.Seconds())
	// A gate's Run ticks every second: a trace of each idle Tick would
	// bury the ones that did something.
	if ob.Count > 0 || ob.Err != nil || trace.SpanContextFromContext(ctx).IsValid() {
		o.span(ctx, ob, spanTick, trace.SpanKindInternal)
	}
}

func (o *Observer) delivery(ctx context.Context, ob *approval.Observation) {
	m := o.attrs.get(attrKey{kind: approval.ObserveDelivery, outcome: ob.Outcome, channel: ob.Channel})
	o.ins.attempts.Add(ctx, 1, m.add...)
	o.ins.deliveryDuration.Record(ctx, ob.Duration.Seconds(), m.record...)
	if ob.Outcome == approval.ObservedDeadLetter {
		o.ins.deadLettered.Add(ctx, 1, o.attrs.get(deadLetterKey(ob.Channel)).add...)
	}
	o.span(ctx, ob, spanDelivery, trace.SpanKindClient)
}

// perPolicy calls fn with the measurement options of ob's outcome under
// each of its policies: a request that matched several policies counts
// once under each. A request with none counts once, without a policy.
func (o *Observer) perPolicy(ob *approval.Observation, fn func(*measureOpts)) {
	if len(ob.Policies) == 0 {
		fn(o.attrs.get(attrKey{kind: ob.Kind, outcome: ob.Outcome, noPolicy: true}))
		return
	}
	for _, p := range ob.Policies {
		fn(o.attrs.get(attrKey{kind: ob.Kind, outcome: ob.Outcome, policy: p}))
	}
}

// errorType names the class of an observation's error for error.type:
// a fixed word, never the error's text, which may hold what a person
// typed or a channel's answer.
func errorType(ob *approval.Observation) string {
	if ob.Class != "" {
		return ob.Class
	}
	err := ob.Err
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	for _, c := range errorClasses {
		if errors.Is(err, c.err) {
			return c.class
		}
	}
	if ob.Kind == approval.ObserveDelivery {
		return "channel"
	}
	return "other"
}

var errorClasses = []struct {
	err   error
	class string
}{
	{approval.ErrInvalidAction, "invalid_action"},
	{approval.ErrInvalidIdentity, "invalid_identity"},
	{approval.ErrNotFound, "not_found"},
	{approval.ErrConflict, "conflict"},
	{approval.ErrClosed, "closed"},
	{approval.ErrUnsupported, "unsupported"},
}

// rootSpans holds the approval.guard root spans TraceParent started on
// the Guards' goroutines, by their traceparent, until the Guards'
// observations end them. A root whose observation never comes (the gate
// dropped it: the observer fell behind) is ended at its start, as an
// instant, once it is rootTimeout old; while maxRootSpans wait, a new
// root is ended at once in the same way, and its Guard's span is made
// as its child.
type rootSpans struct {
	mu    sync.Mutex
	spans map[trace.SpanID]rootSpan
	swept time.Time
}

type rootSpan struct {
	span  trace.Span
	start time.Time
}

const (
	maxRootSpans = 4096
	rootTimeout  = time.Minute
)

// rootID returns the span ID of traceparent tp, which TraceParent made.
func rootID(tp string) (trace.SpanID, bool) {
	var id trace.SpanID
	if len(tp) != 55 || tp[35] != '-' || tp[52] != '-' {
		return id, false
	}
	_, err := hex.Decode(id[:], []byte(tp[36:52]))
	return id, err == nil
}

func (r *rootSpans) add(id trace.SpanID, span trace.Span, start time.Time) {
	r.mu.Lock()
	if r.spans == nil {
		r.spans = make(map[trace.SpanID]rootSpan)
	}
	if len(r.spans) < maxRootSpans {
		r.spans[id] = rootSpan{span, start}
		span = nil
	}
	r.mu.Unlock()
	if span != nil {
		span.End(trace.WithTimestamp(start))
	}
}

// take removes the root of span ID id and returns it, or nil. Once in a
// while it also ends the roots waiting longer than rootTimeout.
func (r *rootSpans) take(id trace.SpanID) trace.Span {
	r.mu.Lock()
	s, ok := r.spans[id]
	if ok {
		delete(r.spans, id)
	}
	var stale []rootSpan
	if now := time.Now(); now.Sub(r.swept) >= rootTimeout/4 {
		r.swept = now
		for k, w := range r.spans {
			if now.Sub(w.start) >= rootTimeout {
				stale = append(stale, w)
				delete(r.spans, k)
			}
		}
	}
	r.mu.Unlock()
	for _, w := range stale {
		w.span.End(trace.WithTimestamp(w.start))
	}
	if !ok {
		return nil
	}
	return s.span
}
