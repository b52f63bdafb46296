package approval

import (
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/signoff/approval/internal/limit"

	"github.com/signoff/approval/internal/text"
)

// Denial is the reason for a denial in a form a program acts on: an agent
// that gets one back from Guard (Result.Denial) learns whether asking
// again can help, rather than asking again at once. An approver gives it
// with a deny (Decision.Denial); the free-text Decision.Reason stays for
// people.
type Denial struct {
	// Code is the kind of refusal, short and stable, in letters, digits,
	// '-', '_' and '.': "too-broad", "unsafe", "needs-context",
	// "out-of-hours". Codes are the host's vocabulary; the gate only
	// checks their form.
	Code string `json:"code"`
	// Retry says whether asking again can help.
	Retry Retry `json:"retry"`
	// Hint tells the requester what would be approved instead ("limit it
	// to the staging database"). Optional.
	Hint string `json:"hint,omitempty"`
	// RetryAt, with RetryLater, is the earliest time asking again can
	// help, when it is known (a rate limit's next free slot, see
	// AskLimit). Zero: not known.
	RetryAt time.Time `json:"retry_at,omitzero"`
}

// Retry is a denial's advice on asking again.
type Retry string

// Retry advice.
const (
	// RetryNever: do not ask again for this action, changed or not.
	RetryNever Retry = "never"
	// RetryChanged: the action as asked will not be approved; a changed
	// one (see Hint) may be. Guard of the identical action returns this
	// denial while the denial hold lasts (Config.DenialHold).
	RetryChanged Retry = "changed"
	// RetryLater: the same action may be asked again later, once the
	// denial hold ends.
	RetryLater Retry = "later"
)

// maxDenialHint bounds Denial.Hint.
const maxDenialHint = 1 << 10

func (d *Denial) check() error {
	if d.Code == "" || len(d.Code) > 64 || !limit.IsKey(d.Code) {
		return fmt.Errorf("%w: denial code %q (want 1 to 64 letters, digits, '-', '_' or '.')", ErrInvalidDecision, text.Clip(d.Code, 64))
	}
	switch d.Retry {
	case RetryNever, RetryChanged, RetryLater:
	default:
		return fmt.Errorf("%w: denial retry %q (want never, changed or later)", ErrInvalidDecision, text.Clip(string(d.Retry), 32))
	}
	if !d.RetryAt.IsZero() && d.Retry != RetryLater {
		return fmt.Errorf("%w: denial retry_at needs retry later", ErrInvalidDecision)
	}
	if len(d.Hint) > maxDenialHint || !utf8.ValidString(d.Hint) {
		return fmt.Errorf("%w: denial hint must be valid UTF-8 of at most %d bytes", ErrInvalidDecision, maxDenialHint)
	}
	return nil
}

// String is the denial as the audit trail writes it.
func (d *Denial) String() string {
	s := "code " + d.Code + ", retry " + string(d.Retry)
	if !d.RetryAt.IsZero() {
		s += " at " + d.RetryAt.UTC().Format(time.RFC3339)
	}
	if d.Hint != "" {
		s += ", hint: " + d.Hint
	}
	return s
}

// Denial returns the structured reason of the vote that denied r, or nil
// if r was not denied by a person or the approver gave none.
func (r *Request) Denial() *Denial {
	if r.Status != StatusDenied {
		return nil
	}
	for i := len(r.Votes) - 1; i >= 0; i-- {
		if v := &r.Votes[i]; v.Verdict == VerdictDeny {
			if v.Denial == nil {
				return nil
			}
			d := *v.Denial
			return &d
		}
	}
	return nil
}
