package signin

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// Proxy reads the reviewer from a header set by a trusted authenticating
// reverse proxy, for hosts behind one, in place of OIDC:
//
//   - oauth2-proxy, as the reverse proxy (--upstream, with
//     --pass-user-headers, its default), sends X-Forwarded-Email,
//     X-Forwarded-User, X-Forwarded-Preferred-Username and
//     X-Forwarded-Groups (comma-separated). Behind nginx auth_request, with
//     --set-xauthrequest, it answers X-Auth-Request-Email and the like,
//     which nginx forwards under the name it is told (auth_request_set,
//     proxy_set_header X-Forwarded-Email).
//   - Pomerium sends X-Pomerium-Jwt-Assertion, a signed JWT, and with
//     jwt_claims_headers the claims as headers of their own
//     (jwt_claims_headers: {X-Pomerium-Claim-Email: email}).
//
// The header is believed only from a peer in Trusted, the proxy itself, by
// the connection's address (http.Request.RemoteAddr): never
// X-Forwarded-For or any other header, which the client writes. The
// application must be unreachable except through the proxy, and the proxy
// must drop these headers from what clients send (oauth2-proxy and Pomerium
// do). Proxy does not verify Pomerium's JWT assertion.
//
// The zero value trusts nobody. A Proxy is safe for concurrent use.
type Proxy struct {
	// Header names the header carrying the approver ID. Defaults to
	// "X-Forwarded-Email".
	Header string
	// GroupsHeader names the header carrying the person's groups,
	// comma-separated ("X-Forwarded-Groups"), for Groups. Defaults to "":
	// no groups.
	GroupsHeader string
	// Trusted are the proxy's addresses (netip.MustParsePrefix("10.0.0.5/32"),
	// "fd00::/8"). An IPv4-mapped IPv6 peer (::ffff:10.0.0.5) is matched
	// as its IPv4 address. Defaults to none: the header is never believed.
	Trusted []netip.Prefix
}

// trusted reports whether r came from a peer in p.Trusted.
func (p Proxy) trusted(r *http.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	a := ap.Addr().Unmap().WithZone("")
	for _, pfx := range p.Trusted {
		if pa := pfx.Addr(); pa.Is4In6() && pfx.Bits() >= 96 {
			pfx = netip.PrefixFrom(pa.Unmap(), pfx.Bits()-96)
		}
		if pfx.IsValid() && pfx.Contains(a) {
			return a, true
		}
	}
	return a, false
}

// value returns the one value of header from a trusted peer: "" and nil
// when the header is absent; "" and an error when it comes from an
// untrusted peer or is repeated.
func (p Proxy) value(r *http.Request, header string) (string, error) {
	vs := r.Header.Values(header)
	if len(vs) == 0 {
		return "", nil
	}
	if a, ok := p.trusted(r); !ok {
		return "", fmt.Errorf("%w: %s from %s", ErrUntrustedPeer, header, a)
	}
	if len(vs) > 1 {
		return "", fmt.Errorf("signin: %d %s headers", len(vs), header)
	}
	return strings.TrimSpace(vs[0]), nil
}

// Identity returns the approver ID in Header, for
// approvalhttp.Options.Identity: "" and nil when the header is absent, ""
// and an error wrapping ErrUntrustedPeer when the request did not come
// from a Trusted peer (the header is ignored), "" and an error when the
// header is repeated.
func (p Proxy) Identity(r *http.Request) (string, error) {
	h := p.Header
	if h == "" {
		h = "X-Forwarded-Email"
	}
	return p.value(r, h)
}

// Groups returns the groups in GroupsHeader (comma-separated), under the
// same rule as Identity; nil without GroupsHeader.
func (p Proxy) Groups(r *http.Request) ([]string, error) {
	if p.GroupsHeader == "" {
		return nil, nil
	}
	v, err := p.value(r, p.GroupsHeader)
	if err != nil || v == "" {
		return nil, err
	}
	var out []string
	for _, g := range strings.Split(v, ",") {
		if g = strings.TrimSpace(g); g != "" {
			out = append(out, g)
		}
	}
	return out, nil
}
