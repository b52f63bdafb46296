package sqlstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signoff/approval"
)

// commitClock is a Store that notes when its last Update that resolved a
// request began and returned: the decision committed in between, and had
// committed when it returned.
type commitClock struct {
	*Store
	began, at atomic.Int64 // UnixNano
}

func (c *commitClock) Update(ctx context.Context, u approval.Update) error {
	began := time.Now()
	err := c.Store.Update(ctx, u)
	if err == nil && !u.Request.Status.Open() {
		c.began.Store(began.UnixNano())
		c.at.Store(time.Now().UnixNano())
	}
	return err
}

// BenchmarkWaitAcrossStores measures how soon a Wait on one replica
// returns after another replica's decision commits, on PostgreSQL: two
// gates, each over a Store with its own pool on one database. Each
// iteration guards a request on gate A, starts Wait on gate B, lets it
// read the request once (so that it waits), approves on A (when B polls,
// at a moment drawn uniformly from B's poll period, as a person's
// decision would come), and takes the time from the decision's commit
// (A's Store.Update returning) to B's Wait returning; p50-ms and p99-ms
// are the median and 99th percentile of those latencies. A notified Wait
// may return before the deciding process has read its COMMIT's answer, so
// a latency may be below zero; update-ms is the median time A's Update
// took, within which the commit happened. ns/op is the whole iteration,
// the wait for the decision included. Configurations:
//
//   - notify: B's Store listens (the default), B polls once a minute, so
//     only the notification can wake it;
//   - poll=100ms and poll=1s (the default PollInterval): B's Store does not
//     listen (Listen(false)), so B learns of the decision at its next
//     poll, as Wait did before notifications.
//
// Needs APPROVAL_POSTGRES_DSN:
//
//	go test -run '^$' -bench WaitAcrossStores -benchtime 100x ./sqlstore
func BenchmarkWaitAcrossStores(b *testing.B) {
	for _, c := range []struct {
		name   string
		listen bool
		poll   time.Duration
	}{
		{"notify", true, time.Minute},
		{"poll=100ms", false, 100 * time.Millisecond},
		{"poll=1s", false, time.Second},
	} {
		b.Run(c.name, func(b *testing.B) {
			dsn := postgresDSN(b)
			_, key, err := approval.GenerateKeys()
			if err != nil {
				b.Fatal(err)
			}
			clock := &commitClock{Store: open(b, dsn)}
			deciding := replica(b, clock, key, time.Minute)
			s := observe(open(b, dsn, Listen(c.listen)))
			waiting := replica(b, s, key, c.poll)
			if c.listen {
				// Connect the listener before the clock runs.
				_, stop := s.SubscribeResolved("req_" + randomHex())
				defer stop()
				awaitListening(b, s.Store, 1)
			}
			var lat, upd []time.Duration
			for b.Loop() {
				id := guardPending(b, deciding)
				done := waitAsync(b.Context(), waiting, id)
				s.awaitGet(b, id)
				if !c.listen {
					// Decisions come at any moment of the poll period:
					// the sleep is the load measured, not a wait.
					time.Sleep(rand.N(c.poll))
				}
				approve(b, deciding, id)
				w := <-done
				if w.err != nil || w.r.Status != approval.StatusApproved {
					b.Fatalf("Wait: %v, %v", w.r, w.err)
				}
				lat = append(lat, w.at.Sub(time.Unix(0, clock.at.Load())))
				upd = append(upd, time.Duration(clock.at.Load()-clock.began.Load()))
			}
			slices.Sort(lat)
			slices.Sort(upd)
			ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
			b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
			b.ReportMetric(ms(lat[(len(lat)*99+99)/100-1]), "p99-ms")
			b.ReportMetric(ms(upd[len(upd)/2]), "update-ms")
			if testing.Verbose() {
				fmt.Printf("%s: min %v, max %v over %d\n", c.name, lat[0], lat[len(lat)-1], len(lat))
			}
		})
	}
}
