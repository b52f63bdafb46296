// The email channel: one message per notification, plain text and HTML,
// sent over SMTP with STARTTLS.

package channels

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/signoff/approval"
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
	// Username logs in with AUTH PLAIN, and only over TLS: it is never
	// sent in clear, whatever AllowInsecure says. Set it with Password, or
	// neither. Defaults to none: no AUTH.
	Username string
	// Password is Username's password, sent only over TLS. Defaults to
	// none.
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
// A digest (approval.NotifyDigest) is one message, "7 requests await
// your approval", whose parts list every request gathered, numbered, with
// its markers (urgent, reminder, escalated), requester, reason, deadline
// and request ID, and the same links as a single request's message:
// approve and deny while it is open, and review. It has no References or
// X-Approval-Request header: it is about many requests.
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
	check := checkNotification
	if n.Type == approval.NotifyDigest {
		check = checkDigest
	}
	if err := check(&n); err != nil {
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
