package approval

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/signoff/approval/internal/text"
)

// Outcome is Guard's answer: what the caller may do with the action now.
// It is not a request's Status (a request is pending, approved, consumed,
// ...); an outcome says whether to run the action, with what, or why not.
type Outcome string

// Guard's outcomes.
const (
	// OutcomeApproved: run the action, once (Result.Artifact proves it).
	OutcomeApproved Outcome = "approved"
	// OutcomeModified: the approvers approved the action with a payload
	// one of them edited (Decision.Payload), not the payload asked for.
	// Result.Payload holds the edited payload and Result.Artifact binds
	// it: run the action with that payload, or not at all. A caller that
	// runs an action only on OutcomeApproved runs nothing, which is the
	// safe reading.
	OutcomeModified Outcome = "modified"
	// OutcomePending: people have not decided yet; Result.RequestID is
	// the request to wait for (Gate.Wait), then Guard again.
	OutcomePending Outcome = "pending"
	// OutcomeDenied: do not run the action (a person or a policy refused
	// it, or Guard failed closed).
	OutcomeDenied Outcome = "denied"
	// OutcomeTimedOut: the request's deadline passed before enough people
	// approved it (a held timeout, see Config.DenialHold): do not run it.
	OutcomeTimedOut Outcome = "timed_out"
	// OutcomeCancelled: the request was cancelled (Do's answer after a
	// wait; Guard itself opens a new request instead).
	OutcomeCancelled Outcome = "cancelled"
	// OutcomeAlreadyRan: the action already ran under its IdempotencyKey,
	// approved by request Result.RequestID, and must not run again
	// (Result.Artifact is that approval's).
	OutcomeAlreadyRan Outcome = "already_ran"
)

// outcomeOf is the outcome of a request that ended in status s.
func outcomeOf(s Status) Outcome {
	switch s {
	case StatusPending, StatusEscalated:
		return OutcomePending
	case StatusApproved:
		return OutcomeApproved
	case StatusTimedOut:
		return OutcomeTimedOut
	case StatusCancelled:
		return OutcomeCancelled
	case StatusConsumed:
		return OutcomeAlreadyRan
	}
	return OutcomeDenied // denied, expired, or a status this version does not know
}

// Result is the answer of Guard.
type Result struct {
	// Status is the outcome: OutcomeApproved (run the action),
	// OutcomeModified (run it with Payload), OutcomePending (wait for
	// RequestID), or one of the outcomes that say not to run it:
	// OutcomeDenied, OutcomeTimedOut, OutcomeCancelled, OutcomeAlreadyRan.
	// A caller that runs an action only on OutcomeApproved runs nothing
	// in the others. On error it is OutcomeDenied.
	Status Outcome
	// RequestID identifies the request; empty when no request was needed.
	RequestID string
	// Reason explains the status: "no-policy-matched", the deny policy's
	// reason, or the resolution of a consumed approval.
	Reason string
	// Artifact is the signed evidence of the approval Guard consumed
	// (see VerifyArtifact): set with OutcomeApproved when a request was
	// approved, and with OutcomeAlreadyRan (the approval an earlier Guard
	// consumed); nil when no policy matched (nobody approved anything) or
	// the gate has no SigningKey.
	Artifact []byte
	// Conditions are the limits the approvers set (Decision.Conditions)
	// with OutcomeApproved: run the action within them and within
	// Action.Constraints. The artifact binds them.
	Conditions []string
	// Denial is the structured reason a person gave for the denial, with
	// OutcomeDenied (see Denial): whether asking again can help. Nil when
	// none was given, or a policy denied.
	Denial *Denial
	// Payload, with OutcomeModified, is the payload the approvers approved
	// in place of the one asked for (see OutcomeModified): run the action
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
// returned with its outcome (OutcomeDenied or OutcomeTimedOut), request ID and
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
// its outcome: OutcomeAlreadyRan, its ID, reason and artifact, audited as
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
	if g.obs == nil {
		return g.guard(ctx, a, nil)
	}
	var note guardNote
	res, err := g.guard(ctx, a, &note)
	if note.unmatched && err == nil {
		// The hot path of every ungated action: counted, not timed or
		// handed over one by one (see ObserveUnmatched).
		g.obs.unmatched.Add(1)
		return res, nil
	}
	start := note.start
	if start.IsZero() { // an invalid action: refused before any policy ran
		start = time.Now()
	}
	o := Observation{Kind: ObserveGuard, Start: start, Duration: time.Since(start), RequestID: res.RequestID,
		Policies: note.policies, TraceParent: note.trace, NewTraceParent: note.minted, Outcome: string(res.Status), Err: err}
	if err != nil {
		o.Outcome = ObservedError
	}
	g.obs.observe(ctx, o)
	return res, err
}

// guardNote is what a Guard tells its observation, when there is an
// Observer.
type guardNote struct {
	// start is when the Guard had matched a policy: its span begins
	// there (the matchers' few hundred nanoseconds before are left out,
	// so that a Guard no policy matched reads no clock).
	start     time.Time
	unmatched bool     // no policy matched
	policies  []string // the names of the policies that matched
	trace     string   // the answering request's TraceParent
	minted    string   // the TraceParent of the request the Guard built
}

// answered notes r as the request that answers the Guard; n may be nil.
func (n *guardNote) answered(r *Request) {
	if n != nil {
		n.trace = r.TraceParent
	}
}

// guard is Guard; note, if not nil, is filled for the Guard's
// observation.
func (g *Gate) guard(ctx context.Context, a Action, note *guardNote) (Result, error) {
	if err := a.normalize(&g.limits); err != nil {
		return Result{Status: OutcomeDenied}, fmt.Errorf("approval: guard %q: %w", text.Clip(a.Name, 64), err)
	}
	m := evaluate(*g.policies.Load(), &a)
	if m.deny == nil && len(m.policies) == 0 {
		if g.def == nil {
			if note != nil {
				note.unmatched = true
			}
			return Result{Status: OutcomeApproved, Reason: ReasonNoPolicyMatched}, nil
		}
		m.policies, m.errs = []*compiledPolicy{g.def}, []string{""}
	}
	if note != nil {
		note.start, note.policies = time.Now(), m.names()
	}
	res, err := g.guardSlow(ctx, &a, &m, note)
	if err != nil {
		return Result{Status: OutcomeDenied, RequestID: res.RequestID}, fmt.Errorf("approval: guard %q: %w", text.Clip(a.Name, 64), err)
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

func (g *Gate) guardSlow(ctx context.Context, a *Action, m *match, note *guardNote) (Result, error) {
	actionHash, payloadHash, err := a.hashes()
	if err != nil {
		return Result{}, err
	}
	now := normalizeTime(g.now())
	req := g.newRequest(a, m, actionHash, payloadHash, now)
	if note != nil { // there is an observer
		req.TraceParent = g.obs.traceParent(ctx, note.start)
		note.minted = req.TraceParent
	}
	note.answered(req)
	if a.IdempotencyKey != "" {
		// The key's outcome comes first: an action that ran under it is not
		// evaluated, refused or asked for again.
		if res, done, err := g.byKey(ctx, req, now, note); err != nil || done {
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
			return g.approveAtOnce(ctx, req, events, "approved on the recommendation of "+r.By, note)
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
		return g.approveAtOnce(ctx, req, events, "every level skipped", note)
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
	return g.create(ctx, req, events, now, note)
}

// create stores req, a new request, with events and answers the Guard:
// pending, its approvers notified; or, for req approved as it is created
// (an action with an IdempotencyKey, see approveAtOnce), consumed as the
// Guard of an approved request consumes it. When Create returns a request
// for the same action instead, that request answers.
func (g *Gate) create(ctx context.Context, req *Request, events []AuditEvent, now time.Time, note *guardNote) (Result, error) {
	g.refreshDeciders(ctx, req)
	var limits []AskCheck
	if req.Status.Open() {
		if limits = req.AskChecks(); limits != nil && g.asks == nil {
			return Result{}, fmt.Errorf("%w: a policy's Limit needs a Store with AskLimits", ErrUnsupported)
		}
	}
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
		switch {
		case limits != nil:
			msgs := notice
			if g.mem != nil {
				msgs = nil
			}
			stored, created, err = g.asks.CreateLimited(ctx, req, events, msgs, limits)
		case notice != nil && g.mem == nil:
			stored, created, err = g.outbox.CreateWithOutbox(ctx, req, events, notice)
		default:
			stored, created, err = g.store.Create(ctx, req, events)
		}
		if lerr := (*AskLimitError)(nil); errors.As(err, &lerr) {
			return g.askLimited(ctx, req, lerr, now)
		}
		if err != nil {
			return Result{}, err
		}
		switch {
		case created && req.Status.Open():
			g.afterCommit(ctx, events)
			g.observeCommit(ctx, req, events)
			if g.mem != nil {
				g.mem.push(ctx, req, notice)
			}
			g.notified()
			return Result{Status: OutcomePending, RequestID: req.ID, Reason: req.Reason}, nil
		case created:
			g.afterCommit(ctx, events)
			g.observeCommit(ctx, req, events)
			stored = req
		case req.Action.IdempotencyKey != "":
			res, done, err := g.keyed(ctx, req, stored, note)
			if err != nil || done {
				return res, err
			}
		}
		note.answered(stored)
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
func (g *Gate) byKey(ctx context.Context, req *Request, now time.Time, note *guardNote) (Result, bool, error) {
	if g.idemKeys == nil {
		return Result{}, true, fmt.Errorf("%w: Action.IdempotencyKey needs a Store that implements approval.IdempotencyKeys (memstore and sqlstore do)", ErrUnsupported)
	}
	r, err := g.idemKeys.RequestByIdempotencyKey(ctx, req.Action.IdempotencyKey, now)
	if errors.Is(err, ErrNotFound) {
		return Result{}, false, nil
	}
	if err != nil {
		return Result{}, true, fmt.Errorf("look up idempotency key %q: %w", text.Clip(req.Action.IdempotencyKey, maxEchoBytes), err)
	}
	return g.keyed(ctx, req, r, note)
}

// keyed answers a Guard of req's action, which has an IdempotencyKey, from
// r, the request holding the key: ErrInvalidAction if r is another action,
// r's outcome if its approval was consumed. done is false when r is open,
// approved or held, for existing to answer from.
func (g *Gate) keyed(ctx context.Context, req, r *Request, note *guardNote) (Result, bool, error) {
	note.answered(r)
	key := text.Clip(req.Action.IdempotencyKey, maxEchoBytes)
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
	return Result{Status: OutcomeAlreadyRan, RequestID: r.ID, Reason: r.Reason, Artifact: g.signArtifact(r), Conditions: r.Conditions()}, true, nil
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
		return Result{Status: outcomeOf(r.Status), RequestID: r.ID, Reason: r.Reason, Denial: r.Denial()}, true, nil
	case r.Status.Open():
		ev := []AuditEvent{{RequestID: r.ID, Type: EventRequestDeduplicated, Actor: r.Action.RequestedBy,
			Policies: policyRefs(r.Policies), At: now}}
		if err := g.appendAudit(ctx, ev); err != nil {
			return res, false, err
		}
		return Result{Status: OutcomePending, RequestID: r.ID, Reason: r.Reason}, true, nil
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
		res := Result{Status: OutcomeApproved, RequestID: r.ID, Reason: r.Reason, Artifact: g.signArtifact(next), Conditions: next.Conditions()}
		if next.Edit != nil {
			res.Status, res.Payload = OutcomeModified, slices.Clone(next.Edit.Payload)
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
