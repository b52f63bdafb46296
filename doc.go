// Package approval puts a human, or several, in the loop before a risky
// action runs.
//
// A host program describes an action (a wire transfer, a production deploy,
// an AI agent's tool call) and asks the Gate whether it may run:
//
//	res, err := gate.Guard(ctx, approval.Action{Name: "wire-transfer", RequestedBy: "user-1",
//		Cost: &approval.Cost{Amount: 5000, Currency: "USD"}})
//	switch res.Status {
//	case approval.OutcomeApproved: // run it
//	case approval.OutcomePending:  // tell the caller to come back; res.RequestID names the request
//	default:                      // denied, or err != nil: do not run it
//	}
//
// Approvers answer with Gate.Decide, carrying an Ed25519-signed single-use
// token that names them. Every state change is written to an append-only,
// hash-chained audit trail in the same atomic write as the change itself.
//
// # Gate
//
// New builds a Gate from a Config; Config.Store and a key are required
// (Config.SigningKey, or Config.VerifyKeys for a gate that only verifies
// tokens). A Gate is safe for
// concurrent use, and any number of gates, in one process or many, may share
// one Store: every change is a compare-and-set on the stored request, retried
// on conflict, so concurrent approvers never lose or double-count a vote.
//
// Guard is idempotent. While a request for the same action (same requester
// and action hash, see Action.Hashes) is open, Guard returns it as pending,
// so an agent that retries a tool call never creates a second request. Once
// the request is approved, the next Guard of the exact same action returns
// approved and consumes the approval: it is single use. An approval not used
// within the policy's ApprovalTTL expires.
//
// An action that must never run twice (a payment) carries an
// Action.IdempotencyKey naming the operation: once an approval was used
// under the key, a Guard with the key returns that outcome
// (OutcomeAlreadyRan, and approval.Do returns ErrAlreadyRan) for
// Config.IdempotencyWindow instead of opening a new request, and a Guard
// with the key and another action is ErrInvalidAction. Without a key, a new
// request for an action identical to one that ran recently tells its
// approvers so (Request.Prior, Notification.Prior).
//
// Guard fails closed. Invalid input, a store error, or a custom matcher that
// errors or panics never yields approved: errors return OutcomeDenied, and a
// failing matcher applies its policy rather than skipping it.
//
// # Policies
//
// Gate.SetPolicy registers a named Policy: a Matcher tree saying which actions
// it covers (Name globs, TagAny/TagAll/TagNone, CostAtLeast/CostBelow,
// RiskAtLeast, Custom, All/Any/Not), who may approve (User, Group, Role,
// resolved through Config.Directory when a decision is made) and how many
// must (RequiredApprovals). Every matching policy applies: the request is
// approved only when each one's quorum is met. The smallest Timeout and the
// most restrictive OnTimeout win, and the requester may not approve their
// own request unless every matched policy sets AllowSelfApproval. A policy
// with EffectDeny refuses matching actions outright. An action no policy
// matches is approved with reason "no-policy-matched", with no I/O at all,
// unless Config.Default is set.
//
// Each request stores a snapshot of every policy it matched, with the
// SHA-256 of the policy's canonical definition. Decisions are counted
// against the snapshot, so changing a policy never changes a live request.
//
// Gate.ReplacePolicies replaces the whole set at once; a refused policy is
// named by a *PolicyError. Policies written in YAML or JSON files are read
// and written by package policyfile (policyfile.LoadFile, policyfile.Load,
// policyfile.Parse, policyfile.Encode), which builds them with this
// package's constructors and writes each matcher in its canonical form
// (CanonicalMatcher); this package compiles no YAML parser.
//
// # Levels, escalation and quorum
//
// A policy's approvals may come in levels (Policy.Chain): level 1 must be
// met before level 2 opens, a level may need any, all or a threshold of
// its approvers, or parallel groups of them, and a level whose When does
// not match the action is skipped. EscalationSteps remind, alert,
// escalate to more approvers, reassign, or decide after a while; Gate.Tick
// (or Gate.Run) runs them, the timeouts and the expiry of unused
// approvals. A quorum nobody can meet is denied when the request would be
// created. Request.Standing says where each policy stands, in the form the
// review pages print. The engine lives in levels*.go.
//
// # Decisions beyond yes and no
//
// An approver may approve within Conditions (narrowing
// Action.Constraints), edit the payload before approving
// (Decision.Payload: the approval then binds the edit and Guard answers
// OutcomeModified), grant reuse of the exact call for a while
// (Decision.Reuse, within Policy.MaxReuse), or deny with a structured
// Denial that tells an agent whether to ask again. Decision.ActionHash
// binds a vote to the action its approver was shown: after another
// approver's edit it is refused (ErrActionChanged). Gate.BreakGlass is
// the loud emergency path around the policies. Delegations (Gate.Delegate)
// lend an approver's authority for a window. Automated reviewers attach
// Recommendations, which are advice, never votes.
//
// # Agents
//
// Do runs a function once its action is approved, at most once per
// approval, waiting up to a bound: the Guard, Wait, Guard loop an agent
// runtime would otherwise write. Package approvalmcp gates the tool calls
// of an MCP server built on the official Go SDK. Policy.Limit (AskLimit)
// bounds how often one agent, or the person behind it, may ask: beyond it
// Guard answers denied with a Denial saying when to ask again, and the
// reviewers hear nothing of it.
//
// # Artifacts
//
// An approved Guard returns a signed artifact (Result.Artifact) binding
// the request, the action and payload hashes, the votes, the conditions
// and the expiry; VerifyArtifact checks it with the gate's public key
// alone, so an executor in another process, or another language (see
// docs/FORMATS.md), runs only what was approved.
//
// # Notifications
//
// Config.Channels deliver a Notification to each approver when a request
// opens, escalates or resolves, with personal approve and deny links when
// Config.BaseURL is set. Notifications show what a vote binds: the edited
// payload once an approver edited it (Notification.Edit), redacted by the
// policies' Redact names. A Store that implements Outbox (memstore and
// sqlstore do) makes delivery durable: the message is written with the
// change that caused it, then claimed, sent, retried with backoff and
// dead-lettered (Gate.ListOutbox, Gate.Redrive). Package channels has the
// webhook, Slack and email channels.
//
// # Spellings
//
// Values are compared in one canonical form each, so a policy cannot be
// slipped past, nor a person counted twice, by another spelling: currencies
// are three ASCII letters, upper-cased; action names and Name globs are
// printable ASCII, lower-cased; tags are NFKC case-folded; identities
// (requesters, approvers, token subjects, directory members, Cancel's
// actor) are canonicalized by CanonicalID. Input with no canonical form is
// refused (ErrInvalidAction, ErrInvalidPolicy, ErrInvalidIdentity); a cost
// must name its currency.
//
// # Tokens
//
// A token is base64url(payload) "." base64url(signature), URL-safe and
// unpadded. The payload is canonical JSON naming the key (kid), the token
// (tid), the request (rid), the approver (sub), the verdicts it allows
// (act: approve, deny or both) and its issue and expiry times. Decide checks
// it in a fixed order with one sentinel error per failure (see Decide), and
// records the token ID with the vote in one atomic write, so a token decides
// once. Links already sent verify after a restart only with the same key,
// so a service keeps it in a file (LoadOrCreateKeyFile; PKCS#8 and PKIX PEM,
// see EncodePrivateKeyPEM). Key IDs let keys rotate: sign with the new key
// and keep the old public key in Config.VerifyKeys until the tokens it
// signed have expired. Notifications carry per-approver links whose tokens are
// signed off the request path.
//
// # Stores
//
// Store is the persistence contract, documented method by method.
// memstore keeps everything in process; sqlstore keeps it in SQLite (a file
// path is all it needs) or PostgreSQL (several replicas sharing one
// database). storetest.Run proves any implementation against the contract.
// A store that implements ResolutionNotifier (sqlstore does) wakes
// Gate.Wait as soon as another process decides, rather than at its next
// poll. Idempotency keys need a store that implements IdempotencyKeys, and
// Request.Prior one that implements PriorRuns (memstore and sqlstore both
// do).
//
// # The reviewer's inbox
//
// Gate.List with RequestQuery.Awaiting lists the open requests a person
// may decide and has not. The gate records who may decide each request as
// its levels open (LevelProgress.People, Request.Deciders); a store that
// implements Inbox indexes them, so a page is one indexed read, checked as
// Decide would. Gate.RefreshInbox records them for requests stored before
// they were kept. Without Inbox the gate scans the open requests.
//
// # Notifications
//
// Config.Channels deliver notifications (package channels: webhook,
// Slack, email, ...). One engine delivers them from an outbox, at least
// once, with retries, dead letters (Gate.ListOutbox, Gate.Redrive) and a
// breaker for channels that hang, configured by Config.Delivery
// (DeliveryConfig). The outbox is the Store's when it implements Outbox
// (memstore and sqlstore do: notices are stored with the change and
// survive a crash); otherwise the gate keeps one in memory, bounded by
// DeliveryConfig.MemoryLimit, which a crash loses. See Channel.
//
// A Pager (channels.PagerDuty) is a channel about requests rather than to
// people: only an escalation step that names it pages it, once, and the
// request's resolution resolves the page. Package oncall resolves a Role to
// whoever is on call for a PagerDuty schedule, at decision time.
//
// # Audit
//
// Every event (request.created, decision.approve, decision.rejected,
// request.approved, approval.consumed...) carries a sequence number and
// the SHA-256 of its canonical form chained to the previous event's hash.
// VerifyAuditChain and VerifyAuditTrail detect any edit, deletion or
// reordering and name the first bad sequence number. A refused decision
// (forged, replayed, expired or misdirected token, ineligible approver,
// self-approval) changes nothing and is written as a decision.rejected
// security event with who tried and why.
//
// Gate.Checkpoint signs the trail's head with the gate's key, so that a
// rewrite needs the private key too; VerifyAuditTrail verifies a store's
// trail, its checkpoints with the public keys given, heads kept outside
// the database, and every stored request against the events that explain
// it, with no Gate at all: in one pass over the trail and one over the
// requests, with memory that does not grow with the trail's length
// (through the optional AuditStream capability, without pages). From a
// head an earlier run verified (VerifyAuditOptions.From), it checks only
// what came since, for nightly runs; VerifyAuditOptions.Progress reports
// how far it has read. docs/FORMATS.md gives the exact bytes hashed and
// signed, with test vectors.
//
// # Configuration
//
// One style per kind of thing. The gate takes a Config struct, every field
// documented with its default, filled and checked by New; integrations
// that wrap a gate take an Options struct the same way (approvalhttp.New,
// approvalhttp.NewClient's ClientOptions, approvalmcp.Middleware), and so do
// channels (channels.WebhookConfig, SlackConfig, EmailConfig); stores take
// functional options after their required arguments (memstore.New(opts...),
// sqlstore.Open(ctx, dsn, opts...)), since most callers pass none. A zero
// field means its default; a value that cannot work is refused with an
// error wrapping ErrInvalidConfig (or the package's own) that says how to fix
// it.
//
// # Where things live
//
// This package is the vocabulary: actions, policies and matchers, tokens,
// artifacts, the audit trail, and the Store, Channel and Directory
// contracts. Around it: memstore and sqlstore (stores) and storetest (their
// conformance suite); policyfile (YAML and JSON policy files);
// approvalhttp (review pages, the reviewers' queue, the operator page, the
// passkey pages, the JSON API and its Client); signin (reviewers' sign-in
// with OpenID Connect, or from a trusted proxy); channels (webhook, Slack,
// email); approvalmcp (MCP tool-call gating); agenthooks (coding agents'
// permission hooks); approvaltemporal (an approval step for Temporal
// workflows); approvalotel (metrics and traces on OpenTelemetry, through
// Config.Observer); cmd/approval (the command line). docs/ARCHITECTURE.md
// draws them and the path of one Guard and one Decide.
package approval
