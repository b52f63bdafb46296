package signin_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval/signin"
)

// TestProxy: the header is believed from a trusted peer, by the
// connection's address alone, in IPv4, IPv6 and IPv4-mapped forms.
func TestProxy(t *testing.T) {
	t.Parallel()
	p := signin.Proxy{
		GroupsHeader: "X-Forwarded-Groups",
		Trusted: []netip.Prefix{
			netip.MustParsePrefix("10.0.0.5/32"),
			netip.MustParsePrefix("fd00:1::/64"),
			netip.MustParsePrefix("::ffff:192.168.7.0/120"), // IPv4-mapped: 192.168.7.0/24
		},
	}
	req := func(remote string, hdr ...string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/review/approvals", nil)
		r.RemoteAddr = remote
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Add(hdr[i], hdr[i+1])
		}
		return r
	}
	for _, remote := range []string{
		"10.0.0.5:4711",
		"[::ffff:10.0.0.5]:4711", // a dual-stack listener's view of an IPv4 peer
		"[fd00:1::17]:4711",
		"[fd00:1::17%eth0]:4711",
		"192.168.7.200:4711",
		"[::ffff:192.168.7.200]:4711",
	} {
		who, err := p.Identity(req(remote, "X-Forwarded-Email", " alice@example.com "))
		require.NoError(t, err, remote)
		require.Equal(t, "alice@example.com", who, remote)
		groups, err := p.Groups(req(remote, "X-Forwarded-Groups", "finance, ops,,"))
		require.NoError(t, err, remote)
		require.Equal(t, []string{"finance", "ops"}, groups, remote)
	}
	for _, remote := range []string{
		"10.0.0.6:4711",
		"[::ffff:10.0.0.6]:4711",
		"[fd00:2::17]:4711",
		"192.168.8.1:4711",
		"[::1]:4711",
		"127.0.0.1:4711",
		"garbage",
		"",
	} {
		who, err := p.Identity(req(remote, "X-Forwarded-Email", "alice@example.com",
			"X-Forwarded-For", "10.0.0.5", "X-Real-Ip", "10.0.0.5", "Forwarded", "for=10.0.0.5"))
		require.ErrorIs(t, err, signin.ErrUntrustedPeer, remote)
		require.Empty(t, who, remote)
		groups, err := p.Groups(req(remote, "X-Forwarded-Groups", "finance"))
		require.ErrorIs(t, err, signin.ErrUntrustedPeer, remote)
		require.Nil(t, groups)
	}

	// No header: nobody, without an error, from anyone.
	who, err := p.Identity(req("10.0.0.6:1"))
	require.NoError(t, err)
	require.Empty(t, who)
	// A repeated header is ambiguous.
	who, err = p.Identity(req("10.0.0.5:1", "X-Forwarded-Email", "alice@example.com", "X-Forwarded-Email", "mallory@example.com"))
	require.Error(t, err)
	require.Empty(t, who)
	// Another header by name.
	pom := signin.Proxy{Header: "X-Pomerium-Claim-Email", Trusted: p.Trusted}
	who, err = pom.Identity(req("10.0.0.5:1", "X-Pomerium-Claim-Email", "bob@example.com", "X-Forwarded-Email", "mallory@example.com"))
	require.NoError(t, err)
	require.Equal(t, "bob@example.com", who)
	// The zero value trusts nobody.
	_, err = signin.Proxy{}.Identity(req("10.0.0.5:1", "X-Forwarded-Email", "alice@example.com"))
	require.ErrorIs(t, err, signin.ErrUntrustedPeer)
	groups, err := pom.Groups(req("10.0.0.5:1", "X-Forwarded-Groups", "finance"))
	require.NoError(t, err)
	require.Nil(t, groups, "no GroupsHeader, no groups")
}
