package channels

import "errors"

// ErrInvalidConfig is wrapped by the errors of a channel's constructor
// when its configuration cannot work; the message names the field.
var ErrInvalidConfig = errors.New("channels: invalid configuration")

// Errors of Verify and VerifyRequest, which wrap one of these (or
// ErrInvalidConfig, for a secret too short), with context.
var (
	// ErrSignature: the signature header is missing, malformed, or does not
	// match the body.
	ErrSignature = errors.New("channels: signature invalid")
	// ErrTimestamp: the timestamp header is missing, malformed, too old, or
	// too far in the future (a replay, or a clock that is off).
	ErrTimestamp = errors.New("channels: timestamp invalid")
	// ErrBodyTooLarge: the body exceeds MaxWebhookBodyBytes.
	ErrBodyTooLarge = errors.New("channels: body too large")
	// ErrMalformedBody: DecodeWebhook was given a body that is not a
	// notification.
	ErrMalformedBody = errors.New("channels: malformed webhook body")
)

// Errors of Email.Send. Each is returned wrapped in a permanent
// approval.SendError: no retry can help until the host changes something.
var (
	// ErrNoSTARTTLS is returned when the SMTP server does not offer
	// STARTTLS and the message or the credentials may not go in clear
	// (see EmailConfig.AllowInsecure).
	ErrNoSTARTTLS = errors.New("channels: email: the SMTP server does not offer STARTTLS")
	// ErrNoAddress is returned when EmailConfig.Address has no address
	// for the recipient (it returned "").
	ErrNoAddress = errors.New("channels: email: the recipient has no email address")
)
