package approval

import (
	"context"
	"time"
)

// Store persists requests and their audit trail. Implementations must be
// safe for concurrent use by many goroutines (and, for shared databases, by
// many processes), and must honour the contract written on each method.
// Every method takes a context and returns the context's error if it is
// cancelled before the work commits.
//
// The gate never hands a store a policy: stores see requests, which carry
// the policy snapshots they need, and nothing else. A store must not keep
// references to the requests or events passed in or returned: callers may
// modify them afterwards.
//
// A store may forget a request some time after it became terminal, under
// a retention rule it documents (memstore does, by default a day after; a
// request whose hold has not ended must be kept). A forgotten request is
// ErrNotFound, as if it had never been stored; its audit events are not
// forgotten with it.
//
// storetest.Run checks an implementation against this contract.
type Store interface {
	// Create stores req (whose Version is 1) and appends events to the audit
	// trail, atomically: both or neither.
	//
	// If req is not terminal and a request with the same ActionHash exists
	// whose status is not terminal (see Status.Terminal), Create stores
	// nothing and returns a copy of that request with created == false.
	// This check and the insert are one atomic step: concurrent Creates of
	// one action, from any number of goroutines or processes, create
	// exactly one request. A terminal req (an action a deny policy refused)
	// is stored whatever else exists.
	//
	// If req is not terminal, no such live request exists, and a request
	// with the same ActionHash has a HoldUntil after req.CreatedAt (a
	// person denied it, or it timed out, recently), Create likewise stores
	// nothing and returns a copy of that request (the one with the latest
	// HoldUntil) with created == false, in the same atomic step.
	//
	// A request with an Action.IdempotencyKey is deduplicated by its key
	// instead (the gate gives such requests only to a store that
	// implements IdempotencyKeys): for req with a key, "a request with the
	// same ActionHash" above reads "a request with the same
	// IdempotencyKey", whatever its ActionHash. A request without a key is
	// never returned for one with a key, nor one with a key for one
	// without.
	//
	// Create returns ErrConflict if a request with req.ID already exists
	// (after the deduplication check). On success it seals each element of
	// events in place (see AuditEvent.Seal: Seq, PrevHash, Hash, and At
	// normalised).
	Create(ctx context.Context, req *Request, events []AuditEvent) (stored *Request, created bool, err error)

	// Get returns a copy of the request with the given ID, or an error
	// wrapping ErrNotFound.
	Get(ctx context.Context, id string) (*Request, error)

	// Update replaces a stored request with u.Request and appends u.Events,
	// atomically, if and only if the stored request's Version equals
	// u.Request.Version-1. It returns ErrNotFound if no such request exists
	// and ErrConflict if the version differs (another update won the race);
	// in both cases nothing is written.
	//
	// If u.TokenID is not empty, the store records it as used, in the same
	// atomic step, and returns ErrTokenUsed (writing nothing) if any earlier
	// Update, for any request, recorded the same token ID. A stale version
	// is reported as ErrConflict even if the token is also used.
	//
	// A terminal request is final: the gate never updates it, and a store
	// may refuse an Update that makes a terminal request live again with
	// ErrConflict.
	//
	// On success it seals each element of u.Events in place.
	Update(ctx context.Context, u Update) error

	// List returns requests matching q in ascending ID (creation) order, at
	// most PageSize(q.Limit) of them, and a cursor for the next page, empty
	// on the last page. Vote filters match Vote.Approver (the person who
	// decided, delegate or not).
	List(ctx context.Context, q RequestQuery) (RequestPage, error)

	// ListDue returns up to PageSize(q.Limit) non-terminal requests whose
	// DueAt is not zero and not after q.Now, in (DueAt, ID) order, earliest
	// first, starting after q.After when it is not zero (keyset
	// pagination: a request whose DueAt and ID are both those of q.After
	// or before is not returned).
	ListDue(ctx context.Context, q DueQuery) ([]*Request, error)

	// AppendAudit appends events that change no request (rejected
	// decisions, deduplicated Guards, notification outcomes) to the audit
	// trail, atomically: one call's events are consecutive in the chain. It
	// seals each element in place.
	AppendAudit(ctx context.Context, events []AuditEvent) error

	// ListAudit returns audit events matching q in ascending sequence
	// order, at most PageSize(q.Limit) of them, and a cursor for the next
	// page, empty on the last page. A cursor the store did not issue is an
	// error wrapping ErrInvalidCursor.
	ListAudit(ctx context.Context, q AuditQuery) (AuditPage, error)
}

// PrunedAudit is an optional Store capability, found by type assertion: a
// store that keeps only the newest part of its audit trail (memstore with
// WithMaxAuditEvents) says where the kept part begins, so that
// VerifyAuditTrail verifies it from there instead of reporting the missing
// start as tampering.
type PrunedAudit interface {
	// AuditAnchor returns the sequence number and hash of the newest event
	// the store dropped, or 0 and "" if it dropped none. The kept trail
	// begins with the event numbered seq+1, whose PrevHash is hash.
	AuditAnchor(ctx context.Context) (seq int64, hash string, err error)
}

// IdempotencyKeys is an optional Store capability, found by type
// assertion: a store that keeps the requests of actions with an
// Action.IdempotencyKey apart by key, as Store.Create describes, and finds
// them by key. Guard refuses an action with a key (ErrUnsupported) on a
// store without it: it could not keep the key's promise. memstore and
// sqlstore implement it; storetest.Run checks it.
type IdempotencyKeys interface {
	// RequestByIdempotencyKey returns a copy of the request that holds key
	// at time at, the one Create would return for a live request with that
	// key created then: the request with that IdempotencyKey that is not
	// terminal, or else, of those whose HoldUntil is after at, the one with
	// the latest HoldUntil. It returns an error wrapping ErrNotFound when
	// no request holds the key.
	RequestByIdempotencyKey(ctx context.Context, key string, at time.Time) (*Request, error)
}

// PriorRuns is an optional Store capability, found by type assertion: a
// store that finds the latest run of an action, so that a new request can
// tell its approvers that an identical action ran recently
// (Request.Prior). Without it, requests have no Prior. memstore and
// sqlstore implement it; storetest.Run checks it.
type PriorRuns interface {
	// LastRun returns, of the requests with the given ActionHash whose
	// status is StatusConsumed and whose UpdatedAt (when the approval was
	// consumed) is not before since, the one with the latest UpdatedAt, as
	// its ID and UpdatedAt; false when there is none. A request the store
	// has forgotten (see Store) is not found.
	LastRun(ctx context.Context, actionHash string, since time.Time) (PriorRun, bool, error)
}

// ResolutionNotifier is an optional Store capability, found by type
// assertion: a store that can tell a waiting Gate.Wait, in this process or
// another sharing the store, that a request may have left the open states
// (see Status.Open), so that Wait need not poll to find out. sqlstore
// implements it (across processes on PostgreSQL, with LISTEN/NOTIFY).
type ResolutionNotifier interface {
	// SubscribeResolved starts watching request id and returns a channel
	// and a function that stops the watch. After an Update that moves the
	// request out of the open states has committed, the channel receives
	// a value; it has a buffer of one and the store never blocks sending
	// to it, so several wake-ups may arrive as one. A wake-up says only
	// that the request may have changed: the waiter reads it again to
	// know. Spurious wake-ups are allowed (the store may send one whenever
	// it may have missed a notification, such as after reconnecting); a
	// missed one is not, except while the store cannot watch (its
	// connection is lost), which is why Wait also polls. The watch covers
	// every Update that commits after SubscribeResolved returns.
	//
	// SubscribeResolved must not block or do I/O on the caller's
	// goroutine. The stop function may be called more than once; after it
	// returns, the channel receives nothing more. Both may be called
	// concurrently, for the same id or others.
	SubscribeResolved(id string) (wake <-chan struct{}, stop func())
}

// Update is one compare-and-set write of a request; see Store.Update.
type Update struct {
	// Request is the new state. Its Version must be the stored version + 1.
	Request *Request
	// TokenID is the decision token consumed by this update, if any.
	TokenID string
	// Events are appended to the audit trail with the write.
	Events []AuditEvent
	// Outbox holds the notices the write causes. A store that implements
	// Outbox stores them with the write, atomically; the gate sets it for
	// no other store.
	Outbox []OutboxMessage
}

// DueQuery selects the requests Tick must look at; see Store.ListDue.
type DueQuery struct {
	// Now is the time: requests due at or before it are listed.
	Now time.Time
	// After continues a scan past the request it names. Zero: from the
	// earliest due request.
	After DuePosition
	// Limit bounds the page size, as RequestQuery.Limit does.
	Limit int
}

// DuePosition is a place in the (DueAt, ID) order of due requests.
type DuePosition struct {
	// DueAt is the due time of the last request seen.
	DueAt time.Time
	// ID is its ID, which orders requests due at the same time.
	ID string
}

// IsZero reports whether p is the start of the order.
func (p DuePosition) IsZero() bool { return p.DueAt.IsZero() && p.ID == "" }

// RequestQuery selects requests for Store.List and Gate.List. Zero fields
// do not filter.
type RequestQuery struct {
	// Status keeps requests in any of these statuses.
	Status []Status
	// Policy keeps requests that matched the named policy.
	Policy string
	// RequestedBy keeps requests made by this requester.
	RequestedBy string
	// Approver keeps requests on which this person has voted.
	Approver string
	// Awaiting keeps the open requests this person may decide and has not:
	// eligible under at least one matched policy (groups and roles
	// resolved through the Directory), not a segregated requester, no vote
	// yet, deadline not passed. It is the reviewer's inbox. Gate.List
	// evaluates it; a Store never sees it (the gate clears it). On a Store
	// with the Inbox capability the candidates are the requests whose
	// Deciders name the person or someone who delegated to them (people
	// resolved when a level opened), each checked again as Decide would;
	// without it, the open requests are scanned.
	Awaiting string
	// CreatedFrom keeps requests created at or after it.
	CreatedFrom time.Time
	// CreatedTo keeps requests created before it.
	CreatedTo time.Time
	// Cursor continues a previous page (RequestPage.Next).
	Cursor string
	// Limit bounds the page size. Defaults to 100; stores cap it at 1000.
	Limit int
}

// RequestPage is one page of requests.
type RequestPage struct {
	// Requests are the page's requests, in ascending ID (creation) order.
	Requests []*Request
	// Next is the cursor for the next page; empty on the last page.
	Next string
}

// AuditQuery selects audit events. Zero fields do not filter.
type AuditQuery struct {
	// RequestID keeps the events of one request.
	RequestID string
	// Actor keeps the events caused by one person or service.
	Actor string
	// Type keeps the events of one type (EventBreakGlass, to list the
	// break-glass approvals).
	Type EventType
	// Since keeps events at or after it.
	Since time.Time
	// Until keeps events before it.
	Until time.Time
	// Cursor continues a previous page (AuditPage.Next).
	Cursor string
	// Limit bounds the page size. Defaults to 100; stores cap it at 1000.
	Limit int
}

// AuditPage is one page of audit events.
type AuditPage struct {
	// Events are the page's events, in sequence order.
	Events []AuditEvent
	// Next is the cursor for the next page; empty on the last page.
	Next string
}

// Page size defaults shared by the built-in stores.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// PageSize returns the effective page size for a requested limit: the
// default for 0 or less, capped at MaxPageSize.
func PageSize(limit int) int {
	switch {
	case limit <= 0:
		return DefaultPageSize
	case limit > MaxPageSize:
		return MaxPageSize
	}
	return limit
}

// AuditTail is an optional Store capability, found by type assertion: a
// store that reads the newest event of its trail directly. Gate.Checkpoint
// uses it to find the head it signs; without it the gate reads the whole
// trail to find it. memstore and sqlstore implement it.
type AuditTail interface {
	// LastAuditEvent returns the event with the highest sequence number,
	// and false if the trail is empty.
	LastAuditEvent(ctx context.Context) (AuditEvent, bool, error)
}

// Inbox is an optional Store capability, found by type assertion: an
// index of Request.Deciders, so that a reviewer's inbox (Gate.List with
// RequestQuery.Awaiting) reads one page of it instead of scanning the open
// requests and asking the Directory about each. A Store that implements
// it keeps the index in step with every Create and Update, in the same
// atomic write. memstore and sqlstore implement it; storetest.Run checks
// it. Without it the gate scans (see RequestQuery.Awaiting).
type Inbox interface {
	// ListInbox returns the requests whose Deciders hold any of q.People,
	// each once, in ascending ID order after q.Cursor, at most
	// PageSize(q.Limit) of them, and the cursor of the next page (empty on
	// the last).
	ListInbox(ctx context.Context, q InboxQuery) (RequestPage, error)
}

// InboxQuery selects a page of an Inbox.
type InboxQuery struct {
	// People are canonical IDs: the reviewer, and those who delegated to
	// them. At most MaxInboxPeople.
	People []string
	// Cursor continues a previous page (RequestPage.Next): the ID of the
	// last request of that page.
	Cursor string
	// Limit bounds the page size (see PageSize).
	Limit int
}

// MaxInboxPeople bounds InboxQuery.People: a reviewer and up to 99 people
// who delegated to them. A reviewer holding more delegations is served by
// the scan.
const MaxInboxPeople = 100

// Delegations is an optional Store capability, found by type assertion:
// durable delegations (see Delegation). memstore and sqlstore implement
// it; the gate's delegation methods return ErrUnsupported on a store
// without it. storetest.Run checks it.
type Delegations interface {
	// CreateDelegation stores d, and appends events, atomically. It
	// returns ErrConflict if a delegation with d.ID exists. It seals each
	// event in place.
	CreateDelegation(ctx context.Context, d *Delegation, events []AuditEvent) error

	// RevokeDelegation sets RevokedAt and RevokedBy of the delegation id
	// to at and by, if it is not revoked yet, and appends events,
	// atomically, and returns it as revoked. It returns ErrNotFound if
	// there is no such delegation and ErrConflict if it is revoked
	// already, writing nothing.
	RevokeDelegation(ctx context.Context, id string, at time.Time, by string, events []AuditEvent) (*Delegation, error)

	// ListDelegations returns the delegations matching q, in ascending ID
	// order, at most PageSize(q.Limit) of them.
	ListDelegations(ctx context.Context, q DelegationQuery) ([]Delegation, error)
}

// Outbox is an optional Store capability, found by type assertion: a store
// that keeps the notifications a change causes with the change itself, in
// the same atomic step, and hands them to delivery workers under a lease.
// With it, notifications survive a crash, are retried with backoff until
// their channel's attempt limit, and end, if every attempt failed, as dead
// letters an operator can list (Gate.ListOutbox) and send again
// (Gate.Redrive). memstore and sqlstore implement it; for a store without
// it, a gate with channels keeps an outbox of its own in memory
// (DeliveryConfig.MemoryLimit), which a crash loses.
//
// An outbox holds two kinds of message. A notice (Channel "") says that a
// notification of Type is due about a request; a worker expands it, once
// it has resolved the recipients, into one delivery per recipient and
// channel (SettleOutbox with Add), in one atomic step. A delivery carries
// its Notification (Body, JSON, without links: they are signed at each
// attempt, so no token is stored) and its ID is the Notification's ID,
// the same at every attempt: the idempotency key receivers deduplicate on.
//
// A message is claimed for a lease (ClaimOutbox): no other claim returns it
// until the lease ends, so workers in several processes sharing a database
// never send one message at once; a worker that dies holding a claim loses
// it when the lease ends, and the message goes to the next claim. Only the
// lease's owner can settle a message.
//
// storetest.Run checks an Outbox against this contract.
type Outbox interface {
	// CreateWithOutbox is Store.Create that, if it creates req, stores
	// msgs in the same atomic step; if it creates nothing, it stores none.
	CreateWithOutbox(ctx context.Context, req *Request, events []AuditEvent, msgs []OutboxMessage) (*Request, bool, error)

	// ClaimOutbox leases up to PageSize(q.Limit) pending messages of
	// q.Channel ("" for notices), of q.Recipient alone when it is not
	// empty, whose NextAttempt is not after q.Now and
	// whose lease, if any, has ended, oldest NextAttempt first: it sets
	// their LeaseOwner to q.Owner and LeaseUntil to q.Now + q.Lease and
	// returns them.
	ClaimOutbox(ctx context.Context, q OutboxClaim) ([]OutboxMessage, error)

	// SettleOutbox records the outcome of a claimed message, and appends
	// s.Events, atomically. It returns ErrConflict, writing nothing, if
	// the message is not pending with LeaseOwner s.Owner (its lease ended
	// and another worker claimed it), and ErrNotFound if there is no such
	// message.
	SettleOutbox(ctx context.Context, s OutboxSettle) error

	// ListOutbox returns messages matching q in ascending ID order, at
	// most PageSize(q.Limit), and a cursor for the next page, empty on the
	// last page. A cursor the store did not issue is an error wrapping
	// ErrInvalidCursor.
	ListOutbox(ctx context.Context, q OutboxQuery) (OutboxPage, error)

	// RedriveOutbox makes the dead message id pending again, due at now,
	// with its attempts counted from zero, and appends event, with its
	// RequestID set to the message's, atomically; it seals event in place.
	// It returns ErrNotFound, writing nothing, if no dead message has that
	// ID.
	RedriveOutbox(ctx context.Context, id string, now time.Time, event *AuditEvent) error
}

// AskLimits is an optional Store capability, found by type assertion:
// the state of the limits on asking (Policy.Limit, see AskLimit), kept
// with the requests so that every gate sharing the store enforces one
// limit. A policy with a Limit needs it (SetPolicy refuses one
// otherwise). memstore and sqlstore implement it.
//
// Each AskCheck has a key (AskCheck.Key) under which the store keeps the
// requests counted open (for MaxOpen), the rate's theoretical arrival
// time (for Rate, see AskCheck.Take) and the end of its refusal audit
// window. Requests stop counting open in the Update that makes them not
// open (Status.Open), for a request that Request.CountsOpen: a store with
// AskLimits does so in that Update's atomic step.
//
// storetest.Run checks an AskLimits against this contract.
type AskLimits interface {
	// CreateLimited is CreateWithOutbox (for a store without an Outbox,
	// Create, and msgs is nil) with limits. Deduplication comes first and
	// is never limited: if an existing request answers, it is returned as
	// Create returns it, and the limits are neither checked nor taken.
	// Otherwise, in the same atomic step as the insert, for each check in
	// order: if Limit.MaxOpen is set and that many requests counted open
	// under its key are open, or if Take refuses at req.CreatedAt, the
	// store writes nothing and returns an *AskLimitError (wrapping
	// ErrAskLimited) for the first check that refused. If every check
	// allows, it stores req, events and msgs, counts req open under each
	// key with MaxOpen, and stores each rate's new arrival time.
	// Concurrent CreateLimited calls, from any number of processes, never
	// admit more than a limit allows.
	CreateLimited(ctx context.Context, req *Request, events []AuditEvent, msgs []OutboxMessage, limits []AskCheck) (*Request, bool, error)

	// RecordAskRefusal appends events (sealing them in place) and ends
	// key's audit window at until, atomically, if key's window ended by
	// now (or it has none); otherwise it writes nothing. It reports
	// whether it wrote. Concurrent calls for one key in one window write
	// once.
	RecordAskRefusal(ctx context.Context, key string, now, until time.Time, events []AuditEvent) (bool, error)
}

// AuditStream is an optional Store capability, found by type assertion: a
// store that reads its audit trail as one stream, without pages, and of
// its requests only the part the trail accounts for (AuditedRequest), so
// that VerifyAuditTrail reads and decodes each row once and holds no page
// of them. Without it, VerifyAuditTrail reads through ListAudit and List.
// memstore and sqlstore implement it; storetest.Run checks it.
type AuditStream interface {
	// StreamAudit calls fn with each event of the trail whose Seq is after
	// after, in ascending Seq order, to the end of the trail (an event
	// appended while it runs may or may not be included), or until fn
	// returns an error, which it returns unchanged.
	// A store that dropped the start of its trail (PrunedAudit) begins
	// with its first kept event when after is before it.
	//
	// The event is fn's to read while fn runs, and no longer: the store
	// may reuse it, and its slices, for the next event. fn must not modify
	// it; Clone it to keep it (its strings may be kept as they are).
	// StreamAudit never waits for fn while it holds a lock or a connection
	// the store's other methods need, so fn may call them.
	//
	// A stored event that cannot be read fails StreamAudit as it fails
	// ListAudit (sqlstore's *AuditChainError for a row whose columns
	// disagree with its sealed body), after fn has been called with every
	// event before it.
	StreamAudit(ctx context.Context, after int64, fn func(*AuditEvent) error) error

	// AuditedRequests returns the stored requests whose ID sorts after
	// q.After and whose CreatedAt is not before q.CreatedFrom, at most
	// PageSize(q.Limit) of them, in ascending ID order, as List orders
	// them, each as the part of it that its audit events account for
	// (Request.Audited). It returns fewer than PageSize(q.Limit) only when
	// no more requests match.
	AuditedRequests(ctx context.Context, q AuditedRequestQuery) ([]AuditedRequest, error)
}

// AuditedRequestQuery selects the requests of AuditStream.AuditedRequests.
type AuditedRequestQuery struct {
	// After continues a listing: only requests whose ID sorts after it are
	// returned. Empty: from the first request.
	After string
	// CreatedFrom keeps requests created at or after it; zero keeps all.
	CreatedFrom time.Time
	// Limit bounds the page size, as RequestQuery.Limit does.
	Limit int
}

// AuditedRequest is the part of a stored request that its audit events
// account for (see VerifyAuditTrail): its ID and status, the hashes its
// events bind, its uses and who voted how. Request.Audited makes one from
// a whole request; AuditStream.AuditedRequests reads it without decoding
// the rest.
type AuditedRequest struct {
	// ID is the request's ID.
	ID string
	// Status is its status.
	Status Status
	// CreatedAt is when it was created.
	CreatedAt time.Time
	// ActionHash is its Request.ActionHash, which request.created binds.
	ActionHash string
	// PayloadHash is its Request.PayloadHash, beside ActionHash.
	PayloadHash string
	// Edited is set when an approver edited the payload (Request.Edit is
	// not nil): request.payload_edited and request.approved then bind
	// EditActionHash and EditPayloadHash.
	Edited bool
	// EditActionHash is Request.Edit.ActionHash; empty unless Edited.
	EditActionHash string
	// EditPayloadHash is Request.Edit.PayloadHash; empty unless Edited.
	EditPayloadHash string
	// Uses is Request.Uses: how many Guards consumed the approval.
	Uses int
	// Votes are the request's votes, in order; nil for none.
	Votes []AuditedVote
}

// AuditedVote is the part of a Vote that its audit event accounts for.
type AuditedVote struct {
	// Approver is Vote.Approver: who decided.
	Approver string
	// Verdict is the vote's verdict.
	Verdict Verdict
	// BreakGlass is set for a break-glass approval (Gate.BreakGlass),
	// whose event is request.break_glass.
	BreakGlass bool
}
