package approval

import (
	"context"
	"crypto/ed25519"
	"time"
)

// Hooks into VerifyAuditTrail for verify_stream_test.go.

// SetProgressInterval sets the least time between two calls of
// VerifyAuditOptions.Progress and returns a function that restores it.
// Tests that call it must not run in parallel.
func SetProgressInterval(d time.Duration) (restore func()) {
	was := progressInterval
	progressInterval = d
	return func() { progressInterval = was }
}

// VerifyAuditTrailPeak is VerifyAuditTrail with keys the store's events
// need none of, and also returns the most requests whose events it
// waited for at once.
func VerifyAuditTrailPeak(ctx context.Context, store Store, opts VerifyAuditOptions) (AuditReport, int, error) {
	keys := map[string]ed25519.PublicKey{}
	for _, k := range opts.Keys {
		keys[KeyID(k)] = k
	}
	v, err := verify(ctx, store, &opts, keys)
	return v.report, v.owedPeak, err
}
