package approval

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/signoff/approval/internal/delivery"
	"github.com/signoff/approval/internal/host"
	"github.com/signoff/approval/internal/wake"
)

// Gate is the approval gate: it evaluates policies, keeps requests in its
// Store and counts decisions. A Gate is safe for concurrent use; several
// gates (in one process or many) may share one Store. Create it with New
// and release it with Close.
type Gate struct {
	store    Store
	sink     AuditSink
	sinkHost *host.Plugin
	keys     *keyring
	dir      Directory
	dirHost  *host.Plugin
	// quorumSkip (a time.Time) pauses the quorum check's directory calls
	// after one ran out of time (quorum.go).
	quorumSkip atomic.Value
	baseURL    string
	limits     Limits
	now        func() time.Time
	log        *slog.Logger
	distinct   bool
	denyAt     int
	poll       time.Duration
	hold       time.Duration // DenialHold; 0: none
	idemWindow time.Duration // IdempotencyWindow
	// idemKeys and runs are the Store's IdempotencyKeys and PriorRuns
	// capabilities, nil if it has none.
	idemKeys IdempotencyKeys
	runs     PriorRuns
	// asks is the Store's AskLimits, nil without.
	asks AskLimits

	tickMu    sync.Mutex
	tickAfter DuePosition // where the next Tick's ListDue starts

	checkpointEvery time.Duration
	checkpointMu    sync.Mutex
	checkpointed    time.Time // this gate's last checkpoint (or attempt)

	mu       sync.Mutex // serialises policy registration
	policies atomic.Pointer[[]*compiledPolicy]
	def      *compiledPolicy
	matchers map[string]func(Action) (bool, error)
	// breakGlass is a copy of Config.BreakGlass.
	breakGlass *BreakGlass

	// outbox keeps the notices of changes: the Store's, or mem. Nil
	// without channels.
	outbox Outbox
	// mem is the in-memory outbox of a Store without one; nil otherwise.
	mem *memOutbox
	// engine delivers from outbox; nil without channels or with
	// DeliveryConfig.StoreOnly.
	engine  *delivery.Runner[*claimed]
	waiters wake.Set // local Wait calls, by request ID
	// passkeys is a copy of Config.Passkeys.
	passkeys PasskeyConfig
	// obs runs Config.Observer; nil without one.
	obs *observer
	// chanNames are the channels' names, for Stats.
	chanNames []string
	// verified is the last successful VerifyAuditTrail (Stats.Verified).
	verified atomic.Pointer[VerifiedHead]
	closed   atomic.Bool
}

// Close stops notification delivery.
//
// Close delivers what is due now (each due message is attempted) and
// returns nil; retries due later stay in the outbox for the next gate on
// the store. If ctx ends first, Close stops at once and returns an error
// wrapping ctx's error; nothing is lost: a message claimed and not
// settled goes to the next claim when its lease ends.
//
// With the in-memory outbox of a Store without one (see
// DeliveryConfig.MemoryLimit), what Close leaves (retries due later, or
// everything once ctx ended) is lost with the gate: Close audits each of
// those notifications as notification.failed with reason "gate closed
// before delivery" and logs their number; those audit writes get at most
// one second of their own after ctx ended, so Close returns soon after
// ctx ends even if a channel never does. Guard and Decide keep working
// after Close but no longer notify: each notification they would have
// sent is audited the same way.
//
// With a Config.Observer, Close then waits (until ctx ends) for the
// Observer to have heard every observation made before it.
//
// Close is safe to call more than once; only the first call waits.
func (g *Gate) Close(ctx context.Context) error {
	if !g.closed.CompareAndSwap(false, true) {
		return nil
	}
	if g.obs != nil {
		// Last: the deliveries Close makes are observed too.
		defer g.obs.close(ctx)
	}
	if g.mem != nil {
		g.mem.closeIntake()
	}
	var err error
	if g.engine != nil {
		err = g.engine.Close(ctx)
	}
	if g.mem != nil {
		return g.mem.close(ctx, err)
	}
	if err != nil {
		g.log.Error("approval: gate closed before every due notification was delivered; they stay in the outbox", "err", err)
		return fmt.Errorf("approval: close: due notifications left in the outbox: %w", err)
	}
	return nil
}

func policyRefs(ps []MatchedPolicy) []PolicyRef {
	refs := make([]PolicyRef, len(ps))
	for i, p := range ps {
		refs[i] = PolicyRef{Name: p.Name, Hash: p.Hash}
	}
	return refs
}

// newRequestID returns "req_" and a UUIDv7 in hex, so IDs sort by creation.
func newRequestID() string {
	id := uuid.Must(uuid.NewV7())
	var b [4 + 32]byte
	copy(b[:], "req_")
	const hexd = "0123456789abcdef"
	for i, c := range id {
		b[4+2*i], b[5+2*i] = hexd[c>>4], hexd[c&0xf]
	}
	return string(b[:])
}

// update writes u through the store, then mirrors its events, wakes
// local waiters and delivery. The notices of a store without an outbox
// go to the gate's in-memory one once the write has committed.
func (g *Gate) update(ctx context.Context, u Update) error {
	g.refreshDeciders(ctx, u.Request)
	stampHashes(u.Request, u.Events)
	notices := u.Outbox
	if g.mem != nil {
		u.Outbox = nil
	}
	if err := g.store.Update(ctx, u); err != nil {
		return err
	}
	g.afterCommit(ctx, u.Events)
	g.observeCommit(ctx, u.Request, u.Events)
	if len(notices) > 0 {
		if g.mem != nil {
			g.mem.push(ctx, u.Request, notices)
		}
		g.notified()
	}
	if !u.Request.Status.Open() {
		g.waiters.Wake(u.Request.ID)
	}
	return nil
}

// Get returns the request with the given ID, or an error wrapping
// ErrNotFound.
func (g *Gate) Get(ctx context.Context, id string) (*Request, error) {
	if err := checkRequestID(id); err != nil {
		return nil, fmt.Errorf("approval: get: %w", err)
	}
	r, err := g.store.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("approval: get %s: %w", id, err)
	}
	return r, nil
}

// List returns a page of requests matching q, oldest first.
//
// RequestedBy, Approver and Awaiting are identities, matched in canonical
// form (see CanonicalID); one that is not a valid identity is
// ErrInvalidIdentity. With Awaiting, a page may hold fewer than Limit
// requests and still have a Next (see listAwaiting).
func (g *Gate) List(ctx context.Context, q RequestQuery) (RequestPage, error) {
	for _, f := range []*string{&q.RequestedBy, &q.Approver, &q.Awaiting} {
		if *f == "" {
			continue
		}
		id, err := CanonicalID(*f)
		if err != nil {
			return RequestPage{}, fmt.Errorf("approval: list requests: %w", err)
		}
		*f = id
	}
	if q.Awaiting != "" {
		p, err := g.listAwaiting(ctx, q)
		if err != nil {
			return RequestPage{}, fmt.Errorf("approval: list requests awaiting %s: %w", q.Awaiting, err)
		}
		return p, nil
	}
	p, err := g.store.List(ctx, q)
	if err != nil {
		return RequestPage{}, fmt.Errorf("approval: list requests: %w", err)
	}
	return p, nil
}
