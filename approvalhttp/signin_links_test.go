package approvalhttp_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/approvalhttp"
)

// TestSignInLinks: with Options.SignIn and SignOut, every page a reviewer
// is signed in on links to sign out beside their name, and a 401 page
// links to sign in; without them, neither link.
func TestSignInLinks(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpt{opts: func(o *approvalhttp.Options) {
		o.SignIn, o.SignOut = "/auth/login", "https://sso.example.com/logout"
	}})
	id := f.pending(transfer(5000))
	for path, status := range map[string]int{
		"/approvals":       http.StatusOK,
		"/approvals/" + id: http.StatusOK,
	} {
		page := f.get(path, "alice").html(t, status)
		require.Equal(t, "https://sso.example.com/logout", attr(page, "sign-out-link", "href"), path)
		require.Equal(t, "alice", textOf(page, "viewer"), path)
		require.Empty(t, attr(page, "sign-in-link", "href"), "%s: signed in, no sign-in link", path)
	}
	page := f.get("/approvals", "").html(t, http.StatusUnauthorized)
	require.Equal(t, "/auth/login", attr(page, "sign-in-link", "href"))
	require.Empty(t, attr(page, "sign-out-link", "href"), "nobody to sign out")
	// A page for a link's holder, not signed in: no sign-out.
	tok := f.token(id, "bob", approval.VerdictApprove)
	page = f.get("/approvals/"+id+"?verdict=approve&token="+tok, "").html(t, http.StatusOK)
	require.Empty(t, attr(page, "sign-out-link", "href"))
	require.Empty(t, attr(page, "sign-in-link", "href"))

	plain := newFixture(t)
	require.NotContains(t, plain.get("/approvals", "alice").html(t, http.StatusOK), "sign-out-link")
	require.NotContains(t, plain.get("/approvals", "").html(t, http.StatusUnauthorized), "sign-in-link")

	for _, bad := range []string{"javascript:alert(1)", "//evil.example/login", `/\evil.example`, "auth/login", "ftp://x/y", "/a\nb"} {
		_, err := approvalhttp.New(f.gate, approvalhttp.Options{SignIn: bad})
		require.ErrorContains(t, err, "SignIn or SignOut", bad)
		_, err = approvalhttp.New(f.gate, approvalhttp.Options{SignOut: bad})
		require.ErrorContains(t, err, "SignIn or SignOut", bad)
	}
}
