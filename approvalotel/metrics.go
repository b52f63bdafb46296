package approvalotel

import (
	"errors"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/signoff/approval"
)

// The attribute keys of metrics and spans (see the package doc).
const (
	keyOutcome   = attribute.Key("approval.outcome")
	keyPolicy    = attribute.Key("approval.policy")
	keyMatched   = attribute.Key("approval.policy.matched")
	keyRejection = attribute.Key("approval.decision.rejection")
	keyChannel   = attribute.Key("approval.channel")
	keyRequestID = attribute.Key("approval.request.id")
	keyPolicies  = attribute.Key("approval.policies")
	keyAttempt   = attribute.Key("approval.notification.attempt")
	keyCount     = attribute.Key("approval.tick.count")
	keyErrorType = attribute.Key("error.type")
)

// Bucket boundaries, in seconds.
var (
	// callBuckets suit Guard: from a no-match's microseconds to a slow
	// store's seconds.
	callBuckets = []float64{0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
		0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}
	// tickBuckets suit Tick, which reads a page of due requests.
	tickBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
	// sendBuckets suit a notification sent over the network, up to the
	// default send timeout.
	sendBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}
	// decisionBuckets suit people: a second to a week.
	decisionBuckets = []float64{1, 5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800,
		43200, 86400, 172800, 345600, 604800}
)

// instruments are an Observer's metric instruments.
type instruments struct {
	meter            metric.Meter
	guardDuration    metric.Float64Histogram
	created          metric.Int64Counter
	resolved         metric.Int64Counter
	requestDuration  metric.Float64Histogram
	decisions        metric.Int64Counter
	attempts         metric.Int64Counter
	deliveryDuration metric.Float64Histogram
	deadLettered     metric.Int64Counter
	tickDuration     metric.Float64Histogram
	dropped          metric.Int64Counter
	unmatched        metric.Int64Counter

	// The observable gauges, fed by Observer.ObserveGate.
	open       metric.Int64ObservableGauge
	outboxDead metric.Int64ObservableGauge
	outboxPend metric.Int64ObservableGauge
	outboxAge  metric.Float64ObservableGauge
}

func newInstruments(m metric.Meter) (instruments, error) {
	in := instruments{meter: m}
	var errs []error
	hist := func(name, desc string, buckets []float64) metric.Float64Histogram {
		h, err := m.Float64Histogram(name, metric.WithDescription(desc), metric.WithUnit("s"),
			metric.WithExplicitBucketBoundaries(buckets...))
		errs = append(errs, err)
		return h
	}
	counter := func(name, desc, unit string) metric.Int64Counter {
		c, err := m.Int64Counter(name, metric.WithDescription(desc), metric.WithUnit(unit))
		errs = append(errs, err)
		return c
	}
	gauge := func(name, desc, unit string) metric.Int64ObservableGauge {
		g, err := m.Int64ObservableGauge(name, metric.WithDescription(desc), metric.WithUnit(unit))
		errs = append(errs, err)
		return g
	}
	in.guardDuration = hist("approval.guard.duration", "Duration of Guard calls.", callBuckets)
	in.created = counter("approval.request.created", "Requests created, once under each policy they matched.", "{request}")
	in.resolved = counter("approval.request.resolved", "Requests resolved, once under each policy they matched.", "{request}")
	in.requestDuration = hist("approval.request.duration", "Time to decision: from a request's creation to its resolution, by the gate's clock.", decisionBuckets)
	in.decisions = counter("approval.decisions", "Decide and BreakGlass calls, accepted or not.", "{decision}")
	in.attempts = counter("approval.notification.attempts", "Attempts to send a notification.", "{attempt}")
	in.deliveryDuration = hist("approval.notification.duration", "Duration of attempts to send a notification.", sendBuckets)
	in.deadLettered = counter("approval.notification.dead_lettered", "Notifications given up on: dead letters made.", "{message}")
	in.tickDuration = hist("approval.tick.duration", "Duration of Tick calls.", tickBuckets)
	in.dropped = counter("approval.observer.dropped", "Observations dropped because the observer fell behind.", "{observation}")
	in.unmatched = counter("approval.guard.unmatched", "Guards no policy matched, approved at once: counted, not timed.", "{call}")
	in.open = gauge("approval.request.open", "Open requests (pending or escalated), under each policy they matched.", "{request}")
	in.outboxPend = gauge("approval.outbox.pending", "Notifications waiting for an attempt.", "{message}")
	in.outboxDead = gauge("approval.outbox.dead", "Dead letters: notifications given up on and not redriven.", "{message}")
	var err error
	in.outboxAge, err = m.Float64ObservableGauge("approval.outbox.oldest_age",
		metric.WithDescription("Age of the oldest notification waiting for an attempt: how far delivery lags."), metric.WithUnit("s"))
	errs = append(errs, err)
	return in, errors.Join(errs...)
}

// measureOpts are the options of one attribute set, built once: each
// measurement passes its slice as it is, so that recording allocates
// nothing.
type measureOpts struct {
	add    []metric.AddOption
	record []metric.RecordOption
}

func newMeasureOpts(kvs ...attribute.KeyValue) *measureOpts {
	o := metric.WithAttributeSet(attribute.NewSet(kvs...))
	return &measureOpts{add: []metric.AddOption{o}, record: []metric.RecordOption{o}}
}

// guardKey is a Guard's outcome and whether a policy matched.
type guardKey struct {
	outcome string
	matched bool
}

// guardOptions returns the options of every outcome a Guard may have.
func guardOptions() map[guardKey]*measureOpts {
	m := map[guardKey]*measureOpts{}
	for _, out := range []string{
		string(approval.OutcomeApproved), string(approval.OutcomeModified), string(approval.OutcomePending),
		string(approval.OutcomeDenied), string(approval.OutcomeTimedOut), string(approval.OutcomeCancelled),
		string(approval.OutcomeAlreadyRan), approval.ObservedError,
	} {
		for _, matched := range []bool{false, true} {
			m[guardKey{out, matched}] = newMeasureOpts(keyOutcome.String(out), keyMatched.Bool(matched))
		}
	}
	return m
}

// attrKey names one attribute set: the attributes that has set.
type attrKey struct {
	kind                            approval.ObservationKind
	outcome, policy, class, channel string
	matched, noPolicy               bool
}

// attributes returns the key's attributes, as each kind records them.
func (k attrKey) attributes() []attribute.KeyValue {
	switch k.kind {
	case approval.ObserveGuard:
		return []attribute.KeyValue{keyOutcome.String(k.outcome), keyMatched.Bool(k.matched)}
	case approval.ObserveCreated, approval.ObserveResolved:
		if k.noPolicy {
			return []attribute.KeyValue{keyOutcome.String(k.outcome)}
		}
		return []attribute.KeyValue{keyPolicy.String(k.policy), keyOutcome.String(k.outcome)}
	case approval.ObserveDecide:
		if k.class == "" {
			return []attribute.KeyValue{keyOutcome.String(k.outcome)}
		}
		return []attribute.KeyValue{keyOutcome.String(k.outcome), keyRejection.String(k.class)}
	case approval.ObserveDelivery:
		return []attribute.KeyValue{keyChannel.String(k.channel), keyOutcome.String(k.outcome)}
	}
	return []attribute.KeyValue{keyChannel.String(k.channel)} // dead letters
}

// deadLetterKey is the attribute set of approval.notification.dead_lettered.
func deadLetterKey(channel string) attrKey { return attrKey{channel: channel} }

// maxCachedSets bounds attrCache: the sets come from policy and channel
// names and a fixed vocabulary, so a gate needs a few dozen; a bound
// keeps a host that names policies without end from growing it for ever.
const maxCachedSets = 4096

// attrCache keeps the options of attribute sets met before. Safe for
// concurrent use.
type attrCache struct {
	m sync.Map // attrKey → *measureOpts
	n atomic.Int64
}

func (c *attrCache) get(k attrKey) *measureOpts {
	if v, ok := c.m.Load(k); ok {
		return v.(*measureOpts)
	}
	o := newMeasureOpts(k.attributes()...)
	if c.n.Load() >= maxCachedSets {
		return o
	}
	if v, loaded := c.m.LoadOrStore(k, o); loaded {
		return v.(*measureOpts)
	}
	c.n.Add(1)
	return o
}
