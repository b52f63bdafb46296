package approvaltemporal

import (
	"context"
	"errors"
	"fmt"

	"github.com/signoff/approval"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
)

// The names Activities.Register registers Approve's activities under.
const (
	ActivityGuard  = "approval.Guard"
	ActivityStatus = "approval.Status"
	ActivityCancel = "approval.Cancel"
)

// The types of the non-retryable application errors this package returns
// (temporal.ApplicationError.Type), for a workflow to branch on.
const (
	// ErrTypeInvalid: the action or the options are invalid
	// (approval.ErrInvalidAction, approval.ErrUnsupported).
	ErrTypeInvalid = "approval.invalid"
	// ErrTypeNotApproved: Do did not run the action, because it is not
	// approved (pending again, denied, timed out, cancelled).
	ErrTypeNotApproved = "approval.not_approved"
	// ErrTypeAlreadyRan: Do did not run the action, because this step's
	// approval was used before (by an earlier attempt of the activity).
	ErrTypeAlreadyRan = "approval.already_ran"
)

// CancelActor is the actor Approve's Cancel activity cancels requests as.
const CancelActor = "temporal"

// ActivityRegistry is where Activities registers its activities:
// worker.Worker and testsuite.TestWorkflowEnvironment are ones.
type ActivityRegistry interface {
	RegisterActivityWithOptions(a any, options activity.RegisterOptions)
}

// Activities are Approve's activities: every call to the gate a workflow
// makes. A worker that runs workflows calling Approve registers them
// (Register), with the gate of its process. The zero value is not
// usable; it is safe for concurrent use.
type Activities struct {
	// Gate is the gate the activities ask. Required.
	Gate *approval.Gate
}

// Register registers the activities with r under ActivityGuard,
// ActivityStatus and ActivityCancel.
func (a *Activities) Register(r ActivityRegistry) {
	r.RegisterActivityWithOptions(a.Guard, activity.RegisterOptions{Name: ActivityGuard})
	r.RegisterActivityWithOptions(a.Status, activity.RegisterOptions{Name: ActivityStatus})
	r.RegisterActivityWithOptions(a.Cancel, activity.RegisterOptions{Name: ActivityCancel})
}

// Guard guards the action (see approval.Gate.Guard). Retries of it find
// the same request, by the action's IdempotencyKey. An approval the Guard
// consumes (the policy approved the action as it was created; or a retry
// found it approved) is reported with Result.Consumed.
func (a *Activities) Guard(ctx context.Context, act approval.Action) (Result, error) {
	res, err := a.Gate.Guard(ctx, act)
	if err != nil {
		return Result{}, activityError(err)
	}
	out := Result{Status: res.Status, RequestID: res.RequestID, Reason: res.Reason, Denial: res.Denial, Payload: res.Payload}
	switch res.Status {
	case approval.OutcomeApproved, approval.OutcomeModified:
		out.Consumed = res.RequestID != ""
	}
	return out, nil
}

// Status reads request id: approval.OutcomePending while it is open, the
// outcome it ended with otherwise (an approved request is
// OutcomeApproved, or OutcomeModified with the edited payload, until Do
// consumes it). It never changes the request.
func (a *Activities) Status(ctx context.Context, id string) (Result, error) {
	r, err := a.Gate.Get(ctx, id)
	if err != nil {
		return Result{}, activityError(err)
	}
	return statusOf(r), nil
}

func statusOf(r *approval.Request) Result {
	res := Result{RequestID: r.ID, Reason: r.Reason, Denial: r.Denial()}
	switch r.Status {
	case approval.StatusPending, approval.StatusEscalated:
		res.Status = approval.OutcomePending
	case approval.StatusApproved:
		res.Status = approval.OutcomeApproved
		if r.Edit != nil {
			res.Status, res.Payload = approval.OutcomeModified, r.Edit.Payload
		}
	case approval.StatusTimedOut:
		res.Status = approval.OutcomeTimedOut
	case approval.StatusCancelled:
		res.Status = approval.OutcomeCancelled
	case approval.StatusConsumed:
		res.Status = approval.OutcomeAlreadyRan
	case approval.StatusExpired:
		res.Status = outcomeExpired
	default:
		res.Status = approval.OutcomeDenied
	}
	return res
}

// CancelInput is the Cancel activity's input.
type CancelInput struct {
	// RequestID is the request to cancel.
	RequestID string `json:"request_id"`
	// Reason is recorded with the cancellation.
	Reason string `json:"reason,omitempty"`
}

// Cancel cancels the request as CancelActor and returns
// approval.OutcomeCancelled; a request that had already ended is left as
// it is, and its outcome returned (see Status).
func (a *Activities) Cancel(ctx context.Context, in CancelInput) (Result, error) {
	r, err := a.Gate.Cancel(ctx, in.RequestID, CancelActor, in.Reason)
	if errors.Is(err, approval.ErrNotPending) {
		return a.Status(ctx, in.RequestID)
	}
	if err != nil {
		return Result{}, activityError(err)
	}
	return statusOf(r), nil
}

// activityError makes err, from the gate, an activity's error: one that no
// retry can mend is non-retryable.
func activityError(err error) error {
	switch {
	case errors.Is(err, approval.ErrInvalidAction), errors.Is(err, approval.ErrUnsupported),
		errors.Is(err, approval.ErrNotFound), errors.Is(err, approval.ErrInvalidDecision):
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalid, err)
	}
	return fmt.Errorf("approvaltemporal: %w", err)
}
