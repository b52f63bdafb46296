package signin_test

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/memstore"
	"github.com/signoff/approval/signin"
)

// TestGroupDirectoryFromSignIn: with Config.Groups, a sign-in's group
// claims make the person a member for the gate, beside the base
// directory's members, until TTL after the sign-in; a later sign-in
// without the group takes it away.
func TestGroupDirectoryFromSignIn(t *testing.T) {
	t.Parallel()
	groups := &signin.GroupDirectory{Base: approval.StaticDirectory{Groups: map[string][]string{"finance": {"bob"}}}, TTL: time.Hour}
	var e *env
	e = newEnv(t, func(c *signin.Config) {
		c.Groups = groups
		groups.Now = func() time.Time { return e.clock.Now() }
	})
	ctx := context.Background()
	finance := approval.Group("finance")

	in, err := groups.IsMember(ctx, finance, "alice@example.com")
	require.NoError(t, err)
	require.False(t, in, "before she signs in, only the base directory answers")
	members, err := groups.Members(ctx, finance)
	require.NoError(t, err)
	require.Equal(t, []string{"bob"}, members)

	resp := e.signIn("", nil) // the fake provider sends groups finance and ops
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body(resp))
	in, err = groups.IsMember(ctx, finance, "Alice@Example.com")
	require.NoError(t, err)
	require.True(t, in, "her sign-in's claims, compared in canonical form")
	members, err = groups.Members(ctx, finance)
	require.NoError(t, err)
	require.Equal(t, []string{"alice@example.com", "bob"}, members)

	// The gate counts her as the group's member: she may decide.
	_, priv, err := approval.GenerateKeys()
	require.NoError(t, err)
	g, err := approval.New(approval.Config{Store: memstore.New(), SigningKey: priv, Directory: groups, Now: e.clock.Now,
		Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	defer g.Close(ctx)
	require.NoError(t, g.SetPolicy("payments", approval.Policy{Match: approval.Name("pay"),
		Approvers: []approval.Approver{finance}, RequiredApprovals: 1}))
	res, err := g.Guard(ctx, approval.Action{Name: "pay", RequestedBy: "dave"})
	require.NoError(t, err)
	req, err := g.Get(ctx, res.RequestID)
	require.NoError(t, err)
	require.NoError(t, g.CanDecide(ctx, req, "alice@example.com"))

	// A sign-in's claims count for TTL.
	e.clock.Advance(time.Hour)
	in, err = groups.IsMember(ctx, finance, "alice@example.com")
	require.NoError(t, err)
	require.False(t, in)
	require.Error(t, g.CanDecide(ctx, req, "alice@example.com"))

	// A later sign-in without the group takes it away at once.
	groups.Learn("alice@example.com", []string{"finance"})
	groups.Learn("alice@example.com", []string{"ops"})
	in, err = groups.IsMember(ctx, finance, "alice@example.com")
	require.NoError(t, err)
	require.False(t, in)

	_, err = signin.New(ctx, signin.Config{Issuer: e.op.srv.URL, ClientID: clientID, RedirectURL: appURL + "/auth/callback",
		SessionKeys: [][]byte{key(0)}, Groups: &signin.GroupDirectory{}, HTTPClient: e.op.srv.Client()})
	require.ErrorContains(t, err, "GroupsClaim", "Groups without the claim that names them")
}
