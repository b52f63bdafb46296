package approval

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
)

// sendTimeout bounds one Channel.Send call.
const sendTimeout = 30 * time.Second

// dispatcher delivers notifications on its own goroutine, so that resolving
// recipients, signing their link tokens and calling channels never sits on
// the path of Guard or Decide. Its queue is unbounded: a burst of requests
// is delivered late rather than dropped.
type dispatcher struct {
	g        *Gate
	channels []Channel

	mu      sync.Mutex
	queue   []notifyJob
	closing bool
	wake    chan struct{}
	done    chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc
}

type notifyJob struct {
	typ   NotificationType
	req   *Request
	level int // escalation level reached, for NotifyEscalated
}

func newDispatcher(g *Gate, channels []Channel) *dispatcher {
	d := &dispatcher{g: g, channels: channels, wake: make(chan struct{}, 1), done: make(chan struct{})}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	go d.run()
	return d
}

// enqueue queues a notification about r. It copies r, so the caller keeps
// ownership. It is a no-op on a nil dispatcher (a gate without channels).
func (d *dispatcher) enqueue(typ NotificationType, r *Request, level int) {
	if d == nil {
		return
	}
	job := notifyJob{typ: typ, req: r.Clone(), level: level}
	d.mu.Lock()
	if d.closing {
		d.mu.Unlock()
		return
	}
	d.queue = append(d.queue, job)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *dispatcher) run() {
	defer close(d.done)
	for {
		d.mu.Lock()
		if len(d.queue) == 0 {
			closing := d.closing
			d.mu.Unlock()
			if closing {
				return
			}
			select {
			case <-d.wake:
			case <-d.ctx.Done():
				return
			}
			continue
		}
		job := d.queue[0]
		d.queue[0] = notifyJob{}
		d.queue = d.queue[1:]
		d.mu.Unlock()
		if d.ctx.Err() != nil {
			return
		}
		d.deliver(job)
	}
}

// close stops intake and waits for the queue to drain or ctx to end.
func (d *dispatcher) close(ctx context.Context) error {
	d.mu.Lock()
	d.closing = true
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
	select {
	case <-d.done:
		d.cancel()
		return nil
	case <-ctx.Done():
		d.cancel()
		<-d.done
		return fmt.Errorf("approval: close: notifications left undelivered: %w", ctx.Err())
	}
}

// deliver sends one job's notifications to every channel and audits each
// outcome.
func (d *dispatcher) deliver(job notifyJob) {
	g, r := d.g, job.req
	recipients, err := d.recipients(job)
	now := normalizeTime(g.now())
	refs := policyRefs(r.Policies)
	var events []AuditEvent
	if err != nil {
		g.log.Error("approval: cannot resolve notification recipients", "request", r.ID, "err", err)
		events = append(events, AuditEvent{RequestID: r.ID, Type: EventNotificationFailed, Actor: SystemActor,
			Policies: refs, Reason: auditSafe(fmt.Sprintf("%s: resolve recipients: %v", job.typ, err), maxReasonBytes), At: now})
	}
	for _, to := range recipients {
		n, buildErr := d.build(job, to, now)
		for _, ch := range d.channels {
			err := buildErr
			if err == nil {
				ctx, cancel := context.WithTimeout(d.ctx, sendTimeout)
				err = ch.Send(ctx, n)
				cancel()
			}
			// Recipients, channel names and errors come from outside the
			// gate: auditSafe keeps the event storable as it is hashed.
			ev := AuditEvent{RequestID: r.ID, Type: EventNotificationSent, Actor: SystemActor, Policies: refs,
				Reason: fmt.Sprintf("%s to %s via %s", job.typ, to, ch.Name()), At: now}
			if err != nil {
				g.log.Error("approval: notification failed", "request", r.ID, "recipient", to, "channel", ch.Name(), "err", err)
				ev.Type = EventNotificationFailed
				ev.Reason += ": " + err.Error()
			}
			ev.Reason = auditSafe(ev.Reason, maxReasonBytes)
			events = append(events, ev)
		}
	}
	if len(events) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(d.ctx), sendTimeout)
	defer cancel()
	if err := g.appendAudit(ctx, events); err != nil {
		g.log.Error("approval: cannot audit notification outcomes", "request", r.ID, "err", err)
	}
}

// recipients lists who a job notifies, resolving groups and roles now.
// Approvers are asked to decide; the requester (when segregated) is not.
// Resolutions and timeouts go to the requester and the voters as well.
func (d *dispatcher) recipients(job notifyJob) ([]string, error) {
	r := job.req
	var out []string
	add := func(u string) {
		if !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	var levels [][]Approver
	for _, p := range r.Policies {
		switch job.typ {
		case NotifyRequested, NotifyTimedOut:
			levels = append(levels, p.Approvers)
		case NotifyReminder:
			levels = append(levels, p.Approvers)
			levels = append(levels, p.Escalation[:min(r.EscalationLevel, len(p.Escalation))]...)
		case NotifyEscalated:
			if job.level >= 1 && job.level <= len(p.Escalation) {
				levels = append(levels, p.Escalation[job.level-1])
			}
		}
	}
	for _, as := range levels {
		for _, a := range as {
			members, err := d.members(a)
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
				if r.SegregateRequester && sameID(id, r.Action.RequestedBy) {
					continue
				}
				if _, voted := r.vote(id); voted && job.typ == NotifyReminder {
					continue // answered already
				}
				add(id)
			}
		}
	}
	if job.typ == NotifyResolved || job.typ == NotifyTimedOut {
		for _, id := range append([]string{r.Action.RequestedBy}, voters(r)...) {
			if c, err := CanonicalID(id); err == nil {
				add(c)
			}
		}
	}
	return out, nil
}

func voters(r *Request) []string {
	ids := make([]string, len(r.Votes))
	for i, v := range r.Votes {
		ids[i] = v.Approver
	}
	return ids
}

// members resolves one approver to user IDs.
func (d *dispatcher) members(a Approver) ([]string, error) {
	if a.Kind == KindUser {
		return []string{a.Name}, nil
	}
	if d.g.dir == nil {
		return nil, fmt.Errorf("approver %s needs a Directory", a)
	}
	ms, err := d.g.dir.Members(d.ctx, a)
	if err != nil {
		return nil, fmt.Errorf("directory: %s: %w", a, err)
	}
	return ms, nil
}

// build makes the notification for one recipient, with personal approve
// and deny links when the gate has a BaseURL and a signing key.
func (d *dispatcher) build(job notifyJob, to string, now time.Time) (Notification, error) {
	g, r := d.g, job.req
	n := Notification{
		ID: uuid.NewString(), Type: job.typ, RequestID: r.ID, Recipient: to, Status: r.Status,
		Action: r.Action, ActionHash: r.ActionHash, PayloadHash: r.PayloadHash,
		Policies: policyRefs(r.Policies), Reason: r.Reason, Deadline: r.Deadline, At: now,
	}
	if g.baseURL == "" {
		return n, nil
	}
	n.ReviewURL = g.baseURL + ReviewPath + url.PathEscape(r.ID)
	if !r.Status.Open() || g.keys.signer == nil {
		return n, nil
	}
	ttl := DefaultTimeout
	if !r.Deadline.IsZero() {
		ttl = max(r.Deadline.Sub(now), time.Minute)
	}
	for _, v := range [...]Verdict{VerdictApprove, VerdictDeny} {
		tok, err := g.keys.issue(r.ID, to, v, now, ttl)
		if err != nil {
			return n, fmt.Errorf("sign %s link: %w", v, err)
		}
		link := n.ReviewURL + "?" + url.Values{"verdict": {string(v)}, "token": {tok}}.Encode()
		if v == VerdictApprove {
			n.ApproveURL = link
		} else {
			n.DenyURL = link
		}
	}
	return n, nil
}
