// Package testkit is what the tests of this module share and that needs
// nothing of package approval: a settable clock and a buffer safe for a
// logger's concurrent writes. It imports no package of this module, so
// that every test may use it, those inside package approval included.
// Fixtures that need package approval (gates, requests) are in package
// fixture.
//
// Only _test.go files import it.
package testkit

import (
	"bytes"
	"encoding/base64"
	"strings"
	"sync"
	"time"
)

// T0 is when a Clock from NewClock starts: 1 March 2026, 09:00 UTC.
var T0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// A Clock is a time source that moves only when told, for Config.Now and
// the like. The zero value reads the zero time; it is safe for concurrent
// use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock set to T0.
func NewClock() *Clock { return &Clock{t: T0} }

// Now returns the Clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the Clock by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Set sets the Clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// A Buffer is a bytes.Buffer safe for concurrent writes and reads, for
// the output of loggers and servers whose goroutines outlive a call. The
// zero value is an empty buffer.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p to the buffer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what has been written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Leaks reports whether s holds secret, plainly or in standard base64 at
// any of the three alignments a secret inside a longer encoded value can
// take: what a test of redaction must not find in an output.
func Leaks(s, secret string) bool {
	if strings.Contains(s, secret) {
		return true
	}
	for pad := range 3 {
		enc := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("x", pad) + secret))
		if strings.Contains(s, enc[4:len(enc)-4]) {
			return true
		}
	}
	return false
}
