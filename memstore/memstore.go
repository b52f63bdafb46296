// Package memstore is an in-memory approval.Store, for tests, demos and
// single-process services. Its state lives in the process and is lost when
// the process exits.
//
// Memory stays bounded by what is live: a request is dropped a day after it
// ended (DefaultRetention, see WithRetention), with the token IDs its
// updates recorded (a replayed token then finds no request, and changes
// nothing). The audit trail is kept whole unless WithMaxAuditEvents bounds
// it; each event costs a few hundred bytes. The outbox is the exception to
// "bounded by what is live": undelivered and dead-lettered notifications
// stay in memory until delivered or redriven, since an in-memory store has
// nowhere else to keep them. A channel that fails for a long time grows it
// by one message per notice and recipient; sqlstore keeps them on disk.
package memstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/google/btree"

	"github.com/signoff/approval"
)

// Store is an approval.Store that keeps requests and the audit trail in
// memory. The zero value is not usable: create one with New. A Store is safe
// for concurrent use.
//
// It implements approval.Outbox, approval.Delegations, approval.AuditTail,
// approval.PrunedAudit, approval.IdempotencyKeys, approval.PriorRuns,
// approval.AuditStream, approval.OperatorStats, approval.Passkeys and
// approval.Inbox (an index of Request.Deciders by person). Every method copies what
// it receives and what it returns, so callers may modify requests and
// events afterwards. Create, Get, Update, RequestByIdempotencyKey and
// LastRun run in constant time; List and ListAudit scan from the cursor (List
// of open statuses only the open requests, ListAudit of one request only
// that request's events, from indexes), and ListDue
// reads the due requests from an index in due-time order: an idle Tick
// costs one probe of it, however many requests are open.
type Store struct {
	mu sync.Mutex
	// requests holds the stored requests by ID. They are never handed out.
	requests map[string]*approval.Request
	// ids holds every request ID in ascending order, for List. IDs are
	// time-ordered, so inserting one is nearly always an append.
	ids []string
	// live maps an action (see dedupKey) to the IDs of its requests that
	// are not terminal, oldest first. Create deduplicates against it and
	// ListDue scans it. The gate keeps at most one live request per
	// action, but an Update may in principle revive a terminal request,
	// so this is a list.
	live map[dedupKey][]string
	// due orders the live requests that have a due time by (DueAt, ID),
	// for ListDue.
	due *btree.BTreeG[dueEntry]
	// inbox holds, by person, the IDs of the requests whose Deciders
	// name them, in order, for ListInbox.
	inbox map[string]*btree.BTreeG[string]
	// open holds the IDs of the requests that are not terminal, in
	// order, so that List of open statuses walks them alone, not the
	// requests that ended.
	open *btree.BTreeG[string]
	// held maps an action to the ID of its request with the latest
	// HoldUntil, for Create's hold check. An entry whose hold has passed is
	// dropped when Create next finds it.
	held map[dedupKey]string
	// ran maps an ActionHash to the ID of its consumed request with the
	// latest UpdatedAt, for LastRun.
	ran map[string]string
	// tokens holds every token ID recorded by Update.
	tokens map[string]struct{}
	// reqTokens lists the token IDs each request's updates recorded, to
	// forget them with the request.
	reqTokens map[string][]string
	// audit is the trail in chunks of auditChunk events, so that appending
	// never copies the trail; the event with Seq n is at index n-1.
	audit    [][]approval.AuditEvent
	auditLen int64
	// reqEvents lists, by request ID, the trail indices of the request's
	// events, ascending, for ListAudit by request. It follows the trail,
	// not the requests: a dropped request's events stay listable until
	// the trail itself drops them.
	reqEvents map[string][]int64
	// outbox holds the pending and dead outbox messages by ID (outbox.go).
	outbox map[string]*approval.OutboxMessage
	// delegations holds every delegation by ID (delegation.go).
	delegations map[string]*approval.Delegation
	// passkeys holds every passkey by credential ID, and passkeyOrder
	// their IDs in the order they were registered (passkey.go).
	passkeys     map[string]*approval.Passkey
	passkeyOrder []string
	// asks holds the limits on asking by AskCheck key, and askKeys the
	// keys each request counts open under (asklimit.go).
	asks    map[string]*askState
	askKeys map[string][]string

	// Retention (retention.go). clock is the latest request time seen;
	// drops are the terminal requests by the time they may go.
	retention  time.Duration
	clock      time.Time
	drops      dropQueue
	droppedIDs int // IDs in ids whose requests were dropped
	// maxAudit bounds the trail; auditBase events (a multiple of
	// auditChunk) were dropped, the last with hash anchorHash.
	maxAudit   int64
	auditBase  int64
	anchorHash string
}

const auditChunk = 1024

// file moves request id in the inbox from the people gone to the people
// now (both sorted). s.mu must be held.
func (s *Store) file(id string, gone, now []string) {
	if !slices.IsSorted(gone) {
		gone = slices.Sorted(slices.Values(gone))
	}
	if !slices.IsSorted(now) {
		now = slices.Sorted(slices.Values(now))
	}
	for _, p := range gone {
		if _, keep := slices.BinarySearch(now, p); keep {
			continue
		}
		if t := s.inbox[p]; t != nil {
			t.Delete(id)
			if t.Len() == 0 {
				delete(s.inbox, p)
			}
		}
	}
	for _, p := range now {
		if _, had := slices.BinarySearch(gone, p); had {
			continue
		}
		t := s.inbox[p]
		if t == nil {
			t = btree.NewG(32, func(a, b string) bool { return a < b })
			s.inbox[p] = t
		}
		t.ReplaceOrInsert(id)
	}
}

// ListInbox implements approval.Inbox.
func (s *Store) ListInbox(ctx context.Context, q approval.InboxQuery) (approval.RequestPage, error) {
	if err := ctx.Err(); err != nil {
		return approval.RequestPage{}, fmt.Errorf("memstore: list inbox: %w", err)
	}
	limit := approval.PageSize(q.Limit)
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, p := range q.People {
		t := s.inbox[p]
		if t == nil {
			continue
		}
		n := 0
		t.AscendGreaterOrEqual(q.Cursor, func(id string) bool {
			if id == q.Cursor {
				return true
			}
			ids = append(ids, id)
			n++
			return n <= limit
		})
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	var page approval.RequestPage
	if len(ids) > limit {
		ids = ids[:limit]
		page.Next = ids[limit-1]
	}
	for _, id := range ids {
		page.Requests = append(page.Requests, s.requests[id].Clone())
	}
	return page, nil
}

// dueEntry is a live request's place in the due order.
type dueEntry struct {
	at time.Time
	id string
}

func dueLess(a, b dueEntry) bool {
	if c := a.at.Compare(b.at); c != 0 {
		return c < 0
	}
	return a.id < b.id
}

// track moves request id in the due order and the inbox from where old
// put it (nil for a new request) to where next puts it. s.mu must be held.
func (s *Store) track(old, next *approval.Request) {
	var gone []string
	if old != nil {
		gone = old.Deciders
	}
	s.file(next.ID, gone, next.Deciders)
	switch {
	case next.Status.Terminal() && (old == nil || !old.Status.Terminal()):
		s.open.Delete(next.ID)
	case !next.Status.Terminal() && (old == nil || old.Status.Terminal()):
		s.open.ReplaceOrInsert(next.ID)
	}
	if old != nil && old.Status.Terminal() == next.Status.Terminal() && old.DueAt.Equal(next.DueAt) {
		return // the same place, or none before and after
	}
	if old != nil && !old.Status.Terminal() && !old.DueAt.IsZero() {
		s.due.Delete(dueEntry{old.DueAt, old.ID})
	}
	if !next.Status.Terminal() && !next.DueAt.IsZero() {
		s.due.ReplaceOrInsert(dueEntry{next.DueAt, next.ID})
	}
}

// dedupKey is what Create deduplicates a request by: its ActionHash, or,
// for a request with an Action.IdempotencyKey, that key alone.
type dedupKey struct{ hash, idem string }

func keyOf(r *approval.Request) dedupKey {
	if k := r.Action.IdempotencyKey; k != "" {
		return dedupKey{idem: k}
	}
	return dedupKey{hash: r.ActionHash}
}

var (
	_ approval.Store           = (*Store)(nil)
	_ approval.Outbox          = (*Store)(nil)
	_ approval.PrunedAudit     = (*Store)(nil)
	_ approval.IdempotencyKeys = (*Store)(nil)
	_ approval.PriorRuns       = (*Store)(nil)
	_ approval.Inbox           = (*Store)(nil)
)

// New returns an empty Store. By default it drops a request
// DefaultRetention after it ended and keeps the whole audit trail; see
// WithRetention and WithMaxAuditEvents.
func New(opts ...Option) *Store {
	s := &Store{
		requests:  make(map[string]*approval.Request),
		live:      make(map[dedupKey][]string),
		due:       btree.NewG(32, dueLess),
		inbox:     make(map[string]*btree.BTreeG[string]),
		open:      btree.NewG(32, func(a, b string) bool { return a < b }),
		held:      make(map[dedupKey]string),
		ran:       make(map[string]string),
		tokens:    make(map[string]struct{}),
		reqTokens: make(map[string][]string),
		reqEvents: make(map[string][]int64),
		outbox:    make(map[string]*approval.OutboxMessage),
		retention: DefaultRetention,
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Create implements approval.Store. It looks for a live request for the
// same action (ActionHash, or IdempotencyKey) before it checks req.ID, so a
// retried Create returns the request the first attempt stored, with
// created == false, not ErrConflict.
func (s *Store) Create(ctx context.Context, req *approval.Request, events []approval.AuditEvent) (*approval.Request, bool, error) {
	return s.createWith(ctx, req, events, nil, nil)
}

// CreateWithOutbox implements approval.Outbox: Create, and msgs stored
// under the same lock if req is.
func (s *Store) CreateWithOutbox(ctx context.Context, req *approval.Request, events []approval.AuditEvent, msgs []approval.OutboxMessage) (*approval.Request, bool, error) {
	return s.createWith(ctx, req, events, msgs, nil)
}

func (s *Store) createWith(ctx context.Context, req *approval.Request, events []approval.AuditEvent, msgs []approval.OutboxMessage, limits []approval.AskCheck) (*approval.Request, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, fmt.Errorf("memstore: create: %w", err)
	}
	if req == nil {
		return nil, false, errors.New("memstore: create: nil request")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.observe(req.CreatedAt)
	if !req.Status.Terminal() {
		if h := s.holder(keyOf(req), req.CreatedAt); h != nil {
			return h.Clone(), false, nil
		}
	}
	if _, ok := s.requests[req.ID]; ok {
		return nil, false, fmt.Errorf("memstore: create %s: %w", req.ID, approval.ErrConflict)
	}
	if err := s.checkNew(msgs); err != nil {
		return nil, false, fmt.Errorf("memstore: create %s: %w", req.ID, err)
	}
	if err := s.admit(req, limits); err != nil {
		return nil, false, fmt.Errorf("memstore: create %s: %w", req.ID, err)
	}
	stored := req.Clone()
	s.requests[stored.ID] = stored
	s.insertID(stored.ID)
	s.track(nil, stored)
	if !stored.Status.Terminal() {
		k := keyOf(stored)
		s.live[k] = append(s.live[k], stored.ID)
	} else {
		s.ended(stored)
	}
	s.noteHold(stored)
	s.noteRun(stored)
	s.appendAudit(events)
	s.addOutbox(msgs)
	return stored.Clone(), true, nil
}

// holder returns the request Create deduplicates a live request of action
// k against at time at: the oldest live one, or else the latest hold after
// at. It drops a hold that has passed. s.mu must be held.
func (s *Store) holder(k dedupKey, at time.Time) *approval.Request {
	if ids := s.live[k]; len(ids) > 0 {
		return s.requests[ids[0]]
	}
	if id, ok := s.held[k]; ok {
		if h := s.requests[id]; h.HoldUntil.After(at) {
			return h
		}
		delete(s.held, k)
	}
	return nil
}

// noteHold records r in s.held if its hold is the latest of its action.
func (s *Store) noteHold(r *approval.Request) {
	if r.HoldUntil.IsZero() {
		return
	}
	k := keyOf(r)
	if id, ok := s.held[k]; !ok || id == r.ID || !s.requests[id].HoldUntil.After(r.HoldUntil) {
		s.held[k] = r.ID
	}
}

// noteRun records r in s.ran if it is consumed and the latest run of its
// action.
func (s *Store) noteRun(r *approval.Request) {
	if r.Status != approval.StatusConsumed {
		return
	}
	if id, ok := s.ran[r.ActionHash]; !ok || id == r.ID || !s.requests[id].UpdatedAt.After(r.UpdatedAt) {
		s.ran[r.ActionHash] = r.ID
	}
}

// RequestByIdempotencyKey implements approval.IdempotencyKeys.
func (s *Store) RequestByIdempotencyKey(ctx context.Context, key string, at time.Time) (*approval.Request, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: request by idempotency key: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if key != "" {
		if h := s.holder(dedupKey{idem: key}, at); h != nil {
			return h.Clone(), nil
		}
	}
	return nil, fmt.Errorf("memstore: idempotency key %.64q: %w", key, approval.ErrNotFound)
}

// LastRun implements approval.PriorRuns.
func (s *Store) LastRun(ctx context.Context, actionHash string, since time.Time) (approval.PriorRun, bool, error) {
	if err := ctx.Err(); err != nil {
		return approval.PriorRun{}, false, fmt.Errorf("memstore: last run: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.ran[actionHash]
	if !ok {
		return approval.PriorRun{}, false, nil
	}
	r := s.requests[id]
	if r.Status != approval.StatusConsumed || r.UpdatedAt.Before(since) {
		return approval.PriorRun{}, false, nil
	}
	return approval.PriorRun{RequestID: r.ID, At: r.UpdatedAt}, true, nil
}

// insertID adds id to s.ids, keeping it sorted.
func (s *Store) insertID(id string) {
	if n := len(s.ids); n == 0 || s.ids[n-1] < id {
		s.ids = append(s.ids, id)
		return
	}
	i, _ := slices.BinarySearch(s.ids, id)
	s.ids = slices.Insert(s.ids, i, id)
}

// Get implements approval.Store.
func (s *Store) Get(ctx context.Context, id string) (*approval.Request, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: get %s: %w", id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.requests[id]
	if !ok {
		return nil, fmt.Errorf("memstore: get %s: %w", id, approval.ErrNotFound)
	}
	return r.Clone(), nil
}

// Update implements approval.Store. It checks the version before the token,
// so an Update that is both stale and replayed reports ErrConflict.
func (s *Store) Update(ctx context.Context, u approval.Update) error {
	if u.Request == nil {
		return errors.New("memstore: update: nil request")
	}
	id := u.Request.ID
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: update %s: %w", id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.observe(u.Request.UpdatedAt)
	old, ok := s.requests[id]
	if !ok {
		return fmt.Errorf("memstore: update %s: %w", id, approval.ErrNotFound)
	}
	if old.Version != u.Request.Version-1 {
		return fmt.Errorf("memstore: update %s: stored version %d, update to %d: %w",
			id, old.Version, u.Request.Version, approval.ErrConflict)
	}
	if err := s.checkNew(u.Outbox); err != nil {
		return fmt.Errorf("memstore: update %s: %w", id, err)
	}
	if u.TokenID != "" {
		if _, used := s.tokens[u.TokenID]; used {
			return fmt.Errorf("memstore: update %s: token %s: %w", id, u.TokenID, approval.ErrTokenUsed)
		}
		s.tokens[u.TokenID] = struct{}{}
		s.reqTokens[id] = append(s.reqTokens[id], u.TokenID)
	}
	next := u.Request.Clone()
	wasLive, isLive := !old.Status.Terminal(), !next.Status.Terminal()
	oldKey, nextKey := keyOf(old), keyOf(next)
	if wasLive && (!isLive || oldKey != nextKey) {
		s.unlive(oldKey, id)
	}
	if isLive && (!wasLive || oldKey != nextKey) {
		s.live[nextKey] = append(s.live[nextKey], id)
	}
	if s.ran[old.ActionHash] == id && (next.Status != approval.StatusConsumed || old.ActionHash != next.ActionHash) {
		delete(s.ran, old.ActionHash)
	}
	if old.Status.Open() && !next.Status.Open() && len(s.askKeys[id]) > 0 {
		s.release(id, next.UpdatedAt)
	}
	s.requests[id] = next
	s.track(old, next)
	if !isLive {
		s.ended(next)
	}
	s.noteHold(next)
	s.noteRun(next)
	s.appendAudit(u.Events)
	s.addOutbox(u.Outbox)
	return nil
}

// unlive removes id from the live requests of action k.
func (s *Store) unlive(k dedupKey, id string) {
	ids := s.live[k]
	if i := slices.Index(ids, id); i >= 0 {
		ids = slices.Delete(ids, i, i+1)
	}
	if len(ids) == 0 {
		delete(s.live, k)
	} else {
		s.live[k] = ids
	}
}

// List implements approval.Store. The cursor is the ID of the last request
// of the previous page.
func (s *Store) List(ctx context.Context, q approval.RequestQuery) (approval.RequestPage, error) {
	if err := ctx.Err(); err != nil {
		return approval.RequestPage{}, fmt.Errorf("memstore: list: %w", err)
	}
	limit := approval.PageSize(q.Limit)
	s.mu.Lock()
	defer s.mu.Unlock()
	start := 0
	if q.Cursor != "" {
		var found bool
		start, found = slices.BinarySearch(s.ids, q.Cursor)
		if found {
			start++
		}
	}
	var page approval.RequestPage
	add := func(id string) bool {
		r, ok := s.requests[id]
		if !ok || !matchRequest(r, &q) {
			return true
		}
		if len(page.Requests) == limit {
			// A further match exists, so this is not the last page.
			page.Next = page.Requests[limit-1].ID
			return false
		}
		page.Requests = append(page.Requests, r.Clone())
		return true
	}
	if len(q.Status) > 0 && !slices.ContainsFunc(q.Status, approval.Status.Terminal) {
		// Open statuses only: walk the open requests, not those that ended.
		s.open.AscendGreaterOrEqual(q.Cursor, func(id string) bool { return id == q.Cursor || add(id) })
		return page, nil
	}
	for _, id := range s.ids[start:] {
		if !add(id) {
			break
		}
	}
	return page, nil
}

func matchRequest(r *approval.Request, q *approval.RequestQuery) bool {
	if len(q.Status) > 0 && !slices.Contains(q.Status, r.Status) {
		return false
	}
	if q.RequestedBy != "" && r.Action.RequestedBy != q.RequestedBy {
		return false
	}
	if q.Policy != "" && !slices.ContainsFunc(r.Policies, func(p approval.MatchedPolicy) bool { return p.Name == q.Policy }) {
		return false
	}
	if q.Approver != "" && !slices.ContainsFunc(r.Votes, func(v approval.Vote) bool { return v.Approver == q.Approver }) {
		return false
	}
	if !q.CreatedFrom.IsZero() && r.CreatedAt.Before(q.CreatedFrom) {
		return false
	}
	if !q.CreatedTo.IsZero() && !r.CreatedAt.Before(q.CreatedTo) {
		return false
	}
	return true
}

// ListDue implements approval.Store. A limit of 0 or less means
// approval.DefaultPageSize; requests due at the same time come in ID order.
func (s *Store) ListDue(ctx context.Context, q approval.DueQuery) ([]*approval.Request, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: list due: %w", err)
	}
	now, after, limit := q.Now, q.After, approval.PageSize(q.Limit)
	s.mu.Lock()
	defer s.mu.Unlock()
	var due []*approval.Request
	next := func(e dueEntry) bool {
		if e.at.After(now) {
			return false
		}
		if after.IsZero() || dueLess(dueEntry{after.DueAt, after.ID}, e) {
			due = append(due, s.requests[e.id].Clone())
		}
		return len(due) < limit
	}
	if after.IsZero() {
		s.due.Ascend(next)
	} else {
		s.due.AscendGreaterOrEqual(dueEntry{after.DueAt, after.ID}, next)
	}
	return due, nil
}

// AppendAudit implements approval.Store.
func (s *Store) AppendAudit(ctx context.Context, events []approval.AuditEvent) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: append audit: %w", err)
	}
	s.mu.Lock()
	s.appendAudit(events)
	s.mu.Unlock()
	return nil
}

// appendAudit seals events in the caller's slice and appends copies to the
// trail. s.mu must be held.
func (s *Store) appendAudit(events []approval.AuditEvent) {
	var prevHash string
	if s.auditLen > s.auditBase {
		prevHash = s.event(s.auditLen - 1).Hash
	}
	for i := range events {
		e := &events[i]
		e.Seal(s.auditLen, prevHash)
		prevHash = e.Hash
		if s.auditLen%auditChunk == 0 {
			s.audit = append(s.audit, make([]approval.AuditEvent, 0, auditChunk))
		}
		last := &s.audit[len(s.audit)-1]
		*last = append(*last, e.Clone())
		if e.RequestID != "" {
			s.reqEvents[e.RequestID] = append(s.reqEvents[e.RequestID], s.auditLen)
		}
		s.auditLen++
	}
	s.pruneAudit()
}

// event returns the event at index i of the trail (Seq i+1).
func (s *Store) event(i int64) *approval.AuditEvent {
	i -= s.auditBase
	return &s.audit[i/auditChunk][i%auditChunk]
}

var _ approval.AuditTail = (*Store)(nil)

// LastAuditEvent implements approval.AuditTail.
func (s *Store) LastAuditEvent(ctx context.Context) (approval.AuditEvent, bool, error) {
	if err := ctx.Err(); err != nil {
		return approval.AuditEvent{}, false, fmt.Errorf("memstore: last audit event: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.auditLen == s.auditBase {
		return approval.AuditEvent{}, false, nil
	}
	return s.event(s.auditLen - 1).Clone(), true, nil
}

// ListAudit implements approval.Store. The cursor is the sequence number of
// the last event of the previous page, in decimal.
func (s *Store) ListAudit(ctx context.Context, q approval.AuditQuery) (approval.AuditPage, error) {
	if err := ctx.Err(); err != nil {
		return approval.AuditPage{}, fmt.Errorf("memstore: list audit: %w", err)
	}
	var after int64
	if q.Cursor != "" {
		n, err := strconv.ParseInt(q.Cursor, 10, 64)
		if err != nil || n < 0 {
			return approval.AuditPage{}, fmt.Errorf("memstore: list audit: %w %.64q (pass AuditPage.Next)", approval.ErrInvalidCursor, q.Cursor)
		}
		after = n
	}
	limit := approval.PageSize(q.Limit)
	s.mu.Lock()
	defer s.mu.Unlock()
	var page approval.AuditPage
	from := min(max(after, s.auditBase), s.auditLen)
	add := func(i int64) bool {
		e := s.event(i)
		if !matchEvent(e, &q) {
			return true
		}
		if len(page.Events) == limit {
			page.Next = strconv.FormatInt(page.Events[limit-1].Seq, 10)
			return false
		}
		page.Events = append(page.Events, e.Clone())
		return true
	}
	if q.RequestID != "" {
		idx := s.reqEvents[q.RequestID]
		start, _ := slices.BinarySearch(idx, from)
		for _, i := range idx[start:] {
			if !add(i) {
				break
			}
		}
		return page, nil
	}
	for i := from; i < s.auditLen && add(i); i++ {
	}
	return page, nil
}

func matchEvent(e *approval.AuditEvent, q *approval.AuditQuery) bool {
	if q.RequestID != "" && e.RequestID != q.RequestID {
		return false
	}
	if q.Actor != "" && e.Actor != q.Actor {
		return false
	}
	if q.Type != "" && e.Type != q.Type {
		return false
	}
	if !q.Since.IsZero() && e.At.Before(q.Since) {
		return false
	}
	if !q.Until.IsZero() && !e.At.Before(q.Until) {
		return false
	}
	return true
}
