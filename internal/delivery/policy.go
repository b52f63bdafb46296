package delivery

import (
	"math/rand/v2"
	"time"
)

// Policy is a lane's retry schedule. The zero value is not usable: the
// caller fills every field.
type Policy struct {
	// MaxAttempts bounds the attempts per message.
	MaxAttempts int
	// InitialInterval is the wait after the first failure.
	InitialInterval time.Duration
	// MaxInterval caps each wait.
	MaxInterval time.Duration
}

// jitter is the randomisation of each wait: ±50 %.
const jitter = 0.5

// Wait returns the wait after failed attempt number attempts (from 1): the
// InitialInterval doubled for each attempt after the first, capped at
// MaxInterval, randomised by ±50 % (so that receivers coming back are not
// met by every sender at once), and never shorter than retryAfter (a
// receiver's Retry-After, itself capped at MaxInterval).
func (p Policy) Wait(attempts int, retryAfter time.Duration) time.Duration {
	return max(randomize(p.interval(attempts), rand.Float64()), min(retryAfter, p.MaxInterval))
}

// interval is the wait after failed attempt number attempts, before
// jitter.
func (p Policy) interval(attempts int) time.Duration {
	d := p.InitialInterval
	for i := 1; i < attempts && d < p.MaxInterval; i++ {
		if d >= p.MaxInterval/2 {
			d = p.MaxInterval
		} else {
			d *= 2
		}
	}
	return d
}

// randomize spreads d uniformly over [d - jitter×d, d + jitter×d], by r
// in [0, 1).
func randomize(d time.Duration, r float64) time.Duration {
	delta := jitter * float64(d)
	lo, hi := float64(d)-delta, float64(d)+delta
	return time.Duration(lo + r*(hi-lo+1))
}
