package channels_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/approvalhttp"
	"github.com/signoff/approval/channels"
	"github.com/signoff/approval/memstore"
)

var testNow = time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)

// addressBook is the host's user directory: user ID to email address.
func addressBook(_ context.Context, user string) (string, error) {
	switch user {
	case "alice":
		return "Alice Example <alice@example.com>", nil
	case "bob":
		return "bob@example.com", nil
	}
	return "", nil
}

// newTestEmail is an Email for the test server at addr, logging in over
// STARTTLS with the server's credentials and trusting its certificate.
func newTestEmail(t *testing.T, addr string, mod ...func(*channels.EmailConfig)) *channels.Email {
	t.Helper()
	cfg := channels.EmailConfig{
		Addr:      addr,
		From:      "Approvals <approvals@example.com>",
		Username:  smtpUser,
		Password:  smtpPass,
		TLSConfig: clientTLS(),
		Address:   addressBook,
		Now:       func() time.Time { return testNow },
	}
	for _, m := range mod {
		m(&cfg)
	}
	e, err := channels.NewEmail(cfg)
	require.NoError(t, err)
	return e
}

// requested is an approval.requested notification for alice as the gate
// makes them: a redacted action, its hashes, the matched policy and
// alice's own links.
func requested(t *testing.T) approval.Notification {
	t.Helper()
	a := approval.Action{
		Name:        "wire-transfer",
		RequestedBy: "user-1",
		Cost:        &approval.Cost{Amount: 5000, Currency: "EUR"},
		Risk:        approval.RiskHigh,
		Tags:        []string{"finance", "production"},
		Message:     "Überweisung an ACME GmbH für die Lieferungen im Februar – Rechnung 2026-0042, bitte prüfen\nFällig am Freitag.",
		RunID:       "run-42",
		StepID:      "pay-supplier",
		Constraints: []string{"one attempt", "only to the IBAN on file"},
		Payload:     []byte(`{"to":"DE89 3704 0044 0532 0130 00","amount":5000}`),
	}
	actionHash, payloadHash, err := a.Hashes()
	require.NoError(t, err)
	review := "https://ops.example.com/review/approvals/req_01957a0b2c3d7e8f9a0b1c2d3e4f5a6b"
	return approval.Notification{
		ID:          "5f0c3d2e-8a41-4f7e-9a52-2c9b7d1e6a30",
		Type:        approval.NotifyRequested,
		RequestID:   "req_01957a0b2c3d7e8f9a0b1c2d3e4f5a6b",
		Recipient:   "alice",
		Status:      approval.StatusPending,
		Action:      a,
		ActionHash:  actionHash,
		PayloadHash: payloadHash,
		Policies:    []approval.PolicyRef{{Name: "high_spend", Hash: "sha256:9c1185a5c5e9fc54612808977ee8f548b2258d31"}},
		Reason:      "transfers of 1,000 EUR or more need a finance approval",
		ReviewURL:   review,
		ApproveURL:  review + "?token=eyJyZXEiOiJyZXFfMDE5NTdhIn0.c2lnbmF0dXJl-_x&verdict=approve",
		DenyURL:     review + "?token=eyJyZXEiOiJyZXFfMDE5NTdhIiwidiI6ImRlbnkifQ.c2ln-_y&verdict=deny",
		Deadline:    testNow.Add(24 * time.Hour),
		At:          testNow,
		Attempt:     1,
	}
}

// parsed is a received message, taken apart as a mail client would.
type parsed struct {
	raw     string // the header section as sent
	header  mail.Header
	subject string // decoded
	text    string // the text/plain part, decoded
	html    string // the text/html part, decoded
}

func parseMail(t *testing.T, data []byte) parsed {
	t.Helper()
	raw, _, ok := bytes.Cut(data, []byte("\r\n\r\n"))
	require.True(t, ok, "no end of headers")
	for _, line := range strings.Split(string(data), "\r\n") {
		require.LessOrEqual(t, len(line), 998, "RFC 5322 line limit")
	}
	for _, line := range strings.Split(string(raw), "\r\n") {
		require.LessOrEqual(t, len(line), 78, "header lines are folded: %q", line)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	require.NoError(t, err)
	p := parsed{raw: string(raw) + "\r\n", header: msg.Header}
	p.subject, err = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	require.NoError(t, err)
	require.Equal(t, "1.0", msg.Header.Get("MIME-Version"))
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	require.NoError(t, err)
	require.Equal(t, "multipart/alternative", mt)
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var types []string
	for {
		part, err := mr.NextRawPart() // raw: keep Content-Transfer-Encoding
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		require.Equal(t, "quoted-printable", part.Header.Get("Content-Transfer-Encoding"))
		body, err := io.ReadAll(quotedprintable.NewReader(part))
		require.NoError(t, err)
		ct := part.Header.Get("Content-Type")
		types = append(types, ct)
		switch ct {
		case "text/plain; charset=utf-8":
			p.text = string(body)
		case "text/html; charset=utf-8":
			p.html = string(body)
		}
	}
	// RFC 2046: the richest alternative comes last.
	require.Equal(t, []string{"text/plain; charset=utf-8", "text/html; charset=utf-8"}, types)
	return p
}

// textLinks returns the URLs of the plain-text part's lines "label: URL".
func textLinks(text, label string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`(?m)^`+label+`: (\S+)\r?$`).FindAllStringSubmatch(text, -1) {
		out = append(out, m[1])
	}
	return out
}

// htmlLinks returns the hrefs of the HTML part's links labelled label.
func htmlLinks(doc, label string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`<a href="([^"]*)"[^>]*>`+label+`</a>`).FindAllStringSubmatch(doc, -1) {
		out = append(out, html.UnescapeString(m[1]))
	}
	return out
}

func isPermanent(err error) bool {
	var se *approval.SendError
	return errors.As(err, &se) && se.Permanent
}

func TestEmailSendsOverSTARTTLSWithAuth(t *testing.T) {
	t.Parallel()
	srv := startMailServer(t, serverOpts{})
	e := newTestEmail(t, srv.addr)
	require.Equal(t, "email", e.Name())
	n := requested(t)
	require.NoError(t, e.Send(context.Background(), n))

	msgs := srv.messages()
	require.Len(t, msgs, 1)
	got := msgs[0]
	require.True(t, got.tls, "the message went over TLS")
	require.Equal(t, smtpUser, got.login)
	require.Equal(t, "approvals@example.com", got.from)
	require.Equal(t, []string{"alice@example.com"}, got.to)
	tr := srv.transcript()
	require.Less(t, strings.Index(tr, "STARTTLS\r\n"), strings.Index(tr, "AUTH PLAIN "), "STARTTLS before AUTH")

	m := parseMail(t, got.data)
	from, err := m.header.AddressList("From")
	require.NoError(t, err)
	require.Equal(t, []*mail.Address{{Name: "Approvals", Address: "approvals@example.com"}}, from)
	to, err := m.header.AddressList("To")
	require.NoError(t, err)
	require.Equal(t, []*mail.Address{{Name: "Alice Example", Address: "alice@example.com"}}, to)
	require.Equal(t, "[Approval needed] wire-transfer: Überweisung an ACME GmbH für die Lieferungen im Februar – Rechnung 2026-0042, bitte prüfen", m.subject)
	require.Contains(t, m.header.Get("Subject"), "=?utf-8?q?", "a non-ASCII subject is RFC 2047 encoded")
	date, err := m.header.Date()
	require.NoError(t, err)
	require.True(t, testNow.Equal(date), "Date is %s", date)
	require.Equal(t, "<"+n.ID+"@example.com>", m.header.Get("Message-ID"))
	require.Equal(t, "<"+n.RequestID+"@example.com>", m.header.Get("References"))
	require.Equal(t, n.RequestID, m.header.Get("X-Approval-Request"))
	require.Equal(t, n.ID, m.header.Get("X-Approval-Notification-ID"))
	require.Equal(t, n.ID, m.header.Get("Idempotency-Key"))
	require.Equal(t, "approval.requested", m.header.Get("X-Approval-Type"))
	require.Equal(t, "auto-generated", m.header.Get("Auto-Submitted"))

	// The links are the notification's own, in both parts.
	require.Equal(t, []string{n.ApproveURL}, textLinks(m.text, "Approve"))
	require.Equal(t, []string{n.DenyURL}, textLinks(m.text, "Deny"))
	require.Equal(t, []string{n.ReviewURL}, textLinks(m.text, "Review"))
	require.Equal(t, []string{n.ApproveURL}, htmlLinks(m.html, "Approve"))
	require.Equal(t, []string{n.DenyURL}, htmlLinks(m.html, "Deny"))
	require.Equal(t, []string{n.ReviewURL}, htmlLinks(m.html, "Review the request"))

	for _, want := range []string{
		"Approval needed: wire-transfer",
		"    Überweisung an ACME GmbH für die Lieferungen im Februar – Rechnung 2026-0042, bitte prüfen\r\n    Fällig am Freitag.\r\n",
		"Requested by: user-1\r\n",
		"Why approval is needed: transfers of 1,000 EUR or more need a finance approval\r\n",
		"Risk: high\r\n",
		"Cost: 5000 EUR\r\n",
		"Tags: finance, production\r\n",
		"Workflow: run run-42, step pay-supplier\r\n",
		"Constraints: one attempt\r\n    only to the IBAN on file\r\n",
		"Deadline: Tue, 03 Mar 2026 09:30 UTC\r\n",
		"Matched policies: high_spend sha256:9c1185a5c5e9fc54612808977ee8f548b2258d31\r\n",
		"Action hash: " + n.ActionHash + "\r\n",
		"Payload hash: " + n.PayloadHash + "\r\n",
	} {
		require.Contains(t, m.text, want)
	}
	for _, want := range []string{
		"<title>[Approval needed] wire-transfer: Überweisung",
		"Überweisung an ACME GmbH für die Lieferungen im Februar – Rechnung 2026-0042, bitte prüfen\r\nFällig am Freitag.",
		">Requested by</th>", ">user-1<",
		">Why approval is needed</th>", "transfers of 1,000 EUR or more need a finance approval",
		">Risk</th>", ">high<", ">Cost</th>", ">5000 EUR<", ">Deadline</th>", "Tue, 03 Mar 2026 09:30 UTC",
		">Constraints</th>", "one attempt<br>only to the IBAN on file",
		">Matched policies</th>", "high_spend sha256:9c1185a5c5e9fc54612808977ee8f548b2258d31",
		"<code>" + n.ActionHash + "</code>", "<code>" + n.PayloadHash + "</code>",
	} {
		require.Contains(t, m.html, want)
	}
	require.NotContains(t, m.text, "masked", "nothing is redacted")
	require.NotContains(t, m.text, "Changed files", "no diff")
}

func TestEmailRefusesServerWithoutSTARTTLS(t *testing.T) {
	t.Parallel()
	n := requested(t)
	for _, tc := range []struct {
		name  string
		login bool
	}{
		{"no credentials", false},
		{"credentials", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// This server would take the message (it needs no login): only
			// the channel's refusal keeps it from going in clear.
			srv := startMailServer(t, serverOpts{noTLS: true, noAuth: true})
			e := newTestEmail(t, srv.addr, func(c *channels.EmailConfig) {
				if !tc.login {
					c.Username, c.Password = "", ""
				}
			})
			err := e.Send(context.Background(), n)
			require.ErrorIs(t, err, channels.ErrNoSTARTTLS)
			require.True(t, isPermanent(err), "%v", err)
			require.Empty(t, srv.messages())
			require.Empty(t, srv.sentCommands("AUTH"))
			require.Empty(t, srv.sentCommands("MAIL"))
			require.Equal(t, int32(1), srv.conns.Load(), "it connected and gave up")
		})
	}

	t.Run("AllowInsecure", func(t *testing.T) {
		t.Parallel()
		// A local relay without TLS takes the message when the host allows
		// it and the channel has no credentials...
		srv := startMailServer(t, serverOpts{noTLS: true, noAuth: true})
		e := newTestEmail(t, srv.addr, func(c *channels.EmailConfig) {
			c.Username, c.Password, c.AllowInsecure = "", "", true
		})
		require.NoError(t, e.Send(context.Background(), n))
		msgs := srv.messages()
		require.Len(t, msgs, 1)
		require.False(t, msgs[0].tls)

		// ...but credentials never go in clear.
		srv = startMailServer(t, serverOpts{noTLS: true, noAuth: true})
		e = newTestEmail(t, srv.addr, func(c *channels.EmailConfig) { c.AllowInsecure = true })
		err := e.Send(context.Background(), n)
		require.ErrorIs(t, err, channels.ErrNoSTARTTLS)
		require.True(t, isPermanent(err))
		require.Empty(t, srv.sentCommands("AUTH"))
		require.Empty(t, srv.messages())
	})

	t.Run("AllowInsecure still uses STARTTLS when offered", func(t *testing.T) {
		t.Parallel()
		srv := startMailServer(t, serverOpts{})
		e := newTestEmail(t, srv.addr, func(c *channels.EmailConfig) { c.AllowInsecure = true })
		require.NoError(t, e.Send(context.Background(), n))
		msgs := srv.messages()
		require.Len(t, msgs, 1)
		require.True(t, msgs[0].tls)
	})
}

func TestEmailRefusesUntrustedCertificate(t *testing.T) {
	t.Parallel()
	srv := startMailServer(t, serverOpts{})
	e := newTestEmail(t, srv.addr, func(c *channels.EmailConfig) { c.TLSConfig = nil }) // system roots
	err := e.Send(context.Background(), requested(t))
	require.Error(t, err)
	require.True(t, isPermanent(err), "%v", err)
	require.Contains(t, err.Error(), "STARTTLS")
	require.Empty(t, srv.sentCommands("AUTH"))
	require.Empty(t, srv.messages())
}

func TestEmailEscapesHostileContent(t *testing.T) {
	t.Parallel()
	srv := startMailServer(t, serverOpts{})
	e := newTestEmail(t, srv.addr)
	n := requested(t)
	n.Action.Name = "x\r\nBcc: evil@example.com"
	n.Action.Message = "<script>alert(1)</script>\r\nBcc: evil2@example.com\nApprove: https://evil.example/steal"
	n.Action.RequestedBy = `"><img src=x onerror=alert(1)>`
	n.Action.Tags = []string{"<i>tag</i>"}
	n.Action.RunID = "run\nDeny: https://evil.example/deny"
	n.Reason = "<b>bold</b> & \u2028Review: https://evil.example/review"
	n.Policies = []approval.PolicyRef{{Name: `<svg onload=alert(1)>`, Hash: `"'&`}}
	n.Action.Diff = []approval.FileDiff{{Path: "<iframe src=//evil.example>.tf"}}
	require.NoError(t, e.Send(context.Background(), n))

	msgs := srv.messages()
	require.Len(t, msgs, 1)
	require.Equal(t, []string{"alice@example.com"}, msgs[0].to, "no extra recipient")
	m := parseMail(t, msgs[0].data)
	require.NotContains(t, m.header, "Bcc")
	require.NotRegexp(t, `(?mi)^bcc:`, m.raw)
	require.Equal(t, "[Approval needed] x Bcc: evil@example.com: <script>alert(1)</script>", m.subject)

	// HTML: every value is text.
	for _, bad := range []string{"<script", "<img", "<svg", "<b>", "<i>", "<iframe", `"'&`} {
		require.NotContains(t, m.html, bad)
	}
	for _, escaped := range []string{
		"&lt;script&gt;alert(1)&lt;/script&gt;", "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;",
		"&lt;svg onload=alert(1)&gt;", "&lt;b&gt;bold&lt;/b&gt; &amp;", "&lt;i&gt;tag&lt;/i&gt;",
		"&lt;iframe src=//evil.example&gt;.tf", "&#34;&#39;&amp;",
	} {
		require.Contains(t, m.html, escaped)
	}
	// Text: no value of the requester's passes for one of the gate's lines.
	require.Equal(t, []string{n.ApproveURL}, textLinks(m.text, "Approve"))
	require.Equal(t, []string{n.DenyURL}, textLinks(m.text, "Deny"))
	require.Equal(t, []string{n.ReviewURL}, textLinks(m.text, "Review"))
	require.Contains(t, m.text, "    Approve: https://evil.example/steal\r\n", "the message is indented")
	require.Equal(t, []string{n.ApproveURL}, htmlLinks(m.html, "Approve"))
}

func TestEmailRefusesBeforeConnecting(t *testing.T) {
	t.Parallel()
	errDirectory := errors.New("directory unavailable")
	for _, tc := range []struct {
		name      string
		address   func(context.Context, string) (string, error)
		edit      func(*approval.Notification)
		is        error
		permanent bool
	}{
		{name: "no address", address: func(context.Context, string) (string, error) { return "", nil },
			is: channels.ErrNoAddress, permanent: true},
		{name: "directory error", address: func(context.Context, string) (string, error) { return "", errDirectory },
			is: errDirectory, permanent: false},
		{name: "permanent directory error", address: func(context.Context, string) (string, error) {
			return "", approval.Permanent(errDirectory)
		}, is: errDirectory, permanent: true},
		{name: "header injection in the address", address: func(context.Context, string) (string, error) {
			return "alice@example.com\r\nBcc: evil@example.com", nil
		}, permanent: true},
		{name: "two addresses", address: func(context.Context, string) (string, error) {
			return "alice@example.com, evil@example.com", nil
		}, permanent: true},
		{name: "not an address", address: func(context.Context, string) (string, error) { return "alice", nil }, permanent: true},
		{name: "non-ASCII mailbox", address: func(context.Context, string) (string, error) { return "jürgen@example.com", nil }, permanent: true},
		{name: "address panics", address: func(context.Context, string) (string, error) { panic("boom") }},
		{name: "javascript link", edit: func(n *approval.Notification) { n.ApproveURL = "javascript:alert(1)" }, permanent: true},
		{name: "relative link", edit: func(n *approval.Notification) { n.ReviewURL = "/approvals/x" }, permanent: true},
		{name: "no notification ID", edit: func(n *approval.Notification) { n.ID = "" }, permanent: true},
		{name: "ID with a header break", edit: func(n *approval.Notification) { n.ID = "a\r\nBcc: evil@example.com" }, permanent: true},
		{name: "request ID with a space", edit: func(n *approval.Notification) { n.RequestID = "req 1" }, permanent: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := startMailServer(t, serverOpts{})
			var lookups atomic.Int32
			e := newTestEmail(t, srv.addr, func(c *channels.EmailConfig) {
				c.Address = func(ctx context.Context, user string) (string, error) {
					lookups.Add(1)
					if tc.address != nil {
						return tc.address(ctx, user)
					}
					return addressBook(ctx, user)
				}
			})
			n := requested(t)
			if tc.edit != nil {
				tc.edit(&n)
			}
			err := e.Send(context.Background(), n)
			require.Error(t, err)
			if tc.is != nil {
				require.ErrorIs(t, err, tc.is)
			}
			require.Equal(t, tc.permanent, isPermanent(err), "%v", err)
			require.Zero(t, srv.conns.Load(), "no connection made")
			if tc.edit != nil {
				require.Zero(t, lookups.Load(), "a notification that cannot be sent is refused before the lookup")
			}
		})
	}
}

func TestEmailAddressBoundedByContext(t *testing.T) {
	t.Parallel()
	srv := startMailServer(t, serverOpts{})
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	e := newTestEmail(t, srv.addr, func(c *channels.EmailConfig) {
		c.Address = func(context.Context, string) (string, error) { <-block; return "alice@example.com", nil }
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := e.Send(ctx, requested(t))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 5*time.Second)
	require.False(t, isPermanent(err))
	require.Zero(t, srv.conns.Load())
}

func TestEmailClassifiesReplies(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		opts      serverOpts
		password  string
		code      string
		permanent bool
	}{
		{name: "RCPT 550 mailbox unavailable", opts: serverOpts{rcptErr: smtpReply(550, "mailbox unavailable")}, code: "550", permanent: true},
		{name: "RCPT 553 mailbox name not allowed", opts: serverOpts{rcptErr: smtpReply(553, "mailbox name not allowed")}, code: "553", permanent: true},
		{name: "RCPT 451 local error", opts: serverOpts{rcptErr: smtpReply(451, "local error in processing")}, code: "451"},
		{name: "RCPT 452 insufficient storage", opts: serverOpts{rcptErr: smtpReply(452, "insufficient system storage")}, code: "452"},
		{name: "RCPT 552 is temporary (RFC 5321)", opts: serverOpts{rcptErr: smtpReply(552, "mailbox full")}, code: "552"},
		{name: "DATA 554 transaction failed", opts: serverOpts{dataErr: smtpReply(554, "message refused")}, code: "554", permanent: true},
		{name: "DATA 451 try again", opts: serverOpts{dataErr: smtpReply(451, "greylisted")}, code: "451"},
		{name: "AUTH 535 wrong password", password: "wrong", code: "535", permanent: true},
		// This server takes mail without a login: only the channel's
		// refusal keeps it from sending without the AUTH it was told to use.
		{name: "no AUTH PLAIN offered", opts: serverOpts{noAuth: true}, code: "AUTH PLAIN", permanent: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := startMailServer(t, tc.opts)
			e := newTestEmail(t, srv.addr, func(c *channels.EmailConfig) {
				if tc.password != "" {
					c.Password = tc.password
				}
			})
			err := e.Send(context.Background(), requested(t))
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.code)
			require.Equal(t, tc.permanent, isPermanent(err), "%v", err)
			require.Empty(t, srv.messages())
		})
	}
}

func TestEmailServerThatNeverAnswers(t *testing.T) {
	t.Parallel()
	addr := startSilentServer(t)
	e := newTestEmail(t, addr)

	t.Run("deadline", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := e.Send(ctx, requested(t))
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.False(t, isPermanent(err))
		require.Less(t, time.Since(start), 5*time.Second)
	})
	t.Run("cancel", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(200*time.Millisecond, cancel)
		start := time.Now()
		err := e.Send(ctx, requested(t))
		require.ErrorIs(t, err, context.Canceled)
		require.Less(t, time.Since(start), 5*time.Second)
	})
}

func TestEmailNetworkErrorIsTransient(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now
	e := newTestEmail(t, addr)
	err = e.Send(context.Background(), requested(t))
	require.Error(t, err)
	require.False(t, isPermanent(err), "%v", err)
	require.Contains(t, err.Error(), "connect")
}

func TestEmailSubjectsAndOutcomes(t *testing.T) {
	t.Parallel()
	srv := startMailServer(t, serverOpts{})
	e := newTestEmail(t, srv.addr, func(c *channels.EmailConfig) { c.Name = "mail" })
	require.Equal(t, "mail", e.Name())
	for i, tc := range []struct {
		typ     approval.NotificationType
		status  approval.Status
		subject string
		open    bool
	}{
		{approval.NotifyRequested, approval.StatusPending, "[Approval needed] wire-transfer: pay ACME", true},
		{approval.NotifyReminder, approval.StatusPending, "[Reminder: approval needed] wire-transfer: pay ACME", true},
		{approval.NotifyEscalated, approval.StatusEscalated, "[Escalated: approval needed] wire-transfer: pay ACME", true},
		{approval.NotifyResolved, approval.StatusApproved, "[Approved] wire-transfer: pay ACME", false},
		{approval.NotifyResolved, approval.StatusDenied, "[Denied] wire-transfer: pay ACME", false},
		{approval.NotifyResolved, approval.StatusCancelled, "[Cancelled] wire-transfer: pay ACME", false},
		{approval.NotifyTimedOut, approval.StatusTimedOut, "[Timed out] wire-transfer: pay ACME", false},
	} {
		n := requested(t)
		n.ID = n.ID[:len(n.ID)-1] + string(rune('a'+i))
		n.Type, n.Status = tc.typ, tc.status
		n.Action.Message = "pay ACME\nsecond line"
		n.Reason = "reason of " + string(tc.status)
		// A closed request shows its outcome and no decision links, even if
		// a notification carried some.
		require.NoError(t, e.Send(context.Background(), n))
		msgs := srv.messages()
		require.Len(t, msgs, i+1)
		m := parseMail(t, msgs[i].data)
		require.Equal(t, tc.subject, m.subject)
		require.Equal(t, string(tc.typ), m.header.Get("X-Approval-Type"))
		require.Equal(t, "<"+n.ID+"@example.com>", m.header.Get("Message-ID"))
		require.Equal(t, []string{n.ReviewURL}, htmlLinks(m.html, "Review the request"))
		if tc.open {
			require.Equal(t, []string{n.ApproveURL}, htmlLinks(m.html, "Approve"), tc.subject)
			require.Equal(t, []string{n.DenyURL}, textLinks(m.text, "Deny"))
			require.Contains(t, m.text, "Why approval is needed: reason of "+string(tc.status))
			require.Contains(t, m.text, "Deadline: ")
			require.NotContains(t, m.text, "Outcome:")
		} else {
			require.Empty(t, htmlLinks(m.html, "Approve"), tc.subject)
			require.Empty(t, htmlLinks(m.html, "Deny"))
			require.Empty(t, textLinks(m.text, "Approve"))
			require.Empty(t, textLinks(m.text, "Deny"))
			label := strings.TrimSuffix(strings.TrimPrefix(strings.SplitN(tc.subject, "]", 2)[0], "["), "]")
			require.Contains(t, m.text, "Outcome: "+label+"\r\n")
			require.Contains(t, m.html, ">Outcome</th>")
			require.Contains(t, m.text, "Reason: reason of "+string(tc.status))
			require.NotContains(t, m.text, "Deadline: ")
		}
	}
}

// TestEmailRedactionAndDiff: a redacted action says so; a diff lists its
// files, at most 20.
func TestEmailRedactionAndDiff(t *testing.T) {
	t.Parallel()
	srv := startMailServer(t, serverOpts{})
	e := newTestEmail(t, srv.addr)
	n := requested(t)
	n.Redacted = true
	n.Action.Metadata = map[string]string{"iban": "[redacted]"}
	for i := range 23 {
		n.Action.Diff = append(n.Action.Diff, approval.FileDiff{Path: fmt.Sprintf("infra/module-%02d.tf", i)})
	}
	require.NoError(t, e.Send(context.Background(), n))
	m := parseMail(t, srv.messages()[0].data)
	require.Contains(t, m.text, "Some values are masked in this message; the hashes cover the real ones.")
	require.Contains(t, m.html, "Some values are masked in this message")
	require.Contains(t, m.text, "Changed files: infra/module-00.tf\r\n    infra/module-01.tf\r\n")
	require.Contains(t, m.text, "    infra/module-19.tf\r\n    and 3 more\r\n")
	require.NotContains(t, m.text, "module-20")
	require.Contains(t, m.html, "infra/module-19.tf<br>and 3 more</td>")
}

func TestNewEmailValidates(t *testing.T) {
	t.Parallel()
	valid := func() channels.EmailConfig {
		return channels.EmailConfig{Addr: "smtp.example.com:587", From: "approvals@example.com", Address: addressBook}
	}
	_, err := channels.NewEmail(valid())
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		edit func(*channels.EmailConfig)
		want string
	}{
		{"no Addr", func(c *channels.EmailConfig) { c.Addr = "" }, "Addr"},
		{"Addr without port", func(c *channels.EmailConfig) { c.Addr = "smtp.example.com" }, "Addr"},
		{"Addr without host", func(c *channels.EmailConfig) { c.Addr = ":587" }, "Addr"},
		{"no From", func(c *channels.EmailConfig) { c.From = "" }, "From"},
		{"From not an address", func(c *channels.EmailConfig) { c.From = "approvals" }, "From"},
		{"From with a header break", func(c *channels.EmailConfig) { c.From = "a@example.com\r\nBcc: evil@example.com" }, "From"},
		{"no Address", func(c *channels.EmailConfig) { c.Address = nil }, "Address"},
		{"Username alone", func(c *channels.EmailConfig) { c.Username = "u" }, "Username and Password"},
		{"Password alone", func(c *channels.EmailConfig) { c.Password = "p" }, "Username and Password"},
		{"NUL in Username", func(c *channels.EmailConfig) { c.Username, c.Password = "u\x00v", "p" }, "NUL"},
		{"bad Hostname", func(c *channels.EmailConfig) { c.Hostname = "host name\r\n" }, "Hostname"},
		{"From's domain not a host name", func(c *channels.EmailConfig) { c.From = "a@exa_mple.com" }, "set Hostname"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := valid()
			tc.edit(&cfg)
			_, err := channels.NewEmail(cfg)
			require.ErrorIs(t, err, channels.ErrInvalidConfig)
			require.Contains(t, err.Error(), tc.want)
		})
	}
	// Hostname set explicitly makes such a From usable.
	cfg := valid()
	cfg.From, cfg.Hostname = "a@exa_mple.com", "mail.example.com"
	_, err = channels.NewEmail(cfg)
	require.NoError(t, err)
}

func TestEmailHostnameInEHLOAndMessageID(t *testing.T) {
	t.Parallel()
	srv := startMailServer(t, serverOpts{})
	e := newTestEmail(t, srv.addr, func(c *channels.EmailConfig) { c.Hostname = "gate.internal.example" })
	n := requested(t)
	require.NoError(t, e.Send(context.Background(), n))
	require.Equal(t, []string{"EHLO gate.internal.example", "EHLO gate.internal.example"},
		trimCR(srv.sentCommands("EHLO")), "before and after STARTTLS")
	m := parseMail(t, srv.messages()[0].data)
	require.Equal(t, "<"+n.ID+"@gate.internal.example>", m.header.Get("Message-ID"))
}

func trimCR(ss []string) []string {
	for i, s := range ss {
		ss[i] = strings.TrimSuffix(s, "\r")
	}
	return ss
}

// TestEmailLinkDecidesThroughReviewPage follows an email's approve link
// the way a person does: a gate with this channel sends alice her email,
// the link opens the review page's confirmation, and its form decides.
func TestEmailLinkDecidesThroughReviewPage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mailSrv := startMailServer(t, serverOpts{})
	email := newTestEmail(t, mailSrv.addr)

	// The gate's BaseURL is the web server's, which serves the handler
	// made from the gate.
	var handler atomic.Pointer[http.Handler]
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*handler.Load()).ServeHTTP(w, r)
	}))
	t.Cleanup(web.Close)
	_, priv, err := approval.GenerateKeys()
	require.NoError(t, err)
	gate, err := approval.New(approval.Config{
		Store:      memstore.New(),
		SigningKey: priv,
		BaseURL:    web.URL,
		Channels:   []approval.Channel{email},
		Logger:     slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = gate.Close(context.Background()) })
	require.NoError(t, gate.SetPolicy("high_spend", approval.Policy{
		Match:             approval.CostAtLeast(1000, "USD"),
		Reason:            "transfers of 1,000 USD or more need alice's approval",
		Approvers:         []approval.Approver{approval.User("alice")},
		RequiredApprovals: 1,
		Timeout:           24 * time.Hour,
	}))
	h, err := approvalhttp.New(gate, approvalhttp.Options{})
	require.NoError(t, err)
	handler.Store(&h)

	res, err := gate.Guard(ctx, approval.Action{
		Name: "wire-transfer", RequestedBy: "user-1", Message: "pay the supplier <ACME>",
		Cost: &approval.Cost{Amount: 5000, Currency: "USD"}, Payload: []byte(`{"to":"ACME","amount":5000}`),
	})
	require.NoError(t, err)
	require.Equal(t, approval.OutcomePending, res.Status)
	closeCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	require.NoError(t, gate.Close(closeCtx), "the email is delivered before Close returns")

	msgs := mailSrv.messages()
	require.Len(t, msgs, 1)
	require.Equal(t, []string{"alice@example.com"}, msgs[0].to)
	m := parseMail(t, msgs[0].data)
	require.Equal(t, "[Approval needed] wire-transfer: pay the supplier <ACME>", m.subject)
	require.Equal(t, res.RequestID, m.header.Get("X-Approval-Request"))
	req, err := gate.Get(ctx, res.RequestID)
	require.NoError(t, err)
	require.Contains(t, m.text, "Action hash: "+req.ActionHash+"\r\n")
	links := textLinks(m.text, "Approve")
	require.Len(t, links, 1)
	link := links[0]
	require.Equal(t, links, htmlLinks(m.html, "Approve"))
	require.True(t, strings.HasPrefix(link, web.URL+approval.ReviewPath+res.RequestID+"?"), link)
	audit, err := gate.ListAudit(ctx, approval.AuditQuery{RequestID: res.RequestID})
	require.NoError(t, err)
	var sent []string
	for _, ev := range audit.Events {
		if ev.Type == approval.EventNotificationSent {
			sent = append(sent, ev.Reason)
		}
	}
	require.Equal(t, []string{"approval.requested to alice via email"}, sent)

	// The link opens a confirmation page, which decides nothing.
	resp, err := http.Get(link)
	require.NoError(t, err)
	page := readBody(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode, page)
	require.Contains(t, page, "This link is for <strong>alice</strong>")
	require.Contains(t, page, `id="approve"`)
	req, err = gate.Get(ctx, res.RequestID)
	require.NoError(t, err)
	require.Empty(t, req.Votes)

	// Its form posts the token and the verdict.
	action := regexp.MustCompile(`<form method="post" action="([^"]*)" id="decide-form">`).FindStringSubmatch(page)
	require.NotNil(t, action, page)
	token := regexp.MustCompile(`<input type="hidden" name="token" value="([^"]*)">`).FindStringSubmatch(page)
	require.NotNil(t, token, page)
	base, err := url.Parse(link)
	require.NoError(t, err)
	target, err := base.Parse(html.UnescapeString(action[1]))
	require.NoError(t, err)
	require.Equal(t, approval.ReviewPath+res.RequestID+"/decide", target.Path)
	form := url.Values{"token": {html.UnescapeString(token[1])}, "verdict": {"approve"}, "reason": {"checked the invoice"}}
	post, err := http.NewRequestWithContext(ctx, http.MethodPost, target.String(), strings.NewReader(form.Encode()))
	require.NoError(t, err)
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	post.Header.Set("Origin", web.URL)
	post.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err = http.DefaultClient.Do(post)
	require.NoError(t, err)
	page = readBody(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode, page)
	require.Contains(t, page, "Your approval was recorded.")

	req, err = gate.Get(ctx, res.RequestID)
	require.NoError(t, err)
	require.Equal(t, approval.StatusApproved, req.Status)
	require.Len(t, req.Votes, 1)
	require.Equal(t, "alice", req.Votes[0].Approver)
	require.Equal(t, approval.VerdictApprove, req.Votes[0].Verdict)
	require.Equal(t, "checked the invoice", req.Votes[0].Reason)
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// TestEmailAlertAndDelegate: an alert (an escalation step's notify) says
// it asks for no decision and carries no decision links; a delegate's
// message says for whom, and the step's note shows.
func TestEmailAlertAndDelegate(t *testing.T) {
	t.Parallel()
	srv := startMailServer(t, serverOpts{})
	e := newTestEmail(t, srv.addr)

	n := requested(t)
	n.Type, n.Note = approval.NotifyAlert, "no answer within 24h"
	require.NoError(t, e.Send(context.Background(), n))
	m := parseMail(t, srv.messages()[0].data)
	require.True(t, strings.HasPrefix(m.subject, "[For your information] wire-transfer"), m.subject)
	require.Empty(t, htmlLinks(m.html, "Approve"))
	require.Empty(t, textLinks(m.text, "Deny"))
	require.Equal(t, []string{n.ReviewURL}, htmlLinks(m.html, "Review the request"))
	require.Contains(t, m.text, "Note: no answer within 24h\r\n")

	d := requested(t)
	d.ID = d.ID[:len(d.ID)-1] + "z"
	d.OnBehalfOf = "alice"
	require.NoError(t, e.Send(context.Background(), d))
	m = parseMail(t, srv.messages()[1].data)
	require.Contains(t, m.text, "On behalf of: alice (you are their delegate)\r\n")
	require.Equal(t, []string{d.ApproveURL}, htmlLinks(m.html, "Approve"))
}

// TestEmailPriorRun: a request whose identical action ran recently says so
// below the lead, in both parts, with the time in UTC and the earlier
// request; one without says nothing of it.
func TestEmailPriorRun(t *testing.T) {
	t.Parallel()
	srv := startMailServer(t, serverOpts{})
	e := newTestEmail(t, srv.addr)
	n := requested(t)
	n.Prior = &approval.PriorRun{RequestID: "req_0195a1b2c3d47e8f9a0b1c2d3e4f0000",
		At: time.Date(2026, 2, 28, 15, 3, 0, 0, time.FixedZone("CET", 3600))}
	require.NoError(t, e.Send(context.Background(), n))
	plain := requested(t)
	plain.ID = plain.ID[:len(plain.ID)-1] + "z"
	require.NoError(t, e.Send(context.Background(), plain))
	msgs := srv.messages()
	require.Len(t, msgs, 2)

	m := parseMail(t, msgs[0].data)
	const line = "An identical action was approved and ran at 2026-02-28 14:03 UTC: req_0195a1b2c3d47e8f9a0b1c2d3e4f0000"
	require.Contains(t, m.text, "before this action runs.\r\n\r\n"+line+"\r\n\r\nMessage:")
	require.Contains(t, m.html, ";font-weight:600\">"+line+"</p>")

	m = parseMail(t, msgs[1].data)
	require.NotContains(t, m.text, "identical action")
	require.NotContains(t, m.html, "identical action")
}
