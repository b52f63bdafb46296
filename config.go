package approval

import (
	"cmp"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/signoff/approval/internal/host"
	"github.com/signoff/approval/internal/keyfile"
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
	// Channels deliver notifications (see Channel for how, and Delivery
	// for the settings of delivery). Defaults to none.
	Channels []Channel
	// Delivery says how notifications reach the Channels: timeouts,
	// retries, concurrency, and the in-memory outbox of a Store without
	// one. Its zero value is the defaults.
	Delivery DeliveryConfig
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
	// Passkeys is the WebAuthn relying party whose passkey assertions the
	// gate verifies, for policies with RequirePasskey (see Passkey).
	// Defaults to none: such policies are refused.
	Passkeys PasskeyConfig
	// Observer hears what the gate does, for metrics and traces (see
	// Observer; approvalotel.New returns one on OpenTelemetry). Defaults to
	// none.
	Observer Observer
	// ObserverQueue bounds the observations waiting for the Observer:
	// beyond it they are dropped and counted (see Observer). Defaults to
	// DefaultObserverQueue.
	ObserverQueue int

	// outboxWatch, set only by this package's tests (see
	// export_outbox_test.go), sees the in-memory outbox's claims and
	// settlements, so that a test waits on them instead of sleeping.
	outboxWatch outboxWatch
}

// DeliveryConfig configures the delivery of notifications (Config.Delivery):
// one engine claims each notification from an outbox, sends it, retries it
// and dead-letters it (see Channel). The outbox is the Store's, when it
// implements Outbox; otherwise the gate keeps one in memory, bounded by
// MemoryLimit, which a crash loses. The zero value is the defaults.
type DeliveryConfig struct {
	// SendTimeout bounds one Channel.Send call. A Send still running then
	// is abandoned and its attempt failed; after three such sends in a row
	// the channel is blocked (see Channel). Defaults to 30s
	// (DefaultSendTimeout).
	SendTimeout time.Duration
	// Retry says how often, and how far apart, a failed delivery is tried
	// again, and how often a notice whose recipients could not be
	// resolved is; see RetryPolicy for its defaults.
	Retry RetryPolicy
	// ChannelRetry overrides Retry for the channels it names (by
	// Channel.Name). Defaults to none: every channel retries by Retry.
	ChannelRetry map[string]RetryPolicy
	// SendConcurrency bounds the sends in flight per channel, so that a
	// recipient whose sends hang does not hold up the channel's others.
	// Defaults to 4 (DefaultSendConcurrency).
	SendConcurrency int
	// StoreOnly, with a Store that implements Outbox, makes the gate store
	// the notices of its changes without delivering any: processes that
	// serve requests write the outbox, and a process whose gate leaves it
	// false delivers for all of them, through its own Channels (a notice
	// names no channel: the delivering gate resolves its recipients and
	// channels), so a storing gate may have none. With a Store without
	// Outbox it has no effect: the in-memory outbox is this gate's alone.
	// Defaults to false.
	StoreOnly bool
	// MemoryLimit bounds the in-memory outbox a gate with channels keeps
	// when its Store does not implement Outbox: at most MemoryLimit
	// notices waiting for their recipients to be resolved, at most
	// MemoryLimit deliveries waiting per channel (the ones being sent
	// included), and the newest MemoryLimit dead letters. A crash loses
	// them all; no lease ends in memory, so each attempt sends once. A
	// notification that does not fit is not sent: it is audited as
	// notification.failed with a reason saying the outbox was full, and
	// logged at Error. Defaults to 10,000 (DefaultMemoryLimit).
	MemoryLimit int
	// DigestWindow, if set, returns the digest window of recipient on
	// channel (Channel.Name): the asks to that person through that channel
	// (NotifyRequested, NotifyReminder, NotifyEscalated) wait for the end
	// of the window, and those due together go as one NotifyDigest message
	// (one alone goes as itself). Windows are aligned to the clock (a
	// 15-minute window ends at :00, :15, :30 and :45), so a person gets at
	// most one digest per window and channel. The asks wait in the outbox,
	// so a restart loses none. An urgent policy's asks (Policy.Urgent)
	// never wait, nor do alerts and outcomes. Return 0 for no digest. It is
	// called off the request path, once per delivery and claim; a panic is
	// recovered and means no digest. Defaults to nil: no digests.
	DigestWindow func(channel, recipient string) time.Duration
}

// Delivery defaults (see DeliveryConfig).
const (
	DefaultSendTimeout     = 30 * time.Second
	DefaultSendConcurrency = 4
	DefaultMemoryLimit     = 10_000
)

func (d DeliveryConfig) withDefaults() DeliveryConfig {
	if d.SendTimeout == 0 {
		d.SendTimeout = DefaultSendTimeout
	}
	if d.SendConcurrency == 0 {
		d.SendConcurrency = DefaultSendConcurrency
	}
	if d.MemoryLimit == 0 {
		d.MemoryLimit = DefaultMemoryLimit
	}
	return d
}

// DefaultDenialHold is the default of Config.DenialHold.
const DefaultDenialHold = time.Hour

// DefaultIdempotencyWindow is the default of Config.IdempotencyWindow.
const DefaultIdempotencyWindow = 24 * time.Hour

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
	d := cfg.Delivery
	if cfg.TokenLeeway < 0 || cfg.PollInterval < 0 || cfg.CheckpointInterval < 0 || cfg.DenyThreshold < 0 || d.SendTimeout < 0 || d.SendConcurrency < 0 || d.MemoryLimit < 0 || cfg.IdempotencyWindow < 0 {
		return nil, fmt.Errorf("approval: %w: TokenLeeway, PollInterval, CheckpointInterval, DenyThreshold, Delivery.SendTimeout, Delivery.SendConcurrency, Delivery.MemoryLimit and IdempotencyWindow must not be negative", ErrInvalidConfig)
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
	g.asks, _ = cfg.Store.(AskLimits)
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
	if g.baseURL != "" && keyfile.IsEphemeral(cfg.SigningKey) {
		g.log.Warn("approval: the signing key was generated by this process and never saved; "+
			"the links it signs stop working when the process exits (keep the key in a file: approval.LoadOrCreateKeyFile)",
			"kid", g.keys.signerKID)
	}
	g.sinkHost = host.New("audit sink", g.log)
	g.dirHost = host.New("directory", g.log)
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
	if err := cfg.Passkeys.check(); err != nil {
		return nil, fmt.Errorf("approval: %w", err)
	}
	g.passkeys = PasskeyConfig{RPID: cfg.Passkeys.RPID, Origins: slices.Clone(cfg.Passkeys.Origins)}
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
		if err == nil {
			err = g.checkStoreFor(&cp.def)
		}
		if err != nil {
			return nil, fmt.Errorf("approval: %w: Config.Default: %w", ErrInvalidConfig, err)
		}
		g.def = cp
	}
	g.policies.Store(new([]*compiledPolicy))
	if cfg.Observer != nil {
		if cfg.ObserverQueue < 0 {
			return nil, fmt.Errorf("approval: %w: Config.ObserverQueue is negative (%d): use 0 for the default", ErrInvalidConfig, cfg.ObserverQueue)
		}
		g.obs = newObserver(cfg.Observer, cmp.Or(cfg.ObserverQueue, DefaultObserverQueue), g.log)
	}
	if ob, ok := cfg.Store.(Outbox); ok && len(cfg.Channels) == 0 && d.StoreOnly {
		// A process that only writes (a CLI, a job) stores the notices of
		// its changes for the gates that deliver; a notice names no
		// channel, so it needs none.
		g.outbox = ob
	}
	if len(cfg.Channels) > 0 {
		d = d.withDefaults()
		chans, err := nameChannels(g, cfg.Channels)
		if err != nil {
			return nil, err
		}
		for _, c := range chans {
			g.chanNames = append(g.chanNames, c.name)
		}
		if ob, ok := cfg.Store.(Outbox); ok {
			g.outbox = ob
		} else {
			g.mem = newMemOutbox(g, d.MemoryLimit)
			g.mem.watch = cfg.outboxWatch
			g.outbox = g.mem
		}
		if !d.StoreOnly || g.mem != nil {
			g.engine = startDelivery(g, g.outbox, chans, &d)
		}
	}
	return g, nil
}
