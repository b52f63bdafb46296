package approval_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/signoff/approval"
	"github.com/signoff/approval/memstore"
)

// The benchmarks behind docs/PERFORMANCE.md. Run them together, so that
// the ratios (Decide against one ed25519.Verify, the matcher tree against
// hand-written Go) compare figures from one machine and one run:
//
//	go test -run '^$' -bench . -benchmem -count 5 .

func benchGate(b *testing.B, approvers int) *approval.Gate {
	b.Helper()
	_, priv, err := approval.GenerateKeys()
	if err != nil {
		b.Fatal(err)
	}
	members := make([]string, approvers)
	for i := range members {
		members[i] = fmt.Sprintf("approver-%d", i)
	}
	g, err := approval.New(approval.Config{
		Store:      memstore.New(),
		SigningKey: priv,
		Directory:  approval.StaticDirectory{Groups: map[string][]string{"finance": members}},
		Logger:     slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = g.Close(context.Background()) })
	return g
}

// BenchmarkGuardNoMatch: ten registered policies, none of which matches.
func BenchmarkGuardNoMatch(b *testing.B) {
	g := benchGate(b, 3)
	for i := range 10 {
		err := g.SetPolicy(fmt.Sprintf("p%d", i), approval.Policy{
			Match:             approval.Name(fmt.Sprintf("deploy:prod-%d-*", i)),
			Approvers:         []approval.Approver{approval.Group("finance")},
			RequiredApprovals: 1,
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	a := approval.Action{Name: "read-report", RequestedBy: "user-1", Tags: []string{"reporting"}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		res, err := g.Guard(ctx, a)
		if err != nil || res.Status != approval.OutcomeApproved {
			b.Fatal(res, err)
		}
	}
}

// BenchmarkGuardCreate: a matching policy with three eligible approvers;
// every iteration creates a new request (the payload differs). flat is one
// level of two approvals; chain-3 the same group in a chain of three
// levels (any, threshold(2), all) with an escalation step and a
// conditional level, so that Guard resolves the all-level's members as it
// opens the first.
func BenchmarkGuardCreate(b *testing.B) {
	finance := []approval.Approver{approval.Group("finance")}
	for _, bc := range []struct {
		name   string
		policy approval.Policy
	}{
		{"flat", approval.Policy{Match: approval.CostAtLeast(1000, "USD"), Approvers: finance, RequiredApprovals: 2}},
		{"chain-3", approval.Policy{Match: approval.CostAtLeast(1000, "USD"), Chain: []approval.Level{
			{Name: "review", Approvers: finance, Require: approval.RequireAll,
				Escalation: []approval.EscalationStep{{After: time.Hour, Action: approval.StepReminder}}},
			{Name: "sign-off", Approvers: finance, Require: approval.Threshold(2), Timeout: 4 * time.Hour},
			{Name: "security", Approvers: finance, When: approval.Field("metadata.priority", approval.OpEq, "critical")},
		}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			g := benchGate(b, 3)
			if err := g.SetPolicy("high_spend", bc.policy); err != nil {
				b.Fatal(err)
			}
			benchGuardCreate(b, g)
		})
	}
}

func benchGuardCreate(b *testing.B, g *approval.Gate) {
	actions := make([]approval.Action, 1<<16)
	for i := range actions {
		actions[i] = approval.Action{
			Name: "wire-transfer", RequestedBy: "user-1",
			Cost:    &approval.Cost{Amount: 5000, Currency: "USD"},
			Tags:    []string{"payments", "eu"},
			Payload: fmt.Appendf(nil, `{"to":"DE89370400440532013000","amount":5000,"ref":%d}`, i),
		}
	}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		res, err := g.Guard(ctx, actions[i%len(actions)])
		if err != nil || res.Status != approval.OutcomePending {
			b.Fatal(res, err)
		}
		i++
		if i%len(actions) == 0 {
			b.StopTimer()
			for j := range actions { // new identities for the next round
				actions[j].RunID = fmt.Sprint(i)
			}
			b.StartTimer()
		}
	}
}

// decideSetup makes a gate with a two-approval policy, b.N pending
// requests and a token for each, for the Decide benchmarks.
func decideSetup(b *testing.B) (g *approval.Gate, ids, toks []string) {
	g = benchGate(b, 3)
	if err := g.SetPolicy("high_spend", approval.Policy{
		Match:             approval.CostAtLeast(1000, "USD"),
		Approvers:         []approval.Approver{approval.Group("finance")},
		RequiredApprovals: 2,
	}); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	ids = make([]string, b.N)
	toks = make([]string, b.N)
	for i := range b.N {
		res, err := g.Guard(ctx, approval.Action{
			Name: "wire-transfer", RequestedBy: "user-1",
			Cost:  &approval.Cost{Amount: 5000, Currency: "USD"},
			RunID: fmt.Sprint(i),
		})
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = res.RequestID
		toks[i], err = g.IssueToken(res.RequestID, "approver-1", approval.VerdictApprove, time.Hour)
		if err != nil {
			b.Fatal(err)
		}
	}
	return g, ids, toks
}

// BenchmarkDecide: one approval on a pending request in memstore, token
// verification included. Every iteration uses a fresh token on a fresh
// request, all prepared before the timer starts.
func BenchmarkDecide(b *testing.B) {
	g, ids, toks := decideSetup(b)
	ctx := context.Background()
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		r, err := g.Decide(ctx, ids[i], approval.Decision{Token: toks[i], Verdict: approval.VerdictApprove})
		if err != nil || len(r.Votes) != 1 {
			b.Fatal(r, err)
		}
	}
}

// BenchmarkDecideAgainstVerify measures Decide and its yardstick, one
// ed25519.Verify of a token-sized payload, alternately in one loop, so
// that the machine's drift (a neighbour's load, the clock's frequency)
// weighs on both alike. It reports each one's time per operation and
// their ratio, the figure docs/PERFORMANCE.md holds to at most 1.2.
func BenchmarkDecideAgainstVerify(b *testing.B) {
	g, ids, toks := decideSetup(b)
	ctx := context.Background()
	pub, priv, _ := ed25519.GenerateKey(nil)
	msg := []byte(`{"act":"approve","exp":1772359200,"iat":1772355600,"kid":"AAAAAAAAAAA","rid":"req_0190b5d2a1c47e2f9c3b6a1d2e3f4a5b","sub":"approver-1","tid":"AAAAAAAAAAAAAAAAAAAAAA","v":1}`)
	sig := ed25519.Sign(priv, msg)
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	var decide, verify time.Duration
	for i := range b.N {
		t0 := time.Now()
		r, err := g.Decide(ctx, ids[i], approval.Decision{Token: toks[i], Verdict: approval.VerdictApprove})
		t1 := time.Now()
		ok := ed25519.Verify(pub, msg, sig)
		t2 := time.Now()
		if err != nil || len(r.Votes) != 1 || !ok {
			b.Fatal(r, err, ok)
		}
		decide += t1.Sub(t0)
		verify += t2.Sub(t1)
	}
	b.ReportMetric(float64(decide.Nanoseconds())/float64(b.N), "decide-ns/op")
	b.ReportMetric(float64(verify.Nanoseconds())/float64(b.N), "verify-ns/op")
	b.ReportMetric(float64(decide)/float64(verify), "decide/verify")
}

// BenchmarkEd25519Verify is the yardstick for Decide: one signature check
// of a payload the size of a token's.
func BenchmarkEd25519Verify(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	msg := []byte(`{"act":"approve","exp":1772359200,"iat":1772355600,"kid":"AAAAAAAAAAA","rid":"req_0190b5d2a1c47e2f9c3b6a1d2e3f4a5b","sub":"approver-1","tid":"AAAAAAAAAAAAAAAAAAAAAA","v":1}`)
	sig := ed25519.Sign(priv, msg)
	b.ReportAllocs()
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("bad signature")
		}
	}
}

var (
	benchActions = []approval.Action{
		{Name: "deploy", RequestedBy: "u", Risk: approval.RiskCritical, Tags: []string{"web", "production"}},
		{Name: "deploy", RequestedBy: "u", Risk: approval.RiskLow, Tags: []string{"production"}},
		{Name: "export", RequestedBy: "u", Risk: approval.RiskHigh, Tags: []string{"analytics", "staging", "customer-data"}},
		{Name: "export", RequestedBy: "u", Risk: approval.RiskHigh, Tags: []string{"analytics", "staging"}},
	}
	sink bool
)

// BenchmarkMatcherTree: "risk at least high AND any tag of production,
// customer-data" as a compiled matcher tree.
func BenchmarkMatcherTree(b *testing.B) {
	m := approval.All(approval.RiskAtLeast(approval.RiskHigh), approval.TagAny("production", "customer-data"))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		ok, _ := m.Match(&benchActions[i&3])
		sink = ok
		i++
	}
}

// BenchmarkMatcherHandWritten is the same logic written directly in Go.
func BenchmarkMatcherHandWritten(b *testing.B) {
	match := func(a *approval.Action) bool {
		return a.Risk >= approval.RiskHigh &&
			(slices.Contains(a.Tags, "production") || slices.Contains(a.Tags, "customer-data"))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		sink = match(&benchActions[i&3])
		i++
	}
}

// BenchmarkVerifyArtifact: what the executing side pays before it runs an
// action, against BenchmarkEd25519Verify (the golden artifact: two votes).
func BenchmarkVerifyArtifact(b *testing.B) {
	art, err := os.ReadFile("testdata/artifacts/golden.json")
	if err != nil {
		b.Fatal(err)
	}
	actionJSON, _ := os.ReadFile("testdata/artifacts/golden_action.json")
	pemKey, _ := os.ReadFile("testdata/artifacts/golden_key.pub.pem")
	pub, err := approval.DecodePublicKeyPEM(pemKey)
	if err != nil {
		b.Fatal(err)
	}
	var a approval.Action
	if err := json.Unmarshal(actionJSON, &a); err != nil {
		b.Fatal(err)
	}
	keys := []ed25519.PublicKey{pub}
	at := time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := approval.VerifyArtifactAt(art, a, keys, at); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGuardConsume: the Guard that consumes an approval, signing its
// artifact, against BenchmarkEd25519Sign (one signature of the artifact's
// size). Every iteration consumes its own approved request, prepared
// before the timer starts.
func BenchmarkGuardConsume(b *testing.B) {
	g := benchGate(b, 3)
	if err := g.SetPolicy("high_spend", approval.Policy{
		Match:             approval.CostAtLeast(1000, "USD"),
		Approvers:         []approval.Approver{approval.Group("finance")},
		RequiredApprovals: 1,
	}); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	actions := make([]approval.Action, b.N)
	for i := range b.N {
		actions[i] = approval.Action{
			Name: "wire-transfer", RequestedBy: "user-1",
			Cost:  &approval.Cost{Amount: 5000, Currency: "USD"},
			RunID: fmt.Sprint(i),
		}
		res, err := g.Guard(ctx, actions[i])
		if err != nil {
			b.Fatal(err)
		}
		tok, _ := g.IssueToken(res.RequestID, "approver-1", approval.VerdictApprove, time.Hour)
		if _, err := g.Decide(ctx, res.RequestID, approval.Decision{Token: tok, Verdict: approval.VerdictApprove}); err != nil {
			b.Fatal(err)
		}
	}
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		res, err := g.Guard(ctx, actions[i])
		if err != nil || res.Status != approval.OutcomeApproved || res.Artifact == nil {
			b.Fatal(res, err)
		}
	}
}

// BenchmarkEd25519Sign is the yardstick for BenchmarkGuardConsume: one
// signature over a payload the size of an artifact's.
func BenchmarkEd25519Sign(b *testing.B) {
	_, priv, _ := ed25519.GenerateKey(nil)
	msg := make([]byte, 560)
	b.ReportAllocs()
	for b.Loop() {
		ed25519.Sign(priv, msg)
	}
}
