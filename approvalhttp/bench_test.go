package approvalhttp_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/signoff/approval"
	"github.com/signoff/approval/approvalhttp"
	"github.com/signoff/approval/memstore"
	"github.com/signoff/approval/sqlstore"
)

// The benchmarks behind the approvalhttp section of docs/PERFORMANCE.md.
// Run them together, so that the ratios compare one machine and one run:
//
//	go test -run '^$' -bench . -benchmem -count 5 ./approvalhttp
//
// Each store variant runs Decide alone (the yardstick), the approve round
// trip over loopback HTTP, and the review page, on one setup: a gate with
// a two-of-three finance policy and 1,000 other requests in the store.

type benchEnv struct {
	gate   *approval.Gate
	srv    *httptest.Server
	client *http.Client
}

func newBenchEnv(b *testing.B, store string) *benchEnv {
	b.Helper()
	_, priv, err := approval.GenerateKeys()
	if err != nil {
		b.Fatal(err)
	}
	var st approval.Store
	switch store {
	case "memstore":
		st = memstore.New()
	case "sqlite":
		s, err := sqlstore.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = s.Close() })
		st = s
	}
	g, err := approval.New(approval.Config{
		Store: st, SigningKey: priv, Logger: slog.New(slog.DiscardHandler),
		Directory: approval.StaticDirectory{Groups: map[string][]string{"finance": {"approver-0", "approver-1", "approver-2"}}},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = g.Close(context.Background()) })
	if err := g.SetPolicy("high_spend", approval.Policy{
		Match:             approval.CostAtLeast(1000, "USD"),
		Approvers:         []approval.Approver{approval.Group("finance")},
		RequiredApprovals: 2,
		Redact:            []string{"iban"},
	}); err != nil {
		b.Fatal(err)
	}
	h, err := approvalhttp.New(g, approvalhttp.Options{
		Identity: func(*http.Request) (string, error) { return "approver-2", nil },
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	e := &benchEnv{gate: g, srv: httptest.NewServer(h)}
	b.Cleanup(e.srv.Close)
	e.client = e.srv.Client()
	e.client.Transport.(*http.Transport).MaxIdleConnsPerHost = 8
	e.guard(b, 1000, "filler")
	return e
}

// guard creates n pending requests and returns their IDs.
func (e *benchEnv) guard(b *testing.B, n int, run string) []string {
	b.Helper()
	ids := make([]string, n)
	for i := range ids {
		res, err := e.gate.Guard(context.Background(), benchAction(fmt.Sprintf("%s-%d", run, i)))
		if err != nil || res.Status != approval.OutcomePending {
			b.Fatal(res, err)
		}
		ids[i] = res.RequestID
	}
	return ids
}

// benchAction is a realistic request: a message, metadata, a JSON payload
// with a redacted field, and a small diff.
func benchAction(run string) approval.Action {
	return approval.Action{
		Name: "wire-transfer", RequestedBy: "user-1", RunID: run, StepID: "pay",
		Cost: &approval.Cost{Amount: 5000, Currency: "USD"}, Risk: approval.RiskHigh, Tags: []string{"payments", "eu"},
		Message:     "Pay invoice INV-2291 to ACME GmbH",
		Metadata:    map[string]string{"ticket": "FIN-1182", "invoice": "INV-2291"},
		Constraints: []string{"single transfer", "EUR account only"},
		Payload:     []byte(`{"to":{"name":"ACME GmbH","iban":"DE89370400440532013000","bic":"COBADEFFXXX"},"amount":5000,"currency":"USD","reference":"INV-2291"}`),
		Provenance:  &approval.Provenance{Source: "sdk", CreatedBy: "agent:payments", CreatedFrom: "ticket FIN-1182"},
		Diff: []approval.FileDiff{{Path: "payments/queue.yaml", Hunks: []approval.Hunk{{OldStart: 4, OldLines: 2, NewStart: 4, NewLines: 3,
			Body: " - id: INV-2290\n+ - id: INV-2291\n   amount: 5000\n"}}}},
	}
}

// tokens issues one approve token per request for approver-1.
func (e *benchEnv) tokens(b *testing.B, ids []string) []string {
	b.Helper()
	toks := make([]string, len(ids))
	for i, id := range ids {
		tok, err := e.gate.IssueToken(id, "approver-1", approval.VerdictApprove, time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		toks[i] = tok
	}
	return toks
}

var benchStores = []string{"memstore", "sqlite"}

// BenchmarkDecide: Gate.Decide alone, one approval on a fresh request with
// a fresh token each iteration: the yardstick for the other two.
func BenchmarkDecide(b *testing.B) {
	for _, store := range benchStores {
		b.Run(store, func(b *testing.B) {
			e := newBenchEnv(b, store)
			ids := e.guard(b, b.N, "decide")
			toks := e.tokens(b, ids)
			ctx := context.Background()
			runtime.GC()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				r, err := e.gate.Decide(ctx, ids[i], approval.Decision{Token: toks[i], Verdict: approval.VerdictApprove})
				if err != nil || len(r.Votes) != 1 {
					b.Fatal(r, err)
				}
			}
		})
	}
}

// BenchmarkApproveRoundTrip: POST /api/approvals/{id}/approve with a
// link's token, over loopback HTTP with keep-alive, through Decide.
func BenchmarkApproveRoundTrip(b *testing.B) {
	for _, store := range benchStores {
		b.Run(store, func(b *testing.B) {
			e := newBenchEnv(b, store)
			ids := e.guard(b, b.N, "roundtrip")
			toks := e.tokens(b, ids)
			bodies := make([]string, b.N)
			for i, tok := range toks {
				bodies[i] = `{"token":"` + tok + `"}`
			}
			runtime.GC()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/api/approvals/"+ids[i]+"/approve", strings.NewReader(bodies[i]))
				req.Header.Set("Content-Type", "application/json")
				resp, err := e.client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatal(resp.Status)
				}
			}
		})
	}
}

// BenchmarkReviewPage: GET the review page of a request with one vote,
// rendered and served over loopback HTTP: as the signed-in reviewer
// ("session") and from a notification link, whose token is verified
// ("link").
func BenchmarkReviewPage(b *testing.B) {
	for _, store := range benchStores {
		for _, via := range []string{"session", "link"} {
			b.Run(store+"/"+via, func(b *testing.B) {
				e := newBenchEnv(b, store)
				id := e.guard(b, 1, "page")[0]
				tok := e.tokens(b, []string{id})[0]
				if _, err := e.gate.Decide(context.Background(), id, approval.Decision{Token: tok, Verdict: approval.VerdictApprove}); err != nil {
					b.Fatal(err)
				}
				url := e.srv.URL + "/approvals/" + id
				if via == "link" {
					link, err := e.gate.IssueToken(id, "approver-2", approval.VerdictApprove, time.Hour)
					if err != nil {
						b.Fatal(err)
					}
					url += "?verdict=approve&token=" + link
				}
				var size int64
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					resp, err := e.client.Get(url)
					if err != nil {
						b.Fatal(err)
					}
					size, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Fatal(resp.Status)
					}
				}
				b.ReportMetric(float64(size), "page-bytes")
			})
		}
	}
}

// BenchmarkReviewPageLargePayload: the session review page of a request
// whose payload is 256 KB of JSON (the page shows the first
// MaxPayloadDisplayBytes of it, pretty-printed), served over loopback
// HTTP from memstore. It reports the 99th percentile of the iterations'
// latencies ("p99-ms"): the sanity bound for a page a person reads is
// 20 ms.
func BenchmarkReviewPageLargePayload(b *testing.B) {
	e := newBenchEnv(b, "memstore")
	a := benchAction("large")
	var items []string
	for i := 0; len(strings.Join(items, ",")) < 255<<10; i++ {
		items = append(items, fmt.Sprintf(`{"line":%d,"sku":"SKU-%06d","qty":%d,"note":"<b>escape me</b> & more"}`, i, i, i%7+1))
	}
	a.Payload = []byte(`{"to":{"iban":"DE89370400440532013000"},"lines":[` + strings.Join(items, ",") + `]}`)
	res, err := e.gate.Guard(context.Background(), a)
	if err != nil || res.Status != approval.OutcomePending {
		b.Fatal(res, err)
	}
	url := e.srv.URL + "/approvals/" + res.RequestID
	lat := make([]time.Duration, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		resp, err := e.client.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatal(resp.Status)
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*99/100])/float64(time.Millisecond), "p99-ms")
	b.ReportMetric(float64(len(a.Payload)), "payload-bytes")
}

// BenchmarkLoopback is the transport yardstick: the same loopback server
// and client serving a static body of the review page's size ("page"),
// and answering a POST of a token-sized JSON body ("post"), with no work
// behind them. What the two benchmarks above cost beyond it is the
// handler's.
func BenchmarkLoopback(b *testing.B) {
	page := strings.Repeat("x", 5700)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"request_id":"req_0190b5d2a1c47e2f9c3b6a1d2e3f4a5b","status":"pending"}`)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, page)
	}))
	b.Cleanup(srv.Close)
	client := srv.Client()
	body := `{"token":"` + strings.Repeat("A", 230) + `"}`
	b.Run("page", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			resp, err := client.Get(srv.URL + "/approvals/x")
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
	b.Run("post", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			resp, err := client.Post(srv.URL+"/api/approvals/x/approve", "application/json", strings.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}
