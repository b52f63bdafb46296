package approval

import (
	"fmt"
	"slices"
	"time"

	"github.com/signoff/approval/internal/text"
)

// Status is where a request is in its life.
//
//	pending ──► approved ──► consumed
//	   │  ▲         └──────► expired
//	   ▼  │
//	escalated ──► denied | cancelled | timed_out
//
// Pending and escalated requests are open: they accept decisions. An approved
// request waits for the next Guard of the same action to consume it. Denied,
// cancelled, timed_out, consumed and expired are terminal.
type Status string

// Request statuses.
const (
	StatusPending   Status = "pending"
	StatusEscalated Status = "escalated"
	StatusApproved  Status = "approved"
	StatusDenied    Status = "denied"
	StatusCancelled Status = "cancelled"
	StatusTimedOut  Status = "timed_out"
	StatusConsumed  Status = "consumed"
	StatusExpired   Status = "expired"
)

// Open reports whether a request in status s accepts decisions.
func (s Status) Open() bool { return s == StatusPending || s == StatusEscalated }

// Terminal reports whether s is final. A request that is not terminal
// (open or approved-but-unconsumed) blocks a new request for the same action.
func (s Status) Terminal() bool {
	switch s {
	case StatusPending, StatusEscalated, StatusApproved:
		return false
	}
	return true
}

// Valid reports whether s is one of the defined statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusPending, StatusEscalated, StatusApproved, StatusDenied,
		StatusCancelled, StatusTimedOut, StatusConsumed, StatusExpired:
		return true
	}
	return false
}

// Verdict is an approver's answer.
type Verdict string

// Verdicts.
const (
	VerdictApprove Verdict = "approve"
	VerdictDeny    Verdict = "deny"
	// VerdictBoth is not an answer but a token scope: a token issued with
	// it allows its holder either answer. A Decision carries VerdictApprove
	// or VerdictDeny.
	VerdictBoth Verdict = "both"
)

// Request is one action waiting for, or resolved by, human decisions. A
// Request returned by the gate or a store is a copy the caller owns.
type Request struct {
	// ID is the request ID: "req_" followed by a time-ordered UUID, so IDs
	// sort in creation order.
	ID string `json:"id"`
	// Status is where the request is in its life.
	Status Status `json:"status"`
	// Action is the action as the requester submitted it.
	Action Action `json:"action"`
	// ActionHash and PayloadHash bind the request to the exact action (see
	// Action.Hashes). ActionHash is also the deduplication key.
	ActionHash string `json:"action_hash"`
	// PayloadHash is the payload's, beside ActionHash; empty for an
	// action without a payload.
	PayloadHash string `json:"payload_hash,omitempty"`
	// Policies are the snapshots of the policies the action matched when the
	// request was created. Decisions are counted against them, so changing a
	// policy later does not change a live request.
	Policies []MatchedPolicy `json:"policies"`
	// Edit is the payload an approver put in place of the one asked for
	// (Decision.Payload); nil when none did. The approval binds it.
	Edit *PayloadEdit `json:"edit,omitempty"`
	// Votes are the decisions recorded so far, in order.
	Votes []Vote `json:"votes,omitempty"`
	// Recommendations are the automated reviewers' advice, in order (see
	// Recommendation); never votes.
	Recommendations []Recommendation `json:"recommendations,omitempty"`
	// SegregateRequester forbids the requester from deciding.
	SegregateRequester bool `json:"segregate_requester"`
	// DistinctApprovers makes each approver count toward one policy only.
	DistinctApprovers bool `json:"distinct_approvers,omitempty"`
	// DenyThreshold is how many distinct eligible denials deny the request.
	DenyThreshold int `json:"deny_threshold"`
	// OnTimeout says what happens at Deadline.
	OnTimeout TimeoutAction `json:"on_timeout"`
	// ApprovalTTL is how long an approval stays usable before it expires.
	ApprovalTTL time.Duration `json:"approval_ttl"`
	// MaxReuse is the most reuse a reviewer may grant: the narrowest of
	// the matched policies' MaxReuse, none if any allows none.
	MaxReuse Reuse `json:"max_reuse,omitzero"`
	// Reuse is the reuse the approval was granted (see Reuse): the
	// narrowest of the approving votes'; zero for a single-use approval.
	Reuse Reuse `json:"reuse,omitzero"`
	// Uses counts the Guards that consumed the approval.
	Uses int `json:"uses,omitempty"`
	// Reason explains the current status ("quorum met", "denied by bob").
	Reason string `json:"reason,omitempty"`

	// CreatedAt is when the request was created.
	CreatedAt time.Time `json:"created_at"`
	// UpdatedAt is when it last changed.
	UpdatedAt time.Time `json:"updated_at"`
	// Deadline is when an open request times out; zero means never.
	Deadline time.Time `json:"deadline,omitzero"`
	// ResolvedAt is when the request left the open states.
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	// ExpiresAt is when an approved request expires unless consumed.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// DueAt is the next time the gate's Tick must look at the request
	// (timeout, escalation or approval expiry); zero means never. Stores
	// index it for ListDue.
	DueAt time.Time `json:"due_at,omitzero"`
	// EscalationLevel counts the escalate and reassign steps run so far.
	EscalationLevel int `json:"escalation_level,omitempty"`
	// Reminders counts the reminder intervals passed so far (see
	// Policy.ReminderInterval).
	Reminders int `json:"reminders,omitempty"`
	// HoldUntil is set when a person denied the request or it timed out:
	// until then, a Guard of the identical action returns this request's
	// outcome instead of opening a new request (see Config.DenialHold and
	// Store.Create). Zero means no hold.
	//
	// A request with an Action.IdempotencyKey gets one too when a Guard
	// consumes its approval, Config.IdempotencyWindow long: until then, a
	// Guard with the key returns this request's outcome (StatusConsumed).
	HoldUntil time.Time `json:"hold_until,omitzero"`
	// Prior, set as a request is created, is the newest earlier run of an
	// identical action (same ActionHash, consumed within
	// Config.IdempotencyWindow): approving this request would run it
	// again. Nil when there is none, or the Store cannot tell (see
	// PriorRuns).
	Prior *PriorRun `json:"prior,omitempty"`

	// Deciders are who may decide the open request and have not: the
	// people of its policies' current levels (LevelProgress.People), less
	// those who voted (or were voted for) and a segregated requester;
	// sorted, nil once it is not open. The gate sets it on every write;
	// stores with the Inbox capability index it. Delegates are not in it:
	// the inbox reads a person's delegations when it lists.
	Deciders []string `json:"deciders,omitempty"`

	// TraceParent is the W3C trace context of the Guard that created the
	// request (a traceparent header value), given by a TraceObserver;
	// empty without one. Observations of what happens to the request later
	// carry it, so that one approval is one trace across processes.
	TraceParent string `json:"trace_parent,omitempty"`

	// Version increases by one on every update; stores use it for
	// compare-and-set. A new request has Version 1.
	Version int64 `json:"version"`
}

// PriorRun is an earlier run of an action: the request whose approval a
// Guard consumed, and when (see Request.Prior).
type PriorRun struct {
	// RequestID is the earlier request.
	RequestID string `json:"request_id"`
	// At is when its approval was consumed: when the action was let run.
	At time.Time `json:"at"`
}

// MatchedPolicy is the snapshot of one policy a request matched.
type MatchedPolicy struct {
	// Name is the policy's name.
	Name string `json:"name"`
	// Hash is the SHA-256 of the policy's canonical definition.
	Hash string `json:"hash"`
	// Approvers are a flat policy's approvers, its one level.
	Approvers []Approver `json:"approvers,omitempty"`
	// RequiredApprovals is how many of them a flat policy needs.
	RequiredApprovals int `json:"required_approvals,omitempty"`
	// Escalation is a flat policy's escalation steps.
	Escalation []EscalationStep `json:"escalation_steps,omitempty"`
	// Chain is the policy's levels, when it has a chain (Level.When is not
	// kept: Skipped records what it decided).
	Chain []Level `json:"chain,omitempty"`
	// Skipped lists the levels (from 0) whose When did not match the
	// action.
	Skipped []int `json:"skipped,omitempty"`
	// Progress is where the request stands in the policy's levels: the
	// only part of a MatchedPolicy that changes.
	Progress LevelProgress `json:"progress,omitzero"`
	// ReminderInterval is how often approvers who have not answered are
	// reminded.
	ReminderInterval time.Duration `json:"reminder_interval,omitempty"`
	// Redact names the payload fields and metadata keys review surfaces
	// mask (Policy.Redact).
	Redact []string `json:"redact,omitempty"`
	// RecommendationApprovesBelow is the policy's (see Policy): the risk
	// below which a recommendation to approve passes it.
	RecommendationApprovesBelow Risk `json:"recommendation_approves_below,omitempty"`
	// RecommendationMinConfidence is the policy's (see Policy): the least
	// confidence of such a recommendation.
	RecommendationMinConfidence float64 `json:"recommendation_min_confidence,omitempty"`
	// MatchError is set when the policy applies because its matcher failed
	// (fail closed) rather than because it matched.
	MatchError string `json:"match_error,omitempty"`
	// RequirePasskey is the policy's (Policy.RequirePasskey).
	RequirePasskey bool `json:"require_passkey,omitempty"`
	// Limit is the policy's (Policy.Limit), as given.
	Limit *AskLimit `json:"limit,omitempty"`
	// Urgent is the policy's (Policy.Urgent).
	Urgent bool `json:"urgent,omitempty"`
}

// Vote is one recorded decision.
type Vote struct {
	// Approver is the person who decided (the token's subject).
	Approver string `json:"approver"`
	// OnBehalfOf names the approver a delegate acted for, if any.
	OnBehalfOf string `json:"on_behalf_of,omitempty"`
	// Verdict is the answer.
	Verdict Verdict `json:"verdict"`
	// Reason is the approver's comment (Decision.Reason).
	Reason string `json:"reason,omitempty"`
	// Conditions are the limits an approval was given under
	// (Decision.Conditions), in normal spelling.
	Conditions []string `json:"conditions,omitempty"`
	// BreakGlass marks an approval on the emergency path (Gate.BreakGlass):
	// it counts toward no policy.
	BreakGlass bool `json:"break_glass,omitempty"`
	// Denial is a deny's structured reason (Decision.Denial).
	Denial *Denial `json:"denial,omitempty"`
	// Reuse is the reuse an approval granted (Decision.Reuse).
	Reuse *Reuse `json:"reuse,omitempty"`
	// TokenID is the ID of the single-use token the decision carried.
	TokenID string `json:"token_id"`
	// Policies names the matched policies the approver was eligible under
	// when deciding; the vote counts toward those.
	Policies []string `json:"policies"`
	// Counts says, on a request with an approval chain, which level (and
	// parallel groups) of each policy the vote counts toward: those
	// current when it was cast. Nil when every policy is flat.
	Counts []VoteCount `json:"counts,omitempty"`
	// At is when the vote was recorded.
	At time.Time `json:"at"`
	// Passkey is the approver's verified passkey assertion of the vote
	// (Decision.Passkey), with the credential it verified against; nil
	// without one.
	Passkey *PasskeyProof `json:"passkey,omitempty"`
}

// Clone returns a deep copy of r.
func (r *Request) Clone() *Request {
	if r == nil {
		return nil
	}
	c := *r
	c.Action = r.Action.clone()
	// Deciders and the levels' People share one new array.
	n := len(r.Deciders)
	for i := range r.Policies {
		n += len(r.Policies[i].Progress.People)
	}
	names := make([]string, 0, n)
	c.Deciders = copyInto(&names, r.Deciders)
	c.Edit = r.Edit.clone()
	if r.Prior != nil {
		p := *r.Prior
		c.Prior = &p
	}
	if r.Policies != nil {
		c.Policies = make([]MatchedPolicy, len(r.Policies))
	}
	for i, p := range r.Policies {
		p.Approvers = slices.Clone(p.Approvers)
		p.Redact = slices.Clone(p.Redact)
		p.Escalation = cloneSteps(p.Escalation)
		p.Chain = cloneChain(p.Chain)
		p.Skipped = slices.Clone(p.Skipped)
		p.Progress = p.Progress.clone()
		p.Progress.People = copyInto(&names, p.Progress.People)
		if p.Limit != nil {
			l := *p.Limit
			p.Limit = &l
		}
		c.Policies[i] = p
	}
	if r.Recommendations != nil {
		c.Recommendations = make([]Recommendation, len(r.Recommendations))
		for i, rec := range r.Recommendations {
			c.Recommendations[i] = rec.clone()
		}
	}
	if r.Votes != nil {
		c.Votes = make([]Vote, len(r.Votes))
		for i, v := range r.Votes {
			v.Policies = slices.Clone(v.Policies)
			v.Conditions = slices.Clone(v.Conditions)
			v.Denial = cloneDenial(v.Denial)
			v.Passkey = v.Passkey.clone()
			if v.Reuse != nil {
				r := *v.Reuse
				v.Reuse = &r
			}
			if v.Counts != nil {
				v.Counts = slices.Clone(v.Counts)
				for j := range v.Counts {
					v.Counts[j].Groups = slices.Clone(v.Counts[j].Groups)
				}
			}
			c.Votes[i] = v
		}
	}
	return &c
}

// copyInto appends s to *buf, whose capacity holds it, and returns the
// copy, its capacity cut so that an append to it cannot reach the next. A
// nil s stays nil and an empty one empty: a level's People resolved to
// nobody are not unresolved.
func copyInto(buf *[]string, s []string) []string {
	if s == nil {
		return nil
	}
	start := len(*buf)
	*buf = append(*buf, s...)
	return (*buf)[start:len(*buf):len(*buf)]
}

// PolicyNames returns the names of the matched policies.
func (r *Request) PolicyNames() []string {
	names := make([]string, len(r.Policies))
	for i, p := range r.Policies {
		names[i] = p.Name
	}
	return names
}

// isRequester reports whether who (canonical) asked for r: its requester,
// or the person an agent requested it for (Action.Initiator). Requester
// segregation refuses both.
func (r *Request) isRequester(who string) bool {
	return sameID(who, r.Action.RequestedBy) || (r.Action.Initiator != "" && sameID(who, r.Action.Initiator))
}

// decidedBy returns the vote person cast, or a delegate cast for them.
func (r *Request) decidedBy(person string) (Vote, bool) {
	for _, v := range r.Votes {
		if sameID(v.Approver, person) || (v.OnBehalfOf != "" && sameID(v.OnBehalfOf, person)) {
			return v, true
		}
	}
	return Vote{}, false
}

// usedToken reports whether a vote on r carries token ID tid.
func (r *Request) usedToken(tid string) bool {
	for _, v := range r.Votes {
		if v.TokenID == tid {
			return true
		}
	}
	return false
}

// approve moves r to approved: usable by the next Guard until ApprovalTTL.
func (r *Request) approve(now time.Time, reason string) {
	r.Status, r.Reason, r.ResolvedAt = StatusApproved, reason, now
	r.ExpiresAt = now.Add(r.ApprovalTTL)
	r.DueAt = r.ExpiresAt
}

// maxEchoBytes bounds how much of a caller's input an error repeats.
const maxEchoBytes = 64

// checkRequestID reports ErrNotFound, without asking the store, for an ID
// no gate issues ("req_" and 32 lower-case hex digits), so that a huge or
// odd ID costs nothing and is echoed only in part.
func checkRequestID(id string) error {
	ok := len(id) == 36 && id[:4] == "req_"
	for i := 4; ok && i < len(id); i++ {
		c := id[i]
		ok = '0' <= c && c <= '9' || 'a' <= c && c <= 'f'
	}
	if !ok {
		return fmt.Errorf("%w: %q is not a request ID", ErrNotFound, text.Clip(id, maxEchoBytes))
	}
	return nil
}
