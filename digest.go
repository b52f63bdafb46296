package approval

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/signoff/approval/internal/host"
)

// Digests (DeliveryConfig.DigestWindow). An ask to a person with a digest
// window on a channel is written to the outbox due at the end of the
// window, as any delivery (expand); the claim that finds one due gathers
// the person's other due deliveries of the channel with a second claim
// for that recipient alone (gather), and sends those that may wait as one
// NotifyDigest, each item signed for the recipient (sendDigest). Each
// gathered message is settled, and audited, as its own delivery, with the
// digest's outcome. Everything waits in the outbox, so a restart loses
// nothing: an unsettled claim is claimed again when its lease ends.

// maxDigestItems bounds the notifications one digest gathers; more due
// at once go in the next digest, at the next claim.
const maxDigestItems = 100

// digester is the gate's digest configuration.
type digester struct {
	window func(channel, recipient string) time.Duration
	host   *host.Plugin
}

// due returns when a delivery of type typ to recipient through channel,
// asked for at asked (its notice's creation) and made at now, is due: the
// end of the digest window asked falls in, or now if that has passed
// (the notice waited for its recipients), or now without a window.
func (d *digester) due(typ NotificationType, urgent bool, channel, recipient string, asked, now time.Time) time.Time {
	if w := d.windowOf(typ, urgent, channel, recipient); w > 0 {
		if end := asked.Truncate(w).Add(w); end.After(now) {
			return end
		}
	}
	return now
}

// windowOf is the digest window of a delivery, 0 for none: one that asks,
// under no urgent policy, to a person the host gives a window.
func (d *digester) windowOf(typ NotificationType, urgent bool, channel, recipient string) time.Duration {
	if d == nil || urgent || !typ.Digestible() {
		return 0
	}
	w, err := host.Recovered(d.host, context.Background(), "DigestWindow", func(context.Context) (time.Duration, error) {
		return d.window(channel, recipient), nil
	})
	if err != nil || w < 0 {
		return 0
	}
	return w
}

// mayWait reports whether claimed delivery m may go in a digest, and the
// policies its notification names, which its audit event names.
func (d *digester) mayWait(m *OutboxMessage) (bool, []PolicyRef) {
	if d == nil || m.Channel == "" || m.Recipient == "" || !m.Type.Digestible() { // a notice, a Pager's, or not an ask
		return false, nil
	}
	var head struct {
		Urgent   bool        `json:"urgent"`
		Policies []PolicyRef `json:"policies"`
	}
	if json.Unmarshal(m.Body, &head) != nil {
		return false, nil // sent alone, where its decoding error is reported
	}
	return d.windowOf(m.Type, head.Urgent, m.Channel, m.Recipient) > 0, head.Policies
}

// gather groups the deliveries of one claim of lane: those that may wait
// become one claimed digest per recipient, with the recipient's other
// due deliveries of the lane claimed in; the others stay alone.
func (h *outboxHandler) gather(ctx context.Context, lane string, msgs []OutboxMessage, lease time.Duration) []*claimed {
	out := make([]*claimed, 0, len(msgs))
	byRecipient := map[string]*claimed{}
	add := func(m OutboxMessage) {
		wait, refs := h.digests.mayWait(&m)
		if !wait {
			out = append(out, &claimed{m: m})
			return
		}
		c := byRecipient[m.Recipient]
		if c == nil {
			c = &claimed{m: m}
			byRecipient[m.Recipient] = c
			out = append(out, c)
		}
		c.members = append(c.members, m)
		c.memberRefs = append(c.memberRefs, refs)
		for _, r := range refs {
			if !slices.Contains(c.refs, r) {
				c.refs = append(c.refs, r) // the digest's, for its observation
			}
		}
	}
	for _, m := range msgs {
		add(m)
	}
	for recipient, c := range byRecipient {
		if len(c.members) >= maxDigestItems {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, settleTimeout)
		more, err := h.ob.ClaimOutbox(cctx, OutboxClaim{Owner: h.owner, Channel: lane, Recipient: recipient,
			Now: normalizeTime(h.g.now()), Lease: lease, Limit: maxDigestItems - len(c.members)})
		cancel()
		if err != nil && ctx.Err() == nil {
			h.g.log.Error("approval: cannot claim a digest's other notifications; they go in the next", "channel", lane, "err", err)
		}
		for _, m := range more {
			add(m)
		}
	}
	for _, c := range byRecipient {
		// The claim's attempt count is the most any member had, so the
		// backoff after a failure is never shorter than a member's.
		for _, m := range c.members {
			if m.Attempts > c.m.Attempts {
				c.m = m
			}
		}
		if len(c.members) == 1 {
			c.members, c.memberRefs = nil, nil // one alone goes as itself
		}
	}
	return out
}

// sendDigest sends the members of c as one NotifyDigest, each item with
// the status its request has now and its links signed for the recipient.
func (h *outboxHandler) sendDigest(ctx context.Context, ch *namedChannel, c *claimed, attempt int) error {
	now := normalizeTime(h.g.now())
	d := Notification{ID: digestID(c.members), Type: NotifyDigest, Recipient: c.m.Recipient, Status: StatusPending,
		At: now, Attempt: attempt, Digest: make([]Notification, 0, len(c.members))}
	for i := range c.members {
		var n Notification
		if err := json.Unmarshal(c.members[i].Body, &n); err != nil {
			return notSent{fmt.Errorf("digest item %s: %w", c.members[i].ID, err)}
		}
		if r, err := h.g.store.Get(ctx, n.RequestID); err == nil {
			n.Status = r.Status // decided since: shown so, with no decision links
		}
		n.Attempt = attempt
		if err := h.g.sign(&n, now); err != nil {
			return notSent{err}
		}
		d.Digest = append(d.Digest, n)
	}
	slices.SortStableFunc(d.Digest, func(a, b Notification) int { return a.At.Compare(b.At) })
	_, err := host.Call(ch.host, ctx, "Send", func(ctx context.Context) (struct{}, error) {
		return struct{}{}, ch.ch.Send(ctx, d)
	})
	return err
}

// digestID is the ID of the digest of members: the same at every attempt
// with the same members, for receivers to deduplicate on.
func digestID(members []OutboxMessage) string {
	ids := make([]string, len(members))
	for i := range members {
		ids[i] = members[i].ID
	}
	slices.Sort(ids)
	sum := sha256.Sum256([]byte(strings.Join(ids, "\n")))
	return "digest-" + hex.EncodeToString(sum[:16])
}
