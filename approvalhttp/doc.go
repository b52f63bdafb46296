// Package approvalhttp serves an approval.Gate over HTTP: the review page
// that notification links open, the reviewers' queue, the operators'
// page, and a JSON API for remote callers and tools; and Client, which gates actions through that
// API from another process. It uses the standard library only, and works
// without JavaScript.
//
// # Mounting
//
// New returns an http.Handler whose routes begin at its root. Mount it
// under a prefix with http.StripPrefix, and set approval.Config.BaseURL to
// the external URL including that prefix, so that the links in
// notifications (BaseURL + "/approvals/{id}?verdict=...&token=...") reach
// it:
//
//	gate, _ := approval.New(approval.Config{..., BaseURL: "https://ops.example.com/review"})
//	h, err := approvalhttp.New(gate, approvalhttp.Options{
//		Identity:     session.User,   // your reviewers' sign-in
//		Authenticate: apiKeys.Caller, // your agents' and services' credentials
//	})
//	if err != nil { ... }
//	mux.Handle("/review/", http.StripPrefix("/review", h))
//
// Every link, form action and redirect the handler writes is relative, so
// it is right under any prefix without knowing it.
//
// # Routes
//
//	GET  /approvals                   the queue: open requests first, filters, pages
//	GET  /approvals/{id}              the review page; with ?verdict=&token= a link's confirmation page
//	POST /approvals/{id}/decide       the decision form (verdict, reason, token): the page, or 303 to it
//	POST /approvals/bulk              the queue's selection (verdict, reason, id...): its confirmation page
//	POST /approvals/bulk/decide       the confirmation (verdict, reason, id and action_hash...): a vote on each, the results
//	GET  /operator                    the operator page (Options.Operator): stats, dead letters, audit trail
//	POST /operator/redrive            redrive one dead letter (id), then 303 to the operator page
//	POST /operator/verify             verify the audit trail now, then 303 to the operator page
//	POST /approvals/{id}/passkey      the passkey challenge of an approval ({"token"?, "action_hash"}):
//	                                  the token (the link's, or one minted for the signed-in reviewer)
//	GET  /passkeys                    the signed-in reviewer's passkeys, and the form adding one
//	POST /passkeys/register           begin a registration: the options of navigator.credentials.create
//	POST /passkeys/register/{c}       finish it with the browser's attestation (go-webauthn checks it)
//	POST /passkeys/revoke/{id}        revoke one of the reviewer's passkeys, then 303 to /passkeys
//	GET  /assets/style.css            the stylesheet (embedded)
//	GET  /assets/passkey.js           the passkey ceremonies' script (embedded), for the pages that need it
//	POST /api/approvals               Guard an action for the authenticated caller
//	GET  /api/approvals               list: status, policy, requested_by, awaiting, cursor, limit
//	GET  /api/approvals/{id}          one request, redacted, with the viewer's eligibility
//	POST /api/approvals/{id}/approve  decide, body {"token": "...", "reason": "...", "passkey"?: {...}}
//	POST /api/approvals/{id}/deny     likewise
//	POST /api/approvals/bulk          decide several as the signed-in reviewer, body {"verdict", "reason",
//	                                  "requests": [{"id", "action_hash"}]}: per request results
//	GET  /api/approvals/{id}/audit    the request's audit events, paged (cursor, limit)
//	GET  /api/approvals/{id}/wait     long poll: the request once it is decided, or as it stands
//	                                  after ?timeout= (default 25s, cut to Options.MaxWait)
//	GET  /api/approvals/{id}/artifact the signed artifact of an approved (or consumed) request
//	GET  /api/stats                   approval.Gate.Stats, for an operator (Options.Operator)
//	POST /api/approvals/{id}/cancel   cancel, for an operator, body {"reason": "..."}: audited with the operator
//
// # Identity
//
// Who decides is always proved by a signed token: the handler never takes
// a person's name from a form or body field. A decision carries either a
// link's token, or none, in which case the reviewer Options.Identity names
// (the host's session) decides through a token the handler mints for them
// alone (approval.Gate.IssueToken, DecisionTokenTTL), so eligibility,
// requester segregation, single use and the audit trail apply exactly as
// for a link. With neither, the answer is 401. Session decisions need the
// gate's Config.SigningKey; a gate that only verifies tokens answers them
// 500 (logged) and still takes links.
//
// Reading needs an identity too. Any person Options.Identity names may read
// every request, the queue and the audit trail: name only your reviewers.
// Without Options.Identity, or for a visitor it does not name, only a
// link's token opens its one request (the page, and GET
// /api/approvals/{id}?token=...); the queue, the list and the audit API
// answer 401. The caller Options.Authenticate names reads the requests it
// made, and no other: GET /api/approvals/{id}, its /wait and its
// /artifact; another requester's request is 404, as if it did not exist,
// and the queue, the list and the audit API stay the reviewers'. A link's
// token is tried first, then Identity, then Authenticate. An identity function that fails, panics or returns a string
// that is not a valid identity (approval.CanonicalID) leaves the request
// unauthenticated; never someone else.
//
// Package signin provides Identity for reviewers who sign in with an
// OpenID Connect provider, or through an authenticating proxy.
// Options.SignIn names the host's sign-in page, which a 401 page links to;
// Options.SignOut its sign-out page, which the header of every page links
// to beside the signed-in reviewer's name (element IDs sign-in-link,
// sign-out-link).
//
// POST /api/approvals needs Options.Authenticate; without it the route
// answers 404. The authenticated caller is the requester
// (Action.RequestedBy): a body requested_by that names anyone else is
// refused (422, "requested_by_mismatch"); one naming the caller, in any
// spelling, is accepted. The answer is the Guard result, {"status",
// "request_id", "reason", "artifact", "conditions", "denial"} (the
// artifact in base64, with an approval Guard consumed; for "modified", the
// edited payload in "payload", "payload_text" or "payload_base64", exactly
// its bytes): 202 Accepted with a Location for pending, 200 for approved
// and denied (and timed_out, a held outcome). A caller polls by repeating
// the same POST: Guard is idempotent, returns the open request while it is
// pending, and returns approved exactly once. The body is the Action in
// its JSON form; "payload" is a JSON value (bound as sent; its hash is of
// the canonical form) or a string (its content is the payload, as text);
// "payload_text" and "payload_base64" carry text and bytes. Unknown fields
// are refused, so a misspelt "payload" cannot approve an empty one.
//
// GET /api/approvals?awaiting=me is the reviewer's inbox
// (approval.RequestQuery.Awaiting); awaiting may name only the reviewer
// (403 otherwise). status is repeated or comma-separated, "open" meaning
// pending and escalated. The answer is {"requests": [...], "next":
// cursor} with a Link: <...>; rel="next" header (relative to the current
// path); requests come oldest first, as Gate.List returns them.
//
// GET /api/approvals/{id}/wait answers as GET /api/approvals/{id} does,
// without the viewer, once the request is no longer open; an open one is
// held until it is decided or the timeout passes (a Go duration, "25s";
// "0s" answers at once), then answered as it stands, still open. Keep the
// server's WriteTimeout, and any proxy's idle timeout, above
// Options.MaxWait. GET /api/approvals/{id}/artifact answers the artifact's
// bytes as the gate signed them (application/json); a request that is not
// approved has none (409 no_artifact).
//
// # Formats
//
// Every JSON answer shows a payload as JSON when it is JSON hashed in
// canonical form ("payload"), as text ("payload_text") or in base64
// ("payload_base64") otherwise, and every duration as a string in Go's
// syntax ("1h0m0s"). docs/FORMATS.md in the module has the schema of the
// request object, the Guard result and the decision body, and the exact
// forms the gate hashes and signs.
//
// # Remote callers
//
// Client is the other end of the API, for a process that runs actions
// without the gate's store (an agent runtime, a worker):
//
//	c, err := approvalhttp.NewClient("https://ops.example.com/review", approvalhttp.ClientOptions{
//		Authorize: func(r *http.Request) error { r.Header.Set("Authorization", "Bearer "+key); return nil },
//		Keys:      []ed25519.PublicKey{gatePub},
//	})
//	res, err := c.Guard(ctx, action)           // pending: res.RequestID
//	req, err := c.Wait(ctx, res.RequestID)     // a person answered
//	res, err = c.Guard(ctx, action)            // approved, once: res.Artifact verified
//
// Client.Guard sends the action with its payload byte for byte (JSON
// hashed in canonical form that the encoder leaves as it is travels as
// itself, other text as a JSON string of its text, other bytes in
// payload_base64), so the server computes the
// hashes the client would, and a retry from any process with the same
// credentials finds the same request. Client.Wait long-polls /wait until
// the request is decided; Client.Artifact and Client.VerifiedArtifact
// fetch the artifact.
//
// The Client trusts the server's "no", never its "yes" alone: an approval
// of a request is returned only once its artifact verified
// (approval.VerifyArtifact) against the action, ClientOptions.Keys and the
// clock, and names that request. Otherwise Guard answers OutcomeDenied
// with an error wrapping ErrUnverified and the artifact's sentinel; the
// gate has consumed the approval by then, so treat it as an alarm (a
// tampering server or proxy, or keys out of date). The gate needs a
// SigningKey for this. An action no policy matched is approved without
// an artifact, as nobody approved it, and the Client accepts that answer
// from the server, which alone knows the policies; with
// ClientOptions.RequireArtifact it refuses it (give the gate a
// Config.Default policy then, so that every action has a request). An
// artifact proves an approval, not that it is unused: single use is the
// gate's, through Guard.
//
// A problem the server answers comes back as a *Problem, whose Unwrap is
// the approval package's sentinel for its code (the table below), so
// errors.Is(err, approval.ErrNotFound) works as in process. Codes of the
// HTTP layer (unauthenticated, forbidden, malformed_request, internal...)
// have none: branch on Problem.Code. A requested_by_mismatch or
// invalid_identity from Guard is also approval.ErrInvalidAction.
//
// # Pages
//
// The review page shows what a reviewer needs at a glance: the requester,
// workflow run and step, the message, why approval is needed, each matched
// policy with its quorum, approvers and snapshot hash, risk, tags and cost,
// the action's constraints and the rules the gate will hold it to, the
// action and payload hashes, the payload (pretty-printed JSON, or text;
// cut at Options.MaxPayloadDisplayBytes with a note), the diff by file and
// hunk, metadata, provenance, votes, deadline and time left, the status
// (each ending shown distinctly: approved, approved and used, denied,
// cancelled, timed out, expired) and the history from the audit trail.
//
// A link's GET verifies its token (approval.Gate.VerifyToken) and shows
// who it is for and a confirmation form; only the form's POST decides, so
// link scanners and previews decide nothing. The form is offered only to a
// person who may decide (approval.Gate.CanDecide); otherwise the page says
// why. A link's decision answers with the review page in its new state
// (a redirect would have to carry the token, and the holder has no session
// to come back with); a session's decision redirects (303) to the review
// page with ?decided=. A visitor with no session who opens ?decided= is
// shown only that a decision was submitted.
//
// Stable element IDs serve browser tests: status (with data-status),
// action-hash, payload-hash, payload (data-kind, data-size), diff, votes,
// history, decide-form, reason, approve, deny, cannot-decide (data-code),
// link-for, flash; on the queue, queue, row-{id}, next, first,
// new-requests; on a message or error page, message (data-code).
//
// The queue lists open requests first, then the rest, each oldest first,
// 50 to a page, filtered by status, policy, requester and "awaiting me".
// Each later page says how many requests arrived since the first page was
// shown, with a link back to it that keeps the filters.
//
// # Deciding many at once
//
// On the queue, each row the signed-in reviewer may decide now
// (approval.Gate.CanDecideEach) has a checkbox, inside one form with
// Approve selected and Deny selected buttons and an optional reason. Its
// POST (/approvals/bulk) decides nothing: it shows a confirmation page
// listing, for each selected request, its name, requester, policies,
// amount, payload (cut at 2 KiB; the edited one once edited) and the
// action hash a vote binds, with one button. That button's POST
// (/approvals/bulk/decide) carries each ID with the action hash shown;
// the selection is checked again, then each request is decided by a
// Decide of its own, with a token minted for the reviewer alone (as for a
// decision on one request) and Decision.ActionHash set to the hash shown,
// so every check and audit event applies to each vote, and a payload
// edited since the confirmation refuses that vote (action_changed) and no
// other. The results page lists each request as recorded or refused, with
// the problem's title and detail. A reload of it decides nothing more.
//
// A selection is refused whole, nothing decided, when it is empty, has
// more than MaxBulk requests, names one twice or one that does not exist
// (422 invalid_selection); when the requests' sets of matched policy
// names are not all the same set (422 mixed_policies: requests decided
// at once answer to the same rules and approvers); or when the reviewer
// may not decide one of them now, or an approval of one needs a passkey,
// which is given on the request's own page (409 not_decidable). The page
// lists the requests concerned and why. POST /api/approvals/bulk does the
// same for the signed-in reviewer (no token is taken), requires each
// request's action_hash, and answers the per-request results, or the
// refusal as a problem object with the requests concerned in "requests"
// (docs/FORMATS.md). Both routes are state-changing requests, protected
// as every other (see Security).
//
// Stable element IDs of the bulk pages: on the queue, bulk-form, bulk-bar,
// bulk-reason, bulk-approve, bulk-deny, pick-{id}; on the confirmation,
// bulk-confirm-form, bulk-items, item-{id}, payload-{id}, reason,
// bulk-confirm; on the results, bulk-summary (data-recorded,
// data-refused), bulk-results, result-{id} (data-status, data-code); on a
// refusal, message (data-code), refused-{id} (data-code).
//
// # Operator page
//
// GET /operator is the page to open when approvals seem stuck. It is for
// the reviewers Options.Operator names (an operator is a reviewer
// Options.Identity names, so Operator needs Identity); anyone else signed
// in gets 403 "forbidden", and nobody signed in 401. Without
// Options.Operator nobody is an operator. Its numbers come from one
// approval.Gate.Stats, taken when the page is shown (reload for fresh
// ones):
//
//   - Pending requests by policy (Stats.Open): how many open requests
//     each policy matched, and how long the oldest has waited ("3h 12m")
//     and since when; each policy links to the queue filtered to its open
//     requests.
//   - The audit trail: its head (Stats.Head) and newest checkpoint
//     (Stats.LastCheckpoint, with its age), each hash shortened with the
//     whole one a click away, and this gate's last successful
//     verification (Stats.Verified: its head, its events, when; or "not
//     verified since this process started"), with how many events were
//     appended since. Verify now (POST /operator/verify) runs
//     approval.Gate.VerifyAuditTrail from that head (the whole trail if
//     there is none), bounded by the request, and redirects (303) back
//     to say how many events verified, up to which seq, or why the trail
//     did not verify (the gate's message for a broken chain or a request
//     the trail does not account for; a store's own failure is logged).
//   - Channels (Stats.Channels): each channel's pending messages, the age
//     of the oldest (the delivery lag), how many are being retried, its
//     dead letters, and its newest error, cut to 120 bytes with the whole
//     of it a click away.
//   - Dead letters: the first page of approval.Gate.ListOutbox with State
//     approval.OutboxDead (ID, channel and recipient, the request, linked
//     to its review page, attempts, last error, creation time), each with
//     a Redrive button (POST /operator/redrive, field id) that calls
//     approval.Gate.Redrive as the operator, so notification.redriven names
//     them, and redirects (303) back to say the message is pending again,
//     or that the ID names no dead letter (nothing changes then).
//   - Time to decision by policy (Stats.Decisions): over the last 24 hours
//     and the last 7 days, how many requests were resolved, p50 and p90
//     of the time from creation to resolution, and the outcomes
//     (approved, denied, timed out, cancelled); and, per day over the 7
//     days, oldest first (PolicyDecisions.Daily), an inline SVG chart
//     drawn by html/template from numbers only: a light bar to each day's
//     p90 and a dark one to its p50, on the scale of the week's largest
//     p90, with the numbers in its title and aria-label for a screen
//     reader.
//
// The redirects after Redrive and Verify now carry only the outcome (a
// checked outbox ID, numbers, or that verification failed, whose reason
// the handler keeps), so a crafted link cannot put words on the page.
// The forms are protected like every state-changing request (see
// Security), and refused (403) to anyone who is not an operator. GET
// /api/stats answers the same Stats as JSON to an operator (401 or 403
// otherwise): {"at", "open": [{"policy", "count", "oldest"}], "decisions":
// [{"policy", "day", "week", "daily"}] (each {"count", "approved",
// "denied", "timed_out", "cancelled", "p50", "p90"}, durations as
// strings), "channels": [{"channel", "pending", "oldest_pending",
// "retrying", "dead", "last_error"}], "head": {"seq", "hash"},
// "last_checkpoint" and "verified"} (see docs/FORMATS.md).
//
// Stable element IDs of the operator page: open (rows data-policy, cells
// .count and .age), audit, head-seq, checkpoint, verified (data-seq),
// behind, verify-failed, verify-now, channel-health (rows data-channel,
// cells .pending, .lag, .retrying, .dead, .last-error), dead (rows
// dead-{id}, buttons redrive-{id}), decision-times (rows data-policy,
// cells .day-count, .day-p50, .day-p90, .week-count, .week-p50,
// .week-p90, .outcomes), flash (data-error).
//
// # Security
//
// Every state-changing browser request is checked by
// http.CrossOriginProtection: a cross-origin POST (by Sec-Fetch-Site, or
// by Origin against Host) is refused with 403 "cross_origin"; clients that
// send neither header (API clients) pass; Options.TrustedOrigins adds
// origins. GET never changes state.
//
// Every response carries Content-Security-Policy: default-src 'none';
// style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors
// 'none'; base-uri 'none', Referrer-Policy: no-referrer (tokens travel in
// link URLs), X-Frame-Options: DENY and X-Content-Type-Options: nosniff;
// everything but the stylesheet is Cache-Control: no-store. The pages have
// no script and no inline style, except the two that run a passkey
// ceremony (the passkeys page, and the review page of a request whose
// policy requires a passkey), which load assets/passkey.js and add
// script-src 'self'; connect-src 'self' to that policy, nothing more. Every value from a request renders as
// text: every page is an html/template (go:embed, one layout), so each
// value is escaped for the context it lands in. The handler logs only
// internal errors and identity failures, with the method and the path,
// never the query string.
//
// # Redaction
//
// approval.Policy.Redact (on each matched policy's snapshot) and
// Options.Redact name payload fields and metadata keys to mask, compared
// case-insensitively. A payload field is a JSON object member at any depth
// (after unescaping the key); its whole value is replaced by "[redacted]".
// Masked metadata values read "[redacted]" in the API and "••••" on the
// page. A payload that is not JSON cannot be masked field by field, so
// when any name applies to its request only its size and hash are shown.
// Neither the API nor the page ever returns a masked value; the hashes
// cover the real bytes, and the page says so. The masking is
// approval.Action.Redact's; notifications sent to channels are masked by
// the policies' names the same way (Options.Redact is this handler's
// alone: name a field in Policy.Redact to keep it out of notifications).
//
// # Errors
//
// API errors are RFC 9457 problem objects (application/problem+json, see
// Problem) with a stable code; pages answer with the same status and an
// HTML page whose message element carries the code in data-code. A 4xx
// detail is the gate's message, cut to 256 bytes; a 500 says only that the
// server logged the cause.
//
//	status  code
//	400     malformed_request (JSON or form that does not parse, unknown field)
//	401     unauthenticated, token_malformed, token_signature, token_expired
//	403     token_request_mismatch, token_verdict_mismatch, token_used,
//	        not_eligible, self_approval, forbidden, cross_origin
//	404     not_found (unknown or malformed request ID, unknown route)
//	405     method_not_allowed (with Allow)
//	409     not_pending, already_decided, action_changed, conflict, no_artifact,
//	        not_decidable
//	413     body_too_large
//	415     unsupported_media_type (an API body that is not JSON)
//	422     invalid_action, invalid_decision, invalid_identity,
//	        invalid_cursor, invalid_query, requested_by_mismatch,
//	        invalid_selection, mixed_policies
//	500     internal
//	501     unsupported (an artifact from a gate without a SigningKey)
package approvalhttp
