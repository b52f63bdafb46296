package approval

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/signoff/approval/internal/delivery"
	"github.com/signoff/approval/internal/host"
)

// notifyJob is one notice being expanded.
type notifyJob struct {
	typ    NotificationType
	req    *Request
	level  int // escalation level reached, for NotifyEscalated
	target noticeTarget
	// delegates maps the delegates recipients resolved to the approvers
	// they stand in for (set by recipients).
	delegates map[string]string
}

// resolver resolves a notification's recipients. It is used by one
// goroutine at a time.
type resolver struct {
	g   *Gate
	dir delivery.Breaker // the directory's, for notifications
	ctx context.Context  // ends when delivery stops
}

// namedChannel is a channel with its Name, asked once, and its host.
type namedChannel struct {
	ch    Channel
	name  string
	host  *host.Plugin
	pager bool // ch is a Pager
}

// nameChannels asks each channel for its Name once, so that a Name that
// panics fails New. Names must be unique: the audit trail and the outbox
// tell channels apart by them.
func nameChannels(g *Gate, channels []Channel) ([]namedChannel, error) {
	out := make([]namedChannel, 0, len(channels))
	for i, c := range channels {
		p := host.New(fmt.Sprintf("Channels[%d]", i), g.log)
		name, err := host.Recovered(p, context.Background(), "Name", func(context.Context) (string, error) { return c.Name(), nil })
		if err != nil {
			return nil, fmt.Errorf("approval: %w: Channels[%d]: %w", ErrInvalidConfig, i, err)
		}
		if name == "" || !utf8.ValidString(name) || len(name) > 64 {
			return nil, fmt.Errorf("approval: %w: Channels[%d]: Name must be 1 to 64 bytes of UTF-8", ErrInvalidConfig, i)
		}
		for _, o := range out {
			if o.name == name {
				return nil, fmt.Errorf("approval: %w: Channels[%d]: another channel is named %q", ErrInvalidConfig, i, name)
			}
		}
		_, pager := c.(Pager)
		out = append(out, namedChannel{ch: c, name: name, host: host.New(fmt.Sprintf("channel %q", name), g.log), pager: pager})
	}
	return out, nil
}

// recipients lists who a job notifies, resolving groups and roles now.
// Approvers are asked to decide; the requester (when segregated) is not.
// Resolutions and timeouts go to the requester and the voters as well.
func (d *resolver) recipients(ctx context.Context, job *notifyJob) ([]string, error) {
	r := job.req
	var out []string
	add := func(u string) {
		if !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	var levels [][]Approver
	switch {
	case job.target.Approvers != nil:
		levels = append(levels, job.target.Approvers)
	case job.typ == NotifyRequested, job.typ == NotifyReminder, job.typ == NotifyEscalated, job.typ == NotifyTimedOut:
		for i := range r.Policies {
			p := &r.Policies[i]
			if job.target.Policy == "" || job.target.Policy == p.Name {
				levels = append(levels, currentApprovers(p)...)
			}
		}
	}
	for _, as := range levels {
		for _, a := range as {
			members, err := d.members(ctx, a)
			if err != nil {
				return out, err
			}
			for _, m := range members {
				id, err := CanonicalID(m)
				if err != nil {
					d.g.log.Warn("approval: directory returned a member that is not a valid identity; not notified",
						"request", r.ID, "approver", a.String(), "err", err)
					continue
				}
				if r.SegregateRequester && r.isRequester(id) {
					continue
				}
				if _, voted := r.decidedBy(id); voted && job.typ == NotifyReminder {
					continue // answered already
				}
				add(id)
			}
		}
	}
	if job.typ == NotifyRequested || job.typ == NotifyReminder || job.typ == NotifyEscalated {
		var err error
		if out, err = d.addDelegates(ctx, job, out); err != nil {
			return out, err
		}
	}
	if job.typ == NotifyResolved || job.typ == NotifyTimedOut {
		for _, id := range append([]string{r.Action.RequestedBy, r.Action.Initiator}, voters(r)...) {
			if c, err := CanonicalID(id); err == nil {
				add(c)
			}
		}
	}
	return out, nil
}

// addDelegates adds to out (the approvers a job asks to decide) the
// delegates standing in for them now, within scope, and records whom
// each stands in for. A delegate who may not decide (the requester, or
// one who has voted) is left out, as is an approver who has voted.
func (d *resolver) addDelegates(ctx context.Context, job *notifyJob, out []string) ([]string, error) {
	r := job.req
	if _, ok := d.g.store.(Delegations); !ok {
		return out, nil
	}
	now := normalizeTime(d.g.now())
	n := len(out)
	for _, from := range out[:n] {
		ds, err := d.g.activeDelegations(ctx, from, true, now)
		if err != nil {
			return out, fmt.Errorf("delegations from %s: %w", from, err)
		}
		for i := range ds {
			dl := &ds[i]
			if !slices.ContainsFunc(r.Policies, func(p MatchedPolicy) bool { return dl.covers(p.Name) }) ||
				slices.Contains(out, dl.To) || (r.SegregateRequester && r.isRequester(dl.To)) {
				continue
			}
			if _, voted := r.decidedBy(from); voted {
				continue
			}
			if job.delegates == nil {
				job.delegates = map[string]string{}
			}
			job.delegates[dl.To] = from
			out = append(out, dl.To)
		}
	}
	return out, nil
}

// currentApprovers lists who may decide at p's current level: each unit's
// approvers (a RequireAll unit's members, once resolved) and those steps
// added. None once a chain is done.
func currentApprovers(p *MatchedPolicy) [][]Approver {
	l, _, ok := p.currentLevel()
	if !ok {
		return nil
	}
	var out [][]Approver
	for u, end := units(&l); u < end; u++ {
		if ms := p.members(u); unitRequire(&l, u).IsAll() && ms != nil {
			as := make([]Approver, len(ms))
			for i, m := range ms {
				as[i] = User(m)
			}
			out = append(out, as)
			continue
		}
		out = append(out, p.unitApprovers(&l, u))
	}
	if len(p.Progress.Added) > 0 {
		out = append(out, p.Progress.Added)
	}
	return out
}

func voters(r *Request) []string {
	ids := make([]string, len(r.Votes))
	for i, v := range r.Votes {
		ids[i] = v.Approver
	}
	return ids
}

// members resolves one approver to user IDs. The directory is called
// through host.Call and the breaker rule: one that hangs is blocked for
// notifications (not for decisions) until a probe returns in time.
func (d *resolver) members(ctx context.Context, a Approver) ([]string, error) {
	if a.Kind == KindUser {
		return []string{a.Name}, nil
	}
	g := d.g
	if g.dir == nil {
		return nil, fmt.Errorf("approver %s needs a Directory", a)
	}
	if ok, until := d.dir.Allow(g.now()); !ok {
		return nil, fmt.Errorf("directory: %s: blocked after %d consecutive calls that timed out; next probe at %s",
			a, delivery.BlockAfter, until.UTC().Format(time.RFC3339))
	}
	ms, err := host.Call(g.dirHost, ctx, "Members", func(ctx context.Context) ([]string, error) {
		return g.dir.Members(ctx, a)
	})
	if d.ctx.Err() == nil && d.dir.Record(g.now(), host.TimedOut(err)) {
		g.log.Error("approval: directory blocked for notifications until a probe returns in time",
			"timeouts", d.dir.Timeouts(), "next_probe", d.dir.NextProbe(), "err", err)
	}
	if err != nil {
		return nil, fmt.Errorf("directory: %s: %w", a, err)
	}
	return ms, nil
}

// notification makes the notification of job, without a recipient, an
// ID or links.
//
// It is made once per job and copied per recipient (see forRecipient):
// redacting the action and diffing an edited payload cost what the
// payload does, and are the same for every recipient. The copies share
// its slices and maps, which nothing modifies.
func (g *Gate) notification(job notifyJob, now time.Time) Notification {
	r := job.req
	n := Notification{
		Type: job.typ, RequestID: r.ID, Status: r.Status,
		Policies: policyRefs(r.Policies), Reason: r.Reason, Deadline: r.Deadline, At: now,
	}
	n.ActionHash, n.PayloadHash = r.boundHashes()
	n.Note = job.target.Note
	n.TraceParent = r.TraceParent
	if r.Prior != nil {
		p := *r.Prior
		n.Prior = &p
	}
	keys := r.RedactKeys()
	n.Action, n.Redacted = r.Approved().Redact(keys)
	n.Edit = r.EditSummary(keys)
	if len(r.Policies) > 0 {
		n.Progress = r.Standing()
	}
	n.Votes = voteSummaries(r.Votes)
	for i := range r.Policies {
		n.Urgent = n.Urgent || r.Policies[i].Urgent
	}
	return n
}

// voteSummaries are vs as a notification shows them; nil for none.
func voteSummaries(vs []Vote) []VoteSummary {
	if len(vs) == 0 {
		return nil
	}
	out := make([]VoteSummary, len(vs))
	for i, v := range vs {
		out[i] = VoteSummary{Approver: v.Approver, OnBehalfOf: v.OnBehalfOf, Verdict: v.Verdict, At: v.At}
	}
	return out
}

// NotificationFor returns the notification of type typ the gate would
// make about r now, for no one in particular: no ID, no Recipient and no
// approve or deny links (those carry a token signed for one recipient),
// with the review link when Config.BaseURL is set. Its Action is redacted
// as r's matched policies say, its hashes are those a vote on r binds,
// and Progress and Votes are r's as it is. A channel uses it to redraw a
// message it posted once the request moved on (see
// channels.SlackInteractions). r is not modified.
func (g *Gate) NotificationFor(r *Request, typ NotificationType) Notification {
	n := g.notification(notifyJob{typ: typ, req: r}, normalizeTime(g.now()))
	if g.baseURL != "" {
		n.ReviewURL = g.baseURL + ReviewPath + url.PathEscape(r.ID)
	}
	return n
}

// forRecipient returns job's notification n for recipient to, under its
// own ID.
func (n Notification) forRecipient(job *notifyJob, to, id string) Notification {
	n.ID, n.Recipient, n.OnBehalfOf = id, to, job.delegates[to]
	return n
}

// sign sets n's review link, when the gate has a BaseURL, and, for an open
// request and a gate with a signing key, approve and deny links carrying
// one token signed for n.Recipient alone, valid until the deadline (at
// least a minute) or for DefaultTimeout. The token allows either answer,
// so that the page either link opens offers both: a reviewer who followed
// "Approve" and then reads the payload can still deny.
func (g *Gate) sign(n *Notification, now time.Time) error {
	if g.baseURL == "" {
		return nil
	}
	n.ReviewURL = g.baseURL + ReviewPath + url.PathEscape(n.RequestID)
	if !n.Status.Open() || g.keys.signer == nil || n.Type == NotifyAlert || n.Recipient == "" {
		return nil // a Pager's notification has no recipient to sign for
	}
	ttl := DefaultTimeout
	if !n.Deadline.IsZero() {
		ttl = max(n.Deadline.Sub(now), time.Minute)
	}
	tok, err := g.keys.issue(n.RequestID, n.Recipient, VerdictBoth, now, ttl)
	if err != nil {
		return fmt.Errorf("sign review links: %w", err)
	}
	n.ApproveURL = n.ReviewURL + "?" + url.Values{"verdict": {string(VerdictApprove)}, "token": {tok}}.Encode()
	n.DenyURL = n.ReviewURL + "?" + url.Values{"verdict": {string(VerdictDeny)}, "token": {tok}}.Encode()
	return nil
}
