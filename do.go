package approval

import (
	"context"
	"fmt"
	"time"
)

// NotApprovedError is Do's error when the function did not run: the
// action is not approved, or (ErrAlreadyRan) it ran before under its
// IdempotencyKey. Its Result says where the request stands (Status,
// RequestID, Reason, and Denial for a person's structured denial). It
// wraps ErrPending, ErrDenied, ErrTimedOut, ErrCancelled or ErrAlreadyRan.
type NotApprovedError struct {
	// Action is the name of the action that did not run.
	Action string
	// Result is the gate's answer for it.
	Result Result
}

func (e *NotApprovedError) Error() string {
	status := string(e.Result.Status)
	if e.Result.Status == OutcomeAlreadyRan {
		status = "already ran"
	}
	msg := fmt.Sprintf("approval: %s: %s", e.Action, status)
	if e.Result.RequestID != "" {
		msg += " (request " + e.Result.RequestID + ")"
	}
	if e.Result.Reason != "" {
		msg += ": " + e.Result.Reason
	}
	if d := e.Result.Denial; d != nil {
		msg += " (" + d.String() + ")"
	}
	return msg
}

func (e *NotApprovedError) Unwrap() error {
	switch e.Result.Status {
	case OutcomePending:
		return ErrPending
	case OutcomeTimedOut:
		return ErrTimedOut
	case OutcomeCancelled:
		return ErrCancelled
	case OutcomeAlreadyRan:
		return ErrAlreadyRan
	}
	return ErrDenied
}

// DoOptions tune Do.
type DoOptions struct {
	// Wait bounds how long Do waits for people to answer a pending
	// action. 0 returns at once with ErrPending (the caller polls, or is
	// resumed, and calls Do again with the same action).
	Wait time.Duration
}

// Do runs fn once action a is approved, at most once per approval.
//
// It guards a. Approved (or modified, see OutcomeModified): it runs fn
// with the Result, which carries the conditions the approvers set and,
// when they edited the payload, the payload to run with instead of a's;
// Do returns fn's error as it is. Pending: with opts.Wait, Do waits (see
// Gate.Wait) up to that long for an answer, then guards a again, which
// consumes the approval exactly once: of concurrent identical calls, one
// runs fn and the others wait for a further approval. Otherwise, and when
// the wait ends unanswered, Do returns a *NotApprovedError wrapping
// ErrPending with the request's ID. A denial, a timeout or a
// cancellation returns a *NotApprovedError wrapping ErrDenied,
// ErrTimedOut or ErrCancelled, with the reviewer's reason and Denial. An
// action that already ran under its IdempotencyKey (OutcomeAlreadyRan)
// returns a *NotApprovedError wrapping ErrAlreadyRan, with the earlier
// request's ID and artifact in its Result: fn does not run again.
//
// Retries of the same call (the same action, payload included) reuse one
// request; an action with other arguments is a request of its own, and
// never runs on another's approval. If ctx ends while Do waits, it
// returns ctx's error and leaves the request as it is; fn never runs after
// ctx ended. Any other failure is returned as is, and fn does not run.
func Do(ctx context.Context, g *Gate, a Action, opts DoOptions, fn func(ctx context.Context, res Result) error) (Result, error) {
	wctx := ctx
	if opts.Wait > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, opts.Wait)
		defer cancel()
	}
	for {
		res, err := g.Guard(ctx, a)
		if err != nil {
			return res, err
		}
		switch res.Status {
		case OutcomeApproved, OutcomeModified:
			if err := ctx.Err(); err != nil {
				// Consumed, but the caller is gone: the audit trail shows
				// the consumption, and the function does not run late.
				return res, fmt.Errorf("approval: %s: %w", a.Name, err)
			}
			return res, fn(ctx, res)
		case OutcomePending:
		default:
			return res, &NotApprovedError{Action: a.Name, Result: res}
		}
		if opts.Wait <= 0 {
			return res, &NotApprovedError{Action: a.Name, Result: res}
		}
		r, err := g.Wait(wctx, res.RequestID)
		switch {
		case ctx.Err() != nil:
			return res, fmt.Errorf("approval: %s: waiting for %s: %w", a.Name, res.RequestID, ctx.Err())
		case err != nil && wctx.Err() != nil:
			return res, &NotApprovedError{Action: a.Name, Result: res}
		case err != nil:
			return res, err
		}
		switch r.Status {
		case StatusDenied, StatusTimedOut, StatusCancelled:
			res = Result{Status: outcomeOf(r.Status), RequestID: r.ID, Reason: r.Reason, Denial: r.Denial()}
			return res, &NotApprovedError{Action: a.Name, Result: res}
		}
		// Approved: the next Guard consumes it. Consumed or expired (by a
		// concurrent identical call, or too late): the next Guard asks
		// again.
	}
}
