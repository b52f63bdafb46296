// The email channel: one message per notification, plain text and HTML,
// sent over SMTP with STARTTLS.

package channels

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"html/template"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/signoff/approval"
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

// EmailConfig configures an Email channel. Addr, From and Address are
// required.
type EmailConfig struct {
	// Addr is the SMTP server's "host:port", for example
	// "smtp.example.com:587" (the submission port, which offers STARTTLS).
	// Required.
	Addr string
	// From is the sender, an RFC 5322 address such as
	// "Approvals <approvals@example.com>": the From header and the
	// envelope sender (MAIL FROM). Its address must be ASCII. Required.
	From string
	// Username and Password log in with AUTH PLAIN, and only over TLS:
	// they are never sent in clear, whatever AllowInsecure says. Set both
	// or neither. Defaults to none: no AUTH.
	Username string
	Password string
	// TLSConfig configures STARTTLS. It is cloned; its ServerName defaults
	// to Addr's host and its MinVersion to TLS 1.2. Defaults to a config
	// that trusts the system's roots.
	TLSConfig *tls.Config
	// AllowInsecure lets messages go in clear to a server that does not
	// offer STARTTLS, such as a relay on the same host. A server that
	// offers STARTTLS is used over TLS all the same, and a channel with a
	// Username still refuses a server without it. Defaults to false: a
	// server without STARTTLS is refused (ErrNoSTARTTLS).
	AllowInsecure bool
	// Address maps a recipient's user ID (Notification.Recipient) to
	// their email address ("alice@example.com" or
	// "Alice <alice@example.com>"). Send calls it with Send's context,
	// before connecting, and stops waiting for it when that context ends.
	// "" means the user has no address: Send fails with ErrNoAddress,
	// permanently. An error, or a panic, fails Send as a transient error,
	// unless the error is a permanent approval.SendError (wrap it with
	// approval.Permanent when no retry can help). It may be called
	// concurrently. Required.
	Address func(ctx context.Context, userID string) (string, error)
	// Name is the channel's name in the audit trail. Defaults to "email".
	Name string
	// Now is the clock of the Date header. Defaults to time.Now.
	Now func() time.Time
	// Hostname names this host in EHLO and is the domain of the
	// Message-ID header: a domain name, or an address literal such as
	// "[192.0.2.1]". Defaults to the domain of From.
	Hostname string
}

// Email is a Channel that sends each notification to its recipient as an
// email over SMTP, on a connection of its own: a multipart/alternative
// message with a plain-text and an HTML part, with approve and deny
// links for open requests. It uses STARTTLS, and refuses a server that
// does not offer it unless EmailConfig.AllowInsecure says otherwise.
//
// Send returns a permanent approval.SendError when retrying cannot help:
// a 5xx reply from the server (but 552 to RCPT, which RFC 5321 says to
// treat as temporary), a refused TLS certificate, a missing STARTTLS or
// AUTH, a recipient without a usable address, or a notification that
// cannot be written as a safe message. 4xx replies, network errors and
// the end of ctx are transient. The Message-ID is built from
// Notification.ID, so a retry carries the same one, and so do the
// Idempotency-Key and X-Approval-Notification-ID headers.
//
// Create an Email with NewEmail; the zero value is not usable. It is safe
// for concurrent use.
type Email struct {
	cfg  EmailConfig
	host string       // Addr's host, the name AUTH PLAIN is bound to
	from mail.Address // From, parsed
	tls  *tls.Config
}

// NewEmail returns an Email channel for cfg, with its defaults filled in.
// It reports ErrInvalidConfig (wrapped, naming the field) when cfg cannot
// work. It does not connect to the server.
func NewEmail(cfg EmailConfig) (*Email, error) {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: EmailConfig.%s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil || host == "" || port == "" {
		return nil, invalid(`Addr %q is not "host:port" (for example "smtp.example.com:587")`, cfg.Addr)
	}
	from, err := parseMailAddress(cfg.From)
	if err != nil {
		return nil, invalid("From %q: %v", cfg.From, err)
	}
	if cfg.Address == nil {
		return nil, invalid("Address is nil (it maps a user ID to an email address)")
	}
	if (cfg.Username == "") != (cfg.Password == "") {
		return nil, invalid("Username and Password: set both or neither")
	}
	if strings.ContainsRune(cfg.Username, 0) || strings.ContainsRune(cfg.Password, 0) {
		return nil, invalid("Username or Password contains a NUL byte, which AUTH PLAIN cannot carry")
	}
	if cfg.Hostname == "" {
		cfg.Hostname = from.Address[strings.LastIndexByte(from.Address, '@')+1:]
		if !validMailHost(cfg.Hostname) {
			return nil, invalid("Hostname is empty and From's domain %q is not a host name: set Hostname", cfg.Hostname)
		}
	} else if !validMailHost(cfg.Hostname) {
		return nil, invalid("Hostname %q is not a host name or an address literal", cfg.Hostname)
	}
	if cfg.Name == "" {
		cfg.Name = "email"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	tc := cfg.TLSConfig.Clone()
	if tc == nil {
		tc = &tls.Config{}
	}
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	if tc.MinVersion == 0 {
		tc.MinVersion = tls.VersionTLS12
	}
	return &Email{cfg: cfg, host: host, from: *from, tls: tc}, nil
}

// Name returns EmailConfig.Name.
func (e *Email) Name() string { return e.cfg.Name }

// Send looks up the recipient's address, writes the message and delivers
// it in one SMTP transaction. It returns when ctx ends: the connection's
// deadline follows ctx.
func (e *Email) Send(ctx context.Context, n approval.Notification) error {
	if err := checkNotification(&n); err != nil {
		return approval.Permanent(fmt.Errorf("channels: email: notification %q: %w", n.ID, err))
	}
	to, err := e.recipient(ctx, n.Recipient)
	if err != nil {
		return err
	}
	msg, err := e.compose(n, to)
	if err != nil {
		return approval.Permanent(fmt.Errorf("channels: email: notification %q: %w", n.ID, err))
	}
	return e.deliver(ctx, to.Address, msg)
}

// checkNotification refuses what cannot go into a message as it is: IDs
// that are not safe in a header, and links that are not web links.
func checkNotification(n *approval.Notification) error {
	if !isMsgIDPart(n.ID) {
		return errors.New("the ID cannot be part of a Message-ID (want letters, digits and -._)")
	}
	if !isMsgIDPart(n.RequestID) {
		return fmt.Errorf("request ID %q cannot be part of a header (want letters, digits and -._)", n.RequestID)
	}
	for _, l := range [...]struct{ name, url string }{{"ReviewURL", n.ReviewURL}, {"ApproveURL", n.ApproveURL}, {"DenyURL", n.DenyURL}} {
		if l.url != "" && !isMailLink(l.url) {
			return fmt.Errorf("%s is not an absolute http or https URL", l.name)
		}
	}
	return nil
}

// recipient resolves userID through EmailConfig.Address. The host's
// function is bounded by ctx: one that hangs is left behind when ctx ends.
func (e *Email) recipient(ctx context.Context, userID string) (*mail.Address, error) {
	type result struct {
		addr string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- result{err: fmt.Errorf("EmailConfig.Address panicked: %v", p)}
			}
		}()
		a, err := e.cfg.Address(ctx, userID)
		done <- result{a, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		r.err = ctx.Err()
	}
	if r.err != nil {
		return nil, fmt.Errorf("channels: email: address of %q: %w", userID, r.err)
	}
	if r.addr == "" {
		return nil, approval.Permanent(fmt.Errorf("%w: %q", ErrNoAddress, userID))
	}
	a, err := parseMailAddress(r.addr)
	if err != nil {
		// The address itself stays out of the error, which is audited.
		return nil, approval.Permanent(fmt.Errorf("channels: email: address of %q is not usable: %w", userID, err))
	}
	return a, nil
}

// parseMailAddress parses one RFC 5322 address that is safe in a header and
// in an SMTP command: no control characters, an ASCII mailbox.
func parseMailAddress(s string) (*mail.Address, error) {
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return nil, errors.New("contains a control character")
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, err
	}
	for _, r := range a.Address {
		if r <= ' ' || r > '~' {
			return nil, errors.New("the mailbox is not printable ASCII (SMTPUTF8 is not supported)")
		}
	}
	if strings.ContainsAny(a.String(), "\r\n") {
		return nil, errors.New("cannot be written as a header")
	}
	return a, nil
}

// validMailHost reports whether s may follow EHLO and "@" in a Message-ID:
// a domain of letters, digits and hyphens, or an address literal.
func validMailHost(s string) bool {
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		return len(s) > 2 && !strings.ContainsFunc(s[1:len(s)-1], func(r rune) bool {
			return r <= ' ' || r > '~' || r == '[' || r == ']' || r == '\\'
		})
	}
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// deliver sends msg to rcpt in one SMTP session. ctx bounds every step:
// its deadline is the connection's, and its end cuts the connection.
func (e *Email) deliver(ctx context.Context, rcpt string, msg []byte) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", e.cfg.Addr)
	if err != nil {
		return e.fail(ctx, "connect", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	// A deadline in the past makes every blocked read and write return.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	c, err := smtp.NewClient(conn, e.host)
	if err != nil {
		return e.fail(ctx, "greeting", err)
	}
	defer c.Close()
	if err := c.Hello(e.cfg.Hostname); err != nil {
		return e.fail(ctx, "EHLO", err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := c.StartTLS(e.tls); err != nil {
			return e.fail(ctx, "STARTTLS", err)
		}
	} else if !e.cfg.AllowInsecure {
		return approval.Permanent(fmt.Errorf("%w (%s); not sending in clear", ErrNoSTARTTLS, e.cfg.Addr))
	}
	if e.cfg.Username != "" {
		if _, ok := c.TLSConnectionState(); !ok {
			return approval.Permanent(fmt.Errorf("%w (%s); not sending credentials in clear", ErrNoSTARTTLS, e.cfg.Addr))
		}
		if ok, mechs := c.Extension("AUTH"); !ok || !slices.Contains(strings.Fields(strings.ToUpper(mechs)), "PLAIN") {
			return approval.Permanent(fmt.Errorf("channels: email: AUTH: the SMTP server (%s) does not offer AUTH PLAIN (offers %q), but EmailConfig.Username is set", e.cfg.Addr, mechs))
		}
		if err := c.Auth(smtp.PlainAuth("", e.cfg.Username, e.cfg.Password, e.host)); err != nil {
			return e.fail(ctx, "AUTH", err)
		}
	}
	if err := c.Mail(e.from.Address); err != nil {
		return e.fail(ctx, "MAIL FROM", err)
	}
	if err := c.Rcpt(rcpt); err != nil {
		return e.fail(ctx, "RCPT TO", err)
	}
	w, err := c.Data()
	if err != nil {
		return e.fail(ctx, "DATA", err)
	}
	if _, err := w.Write(msg); err != nil {
		return e.fail(ctx, "DATA", err)
	}
	if err := w.Close(); err != nil {
		return e.fail(ctx, "DATA", err)
	}
	// The server has taken the message: a failed QUIT must not make the
	// gate send it again.
	_ = c.Quit()
	return nil
}

// fail classifies an error of an SMTP step: the end of ctx, 4xx replies
// and network errors are transient; 5xx replies (but 552 to RCPT, RFC
// 5321 section 4.5.3.1.10) and a refused certificate are permanent.
func (e *Email) fail(ctx context.Context, step string, err error) error {
	cerr := ctx.Err()
	if dl, ok := ctx.Deadline(); ok && cerr == nil && !time.Now().Before(dl) {
		// The connection's deadline, which is ctx's, passed a moment
		// before ctx's own timer fired.
		cerr = context.DeadlineExceeded
	}
	if cerr != nil {
		return fmt.Errorf("channels: email: %s: %w (%w)", step, cerr, err)
	}
	err = fmt.Errorf("channels: email: %s (%s): %w", step, e.cfg.Addr, err)
	var reply *textproto.Error
	if errors.As(err, &reply) && reply.Code >= 500 && reply.Code < 600 && !(step == "RCPT TO" && reply.Code == 552) {
		return approval.Permanent(err)
	}
	var cert *tls.CertificateVerificationError
	if errors.As(err, &cert) {
		return approval.Permanent(err)
	}
	return err
}

// compose writes the message for n to the recipient to: RFC 5322 headers
// and a multipart/alternative body whose parts are quoted-printable.
// n has passed checkNotification.
func (e *Email) compose(n approval.Notification, to *mail.Address) ([]byte, error) {
	v := newEmailView(&n)

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, p := range [...]struct {
		ctype string
		write func(io.Writer) error
	}{
		{"text/plain; charset=utf-8", v.writeText},
		{"text/html; charset=utf-8", func(w io.Writer) error { return emailHTML.Execute(w, v) }},
	} {
		pw, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {p.ctype}, "Content-Transfer-Encoding": {"quoted-printable"}})
		if err != nil {
			return nil, err
		}
		qw := quotedprintable.NewWriter(pw)
		if err := p.write(qw); err != nil {
			return nil, err
		}
		if err := qw.Close(); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}

	var b bytes.Buffer
	header := func(name, value string) { writeMailHeader(&b, name, value) }
	header("From", e.from.String())
	header("To", to.String())
	header("Subject", mime.QEncoding.Encode("utf-8", v.Subject))
	header("Date", e.cfg.Now().Format(time.RFC1123Z))
	header("Message-ID", "<"+n.ID+"@"+e.cfg.Hostname+">")
	// Mail clients thread every message about one request together.
	header("References", "<"+n.RequestID+"@"+e.cfg.Hostname+">")
	header("MIME-Version", "1.0")
	header("Content-Type", mime.FormatMediaType("multipart/alternative", map[string]string{"boundary": mw.Boundary()}))
	header("Auto-Submitted", "auto-generated") // RFC 3834: no auto-replies
	header("X-Approval-Request", n.RequestID)
	header("X-Approval-Type", mime.QEncoding.Encode("utf-8", mailLine(string(n.Type))))
	header("X-Approval-Notification-ID", n.ID)
	header("Idempotency-Key", n.ID)
	b.WriteString("\r\n")
	b.Write(body.Bytes())
	return b.Bytes(), nil
}

// writeMailHeader writes one header field, folded at spaces so that its
// lines keep to 78 characters where its words allow (an RFC 2047 word is
// up to 75). value must be free of CR and LF (every caller's is).
func writeMailHeader(b *bytes.Buffer, name, value string) {
	b.WriteString(name)
	b.WriteByte(':')
	line := len(name) + 1
	for _, word := range strings.Split(value, " ") {
		if line > 1 && line+1+len(word) > 78 {
			b.WriteString("\r\n")
			line = 0
		}
		b.WriteByte(' ')
		b.WriteString(word)
		line += 1 + len(word)
	}
	b.WriteString("\r\n")
}

// isMsgIDPart reports whether s may stand before the "@" of a Message-ID
// and in a header as it is.
func isMsgIDPart(s string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	for _, r := range s {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '.' || r == '_') {
			return false
		}
	}
	return s[0] != '.' && s[len(s)-1] != '.' && !strings.Contains(s, "..")
}

// isMailLink reports whether s is an absolute http(s) URL of printable ASCII.
func isMailLink(s string) bool {
	for _, r := range s {
		if r <= ' ' || r > '~' {
			return false
		}
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// mailLine makes s fit on one line: control characters and line or
// paragraph separators become spaces, runs of spaces one space.
func mailLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// mailParagraphs normalises a multi-line text: line breaks become "\n", other
// control characters but tabs are dropped.
func mailParagraphs(s string) string {
	s = strings.NewReplacer("\r\n", "\n", "\r", "\n", "\u2028", "\n", "\u2029", "\n").Replace(s)
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if r != '\n' && r != '\t' && unicode.IsControl(r) {
			return -1
		}
		return r
	}, s))
}

// mailClip cuts s to at most n runes, marking the cut.
func mailClip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// emailView is what both parts of a message show. Every string in it is
// one line but Message; html/template escapes them all in the HTML part.
type emailView struct {
	Subject, Headline, Name, Lead, Message string
	Rows                                   []emailRow
	Decide                                 bool // there are approve or deny links
	ApproveURL, DenyURL, ReviewURL         string
	Redacted                               bool
	RequestID, NotificationID              string
}

// maxFilesShown bounds the paths of Action.Diff a message lists; the
// review page shows them all.
const maxFilesShown = 20

// emailRow is one labelled fact; Code marks hashes.
type emailRow struct {
	Label  string
	Values []string
	Code   bool
}

var mailStatusLabels = map[approval.Status]string{
	approval.StatusPending:   "Pending",
	approval.StatusEscalated: "Escalated",
	approval.StatusApproved:  "Approved",
	approval.StatusDenied:    "Denied",
	approval.StatusCancelled: "Cancelled",
	approval.StatusTimedOut:  "Timed out",
	approval.StatusConsumed:  "Approved and used",
	approval.StatusExpired:   "Expired",
}

// mailStatus names status s for people.
func mailStatus(s approval.Status) string {
	if l, ok := mailStatusLabels[s]; ok {
		return l
	}
	return mailLine(string(s))
}

// newEmailView gathers what the message about n shows.
func newEmailView(n *approval.Notification) *emailView {
	a := &n.Action
	v := &emailView{
		Name:     mailLine(a.Name),
		Message:  mailParagraphs(a.Message),
		Redacted: n.Redacted, RequestID: n.RequestID, NotificationID: n.ID,
		ReviewURL: n.ReviewURL,
	}
	if n.Status.Open() { // a closed request's links would only be refused
		v.ApproveURL, v.DenyURL = n.ApproveURL, n.DenyURL
	}
	v.Decide = v.ApproveURL != "" || v.DenyURL != ""
	switch n.Type {
	case approval.NotifyRequested:
		v.Headline, v.Lead = "Approval needed", "Your approval is needed before this action runs."
	case approval.NotifyReminder:
		v.Headline, v.Lead = "Reminder: approval needed", "This request is still waiting for your decision."
	case approval.NotifyEscalated:
		v.Headline, v.Lead = "Escalated: approval needed", "This request was escalated to you; it is still waiting for a decision."
	case approval.NotifyResolved:
		switch n.Status {
		case approval.StatusApproved, approval.StatusConsumed, approval.StatusDenied, approval.StatusCancelled:
			v.Headline = mailStatusLabels[n.Status]
			if n.Status == approval.StatusConsumed {
				v.Headline = "Approved"
			}
		default:
			v.Headline = "Resolved"
		}
		v.Lead = "This request is closed: " + strings.ToLower(mailStatus(n.Status)) + "."
	case approval.NotifyTimedOut:
		v.Headline, v.Lead = "Timed out", "This request timed out before enough approvers decided."
	default:
		v.Headline = "Approval request"
	}
	v.Subject = "[" + v.Headline + "] " + v.Name
	if first, _, _ := strings.Cut(v.Message, "\n"); first != "" {
		v.Subject += ": " + mailLine(first)
	}
	v.Subject = mailClip(v.Subject, 200)

	add := func(label string, code bool, values ...string) {
		var vs []string
		for _, s := range values {
			if s = mailLine(s); s != "" {
				vs = append(vs, s)
			}
		}
		if len(vs) > 0 {
			v.Rows = append(v.Rows, emailRow{Label: label, Values: vs, Code: code})
		}
	}
	if !n.Status.Open() {
		add("Outcome", false, mailStatus(n.Status))
	}
	add("Requested by", false, a.RequestedBy)
	if n.Status.Open() {
		add("Why approval is needed", false, n.Reason)
	} else {
		add("Reason", false, n.Reason)
	}
	add("Risk", false, a.Risk.String())
	if c := a.Cost; c != nil {
		add("Cost", false, strings.TrimSpace(strconv.FormatFloat(c.Amount, 'f', -1, 64)+" "+c.Currency))
	}
	add("Tags", false, strings.Join(a.Tags, ", "))
	var wf []string
	if a.RunID != "" {
		wf = append(wf, "run "+a.RunID)
	}
	if a.StepID != "" {
		wf = append(wf, "step "+a.StepID)
	}
	add("Workflow", false, strings.Join(wf, ", "))
	add("Constraints", false, a.Constraints...)
	var files []string
	for i, d := range a.Diff {
		if i == maxFilesShown {
			files = append(files, fmt.Sprintf("and %d more", len(a.Diff)-i))
			break
		}
		files = append(files, d.Path)
	}
	add("Changed files", false, files...)
	if !n.Deadline.IsZero() && n.Status.Open() {
		add("Deadline", false, n.Deadline.UTC().Format("Mon, 02 Jan 2006 15:04 MST"))
	}
	policies := make([]string, len(n.Policies))
	for i, p := range n.Policies {
		policies[i] = strings.TrimSpace(p.Name + " " + p.Hash)
	}
	add("Matched policies", false, policies...)
	add("Action hash", true, n.ActionHash)
	add("Payload hash", true, n.PayloadHash)
	return v
}

// writeText writes the plain-text part. Lines that come from the action
// are single lines after a label, or indented (the message), so that no
// text of the requester's can pass for a link line of the gate's.
func (v *emailView) writeText(w io.Writer) error {
	var b strings.Builder
	b.WriteString(v.Headline + ": " + v.Name + "\n\n")
	if v.Lead != "" {
		b.WriteString(v.Lead + "\n\n")
	}
	if v.Message != "" {
		b.WriteString("Message:\n")
		for _, l := range strings.Split(v.Message, "\n") {
			b.WriteString("    " + l + "\n")
		}
		b.WriteString("\n")
	}
	for _, r := range v.Rows {
		b.WriteString(r.Label + ": " + r.Values[0] + "\n")
		for _, s := range r.Values[1:] {
			b.WriteString("    " + s + "\n")
		}
	}
	if v.Redacted {
		b.WriteString("\nSome values are masked in this message; the hashes cover the real ones.\n")
	}
	b.WriteString("\n")
	if v.Decide {
		if v.ApproveURL != "" {
			b.WriteString("Approve: " + v.ApproveURL + "\n")
		}
		if v.DenyURL != "" {
			b.WriteString("Deny: " + v.DenyURL + "\n")
		}
		b.WriteString("Each link opens a confirmation page: nothing is decided until you confirm there.\n")
	}
	if v.ReviewURL != "" {
		b.WriteString("Review: " + v.ReviewURL + "\n")
	}
	b.WriteString("\n-- \nRequest " + v.RequestID + ", notification " + v.NotificationID + ".\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// emailHTML is the HTML part. Inline styles only: mail clients drop
// style sheets.
var emailHTML = template.Must(template.New("email").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Subject}}</title>
</head>
<body style="margin:0;padding:16px;font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;font-size:15px;line-height:1.5;color:#1f2328;background:#ffffff">
<div style="max-width:640px;margin:0 auto">
<h1 style="font-size:20px;margin:0 0 8px">{{.Headline}}: {{.Name}}</h1>
{{- if .Lead}}
<p style="margin:0 0 16px">{{.Lead}}</p>
{{- end}}
{{- if .Message}}
<div style="white-space:pre-wrap;margin:0 0 16px;padding:8px 12px;border-left:3px solid #d0d7de;background:#f6f8fa">{{.Message}}</div>
{{- end}}
<table role="presentation" style="border-collapse:collapse;margin:0 0 16px">
{{- range .Rows}}{{$code := .Code}}
<tr><th align="left" valign="top" style="padding:4px 16px 4px 0;font-weight:600;white-space:nowrap">{{.Label}}</th><td style="padding:4px 0;word-break:break-all">
{{- range $i, $s := .Values}}{{if $i}}<br>{{end}}{{if $code}}<code>{{$s}}</code>{{else}}{{$s}}{{end}}{{end -}}
</td></tr>
{{- end}}
</table>
{{- if .Redacted}}
<p style="margin:0 0 16px;font-size:13px;color:#57606a">Some values are masked in this message; the hashes cover the real ones.</p>
{{- end}}
{{- if .Decide}}
<p style="margin:24px 0 8px">
{{- if .ApproveURL}}<a href="{{.ApproveURL}}" style="display:inline-block;padding:10px 20px;margin:0 8px 8px 0;background:#1a7f37;color:#ffffff;text-decoration:none;border-radius:6px;font-weight:600">Approve</a>{{end}}
{{- if .DenyURL}}<a href="{{.DenyURL}}" style="display:inline-block;padding:10px 20px;margin:0 8px 8px 0;background:#cf222e;color:#ffffff;text-decoration:none;border-radius:6px;font-weight:600">Deny</a>{{end -}}
</p>
<p style="margin:0 0 16px;font-size:13px;color:#57606a">Each button opens a confirmation page: nothing is decided until you confirm there.</p>
{{- end}}
{{- if .ReviewURL}}
<p style="margin:0 0 16px"><a href="{{.ReviewURL}}">Review the request</a></p>
{{- end}}
<p style="margin:24px 0 0;font-size:12px;color:#57606a">Request {{.RequestID}}, notification {{.NotificationID}}.</p>
</div>
</body>
</html>
`))
