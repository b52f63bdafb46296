package approvalotel

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/signoff/approval"
)

// The span names (see the package doc).
const (
	spanGuard    = "approval.guard"
	spanDecide   = "approval.decide"
	spanWait     = "approval.wait"
	spanTick     = "approval.tick"
	spanDelivery = "approval.delivery"
	spanResolved = "approval.resolved"
)

// TraceParent returns the traceparent a request built by a Guard with
// ctx, which began at start, is stored with: that of ctx's span when ctx
// has a valid one, so that the approval continues the caller's trace;
// otherwise that of the Guard's own span, approval.guard, started here as
// the root of a new trace, so that the approval is a trace of its own
// whose root is the Guard that asked for it. It returns "" when the
// TracerProvider records nothing (the global no-op provider). A
// tracestate is not kept.
//
// The root is started here, on the Guard's goroutine (its span ID is
// what the request stores), and ended on the observer's, with the
// Guard's observation (Observation.NewTraceParent names it): its
// attributes, status and end are the Guard's.
func (o *Observer) TraceParent(ctx context.Context, start time.Time) string {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		return traceParentOf(sc)
	}
	if start.IsZero() {
		start = time.Now()
	}
	// ctx has no span, so the span is a root; internal is the default
	// kind.
	_, span := o.tracer.Start(ctx, spanGuard, trace.WithTimestamp(start))
	sc := span.SpanContext()
	if !sc.IsValid() {
		return "" // a provider that records nothing
	}
	if span.IsRecording() {
		o.roots.add(sc.SpanID(), span, start)
	}
	return traceParentOf(sc)
}

// traceParentOf returns the traceparent of sc, as the W3C Trace Context
// propagator (propagation.TraceContext) writes it: version 00, and of the
// flags only those the specification defines (sampled, random). A
// tracestate is not kept.
func traceParentOf(sc trace.SpanContext) string {
	const hexd = "0123456789abcdef"
	var b [55]byte
	copy(b[:], "00-")
	put := func(at int, src []byte) {
		for i, c := range src {
			b[at+2*i], b[at+2*i+1] = hexd[c>>4], hexd[c&0xf]
		}
	}
	tid, sid := sc.TraceID(), sc.SpanID()
	put(3, tid[:])
	b[35] = '-'
	put(36, sid[:])
	b[52] = '-'
	put(53, []byte{byte(sc.TraceFlags() & (trace.FlagsSampled | trace.FlagsRandom))})
	return string(b[:])
}

// traceCarrier carries one traceparent header, without a map.
type traceCarrier struct{ traceparent string }

const traceparentHeader = "traceparent"

func (c *traceCarrier) Get(key string) string {
	if key == traceparentHeader {
		return c.traceparent
	}
	return ""
}

func (c *traceCarrier) Set(key, value string) {
	if key == traceparentHeader {
		c.traceparent = value
	}
}

func (c *traceCarrier) Keys() []string { return []string{traceparentHeader} }

// withRemoteParent returns ctx with the span context tp holds as its
// remote parent, and that span context; ctx and an invalid span context
// if tp is not a valid traceparent.
func withRemoteParent(ctx context.Context, tp string) (context.Context, trace.SpanContext) {
	pctx := propagation.TraceContext{}.Extract(ctx, &traceCarrier{tp})
	sc := trace.SpanContextFromContext(pctx)
	if !sc.IsValid() || !sc.IsRemote() {
		return ctx, trace.SpanContext{}
	}
	return pctx, sc
}

// parentOf returns the context to start the span of an observation made
// with ctx under the stored trace context tp, and the links of the span:
//
//   - without tp, the span is a child of ctx's span, or a root;
//   - with tp and a span in ctx of the same trace, it is a child of ctx's
//     span, the closer of the two;
//   - with tp and a span in ctx of another trace (a reviewer's HTTP
//     request), it is a child of tp's span, in the approval's trace, with
//     a link to ctx's span;
//   - with tp and no span in ctx (a delivery), it is a child of tp's span.
func parentOf(ctx context.Context, tp string) (context.Context, []trace.Link) {
	if tp == "" {
		return ctx, nil
	}
	caller := trace.SpanContextFromContext(ctx)
	pctx, stored := withRemoteParent(ctx, tp)
	switch {
	case !stored.IsValid(), caller.IsValid() && caller.TraceID() == stored.TraceID():
		return ctx, nil
	case caller.IsValid():
		return pctx, []trace.Link{{SpanContext: caller}}
	}
	return pctx, nil
}

// span records ob as a span from its Start for its Duration.
func (o *Observer) span(ctx context.Context, ob *approval.Observation, name string, kind trace.SpanKind) {
	o.spanAt(ctx, ob, name, kind, ob.Start, ob.Start.Add(ob.Duration))
}

// spanAt records ob as a span from start to end, placed as parentOf says.
func (o *Observer) spanAt(ctx context.Context, ob *approval.Observation, name string, kind trace.SpanKind, start, end time.Time) {
	parent, links := parentOf(ctx, ob.TraceParent)
	// The span copies its start options: the attributes' slice is reused.
	kvs := attrPool.Get().(*[]attribute.KeyValue)
	*kvs = o.spanAttributes((*kvs)[:0], ob)
	opts := []trace.SpanStartOption{trace.WithTimestamp(start), trace.WithSpanKind(kind), trace.WithAttributes(*kvs...)}
	if links != nil {
		opts = append(opts, trace.WithLinks(links...))
	}
	_, span := o.tracer.Start(parent, name, opts...)
	clear(*kvs)
	attrPool.Put(kvs)
	o.finish(span, ob, end)
}

// finish gives span ob's error status, if it failed, and ends it at end.
func (o *Observer) finish(span trace.Span, ob *approval.Observation, end time.Time) {
	if failed(ob) {
		class := errorType(ob)
		span.SetAttributes(keyErrorType.String(class))
		// The class, never the error's text: that may hold a reason a
		// person typed or what a channel's receiver answered.
		span.SetStatus(codes.Error, class)
	}
	span.End(trace.WithTimestamp(end))
}

// failed reports whether ob describes a call that failed or was refused.
func failed(ob *approval.Observation) bool {
	if ob.Err != nil {
		return true
	}
	switch ob.Outcome {
	case approval.ObservedError, approval.ObservedRejected, approval.ObservedFailed, approval.ObservedDeadLetter:
		return true
	}
	return false
}

var attrPool = sync.Pool{New: func() any { return new([]attribute.KeyValue) }}

// spanAttributes appends the attributes of ob's span to kvs: IDs, names
// and outcomes, never a payload, a token, a reason or an error's text.
func (o *Observer) spanAttributes(kvs []attribute.KeyValue, ob *approval.Observation) []attribute.KeyValue {
	if ob.RequestID != "" {
		kvs = append(kvs, keyRequestID.String(ob.RequestID))
	}
	if len(ob.Policies) > 0 {
		kvs = append(kvs, o.policies(ob.Policies))
	}
	if ob.Outcome != "" {
		kvs = append(kvs, keyOutcome.String(ob.Outcome))
	}
	switch ob.Kind {
	case approval.ObserveDecide:
		if ob.Class != "" {
			kvs = append(kvs, keyRejection.String(ob.Class))
		}
	case approval.ObserveDelivery:
		kvs = append(kvs, keyChannel.String(ob.Channel), keyAttempt.Int(ob.Attempt))
	case approval.ObserveTick:
		kvs = append(kvs, keyCount.Int(ob.Count))
	}
	return kvs
}

// policies returns the approval.policies attribute of ps. A request
// matches one policy more often than not: that attribute is made once
// per policy.
func (o *Observer) policies(ps []string) attribute.KeyValue {
	if len(ps) != 1 {
		return keyPolicies.StringSlice(ps)
	}
	if kv, ok := o.onePolicy.Load(ps[0]); ok {
		return kv.(attribute.KeyValue)
	}
	kv := keyPolicies.StringSlice(ps)
	if o.attrs.n.Load() < maxCachedSets {
		o.onePolicy.Store(ps[0], kv)
		o.attrs.n.Add(1)
	}
	return kv
}
