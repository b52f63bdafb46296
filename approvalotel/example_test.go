package approvalotel_test

import (
	"context"
	"fmt"
	"log/slog"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/signoff/approval"
	"github.com/signoff/approval/approvalotel"
	"github.com/signoff/approval/memstore"
)

// An observer on SDK providers: a request created, counted under its
// policy, and stored with the trace context of its own root span.
func Example() {
	ctx := context.Background()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	tp := sdktrace.NewTracerProvider()
	obs, err := approvalotel.New(approvalotel.Options{TracerProvider: tp, MeterProvider: mp})
	if err != nil {
		panic(err)
	}
	_, key, _ := approval.GenerateKeys()
	gate, err := approval.New(approval.Config{
		Store: memstore.New(), SigningKey: key, Observer: obs, Logger: slog.New(slog.DiscardHandler),
		Directory: approval.StaticDirectory{Groups: map[string][]string{"finance": {"alice", "bob"}}},
	})
	if err != nil {
		panic(err)
	}
	_ = gate.SetPolicy("high_spend", approval.Policy{
		Match:             approval.CostAtLeast(1000, "USD"),
		Approvers:         []approval.Approver{approval.Group("finance")},
		RequiredApprovals: 1,
	})
	res, _ := gate.Guard(ctx, approval.Action{Name: "wire-transfer", RequestedBy: "carol",
		Cost: &approval.Cost{Amount: 5000, Currency: "USD"}})
	req, _ := gate.Get(ctx, res.RequestID)
	fmt.Println(res.Status, len(req.TraceParent))
	_ = gate.Close(ctx) // delivers the observations queued

	var rm metricdata.ResourceMetrics
	_ = reader.Collect(ctx, &rm)
	for _, m := range rm.ScopeMetrics[0].Metrics {
		if m.Name == "approval.request.created" {
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				policy, _ := dp.Attributes.Value("approval.policy")
				outcome, _ := dp.Attributes.Value("approval.outcome")
				fmt.Println(m.Name, policy.AsString(), outcome.AsString(), dp.Value)
			}
		}
	}
	// Output:
	// pending 55
	// approval.request.created high_spend pending 1
}
