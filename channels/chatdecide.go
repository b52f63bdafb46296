package channels

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/signoff/approval"
)

// chatDecider decides a chat button's click (Slack's, Discord's) for the
// approver the host mapped the clicking account to: a short-lived token
// minted for that approver alone, and Gate.Decide with the action hash
// the message showed, so every check applies as on the review page. It
// answers the person in the chat's own words: the channel gives its name
// and how it writes a request's name and ID.
type chatDecider struct {
	gate *approval.Gate
	// channel names the chat in logs ("slack"); config names its
	// configuration type ("SlackInteractionsConfig").
	channel, config string
	ttl             time.Duration
	// named writes a request's name and ID for an answer; escape makes
	// other text inert in the chat's markup.
	named  func(name, id string) string
	escape func(s string, max int) string
}

const chatInternalError = "The decision could not be recorded because of a server error. Try again, or use the review page."

// decide records approver's verdict v on request id, bound to the action
// hash shown, with reason, and returns what to tell them and whether the
// vote was recorded.
func (c chatDecider) decide(ctx context.Context, log *slog.Logger, id, approver string, v approval.Verdict, reason, shown string) (string, bool) {
	log = log.With("approver", approver)
	tok, err := c.gate.IssueToken(id, approver, v, c.ttl)
	if err != nil {
		if errors.Is(err, approval.ErrInvalidIdentity) {
			log.Error("channels: "+c.config+".UserID returned an ID that is not a valid identity; nothing decided", "err", err)
			return "Your account is not linked to a valid approver, so nothing was decided. Ask an administrator to check the link.", false
		}
		if errors.Is(err, approval.ErrInvalidDecision) {
			return "This message names no request this server knows, so nothing was decided.", false
		}
		log.Error("channels: cannot mint a decision token for a "+c.channel+" click", "err", err)
		return chatInternalError, false
	}
	req, err := c.gate.Decide(ctx, id, approval.Decision{Token: tok, Verdict: v, Reason: reason, ActionHash: shown})
	if err != nil {
		return c.refusal(ctx, log, id, err), false
	}
	log.Info("channels: decision via "+c.channel, "status", req.Status)
	what := c.named(req.Action.Name, req.ID)
	switch {
	case v == approval.VerdictApprove && req.Status == approval.StatusApproved:
		return "You approved " + what + ". The request is approved.", true
	case v == approval.VerdictApprove:
		return "Your approval of " + what + " is recorded. The request waits for further approvals.", true
	case req.Status == approval.StatusDenied:
		return "You denied " + what + ". The request is denied.", true
	default:
		return "Your denial of " + what + " is recorded. The request stays open until enough approvers deny it.", true
	}
}

// refusal tells the person why the gate refused their decision. The
// gate's error text stays in the log: it may name internals.
func (c chatDecider) refusal(ctx context.Context, log *slog.Logger, id string, err error) string {
	refused := func(answer string) string {
		log.Info("channels: "+c.channel+" decision refused", "err", err)
		return answer
	}
	switch {
	case errors.Is(err, approval.ErrSelfApproval):
		return refused("You requested this action, so you cannot decide it. Nothing was recorded.")
	case errors.Is(err, approval.ErrNotEligible):
		return refused("You are not an approver of this request, so nothing was recorded.")
	case errors.Is(err, approval.ErrAlreadyDecided):
		return refused("You have already decided this request; your earlier answer stands.")
	case errors.Is(err, approval.ErrActionChanged):
		return refused("Another approver edited the payload since this message was sent, so nothing was recorded. Open the review page to see what you would approve.")
	case errors.Is(err, approval.ErrNotPending):
		if req, gerr := c.gate.Get(ctx, id); gerr == nil {
			return refused("This request is no longer open for decisions (it is " + c.escape(string(req.Status), 40) + "), so nothing was recorded.")
		}
		return refused("This request is no longer open for decisions, so nothing was recorded.")
	case errors.Is(err, approval.ErrNotFound):
		return refused("This request no longer exists, so nothing was decided.")
	}
	log.Error("channels: "+c.channel+" decision failed", "err", err)
	return chatInternalError
}
