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
