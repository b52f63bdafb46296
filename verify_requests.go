package approval

// The request side of VerifyAuditTrail: the stored requests, read beside
// the trail in ID order, and what each one's state owes the trail (its
// created event, its status's, each voter's decision), checked off as the
// events go by.

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"time"
)

// readRequests reads requests, in ID order, until it has read the one
// with ID through (or one after it), or every request if all.
func (v *verifier) readRequests(ctx context.Context, through string, all bool) error {
	if v.requests == nil {
		var from time.Time
		if v.start > 1 {
			// The requests created before the verified part of the
			// trail are not checked: leave them unread.
			from = v.firstAt
		}
		if s, ok := v.store.(AuditStream); ok {
			v.requests = &streamedRequests{s: s, q: AuditedRequestQuery{CreatedFrom: from, Limit: MaxPageSize}}
		} else {
			v.requests = &listedRequests{s: v.store, q: RequestQuery{CreatedFrom: from, Limit: MaxPageSize}}
		}
	}
	for !v.listed && (all || !v.someRead || v.lastID < through) {
		page, last, err := v.requests.next(ctx)
		if err != nil {
			return fmt.Errorf("list requests: %w", err)
		}
		for i := range page {
			r := &page[i]
			if v.someRead && r.ID <= v.lastID && !v.requestsFirst {
				return errUnordered
			}
			v.lastID, v.someRead = r.ID, true
			v.owe(r)
		}
		v.listed = last
	}
	return nil
}

// requestReader reads the stored requests, a page at a time, in ID order.
type requestReader interface {
	// next returns the next page, and whether it is the last.
	next(ctx context.Context) ([]AuditedRequest, bool, error)
}

// streamedRequests reads through AuditStream.AuditedRequests.
type streamedRequests struct {
	s AuditStream
	q AuditedRequestQuery
}

func (r *streamedRequests) next(ctx context.Context) ([]AuditedRequest, bool, error) {
	page, err := r.s.AuditedRequests(ctx, r.q)
	if err != nil {
		return nil, false, err
	}
	if n := len(page); n > 0 {
		r.q.After = page[n-1].ID
	}
	return page, len(page) < PageSize(r.q.Limit), nil
}

// listedRequests reads through Store.List.
type listedRequests struct {
	s Store
	q RequestQuery
}

func (r *listedRequests) next(ctx context.Context) ([]AuditedRequest, bool, error) {
	page, err := r.s.List(ctx, r.q)
	if err != nil {
		return nil, false, err
	}
	out := make([]AuditedRequest, len(page.Requests))
	for i, req := range page.Requests {
		out[i] = req.Audited()
	}
	r.q.Cursor = page.Next
	return out, page.Next == "", nil
}

// trailReader reads the trail in sequence order, a part at a time: each
// read goes on from the event the previous one ended with, to the end
// of the trail as it is then.
type trailReader interface {
	read(ctx context.Context, fn func(context.Context, *AuditEvent) error) error
}

// streamedTrail reads through AuditStream.StreamAudit.
type streamedTrail struct {
	s     AuditStream
	after int64
}

func (t *streamedTrail) read(ctx context.Context, fn func(context.Context, *AuditEvent) error) error {
	return t.s.StreamAudit(ctx, t.after, func(e *AuditEvent) error {
		t.after = e.Seq
		return fn(ctx, e)
	})
}

// pagedTrail reads through ListAudit, whose cursors begin at the start
// of the trail. It reads the last page again for the next read, and
// passes over the events it read before.
type pagedTrail struct {
	s      Store
	cursor string
	seen   int64 // how many events of the last page were read
}

func (t *pagedTrail) read(ctx context.Context, fn func(context.Context, *AuditEvent) error) error {
	for {
		page, err := t.s.ListAudit(ctx, AuditQuery{Cursor: t.cursor, Limit: MaxPageSize})
		if err != nil {
			return err
		}
		for i := t.seen; i < int64(len(page.Events)); i++ {
			if err := fn(ctx, &page.Events[i]); err != nil {
				return err
			}
		}
		if page.Next == "" {
			t.seen = max(t.seen, int64(len(page.Events)))
			return nil
		}
		t.cursor, t.seen = page.Next, 0
	}
}

// accountsFor reports whether events of type t explain a request's state
// (see VerifyAuditTrail).
func accountsFor(t EventType) bool {
	switch t {
	case EventRequestCreated, EventRequestApproved, EventApprovalConsumed, EventApprovalExpired,
		EventRequestDenied, EventRequestCancelled, EventRequestTimedOut, EventPayloadEdited,
		EventDecisionApprove, EventDecisionDeny, EventBreakGlass:
		return true
	}
	return false
}

// owed is what the trail still owes one request: the events its state
// needs and the trail has not shown yet.
type owed struct {
	status Status
	needs  []need
	left   int // the sum of the needs' n
}

// need is an event a request needs: of a type and, for a vote's event,
// by an actor; n of them.
type need struct {
	typ   EventType
	actor string
	n     int
	// actionHash and payloadHash, when set, are the hashes the event
	// must bind; wrongHash records that one came with others.
	actionHash, payloadHash string
	wrongHash               bool
}

// Audited returns the part of r that its audit events account for.
func (r *Request) Audited() AuditedRequest {
	a := AuditedRequest{
		ID: r.ID, Status: r.Status, CreatedAt: r.CreatedAt,
		ActionHash: r.ActionHash, PayloadHash: r.PayloadHash, Uses: r.Uses,
	}
	if r.Edit != nil {
		a.Edited, a.EditActionHash, a.EditPayloadHash = true, r.Edit.ActionHash, r.Edit.PayloadHash
	}
	if len(r.Votes) > 0 {
		a.Votes = make([]AuditedVote, len(r.Votes))
		for i, vote := range r.Votes {
			a.Votes[i] = AuditedVote{Approver: vote.Approver, Verdict: vote.Verdict, BreakGlass: vote.BreakGlass}
		}
	}
	return a
}

// owe lists the events r's state needs, unless r was created before the
// verified part of the trail.
func (v *verifier) owe(r *AuditedRequest) {
	if v.start > 1 && !v.firstAt.IsZero() && !r.CreatedAt.After(v.firstAt) {
		// Its events may be in the part of the trail a store pruned, or
		// before From.
		return
	}
	v.report.Requests++
	o := &owed{status: r.Status, needs: make([]need, 0, 4+len(r.Votes))}
	add := func(typ EventType, actor string) *need {
		o.left++
		for i := range o.needs {
			if n := &o.needs[i]; n.typ == typ && n.actor == actor {
				n.n++
				return n
			}
		}
		o.needs = append(o.needs, need{typ: typ, actor: actor, n: 1})
		return &o.needs[len(o.needs)-1]
	}
	bound := func(typ EventType, actionHash, payloadHash string) {
		n := add(typ, "")
		n.actionHash, n.payloadHash = actionHash, payloadHash
	}
	bound(EventRequestCreated, r.ActionHash, r.PayloadHash)
	approved := func() {
		a, p := r.ActionHash, r.PayloadHash
		if r.Edited {
			a, p = r.EditActionHash, r.EditPayloadHash
		}
		bound(EventRequestApproved, a, p)
	}
	uses := func(n int) {
		for range n {
			add(EventApprovalConsumed, "")
		}
	}
	switch r.Status {
	case StatusApproved:
		approved()
		uses(r.Uses)
	case StatusConsumed:
		approved()
		uses(max(r.Uses, 1))
	case StatusExpired:
		approved()
		uses(r.Uses)
		add(EventApprovalExpired, "")
	case StatusDenied:
		add(EventRequestDenied, "")
	case StatusCancelled:
		add(EventRequestCancelled, "")
	case StatusTimedOut:
		add(EventRequestTimedOut, "")
	}
	if r.Edited {
		bound(EventPayloadEdited, r.EditActionHash, r.EditPayloadHash)
	}
	for _, vote := range r.Votes {
		switch {
		case vote.BreakGlass:
			add(EventBreakGlass, vote.Approver)
		case vote.Verdict == VerdictDeny:
			add(EventDecisionDeny, vote.Approver)
		default:
			add(EventDecisionApprove, vote.Approver)
		}
	}
	v.owed[r.ID] = o
	v.owedPeak = max(v.owedPeak, len(v.owed))
}

// saw counts e toward the events o needs, and reports whether it needs
// no more.
func (o *owed) saw(e *AuditEvent) bool {
	if n := o.find(e.Type, ""); n != nil && n.n > 0 {
		if n.actionHash == e.ActionHash && n.payloadHash == e.PayloadHash {
			n.n--
			o.left--
		} else {
			n.wrongHash = true
		}
	}
	switch e.Type {
	case EventDecisionApprove, EventDecisionDeny, EventBreakGlass:
		if n := o.find(e.Type, e.Actor); n != nil && n.n > 0 {
			n.n--
			o.left--
		}
	}
	return o.left == 0
}

// find returns o's need of an event of type typ by actor, or nil.
func (o *owed) find(typ EventType, actor string) *need {
	for i := range o.needs {
		if n := &o.needs[i]; n.typ == typ && n.actor == actor {
			return n
		}
	}
	return nil
}

// expectRank orders a request's missing events by how much they tell: no
// request.created says the whole row was written around the gate.
func expectRank(t EventType) int {
	switch t {
	case EventRequestCreated:
		return 0
	case EventRequestApproved, EventRequestDenied, EventRequestCancelled, EventRequestTimedOut:
		return 1
	}
	return 2
}

// missing returns an *AuditStateError for the first request (by ID) that
// needs an event the trail did not have, or nil.
func (v *verifier) missing() error {
	var (
		firstID string
		first   *need
		status  Status
	)
	for id, o := range v.owed {
		for i := range o.needs {
			n := &o.needs[i]
			if n.n == 0 {
				continue
			}
			if first == nil || cmp.Or(strings.Compare(id, firstID), cmp.Compare(expectRank(n.typ), expectRank(first.typ)),
				strings.Compare(string(n.typ), string(first.typ)), strings.Compare(n.actor, first.actor)) < 0 {
				firstID, first, status = id, n, o.status
			}
		}
	}
	if first == nil {
		return nil
	}
	what := string(first.typ)
	if first.actor != "" {
		what += " by " + first.actor
	}
	return &AuditStateError{RequestID: firstID, Status: status, Missing: what, WrongHashes: first.wrongHash}
}

// accounted checks that the trail holds the request.approved event of
// approved (or consumed) request r, bound to the hashes r approves (and
// that an edited payload's bytes have the hash approved), before the gate consumes it or signs
// its artifact. A request row written around the gate, forged as
// approved, has none: the gate audits audit.mismatch and refuses with an
// *AuditStateError (fail closed). A forged row together with a forged
// event breaks the hash chain, which VerifyAudit reports.
func (g *Gate) accounted(ctx context.Context, r *Request) error {
	page, err := g.store.ListAudit(ctx, AuditQuery{RequestID: r.ID, Type: EventRequestApproved, Limit: 1})
	if err != nil {
		return fmt.Errorf("approval: read the approval of %s from the audit trail: %w", r.ID, err)
	}
	actionHash, payloadHash := r.boundHashes()
	wrong := len(page.Events) == 1
	if wrong {
		e := &page.Events[0]
		if e.RequestID == r.ID && e.Type == EventRequestApproved && e.ComputeHash() == e.Hash &&
			e.ActionHash == actionHash && e.PayloadHash == payloadHash &&
			(r.Edit == nil || PayloadHash(r.Edit.Payload) == r.Edit.PayloadHash) {
			return nil
		}
	}
	serr := &AuditStateError{RequestID: r.ID, Status: r.Status, Missing: string(EventRequestApproved), WrongHashes: wrong}
	g.log.Error("approval: refused an approval the audit trail does not account for", "request", r.ID, "err", serr)
	ev := []AuditEvent{{RequestID: r.ID, Type: EventAuditMismatch, Actor: SystemActor, Policies: policyRefs(r.Policies),
		Reason: "refused: the request is " + string(r.Status) + " but the trail has no request.approved event for its action and payload", At: normalizeTime(g.now())}}
	if err := g.record(ctx, ev); err != nil {
		g.log.Error("approval: cannot audit an audit mismatch", "request", r.ID, "err", err)
	}
	return serr
}
