package approvaltemporal

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/signoff/approval"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// SignalName is the name of the signal that wakes a workflow waiting in
// Approve: the Notifier sends it, carrying a Signal, when the request
// resolves.
const SignalName = "approval.resolved"

// Signal is the payload of SignalName. It only wakes the workflow: the
// workflow reads the request's status through an activity before it
// believes anything, so a stray or forged signal cannot approve an action.
type Signal struct {
	// RequestID is the request that resolved.
	RequestID string `json:"request_id"`
	// Outcome is how it resolved: "approved", "denied", "timed_out" or
	// "cancelled".
	Outcome string `json:"outcome"`
}

// The keys of Action.Metadata that Approve sets, so that the Notifier
// finds the workflow a request belongs to. Approve overwrites them.
const (
	MetadataWorkflowID = "temporal.workflow_id"
	MetadataRunID      = "temporal.run_id"
	MetadataStep       = "temporal.step"
)

// Defaults of Options.
const (
	DefaultPollInterval    = 15 * time.Minute
	DefaultActivityTimeout = 30 * time.Second
)

// Options tune Approve. The zero value is usable.
type Options struct {
	// Step names the approval step within the workflow run; with the
	// workflow ID and run ID it makes the request's IdempotencyKey, so a
	// retried activity or a replayed workflow finds the same request. Two
	// approvals of the same action in one run (in a loop) need two steps.
	// Defaults to the action's Name.
	Step string
	// Timeout bounds the workflow's wait for people, by workflow time: when
	// it passes, Approve cancels the request and returns
	// approval.OutcomeTimedOut. It is the workflow's own limit, beside the
	// policy's Timeout, which the gate's Tick applies (and which Approve
	// reports as approval.OutcomeTimedOut too). An approval the workflow
	// has not read yet when it passes is cancelled too. Zero waits as
	// long as the request is open.
	Timeout time.Duration
	// PollInterval is how often the waiting workflow reads the request's
	// status through an activity, in case the Notifier's signal never
	// came (its process crashed between the store's commit and the
	// signal, or no Notifier heard the resolution). Each poll adds about
	// eight events to the workflow's history (a timer, an activity, a
	// workflow task), and Temporal bounds a history at 51,200 events: a
	// wait of 30 days at the default is some 23,000. Defaults to 15m.
	PollInterval time.Duration
	// ActivityOptions are the options of Approve's activities (Guard,
	// Status, Cancel): each is a short store round trip. Zero
	// StartToCloseTimeout and ScheduleToCloseTimeout default to a
	// StartToCloseTimeout of 30s; the RetryPolicy defaults to Temporal's.
	ActivityOptions workflow.ActivityOptions
}

// Result is what came of an approval step. Every way a request can end is
// a Status, not an error: Approve returns an error only when it could not
// find out (an activity failed for good, an invalid action, the workflow
// was cancelled).
type Result struct {
	// Status is the outcome: approval.OutcomeApproved or OutcomeModified
	// (run the action, through Do, in an activity), OutcomeDenied,
	// OutcomeTimedOut (the policy's timeout or Options.Timeout),
	// OutcomeCancelled, or OutcomeAlreadyRan (this step's approval was
	// already used: Approve was called twice with one Step).
	Status approval.Outcome `json:"status"`
	// RequestID is the request; empty when no policy matched the action.
	RequestID string `json:"request_id,omitempty"`
	// Reason explains the status ("quorum met", "denied by bob: ...").
	Reason string `json:"reason,omitempty"`
	// Denial is the reviewer's structured denial, with OutcomeDenied; nil
	// when none was given.
	Denial *approval.Denial `json:"denial,omitempty"`
	// Payload, with OutcomeModified, is the payload the reviewers
	// approved in place of the one asked for.
	Payload []byte `json:"payload,omitempty"`
	// Action is the action as Approve guarded it, with its
	// IdempotencyKey and metadata: pass it, with the Result, to the
	// activity that runs it (see Do).
	Action approval.Action `json:"action"`
	// Consumed says that the approval was used by Approve's own Guard
	// (the policy approved it as it was created, or a retried Guard
	// activity found it approved): Do then runs the action on its first
	// attempt without finding an approval to consume.
	Consumed bool `json:"consumed,omitempty"`
}

// Approve asks the gate whether action a may run, from workflow code, and
// waits for people to answer when they must. See the package doc for the
// whole design.
//
// It binds a to the workflow run (MetadataWorkflowID, MetadataRunID,
// MetadataStep; RunID, StepID; an IdempotencyKey made of the three) and
// guards it in an activity. Approved at once, denied, or already run:
// Approve returns. Pending: the workflow waits for the Notifier's signal
// (SignalName), reading the request's status through an activity when a
// signal for it arrives and every Options.PollInterval; an approval that
// expired unused before the workflow saw it is asked for again. When
// Options.Timeout passes first, or the workflow is cancelled, Approve
// cancels the request (through a disconnected context when cancelled).
//
// Approve does no I/O in workflow code and reads no clock but workflow
// time: a replay makes no request.
func Approve(ctx workflow.Context, a approval.Action, opts Options) (Result, error) {
	step := opts.Step
	if step == "" {
		step = a.Name
	}
	if step == "" {
		return Result{}, temporal.NewNonRetryableApplicationError("approvaltemporal: the action has no Name and Options.Step is empty", ErrTypeInvalid, nil)
	}
	info := workflow.GetInfo(ctx)
	a = Bind(a, info.WorkflowExecution.ID, info.WorkflowExecution.RunID, step)
	actx := workflow.WithActivityOptions(ctx, activityOptions(opts.ActivityOptions))
	poll := opts.PollInterval
	if poll <= 0 {
		poll = DefaultPollInterval
	}

	res, err := guard(actx, a)
	if err != nil || res.Status != approval.OutcomePending {
		return res, err
	}

	signals := workflow.GetSignalChannel(ctx, SignalName)
	var deadline workflow.Future
	if opts.Timeout > 0 {
		deadline = workflow.NewTimer(ctx, opts.Timeout)
	}
	var (
		pollTimer workflow.Future
		stopPoll  workflow.CancelFunc
		cancelled bool
		timedOut  bool
		mustRead  bool
	)
	for {
		if pollTimer == nil {
			var pctx workflow.Context
			pctx, stopPoll = workflow.WithCancel(ctx)
			pollTimer = workflow.NewTimer(pctx, poll)
		}
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(signals, func(c workflow.ReceiveChannel, _ bool) {
			var s Signal
			c.Receive(ctx, &s)
			// A late signal for an earlier step's request is ignored.
			mustRead = s.RequestID == res.RequestID
		})
		sel.AddFuture(pollTimer, func(workflow.Future) { mustRead, pollTimer = true, nil })
		if deadline != nil {
			sel.AddFuture(deadline, func(workflow.Future) { timedOut = true })
		}
		sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) { cancelled = true })
		sel.Select(ctx)

		switch {
		case cancelled:
			dctx, _ := workflow.NewDisconnectedContext(actx)
			_, _ = cancel(dctx, res.RequestID, "the workflow was cancelled")
			return res, ctx.Err()
		case timedOut:
			reason := fmt.Sprintf("no decision within the workflow's timeout of %s", opts.Timeout)
			r, err := cancel(actx, res.RequestID, reason)
			if err != nil {
				return res, err
			}
			if r.Status == approval.OutcomeCancelled || r.Status == outcomeExpired {
				r.Status, r.Reason = approval.OutcomeTimedOut, reason
			}
			r.Action = a
			return r, nil
		case !mustRead:
			continue
		}
		mustRead = false
		if pollTimer != nil {
			stopPoll()
			pollTimer = nil
		}
		r, err := status(actx, res.RequestID)
		if err != nil {
			return res, err
		}
		switch {
		case r.Status == approval.OutcomePending:
			continue
		case r.Status == outcomeExpired:
			// Approved, but the approval lapsed before the workflow saw
			// it: the key is free again, so ask again.
			if res, err = guard(actx, a); err != nil || res.Status != approval.OutcomePending {
				return res, err
			}
			continue
		}
		r.Action = a
		return r, nil
	}
}

// outcomeExpired is the Status activity's answer for an approval that
// expired unused; Approve never returns it.
const outcomeExpired approval.Outcome = "expired"

func guard(ctx workflow.Context, a approval.Action) (Result, error) {
	var res Result
	if err := workflow.ExecuteActivity(ctx, ActivityGuard, a).Get(ctx, &res); err != nil {
		return Result{Status: approval.OutcomeDenied}, err
	}
	res.Action = a
	return res, nil
}

func status(ctx workflow.Context, id string) (Result, error) {
	var res Result
	err := workflow.ExecuteActivity(ctx, ActivityStatus, id).Get(ctx, &res)
	return res, err
}

func cancel(ctx workflow.Context, id, reason string) (Result, error) {
	var res Result
	err := workflow.ExecuteActivity(ctx, ActivityCancel, CancelInput{RequestID: id, Reason: reason}).Get(ctx, &res)
	return res, err
}

func activityOptions(o workflow.ActivityOptions) workflow.ActivityOptions {
	if o.StartToCloseTimeout <= 0 && o.ScheduleToCloseTimeout <= 0 {
		o.StartToCloseTimeout = DefaultActivityTimeout
	}
	return o
}

// Bind returns a copy of a bound to step of the workflow run (workflowID,
// runID), as Approve guards it: MetadataWorkflowID, MetadataRunID and
// MetadataStep set, RunID and StepID set, and an IdempotencyKey
// "temporal:" followed by the three (or their SHA-256, for a key longer
// than approval.MaxIdempotencyKeyBytes). It is deterministic, so a
// replayed workflow binds the same action.
func Bind(a approval.Action, workflowID, runID, step string) approval.Action {
	md := make(map[string]string, len(a.Metadata)+3)
	maps.Copy(md, a.Metadata)
	md[MetadataWorkflowID], md[MetadataRunID], md[MetadataStep] = workflowID, runID, step
	a.Metadata = md
	a.RunID, a.StepID = runID, step
	key := "temporal:" + workflowID + "/" + runID + "/" + step
	if len(key) > approval.MaxIdempotencyKeyBytes {
		sum := sha256.Sum256([]byte(workflowID + "\x00" + runID + "\x00" + step))
		key = "temporal:sha256:" + hex.EncodeToString(sum[:])
	}
	a.IdempotencyKey = key
	return a
}

// workflowOf returns the workflow run a request was made by, from its
// action's metadata; ok is false for a request Approve did not make.
func workflowOf(a *approval.Action) (workflowID, runID string, ok bool) {
	workflowID, runID = a.Metadata[MetadataWorkflowID], a.Metadata[MetadataRunID]
	return workflowID, runID, workflowID != ""
}

// errNotBound is returned when Do is given an action Approve did not bind.
var errNotBound = errors.New("approvaltemporal: the action has no IdempotencyKey: pass Result.Action from Approve")
