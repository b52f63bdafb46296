// Package channels delivers the gate's notifications to people and
// systems: each adapter is an approval.Channel, given to the gate in
// approval.Config.Channels.
//
//	hook, err := channels.NewWebhook(channels.WebhookConfig{URL: "https://ops.example.com/hooks/approval", Secret: secret})
//	if err != nil { ... }
//	gate, err := approval.New(approval.Config{..., Channels: []approval.Channel{hook}})
//
// The adapters:
//
//   - Webhook (webhook.go): a signed JSON POST of the approval.Notification
//     to one URL. Receivers check it with Verify or VerifyRequest, and
//     read it with DecodeWebhook.
//   - Slack (slack.go): a Block Kit message to a Slack incoming webhook,
//     with Approve, Deny and Review buttons while the request is open.
//     NewSlackInteractions (slackinteractions.go) serves the Slack app's
//     Interactivity Request URL, so that the buttons can decide in Slack.
//   - Email (email.go): each notification as a plain-text and HTML email,
//     over SMTP with STARTTLS.
//
// Every adapter is safe for concurrent use, and its Send returns when its
// context ends.
//
// # Retries
//
// Send tells the gate whether a retry can help, through approval.SendError:
// an answer that no retry can change (over HTTP, a 4xx other than 408 and
// 429, or a redirect) is approval.Permanent; a 5xx, a 408, a 429, a network
// error or a timeout is transient, and an HTTP Retry-After is passed on
// with approval.RetryAfter (capped at MaxRetryAfter). A retry carries the
// same Notification.ID: the webhook sends it as Idempotency-Key, so that a
// receiver can drop the duplicates of a delivery whose answer was lost.
// Slack's incoming webhooks take no such key: a retried message may appear
// twice.
//
// # Secrets in errors
//
// The errors of Send are written to the audit trail and the log. Those of
// the webhook and Slack name the receiver by scheme and host only (a Slack
// webhook URL, or a query string, is itself a credential), never carry a
// signing secret, and quote at most a short, sanitised part of the
// receiver's answer.
//
// # Redirects
//
// No adapter follows a redirect: a redirected POST would carry the signed
// body, and its headers, to an address the configuration never named (and
// 301 and 302 turn it into a GET). A 3xx is a permanent failure whose error
// names the new location: update the configured URL to it.
package channels
