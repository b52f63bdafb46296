package approvaltemporal

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/signoff/approval"
)

// Signaler sends a signal to a workflow run: client.Client is one.
type Signaler interface {
	SignalWorkflow(ctx context.Context, workflowID, runID, signalName string, arg any) error
}

// DefaultSignalTimeout is the default NotifierOptions.Timeout.
const DefaultSignalTimeout = 10 * time.Second

// NotifierOptions tune a Notifier. The zero value is usable.
type NotifierOptions struct {
	// Next, if not nil, hears every observation after the Notifier (an
	// approvalotel observer, say): a gate has one Config.Observer.
	// Defaults to none.
	Next approval.Observer
	// Timeout bounds each request read and signal. Defaults to 10s.
	Timeout time.Duration
	// Logger logs signals that failed. Defaults to slog.Default().
	Logger *slog.Logger
}

// Notifier is an approval.Observer that wakes the workflow waiting in
// Approve when its request resolves: on each ObserveResolved observation
// it reads the request, and if Approve made it (its action names a
// workflow run, MetadataWorkflowID) signals that run with SignalName and
// a Signal.
//
// A gate observes only its own process's resolutions: run a Notifier as
// the Config.Observer of every gate that decides, cancels or ticks
// requests (every replica sharing a PostgreSQL store), and each
// resolution is signalled once, by the process that made it. A signal
// lost on the way (the process crashed after the store's commit) is
// caught by Approve's poll (Options.PollInterval).
//
// Observations come one at a time on the gate's observer goroutine, so a
// slow Temporal server delays later signals, never a Guard or a
// decision. Create it with NewNotifier and Attach the gate. It is safe
// for concurrent use.
type Notifier struct {
	client Signaler
	opts   NotifierOptions
	gate   atomic.Pointer[approval.Gate]
}

// NewNotifier returns a Notifier that signals through c. Give it to
// approval.New as Config.Observer, then Attach the gate New returned.
func NewNotifier(c Signaler, opts NotifierOptions) *Notifier {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultSignalTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Notifier{client: c, opts: opts}
}

// Attach gives n the gate whose resolutions it signals, the gate n
// observes. Until then n signals nothing (Approve's poll catches those
// resolutions).
func (n *Notifier) Attach(g *approval.Gate) { n.gate.Store(g) }

// Observe implements approval.Observer.
func (n *Notifier) Observe(ctx context.Context, o approval.Observation) {
	if o.Kind == approval.ObserveResolved {
		n.signal(o)
	}
	if n.opts.Next != nil {
		n.opts.Next.Observe(ctx, o)
	}
}

func (n *Notifier) signal(o approval.Observation) {
	g := n.gate.Load()
	if g == nil {
		n.opts.Logger.Warn("approvaltemporal: a request resolved before Notifier.Attach; the workflow's poll will see it", "request", o.RequestID)
		return
	}
	// The observation's context may have ended (see approval.Observer).
	ctx, cancel := context.WithTimeout(context.Background(), n.opts.Timeout)
	defer cancel()
	r, err := g.Get(ctx, o.RequestID)
	if err != nil {
		n.opts.Logger.Warn("approvaltemporal: cannot read a resolved request; the workflow's poll will see it", "request", o.RequestID, "err", err)
		return
	}
	wid, rid, ok := workflowOf(&r.Action)
	if !ok {
		return
	}
	err = n.client.SignalWorkflow(ctx, wid, rid, SignalName, Signal{RequestID: r.ID, Outcome: o.Outcome})
	if err != nil {
		// Often a workflow that no longer waits (it timed out, or was
		// approved at once): nothing is lost.
		n.opts.Logger.Info("approvaltemporal: could not signal the workflow", "request", r.ID, "workflow_id", wid, "run_id", rid, "err", err)
	}
}
