package approvalotel

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/signoff/approval"
)

// ObserveGate feeds the observable gauges from g: approval.request.open
// (per policy), approval.outbox.pending, approval.outbox.dead and
// approval.outbox.oldest_age (per channel; only for channels with a
// notification waiting). Every policy of g reads in approval.request.open,
// 0 when nothing is open under it; so does every channel in the outbox
// gauges. A gate takes its Observer
// when it is made, and the gauges need the gate, hence this second step:
//
//	obs, err := approvalotel.New(approvalotel.Options{})
//	gate, err := approval.New(approval.Config{..., Observer: obs})
//	reg, err := obs.ObserveGate(gate)
//	defer reg.Unregister()
//
// Each collection runs one g.Stats, bounded by Options.StatsTimeout; if it
// fails, the collection reports the error to the MeterProvider and no
// gauge value. Stats also computes the week's time to decision, which
// the gauges do not need: on a large store, collect every minute rather
// than every few seconds. Gates sharing a store report the same numbers:
// observe one of them.
//
// Unregister the returned Registration before closing the gate.
func (o *Observer) ObserveGate(g *approval.Gate) (metric.Registration, error) {
	if g == nil {
		return nil, errors.New("approvalotel: ObserveGate: gate is nil")
	}
	in := &o.ins
	return in.meter.RegisterCallback(func(ctx context.Context, ob metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, o.statsTimeout)
		defer cancel()
		st, err := g.Stats(ctx)
		if err != nil {
			return err
		}
		open := make(map[string]int, len(st.Open))
		for _, p := range st.Open {
			open[p.Policy] = p.Count
		}
		// A policy of the gate with nothing open reads 0, rather than
		// vanishing from the series.
		for _, p := range g.Policies() {
			if _, ok := open[p.Name]; !ok {
				open[p.Name] = 0
			}
		}
		for p, n := range open {
			ob.ObserveInt64(in.open, int64(n), metric.WithAttributeSet(attribute.NewSet(keyPolicy.String(p))))
		}
		for _, c := range st.Channels {
			set := metric.WithAttributeSet(attribute.NewSet(keyChannel.String(c.Channel)))
			ob.ObserveInt64(in.outboxPend, int64(c.Pending), set)
			ob.ObserveInt64(in.outboxDead, int64(c.Dead), set)
			if c.Pending > 0 && !c.OldestPending.IsZero() {
				ob.ObserveFloat64(in.outboxAge, max(st.At.Sub(c.OldestPending).Seconds(), 0), set)
			}
		}
		return nil
	}, in.open, in.outboxPend, in.outboxDead, in.outboxAge)
}
