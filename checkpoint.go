package approval

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/signoff/approval/internal/canon"
)

// CheckpointContext prefixes the bytes a checkpoint signs, so that no
// other signature of the gate's key (a token's, an artifact's) verifies as
// a checkpoint's.
const CheckpointContext = "approval-audit-checkpoint-v1"

// AuditCheckpoint is a signature by a gate's key over one event of the
// trail: the head when the checkpoint was made.
//
// The hash chain alone shows an edit only to someone who kept a copy of
// a later hash: whoever can write the database can edit an event and
// recompute every hash after it (re-seal the chain), and the result
// verifies. A checkpoint names an event by sequence number and hash under
// a signature, so re-sealing past a checkpoint changes the hash it signed,
// and a matching new signature needs the gate's private key. VerifyAuditTrail
// checks every checkpoint it reads. Deleting the checkpoints as well, and
// re-sealing over the gap, still verifies: keep the head of a checkpoint
// outside the database (AuditHead, an external anchor) and check it with
// VerifyAuditOptions.Anchors, or the command's verify-audit -expect-head.
type AuditCheckpoint struct {
	// Seq is the sequence number of the event signed: the newest event of
	// the trail when the checkpoint was made (concurrent appends may come
	// between it and the checkpoint's own event).
	Seq int64 `json:"seq"`
	// Hash is that event's hash.
	Hash string `json:"hash"`
	// KeyID names the signing key: KeyID of its public key.
	KeyID string `json:"kid"`
	// Signature is the Ed25519 signature, base64url without padding, of
	// CheckpointContext, a newline, and the canonical JSON (RFC 8785) of
	// {"at", "hash", "kid", "seq"}, where at is the checkpoint event's
	// time in the form AuditEvent's hash uses.
	Signature string `json:"sig"`
}

// appendCanonical writes c as canonical JSON, keys in JCS order.
func (c *AuditCheckpoint) appendCanonical(b []byte) []byte {
	b = append(b, '{')
	b = c.appendHead(b)
	b = append(b, ',')
	b = canon.AppendKey(b, "sig")
	b = canon.AppendString(b, c.Signature)
	return append(b, '}')
}

// appendHead writes the "hash", "kid" and "seq" members of c, the part
// both its canonical form and its signed bytes hold.
func (c *AuditCheckpoint) appendHead(b []byte) []byte {
	b = canon.AppendKey(b, "hash")
	b = canon.AppendString(b, c.Hash)
	b = append(b, ',')
	b = canon.AppendKey(b, "kid")
	b = canon.AppendString(b, c.KeyID)
	b = append(b, ',')
	b = canon.AppendKey(b, "seq")
	return canon.AppendInt(b, c.Seq)
}

// checkpointSigned returns the bytes a checkpoint made at at signs.
func checkpointSigned(at time.Time, c *AuditCheckpoint) []byte {
	b := make([]byte, 0, 192)
	b = append(b, CheckpointContext...)
	b = append(b, '\n', '{')
	b = canon.AppendKey(b, "at")
	b = appendTime(b, at)
	b = append(b, ',')
	b = c.appendHead(b)
	return append(b, '}')
}

// verifyCheckpointSignature checks the signature of checkpoint event e
// with pub.
func verifyCheckpointSignature(e *AuditEvent, pub ed25519.PublicKey) bool {
	sig, err := base64.RawURLEncoding.DecodeString(e.Checkpoint.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return false
	}
	return ed25519.Verify(pub, checkpointSigned(e.At, e.Checkpoint), sig)
}

// AuditHead names one event of a trail by sequence number and hash. Kept
// outside the store (a file in write-once storage, a ticket, a second
// system), it is an external anchor: VerifyAuditOptions.Anchors, or
// verify-audit -expect-head, checks that the trail still holds the event,
// unchanged, which a trail that lost its newest events (or was rewritten
// and re-sealed) does not. The zero AuditHead is the head of an empty
// trail.
type AuditHead struct {
	// Seq is the sequence number of the newest event.
	Seq int64
	// Hash is that event's hash (hex SHA-256).
	Hash string
}

// String returns h as "SEQ:HASH", the form ParseAuditHead reads.
func (h AuditHead) String() string { return strconv.FormatInt(h.Seq, 10) + ":" + h.Hash }

// ParseAuditHead reads "SEQ:HASH" (AuditHead.String): a sequence number
// from 1 and a hex SHA-256. A malformed head is ErrInvalidHead.
func ParseAuditHead(s string) (AuditHead, error) {
	seq, hash, ok := strings.Cut(strings.TrimSpace(s), ":")
	n, err := strconv.ParseInt(seq, 10, 64)
	if !ok || err != nil || n < 1 || !isHexHash(hash) {
		return AuditHead{}, fmt.Errorf("approval: %w %.80q: want SEQ:HASH, a sequence number from 1 and 64 lowercase hex digits", ErrInvalidHead, s)
	}
	return AuditHead{Seq: n, Hash: hash}, nil
}

// isHexHash reports whether s is a hex SHA-256 as the trail writes them.
func isHexHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// lastEvent returns the newest event of the trail.
func (g *Gate) lastEvent(ctx context.Context) (AuditEvent, bool, error) {
	if t, ok := g.store.(AuditTail); ok {
		return t.LastAuditEvent(ctx)
	}
	var (
		last  AuditEvent
		found bool
		q     = AuditQuery{Limit: MaxPageSize}
	)
	for {
		page, err := g.store.ListAudit(ctx, q)
		if err != nil {
			return AuditEvent{}, false, err
		}
		if n := len(page.Events); n > 0 {
			last, found = page.Events[n-1], true
		}
		if page.Next == "" {
			return last, found, nil
		}
		q.Cursor = page.Next
	}
}

// Checkpoint signs the head of the audit trail with the gate's
// SigningKey and appends the signature as an audit.checkpoint event. It
// returns the head of that event: keep it outside the store, as an
// external anchor, and pass it to VerifyAuditOptions.Anchors (or
// verify-audit -expect-head) later. A gate without a SigningKey cannot
// sign: ErrUnsupported.
//
// A checkpoint vouches for the trail as the store held it when it was
// made; it does not verify it first (VerifyAuditTrail does, checkpoints
// included). Config.CheckpointInterval makes Tick checkpoint on its own.
func (g *Gate) Checkpoint(ctx context.Context) (AuditHead, error) {
	if g.keys.signer == nil {
		return AuditHead{}, fmt.Errorf("approval: checkpoint: %w: the gate has no SigningKey", ErrUnsupported)
	}
	last, _, err := g.lastEvent(ctx)
	if err != nil {
		return AuditHead{}, fmt.Errorf("approval: checkpoint: read the head: %w", err)
	}
	h, err := g.checkpointAfter(ctx, last)
	if err != nil {
		return AuditHead{}, fmt.Errorf("approval: checkpoint: %w", err)
	}
	return h, nil
}

// checkpointAfter signs head (the zero event for an empty trail) and
// appends the checkpoint.
func (g *Gate) checkpointAfter(ctx context.Context, head AuditEvent) (AuditHead, error) {
	now := normalizeTime(g.now())
	c := &AuditCheckpoint{Seq: head.Seq, Hash: head.Hash, KeyID: g.keys.signerKID}
	c.Signature = base64.RawURLEncoding.EncodeToString(ed25519.Sign(g.keys.signer, checkpointSigned(now, c)))
	ev := []AuditEvent{{Type: EventAuditCheckpoint, Actor: SystemActor, Checkpoint: c, At: now}}
	if err := g.appendAudit(ctx, ev); err != nil {
		return AuditHead{}, err
	}
	g.checkpointMu.Lock()
	g.checkpointed = now
	g.checkpointMu.Unlock()
	return AuditHead{Seq: ev[0].Seq, Hash: ev[0].Hash}, nil
}

// tickCheckpoint makes Tick's checkpoint once Config.CheckpointInterval
// has passed since this gate's last one, unless nothing was appended
// since the newest checkpoint (of any gate).
func (g *Gate) tickCheckpoint(ctx context.Context, now time.Time) error {
	if g.checkpointEvery <= 0 || g.keys.signer == nil {
		return nil
	}
	g.checkpointMu.Lock()
	due := now.Sub(g.checkpointed) >= g.checkpointEvery
	if due {
		// One Tick at a time makes it; a failed one is tried again at
		// the next interval.
		g.checkpointed = now
	}
	g.checkpointMu.Unlock()
	if !due {
		return nil
	}
	last, found, err := g.lastEvent(ctx)
	if err != nil {
		return fmt.Errorf("checkpoint: read the head: %w", err)
	}
	if found && last.Type == EventAuditCheckpoint {
		return nil
	}
	if _, err := g.checkpointAfter(ctx, last); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}
