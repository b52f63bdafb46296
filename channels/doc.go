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
//     SlackInteractions (slackinteractions.go) serves the Slack app's
//     Interactivity Request URL, so that the buttons can decide in Slack,
//     and redraws the message clicked with who decided and the outcome
//     through the interaction's response_url (slackfollow.go).
//   - Email (email.go): each notification as a plain-text and HTML email,
//     over SMTP with STARTTLS.
//   - Teams (teams.go): an Adaptive Card to a Microsoft Teams Workflows
//     webhook, whose Approve, Deny and Review buttons open the review page.
//   - Discord (discord.go): an embed with Approve, Deny and Review buttons
//     through an application's Discord webhook. DiscordInteractions
//     (discordinteractions.go) serves the application's Interactions
//     Endpoint URL, so that the buttons decide in Discord.
//   - PagerDuty (pagerduty.go): an approval.Pager that raises one PagerDuty
//     alert per request through the Events API v2 when an escalation step
//     names it, and resolves it when the request is resolved.
//
// The Slack, Teams, Discord and email messages show who has voted and
// where each matched policy stands (Notification.Votes and Progress):
// information for the reader, never part of what a vote binds.
//
// Every adapter is safe for concurrent use, and its Send returns when its
// context ends.
//
// # Digests
//
// With approval.DeliveryConfig.DigestWindow, the asks to one person
// through one channel wait for the end of a window and go as one
// approval.NotifyDigest notification, Notification.Digest holding each
// (digest.go shares what every renderer needs). The webhook posts it as
// it is, each item a whole notification in "digest". Slack, Teams and
// Discord post one message headed "N requests await you" with one line
// per request, its name linked to its review page and marked urgent,
// reminder or escalated; a digest is a summary and carries no Approve or
// Deny button, and, posted where others read, no recipient's token.
// Requests decided before the digest went are counted, and listed last.
// Fifty requests fit within each platform's documented limits (Slack:
// 50 blocks and 3000 characters a section; Teams: 28 KB; Discord: 6000
// characters across the embeds, where fifty leave room for each name and
// link only); past that, the message says how many more there are and
// links the reviewers' queue (approval.Config.BaseURL + "/approvals").
// Email sends one message to the recipient alone, "N requests await your
// approval", with each request's own approve, deny and review links.
// Asks of an urgent policy (Notification.Urgent) never wait; their
// messages say "Urgent".
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
// Slack's incoming webhooks, Teams' and Discord's take no such key: a
// retried message may appear twice.
//
// # Links in shared channels
//
// The gate sends one notification per recipient, each with that
// recipient's approve and deny links: bearer tokens that decide as the
// recipient, whoever opens them. A Slack, Teams or Discord webhook posts
// every one to a channel that others read, so these adapters never put
// those links on a message unless told that the place is the recipient's
// alone (SlackConfig.LinkButtons). Their buttons either open the review
// page (Notification.ReviewURL), which decides as the reviewer signed in
// there, or send the click to an endpoint of this package
// (SlackInteractions, DiscordInteractions), which verifies the
// platform's signature, maps the user who clicked to an approver through
// a host function, mints a token for that approver alone and calls
// Gate.Decide with it and the action hash the message showed, so every
// check of a decision applies and the audit trail names the approver and
// the platform's user.
//
// # Teams
//
// Create a workflow in Teams (Workflows app: the "Post to a channel when
// a webhook request is received" template, or a flow whose trigger is
// "When a Teams webhook request is received" followed by "Post card in a
// chat or channel" with the attachments' content as the card), copy its
// HTTP POST URL into TeamsConfig.WebhookURL, and set
// approval.Config.BaseURL so that the card's buttons reach the review
// page. The card is Adaptive Card 1.4 within MaxTeamsMessageBytes
// (Teams refuses a message over 28 KB): the payload is cut first, and the
// card says how much it shows.
//
// # Discord
//
// In the Developer Portal, create an application; copy its Public Key
// into DiscordInteractionsConfig.PublicKey, serve DiscordInteractions over
// https and enter its address as the Interactions Endpoint URL (Discord
// sends a signed PING, and later invalid signatures, to check it). Create
// the channel's webhook with the application's bot (POST
// /channels/{channel.id}/webhooks with the bot token): Discord delivers
// interactive buttons only from a webhook its application owns. Give its
// URL to DiscordConfig.WebhookURL. DiscordInteractionsConfig.UserID maps a
// Discord user ID to an approver ID, from links the host has verified.
// The handler answers each click at once with an ephemeral message (type
// 4): Discord waits 3 seconds, and a decision is a store write.
//
// # Secrets in errors
//
// The errors of Send are written to the audit trail and the log. Those of
// the webhook, Slack, Teams and Discord name the receiver by scheme and
// host only (a Slack, Teams or Discord webhook URL, or a query string, is
// itself a credential), never carry a
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
