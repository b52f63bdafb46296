// Package approvaltemporal is an approval step for Temporal workflows
// (go.temporal.io/sdk): a workflow asks the gate whether an action may
// run, waits durably for people to decide, and runs the action once,
// consuming the approval.
//
// # The workflow
//
// Approve is called from workflow code. It guards the action in an
// activity; if people must decide, the workflow waits (for days, across
// worker restarts) until the request resolves, and returns a Result:
//
//	func Payout(ctx workflow.Context, p Payout) error {
//		res, err := approvaltemporal.Approve(ctx, approval.Action{
//			Name: "wire-transfer", RequestedBy: "payouts-workflow",
//			Cost:    &approval.Cost{Amount: p.Amount, Currency: "USD"},
//			Payload: p.JSON(),
//		}, approvaltemporal.Options{Timeout: 72 * time.Hour})
//		if err != nil {
//			return err // the gate could not be asked, or the workflow was cancelled
//		}
//		switch res.Status {
//		case approval.OutcomeApproved, approval.OutcomeModified:
//			actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
//			return workflow.ExecuteActivity(actx, "SendWire", res).Get(ctx, nil)
//		case approval.OutcomeDenied:
//			return notifyRequester(ctx, res.Reason, res.Denial) // res.Denial: the reviewer's structured denial
//		default: // OutcomeTimedOut, OutcomeCancelled, OutcomeAlreadyRan
//			return nil
//		}
//	}
//
// Every way a request ends is a Result.Status, a value: approved,
// modified (approved with a reviewer's payload), denied (with
// Result.Denial), timed out (the policy's Timeout, applied by the gate's
// Tick, or Options.Timeout, the workflow's own limit, after which Approve
// cancels the request), cancelled (Gate.Cancel), or already ran (this
// step's approval was used before). Approve returns an error only when it
// could not find out: an activity failed for good (an invalid action is
// a non-retryable error of type ErrTypeInvalid), or the workflow was
// cancelled (Approve then cancels the request, in a disconnected context).
//
// # Running the approved action: Do
//
// The action runs in an activity of its own, which consumes the approval
// with Do: Do guards Result.Action (the action exactly as Approve bound
// it) again, which, for an approved request, returns approved with the
// signed artifact and consumes the approval, and runs the function with
// that approval.Result:
//
//	func (w *Wires) SendWire(ctx context.Context, res approvaltemporal.Result) error {
//		return approvaltemporal.Do(ctx, w.Gate, res, func(ctx context.Context, r approval.Result) error {
//			return w.bank.Send(ctx, r.Payload, r.Artifact) // r.Payload: set when a reviewer edited it
//		})
//	}
//
// The approval is used once: a later attempt of the activity finds it
// used (approval.OutcomeAlreadyRan, by the key) and fails with a
// non-retryable error of type ErrTypeAlreadyRan without running the
// function, since the gate knows the action was let run, not whether it
// succeeded. Retry inside the function when the bank call is idempotent.
// An approval expires unused after the policy's ApprovalTTL (default
// 1h): run the action soon after Approve returns.
//
// # Idempotency and determinism
//
// Approve binds the action to its step (Bind): the workflow ID, run ID
// and Options.Step (default: the action's Name) go in Action.Metadata
// (MetadataWorkflowID, MetadataRunID, MetadataStep), RunID and StepID,
// and make the action's IdempotencyKey ("temporal:<workflow ID>/<run
// ID>/<step>"). So:
//
//   - a retried Guard activity finds the request its first attempt made
//     (the store keeps one live request per key), and a workflow replayed
//     from history runs no activity at all: all gate I/O happens in
//     activities, and workflow code reads no clock but workflow.Now;
//   - a Guard activity retried after the request was approved consumes
//     the approval itself; it says so (Result.Consumed), and Do then runs
//     the action on its first attempt (the same holds when a policy
//     approves the action as it is created);
//   - once the approval was used, the key answers "already ran" for the
//     gate's IdempotencyWindow (default 24h): neither a retry nor a second
//     Approve with the same Step asks people again;
//   - two workflows with the same action are two steps: each has its own
//     request, and each approval runs only its own workflow's action.
//     (Without the binding the store would give them one request, and one
//     approval would let only one of them run.) A new run (continue-as-new,
//     reset) is a new step too.
//
// The key needs a store that implements approval.IdempotencyKeys
// (memstore and sqlstore do).
//
// # What wakes the workflow
//
// A waiting workflow wakes on the signal SignalName, which a Notifier
// sends when the request resolves, and then reads the request's status in
// an activity (the signal is a wake-up, never the answer). The Notifier
// is the gate's approval.Observer: on each ObserveResolved observation of
// a request Approve made, it signals the workflow run named in the
// request's metadata. A gate observes its own process's resolutions
// (Decide, Cancel, Tick's timeouts), so every process whose gate resolves
// requests runs a Notifier: on replicas sharing a PostgreSQL store, every
// replica; each resolution happens on exactly one of them, which signals
// it.
//
// Signals are durable once Temporal accepted them: a worker that is down
// gets them when it comes back. If the Notifier's process crashed between
// the store's commit and the signal, or could not reach Temporal, the
// workflow's poll catches it: every Options.PollInterval (default 15m) of
// workflow time, a timer fires and the workflow reads the request's status
// in a cheap activity.
//
// # The worker
//
// The process that runs the worker registers Approve's activities with
// its gate, and runs the Notifier as that gate's observer:
//
//	c, err := client.Dial(client.Options{HostPort: "localhost:7233"})
//	notifier := approvaltemporal.NewNotifier(c, approvaltemporal.NotifierOptions{})
//	gate, err := approval.New(approval.Config{Store: store, SigningKey: priv, Directory: dir, Observer: notifier})
//	notifier.Attach(gate)
//	go gate.Run(ctx, time.Second) // policy timeouts, expiry
//
//	w := worker.New(c, "payments", worker.Options{})
//	(&approvaltemporal.Activities{Gate: gate}).Register(w)
//	w.RegisterWorkflow(Payout)
//	w.RegisterActivityWithOptions((&Wires{Gate: gate}).SendWire, activity.RegisterOptions{Name: "SendWire"})
//	err = w.Run(worker.InterruptCh())
//
// The reviewers' side (approvalhttp's pages, or Gate.Decide) may run in
// other processes sharing the store; each runs a Notifier too.
package approvaltemporal
