package approval

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gowebpki/jcs"
	"github.com/stretchr/testify/require"
)

var auditStart = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// auditChain builds a sealed trail of n events, each with every field set.
func auditChain(n int) []AuditEvent {
	types := []EventType{EventRequestCreated, EventNotificationSent, EventDecisionApprove, EventDecisionDeny, EventRequestDenied}
	verdicts := []Verdict{"", "", VerdictApprove, VerdictDeny, ""}
	events := make([]AuditEvent, n)
	var prevSeq int64
	prevHash := ""
	for i := range events {
		e := AuditEvent{
			RequestID:  fmt.Sprintf("req_%d", i/3),
			Type:       types[i%len(types)],
			Actor:      fmt.Sprintf("user-%d", i),
			OnBehalfOf: fmt.Sprintf("boss-%d", i),
			Policies:   []PolicyRef{{Name: "spend", Hash: "aa"}, {Name: "wires", Hash: fmt.Sprintf("%02x", i)}},
			Verdict:    verdicts[i%len(verdicts)],
			Reason:     fmt.Sprintf("reason %d", i),
			// Nanoseconds and a zone, which Seal normalizes away.
			At: auditStart.Add(time.Duration(i)*time.Second + 123456789).In(time.FixedZone("X", 3600)),
		}
		e.Seal(prevSeq, prevHash)
		prevSeq, prevHash = e.Seq, e.Hash
		events[i] = e
	}
	return events
}

func TestAuditSeal(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 10, 0, 0, 123456789, time.FixedZone("CET", 3600))
	e := AuditEvent{Type: EventRequestCreated, RequestID: "req_1", At: at}
	e.Seal(0, "")
	require.Equal(t, int64(1), e.Seq)
	require.Empty(t, e.PrevHash)
	require.Equal(t, time.UTC, e.At.Location())
	require.True(t, e.At.Equal(at.Truncate(time.Microsecond)), "UTC, truncated to microseconds: %v", e.At)
	require.Len(t, e.Hash, 64)
	require.Equal(t, e.ComputeHash(), e.Hash)

	next := AuditEvent{Type: EventRequestApproved, RequestID: "req_1", At: at}
	next.Seal(e.Seq, e.Hash)
	require.Equal(t, int64(2), next.Seq)
	require.Equal(t, e.Hash, next.PrevHash)
	require.NotEqual(t, e.Hash, next.Hash)

	// The hash covers Seq and PrevHash: the same content elsewhere in a
	// chain hashes differently.
	moved := AuditEvent{Type: EventRequestCreated, RequestID: "req_1", At: at}
	moved.Seal(7, e.Hash)
	require.NotEqual(t, e.Hash, moved.Hash)

	// The hash ignores the Hash field and the time zone of At.
	c := e
	c.Hash = "something"
	c.At = e.At.In(time.FixedZone("X", -7*3600))
	require.Equal(t, e.Hash, c.ComputeHash())

	// A zero time stays zero.
	z := AuditEvent{Type: EventRequestCreated}
	z.Seal(0, "")
	require.True(t, z.At.IsZero())
}

func requireChainError(t *testing.T, err error, seq int64, msgAndArgs ...any) {
	t.Helper()
	require.Error(t, err, msgAndArgs...)
	require.ErrorIs(t, err, ErrAuditChain, msgAndArgs...)
	var ce *AuditChainError
	require.True(t, errors.As(err, &ce), msgAndArgs...)
	label := ""
	if len(msgAndArgs) > 0 {
		label = fmt.Sprintf(msgAndArgs[0].(string), msgAndArgs[1:]...)
	}
	require.Equal(t, seq, ce.Seq, "%s: %v", label, err)
}

func TestAuditVerifyChain(t *testing.T) {
	t.Parallel()
	chain := auditChain(10)
	require.NoError(t, VerifyAuditChain(chain))
	require.NoError(t, VerifyAuditChain(nil))
	require.NoError(t, VerifyAuditChain(chain[:1]))

	// A page from the middle of a trail verifies on its own.
	require.NoError(t, VerifyAuditChain(chain[4:]))
	require.NoError(t, VerifyAuditChain(chain[3:7]))
	require.NoError(t, VerifyAuditChain(chain[9:]))
	// ...but not if its first event was edited.
	page := slices.Clone(chain[4:])
	page[0].Reason = "edited"
	requireChainError(t, VerifyAuditChain(page), 5)
}

func TestAuditVerifyChainDetectsEdits(t *testing.T) {
	t.Parallel()
	edits := map[string]func(e *AuditEvent){
		"reason":         func(e *AuditEvent) { e.Reason += "!" },
		"reason cleared": func(e *AuditEvent) { e.Reason = "" },
		"actor":          func(e *AuditEvent) { e.Actor = "mallory" },
		"on behalf of":   func(e *AuditEvent) { e.OnBehalfOf = "" },
		"request ID":     func(e *AuditEvent) { e.RequestID = "req_other" },
		"type":           func(e *AuditEvent) { e.Type = EventRequestApproved },
		"verdict":        func(e *AuditEvent) { e.Verdict = VerdictApprove + "d" },
		"at":             func(e *AuditEvent) { e.At = e.At.Add(time.Microsecond) },
		"at by a day":    func(e *AuditEvent) { e.At = e.At.AddDate(0, 0, -1) },
		"policy hash":    func(e *AuditEvent) { e.Policies = []PolicyRef{e.Policies[0], {Name: e.Policies[1].Name, Hash: "ff"}} },
		"policy name": func(e *AuditEvent) {
			e.Policies = []PolicyRef{e.Policies[0], {Name: "other", Hash: e.Policies[1].Hash}}
		},
		"policy removed":     func(e *AuditEvent) { e.Policies = e.Policies[:1] },
		"policies reordered": func(e *AuditEvent) { e.Policies = []PolicyRef{e.Policies[1], e.Policies[0]} },
		"policies cleared":   func(e *AuditEvent) { e.Policies = nil },
		"hash":               func(e *AuditEvent) { e.Hash = e.Hash[:63] + "0" },
	}
	for k := int64(1); k <= 10; k++ {
		for name, edit := range edits {
			chain := auditChain(10)
			e := &chain[k-1]
			before := *e
			edit(e)
			if e.Hash == before.Hash && e.ComputeHash() == before.Hash {
				continue // the edit happened to change nothing (e.g. hash already ended in 0)
			}
			requireChainError(t, VerifyAuditChain(chain), k, "edit %s of event %d", name, k)
		}
	}

	// Editing Seq or PrevHash breaks the link at that event.
	for k := int64(2); k <= 10; k++ {
		chain := auditChain(10)
		chain[k-1].PrevHash = chain[k-1].Hash
		requireChainError(t, VerifyAuditChain(chain), k, "prev_hash of %d", k)

		chain = auditChain(10)
		chain[k-1].Seq += 100
		requireChainError(t, VerifyAuditChain(chain), k, "seq of %d", k)
	}
	// Re-sealing an edited event moves the break to the next link.
	chain := auditChain(10)
	chain[4].Reason = "covered up"
	chain[4].Hash = chain[4].ComputeHash()
	requireChainError(t, VerifyAuditChain(chain), 6)
}

func TestAuditVerifyChainDetectsDeletion(t *testing.T) {
	t.Parallel()
	for k := 2; k <= 9; k++ {
		chain := auditChain(10)
		chain = slices.Delete(chain, k-1, k)
		requireChainError(t, VerifyAuditChain(chain), int64(k), "deleting event %d", k)
	}
	// By design (see VerifyAuditChain's doc) losing the oldest events looks
	// like a page that starts later, and losing the newest like a shorter
	// trail; callers compare the first Seq and the last Hash themselves.
	require.NoError(t, VerifyAuditChain(auditChain(10)[1:]))
	require.NoError(t, VerifyAuditChain(auditChain(10)[:9]))

	// Deleting a run of events reports the first missing one.
	chain := slices.Delete(auditChain(10), 3, 6)
	requireChainError(t, VerifyAuditChain(chain), 4)
}

func TestAuditVerifyChainDetectsReordering(t *testing.T) {
	t.Parallel()
	for k := 1; k <= 9; k++ {
		chain := auditChain(10)
		chain[k-1], chain[k] = chain[k], chain[k-1]
		requireChainError(t, VerifyAuditChain(chain), int64(k), "swapping events %d and %d", k, k+1)
	}
	// A duplicated event is named, not the number after it.
	chain := auditChain(10)
	chain = slices.Insert(chain, 5, chain[4])
	requireChainError(t, VerifyAuditChain(chain), 5)

	chain = auditChain(10)
	slices.Reverse(chain)
	require.Error(t, VerifyAuditChain(chain))
}

func TestAuditVerifyChainFirstEvent(t *testing.T) {
	t.Parallel()
	chain := auditChain(3)
	chain[0].PrevHash = "00"
	requireChainError(t, VerifyAuditChain(chain), 1)

	// Even when its hash is recomputed to match.
	chain[0].Hash = chain[0].ComputeHash()
	requireChainError(t, VerifyAuditChain(chain), 1)
	require.Contains(t, VerifyAuditChain(chain).Error(), "seq 1")
}

// auditMap is the JSON object an event's hash is defined over: the event
// as encoding/json writes it (omitempty included), without "hash", with the
// time in the fixed microsecond layout.
func auditMap(t *testing.T, e AuditEvent) map[string]any {
	t.Helper()
	raw, err := json.Marshal(e)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	delete(m, "hash")
	m["at"] = e.At.UTC().Format("2006-01-02T15:04:05.000000Z07:00")
	return m
}

func TestAuditCanonicalIsRFC8785(t *testing.T) {
	t.Parallel()
	tricky := "q\"b\\c\x00\x1f\x7f<>&\u2028é€😀\ufb33"
	events := append(auditChain(5),
		AuditEvent{Seq: 1, Type: EventRequestCreated, At: auditStart},
		AuditEvent{Seq: 2, Type: EventRequestCreated, PrevHash: "ab", Policies: []PolicyRef{}},
		AuditEvent{
			Seq: 1 << 40, RequestID: tricky, Type: EventType(tricky), Actor: tricky, OnBehalfOf: tricky,
			Policies: []PolicyRef{{Name: tricky, Hash: tricky}, {}}, Verdict: Verdict(tricky), Reason: tricky,
			At: time.Date(1999, 12, 31, 23, 59, 59, 999999000, time.UTC), PrevHash: tricky, Hash: "ignored",
		},
	)
	for i, e := range events {
		raw, err := json.Marshal(auditMap(t, e))
		require.NoError(t, err)
		want, err := jcs.Transform(raw)
		require.NoError(t, err)
		require.Equal(t, string(want), string(e.appendCanonical(nil)), "event %d", i)

		sum := sha256.Sum256(want)
		require.Equal(t, hex.EncodeToString(sum[:]), e.ComputeHash(), "event %d", i)
	}
}

// TestAuditCanonicalGolden pins the encoding: stored trails must keep
// verifying after an upgrade.
func TestAuditCanonicalGolden(t *testing.T) {
	t.Parallel()
	e := AuditEvent{
		Seq: 3, RequestID: "req_1", Type: EventDecisionApprove, Actor: "bob",
		Policies: []PolicyRef{{Name: "spend", Hash: "ab"}}, Verdict: VerdictApprove, Reason: "ok",
		At: time.Date(2026, 3, 1, 9, 0, 0, 5000, time.UTC), PrevHash: "cd",
	}
	require.Equal(t, `{"actor":"bob","at":"2026-03-01T09:00:00.000005Z","policies":[{"hash":"ab","name":"spend"}],`+
		`"prev_hash":"cd","reason":"ok","request_id":"req_1","seq":3,"type":"decision.approve","verdict":"approve"}`,
		string(e.appendCanonical(nil)))
}

func TestAuditComputeHashConcurrent(t *testing.T) {
	t.Parallel()
	chain := auditChain(10)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				for i := range chain {
					if chain[i].ComputeHash() != chain[i].Hash {
						t.Errorf("event %d: hash changed under concurrency", i+1)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}
