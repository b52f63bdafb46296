package memstore_test

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/memstore"
	"github.com/signoff/approval/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) approval.Store { return memstore.New() })
}

func TestListAuditInvalidCursor(t *testing.T) {
	t.Parallel()
	s := memstore.New()
	for _, c := range []string{"x", "-1", "1.5"} {
		_, err := s.ListAudit(t.Context(), approval.AuditQuery{Cursor: c})
		require.Error(t, err, "cursor %q", c)
	}
	// A cursor past the end is an empty last page.
	page, err := s.ListAudit(t.Context(), approval.AuditQuery{Cursor: "99"})
	require.NoError(t, err)
	require.Empty(t, page.Events)
	require.Empty(t, page.Next)
}

// TestListCursorBetweenIDs checks that a cursor need not be a stored ID:
// the page starts at the first ID after it.
func TestListCursorBetweenIDs(t *testing.T) {
	t.Parallel()
	s := memstore.New()
	for _, id := range []string{"req_3", "req_1", "req_5"} {
		_, _, err := s.Create(t.Context(), request(id, id), nil)
		require.NoError(t, err)
	}
	page, err := s.List(t.Context(), approval.RequestQuery{Cursor: "req_2"})
	require.NoError(t, err)
	require.Len(t, page.Requests, 2)
	require.Equal(t, "req_3", page.Requests[0].ID)
	require.Equal(t, "req_5", page.Requests[1].ID)
}

// TestReviveTerminal checks the dedup index when an Update moves a
// terminal request back to an open status while another request for the
// same action is live: the older live request keeps blocking, and the
// revived one takes over once the older is resolved.
func TestReviveTerminal(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := memstore.New()
	a := request("req_a", "hash")
	_, _, err := s.Create(ctx, a, nil)
	require.NoError(t, err)
	a.Status, a.Version = approval.StatusDenied, 2
	require.NoError(t, s.Update(ctx, approval.Update{Request: a.Clone()}))

	b := request("req_b", "hash")
	_, created, err := s.Create(ctx, b, nil)
	require.NoError(t, err)
	require.True(t, created)

	a.Status, a.Version = approval.StatusPending, 3
	require.NoError(t, s.Update(ctx, approval.Update{Request: a.Clone()}))
	got, created, err := s.Create(ctx, request("req_c", "hash"), nil)
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, "req_b", got.ID)

	b.Status, b.Version = approval.StatusCancelled, 2
	require.NoError(t, s.Update(ctx, approval.Update{Request: b.Clone()}))
	got, created, err = s.Create(ctx, request("req_c", "hash"), nil)
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, "req_a", got.ID)

	due, err := s.ListDue(ctx, approval.DueQuery{Now: time.Now(), Limit: 0})
	require.NoError(t, err)
	require.Empty(t, due)
}

func request(id, hash string) *approval.Request {
	at := time.Now().UTC().Truncate(time.Microsecond)
	return &approval.Request{
		ID:         id,
		Status:     approval.StatusPending,
		Action:     approval.Action{Name: "wire-transfer", RequestedBy: "alice"},
		ActionHash: hash,
		Policies:   []approval.MatchedPolicy{{Name: "p", Approvers: []approval.Approver{approval.Group("g")}, RequiredApprovals: 1}},
		CreatedAt:  at,
		UpdatedAt:  at,
		Version:    1,
	}
}

func BenchmarkCreate(b *testing.B) {
	s := memstore.New()
	ctx := b.Context()
	reqs := make([]*approval.Request, b.N)
	for i := range reqs {
		reqs[i] = request(fmt.Sprintf("req_%032x", i), strconv.Itoa(i))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		ev := []approval.AuditEvent{{RequestID: reqs[i].ID, Type: approval.EventRequestCreated, Actor: "alice"}}
		if _, _, err := s.Create(ctx, reqs[i], ev); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGet(b *testing.B) {
	s := memstore.New()
	ctx := b.Context()
	const n = 10_000
	for i := range n {
		if _, _, err := s.Create(ctx, request(fmt.Sprintf("req_%032x", i), strconv.Itoa(i)), nil); err != nil {
			b.Fatal(err)
		}
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("req_%032x", i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.Get(ctx, ids[i%n]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUpdate(b *testing.B) {
	s := memstore.New()
	ctx := b.Context()
	r := request("req_bench", "hash")
	if _, _, err := s.Create(ctx, r, nil); err != nil {
		b.Fatal(err)
	}
	toks := make([]string, b.N)
	for i := range toks {
		toks[i] = "tok_" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		r.Version++
		ev := []approval.AuditEvent{{RequestID: r.ID, Type: approval.EventDecisionApprove, Actor: "bob"}}
		if err := s.Update(ctx, approval.Update{Request: r, TokenID: toks[i], Events: ev}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUpdateParallel(b *testing.B) {
	s := memstore.New()
	ctx := b.Context()
	var next atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		n := next.Add(1)
		r := request(fmt.Sprintf("req_%032x", n), strconv.FormatInt(n, 10))
		if _, _, err := s.Create(ctx, r, nil); err != nil {
			b.Error(err)
			return
		}
		for pb.Next() {
			r.Version++
			if err := s.Update(ctx, approval.Update{Request: r}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// TestRetention: terminal requests are dropped once their retention has
// passed on the store's clock (the request times it is given), with their
// tokens; live requests and held ones stay; memory stays bounded.
func TestRetention(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := memstore.New(memstore.WithRetention(time.Hour))
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	mk := func(id string, at time.Time) *approval.Request {
		r := request(id, "hash-"+id)
		r.CreatedAt, r.UpdatedAt = at, at
		_, _, err := s.Create(ctx, r, nil)
		require.NoError(t, err)
		return r
	}
	end := func(r *approval.Request, status approval.Status, at time.Time, hold time.Time) {
		next := r.Clone()
		next.Status, next.UpdatedAt, next.Version, next.HoldUntil = status, at, r.Version+1, hold
		next.Votes = append(next.Votes, approval.Vote{Approver: "bob", Verdict: approval.VerdictDeny, TokenID: "tok-" + r.ID, At: at})
		require.NoError(t, s.Update(ctx, approval.Update{Request: next, TokenID: "tok-" + r.ID}))
	}
	done := mk("req_1", base)
	end(done, approval.StatusConsumed, base.Add(time.Minute), time.Time{})
	held := mk("req_2", base)
	end(held, approval.StatusDenied, base.Add(time.Minute), base.Add(3*time.Hour))
	live := mk("req_3", base)

	// Not yet: the clock is what the store was last given.
	mk("req_4", base.Add(time.Hour))
	_, err := s.Get(ctx, "req_1")
	require.NoError(t, err)

	mk("req_5", base.Add(time.Hour+time.Minute))
	_, err = s.Get(ctx, "req_1")
	require.ErrorIs(t, err, approval.ErrNotFound, "dropped an hour after it ended")
	for _, id := range []string{"req_2", "req_3"} {
		_, err = s.Get(ctx, id)
		require.NoError(t, err, "%s: held or live requests stay", id)
	}
	page, err := s.List(ctx, approval.RequestQuery{})
	require.NoError(t, err)
	require.Len(t, page.Requests, 4)

	// Its token is forgotten too (a replay finds no request anyway).
	other := mk("req_6", base.Add(2*time.Hour))
	next := other.Clone()
	next.Version, next.UpdatedAt = 2, base.Add(2*time.Hour)
	require.NoError(t, s.Update(ctx, approval.Update{Request: next, TokenID: "tok-req_1"}))

	// The hold keeps req_2 until it ends.
	mk("req_7", base.Add(3*time.Hour))
	_, err = s.Get(ctx, "req_2")
	require.ErrorIs(t, err, approval.ErrNotFound)
	_, err = s.Get(ctx, live.ID)
	require.NoError(t, err)
	_ = held
}

// TestRetentionBoundsMemory: a long run of consumed requests is held in
// bounded space, and List pages stay correct across the compaction.
func TestRetentionBoundsMemory(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := memstore.New(memstore.WithRetention(time.Minute))
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 20000 {
		at := base.Add(time.Duration(i) * time.Second)
		r := request(fmt.Sprintf("req_%08d", i), fmt.Sprint("h", i))
		r.CreatedAt, r.UpdatedAt = at, at
		_, _, err := s.Create(ctx, r, nil)
		require.NoError(t, err)
		next := r.Clone()
		next.Status, next.Version = approval.StatusConsumed, 2
		require.NoError(t, s.Update(ctx, approval.Update{Request: next, TokenID: fmt.Sprint("t", i)}))
	}
	var all []*approval.Request
	q := approval.RequestQuery{Limit: 7}
	for {
		page, err := s.List(ctx, q)
		require.NoError(t, err)
		all = append(all, page.Requests...)
		if page.Next == "" {
			break
		}
		q.Cursor = page.Next
	}
	require.LessOrEqual(t, len(all), 61, "only the last minute's requests are kept")
	require.GreaterOrEqual(t, len(all), 59)
	require.Equal(t, "req_00019999", all[len(all)-1].ID)
	requests, ids, tokens := memstore.Sizes(s)
	require.Equal(t, len(all), requests)
	require.Equal(t, len(all), tokens, "the tokens of dropped requests' votes go too")
	require.Less(t, ids, 61+2*1024, "the ID index is compacted")
}

func TestRetentionDisabled(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := memstore.New(memstore.WithRetention(-1))
	r := request("req_1", "h")
	r.CreatedAt, r.UpdatedAt = time.Unix(0, 0), time.Unix(0, 0)
	_, _, err := s.Create(ctx, r, nil)
	require.NoError(t, err)
	next := r.Clone()
	next.Status, next.Version = approval.StatusDenied, 2
	require.NoError(t, s.Update(ctx, approval.Update{Request: next}))
	later := request("req_2", "h2")
	later.CreatedAt = time.Now()
	_, _, err = s.Create(ctx, later, nil)
	require.NoError(t, err)
	_, err = s.Get(ctx, "req_1")
	require.NoError(t, err)
}

// TestMaxAuditEvents: the trail keeps about the newest n events, and the
// gate verifies what is kept from the store's anchor.
func TestMaxAuditEvents(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := memstore.New(memstore.WithMaxAuditEvents(1500))
	_, priv, err := approval.GenerateKeys()
	require.NoError(t, err)
	g, err := approval.New(approval.Config{Store: s, SigningKey: priv})
	require.NoError(t, err)
	defer g.Close(ctx)
	for i := range 5000 {
		require.NoError(t, s.AppendAudit(ctx, []approval.AuditEvent{{Type: approval.EventNotificationSent, Actor: "system", Reason: strconv.Itoa(i), At: time.Now()}}))
	}
	seq, hash, err := s.AuditAnchor(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(3072), seq, "whole chunks of 1,024 dropped")
	require.NotEmpty(t, hash)
	rep, err := g.VerifyAuditTrail(ctx, approval.VerifyAuditOptions{})
	n := rep.Events
	require.NoError(t, err)
	require.Equal(t, int64(5000-3072), n)
	page, err := s.ListAudit(ctx, approval.AuditQuery{Limit: 1})
	require.NoError(t, err)
	require.Equal(t, int64(3073), page.Events[0].Seq)
	require.Equal(t, hash, page.Events[0].PrevHash)
}

// TestListAuditByRequestIndex: listing one request's events (served from
// the per-request index) pages through exactly what filtering the whole
// trail gives, before and after the trail drops its oldest chunks; a
// request whose events were all dropped lists nothing.
func TestListAuditByRequestIndex(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := memstore.New(memstore.WithMaxAuditEvents(1500))
	ids := []string{"req_a", "req_b", "req_c", ""}
	appendN := func(from, to int, pick func(int) string) {
		for i := from; i < to; i++ {
			require.NoError(t, s.AppendAudit(ctx, []approval.AuditEvent{{
				Type: approval.EventNotificationSent, Actor: "system", RequestID: pick(i), Reason: strconv.Itoa(i), At: time.Now(),
			}}))
		}
	}
	check := func() {
		var all []approval.AuditEvent
		for cur := ""; ; {
			p, err := s.ListAudit(ctx, approval.AuditQuery{Cursor: cur, Limit: 500})
			require.NoError(t, err)
			all = append(all, p.Events...)
			if cur = p.Next; cur == "" {
				break
			}
		}
		for _, id := range append(ids[:3:3], "req_gone") {
			var want, got []int64
			for _, e := range all {
				if e.RequestID == id {
					want = append(want, e.Seq)
				}
			}
			for cur := ""; ; {
				p, err := s.ListAudit(ctx, approval.AuditQuery{RequestID: id, Cursor: cur, Limit: 7})
				require.NoError(t, err)
				for _, e := range p.Events {
					require.Equal(t, id, e.RequestID)
					got = append(got, e.Seq)
				}
				if cur = p.Next; cur == "" {
					break
				}
			}
			require.Equal(t, want, got, id)
		}
	}
	appendN(0, 300, func(int) string { return "req_gone" })
	appendN(300, 1000, func(i int) string { return ids[i%4] })
	check()
	appendN(1000, 5000, func(i int) string { return ids[i%4] })
	check()
	p, err := s.ListAudit(ctx, approval.AuditQuery{RequestID: "req_gone"})
	require.NoError(t, err)
	require.Empty(t, p.Events, "its events were in the dropped chunks")
}
