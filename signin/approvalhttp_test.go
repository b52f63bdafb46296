package signin_test

import (
	"context"
	"log/slog"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/approvalhttp"
	"github.com/signoff/approval/memstore"
	"github.com/signoff/approval/signin"
)

// TestIdentityInApprovalHTTP: OIDC.Identity as approvalhttp's
// Options.Identity: a valid session reads the inbox; a tampered, expired or
// foreign cookie is answered 401, as no cookie is.
func TestIdentityInApprovalHTTP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	sc := e.session()
	_, priv, err := approval.GenerateKeys()
	require.NoError(t, err)
	gate, err := approval.New(approval.Config{Store: memstore.New(), SigningKey: priv, Now: e.clock.Now, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = gate.Close(context.Background()) })
	h, err := approvalhttp.New(gate, approvalhttp.Options{Identity: e.o.Identity, Now: e.clock.Now, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	status := func(c *http.Cookie) int {
		t.Helper()
		return serve(h, get("/api/approvals?awaiting=me", c)).StatusCode
	}
	require.Equal(t, http.StatusOK, status(sc))
	require.Equal(t, http.StatusUnauthorized, status(nil))
	tampered := *sc
	tampered.Value = flip(sc.Value, 10)
	require.Equal(t, http.StatusUnauthorized, status(&tampered))
	other := newEnv(t, func(c *signin.Config) { c.SessionKeys = [][]byte{key(9)} })
	other.clock.Set(e.clock.Now())
	require.Equal(t, http.StatusUnauthorized, status(other.session()), "a cookie signed with another key")
	e.clock.Advance(signin.DefaultSessionLifetime)
	require.Equal(t, http.StatusUnauthorized, status(sc), "expired")
}
