package channels

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/signoff/approval"
)

// PagerDuty's Events API v2, as documented at
// https://developer.pagerduty.com/docs/events-api-v2/overview/ (response
// codes, the 512 KB size limit) and
// https://developer.pagerduty.com/docs/events-api-v2/trigger-events/ ("Send
// an Alert Event": the fields, their limits, de-duplication).
const (
	// DefaultPagerDutyEventsURL is the Events API v2 endpoint.
	DefaultPagerDutyEventsURL = "https://events.pagerduty.com/v2/enqueue"
	// MaxPagerDutyEventBytes is the documented limit of an event's body:
	// "Events API payloads are limited to 512 KB".
	MaxPagerDutyEventBytes = 512 << 10
	// MaxPagerDutySummary bounds payload.summary, in characters ("The
	// maximum permitted length of this property is 1024 characters").
	MaxPagerDutySummary = 1024
	// MaxPagerDutyDedupKey bounds dedup_key, in characters (255).
	MaxPagerDutyDedupKey = 255
	// pagerDutyKeyLen is the length of an integration key ("the 32
	// character Integration Key").
	pagerDutyKeyLen = 32
)

// Bounds on the text of an event's custom_details, in bytes. PagerDuty
// sets none below the body's 512 KB; these keep an alert readable.
const (
	pdNameMax    = 200
	pdWhoMax     = 200
	pdMessageMax = 2000
	pdReasonMax  = 1000
	pdPolicies   = 32
)

// PagerDutyConfig configures NewPagerDuty. RoutingKey is required.
type PagerDutyConfig struct {
	// RoutingKey is the 32-character Integration Key of an Events API v2
	// integration on a PagerDuty service (or of a global ruleset). It is a
	// credential: errors and logs never carry it. Required.
	RoutingKey string
	// EventsURL is the Events API v2 endpoint; https only. Defaults to
	// DefaultPagerDutyEventsURL (an EU account may use
	// https://events.eu.pagerduty.com/v2/enqueue).
	EventsURL string
	// Client sends the POSTs; the channel uses a copy whose CheckRedirect
	// refuses every redirect. Defaults to a client on
	// http.DefaultTransport.
	Client *http.Client
	// Name is the channel's name in the audit trail, and the name an
	// escalation step gives in EscalationStep.Channels. Defaults to
	// "pagerduty".
	Name string
	// Source is payload.source, "the unique location of the affected
	// system": the gate or service that asks. Defaults to "approval".
	Source string
	// Severity is payload.severity for an action without a Risk: one of
	// "critical", "error", "warning" and "info". An action's Risk maps to
	// a severity of its own (see PagerDuty). Defaults to "warning".
	Severity string
	// Component, Group and Class are payload.component, payload.group and
	// payload.class, for PagerDuty's event rules. Default to none.
	Component, Group, Class string
	// Now is the clock for Retry-After dates. Defaults to time.Now.
	Now func() time.Time
}

// PagerDuty is an approval.Pager that raises one PagerDuty alert per
// request through the Events API v2, and resolves it when the request is
// decided, cancelled or times out. Name it in an escalation step's
// Channels ("page the on-call SRE after 15 minutes"); PagerDuty routes the
// alert to whoever is on call for the integration's service, and an
// oncall.PagerDuty directory can make that person an approver. As a Pager,
// it gets no ordinary notification (see approval.Pager).
//
// A notification that asks (requested, reminder, escalated, alert) sends
// an event with event_action "trigger"; NotifyResolved and NotifyTimedOut
// send "resolve". Both carry the same dedup_key, PagerDutyDedupKey of the
// request ID, so a second step's trigger adds to the open alert rather
// than opening another, and the resolve closes it. PagerDuty drops a
// resolve for a key with no open alert, which makes one for a request
// never paged harmless. A break-glass alert (its Note begins
// "BREAK-GLASS:") triggers under the key with "/break-glass" appended,
// which no resolve names: a security team closes it by hand.
//
// A trigger's payload.summary says what is asked and by whom (cut to
// 1024 characters); payload.severity is the action's Risk (low: info,
// medium: warning, high: error, critical: critical) or
// PagerDutyConfig.Severity; payload.timestamp is Notification.At;
// custom_details carry the request ID, action name, requester, the
// requester's message, the reason, the step's note, deadline, risk,
// matched policies and action hash, cut to bounds; links holds the review
// page (Notification.ReviewURL, any token removed). An alert is shared by
// whoever PagerDuty notifies, so it never carries the payload nor an
// approve or deny link. The body never exceeds MaxPagerDutyEventBytes.
//
// PagerDuty answers 202 to an event it accepted. A 400 ("Check that the
// JSON is valid") and any other 4xx but 408 and 429 are permanent; a 429
// (rate limited: about 120 events a minute per integration key), a 5xx
// or a network error is transient, a Retry-After honoured, as PagerDuty
// documents ("retry after some time").
//
// Create a PagerDuty with NewPagerDuty; the zero value is not usable. It
// is safe for concurrent use.
type PagerDuty struct {
	name                    string
	key                     string
	source, severity        string
	component, group, class string
	send                    *sender
}

// NewPagerDuty validates cfg, fills its defaults and returns the
// PagerDuty channel. Errors wrap ErrInvalidConfig and never quote the
// routing key.
func NewPagerDuty(cfg PagerDutyConfig) (*PagerDuty, error) {
	if len(cfg.RoutingKey) != pagerDutyKeyLen || strings.IndexFunc(cfg.RoutingKey, func(r rune) bool {
		return !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) >= 0 {
		return nil, fmt.Errorf("%w: PagerDutyConfig.RoutingKey has %d bytes, want the 32 letters and digits of an Events API v2 integration key",
			ErrInvalidConfig, len(cfg.RoutingKey))
	}
	if cfg.EventsURL == "" {
		cfg.EventsURL = DefaultPagerDutyEventsURL
	}
	u, err := parseURL("PagerDutyConfig.EventsURL", cfg.EventsURL, "https")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	switch cfg.Severity {
	case "":
		cfg.Severity = "warning"
	case "critical", "error", "warning", "info":
	default:
		return nil, fmt.Errorf("%w: PagerDutyConfig.Severity %q: want critical, error, warning or info",
			ErrInvalidConfig, sanitize([]byte(cfg.Severity), 16))
	}
	if cfg.Name == "" {
		cfg.Name = "pagerduty"
	}
	if cfg.Source == "" {
		cfg.Source = "approval"
	}
	return &PagerDuty{name: cfg.Name, key: cfg.RoutingKey, source: sanitize([]byte(cfg.Source), 255), severity: cfg.Severity,
		component: cfg.Component, group: cfg.Group, class: cfg.Class,
		send: newSender("pagerduty", u, cfg.Client, cfg.Now)}, nil
}

// Name implements approval.Channel.
func (p *PagerDuty) Name() string { return p.name }

// PagesRequests implements approval.Pager.
func (p *PagerDuty) PagesRequests() {}

// PagerDutyDedupKey returns the dedup_key of request id's alert:
// "approval/" and the ID, or, for an ID too long for PagerDuty's 255
// characters, "approval/sha256:" and the hex SHA-256 of the ID. It is the
// same on every gate and every attempt.
func PagerDutyDedupKey(requestID string) string {
	k := "approval/" + requestID
	if len(k) <= MaxPagerDutyDedupKey-len(pdBreakGlass) {
		return k
	}
	sum := sha256.Sum256([]byte(requestID))
	return "approval/sha256:" + hex.EncodeToString(sum[:])
}

// pdBreakGlass ends the dedup_key of a break-glass alert.
const pdBreakGlass = "/break-glass"

// Send implements approval.Channel: it posts n's event and classifies the
// answer (see PagerDuty). It returns when ctx ends.
func (p *PagerDuty) Send(ctx context.Context, n approval.Notification) error {
	body, err := p.event(n)
	if err != nil {
		return approval.Permanent(fmt.Errorf("channels: pagerduty: encode notification %s: %w", n.ID, err))
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "signoff-approval-pagerduty")
	return p.scrub(p.send.post(ctx, h, body, nil))
}

// scrub keeps the routing key out of an error, should an answer quote it.
func (p *PagerDuty) scrub(err error) error {
	if err == nil || !strings.Contains(err.Error(), p.key) {
		return err
	}
	clean := errors.New(strings.ReplaceAll(err.Error(), p.key, "[routing key]"))
	var se *approval.SendError
	if errors.As(err, &se) {
		return &approval.SendError{Err: clean, Permanent: se.Permanent, RetryAfter: se.RetryAfter}
	}
	return clean
}

// The JSON of an Events API v2 alert event, as far as this package writes
// it.
type (
	pdEvent struct {
		RoutingKey  string     `json:"routing_key"`
		EventAction string     `json:"event_action"`
		DedupKey    string     `json:"dedup_key"`
		Payload     *pdPayload `json:"payload,omitempty"`
		Client      string     `json:"client,omitempty"`
		ClientURL   string     `json:"client_url,omitempty"`
		Links       []pdLink   `json:"links,omitempty"`
	}
	pdPayload struct {
		Summary       string     `json:"summary"`
		Source        string     `json:"source"`
		Severity      string     `json:"severity"`
		Timestamp     string     `json:"timestamp,omitempty"`
		Component     string     `json:"component,omitempty"`
		Group         string     `json:"group,omitempty"`
		Class         string     `json:"class,omitempty"`
		CustomDetails *pdDetails `json:"custom_details,omitempty"`
	}
	pdLink struct {
		Href string `json:"href"`
		Text string `json:"text,omitempty"`
	}
	// pdDetails is custom_details: what an on-call engineer reads first.
	pdDetails struct {
		Notification string   `json:"notification"`
		RequestID    string   `json:"request_id"`
		Action       string   `json:"action"`
		RequestedBy  string   `json:"requested_by"`
		Message      string   `json:"message,omitempty"`
		Reason       string   `json:"reason,omitempty"`
		Note         string   `json:"note,omitempty"`
		Status       string   `json:"status"`
		Risk         string   `json:"risk,omitempty"`
		Deadline     string   `json:"deadline,omitempty"`
		Policies     []string `json:"policies,omitempty"`
		ActionHash   string   `json:"action_hash"`
		Redacted     bool     `json:"redacted,omitempty"`
	}
)

// event encodes n's event within MaxPagerDutyEventBytes.
func (p *PagerDuty) event(n approval.Notification) ([]byte, error) {
	key := PagerDutyDedupKey(n.RequestID)
	if n.Type == approval.NotifyResolved || n.Type == approval.NotifyTimedOut {
		return json.Marshal(pdEvent{RoutingKey: p.key, EventAction: "resolve", DedupKey: key})
	}
	breakGlass := n.Type == approval.NotifyAlert && strings.HasPrefix(n.Note, "BREAK-GLASS:")
	if breakGlass {
		key += pdBreakGlass
	}
	a := n.Action
	name := a.Name
	if name == "" {
		name = "(unnamed action)"
	}
	summary := pdLabel(n.Type, breakGlass) + ": " + sanitize([]byte(name), pdNameMax) +
		", requested by " + sanitize([]byte(a.RequestedBy), pdWhoMax)
	if n.Note != "" && !breakGlass {
		summary += " (" + n.Note + ")"
	} else if breakGlass {
		summary += ". " + strings.TrimPrefix(n.Note, "BREAK-GLASS: ")
	}
	pl := &pdPayload{Summary: sanitize([]byte(summary), MaxPagerDutySummary), Source: p.source, Severity: p.severityOf(a.Risk),
		Component: p.component, Group: p.group, Class: p.class}
	if !n.At.IsZero() {
		pl.Timestamp = n.At.UTC().Format(time.RFC3339)
	}
	d := &pdDetails{Notification: string(n.Type), RequestID: n.RequestID, Action: sanitize([]byte(a.Name), pdNameMax),
		RequestedBy: sanitize([]byte(a.RequestedBy), pdWhoMax), Message: sanitize([]byte(a.Message), pdMessageMax),
		Reason: sanitize([]byte(n.Reason), pdReasonMax), Note: sanitize([]byte(n.Note), pdReasonMax), Status: string(n.Status),
		ActionHash: n.ActionHash, Redacted: n.Redacted}
	if a.Risk != approval.RiskNone {
		d.Risk = a.Risk.String()
	}
	if !n.Deadline.IsZero() {
		d.Deadline = n.Deadline.UTC().Format(time.RFC3339)
	}
	for i, ref := range n.Policies {
		if i == pdPolicies {
			d.Policies = append(d.Policies, "and "+strconv.Itoa(len(n.Policies)-i)+" more")
			break
		}
		d.Policies = append(d.Policies, sanitize([]byte(ref.Name), pdNameMax))
	}
	pl.CustomDetails = d
	ev := pdEvent{RoutingKey: p.key, EventAction: "trigger", DedupKey: key, Payload: pl, Client: "approval"}
	if review, ok := reviewLink(n.ReviewURL, ""); ok {
		ev.ClientURL = review
		ev.Links = []pdLink{{Href: review, Text: "Review the request"}}
	}
	b, err := json.Marshal(ev)
	if err != nil || len(b) <= MaxPagerDutyEventBytes {
		return b, err
	}
	// Unreachable with the bounds above; kept so that the limit holds
	// whatever they become.
	pl.CustomDetails = &pdDetails{Notification: d.Notification, RequestID: d.RequestID, Status: d.Status, ActionHash: d.ActionHash}
	if b, err = json.Marshal(ev); err == nil && len(b) > MaxPagerDutyEventBytes {
		err = fmt.Errorf("the event does not fit in %d bytes", MaxPagerDutyEventBytes)
	}
	return b, err
}

// severityOf maps an action's risk to a PagerDuty severity.
func (p *PagerDuty) severityOf(r approval.Risk) string {
	switch r {
	case approval.RiskLow:
		return "info"
	case approval.RiskMedium:
		return "warning"
	case approval.RiskHigh:
		return "error"
	case approval.RiskCritical:
		return "critical"
	}
	return p.severity
}

// pdLabel says what an alert is about: its summary's first words.
func pdLabel(t approval.NotificationType, breakGlass bool) string {
	switch {
	case breakGlass:
		return "Break-glass approval"
	case t == approval.NotifyReminder:
		return "Reminder: approval needed"
	case t == approval.NotifyEscalated:
		return "Escalated: approval needed"
	case t == approval.NotifyAlert:
		return "Approval waiting"
	}
	return "Approval needed"
}
