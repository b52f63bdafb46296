package memstore_test

import (
	"context"
	"testing"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/fixture"
	"github.com/signoff/approval/memstore"
)

// BenchmarkListOpen: a page of open requests (List with the open
// statuses), with none and with 100,000 ended requests stored beside the
// 200 open ones: the two should cost alike, List walking the open
// requests alone.
//
//	go test -run '^$' -bench ListOpen -benchmem ./memstore
func BenchmarkListOpen(b *testing.B) {
	for _, ended := range []int{0, 100_000} {
		b.Run(map[int]string{0: "ended=0", 100_000: "ended=100k"}[ended], func(b *testing.B) {
			s := memstore.New(memstore.WithRetention(-1))
			ctx := context.Background()
			for i := range ended + 200 {
				r := fixture.NewRequest()
				if i < ended {
					r.Status = approval.StatusDenied
				}
				if _, _, err := s.Create(ctx, r, nil); err != nil {
					b.Fatal(err)
				}
			}
			q := approval.RequestQuery{Status: []approval.Status{approval.StatusPending, approval.StatusEscalated}, Limit: 50}
			b.ReportAllocs()
			for b.Loop() {
				page, err := s.List(ctx, q)
				if err != nil || len(page.Requests) != 50 {
					b.Fatal(len(page.Requests), err)
				}
			}
		})
	}
}
