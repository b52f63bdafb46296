package approvaltemporal

import (
	"context"
	"errors"

	"github.com/signoff/approval"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
)

// Do runs fn, from the activity that carries out an action Approve
// approved, and consumes the approval: at most once per approval step.
// res is Approve's Result (approval.OutcomeApproved or OutcomeModified),
// passed to the activity.
//
// Do guards res.Action, the action exactly as Approve bound it, again. The
// approval is waiting to be used: the Guard consumes it and returns
// approved with its artifact, conditions and, for an edited payload, the
// payload to run with (see approval.Result), and Do runs fn with that
// Result; the request is then consumed and its key
// (res.Action.IdempotencyKey) remembers it. When Approve's own Guard
// consumed the approval (res.Consumed), the gate answers
// approval.OutcomeAlreadyRan for this very request instead: the first
// attempt of the activity runs fn with it.
//
// A later attempt of the activity finds the approval used and returns a
// non-retryable error of type ErrTypeAlreadyRan without running fn: the
// gate knows the action was let run, not whether it succeeded, so fn's
// failure is not retried by Temporal. Retry inside fn, or ask again
// under another Options.Step. An action that is not approved (its
// approval expired unused, after Policy.ApprovalTTL, and a new request
// is pending; or it was cancelled) is a non-retryable error of type
// ErrTypeNotApproved wrapping an *approval.NotApprovedError. fn's own
// error is returned as it is; a failure to reach the gate is retryable.
func Do(ctx context.Context, g *approval.Gate, res Result, fn func(ctx context.Context, res approval.Result) error) error {
	if res.Action.IdempotencyKey == "" {
		return temporal.NewNonRetryableApplicationError(errNotBound.Error(), ErrTypeInvalid, errNotBound)
	}
	got, err := g.Guard(ctx, res.Action)
	if err != nil {
		return activityError(err)
	}
	switch {
	case got.Status == approval.OutcomeApproved || got.Status == approval.OutcomeModified:
		return fn(ctx, got)
	case got.Status == approval.OutcomeAlreadyRan && res.Consumed && got.RequestID == res.RequestID && firstAttempt(ctx):
		got.Status, got.Payload = res.Status, res.Payload
		return fn(ctx, got)
	}
	na := &approval.NotApprovedError{Action: res.Action.Name, Result: got}
	if errors.Is(na, approval.ErrAlreadyRan) {
		return temporal.NewNonRetryableApplicationError(na.Error(), ErrTypeAlreadyRan, na)
	}
	return temporal.NewNonRetryableApplicationError(na.Error(), ErrTypeNotApproved, na)
}

func firstAttempt(ctx context.Context) bool {
	return activity.IsActivity(ctx) && activity.GetInfo(ctx).Attempt <= 1
}
