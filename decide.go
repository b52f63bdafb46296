package approval

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/signoff/approval/internal/text"
)

// Decision is an approver's answer to a request. The approver is the
// token's subject: who decides is proved by the token, never by a field the
// caller fills in.
type Decision struct {
	// Token is the signed single-use token, from IssueToken or a link.
	Token string
	// Verdict is VerdictApprove or VerdictDeny.
	Verdict Verdict
	// Reason is the approver's comment, kept on the vote and in the audit.
	Reason string
	// Conditions, with VerdictApprove, approve the action only within
	// these limits, each narrowing the action's Constraints. A condition
	// is KEY OP VALUE, OP one of < <= > >= = in ("max_lines_changed <=
	// 200", "window <= 30m", "region in [eu-west-1, eu-central-1]"); the
	// README's "Approving with conditions" has the rules. One that widens is refused
	// (ErrInvalidCondition). Guard returns them in Result.Conditions and
	// the artifact binds them.
	Conditions []string
	// Denial, with VerdictDeny, tells a requester that is a program what
	// the denial means for asking again (see Denial). Guard returns it in
	// Result.Denial.
	Denial *Denial
	// Payload, when not nil, approves the action with this payload in
	// place of the one asked for (an agent's tool arguments, corrected):
	// with VerdictApprove only, and only before anyone approved. The
	// approval then binds the edited payload: the requester's Guard gets
	// OutcomeModified with it in Result.Payload, and the approvers after
	// this one approve it. The edit is audited (request.payload_edited).
	Payload []byte
	// ActionHash, when set, is the action hash the approver was shown:
	// Request.ActionHash, or the edited action's once an approver edited
	// the payload (Request.Edit.ActionHash). Decide refuses the decision
	// with ErrActionChanged, audited, when the request binds another
	// action by the time the vote is written, so that a vote never binds
	// a payload its approver did not see. The review pages and the API
	// set it from what they showed; empty skips the check.
	ActionHash string
	// Reuse, with VerdictApprove, lets the approval be used more than once:
	// the identical action up to Reuse.Uses times within Reuse.For (see
	// Reuse), within the policies' MaxReuse (ErrInvalidDecision beyond
	// it). The approval is granted the narrowest reuse of its approving
	// votes: none unless every approver grants some. Audited with the
	// vote.
	Reuse *Reuse
	// Passkey is the approver's WebAuthn assertion of the vote's
	// challenge (PasskeyChallenge), required to approve under a policy
	// with RequirePasskey: the gate verifies it with the passkey the
	// approver registered (Gate.RegisterPasskey) before it counts the
	// vote, which keeps it (Vote.Passkey). One given where none is
	// required is verified and kept all the same. Nil: none.
	Passkey *PasskeyAssertion
}

// maxReasonBytes bounds Decision.Reason.
const maxReasonBytes = 4 << 10

// Decide records a decision on request id.
//
// The token is checked first, in this order: malformed (ErrTokenMalformed),
// unknown key or bad signature (ErrTokenSignature), issued in the future
// beyond the leeway (ErrTokenMalformed too, but checked only once the
// signature verifies), expired (ErrTokenExpired), issued for another request
// (ErrTokenRequestMismatch), verdict not allowed (ErrTokenVerdictMismatch),
// already used (ErrTokenUsed). Then the request: unknown (ErrNotFound), no
// longer open (ErrNotPending), approver not eligible under any of its
// policies (ErrNotEligible), requester deciding their own request
// (ErrSelfApproval), approver already decided (ErrAlreadyDecided).
//
// A refused decision changes nothing and is written to the audit trail as a
// decision.rejected security event. A Directory that fails while the
// approver's eligibility is checked (an error, a panic, or no answer
// before ctx ends) refuses the decision the same way (fail closed); the
// error then wraps none of the sentinels above, but ctx's error when ctx
// ended. An accepted one records the vote and
// the token ID in one atomic write; if it completes the quorum of every
// matched policy the request is approved, and enough denials (one, by
// default) deny it. Concurrent decisions on one request are serialised by
// the store's compare-and-set, so no vote is lost or counted twice.
//
// It returns the request as it stands after the decision.
func (g *Gate) Decide(ctx context.Context, id string, d Decision) (*Request, error) {
	if g.obs == nil {
		return g.decide(ctx, id, d, nil)
	}
	start := time.Now()
	var read decideNote
	r, err := g.decide(ctx, id, d, &read)
	g.obs.observe(ctx, decideObservation(start, id, &read, err))
	return r, err
}

// decideNote is what a Decide read of its request, for the observation.
type decideNote struct {
	trace    string
	policies []MatchedPolicy
}

// decideObservation is the ObserveDecide of a Decide of request id that
// began at start, read what read holds (nothing if it read no request)
// and returned err.
func decideObservation(start time.Time, id string, read *decideNote, err error) Observation {
	o := Observation{Kind: ObserveDecide, Start: start, Duration: time.Since(start), RequestID: id, Err: err,
		Policies: policyNames(read.policies), TraceParent: read.trace}
	switch {
	case err == nil:
		o.Outcome = ObservedAccepted
	default:
		if o.Class = rejectClass(err); o.Class == "other" {
			o.Outcome = ObservedError
		} else {
			o.Outcome = ObservedRejected
		}
	}
	return o
}

// decide is Decide; read, if not nil, notes the request as the decision
// read it, for the observation.
func (g *Gate) decide(ctx context.Context, id string, d Decision, read *decideNote) (*Request, error) {
	if len(id) > maxEchoBytes {
		// No gate issues such an ID, so no token matches it: echo a part.
		id = text.Clip(id, maxEchoBytes)
	}
	now := g.now()
	claims, err := g.checkDecision(id, d, now)
	if err != nil {
		return nil, g.reject(ctx, id, claims.Subject, d.Verdict, err)
	}
	return g.commitDecision(ctx, "decide", id, &claims, d.Verdict, func(req *Request) (*Request, []AuditEvent, []note, error) {
		if read != nil {
			// Only the policies' names are read later, and those never
			// change.
			read.trace, read.policies = req.TraceParent, req.Policies
		}
		next, events, opened, err := g.applyDecision(ctx, req, &claims, d, normalizeTime(now))
		if err != nil {
			return nil, nil, nil, err
		}
		var notes []note
		if !next.Status.Open() {
			notes = append(notes, note{typ: NotifyResolved})
		}
		for _, pi := range opened {
			notes = append(notes, note{typ: NotifyRequested, target: noticeTarget{Policy: next.Policies[pi].Name}})
		}
		return next, events, notes, nil
	})
}

// commitDecision writes a decision on request id (Decide's or
// BreakGlass's): it reads the request, lets apply check the decision
// against it and return the new state, its events and notices, and
// writes them with the token in one compare-and-set, counting again on a
// lost race. A refusal (a decision error, a deadline passed, a Directory
// that failed) is audited through reject; op names the operation in
// errors.
func (g *Gate) commitDecision(ctx context.Context, op, id string, claims *TokenClaims, verdict Verdict,
	apply func(req *Request) (*Request, []AuditEvent, []note, error)) (*Request, error) {
	for attempt := range maxAttempts {
		if err := backoff(ctx, attempt); err != nil {
			return nil, fmt.Errorf("approval: %s %s: %w", op, id, err)
		}
		req, err := g.store.Get(ctx, id)
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				return nil, g.reject(ctx, id, claims.Subject, verdict, err)
			}
			return nil, fmt.Errorf("approval: %s %s: %w", op, id, err)
		}
		next, events, notes, err := apply(req)
		if err != nil {
			if errors.Is(err, errTimedOut) {
				if _, terr := g.applyTimeout(ctx, req); terr != nil && !errors.Is(terr, ErrConflict) {
					return nil, fmt.Errorf("approval: %s %s: %w", op, id, terr)
				}
				err = fmt.Errorf("%w: timed out", ErrNotPending)
			}
			if isDecisionError(err) {
				return nil, g.reject(ctx, id, claims.Subject, verdict, err)
			}
			if errors.Is(err, errResolveApprovers) {
				// Not a refusal the caller caused, but refused all the
				// same (fail closed), and audited like one.
				g.log.Error("approval: directory failed during a decision; decision refused (fail closed)",
					"op", op, "request", id, "approver", claims.Subject, "err", err)
				return nil, g.reject(ctx, id, claims.Subject, verdict, err)
			}
			return nil, fmt.Errorf("approval: %s %s: %w", op, id, err)
		}
		u := Update{Request: next, TokenID: claims.TokenID, Events: events}
		u.Outbox = g.notices(next, notes, next.UpdatedAt)
		err = g.update(ctx, u)
		switch {
		case err == nil:
			return next, nil
		case errors.Is(err, ErrConflict):
			continue // another decision landed first; count again
		case errors.Is(err, ErrTokenUsed):
			return nil, g.reject(ctx, id, claims.Subject, verdict, err)
		default:
			return nil, fmt.Errorf("approval: %s %s: %w", op, id, err)
		}
	}
	return nil, fmt.Errorf("approval: %s %s: %w: gave up after %d attempts", op, id, ErrConflict, maxAttempts)
}

// checkDecision runs the checks that need no store: the decision's own form
// and the token. The returned claims are unverified when err is not nil.
func (g *Gate) checkDecision(id string, d Decision, now time.Time) (TokenClaims, error) {
	if d.Verdict != VerdictApprove && d.Verdict != VerdictDeny {
		return TokenClaims{}, fmt.Errorf("%w: verdict %q (want approve or deny)", ErrInvalidDecision, d.Verdict)
	}
	if err := checkString("reason", d.Reason, maxReasonBytes); err != nil {
		return TokenClaims{}, fmt.Errorf("%w: %v", ErrInvalidDecision, err)
	}
	if len(d.Conditions) > 0 && d.Verdict != VerdictApprove {
		return TokenClaims{}, fmt.Errorf("%w: conditions come with an approval, not a %s", ErrInvalidDecision, d.Verdict)
	}
	if d.Payload != nil && d.Verdict != VerdictApprove {
		return TokenClaims{}, fmt.Errorf("%w: an edited payload comes with an approval, not a %s", ErrInvalidDecision, d.Verdict)
	}
	if d.Reuse != nil {
		if d.Verdict != VerdictApprove {
			return TokenClaims{}, fmt.Errorf("%w: reuse comes with an approval, not a %s", ErrInvalidDecision, d.Verdict)
		}
		if err := d.Reuse.check("reuse"); err != nil {
			return TokenClaims{}, fmt.Errorf("%w: %v", ErrInvalidDecision, err)
		}
	}
	if d.Denial != nil {
		if d.Verdict != VerdictDeny {
			return TokenClaims{}, fmt.Errorf("%w: a denial comes with a deny, not an %s", ErrInvalidDecision, d.Verdict)
		}
		if err := d.Denial.check(); err != nil {
			return TokenClaims{}, err
		}
	}
	claims, err := g.keys.verifyToken(d.Token, now)
	if err != nil {
		return claims, err
	}
	if claims.RequestID != id {
		return claims, fmt.Errorf("%w: token is for %s", ErrTokenRequestMismatch, claims.RequestID)
	}
	if !claims.Allows(d.Verdict) {
		return claims, fmt.Errorf("%w: token allows %s, decision is %s", ErrTokenVerdictMismatch, claims.Act, d.Verdict)
	}
	return claims, nil
}

var (
	errTimedOut         = errors.New("request deadline passed")
	errResolveApprovers = errors.New("resolve approvers")
)

// applyDecision checks the decision against req and returns the request
// with the vote applied, the events to write with it, and the policies
// whose next level the vote opened (to notify its approvers). req is the
// caller's private copy (fresh from the store): it is updated in place, but
// only once every check has passed.
func (g *Gate) applyDecision(ctx context.Context, req *Request, c *TokenClaims, d Decision, now time.Time) (*Request, []AuditEvent, []int, error) {
	sub := c.Subject
	if req.usedToken(c.TokenID) {
		return nil, nil, nil, ErrTokenUsed
	}
	if d.ActionHash != "" {
		if bound, _ := req.boundHashes(); d.ActionHash != bound {
			why := ""
			if req.Edit != nil {
				why = " (" + req.Edit.By + " edited the payload)"
			}
			return nil, nil, nil, fmt.Errorf("%w: shown %s, the request binds %s%s",
				ErrActionChanged, text.Clip(d.ActionHash, maxEchoBytes+8), bound, why)
		}
	}
	if req.Status.Open() && needsMembers(req) {
		// Recorded with the vote (req is the caller's private copy).
		if err := g.resolveAllMembers(ctx, req); err != nil {
			return nil, nil, nil, err
		}
	}
	as, err := g.decidable(ctx, req, sub, now)
	if err != nil {
		return nil, nil, nil, err
	}
	counts := as.counts
	conds, err := checkConditions(d.Conditions, req.Action.Constraints)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %w", ErrInvalidDecision, err)
	}
	if err := checkReuse(&d, req); err != nil {
		return nil, nil, nil, err
	}
	var reuse *Reuse
	if d.Reuse != nil && !d.Reuse.IsZero() {
		r := *d.Reuse
		reuse = &r
	}

	var edited *AuditEvent
	if d.Payload != nil {
		ev, err := g.applyEdit(req, d.Payload, sub, now)
		if err != nil {
			return nil, nil, nil, err
		}
		edited = &ev
	}

	// After the decision's own edit: the assertion binds the hashes the
	// vote binds.
	proof, err := g.checkPasskey(ctx, req, sub, c, &d)
	if err != nil {
		return nil, nil, nil, err
	}

	next := req
	next.Votes = append(next.Votes, Vote{
		Approver: sub, OnBehalfOf: as.onBehalfOf, Verdict: d.Verdict, Reason: d.Reason,
		Conditions: conds, Denial: cloneDenial(d.Denial), Reuse: reuse, TokenID: c.TokenID, Policies: as.policies, Counts: counts, At: now,
		Passkey: proof,
	})
	next.Version++
	next.UpdatedAt = now
	refs := policyRefs(next.Policies)
	typ := EventDecisionApprove
	if d.Verdict == VerdictDeny {
		typ = EventDecisionDeny
	}
	reason := d.Reason
	if d.Denial != nil {
		reason = joinNonEmpty(reason, "("+d.Denial.String()+")")
	}
	if reuse != nil {
		reason = joinNonEmpty(reason, "(reuse: "+reuse.String()+")")
	}
	events := make([]AuditEvent, 0, 3)
	if edited != nil {
		events = append(events, *edited)
	}
	vote := AuditEvent{RequestID: req.ID, Type: typ, Actor: sub, OnBehalfOf: as.onBehalfOf, Policies: refs, Verdict: d.Verdict, Reason: reason, Conditions: conds, At: now}
	if proof != nil {
		vote.Passkey = proof.Digest()
	}
	events = append(events, vote)
	var opened []int
	if d.Verdict == VerdictApprove && counts != nil {
		var moved []AuditEvent
		moved, opened = g.settle(ctx, next, sub, now)
		events = append(events, moved...)
	}
	switch outcome(next) {
	case StatusApproved:
		next.approve(now, "quorum met")
		next.grantReuse(now)
		events = append(events, AuditEvent{RequestID: req.ID, Type: EventRequestApproved, Actor: sub, Policies: refs, Reason: next.Reason, At: now})
	case StatusDenied:
		next.Status, next.ResolvedAt, next.DueAt = StatusDenied, now, time.Time{}
		next.HoldUntil = g.holdUntil(now)
		next.Reason = "denied by " + sub + onBehalf(as.onBehalfOf)
		if d.Reason != "" {
			next.Reason += ": " + d.Reason
		}
		events = append(events, AuditEvent{RequestID: req.ID, Type: EventRequestDenied, Actor: sub, Policies: refs, Reason: next.Reason, At: now})
	}
	if !next.Status.Open() {
		opened = nil
	} else if opened != nil {
		next.DueAt = nextDue(next) // a new level: its timeout and steps
	}
	return next, events, opened, nil
}

// outcome counts the votes on r: StatusDenied once DenyThreshold distinct
// approvers denied, StatusApproved once every matched policy is met (its
// quorum of distinct approvers, or every level of its chain), otherwise
// r's current status. settle has moved the chains on.
func outcome(r *Request) Status {
	denials := 0
	for _, v := range r.Votes {
		if v.Verdict == VerdictDeny {
			denials++
		}
	}
	if denials >= max(r.DenyThreshold, 1) {
		return StatusDenied
	}
	if r.DistinctApprovers && !hasChain(r) {
		if quorumDistinct(r) {
			return StatusApproved
		}
		return r.Status
	}
	if allMet(r) {
		return StatusApproved
	}
	return r.Status
}

// quorumDistinct reports whether the approvals can be assigned to policies,
// each approver to one policy only, so that every policy gets its quorum.
// It is bipartite matching (approvers to policy seats) by augmenting paths;
// requests have few voters and seats, so the simple algorithm is enough.
func quorumDistinct(r *Request) bool {
	var seats []int // seat -> policy index
	for i, p := range r.Policies {
		if p.Progress.Level > 0 {
			continue // passed by a step or a recommendation
		}
		for range p.RequiredApprovals {
			seats = append(seats, i)
		}
	}
	var voters []*Vote
	for i := range r.Votes {
		if r.Votes[i].Verdict == VerdictApprove {
			voters = append(voters, &r.Votes[i])
		}
	}
	if len(voters) < len(seats) {
		return false
	}
	owner := make([]int, len(seats)) // seat -> voter index, -1 if free
	for i := range owner {
		owner[i] = -1
	}
	canSit := func(v, s int) bool {
		return slices.Contains(voters[v].Policies, r.Policies[seats[s]].Name)
	}
	var try func(v int, seen []bool) bool
	try = func(v int, seen []bool) bool {
		for s := range seats {
			if seen[s] || !canSit(v, s) {
				continue
			}
			seen[s] = true
			if owner[s] < 0 || try(owner[s], seen) {
				owner[s] = v
				return true
			}
		}
		return false
	}
	filled := 0
	for v := range voters {
		if try(v, make([]bool, len(seats))) {
			filled++
		}
	}
	return filled == len(seats)
}

// isDecisionError reports whether err is a refusal of the decision (to be
// audited as a security event) rather than an internal failure.
func isDecisionError(err error) bool {
	for _, s := range []error{
		ErrInvalidDecision, ErrTokenMalformed, ErrTokenSignature, ErrTokenExpired,
		ErrTokenRequestMismatch, ErrTokenVerdictMismatch, ErrTokenUsed, ErrNotFound,
		ErrNotPending, ErrNotEligible, ErrSelfApproval, ErrAlreadyDecided, ErrActionChanged, ErrPasskey,
	} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// reject audits a refused decision and returns the error for the caller.
// The store write outlives the caller's context, so that a cancelled
// request cannot suppress the security event (see record).
func (g *Gate) reject(ctx context.Context, id, actor string, verdict Verdict, cause error) error {
	err := fmt.Errorf("approval: decide %s: %w", id, cause)
	if verdict != VerdictApprove && verdict != VerdictDeny {
		verdict = ""
	}
	// The request ID, the claimed subject and the cause may all come from
	// an attacker: bound them and make them valid UTF-8, so that no input
	// can make the security event itself fail to store.
	ev := []AuditEvent{{
		RequestID: auditSafe(id, 256), Type: EventDecisionRejected, Actor: auditSafe(actor, 256),
		Verdict: verdict, Reason: auditSafe(cause.Error(), 1024), At: normalizeTime(g.now()),
	}}
	if aerr := g.record(ctx, ev); aerr != nil {
		g.log.Error("approval: could not audit a rejected decision", "request", id, "actor", actor, "cause", cause, "err", aerr)
		return errors.Join(err, fmt.Errorf("approval: audit rejected decision: %w", aerr))
	}
	return err
}

// auditSafe returns s as valid UTF-8 without NUL bytes, cut to at most max
// bytes.
func auditSafe(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

func cloneDenial(d *Denial) *Denial {
	if d == nil {
		return nil
	}
	c := *d
	return &c
}

func joinNonEmpty(a, b string) string {
	if a == "" {
		return b
	}
	return a + " " + b
}
