package scale

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/signoff/approval"
	"github.com/signoff/approval/memstore"
)

// Kind is a life a synthetic request has lived, which ends in its status.
type Kind string

// The kinds of request a store holds. The live ones (Pending,
// PendingVoted, Approved) are those a Tick, an inbox or a consuming Guard
// may still act on.
const (
	// Consumed: approved by two approvers, then run (a Guard consumed it).
	Consumed Kind = "consumed"
	// ConsumedKeyed is Consumed with an Action.IdempotencyKey, which then
	// holds the key for approval.DefaultIdempotencyWindow.
	ConsumedKeyed Kind = "consumed-keyed"
	// Denied: one approver said no; the denial holds the action for
	// approval.DefaultDenialHold.
	Denied Kind = "denied"
	// TimedOut: nobody decided before the policy's timeout.
	TimedOut Kind = "timed-out"
	// Cancelled: the requester withdrew it.
	Cancelled Kind = "cancelled"
	// Expired: approved by two approvers, never run, and lapsed.
	Expired Kind = "expired"
	// Pending: waiting for its first decision.
	Pending Kind = "pending"
	// PendingVoted: pending with one approval of the two it needs.
	PendingVoted Kind = "pending-voted"
	// Approved: approved by two approvers, not yet run.
	Approved Kind = "approved"
)

// kinds lists every Kind in a fixed order, so that the same Spec always
// makes the same store.
var kinds = []Kind{Consumed, ConsumedKeyed, Denied, TimedOut, Cancelled, Expired, Pending, PendingVoted, Approved}

// live reports whether requests of kind k are not terminal.
func (k Kind) live() bool { return k == Pending || k == PendingVoted || k == Approved }

// Mix is the share of each Kind among a store's requests, as weights: a
// Kind's share is its weight over the sum. Kinds it leaves out have none.
type Mix map[Kind]float64

// DefaultMix is a payments service's store a while after it went live:
// almost every request ended, most of them approved and run, and about one
// in twenty is live.
var DefaultMix = Mix{
	Consumed: 60, ConsumedKeyed: 10, Denied: 10, TimedOut: 6, Cancelled: 5, Expired: 4.5,
	Pending: 3, PendingVoted: 1, Approved: 0.5,
}

// Policy is the policy every synthetic request matched, under the name
// PolicyName, and the one the benchmarks' gates hold: a wire transfer of
// 1,000 USD or more needs two of the three approvers of group "finance"
// (see Directory), within 72 hours; an approval can be used for 24 hours.
func Policy() approval.Policy {
	return approval.Policy{
		Match:             approval.CostAtLeast(1000, "USD"),
		Approvers:         []approval.Approver{approval.Group("finance")},
		RequiredApprovals: 2,
		Timeout:           72 * time.Hour,
		ApprovalTTL:       24 * time.Hour,
	}
}

// PolicyName is the name of Policy.
const PolicyName = "high_spend"

// Directory is the directory of Policy's approvers: group "finance" is
// approver-1, approver-2 and approver-3.
func Directory() approval.Directory {
	return approval.StaticDirectory{Groups: map[string][]string{"finance": {"approver-1", "approver-2", "approver-3"}}}
}

// templateRequester is the requester of the templates' actions, replaced by
// each synthetic request's own.
const templateRequester = "template-requester"

// write is one write of a request's life, as the gate asked its Store to
// make it.
type write struct {
	// req is the request as written.
	req *approval.Request
	// events are the audit events written with it, not sealed.
	events []approval.AuditEvent
	// token is the decision token ID the write consumed, if any.
	token string
	// create is set for the write that created the request.
	create bool
}

// template is the life of one Kind as a real gate lived it.
type template struct {
	kind   Kind
	writes []write
}

// created is the request as the template created it.
func (t *template) created() *approval.Request { return t.writes[0].req }

// last is the request as the template left it.
func (t *template) last() *approval.Request { return t.writes[len(t.writes)-1].req }

// recorder is a memstore that records the writes the gate asks of it.
type recorder struct {
	*memstore.Store
	writes []write
}

// Create records the write if it creates the request: a Guard that
// consumes an approval asks to create a request first, and is given the
// approved one.
func (r *recorder) Create(ctx context.Context, req *approval.Request, events []approval.AuditEvent) (*approval.Request, bool, error) {
	w := write{req: req.Clone(), events: cloneEvents(events), create: true}
	got, created, err := r.Store.Create(ctx, req, events)
	if created {
		r.writes = append(r.writes, w)
	}
	return got, created, err
}

func (r *recorder) Update(ctx context.Context, u approval.Update) error {
	r.writes = append(r.writes, write{req: u.Request.Clone(), events: cloneEvents(u.Events), token: u.TokenID})
	return r.Store.Update(ctx, u)
}

func (r *recorder) AppendAudit(ctx context.Context, events []approval.AuditEvent) error {
	return fmt.Errorf("scale: a template appended %d audit events outside a request's write (the first %s): teach the templates about it", len(events), events[0].Type)
}

func cloneEvents(events []approval.AuditEvent) []approval.AuditEvent {
	out := make([]approval.AuditEvent, len(events))
	for i, e := range events {
		out[i] = e.Clone()
	}
	return out
}

// templateStart is when the templates' requests are created.
var templateStart = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// clock is a settable time source for the templates' gates.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// script drives one request of a template's gate through its life.
type script struct {
	ctx   context.Context
	gate  *approval.Gate
	clock *clock
	id    string
	err   error
}

func (s *script) guard(a approval.Action, want approval.Outcome) {
	if s.err != nil {
		return
	}
	res, err := s.gate.Guard(s.ctx, a)
	switch {
	case err != nil:
		s.err = err
	case res.Status != want:
		s.err = fmt.Errorf("guard: %s, want %s", res.Status, want)
	default:
		s.id = res.RequestID
	}
}

func (s *script) decide(after time.Duration, who string, v approval.Verdict) {
	if s.err != nil {
		return
	}
	s.clock.advance(after)
	tok, err := s.gate.IssueToken(s.id, who, v, time.Hour)
	if err == nil {
		_, err = s.gate.Decide(s.ctx, s.id, approval.Decision{Token: tok, Verdict: v})
	}
	s.err = err
}

func (s *script) tick(after time.Duration) {
	if s.err != nil {
		return
	}
	s.clock.advance(after)
	n, err := s.gate.Tick(s.ctx, 0)
	if err == nil && n != 1 {
		err = fmt.Errorf("tick changed %d requests, want 1", n)
	}
	s.err = err
}

func (s *script) cancel(after time.Duration) {
	if s.err != nil {
		return
	}
	s.clock.advance(after)
	_, s.err = s.gate.Cancel(s.ctx, s.id, templateRequester, "no longer needed")
}

// lives are the scripts of the kinds, from the request's Guard on.
var lives = map[Kind]func(s *script, a approval.Action){
	Consumed: func(s *script, a approval.Action) {
		s.guard(a, approval.OutcomePending)
		s.decide(12*time.Minute, "approver-1", approval.VerdictApprove)
		s.decide(25*time.Minute, "approver-2", approval.VerdictApprove)
		s.clock.advance(3 * time.Minute)
		s.guard(a, approval.OutcomeApproved)
	},
	Denied: func(s *script, a approval.Action) {
		s.guard(a, approval.OutcomePending)
		s.decide(40*time.Minute, "approver-3", approval.VerdictDeny)
	},
	TimedOut: func(s *script, a approval.Action) {
		s.guard(a, approval.OutcomePending)
		s.tick(72*time.Hour + time.Minute)
	},
	Cancelled: func(s *script, a approval.Action) {
		s.guard(a, approval.OutcomePending)
		s.cancel(90 * time.Minute)
	},
	Expired: func(s *script, a approval.Action) {
		s.guard(a, approval.OutcomePending)
		s.decide(8*time.Minute, "approver-2", approval.VerdictApprove)
		s.decide(30*time.Minute, "approver-3", approval.VerdictApprove)
		s.tick(24*time.Hour + time.Minute)
	},
	Pending: func(s *script, a approval.Action) {
		s.guard(a, approval.OutcomePending)
	},
	PendingVoted: func(s *script, a approval.Action) {
		s.guard(a, approval.OutcomePending)
		s.decide(20*time.Minute, "approver-1", approval.VerdictApprove)
	},
	Approved: func(s *script, a approval.Action) {
		s.guard(a, approval.OutcomePending)
		s.decide(5*time.Minute, "approver-1", approval.VerdictApprove)
		s.decide(15*time.Minute, "approver-3", approval.VerdictApprove)
	},
}

// wantStatus is the status each kind ends in.
var wantStatus = map[Kind]approval.Status{
	Consumed: approval.StatusConsumed, ConsumedKeyed: approval.StatusConsumed, Denied: approval.StatusDenied,
	TimedOut: approval.StatusTimedOut, Cancelled: approval.StatusCancelled, Expired: approval.StatusExpired,
	Pending: approval.StatusPending, PendingVoted: approval.StatusPending, Approved: approval.StatusApproved,
}

var (
	templatesOnce sync.Once
	templatesOf   map[Kind]*template
	templatesErr  error
)

// templates returns the life of every kind, lived once per process.
func templates() (map[Kind]*template, error) {
	templatesOnce.Do(func() {
		templatesOf = make(map[Kind]*template, len(kinds))
		for _, k := range kinds {
			t, err := liveTemplate(k)
			if err != nil {
				templatesErr = fmt.Errorf("scale: the %s template: %w", k, err)
				return
			}
			templatesOf[k] = t
		}
	})
	return templatesOf, templatesErr
}

// liveTemplate lives kind k through a gate over a recording memstore.
func liveTemplate(k Kind) (*template, error) {
	_, key, err := approval.GenerateKeys()
	if err != nil {
		return nil, err
	}
	rec := &recorder{Store: memstore.New(memstore.WithRetention(-1))}
	clk := &clock{t: templateStart}
	g, err := approval.New(approval.Config{
		Store: rec, SigningKey: key, Directory: Directory(), Now: clk.now,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return nil, err
	}
	defer func() { _ = g.Close(context.Background()) }()
	if err := g.SetPolicy(PolicyName, Policy()); err != nil {
		return nil, err
	}
	a := action(templateRequester, "run-template", 0, "")
	life := lives[k]
	if k == ConsumedKeyed {
		a.IdempotencyKey = "payments:template"
		life = lives[Consumed]
	}
	s := &script{ctx: context.Background(), gate: g, clock: clk}
	life(s, a)
	if s.err != nil {
		return nil, s.err
	}
	t := &template{kind: k, writes: rec.writes}
	switch {
	case len(t.writes) == 0 || !t.writes[0].create:
		return nil, fmt.Errorf("the first write did not create the request")
	case t.last().Status != wantStatus[k]:
		return nil, fmt.Errorf("the request ended %s, want %s", t.last().Status, wantStatus[k])
	}
	stored, err := rec.Store.Get(context.Background(), s.id)
	if err != nil {
		return nil, err
	}
	if stored.Version != t.last().Version {
		return nil, fmt.Errorf("the store holds version %d, the last write recorded %d: a write went around the recorder", stored.Version, t.last().Version)
	}
	return t, nil
}

// action returns the action of a synthetic request: a wire transfer of
// 5,000 USD, its payload a payment instruction of about 400 bytes that
// names its invoice n. key, if not empty, is its idempotency key.
func action(requester, runID string, n int, key string) approval.Action {
	return approval.Action{
		Name:        "wire-transfer",
		RequestedBy: requester,
		Cost:        &approval.Cost{Amount: 5000, Currency: "USD"},
		Tags:        []string{"payments", "eu"},
		RunID:       runID,
		Payload: fmt.Appendf(nil, `{"to":{"iban":"DE89370400440532013000","name":"Supplier %04d GmbH","bic":"COBADEFFXXX"},`+
			`"amount":"5000.00","currency":"USD","reference":"INV-%07d","execution_date":"2026-03-02",`+
			`"lines":[{"sku":"SRV-%03d","description":"Consulting services, %d hours","amount":"4200.00"},`+
			`{"sku":"TRV-001","description":"Travel expenses","amount":"800.00"}],"memo":"Quarterly services"}`,
			n%9973, n, n%1000, n%160+1),
		IdempotencyKey: key,
	}
}
