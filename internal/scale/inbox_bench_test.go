package scale

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/signoff/approval"
)

// inboxEvery is how many open requests there are for each one the
// inbox's reviewer may decide.
const inboxEvery = 500

// BenchmarkScaleInbox measures a reviewer's inbox page (Gate.List with
// Awaiting, 50 to a page) over a store of N open requests of which the
// reviewer may decide one in 500, beside the floor of the store's own
// ListInbox for the same page, alternately in one loop. Before timing it
// walks every page once and requires the inbox complete: exactly the N/500
// requests marked. The requests are Build's pending ones (Mix{Pending: 1});
// every 500th is then given the reviewer as an approver of its policy,
// through Store.Update, as a reassignment would.
//
//	APPROVAL_SCALE=1 go test -run '^$' -bench 'ScaleInbox/sqlite/N=100000$' -benchtime 200x -v ./internal/scale
func BenchmarkScaleInbox(b *testing.B) {
	if os.Getenv(EnvScale) != "1" {
		b.Skipf("set %s=1 to build stores of open requests and measure inbox pages on them", EnvScale)
	}
	for _, backend := range Backends {
		b.Run(string(backend), func(b *testing.B) {
			for _, n := range []int{10_000, 100_000} {
				b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
					built := Build(b, backend, Spec{Requests: n, Mix: Mix{Pending: 1}})
					logBuild(b, built)
					benchInbox(b, built)
				})
			}
		})
	}
}

const inboxReviewer = "reviewer-1"

func benchInbox(b *testing.B, built *Built) {
	ctx := context.Background()
	ib, ok := built.Store.(approval.Inbox)
	if !ok {
		b.Skipf("%s does not implement approval.Inbox", built.Backend)
	}
	marked := markInbox(b, built.Store)
	g := NewGate(b, built.Store, nil)
	q := approval.RequestQuery{Awaiting: inboxReviewer, Limit: 50}
	var all []string
	for {
		page, err := g.List(ctx, q)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range page.Requests {
			all = append(all, r.ID)
		}
		if page.Next == "" {
			break
		}
		q.Cursor = page.Next
	}
	if !slices.Equal(all, marked) {
		b.Fatalf("the inbox lists %d requests, %d are marked", len(all), len(marked))
	}
	q.Cursor = ""
	want := min(q.Limit, len(marked))
	var op, floor time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		page, err := g.List(ctx, q)
		t1 := time.Now()
		fp, ferr := ib.ListInbox(ctx, approval.InboxQuery{People: []string{inboxReviewer}, Limit: 50})
		t2 := time.Now()
		if err != nil || ferr != nil || len(page.Requests) != want || len(fp.Requests) != want {
			b.Fatal(err, ferr, len(page.Requests), len(fp.Requests))
		}
		op += t1.Sub(t0)
		floor += t2.Sub(t1)
	}
	b.ReportMetric(float64(op.Nanoseconds())/float64(b.N), "page-ns/op")
	b.ReportMetric(float64(floor.Nanoseconds())/float64(b.N), "floor-ns/op")
	b.ReportMetric(float64(op)/float64(floor), "x-floor")
}

// markInbox makes inboxReviewer an approver of every inboxEvery-th open
// request of s (by ID), recorded as the gate records who may decide, and
// returns their IDs in order.
func markInbox(b *testing.B, s approval.Store) []string {
	ctx := context.Background()
	var marked []string
	q := approval.RequestQuery{Status: []approval.Status{approval.StatusPending, approval.StatusEscalated}, Limit: approval.MaxPageSize}
	i := 0
	for {
		page, err := s.List(ctx, q)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range page.Requests {
			if i++; i%inboxEvery != 0 {
				continue
			}
			p := &r.Policies[0]
			p.Approvers = append(p.Approvers, approval.User(inboxReviewer))
			p.Progress.People = slices.Sorted(slices.Values(append(p.Progress.People, inboxReviewer)))
			r.Deciders = slices.Sorted(slices.Values(append(r.Deciders, inboxReviewer)))
			r.Version++
			if err := s.Update(ctx, approval.Update{Request: r}); err != nil {
				b.Fatal(err)
			}
			marked = append(marked, r.ID)
		}
		if page.Next == "" {
			return marked
		}
		q.Cursor = page.Next
	}
}
