// Package signin signs reviewers in for approvalhttp, so that a host need
// not write approvalhttp.Options.Identity by hand: OIDC, with an OpenID
// Connect provider (Okta, Entra ID, Google, Keycloak, Dex, ZITADEL...), or
// Proxy, behind an authenticating reverse proxy (oauth2-proxy, Pomerium).
// Hosts with sessions of their own keep writing Options.Identity.
//
// # OpenID Connect
//
// New reads the provider's discovery document; the OIDC it returns is the
// handler of three routes, mounted beside the review pages:
//
//	key := ... // 32 random bytes or more, kept as a secret (SessionKeys rotate)
//	o, err := signin.New(ctx, signin.Config{
//		Issuer:       "https://login.example.com",
//		ClientID:     "approvals",
//		ClientSecret: os.Getenv("OIDC_CLIENT_SECRET"),
//		RedirectURL:  "https://ops.example.com/auth/callback",
//		SessionKeys:  [][]byte{key},
//		Home:         "/review/approvals?awaiting=me", // after a sign-in started from no page
//	})
//	if err != nil {
//		log.Fatal(err)
//	}
//	h, err := approvalhttp.New(gate, approvalhttp.Options{
//		Identity: o.Identity,      // the signed-in reviewer
//		SignIn:   o.LoginURL(""),  // linked from a 401 page
//		SignOut:  o.LogoutURL(),   // linked beside the reviewer's name
//	})
//	if err != nil {
//		log.Fatal(err)
//	}
//	mux := http.NewServeMux()
//	mux.Handle("/auth/", o) // /auth/login, /auth/callback, /auth/logout
//	mux.Handle("/review/", o.RequireLogin(http.StripPrefix("/review", h)))
//
// RequireLogin sends a browser that opens a page without a session to
// sign in, and back to that page after; API calls and notification links
// (whose token opens their one request) pass through untouched, and
// approvalhttp answers the API 401 as before. Give the gate the same
// external URL (approval.Config.BaseURL "https://ops.example.com/review").
//
// At the provider, register a web application (a confidential client)
// with the redirect URI https://HOST/auth/callback (Config.RedirectURL)
// and the authorization-code grant; the scopes asked for are openid,
// profile and email (Config.Scopes). The approver ID is the email claim
// when email_verified is true (EmailSubject; Config.Subject maps another
// claim); the claims are the ID token's, completed by the provider's user
// info endpoint for those the ID token leaves out. With
// EndProviderSession, register Config.PostLogoutRedirectURL as a
// post-logout redirect URI too.
//
// The routes:
//
//	GET  /auth/login     a new sign-in: state, nonce and PKCE (S256) verifier in a
//	                     sign-in cookie, then 302 to the provider; ?return= a path
//	                     on this site to come back to (anything else: Config.Home)
//	GET  /auth/callback  the provider's answer: state checked against the sign-in
//	                     cookie (which is deleted, and whose state is spent), code
//	                     exchanged with the verifier, ID token verified (signature,
//	                     issuer, audience, expiry, nonce), claims mapped to the
//	                     approver; the session cookie, then 303 to the return path
//	GET  /auth/logout    who is signed in, and a Sign out button
//	POST /auth/logout    same-origin only (http.CrossOriginProtection): clears the
//	                     session cookie, then 303 to the provider's end_session
//	                     endpoint (EndProviderSession), PostLogoutRedirectURL, or
//	                     the GET page
//
// A refused callback answers a page saying why in a sentence, with a link
// to sign in again, and logs the cause; it sets no session.
//
// # The session cookie
//
// The session lives in the cookie alone (nothing is stored on the
// server): "v1." + base64url(JSON {sub, groups, iat, exp}) + "." +
// base64url(HMAC-SHA256). It is signed, not encrypted: its content is the
// reviewer's own ID and groups, no secret from the browser that carries
// it, and a MAC alone is the smaller construction to review. The MAC
// covers a purpose label with the content, so the sign-in cookie (10
// minutes, Path the routes' directory) can never pass for a session. The
// cookie is HttpOnly, Secure (Config.InsecureCookies drops that for
// http://localhost development, and New refuses it for any other host),
// SameSite=Lax (the provider's redirect back is a top-level GET, which Lax
// lets through; a cross-site POST carries no session), Path
// Config.CookiePath. Its expiry (Config.SessionLifetime, 8 hours) is inside
// the signed content: a browser that keeps the cookie longer, or a copy
// replayed later, is refused. Config.SessionKeys are tried in turn; the
// first signs. Identity answers "" and an error for a cookie that is
// malformed, tampered with, signed by no current key or expired, and
// approvalhttp then answers 401.
//
// Signing out clears the browser's cookie. Since the server keeps no
// session list, a copy of the cookie taken before sign-out stays valid
// until its expiry; to end every session at once, replace the keys.
//
// # Groups
//
// With Config.GroupsClaim, the groups the provider sends at sign-in are
// kept in the session (Session.Groups), for the host's own use (an
// Operator check, say), and, with Config.Groups, learned by a
// GroupDirectory, which the gate can use as its approval.Directory (with
// the host's own directory as its Base). Claims answer only for people
// who signed in recently: a Directory is asked who is in a group, for
// everyone, including approvers who have not signed in since (or ever),
// so a group whose members must be notified before they sign in needs a
// Base that knows them (see GroupDirectory).
//
// # Behind a proxy
//
// Proxy.Identity reads the reviewer from a header a trusted proxy sets
// (X-Forwarded-Email from oauth2-proxy), believed only when the
// connection comes from Proxy.Trusted:
//
//	p := signin.Proxy{Trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.5/32")}}
//	h, err := approvalhttp.New(gate, approvalhttp.Options{Identity: p.Identity})
package signin
