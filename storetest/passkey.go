package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/testkit"
)

// runPasskeyTests checks the optional approval.Passkeys capability, on
// stores that have it.
func runPasskeyTests(t *testing.T, newStore func(t *testing.T) approval.Store) {
	passkeys := func(t *testing.T) (approval.Passkeys, approval.Store) {
		t.Helper()
		s := newStore(t)
		pks, ok := s.(approval.Passkeys)
		if !ok {
			t.Skip("the store does not implement approval.Passkeys")
		}
		return pks, s
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)
	newPasskey := func(owner string, created time.Time) *approval.Passkey {
		a := testkit.NewAuthenticator("ops.example.com", "https://ops.example.com")
		return &approval.Passkey{ID: a.CredentialID(), Owner: owner, Name: "laptop", Algorithm: approval.PasskeyES256,
			PublicKey: a.PublicKey(), RPID: "ops.example.com", CreatedAt: created}
	}
	registered := func(p *approval.Passkey) []approval.AuditEvent {
		return []approval.AuditEvent{{Type: approval.EventPasskeyRegistered, Actor: p.Owner, Reason: "passkey " + p.ID, At: p.CreatedAt}}
	}

	// CreatePasskey stores a passkey with its events; GetPasskey reads it
	// back exactly; a second create of the ID is ErrConflict and writes
	// nothing; ListPasskeys lists an owner's in the order created.
	t.Run("passkeys: create, get, list", func(t *testing.T) {
		t.Parallel()
		pks, s := passkeys(t)
		p := newPasskey("alice", at)
		ev := registered(p)
		require.NoError(t, pks.CreatePasskey(t.Context(), p, ev))
		require.NotZero(t, ev[0].Seq, "the store seals the events in place")
		got, err := pks.GetPasskey(t.Context(), p.ID)
		require.NoError(t, err)
		require.Equal(t, p, got)
		got.PublicKey[0] ^= 1
		again, err := pks.GetPasskey(t.Context(), p.ID)
		require.NoError(t, err)
		require.Equal(t, p.PublicKey, again.PublicKey, "the store returns copies")

		dup := *p
		dup.Owner = "mallory"
		err = pks.CreatePasskey(t.Context(), &dup, registered(&dup))
		require.ErrorIs(t, err, approval.ErrConflict)
		got, err = pks.GetPasskey(t.Context(), p.ID)
		require.NoError(t, err)
		require.Equal(t, "alice", got.Owner)

		second := newPasskey("alice", at.Add(time.Minute))
		require.NoError(t, pks.CreatePasskey(t.Context(), second, registered(second)))
		require.NoError(t, pks.CreatePasskey(t.Context(), newPasskey("bob", at), nil))
		list, err := pks.ListPasskeys(t.Context(), "alice")
		require.NoError(t, err)
		require.Equal(t, []string{p.ID, second.ID}, []string{list[0].ID, list[1].ID})
		require.Len(t, list, 2)
		none, err := pks.ListPasskeys(t.Context(), "nobody")
		require.NoError(t, err)
		require.Empty(t, none)

		_, err = pks.GetPasskey(t.Context(), "bm9uZQ")
		require.ErrorIs(t, err, approval.ErrNotFound)
		for _, odd := range oddText {
			_, err = pks.GetPasskey(t.Context(), odd)
			require.ErrorIs(t, err, approval.ErrNotFound)
		}
		page, err := s.ListAudit(t.Context(), approval.AuditQuery{Type: approval.EventPasskeyRegistered})
		require.NoError(t, err)
		require.Len(t, page.Events, 2, "the refused create appended nothing")
	})

	// RevokePasskey revokes once: of concurrent revokes exactly one
	// succeeds and appends its events; the others get ErrConflict; an
	// unknown ID is ErrNotFound.
	t.Run("passkeys: revoke once", func(t *testing.T) {
		t.Parallel()
		pks, s := passkeys(t)
		p := newPasskey("alice", at)
		require.NoError(t, pks.CreatePasskey(t.Context(), p, nil))
		_, err := pks.RevokePasskey(t.Context(), "bm9uZQ", at, "alice", nil)
		require.ErrorIs(t, err, approval.ErrNotFound)

		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Go(func() {
				ev := []approval.AuditEvent{{Type: approval.EventPasskeyRevoked, Actor: "alice", Reason: "lost", At: at.Add(time.Hour)}}
				_, errs[i] = pks.RevokePasskey(t.Context(), p.ID, at.Add(time.Hour), "alice", ev)
			})
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, approval.ErrConflict):
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}
		require.Equal(t, 1, ok)
		got, err := pks.GetPasskey(t.Context(), p.ID)
		require.NoError(t, err)
		require.Equal(t, at.Add(time.Hour), got.RevokedAt)
		require.Equal(t, "alice", got.RevokedBy)
		page, err := s.ListAudit(t.Context(), approval.AuditQuery{Type: approval.EventPasskeyRevoked})
		require.NoError(t, err)
		require.Len(t, page.Events, 1)
	})
}
