// What the Slack interactivity handler does after a click: posts within
// each response_url's budget, redraws of the message clicked, and the
// followers that redraw it once more when its request is resolved.

package channels

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/signoff/approval"
)

// Slack's limits on an interaction's response_url: "You can use a
// response_url up to 5 times within 30 minutes of receiving it"
// (https://api.slack.com/interactivity/handling#message_responses).
const (
	slackResponsePosts  = 5
	slackResponseWindow = 30 * time.Minute
	// slackDeadlineGrace is how long after a request's deadline its
	// follower still waits, for Gate.Run or Tick to time it out.
	slackDeadlineGrace = time.Minute
)

// errSlackBudget is a post the response_url's budget has no room for.
var errSlackBudget = errors.New("response_url budget spent")

// slackSlot is the budget of one response_url. Its mutex is held across
// each post, so that posts to one response_url go one after another, in
// the order they took it.
type slackSlot struct {
	mu    sync.Mutex
	first time.Time // when the handler first saw the response_url
	posts int       // posts made or attempted
	final bool      // a redraw of the resolved request was posted
}

// allow reports whether a post fits the budget at now, and counts it. A
// post that is not the outcome leaves the last one for the outcome,
// until that has been posted. s.mu is held.
func (s *slackSlot) allow(now time.Time, outcome bool) error {
	if now.Sub(s.first) >= slackResponseWindow {
		return fmt.Errorf("%w: its %s have passed", errSlackBudget, slackResponseWindow)
	}
	limit := slackResponsePosts
	if !outcome && !s.final {
		limit-- // kept for the outcome
	}
	if s.posts >= limit {
		return fmt.Errorf("%w: %d of %d posts made", errSlackBudget, s.posts, slackResponsePosts)
	}
	s.posts++
	return nil
}

// slackFollower keeps the response_urls' budgets and the messages being
// followed.
type slackFollower struct {
	max    int
	ctx    context.Context // ends with Close
	stop   context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	slots  map[string]*slackSlot   // by response_url
	pruned time.Time               // when slots was last pruned
	by     map[string]*slackFollow // by request ID and message
	closed bool
}

// slackFollow is one message followed: where to redraw it, and the Wait
// in progress, which reaim cancels to aim it at a fresher response_url.
type slackFollow struct {
	u      *url.URL
	slot   *slackSlot
	cancel context.CancelFunc
}

func (f *slackFollower) init(max int) {
	f.max = max
	f.ctx, f.stop = context.WithCancel(context.Background())
	f.slots = map[string]*slackSlot{}
	f.by = map[string]*slackFollow{}
}

// slot returns the budget of response_url raw, first seen at now if it is
// new. Budgets twice as old as Slack's window are dropped, at most once a
// minute, so memory holds an hour of clicks; a response_url that old is
// refused by Slack, and a click carrying it by MaxAge.
func (f *slackFollower) slot(raw string, now time.Time) *slackSlot {
	f.mu.Lock()
	defer f.mu.Unlock()
	if now.Sub(f.pruned) >= time.Minute || now.Before(f.pruned) {
		f.pruned = now
		for k, s := range f.slots {
			if now.Sub(s.first) >= 2*slackResponseWindow {
				delete(f.slots, k) // a holder keeps its pointer: the budget stays spent
			}
		}
	}
	s, ok := f.slots[raw]
	if !ok {
		s = &slackSlot{first: now}
		f.slots[raw] = s
	}
	return s
}

// reaim points the follower of message key, if there is one, at u.
func (f *slackFollower) reaim(key string, u *url.URL, slot *slackSlot) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fl, ok := f.by[key]; ok && fl.slot != slot {
		fl.u, fl.slot = u, slot
		if fl.cancel != nil {
			fl.cancel()
		}
	}
}

// Close stops following messages: the Waits end, nothing more is posted
// for them, and Close waits until their goroutines have returned or ctx
// ends (then it returns ctx's error). Clicks are still decided and
// answered after Close, and their messages redrawn once, but no longer
// followed. Close is safe to call more than once.
func (h *SlackInteractions) Close(ctx context.Context) error {
	f := &h.follow
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.stop()
	done := make(chan struct{})
	go func() {
		f.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("channels: slack interactions: close: %w", ctx.Err())
	}
}

// post posts body to u within slot's budget; outcome marks a redraw of
// the resolved request.
func (h *SlackInteractions) post(ctx context.Context, u *url.URL, slot *slackSlot, body []byte, outcome bool) error {
	slot.mu.Lock()
	defer slot.mu.Unlock()
	return h.postLocked(ctx, u, slot, body, outcome)
}

func (h *SlackInteractions) postLocked(ctx context.Context, u *url.URL, slot *slackSlot, body []byte, outcome bool) error {
	if err := slot.allow(h.now(), outcome); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, slackResponseTimeout)
	defer cancel()
	if err := h.respond(ctx, u, body); err != nil {
		return err
	}
	if outcome {
		slot.final = true
	}
	return nil
}

// slackReplace is a message that replaces the one clicked.
type slackReplace struct {
	ReplaceOriginal bool `json:"replace_original"`
	slackPayload
}

// redraw replaces the message at u with request id as it is now, and
// reports whether the request is still open. Once the outcome has been
// posted to u, a redraw of it is not repeated.
//
// With onlyOutcome (a follower's redraw) an open request is not redrawn:
// the message shows its buttons already.
func (h *SlackInteractions) redraw(ctx context.Context, u *url.URL, slot *slackSlot, id string, onlyOutcome bool) (open bool) {
	slot.mu.Lock()
	defer slot.mu.Unlock()
	// Read under the slot's lock: each redraw shows a state no older than
	// the one before it.
	r, err := h.gate.Get(ctx, id)
	if err != nil {
		h.log.Error("channels: cannot read the request to redraw its slack message", "request", id, "err", err)
		return false
	}
	open = r.Status.Open()
	if (!open && slot.final) || (open && onlyOutcome) {
		return open
	}
	typ := approval.NotifyRequested
	switch {
	case r.Status == approval.StatusTimedOut:
		typ = approval.NotifyTimedOut
	case !open:
		typ = approval.NotifyResolved
	}
	msg := slackMessage(h.gate.NotificationFor(r, typ), slackView{interactive: true, via: viaSlack(r)})
	body, err := json.Marshal(slackReplace{ReplaceOriginal: true, slackPayload: msg})
	if err != nil {
		h.log.Error("channels: cannot encode the redrawn slack message", "request", id, "err", err)
		return open
	}
	if err := h.postLocked(ctx, u, slot, body, !open); err != nil {
		h.log.Error("channels: cannot update the message through slack's response_url", "request", id, "host", u.Host, "err", err)
	}
	return open
}

// viaSlack says which of r's votes were cast by a click in Slack: the
// reason this package records for them begins "via Slack".
func viaSlack(r *approval.Request) func(string) string {
	return func(approver string) string {
		for _, v := range r.Votes {
			if v.Approver == approver && strings.HasPrefix(v.Reason, "via Slack (") {
				return "Slack"
			}
		}
		return ""
	}
}

// startFollowing follows message key of request id, redrawn at u, unless
// it is followed already (reaim has aimed it at u), MaxFollowed are, or
// the handler is closed.
func (h *SlackInteractions) startFollowing(key, id string, u *url.URL, slot *slackSlot) {
	f := &h.follow
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.by[key]; ok || f.closed {
		return
	}
	if len(f.by) >= f.max {
		h.log.Warn("channels: slack message not followed: MaxFollowed messages are", "request", id, "max", f.max)
		return
	}
	fl := &slackFollow{u: u, slot: slot}
	f.by[key] = fl
	f.wg.Add(1)
	go h.run(key, id, fl)
}

// run follows one message until its request is resolved, a minute past
// its deadline, or the end of its response_url's window, and redraws it
// with the outcome.
func (h *SlackInteractions) run(key, id string, fl *slackFollow) {
	f := &h.follow
	defer f.wg.Done()
	defer func() {
		f.mu.Lock()
		if f.by[key] == fl {
			delete(f.by, key)
		}
		f.mu.Unlock()
	}()
	defer func() {
		if p := recover(); p != nil {
			h.log.Error("channels: following a slack message panicked", "request", id, "panic", p)
		}
	}()
	var deadline time.Time
	if r, err := h.gate.Get(f.ctx, id); err == nil && !r.Deadline.IsZero() {
		deadline = r.Deadline.Add(slackDeadlineGrace)
	}
	for {
		f.mu.Lock()
		u, slot := fl.u, fl.slot
		until := slot.first.Add(slackResponseWindow)
		if !deadline.IsZero() && deadline.Before(until) {
			until = deadline
		}
		// until is on the handler's clock; the wait is in real time.
		ctx, cancel := context.WithTimeout(f.ctx, until.Sub(h.now()))
		fl.cancel = cancel
		f.mu.Unlock()
		_, err := h.gate.Wait(ctx, id)
		cancel()
		if f.ctx.Err() != nil {
			return // closed
		}
		f.mu.Lock()
		moved := fl.slot != slot
		if err == nil || !moved {
			// Done: a later click on the message follows it anew.
			delete(f.by, key)
		}
		f.mu.Unlock()
		switch {
		case err != nil && moved:
			continue // aimed at a fresher response_url
		case err != nil && !errors.Is(err, context.DeadlineExceeded):
			h.log.Error("channels: cannot follow the request of a slack message", "request", id, "err", err)
			return
		}
		// Resolved, or out of time: the outcome, if there is one now.
		ctx, cancel = context.WithTimeout(f.ctx, slackClickTimeout)
		open := h.redraw(ctx, u, slot, id, true)
		cancel()
		if open {
			h.log.Info("channels: slack message no longer followed: its deadline or its response_url's window passed", "request", id)
		}
		return
	}
}
