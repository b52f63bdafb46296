package scale

import (
	"container/heap"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/signoff/approval"
)

// Spec describes a store to build.
type Spec struct {
	// Requests is how many requests the store holds.
	Requests int
	// Mix is the share of each kind among them. Defaults to DefaultMix.
	Mix Mix
	// Seed makes the store: the same Spec (and End) makes the same
	// requests, events and token IDs. Defaults to 1.
	Seed uint64
	// End is when the store is built: the requests that ended did so
	// before it; the live ones were created in the twelve hours before
	// it, and none is due within twelve hours after it. Defaults to now,
	// truncated to the second.
	End time.Time
}

// Layout of a store's timeline (see the package documentation).
const (
	// endedEvery is the time between the creations of requests that ended.
	endedEvery = 30 * time.Second
	// endedBefore is how long before End the last of them was created:
	// longer than any ended kind's life.
	endedBefore = 4 * 24 * time.Hour
	// liveFrom and liveTo bound the creation times of live requests,
	// before End: each live kind's life is shorter than liveTo.
	liveFrom = 12 * time.Hour
	liveTo   = 1 * time.Hour
)

func (s Spec) withDefaults() Spec {
	if s.Mix == nil {
		s.Mix = DefaultMix
	}
	if s.Seed == 0 {
		s.Seed = 1
	}
	if s.End.IsZero() {
		s.End = time.Now().UTC().Truncate(time.Second)
	}
	s.End = s.End.UTC()
	return s
}

// counts returns how many requests of each kind s makes (largest
// remainders, so they add up to s.Requests).
func (s Spec) counts() (map[Kind]int, error) {
	var sum float64
	for k, w := range s.Mix {
		if _, ok := wantStatus[k]; !ok || w < 0 || math.IsNaN(w) || math.IsInf(w, 0) {
			return nil, fmt.Errorf("scale: Mix: %q has weight %v: use the Kind constants with weights >= 0", k, w)
		}
		sum += w
	}
	if sum <= 0 && s.Requests > 0 {
		return nil, fmt.Errorf("scale: Mix has no weight: give at least one Kind a positive weight")
	}
	counts := make(map[Kind]int, len(kinds))
	left := s.Requests
	rem := make([]float64, len(kinds))
	for i, k := range kinds {
		exact := float64(s.Requests) * s.Mix[k] / sum
		counts[k] = int(exact)
		rem[i] = exact - float64(counts[k])
		left -= counts[k]
	}
	for ; left > 0; left-- {
		best := 0
		for i := range kinds {
			if rem[i] > rem[best] {
				best = i
			}
		}
		counts[kinds[best]]++
		rem[best] = -1
	}
	return counts, nil
}

// item is one write of a synthetic request, in the stream Build loads.
type item struct {
	// story is the request the write belongs to.
	story *story
	// write is the write, its events sealed into the chain.
	write write
}

// story is one synthetic request: its writes, in order, and what the SQL
// loaders store of it.
type story struct {
	writes []write
	// final is the request as its last write left it; body its JSON, as
	// sqlstore encodes it.
	final *approval.Request
	body  []byte
	// tokens are the decision tokens its writes consumed, with when.
	tokens []tokenUse
}

// tokenUse is a decision token ID a write consumed.
type tokenUse struct {
	id string
	at time.Time
}

// generator makes the stream of a Spec's writes in time order.
type generator struct {
	spec   Spec
	tmpl   map[Kind]*template
	rng    *rand.Rand
	order  []Kind // the kind of each request, in creation order
	ended  int    // the first ended requests of order
	seq    int64
	hash   string
	queue  writeQueue
	stamps int64 // tie-breaker: the order writes entered the queue
}

// newGenerator lays out spec's requests: their kinds, shuffled by its
// seed, the ended ones first.
func newGenerator(spec Spec) (*generator, error) {
	spec = spec.withDefaults()
	tmpl, err := templates()
	if err != nil {
		return nil, err
	}
	counts, err := spec.counts()
	if err != nil {
		return nil, err
	}
	g := &generator{spec: spec, tmpl: tmpl, rng: rand.New(rand.NewPCG(spec.Seed, uint64(spec.Requests)))}
	var ended, live []Kind
	for _, k := range kinds {
		for range counts[k] {
			if k.live() {
				live = append(live, k)
			} else {
				ended = append(ended, k)
			}
		}
	}
	g.rng.Shuffle(len(ended), func(i, j int) { ended[i], ended[j] = ended[j], ended[i] })
	g.rng.Shuffle(len(live), func(i, j int) { live[i], live[j] = live[j], live[i] })
	g.order = append(ended, live...)
	g.ended = len(ended)
	return g, nil
}

// createdAt returns when request i of the stream is created.
func (g *generator) createdAt(i int) time.Time {
	if i < g.ended {
		return g.spec.End.Add(-endedBefore - time.Duration(g.ended-1-i)*endedEvery)
	}
	live := len(g.order) - g.ended
	step := (liveFrom - liveTo) / time.Duration(live)
	return g.spec.End.Add(-liveFrom + time.Duration(i-g.ended)*step).Truncate(time.Microsecond)
}

// run calls emit with every write of the stream, in time order, its events
// sealed into one chain. A generator runs once.
func (g *generator) run(emit func(item) error) error {
	pop := func(until time.Time, all bool) error {
		for g.queue.Len() > 0 && (all || !g.queue[0].at.After(until)) {
			q := heap.Pop(&g.queue).(queued)
			w := q.item.write
			for i := range w.events {
				w.events[i].Seal(g.seq, g.hash)
				g.seq, g.hash = w.events[i].Seq, w.events[i].Hash
			}
			if err := emit(q.item); err != nil {
				return err
			}
		}
		return nil
	}
	for i, k := range g.order {
		at := g.createdAt(i)
		if err := pop(at, false); err != nil {
			return err
		}
		s, err := g.story(i, k, at)
		if err != nil {
			return err
		}
		for _, w := range s.writes {
			g.stamps++
			heap.Push(&g.queue, queued{at: w.req.UpdatedAt, stamp: g.stamps, item: item{story: s, write: w}})
		}
	}
	return pop(time.Time{}, true)
}

// story makes request i, of kind k, created at: the writes of k's
// template, made its own.
func (g *generator) story(i int, k Kind, at time.Time) (*story, error) {
	t := g.tmpl[k]
	first := t.created()
	shift := at.Sub(first.CreatedAt)
	requester := fmt.Sprintf("user-%03d", g.rng.IntN(200))
	key := ""
	if first.Action.IdempotencyKey != "" {
		key = fmt.Sprintf("payments:INSTR-%07d", i)
	}
	a := action(requester, fmt.Sprintf("run-%07d", i), i, key)
	actionHash, payloadHash, err := a.Hashes()
	if err != nil {
		return nil, fmt.Errorf("scale: request %d: %w", i, err)
	}
	id := g.requestID(at)
	tokens := map[string]string{}
	token := func(old string) string {
		if old == "" {
			return ""
		}
		if t, ok := tokens[old]; ok {
			return t
		}
		var b [16]byte
		binary.LittleEndian.PutUint64(b[:8], g.rng.Uint64())
		binary.LittleEndian.PutUint64(b[8:], g.rng.Uint64())
		tokens[old] = base64.RawURLEncoding.EncodeToString(b[:])
		return tokens[old]
	}
	move := func(t time.Time) time.Time {
		if t.IsZero() {
			return t
		}
		return t.Add(shift)
	}
	text := func(s string) string { return strings.ReplaceAll(s, templateRequester, requester) }
	s := &story{writes: make([]write, len(t.writes))}
	for j, tw := range t.writes {
		r := tw.req.Clone()
		r.ID = id
		r.Action = a
		r.ActionHash, r.PayloadHash = actionHash, payloadHash
		r.Reason = text(r.Reason)
		r.CreatedAt, r.UpdatedAt, r.Deadline = move(r.CreatedAt), move(r.UpdatedAt), move(r.Deadline)
		r.ResolvedAt, r.ExpiresAt, r.DueAt, r.HoldUntil = move(r.ResolvedAt), move(r.ExpiresAt), move(r.DueAt), move(r.HoldUntil)
		for p := range r.Policies {
			r.Policies[p].Progress.Since = move(r.Policies[p].Progress.Since)
		}
		for v := range r.Votes {
			r.Votes[v].At = move(r.Votes[v].At)
			r.Votes[v].TokenID = token(r.Votes[v].TokenID)
		}
		w := write{req: r, token: token(tw.token), create: tw.create, events: cloneEvents(tw.events)}
		for e := range w.events {
			ev := &w.events[e]
			ev.RequestID = id
			ev.At = move(ev.At)
			ev.Reason = text(ev.Reason)
			if ev.Actor == templateRequester {
				ev.Actor = requester
			}
			if ev.ActionHash == first.ActionHash {
				ev.ActionHash = actionHash
			}
			if ev.PayloadHash == first.PayloadHash {
				ev.PayloadHash = payloadHash
			}
		}
		if w.token != "" {
			s.tokens = append(s.tokens, tokenUse{id: w.token, at: r.UpdatedAt})
		}
		s.writes[j] = w
	}
	s.final = s.writes[len(s.writes)-1].req
	if s.body, err = json.Marshal(s.final); err != nil {
		return nil, fmt.Errorf("scale: encode request %d: %w", i, err)
	}
	return s, nil
}

// requestID returns a request ID like the gate's ("req_" and a UUIDv7 in
// hex) for a request created at t.
func (g *generator) requestID(t time.Time) string {
	var u [16]byte
	ms := uint64(t.UnixMilli())
	binary.BigEndian.PutUint64(u[8:], g.rng.Uint64())
	binary.BigEndian.PutUint64(u[0:8], ms<<16|g.rng.Uint64()&0xffff)
	u[6] = 0x70 | u[6]&0x0f // version 7
	u[8] = 0x80 | u[8]&0x3f // RFC 9562 variant
	return "req_" + hex.EncodeToString(u[:])
}

// queued is a write waiting in the time-ordered queue.
type queued struct {
	at    time.Time
	stamp int64
	item  item
}

// writeQueue is a min-heap of writes by time, then by the order they
// entered it (a request's own writes keep their order).
type writeQueue []queued

func (q writeQueue) Len() int { return len(q) }
func (q writeQueue) Less(i, j int) bool {
	if c := q[i].at.Compare(q[j].at); c != 0 {
		return c < 0
	}
	return q[i].stamp < q[j].stamp
}
func (q writeQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *writeQueue) Push(x any)   { *q = append(*q, x.(queued)) }
func (q *writeQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}
