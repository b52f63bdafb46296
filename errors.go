package approval

import "errors"

// Sentinel errors. Every error the package returns wraps one of these (with
// context such as the request ID), so callers branch with errors.Is.
var (
	// ErrNotFound: no request has the given ID.
	ErrNotFound = errors.New("not found")
	// ErrInvalidAction: the action failed validation; nothing was stored.
	ErrInvalidAction = errors.New("invalid action")
	// ErrInvalidIdentity: a requester, approver or actor ID that has no
	// canonical form (see CanonicalID). It is wrapped together with the
	// error of the call that took the ID (ErrInvalidAction,
	// ErrInvalidDecision, ErrInvalidPolicy).
	ErrInvalidIdentity = errors.New("invalid identity")
	// ErrInvalidPolicy: the policy definition failed validation; it was not registered.
	ErrInvalidPolicy = errors.New("invalid policy")
	// ErrInvalidConfig: Config failed validation in New, or
	// VerifyAuditTrail's arguments did (a nil store, an anchor before
	// VerifyAuditOptions.From).
	ErrInvalidConfig = errors.New("invalid config")
	// ErrInvalidKey: a key to encode or decode (EncodePrivateKeyPEM,
	// DecodePrivateKeyPEM, LoadOrCreateKeyFile...) is not a well-formed
	// Ed25519 key in the expected PEM form.
	ErrInvalidKey = errors.New("invalid key")

	// ErrTokenMalformed: the token is not of the form payload.signature, its
	// payload is not in the one canonical form, or (signed) it was issued in
	// the future.
	ErrTokenMalformed = errors.New("token malformed")
	// ErrTokenSignature: the key ID is unknown or the signature does not verify.
	ErrTokenSignature = errors.New("token signature invalid")
	// ErrTokenExpired: the token's expiry (plus leeway) has passed.
	ErrTokenExpired = errors.New("token expired")
	// ErrTokenRequestMismatch: the token was issued for another request.
	ErrTokenRequestMismatch = errors.New("token issued for another request")
	// ErrTokenVerdictMismatch: the token does not allow the requested verdict.
	ErrTokenVerdictMismatch = errors.New("token does not allow this verdict")
	// ErrTokenUsed: the token's ID has already been used for a decision.
	ErrTokenUsed = errors.New("token already used")

	// ErrNotEligible: the approver is not eligible under any policy the request matched.
	ErrNotEligible = errors.New("approver not eligible")
	// ErrSelfApproval: the requester tried to decide their own request while
	// requester segregation is in force.
	ErrSelfApproval = errors.New("requester may not approve own request")
	// ErrAlreadyDecided: the approver has already decided this request.
	ErrAlreadyDecided = errors.New("approver already decided")
	// ErrNotPending: the request is no longer open for decisions.
	ErrNotPending = errors.New("request not pending")
	// ErrActionChanged: a Decision names the action hash its approver was
	// shown (Decision.ActionHash), and the request now binds another
	// action: another approver edited the payload since. Nothing is
	// recorded; show the request again.
	ErrActionChanged = errors.New("action changed since it was shown")
	// ErrInvalidDecision: a Decision or token request is malformed (no
	// token, unknown verdict).
	ErrInvalidDecision = errors.New("invalid decision")
	// ErrInvalidCondition: a Decision's condition does not parse, or
	// widens the action's constraints instead of narrowing them. Decide
	// wraps it with ErrInvalidDecision.
	ErrInvalidCondition = errors.New("invalid condition")
	// ErrInvalidDeadline: a deadline given to MoveDeadline is not after
	// the present.
	ErrInvalidDeadline = errors.New("invalid deadline")
	// ErrConflict: a store compare-and-set lost a race. The gate retries
	// internally; callers see it only when retries are exhausted.
	ErrConflict = errors.New("concurrent update conflict")

	// ErrInvalidCursor: a List or ListAudit cursor that the store did not
	// issue (pass RequestPage.Next or AuditPage.Next unchanged).
	ErrInvalidCursor = errors.New("invalid cursor")

	// ErrAuditChain: an audit trail failed verification; the error names the
	// first bad sequence number (see AuditChainError).
	ErrAuditChain = errors.New("audit chain broken")
	// ErrInvalidHead: an audit head that is not "SEQ:HASH" (see
	// ParseAuditHead).
	ErrInvalidHead = errors.New("invalid audit head")
	// ErrClosed: the gate has been closed.
	ErrClosed = errors.New("gate closed")
	// ErrUnsupported is returned by gate methods that need a Store
	// capability the store does not have (Delegations, IdempotencyKeys,
	// an Outbox for ListOutbox and Redrive).
	ErrUnsupported = errors.New("not supported by the store")
	// ErrAskLimited: a new request would exceed a policy's Limit on
	// asking (see AskLimit). A Store's CreateLimited returns it, wrapped
	// in an *AskLimitError; Guard answers such a request denied, with no
	// error.
	ErrAskLimited = errors.New("asked beyond the limit")

	// Artifact errors: VerifyArtifact returns one of them (wrapped).

	// ErrArtifactMalformed: not an artifact: bad JSON, an unknown or
	// missing field, another version.
	ErrArtifactMalformed = errors.New("artifact malformed")
	// ErrArtifactUnknownKey: the key ID is not among the keys given.
	ErrArtifactUnknownKey = errors.New("artifact signed by an unknown key")
	// ErrArtifactSignature: the signature does not verify: the artifact
	// was altered, or signed by another key of the same ID.
	ErrArtifactSignature = errors.New("artifact signature invalid")
	// ErrArtifactExpired: the approval's expiry has passed.
	ErrArtifactExpired = errors.New("artifact expired")
	// ErrArtifactActionMismatch: the artifact approves another action
	// (its action hash differs).
	ErrArtifactActionMismatch = errors.New("artifact approves another action")
	// ErrArtifactPayloadMismatch: the artifact approves the action with
	// another payload.
	ErrArtifactPayloadMismatch = errors.New("artifact approves another payload")
	// ErrNoArtifact: the request is not approved (pending, denied,
	// cancelled, timed out or expired), so there is no artifact.
	ErrNoArtifact = errors.New("no artifact: the request is not approved")

	// Do's errors, in a *NotApprovedError when the function did not run.

	// ErrPending: the action waits for a person (Do returned at once, or
	// its DoOptions.Wait passed first). Retrying the same call returns the
	// same request.
	ErrPending = errors.New("approval pending")
	// ErrDenied: a person or a deny policy refused the action.
	ErrDenied = errors.New("approval denied")
	// ErrTimedOut: the request's deadline passed before enough people
	// approved it.
	ErrTimedOut = errors.New("approval timed out")
	// ErrCancelled: someone cancelled the request.
	ErrCancelled = errors.New("approval cancelled")
	// ErrAlreadyRan: the action already ran under its IdempotencyKey
	// (Guard answered StatusConsumed, with the earlier request's ID and
	// artifact), so Do did not run the function again. Whether that run
	// succeeded is the caller's to know: the gate records only that it was
	// let run. To run the operation again, give it a new key, and so a new
	// request and a new approval.
	ErrAlreadyRan = errors.New("action already ran")
	// ErrPasskey: a decision's passkey assertion is missing where a
	// policy requires one (Policy.RequirePasskey), or does not verify;
	// or a passkey cannot be registered.
	ErrPasskey = errors.New("passkey")
)
