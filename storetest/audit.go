package storetest

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// runAuditTests checks AppendAudit, ListAudit and the hash chain that
// Create, Update and AppendAudit extend together.
func runAuditTests(t *testing.T, newStore func(t *testing.T) approval.Store) {
	// AppendAudit seals each event in place (Seq from 1 without gaps,
	// PrevHash linking to the event before, Hash over the content, At in
	// UTC microseconds) and ListAudit returns exactly the sealed events.
	t.Run("append audit seals events", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		id := newID()
		events := []approval.AuditEvent{
			event(id, approval.EventDecisionRejected, "mallory"),
			event(id, approval.EventNotificationSent, approval.SystemActor),
			{Type: approval.EventNotificationFailed, At: time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.FixedZone("X", 3600))},
		}
		events[0].Reason = "token expired"
		require.NoError(t, s.AppendAudit(t.Context(), events))

		prev := ""
		for i, e := range events {
			require.Equal(t, int64(i+1), e.Seq)
			require.Equal(t, prev, e.PrevHash)
			require.Equal(t, e.ComputeHash(), e.Hash)
			require.Equal(t, e.At.UTC().Truncate(time.Microsecond), e.At)
			require.Equal(t, time.UTC, e.At.Location())
			prev = e.Hash
		}
		require.Equal(t, events, fullTrail(t, s))
	})

	// AppendAudit of no events succeeds and appends nothing.
	t.Run("append audit text kept or refused", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		e := event(newID(), approval.EventNotificationFailed, approval.SystemActor)
		e.Reason = "smtp: 550 bo\xeete pleine"
		events := []approval.AuditEvent{e}
		if err := s.AppendAudit(t.Context(), events); err != nil {
			require.Empty(t, fullTrail(t, s), "AppendAudit failed (%v) but appended", err)
			return
		}
		got := fullTrail(t, s)
		require.Equal(t, events, got)
		require.NoError(t, approval.VerifyAuditChain(got))
	})

	t.Run("append audit empty", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		require.NoError(t, s.AppendAudit(t.Context(), nil))
		require.Empty(t, fullTrail(t, s))
	})

	// The store keeps one chain: events appended by Create, Update and
	// AppendAudit continue it in the order they commit.
	t.Run("audit chain spans writes", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		req := newRequest()
		var want []approval.AuditEvent

		first := []approval.AuditEvent{event("", approval.EventPolicyError, approval.SystemActor)}
		require.NoError(t, s.AppendAudit(t.Context(), first))
		want = append(want, first...)

		created := []approval.AuditEvent{
			event(req.ID, approval.EventRequestCreated, "alice"),
			event(req.ID, approval.EventNotificationSent, approval.SystemActor),
		}
		create(t, s, req, created...)
		want = append(want, created...)
		require.Equal(t, int64(2), created[0].Seq)
		require.Equal(t, first[0].Hash, created[0].PrevHash)

		// A deduplicated Create appends nothing.
		dup := newRequest()
		dup.ActionHash = req.ActionHash
		_, isNew, err := s.Create(t.Context(), dup, []approval.AuditEvent{event(dup.ID, approval.EventRequestCreated, "alice")})
		require.NoError(t, err)
		require.False(t, isNew)

		next := req.Clone()
		next.Status, next.Version = approval.StatusApproved, 2
		updated := []approval.AuditEvent{
			event(req.ID, approval.EventDecisionApprove, "bob"),
			event(req.ID, approval.EventRequestApproved, approval.SystemActor),
		}
		require.NoError(t, s.Update(t.Context(), approval.Update{Request: next, TokenID: "tok_1", Events: updated}))
		want = append(want, updated...)

		last := []approval.AuditEvent{event(req.ID, approval.EventRequestDeduplicated, "alice")}
		require.NoError(t, s.AppendAudit(t.Context(), last))
		want = append(want, last...)

		got := fullTrail(t, s)
		require.Equal(t, want, got)
		for i, e := range got {
			require.Equal(t, int64(i+1), e.Seq)
		}
	})

	// A write that fails appends none of its events: Create of a duplicate
	// ID, Update with a stale version, of an unknown ID, or with a used
	// token.
	t.Run("audit atomic with writes", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		req := create(t, s, newRequest(), event("", approval.EventRequestCreated, "alice"))
		vote(t, s, req.ID, "bob", "tok_used")
		before := fullTrail(t, s)
		require.Len(t, before, 2)
		ev := func() []approval.AuditEvent {
			return []approval.AuditEvent{event(req.ID, approval.EventDecisionApprove, "carol")}
		}

		dup := newRequest()
		dup.ID = req.ID
		_, _, err := s.Create(t.Context(), dup, ev())
		require.ErrorIs(t, err, approval.ErrConflict)

		stale := get(t, s, req.ID)
		err = s.Update(t.Context(), approval.Update{Request: stale, Events: ev()})
		require.ErrorIs(t, err, approval.ErrConflict)

		ghost := newRequest()
		ghost.Version = 2
		err = s.Update(t.Context(), approval.Update{Request: ghost, Events: ev()})
		require.ErrorIs(t, err, approval.ErrNotFound)

		replay := get(t, s, req.ID)
		replay.Version++
		err = s.Update(t.Context(), approval.Update{Request: replay, TokenID: "tok_used", Events: ev()})
		require.ErrorIs(t, err, approval.ErrTokenUsed)

		require.Equal(t, before, fullTrail(t, s))
		// The chain continues from where it was.
		next := []approval.AuditEvent{event(req.ID, approval.EventNotificationSent, approval.SystemActor)}
		require.NoError(t, s.AppendAudit(t.Context(), next))
		require.Equal(t, int64(3), next[0].Seq)
		require.Equal(t, before[1].Hash, next[0].PrevHash)
	})

	// Concurrent appends form one unbroken chain, and the events of one
	// call are consecutive in it.
	t.Run("audit concurrent appends", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		const n = 32
		batches := make([][]approval.AuditEvent, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			batches[i] = []approval.AuditEvent{
				event("", approval.EventNotificationSent, fmt.Sprintf("actor-%02d", i)),
				event("", approval.EventNotificationFailed, fmt.Sprintf("actor-%02d", i)),
			}
			wg.Go(func() {
				<-start
				errs[i] = s.AppendAudit(t.Context(), batches[i])
			})
		}
		close(start)
		wg.Wait()
		for i := range n {
			require.NoError(t, errs[i])
			require.Equal(t, batches[i][0].Seq+1, batches[i][1].Seq, "batch %d was split", i)
			require.Equal(t, batches[i][0].Hash, batches[i][1].PrevHash)
		}
		got := fullTrail(t, s)
		require.Len(t, got, 2*n)
		for _, b := range batches {
			require.Equal(t, b, got[b[0].Seq-1:b[1].Seq])
		}
	})

	// ListAudit keeps the events of one request, of one actor, and at or
	// after Since and before Until, combining the filters given.
	t.Run("list audit filters", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		base := now().Add(-time.Hour)
		r1, r2 := newID(), newID()
		mk := func(id, actor string, minutes int) approval.AuditEvent {
			e := event(id, approval.EventNotificationSent, actor)
			e.At = base.Add(time.Duration(minutes) * time.Minute)
			return e
		}
		events := []approval.AuditEvent{
			mk(r1, "alice", 0),                 // 1
			mk(r1, "bob", 1),                   // 2
			mk(r2, "alice", 2),                 // 3
			mk("", approval.SystemActor, 3),    // 4
			mk(r2, "bob", 4),                   // 5
			mk(r1, approval.SystemActor, 5),    // 6
			mk(r2, "alice", 5),                 // 7
			mk("", "", 6),                      // 8
			mk(r1, "alice", 7),                 // 9
			mk(r2, approval.SystemActor, 7*60), // 10
		}
		events[1].Type, events[8].Type = approval.EventBreakGlass, approval.EventBreakGlass
		require.NoError(t, s.AppendAudit(t.Context(), events))
		for _, c := range []struct {
			q    approval.AuditQuery
			want []int64
		}{
			{approval.AuditQuery{Type: approval.EventBreakGlass}, []int64{2, 9}},
			{approval.AuditQuery{Type: approval.EventBreakGlass, Actor: "alice"}, []int64{9}},
			{approval.AuditQuery{Type: approval.EventRequestCreated}, nil},
			{approval.AuditQuery{}, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
			{approval.AuditQuery{RequestID: r1}, []int64{1, 2, 6, 9}},
			{approval.AuditQuery{RequestID: r2}, []int64{3, 5, 7, 10}},
			{approval.AuditQuery{RequestID: newID()}, nil},
			{approval.AuditQuery{Actor: "alice"}, []int64{1, 3, 7, 9}},
			{approval.AuditQuery{Actor: approval.SystemActor}, []int64{4, 6, 10}},
			{approval.AuditQuery{RequestID: r2, Actor: "alice"}, []int64{3, 7}},
			{approval.AuditQuery{Since: base.Add(2 * time.Minute), Until: base.Add(5 * time.Minute)}, []int64{3, 4, 5}},
			{approval.AuditQuery{Since: base.Add(5 * time.Minute)}, []int64{6, 7, 8, 9, 10}},
			{approval.AuditQuery{Until: base.Add(time.Minute)}, []int64{1}},
			{approval.AuditQuery{Since: base.Add(5*time.Minute - time.Microsecond), Until: base.Add(5*time.Minute + time.Microsecond)}, []int64{6, 7}},
			{approval.AuditQuery{RequestID: r1, Actor: "alice", Since: base.Add(time.Minute)}, []int64{9}},
			{approval.AuditQuery{Since: farPast, Until: farFuture}, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
			{approval.AuditQuery{RequestID: oddText[0]}, nil},
			{approval.AuditQuery{RequestID: oddText[1]}, nil},
			{approval.AuditQuery{Actor: oddText[0]}, nil},
			{approval.AuditQuery{Actor: oddText[1]}, nil},
		} {
			got := trail(t, s, c.q)
			seqs := make([]int64, 0, len(got))
			for _, e := range got {
				seqs = append(seqs, e.Seq)
				require.Equal(t, events[e.Seq-1], e)
			}
			if c.want == nil {
				c.want = []int64{}
			}
			require.Equal(t, c.want, seqs, "query %+v", c.q)
		}
	})

	// ListAudit returns pages of at most q.Limit events in ascending Seq;
	// following Next visits every matching event once, and Next is empty
	// on the last page. Each page verifies on its own.
	t.Run("list audit pages", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		var events []approval.AuditEvent
		for i := range 25 {
			events = append(events, event("", approval.EventNotificationSent, "actor-"+strconv.Itoa(i%3)))
		}
		require.NoError(t, s.AppendAudit(t.Context(), events))

		var got []approval.AuditEvent
		q := approval.AuditQuery{Limit: 10}
		for i, size := range []int{10, 10, 5} {
			page, err := s.ListAudit(t.Context(), q)
			require.NoError(t, err)
			require.Len(t, page.Events, size, "page %d", i+1)
			require.NoError(t, approval.VerifyAuditChain(page.Events))
			got = append(got, page.Events...)
			if i < 2 {
				require.NotEmpty(t, page.Next, "page %d", i+1)
			} else {
				require.Empty(t, page.Next, "last page")
			}
			q.Cursor = page.Next
		}
		require.Equal(t, events, got)

		// Filtered: actor-0 has events 1, 4, ..., 25 (9 of them); pages of
		// 3 end exactly full, with an empty Next.
		q = approval.AuditQuery{Actor: "actor-0", Limit: 3}
		var seqs []int64
		for i := range 3 {
			page, err := s.ListAudit(t.Context(), q)
			require.NoError(t, err)
			require.Len(t, page.Events, 3)
			for _, e := range page.Events {
				seqs = append(seqs, e.Seq)
			}
			require.Equal(t, i == 2, page.Next == "", "page %d next %q", i+1, page.Next)
			q.Cursor = page.Next
		}
		require.Equal(t, []int64{1, 4, 7, 10, 13, 16, 19, 22, 25}, seqs)
	})

	// ListAudit with Limit 0 returns pages of approval.DefaultPageSize.
	t.Run("list audit default limit", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		events := make([]approval.AuditEvent, approval.DefaultPageSize+1)
		for i := range events {
			events[i] = event("", approval.EventNotificationSent, approval.SystemActor)
		}
		require.NoError(t, s.AppendAudit(t.Context(), events))
		page, err := s.ListAudit(t.Context(), approval.AuditQuery{})
		require.NoError(t, err)
		require.Len(t, page.Events, approval.DefaultPageSize)
		require.NotEmpty(t, page.Next)
		page, err = s.ListAudit(t.Context(), approval.AuditQuery{Cursor: page.Next})
		require.NoError(t, err)
		require.Len(t, page.Events, 1)
		require.Empty(t, page.Next)
	})

	// A cursor the store did not issue is refused with an error wrapping
	// approval.ErrInvalidCursor, never read as some position in the trail.
	t.Run("list audit foreign cursor", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		require.NoError(t, s.AppendAudit(t.Context(), []approval.AuditEvent{event("", approval.EventNotificationSent, approval.SystemActor)}))
		for _, c := range []string{"not-a-cursor", "-1", "1.5", "req_" + randomHex()} {
			_, err := s.ListAudit(t.Context(), approval.AuditQuery{Cursor: c})
			require.ErrorIs(t, err, approval.ErrInvalidCursor, "cursor %q", c)
		}
	})

	// The store keeps its own copy of events: changing the events passed to
	// AppendAudit, Create or Update, or those ListAudit returns, afterwards
	// changes nothing stored.
	t.Run("audit copies events", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		req := newRequest()
		appended := []approval.AuditEvent{event(req.ID, approval.EventPolicyError, approval.SystemActor)}
		require.NoError(t, s.AppendAudit(t.Context(), appended))
		created := []approval.AuditEvent{event(req.ID, approval.EventRequestCreated, "alice")}
		create(t, s, req, created...)
		next := req.Clone()
		next.Version = 2
		updated := []approval.AuditEvent{event(req.ID, approval.EventRequestCancelled, "alice")}
		require.NoError(t, s.Update(t.Context(), approval.Update{Request: next, Events: updated}))

		listed := fullTrail(t, s)
		require.Len(t, listed, 3)
		for _, evs := range [][]approval.AuditEvent{appended, created, updated, listed} {
			for i := range evs {
				evs[i].Policies[0].Name = "scribbled"
				evs[i].Reason = "scribbled"
			}
		}
		for _, e := range fullTrail(t, s) {
			require.Equal(t, "high_spend", e.Policies[0].Name)
			require.Empty(t, e.Reason)
		}
	})

	// A checkpoint event keeps its signature: the store round-trips every
	// field the hash covers.
	t.Run("audit keeps checkpoints", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		events := []approval.AuditEvent{
			event("", approval.EventAuditSinkFailed, approval.SystemActor),
			{Type: approval.EventAuditCheckpoint, Actor: approval.SystemActor, At: time.Now(),
				Checkpoint: &approval.AuditCheckpoint{Seq: 1, Hash: "ab", KeyID: "kid", Signature: "sig"}},
		}
		require.NoError(t, s.AppendAudit(t.Context(), events))
		trail := fullTrail(t, s)
		require.Equal(t, events, trail)
		require.NoError(t, approval.VerifyAuditChain(trail))
		events[1].Checkpoint.Signature = "scribbled"
		require.Equal(t, "sig", fullTrail(t, s)[1].Checkpoint.Signature)
	})

	// A store that implements AuditTail returns the newest event, a copy,
	// and false while the trail is empty.
	t.Run("audit tail", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		tail, ok := s.(approval.AuditTail)
		if !ok {
			t.Skip("the store does not implement approval.AuditTail")
		}
		_, found, err := tail.LastAuditEvent(t.Context())
		require.NoError(t, err)
		require.False(t, found)
		for i := range 3 {
			events := []approval.AuditEvent{event(newID(), approval.EventPolicyError, approval.SystemActor)}
			require.NoError(t, s.AppendAudit(t.Context(), events))
			last, found, err := tail.LastAuditEvent(t.Context())
			require.NoError(t, err)
			require.True(t, found)
			require.Equal(t, events[0], last)
			require.EqualValues(t, i+1, last.Seq)
			last.Policies[0].Name = "scribbled"
		}
		last, _, err := tail.LastAuditEvent(t.Context())
		require.NoError(t, err)
		require.Equal(t, "high_spend", last.Policies[0].Name)
	})
}
