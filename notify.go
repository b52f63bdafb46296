package approval

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Delivery timings that are not configurable.
const (
	// resolveTimeout bounds resolving one job's recipients through
	// Directory.Members.
	resolveTimeout = 10 * time.Second
	// auditTimeout bounds one audit write of the dispatcher's, and the
	// store write of an event a caller's cancellation must not suppress.
	auditTimeout = 10 * time.Second
	// closeGrace bounds the work Close does after its context ended:
	// auditing what was left undelivered.
	closeGrace = time.Second
	// auditBatch bounds the events of one audit write.
	auditBatch = 500
)

// reasonClosed is the audited reason of a notification Close or a closed
// gate left undelivered.
const reasonClosed = "gate closed before delivery"

// dispatcher delivers notifications off the request path, in two stages.
// A resolver goroutine takes jobs from the intake queue, resolves their
// recipients (Directory.Members), signs their links and hands each
// notification to every channel's own queue; one worker goroutine per
// channel sends them. A channel that hangs so delays only itself. Every
// queue holds at most limit entries; what does not fit is audited as
// notification.failed and logged, never dropped silently.
type dispatcher struct {
	resolver
	limit   int           // entries per queue (Config.NotifyQueue)
	timeout time.Duration // per Send (Config.SendTimeout)
	workers []*worker

	cancel context.CancelFunc // ends resolver.ctx: Close gave up

	mu      sync.Mutex // guards the fields below and every worker's queue
	jobs    []notifyJob
	closing bool // no more intake; goroutines exit once their queue is empty
	stopped bool // Close gave up: nothing more is taken from any queue
	wake    chan struct{}
	done    chan struct{} // closed when the resolver exits
}

type notifyJob struct {
	typ    NotificationType
	req    *Request
	level  int // escalation level reached, for NotifyEscalated
	target noticeTarget
	// delegates maps the delegates recipients resolved to the approvers
	// they stand in for (set by recipients).
	delegates map[string]string
}

// worker sends one channel's notifications, in order.
type worker struct {
	d    *dispatcher
	ch   Channel
	name string
	host *plugin
	brk  breaker // used by the worker goroutine only

	queue   []delivery // guarded by d.mu
	closing bool       // guarded by d.mu: the resolver has exited
	wake    chan struct{}
	done    chan struct{}
}

// delivery is one notification waiting in a channel's queue.
type delivery struct {
	n    Notification
	refs []PolicyRef // the request's policies, for the audit event
}

// resolver resolves a notification's recipients and builds it: the part
// of delivery the in-process dispatcher and the outbox share. It is used
// by one goroutine at a time.
type resolver struct {
	g   *Gate
	dir breaker
	ctx context.Context // ends when delivery stops
}

// namedChannel is a channel with its Name, asked once, and its host.
type namedChannel struct {
	ch   Channel
	name string
	host *plugin
}

// nameChannels asks each channel for its Name once, so that a Name that
// panics fails New. Names must be unique: the audit trail and the outbox
// tell channels apart by them.
func nameChannels(g *Gate, channels []Channel) ([]namedChannel, error) {
	out := make([]namedChannel, 0, len(channels))
	for i, c := range channels {
		p := newPlugin(fmt.Sprintf("Channels[%d]", i), g.log)
		name, err := recovered(p, context.Background(), "Name", func(context.Context) (string, error) { return c.Name(), nil })
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
		p.what = fmt.Sprintf("channel %q", name)
		out = append(out, namedChannel{ch: c, name: name, host: p})
	}
	return out, nil
}

// newDispatcher starts the delivery goroutines.
func newDispatcher(g *Gate, channels []namedChannel, limit int, timeout time.Duration) *dispatcher {
	d := &dispatcher{resolver: resolver{g: g}, limit: limit, timeout: timeout, wake: make(chan struct{}, 1), done: make(chan struct{})}
	for _, c := range channels {
		d.workers = append(d.workers, &worker{d: d, ch: c.ch, name: c.name, host: c.host,
			wake: make(chan struct{}, 1), done: make(chan struct{})})
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	go d.resolve()
	for _, w := range d.workers {
		go w.run()
	}
	return d
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// enqueue queues a notification about r. It copies r, so the caller keeps
// ownership. It is a no-op on a nil dispatcher (a gate without channels).
// A job that cannot be queued (the queue is full, or the gate is closed) is
// audited as notification.failed at once: the store write outlives ctx, so
// the record is kept; the sink is called with ctx.
func (d *dispatcher) enqueue(ctx context.Context, job notifyJob) {
	if d == nil {
		return
	}
	r, typ := job.req, job.typ
	job.req = r.Clone()
	var reason string
	d.mu.Lock()
	switch {
	case d.closing:
		reason = reasonClosed
	case len(d.jobs) >= d.limit:
		reason = fmt.Sprintf("notification queue full (%d jobs waiting); not sent", d.limit)
	default:
		d.jobs = append(d.jobs, job)
	}
	d.mu.Unlock()
	if reason == "" {
		signal(d.wake)
		return
	}
	g := d.g
	g.log.Error("approval: notification not queued", "request", r.ID, "type", typ, "reason", reason)
	ev := []AuditEvent{{RequestID: r.ID, Type: EventNotificationFailed, Actor: SystemActor, Policies: policyRefs(r.Policies),
		Reason: string(typ) + ": " + reason, At: normalizeTime(g.now())}}
	if err := g.record(ctx, ev); err != nil {
		g.log.Error("approval: cannot audit a notification not queued", "request", r.ID, "err", err)
	}
}

// resolve is the resolver goroutine. When it exits it tells the workers
// that nothing more will come.
func (d *dispatcher) resolve() {
	defer close(d.done)
	defer func() {
		d.mu.Lock()
		for _, w := range d.workers {
			w.closing = true
		}
		d.mu.Unlock()
		for _, w := range d.workers {
			signal(w.wake)
		}
	}()
	for {
		job, ok := d.nextJob()
		if !ok {
			return
		}
		d.resolveJob(job)
	}
}

func (d *dispatcher) nextJob() (notifyJob, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for {
		if d.stopped {
			return notifyJob{}, false
		}
		if len(d.jobs) > 0 {
			job := d.jobs[0]
			d.jobs[0] = notifyJob{}
			d.jobs = d.jobs[1:]
			return job, true
		}
		if d.closing {
			return notifyJob{}, false
		}
		d.mu.Unlock()
		select {
		case <-d.wake:
		case <-d.ctx.Done():
		}
		d.mu.Lock()
	}
}

// resolveJob resolves one job's recipients, builds their notifications and
// queues them on every channel, auditing what fails on the way.
func (d *dispatcher) resolveJob(job notifyJob) {
	g, r := d.g, job.req
	now := normalizeTime(g.now())
	refs := policyRefs(r.Policies)
	var events []AuditEvent
	fail := func(reason string) {
		events = append(events, AuditEvent{RequestID: r.ID, Type: EventNotificationFailed, Actor: SystemActor,
			Policies: refs, Reason: auditSafe(reason, maxReasonBytes), At: now})
	}
	ctx, cancel := context.WithTimeout(d.ctx, resolveTimeout)
	recipients, err := d.recipients(ctx, &job)
	cancel()
	if err != nil {
		reason := fmt.Sprintf("%s: resolve recipients: %v", job.typ, err)
		if d.ctx.Err() != nil {
			reason = fmt.Sprintf("%s: %s (recipients not resolved)", job.typ, reasonClosed)
		}
		g.log.Error("approval: cannot resolve notification recipients", "request", r.ID, "err", err)
		fail(reason)
	}
	for _, to := range recipients {
		n, err := d.build(job, to, now)
		for _, w := range d.workers {
			if !job.target.wants(w.name) {
				continue
			}
			// Recipients, channel names and errors come from outside the
			// gate: auditSafe keeps the event storable as it is hashed.
			prefix := fmt.Sprintf("%s to %s via %s: ", job.typ, to, w.name)
			if err != nil {
				g.log.Error("approval: notification failed", "request", r.ID, "recipient", to, "channel", w.name, "err", err)
				fail(prefix + err.Error())
				continue
			}
			if reason := w.push(delivery{n: n, refs: refs}); reason != "" {
				g.log.Error("approval: notification not queued", "request", r.ID, "recipient", to, "channel", w.name, "reason", reason)
				fail(prefix + reason)
			}
		}
	}
	d.audit(context.Background(), events)
}

// push queues dl on w, or returns why it could not.
func (w *worker) push(dl delivery) (reason string) {
	d := w.d
	d.mu.Lock()
	switch {
	case d.stopped:
		reason = reasonClosed
	case len(w.queue) >= d.limit:
		reason = fmt.Sprintf("channel queue full (%d notifications waiting); not sent", d.limit)
	default:
		w.queue = append(w.queue, dl)
	}
	d.mu.Unlock()
	if reason == "" {
		signal(w.wake)
	}
	return reason
}

// next takes the next delivery from w's queue, waiting for one. ok is
// false when the worker should exit; more says whether others wait.
func (w *worker) next() (dl delivery, more, ok bool) {
	d := w.d
	d.mu.Lock()
	defer d.mu.Unlock()
	for {
		if d.stopped {
			return delivery{}, false, false
		}
		if len(w.queue) > 0 {
			dl = w.queue[0]
			w.queue[0] = delivery{}
			w.queue = w.queue[1:]
			return dl, len(w.queue) > 0, true
		}
		if w.closing {
			return delivery{}, false, false
		}
		d.mu.Unlock()
		select {
		case <-w.wake:
		case <-d.ctx.Done():
		}
		d.mu.Lock()
	}
}

// run is the worker goroutine. Each outcome is audited: at once after a
// real Send, in batches for the sends a blocked channel fails fast.
func (w *worker) run() {
	defer close(w.done)
	var pending []AuditEvent
	for {
		dl, more, ok := w.next()
		if !ok {
			break
		}
		ev, called := w.send(dl)
		pending = append(pending, ev)
		if called || !more || len(pending) >= auditBatch {
			w.d.audit(context.Background(), pending)
			pending = nil // the store and the sink may keep the slice
		}
	}
	w.d.audit(context.Background(), pending)
}

// send delivers dl through the channel, unless the channel is blocked, and
// returns the audit event of the outcome and whether Send was called.
func (w *worker) send(dl delivery) (AuditEvent, bool) {
	d, g, n := w.d, w.d.g, dl.n
	var err error
	called := false
	if ok, until := w.brk.allow(g.now()); !ok {
		err = fmt.Errorf("channel blocked after %d consecutive sends that timed out; next probe at %s",
			blockAfter, until.UTC().Format(time.RFC3339))
	} else {
		called = true
		ctx, cancel := context.WithTimeout(d.ctx, d.timeout)
		_, err = callHost(w.host, ctx, "Send", func(ctx context.Context) (struct{}, error) {
			return struct{}{}, w.ch.Send(ctx, n)
		})
		cancel()
		switch {
		case err != nil && d.ctx.Err() != nil:
			err = fmt.Errorf("%s (%w)", reasonClosed, err)
		case w.brk.record(g.now(), err):
			g.log.Error("approval: channel blocked: its sends fail at once until a probe returns in time",
				"channel", w.name, "timeouts", w.brk.timeouts, "next_probe", w.brk.nextProbe, "err", err)
		}
	}
	ev := AuditEvent{RequestID: n.RequestID, Type: EventNotificationSent, Actor: SystemActor, Policies: dl.refs,
		Reason: fmt.Sprintf("%s to %s via %s", n.Type, n.Recipient, w.name), At: normalizeTime(g.now())}
	if err != nil {
		g.log.Error("approval: notification failed", "request", n.RequestID, "recipient", n.Recipient, "channel", w.name, "err", err)
		ev.Type = EventNotificationFailed
		ev.Reason += ": " + err.Error()
	}
	ev.Reason = auditSafe(ev.Reason, maxReasonBytes)
	return ev, called
}

// audit writes the dispatcher's events in batches, each bounded by
// auditTimeout and by ctx.
func (d *dispatcher) audit(ctx context.Context, events []AuditEvent) {
	for len(events) > 0 {
		batch := events[:min(len(events), auditBatch)]
		events = events[len(batch):]
		actx, cancel := context.WithTimeout(ctx, auditTimeout)
		err := d.g.appendAudit(actx, batch)
		cancel()
		if err != nil {
			d.g.log.Error("approval: cannot audit notification outcomes", "events", len(batch)+len(events),
				"request", batch[0].RequestID, "err", err)
			return
		}
	}
}

// close stops intake and waits for the queues to drain, or for ctx to end.
// Then it stops delivery, audits what was left in the queues, and gives
// the sends it interrupted closeGrace to audit their outcome.
func (d *dispatcher) close(ctx context.Context) error {
	d.mu.Lock()
	d.closing = true
	d.mu.Unlock()
	signal(d.wake)
	if d.wait(ctx.Done()) {
		d.cancel()
		return nil
	}

	d.mu.Lock()
	d.stopped = true
	jobs := d.jobs
	d.jobs = nil
	var left []delivery
	var via []string
	for _, w := range d.workers {
		for _, dl := range w.queue {
			left = append(left, dl)
			via = append(via, w.name)
		}
		w.queue = nil
	}
	d.mu.Unlock()
	d.cancel() // calls in flight return now; their outcome is audited by their goroutine

	now := normalizeTime(d.g.now())
	events := make([]AuditEvent, 0, len(jobs)+len(left))
	for _, j := range jobs {
		events = append(events, AuditEvent{RequestID: j.req.ID, Type: EventNotificationFailed, Actor: SystemActor,
			Policies: policyRefs(j.req.Policies), Reason: fmt.Sprintf("%s: %s (recipients not resolved)", j.typ, reasonClosed), At: now})
	}
	for i, dl := range left {
		events = append(events, AuditEvent{RequestID: dl.n.RequestID, Type: EventNotificationFailed, Actor: SystemActor,
			Policies: dl.refs, Reason: auditSafe(fmt.Sprintf("%s to %s via %s: %s", dl.n.Type, dl.n.Recipient, via[i], reasonClosed), maxReasonBytes), At: now})
	}
	d.g.log.Error("approval: gate closed before delivery; the undelivered are audited as "+string(EventNotificationFailed),
		"jobs", len(jobs), "notifications", len(left), "err", ctx.Err())
	gctx, cancel := context.WithTimeout(context.Background(), closeGrace)
	defer cancel()
	d.audit(gctx, events)
	d.wait(gctx.Done())
	return fmt.Errorf("approval: close: %d notifications and %d unresolved jobs left undelivered (audited): %w", len(left), len(jobs), ctx.Err())
}

// wait waits for the resolver and every worker to exit, or for stop. It
// reports whether they all exited.
func (d *dispatcher) wait(stop <-chan struct{}) bool {
	dones := []chan struct{}{d.done}
	for _, w := range d.workers {
		dones = append(dones, w.done)
	}
	for _, c := range dones {
		select {
		case <-c:
		case <-stop:
			return false
		}
	}
	return true
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
// through callHost and the breaker rule: one that hangs is blocked for
// notifications (not for decisions) until a probe returns in time.
func (d *resolver) members(ctx context.Context, a Approver) ([]string, error) {
	if a.Kind == KindUser {
		return []string{a.Name}, nil
	}
	g := d.g
	if g.dir == nil {
		return nil, fmt.Errorf("approver %s needs a Directory", a)
	}
	if ok, until := d.dir.allow(g.now()); !ok {
		return nil, fmt.Errorf("directory: %s: blocked after %d consecutive calls that timed out; next probe at %s",
			a, blockAfter, until.UTC().Format(time.RFC3339))
	}
	ms, err := callHost(g.dirHost, ctx, "Members", func(ctx context.Context) ([]string, error) {
		return g.dir.Members(ctx, a)
	})
	if d.ctx.Err() == nil && d.dir.record(g.now(), err) {
		g.log.Error("approval: directory blocked for notifications until a probe returns in time",
			"timeouts", d.dir.timeouts, "next_probe", d.dir.nextProbe, "err", err)
	}
	if err != nil {
		return nil, fmt.Errorf("directory: %s: %w", a, err)
	}
	return ms, nil
}

// build makes the notification for one recipient, with personal approve
// and deny links when the gate has a BaseURL and a signing key.
func (d *dispatcher) build(job notifyJob, to string, now time.Time) (Notification, error) {
	n := d.g.notification(job, to, now)
	return n, d.g.sign(&n, now)
}

// notification makes the notification of job for one recipient, without
// links.
func (g *Gate) notification(job notifyJob, to string, now time.Time) Notification {
	r := job.req
	n := Notification{
		ID: uuid.NewString(), Type: job.typ, RequestID: r.ID, Recipient: to, Status: r.Status,
		Policies: policyRefs(r.Policies), Reason: r.Reason, Deadline: r.Deadline, At: now,
	}
	n.ActionHash, n.PayloadHash = r.boundHashes()
	n.Note = job.target.Note
	n.OnBehalfOf = job.delegates[to]
	if r.Prior != nil {
		p := *r.Prior
		n.Prior = &p
	}
	keys := r.RedactKeys()
	n.Action, n.Redacted = r.Approved().Redact(keys)
	n.Edit = r.EditSummary(keys)
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
	if !n.Status.Open() || g.keys.signer == nil || n.Type == NotifyAlert {
		return nil
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
