package approval

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/signoff/approval/internal/wake"
)

// Config configures a Gate. Store and a key are required: SigningKey to
// issue and verify tokens, or only VerifyKeys for a gate that verifies
// tokens another process issued. Everything else has a default.
type Config struct {
	// Store keeps requests and the audit trail. Required: memstore.New()
	// for tests and single processes, sqlstore.Open for durable state, or
	// your own implementation proved with storetest.
	Store Store
	// Audit receives a copy of every audit event after the Store committed
	// it (the Store's own trail stays the record). Defaults to none.
	Audit AuditSink
	// Channels deliver notifications (see Channel for how). Defaults to
	// none.
	Channels []Channel
	// NotifyQueue bounds each notification queue: the notifications waiting
	// for their recipients to be resolved, and, per channel, those waiting
	// to be sent (besides the one being sent). A notification that does
	// not fit is not sent: it is audited as notification.failed with a
	// reason saying the queue was full, and logged at Error. Defaults to
	// 10,000 (DefaultNotifyQueue).
	NotifyQueue int
	// SendTimeout bounds one Channel.Send call. A Send still running then
	// is abandoned and audited as failed; after three such sends in a row
	// the channel is blocked (see Channel). Defaults to 30s
	// (DefaultSendTimeout).
	SendTimeout time.Duration
	// Retry says how the outbox retries a failed delivery (a Store that
	// implements Outbox); see RetryPolicy for the defaults. ChannelRetry
	// overrides it for the channels it names (by Channel.Name).
	Retry        RetryPolicy
	ChannelRetry map[string]RetryPolicy
	// StoreOnly, with a Store that implements Outbox, makes the gate store
	// the notices of its changes without delivering any: processes that
	// serve requests write the outbox, and a process whose gate leaves it
	// false delivers for all of them. Channels must still be set (their
	// names address the deliveries).
	StoreOnly bool
	// SendConcurrency bounds the sends in flight per channel with an
	// outbox, so that a recipient whose sends hang does not hold up the
	// channel's others. Defaults to 4.
	SendConcurrency int
	// SigningKey signs decision tokens. Without it the gate can verify
	// tokens (VerifyKeys) but not issue them. Links already sent work after
	// a restart only with the same key: load it from a file
	// (LoadOrCreateKeyFile, DecodePrivateKeyPEM).
	SigningKey ed25519.PrivateKey
	// VerifyKeys are further public keys whose tokens are accepted: the keys
	// of other replicas, or retired keys during a rotation (keep a retired
	// key until the longest token TTL has passed; DecodePublicKeyPEM reads
	// one). The SigningKey's own public key is always accepted.
	VerifyKeys []ed25519.PublicKey
	// TokenLeeway is the clock skew tolerated on token expiry and issue
	// time. Defaults to 30s.
	TokenLeeway time.Duration
	// BaseURL is the address the review pages are served at, for the links
	// in notifications ("https://api.example.com"). Defaults to none: no
	// links are sent.
	BaseURL string
	// Directory resolves Group and Role approvers (see Directory for how
	// its failures are handled). Required if any policy names a group or
	// role. A directory that can list its groups and roles (GroupLister,
	// RoleLister; StaticDirectory can) has a policy naming others refused
	// as it is registered.
	Directory Directory
	// Default applies when no registered policy matches an action; its
	// Match is ignored. Defaults to nil: such actions are approved at once
	// with reason "no-policy-matched".
	Default *Policy
	// DistinctApproversAcrossPolicies makes each approver count toward one
	// matched policy only, even if eligible under several. Defaults to
	// false: one approval counts for every policy the approver is eligible
	// under.
	DistinctApproversAcrossPolicies bool
	// DenyThreshold is how many distinct eligible approvers must deny to
	// deny a request. Defaults to 1: one denial denies at once.
	DenyThreshold int
	// Limits bound the size of actions. Defaults to the defaults of Limits.
	Limits Limits
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
	// Logger receives errors the gate handles itself (channel, directory
	// and audit sink failures, matcher errors, host code that panicked,
	// with its stack). Defaults to slog.Default().
	Logger *slog.Logger
	// PollInterval is how often Wait re-reads a request from the Store, to
	// see decisions made by other processes. A Store that implements
	// ResolutionNotifier wakes Wait sooner, and the poll is then only its
	// fallback. Defaults to 1s.
	PollInterval time.Duration
	// DenialHold is how long a person's "no" (or a timeout) stands: after
	// a request is denied by an approver or times out, a Guard of the
	// identical action within DenialHold returns that request, its status
	// and reason, instead of opening a new request and notifying every
	// approver again. Defaults to DefaultDenialHold; negative disables the
	// hold. A denial by a deny policy is not held (it is re-evaluated on
	// every Guard), nor is a cancellation.
	DenialHold time.Duration
	// IdempotencyWindow is how long an action that ran under an
	// Action.IdempotencyKey is remembered by its key: within it, a Guard
	// with the key returns that earlier outcome (StatusConsumed) instead
	// of opening a new request, and a Guard with the key and another action
	// is ErrInvalidAction. It is also how far back a new request looks for
	// an identical action that ran (Request.Prior). Must not be negative.
	// Defaults to 24h.
	IdempotencyWindow time.Duration
	// Matchers are the host's predicates, by name, that policy files name
	// in {custom: NAME} matchers (see Gate.CustomMatcher and
	// policyfile.Load; a policyfile.MatcherRegistry is one). A file naming
	// one not here is refused. Defaults to none.
	Matchers map[string]func(Action) (bool, error)
	// BreakGlass, when set, is the emergency path around the policies
	// (see BreakGlass and Gate.BreakGlass). Nil: there is none.
	BreakGlass *BreakGlass
	// CheckpointInterval makes Tick (and so Run) sign the head of the
	// audit trail as an audit.checkpoint event (see Gate.Checkpoint) when
	// this long has passed since the gate's last checkpoint, unless the
	// newest event is already one. Defaults to 0: only on demand. Needs a
	// SigningKey.
	CheckpointInterval time.Duration
}

// DefaultDenialHold is the default of Config.DenialHold.
const DefaultDenialHold = time.Hour

// DefaultIdempotencyWindow is the default of Config.IdempotencyWindow.
const DefaultIdempotencyWindow = 24 * time.Hour

// Gate is the approval gate: it evaluates policies, keeps requests in its
// Store and counts decisions. A Gate is safe for concurrent use; several
// gates (in one process or many) may share one Store. Create it with New
// and release it with Close.
type Gate struct {
	store    Store
	sink     AuditSink
	sinkHost *plugin
	keys     *keyring
	dir      Directory
	dirHost  *plugin
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

	notify  *dispatcher   // in-process delivery, for a store without Outbox
	outbox  *outboxRunner // durable delivery, for a store with Outbox
	waiters wake.Set      // local Wait calls, by request ID
	closed  atomic.Bool
}

// New validates cfg, fills its defaults and returns a Gate.
//
// When the gate sends links (Config.BaseURL is set), New warns through
// Config.Logger if the SigningKey will not outlive the process, as far as
// that can be told: a key GenerateKeys made in this process and never
// encoded with EncodePrivateKeyPEM. A key from anywhere else is assumed
// durable, and a generated key saved some other way still draws the warning.
func New(cfg Config) (*Gate, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("approval: %w: Config.Store is nil (use memstore.New() for tests)", ErrInvalidConfig)
	}
	if cfg.TokenLeeway < 0 || cfg.PollInterval < 0 || cfg.CheckpointInterval < 0 || cfg.DenyThreshold < 0 || cfg.NotifyQueue < 0 || cfg.SendTimeout < 0 || cfg.SendConcurrency < 0 || cfg.IdempotencyWindow < 0 {
		return nil, fmt.Errorf("approval: %w: TokenLeeway, PollInterval, CheckpointInterval, DenyThreshold, NotifyQueue, SendTimeout, SendConcurrency and IdempotencyWindow must not be negative", ErrInvalidConfig)
	}
	if cfg.TokenLeeway == 0 {
		cfg.TokenLeeway = DefaultTokenLeeway
	}
	keys, err := newKeyring(cfg.SigningKey, cfg.VerifyKeys, cfg.TokenLeeway)
	if err != nil {
		return nil, fmt.Errorf("approval: %w", err)
	}
	for i, c := range cfg.Channels {
		if c == nil {
			return nil, fmt.Errorf("approval: %w: Channels[%d] is nil", ErrInvalidConfig, i)
		}
	}
	if cfg.BaseURL != "" && !strings.HasPrefix(cfg.BaseURL, "https://") && !strings.HasPrefix(cfg.BaseURL, "http://") {
		return nil, fmt.Errorf("approval: %w: BaseURL %q is not an http(s) URL", ErrInvalidConfig, cfg.BaseURL)
	}
	g := &Gate{
		store:           cfg.Store,
		sink:            cfg.Audit,
		keys:            keys,
		dir:             cfg.Directory,
		baseURL:         strings.TrimRight(cfg.BaseURL, "/"),
		limits:          cfg.Limits.withDefaults(),
		now:             cfg.Now,
		log:             cfg.Logger,
		distinct:        cfg.DistinctApproversAcrossPolicies,
		denyAt:          cfg.DenyThreshold,
		poll:            cfg.PollInterval,
		checkpointEvery: cfg.CheckpointInterval,
		hold:            cfg.DenialHold,
		idemWindow:      cfg.IdempotencyWindow,
		matchers:        cfg.Matchers,
	}
	if g.idemWindow == 0 {
		g.idemWindow = DefaultIdempotencyWindow
	}
	g.idemKeys, _ = cfg.Store.(IdempotencyKeys)
	g.runs, _ = cfg.Store.(PriorRuns)
	if cfg.BreakGlass != nil {
		if err := cfg.BreakGlass.validate(); err != nil {
			return nil, fmt.Errorf("approval: %w", err)
		}
		bg := *cfg.BreakGlass
		bg.Approvers, bg.Security, bg.SecurityChannels = slices.Clone(bg.Approvers), slices.Clone(bg.Security), slices.Clone(bg.SecurityChannels)
		g.breakGlass = &bg
	}
	if g.now == nil {
		g.now = time.Now
	}
	if g.log == nil {
		g.log = slog.Default()
	}
	if g.baseURL != "" && isEphemeral(cfg.SigningKey) {
		g.log.Warn("approval: the signing key was generated by this process and never saved; "+
			"the links it signs stop working when the process exits (keep the key in a file: approval.LoadOrCreateKeyFile)",
			"kid", g.keys.signerKID)
	}
	g.sinkHost = newPlugin("audit sink", g.log)
	g.dirHost = newPlugin("directory", g.log)
	if g.denyAt == 0 {
		g.denyAt = 1
	}
	switch {
	case g.hold == 0:
		g.hold = DefaultDenialHold
	case g.hold < 0:
		g.hold = 0
	}
	if g.poll == 0 {
		g.poll = time.Second
	}
	if cfg.Default != nil {
		def := *cfg.Default
		if def.Match == nil {
			def.Match = Name("*")
		}
		if def.Effect == EffectDeny {
			return nil, fmt.Errorf("approval: %w: Config.Default must require approval, not deny", ErrInvalidConfig)
		}
		cp, err := compilePolicy("default", def, g.dir != nil)
		if err == nil {
			err = g.knownApprovers().check(&cp.def)
		}
		if err != nil {
			return nil, fmt.Errorf("approval: %w: Config.Default: %w", ErrInvalidConfig, err)
		}
		g.def = cp
	}
	g.policies.Store(new([]*compiledPolicy))
	if len(cfg.Channels) > 0 {
		if cfg.NotifyQueue == 0 {
			cfg.NotifyQueue = DefaultNotifyQueue
		}
		if cfg.SendTimeout == 0 {
			cfg.SendTimeout = DefaultSendTimeout
		}
		chans, err := nameChannels(g, cfg.Channels)
		if err != nil {
			return nil, err
		}
		if ob, ok := cfg.Store.(Outbox); ok {
			g.outbox = newOutboxRunner(g, ob, chans, cfg)
		} else {
			g.notify = newDispatcher(g, chans, cfg.NotifyQueue, cfg.SendTimeout)
		}
	}
	return g, nil
}

// Close stops notification delivery.
//
// With an outbox (see Channel), Close delivers what is due now (each due
// message is attempted) and returns nil; retries due later stay in the
// outbox for the next gate on the store. If ctx ends first, Close stops
// at once and returns an error wrapping ctx's error; nothing is lost: a
// message claimed and not settled goes to the next claim when its lease
// ends.
//
// In process, Close takes no new notifications and returns nil once the
// queued ones are delivered (sent, or failed and audited). If ctx ends
// first, Close stops delivery at once, audits each notification left
// undelivered as notification.failed with reason "gate closed before
// delivery", logs their number, and returns an error wrapping ctx's
// error; those audit writes get at most one second of their own, so Close
// returns soon after ctx ends even if a channel never does. A Send still
// running then is abandoned. Guard and Decide keep working after Close
// but no longer notify: each notification they would have sent is
// audited as notification.failed, "gate closed before delivery".
//
// Close is safe to call more than once; only the first call waits.
func (g *Gate) Close(ctx context.Context) error {
	if !g.closed.CompareAndSwap(false, true) {
		return nil
	}
	if g.outbox != nil {
		return g.outbox.close(ctx)
	}
	if g.notify == nil {
		return nil
	}
	return g.notify.close(ctx)
}

// Result is the answer of Guard.
type Result struct {
	// Status is StatusApproved (run the action), StatusPending (wait for
	// RequestID) or StatusDenied (do not run it); StatusModified (run it
	// with Payload); StatusTimedOut, a held timeout (do not run it); or
	// StatusConsumed: the action already ran under its IdempotencyKey,
	// approved by request RequestID, and must not run again (Artifact is
	// that approval's). A caller that runs an action only on
	// StatusApproved runs nothing in the others. On error it is
	// StatusDenied.
	Status Status
	// RequestID identifies the request; empty when no request was needed.
	RequestID string
	// Reason explains the status: "no-policy-matched", the deny policy's
	// reason, or the resolution of a consumed approval.
	Reason string
	// Artifact is the signed evidence of the approval Guard consumed
	// (see VerifyArtifact): set with StatusApproved when a request was
	// approved, and with StatusConsumed (the approval an earlier Guard
	// consumed); nil when no policy matched (nobody approved anything) or
	// the gate has no SigningKey.
	Artifact []byte
	// Conditions are the limits the approvers set (Decision.Conditions)
	// with StatusApproved: run the action within them and within
	// Action.Constraints. The artifact binds them.
	Conditions []string
	// Denial is the structured reason a person gave for the denial, with
	// StatusDenied (see Denial): whether asking again can help. Nil when
	// none was given, or a policy denied.
	Denial *Denial
	// Payload, with StatusModified, is the payload the approvers approved
	// in place of the one asked for (see StatusModified): run the action
	// with it. Nil otherwise.
	Payload []byte
}

// Guard asks whether action a may run now.
//
// It validates a (ErrInvalidAction), brings its name, requester, currency
// and tags to their canonical spelling (see CanonicalID), and evaluates
// every policy. No match:
// approved with reason "no-policy-matched" (or Config.Default applies),
// with no I/O at all. A deny policy: denied. Otherwise Guard looks for a
// request for the same action (same requester and action hash): an open one
// is returned as pending (the same request on every retry, never a second);
// an approved one is consumed, and Guard returns approved exactly once for
// it; one a person denied, or that timed out, within Config.DenialHold is
// returned with its status (StatusDenied or StatusTimedOut), request ID and
// reason, so a caller that asks again learns the answer rather than paging
// the approvers again; with none of these, a new pending request is created
// and its approvers are notified in the background. A new request whose
// identical action (same action hash) was approved and ran within
// Config.IdempotencyWindow says so to its approvers (Request.Prior).
//
// An action with an IdempotencyKey never runs twice under that key. Guard
// first looks for the request holding the key (see IdempotencyKeys). One
// for another action (another action hash) makes the Guard fail with
// ErrInvalidAction, naming the key and that request. One whose approval
// was consumed, within Config.IdempotencyWindow, answers the Guard with
// its outcome: StatusConsumed, its ID, reason and artifact, audited as
// request.deduplicated; nothing new is created, evaluated or notified.
// Otherwise the Guard goes on as above, with the key in place of the
// action hash: an open request with the key is returned as pending, an
// approved one is consumed (once: an approval under a key allows no
// reuse), a denial or timeout is held for Config.DenialHold, and after a
// cancellation, an expiry, a hold or the window has passed, a new request
// is opened. An action no policy matches is approved with no I/O and its
// key is not recorded; a deny policy's refusal does not hold the key.
//
// Guard fails closed: on any error it returns StatusDenied with the error.
func (g *Gate) Guard(ctx context.Context, a Action) (Result, error) {
	if err := a.normalize(&g.limits); err != nil {
		return Result{Status: StatusDenied}, fmt.Errorf("approval: guard %q: %w", clip(a.Name, 64), err)
	}
	m := evaluate(*g.policies.Load(), &a)
	if m.deny == nil && len(m.policies) == 0 {
		if g.def == nil {
			return Result{Status: StatusApproved, Reason: ReasonNoPolicyMatched}, nil
		}
		m.policies, m.errs = []*compiledPolicy{g.def}, []string{""}
	}
	res, err := g.guardSlow(ctx, &a, &m)
	if err != nil {
		return Result{Status: StatusDenied, RequestID: res.RequestID}, fmt.Errorf("approval: guard %q: %w", clip(a.Name, 64), err)
	}
	return res, nil
}

// maxAttempts bounds the compare-and-set retries of one operation. Each
// lost race means another writer committed, so the loop always makes
// progress overall; the bound only stops a pathological livelock.
const maxAttempts = 100

// backoff pauses before retry number attempt (from 1) of a lost
// compare-and-set: not at all at first, then a short random time growing
// with the attempt, capped at 5ms, so that a crowd of deciders on one
// request spreads out instead of colliding again.
func backoff(ctx context.Context, attempt int) error {
	if attempt < 2 {
		return ctx.Err()
	}
	d := time.Duration(rand.Int64N(int64(min(attempt, 50)) * int64(100*time.Microsecond)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (g *Gate) guardSlow(ctx context.Context, a *Action, m *match) (Result, error) {
	actionHash, payloadHash, err := a.hashes()
	if err != nil {
		return Result{}, err
	}
	now := normalizeTime(g.now())
	req := g.newRequest(a, m, actionHash, payloadHash, now)
	if a.IdempotencyKey != "" {
		// The key's outcome comes first: an action that ran under it is not
		// evaluated, refused or asked for again.
		if res, done, err := g.byKey(ctx, req, now); err != nil || done {
			return res, err
		}
	}
	if m.deny != nil {
		return g.denyByPolicy(ctx, req, m)
	}
	levelEvents := g.openChains(ctx, req, m, now)
	switch reason, err := g.quorumShortfall(ctx, req); {
	case err != nil:
		g.log.Warn("approval: could not check that the quorum can be met; the request stays pending",
			"action", a.Name, "policies", req.PolicyNames(), "err", err)
	case reason != "":
		g.log.Error("approval: denied a request whose quorum cannot be met", "action", a.Name, "reason", reason)
		return g.denyAtOnce(ctx, req, reason, "")
	}
	events := []AuditEvent{{
		RequestID: req.ID, Type: EventRequestCreated, Actor: a.RequestedBy,
		Policies: policyRefs(req.Policies), Reason: req.Reason, At: now,
	}}
	events = append(events, levelEvents...)
	if rec := req.Action.Recommendation; rec != nil {
		// Kept on the request, not in the action.
		req.Action.Recommendation = nil
		r := rec.clone()
		r.At = now
		req.Recommendations = []Recommendation{r}
		events = append(events, recommendationEvent(req, a.RequestedBy, &r))
		events = append(events, applyRecommendation(req, &r, now)...)
		if allMet(req) {
			return g.approveAtOnce(ctx, req, events, "approved on the recommendation of "+r.By)
		}
	}
	for i, msg := range m.errs {
		if msg != "" {
			g.log.Error("approval: policy matcher failed; applying the policy (fail closed)",
				"policy", m.policies[i].name, "action", a.Name, "err", msg)
			events = append(events, AuditEvent{
				RequestID: req.ID, Type: EventPolicyError, Actor: SystemActor,
				Policies: []PolicyRef{{Name: m.policies[i].name, Hash: m.policies[i].hash}}, Reason: msg, At: now,
			})
		}
	}
	if allMet(req) {
		return g.approveAtOnce(ctx, req, events, "every level skipped")
	}
	if g.runs != nil {
		run, found, err := g.runs.LastRun(ctx, req.ActionHash, now.Add(-g.idemWindow))
		if err != nil {
			return Result{}, fmt.Errorf("look for an earlier run of the action: %w", err)
		}
		if found {
			p := run // only a found run escapes
			req.Prior = &p
		}
	}
	return g.create(ctx, req, events, now)
}

// create stores req, a new request, with events and answers the Guard:
// pending, its approvers notified; or, for req approved as it is created
// (an action with an IdempotencyKey, see approveAtOnce), consumed as the
// Guard of an approved request consumes it. When Create returns a request
// for the same action instead, that request answers.
func (g *Gate) create(ctx context.Context, req *Request, events []AuditEvent, now time.Time) (Result, error) {
	for attempt := range maxAttempts {
		if err := backoff(ctx, attempt); err != nil {
			return Result{}, err
		}
		var (
			stored  *Request
			created bool
			err     error
			notice  []OutboxMessage
		)
		stampHashes(req, events)
		if req.Status.Open() {
			notice = g.notice(NotifyRequested, req, 0, now)
		}
		if notice != nil {
			stored, created, err = g.outbox.ob.CreateWithOutbox(ctx, req, events, notice)
		} else {
			stored, created, err = g.store.Create(ctx, req, events)
		}
		if err != nil {
			return Result{}, err
		}
		switch {
		case created && req.Status.Open():
			g.afterCommit(ctx, events)
			g.notified(ctx, NotifyRequested, req, 0)
			return Result{Status: StatusPending, RequestID: req.ID, Reason: req.Reason}, nil
		case created:
			g.afterCommit(ctx, events)
			stored = req
		case req.Action.IdempotencyKey != "":
			res, done, err := g.keyed(ctx, req, stored)
			if err != nil || done {
				return res, err
			}
		}
		res, done, err := g.existing(ctx, stored)
		if err != nil || done {
			return res, err
		}
		// The existing request just ended (timed out or expired), or
		// another Guard consumed it first: look again on the next attempt.
	}
	return Result{}, fmt.Errorf("%w: gave up after %d attempts", ErrConflict, maxAttempts)
}

// byKey answers a Guard of an action with an IdempotencyKey from the
// request holding the key, if there is one (see keyed).
func (g *Gate) byKey(ctx context.Context, req *Request, now time.Time) (Result, bool, error) {
	if g.idemKeys == nil {
		return Result{}, true, fmt.Errorf("%w: Action.IdempotencyKey needs a Store that implements approval.IdempotencyKeys (memstore and sqlstore do)", ErrUnsupported)
	}
	r, err := g.idemKeys.RequestByIdempotencyKey(ctx, req.Action.IdempotencyKey, now)
	if errors.Is(err, ErrNotFound) {
		return Result{}, false, nil
	}
	if err != nil {
		return Result{}, true, fmt.Errorf("look up idempotency key %q: %w", clip(req.Action.IdempotencyKey, maxEchoBytes), err)
	}
	return g.keyed(ctx, req, r)
}

// keyed answers a Guard of req's action, which has an IdempotencyKey, from
// r, the request holding the key: ErrInvalidAction if r is another action,
// r's outcome if its approval was consumed. done is false when r is open,
// approved or held, for existing to answer from.
func (g *Gate) keyed(ctx context.Context, req, r *Request) (Result, bool, error) {
	key := clip(req.Action.IdempotencyKey, maxEchoBytes)
	if r.ActionHash != req.ActionHash {
		return Result{}, true, fmt.Errorf("%w: idempotency key %q belongs to request %s, for another action (a new operation needs a new key)",
			ErrInvalidAction, key, r.ID)
	}
	if r.Status != StatusConsumed && r.Uses == 0 {
		return Result{}, false, nil
	}
	if err := g.accounted(ctx, r); err != nil {
		return Result{RequestID: r.ID}, true, err
	}
	ev := []AuditEvent{{RequestID: r.ID, Type: EventRequestDeduplicated, Actor: req.Action.RequestedBy, Policies: policyRefs(r.Policies),
		Reason: "already ran at " + r.UpdatedAt.Format(time.RFC3339) + " under idempotency key " + strconv.Quote(key), At: normalizeTime(g.now())}}
	if err := g.appendAudit(ctx, ev); err != nil {
		return Result{RequestID: r.ID}, true, err
	}
	return Result{Status: StatusConsumed, RequestID: r.ID, Reason: r.Reason, Artifact: g.signArtifact(r), Conditions: r.Conditions()}, true, nil
}

// existing handles a Guard that found a non-terminal request for the same
// action. done is false when that request has just become terminal and a new
// one should be created.
func (g *Gate) existing(ctx context.Context, r *Request) (res Result, done bool, err error) {
	now := normalizeTime(g.now())
	res.RequestID = r.ID
	switch {
	case r.Status.Open() && !r.Deadline.IsZero() && !now.Before(r.Deadline):
		_, err = g.applyTimeout(ctx, r)
		return res, false, ignoreConflict(err)
	case r.Status.Terminal():
		// Denied by a person or timed out, and held (see Store.Create):
		// the answer stands.
		ev := []AuditEvent{{RequestID: r.ID, Type: EventRequestDeduplicated, Actor: r.Action.RequestedBy,
			Policies: policyRefs(r.Policies), Reason: "held: " + string(r.Status) + " until " + r.HoldUntil.Format(time.RFC3339), At: now}}
		if err := g.appendAudit(ctx, ev); err != nil {
			return res, false, err
		}
		return Result{Status: r.Status, RequestID: r.ID, Reason: r.Reason, Denial: r.Denial()}, true, nil
	case r.Status.Open():
		ev := []AuditEvent{{RequestID: r.ID, Type: EventRequestDeduplicated, Actor: r.Action.RequestedBy,
			Policies: policyRefs(r.Policies), At: now}}
		if err := g.appendAudit(ctx, ev); err != nil {
			return res, false, err
		}
		return Result{Status: StatusPending, RequestID: r.ID, Reason: r.Reason}, true, nil
	case r.Status == StatusApproved && !r.ExpiresAt.IsZero() && !now.Before(r.ExpiresAt):
		_, err = g.expire(ctx, r)
		return res, false, ignoreConflict(err)
	case r.Status == StatusApproved:
		if err := g.accounted(ctx, r); err != nil {
			return res, false, err
		}
		next := r.Clone()
		use := next.consume(now)
		if next.Action.IdempotencyKey != "" {
			// Used once, and remembered by its key (see Request.HoldUntil).
			next.Status, next.DueAt = StatusConsumed, time.Time{}
			next.HoldUntil = now.Add(g.idemWindow)
		}
		ev := []AuditEvent{{RequestID: r.ID, Type: EventApprovalConsumed, Actor: r.Action.RequestedBy,
			Policies: policyRefs(r.Policies), Reason: joinNonEmpty(r.Reason, use), At: now}}
		err := g.update(ctx, Update{Request: next, Events: ev})
		if errors.Is(err, ErrConflict) {
			// Someone else consumed, expired or cancelled it: look again.
			return res, false, nil
		}
		if err != nil {
			return res, false, err
		}
		res := Result{Status: StatusApproved, RequestID: r.ID, Reason: r.Reason, Artifact: g.signArtifact(next), Conditions: next.Conditions()}
		if next.Edit != nil {
			res.Status, res.Payload = StatusModified, slices.Clone(next.Edit.Payload)
		}
		return res, true, nil
	}
	return res, false, nil
}

func ignoreConflict(err error) error {
	if errors.Is(err, ErrConflict) {
		return nil
	}
	return err
}

// newRequest builds the pending request for a, with the matched policies'
// snapshots and the combined rules: the smallest timeout and approval TTL,
// the most restrictive timeout action, segregation if any policy asks.
func (g *Gate) newRequest(a *Action, m *match, actionHash, payloadHash string, now time.Time) *Request {
	req := &Request{
		ID:                newRequestID(),
		Status:            StatusPending,
		Action:            a.clone(),
		ActionHash:        actionHash,
		PayloadHash:       payloadHash,
		DistinctApprovers: g.distinct,
		DenyThreshold:     g.denyAt,
		OnTimeout:         TimeoutApprove,
		CreatedAt:         now,
		UpdatedAt:         now,
		Version:           1,
	}
	if m.deny != nil {
		req.Policies = []MatchedPolicy{m.deny.snapshot}
		req.Policies[0].MatchError = m.denyErr
		return req
	}
	req.Policies = make([]MatchedPolicy, len(m.policies))
	var timeout, ttl time.Duration
	for i, p := range m.policies {
		req.Policies[i] = p.snapshot
		req.Policies[i].MatchError = m.errs[i]
		if p.segregate {
			req.SegregateRequester = true
		}
		if p.def.OnTimeout == TimeoutDeny {
			req.OnTimeout = TimeoutDeny
		}
		if i == 0 || p.def.Timeout < timeout {
			timeout = p.def.Timeout
		}
		if i == 0 || p.def.ApprovalTTL < ttl {
			ttl = p.def.ApprovalTTL
		}
		if i == 0 {
			req.MaxReuse = p.def.MaxReuse
		} else {
			req.MaxReuse = narrowest(req.MaxReuse, p.def.MaxReuse)
		}
	}
	if a.IdempotencyKey != "" {
		// A key names one run: its approval is used once.
		req.MaxReuse = Reuse{}
	}
	req.ApprovalTTL = ttl
	req.Deadline = now.Add(timeout)
	req.Reason = joinReasons(m.policies)
	req.DueAt = nextDue(req)
	return req
}

// openChains decides the conditional levels of req's chains (a matcher
// error applies the level: fail closed, audited) and opens each chain's
// first level that applies. It returns the events to write with the
// request.
func (g *Gate) openChains(ctx context.Context, req *Request, m *match, now time.Time) []AuditEvent {
	var events []AuditEvent
	for i, cp := range m.policies {
		p := &req.Policies[i]
		p.Progress.Since = now
		if len(cp.def.Chain) == 0 {
			continue
		}
		for li, l := range cp.def.Chain {
			if l.When == nil {
				continue
			}
			ok, err := l.When.Match(&req.Action)
			if err != nil {
				g.log.Error("approval: level condition failed; applying the level (fail closed)",
					"policy", cp.name, "level", li+1, "action", req.Action.Name, "err", err)
				events = append(events, g.levelEvent(req, i, EventPolicyError, SystemActor,
					levelName(&l, li)+" condition failed, so the level applies: "+err.Error(), now))
				continue
			}
			if !ok {
				p.Skipped = append(p.Skipped, li)
			}
		}
		g.openLevel(ctx, req, i, 0, now)
	}
	moved, _ := g.settle(ctx, req, SystemActor, now) // the first notice goes to the levels now current
	events = append(events, moved...)
	req.DueAt = nextDue(req)
	return events
}

// approveAtOnce records req, whose every policy is met as it is created
// (every level of its chains skipped, or passed on a recommendation), as
// approved and consumed by this Guard in one write.
//
// An action with an IdempotencyKey is stored approved instead, and then
// consumed as any approval is: the store keeps one live request per key,
// so of two such Guards of one key only one runs the action.
func (g *Gate) approveAtOnce(ctx context.Context, req *Request, events []AuditEvent, reason string) (Result, error) {
	now := req.CreatedAt
	req.approve(now, reason)
	req.Deadline = time.Time{}
	refs := policyRefs(req.Policies)
	events = append(events,
		AuditEvent{RequestID: req.ID, Type: EventRequestApproved, Actor: SystemActor, Policies: refs, Reason: req.Reason, At: now})
	if req.Action.IdempotencyKey != "" {
		return g.create(ctx, req, events, now)
	}
	req.Status, req.DueAt = StatusConsumed, time.Time{}
	events = append(events,
		AuditEvent{RequestID: req.ID, Type: EventApprovalConsumed, Actor: req.Action.RequestedBy, Policies: refs, Reason: req.Reason, At: now})
	stampHashes(req, events)
	_, created, err := g.store.Create(ctx, req, events)
	if err != nil {
		return Result{}, err
	}
	if !created {
		return Result{}, errors.New("store did not record a consumed request beside a live one (see Store.Create)")
	}
	g.afterCommit(ctx, events)
	return Result{Status: StatusApproved, RequestID: req.ID, Reason: req.Reason, Artifact: g.signArtifact(req)}, nil
}

// denyByPolicy records an action a deny policy refused: a request created
// and denied in one write, so the refusal is in the audit trail.
func (g *Gate) denyByPolicy(ctx context.Context, req *Request, m *match) (Result, error) {
	audited := ""
	if m.denyErr != "" {
		audited = m.deny.def.Reason + " (matcher failed: " + m.denyErr + ")"
	}
	return g.denyAtOnce(ctx, req, m.deny.def.Reason, audited)
}

// denyAtOnce records req as created and denied in one write, with reason
// (and audited, if not empty, as the reason in the trail).
func (g *Gate) denyAtOnce(ctx context.Context, req *Request, reason, audited string) (Result, error) {
	if audited == "" {
		audited = reason
	}
	req.Status, req.Reason, req.ResolvedAt = StatusDenied, reason, req.CreatedAt
	req.OnTimeout, req.Deadline, req.DueAt = TimeoutDeny, time.Time{}, time.Time{}
	refs := policyRefs(req.Policies)
	events := []AuditEvent{
		{RequestID: req.ID, Type: EventRequestCreated, Actor: req.Action.RequestedBy, Policies: refs, At: req.CreatedAt},
		{RequestID: req.ID, Type: EventRequestDenied, Actor: SystemActor, Policies: refs, Reason: audited, At: req.CreatedAt},
	}
	stampHashes(req, events)
	_, created, err := g.store.Create(ctx, req, events)
	if err != nil {
		return Result{}, err
	}
	if !created {
		return Result{}, errors.New("store did not record a denied request beside a live one (see Store.Create)")
	}
	g.afterCommit(ctx, events)
	return Result{Status: StatusDenied, RequestID: req.ID, Reason: reason}, nil
}

func joinReasons(ps []*compiledPolicy) string {
	if len(ps) == 1 {
		return ps[0].def.Reason
	}
	rs := make([]string, len(ps))
	for i, p := range ps {
		rs[i] = p.def.Reason
	}
	return strings.Join(rs, "; ")
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

// update writes u through the store, then mirrors its events and wakes
// local waiters.
func (g *Gate) update(ctx context.Context, u Update) error {
	stampHashes(u.Request, u.Events)
	if err := g.store.Update(ctx, u); err != nil {
		return err
	}
	g.afterCommit(ctx, u.Events)
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
