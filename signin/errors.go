package signin

import "errors"

// Errors that Identity, Session and the callback wrap; branch with errors.Is.
var (
	// ErrNoSession: the request carries no session cookie.
	ErrNoSession = errors.New("signin: no session")
	// ErrBadCookie: a cookie is malformed, or its signature matches none of
	// Config.SessionKeys (tampered with, or signed with a key since
	// retired).
	ErrBadCookie = errors.New("signin: cookie malformed or not signed by a current key")
	// ErrExpired: a cookie's signed expiry has passed.
	ErrExpired = errors.New("signin: cookie expired")
	// ErrFlow: a callback that does not belong to a sign-in this browser
	// started here: no flow cookie, a state that does not match it, or a
	// flow already completed.
	ErrFlow = errors.New("signin: callback does not match a pending sign-in")
	// ErrToken: the provider's answer did not verify: no ID token, a bad
	// signature, issuer, audience, expiry or nonce, or user info about
	// someone else.
	ErrToken = errors.New("signin: ID token refused")
	// ErrSubject: Config.Subject refused the claims (by default: no
	// verified email).
	ErrSubject = errors.New("signin: no approver ID in the claims")
	// ErrUntrustedPeer: Proxy.Identity saw its header from a peer outside
	// Proxy.Trusted.
	ErrUntrustedPeer = errors.New("signin: identity header from an untrusted peer")
)
