package delivery

import "time"

// Breaker rule: after BlockAfter consecutive calls that ran out of time,
// host code (a channel, a directory) is blocked; calls to it are refused,
// except one probe each ProbeEvery. A probe that returns in time (with or
// without an error) unblocks it: blocking is about hanging, and code that
// answers, even with an error, holds nobody up.
const (
	BlockAfter = 3
	ProbeEvery = time.Minute
)

// Breaker applies the breaker rule. The zero value is an unblocked
// breaker. It is not safe for concurrent use.
type Breaker struct {
	timeouts  int // consecutive calls that ran out of time
	blocked   bool
	nextProbe time.Time
}

// Allow reports whether a call may go ahead at now. When it returns false,
// until is when the next probe is allowed.
func (b *Breaker) Allow(now time.Time) (ok bool, until time.Time) {
	if !b.blocked || !now.Before(b.nextProbe) {
		return true, time.Time{}
	}
	return false, b.nextProbe
}

// Blocked reports whether the breaker is blocked (a call it allows is a
// probe).
func (b *Breaker) Blocked() bool { return b.blocked }

// Timeouts is the number of consecutive calls that ran out of time.
func (b *Breaker) Timeouts() int { return b.timeouts }

// NextProbe is when a blocked breaker allows its next call.
func (b *Breaker) NextProbe() time.Time { return b.nextProbe }

// Record notes the outcome of an allowed call at now, whether it ran out
// of time, and reports whether that blocked the breaker (newly or again,
// after a failed probe).
func (b *Breaker) Record(now time.Time, timedOut bool) (blocked bool) {
	if !timedOut {
		*b = Breaker{}
		return false
	}
	b.timeouts++
	if b.blocked || b.timeouts >= BlockAfter {
		b.blocked, b.nextProbe = true, now.Add(ProbeEvery)
		return true
	}
	return false
}
