// Package host calls host code (a Channel, the Directory, an AuditSink, a
// custom matcher) the way net/http calls a handler: a panic becomes an
// error, and a call that does not return before its context ends is
// abandoned, not waited for. Host code may panic, block or ignore its
// context; the gate stays up, and fails closed.
package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync/atomic"
)

var (
	// ErrPanic marks an error made from a panic in host code.
	ErrPanic = errors.New("panicked")
	// ErrAbandoned marks a host call that did not return before its
	// context ended and was left running, or one not started because too
	// many such calls are still running.
	ErrAbandoned = errors.New("did not return in time")
)

// maxAbandoned bounds the abandoned calls of one plug-in that may still be
// running. Beyond it, calls that would need a goroutine fail at once, so a
// plug-in that never returns costs a bounded number of goroutines; calls
// resume as soon as one of them returns.
const maxAbandoned = 100

// Plugin is one piece of host code, for the bookkeeping of Call. It is
// safe for concurrent use.
type Plugin struct {
	what string // for logs: `channel "slack"`, "directory", "audit sink"
	log  *slog.Logger
	// abandoned counts the calls given up on that have not returned yet.
	abandoned atomic.Int64
}

// New returns the Plugin what (for logs: `channel "slack"`, "directory"),
// logging to log.
func New(what string, log *slog.Logger) *Plugin { return &Plugin{what: what, log: log} }

// Call calls fn, the host's op, with ctx. A panic in fn is recovered
// and returned as an error wrapping ErrPanic. When ctx can end, fn runs on
// its own goroutine and Call returns at ctx's end whether or not fn
// has returned, with an error wrapping ErrAbandoned and ctx's error; fn is
// left to finish on its own. When ctx cannot end (ctx.Done() is nil), fn
// runs inline: no goroutine, and the caller has chosen to wait.
//
// fn escapes to the heap here; a hot path with a context that cannot end
// calls Recovered directly, so that its closure stays on the stack.
func Call[T any](p *Plugin, ctx context.Context, op string, fn func(context.Context) (T, error)) (T, error) {
	if ctx.Done() == nil {
		return Recovered(p, ctx, op, fn)
	}
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, fmt.Errorf("%s not called: %w", op, err)
	}
	if n := p.abandoned.Load(); n >= maxAbandoned {
		return zero, fmt.Errorf("%s not called: %d earlier calls %w and are still running", op, n, ErrAbandoned)
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	var state atomic.Int32 // 0 running, 1 returned, 2 abandoned
	go func() {
		v, err := Recovered(p, ctx, op, fn)
		if !state.CompareAndSwap(0, 1) {
			p.abandoned.Add(-1)
			return
		}
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
	}
	if !state.CompareAndSwap(0, 2) {
		r := <-done // it returned just now
		return r.v, r.err
	}
	n := p.abandoned.Add(1)
	p.log.Warn("approval: host code did not return before its context ended; abandoned",
		"plugin", p.what, "call", op, "abandoned_running", n, "err", context.Cause(ctx))
	return zero, fmt.Errorf("%s %w (%w); abandoned", op, ErrAbandoned, context.Cause(ctx))
}

// Recovered calls fn inline and turns a panic into an error wrapping
// ErrPanic. fn does not escape.
func Recovered[T any](p *Plugin, ctx context.Context, op string, fn func(context.Context) (T, error)) (v T, err error) {
	defer func() {
		if r := recover(); r != nil {
			var zero T
			v, err = zero, fmt.Errorf("%s %w: %v", op, ErrPanic, r)
			p.log.Error("approval: host code panicked; recovered", "plugin", p.what, "call", op,
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	return fn(ctx)
}

// TimedOut reports whether err is a host call that ran out of time: it was
// abandoned, or returned ctx's deadline error.
func TimedOut(err error) bool {
	return errors.Is(err, ErrAbandoned) || errors.Is(err, context.DeadlineExceeded)
}
