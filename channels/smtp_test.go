package channels_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"math/big"
	"net"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
	"github.com/stretchr/testify/require"

	"github.com/signoff/approval/internal/testkit"
)

// Credentials of the test SMTP server.
const (
	smtpUser = "mailer"
	smtpPass = "s3cret-pass"
)

// testCert is a self-signed certificate for 127.0.0.1 and localhost, and
// a pool that trusts it; made once per test binary.
var testCert = sync.OnceValues(func() (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test SMTP server"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
})

// clientTLS trusts the test certificate.
func clientTLS() *tls.Config {
	_, pool := testCert()
	return &tls.Config{RootCAs: pool}
}

// serverOpts shapes a test SMTP server.
type serverOpts struct {
	noTLS   bool  // no STARTTLS
	noAuth  bool  // no AUTH and no login required
	rcptErr error // the reply to every RCPT
	dataErr error // the reply after the message
}

// mailServer is a go-smtp server on a loopback port. With TLS it offers
// STARTTLS and, only over TLS (AllowInsecureAuth is false), AUTH PLAIN,
// and then takes mail only after a login.
type mailServer struct {
	addr  string
	opts  serverOpts
	conns atomic.Int32 // connections accepted

	mu     sync.Mutex
	msgs   []received
	logins []string
	log    testkit.Buffer // the protocol, both ways
}

// received is one message the server took.
type received struct {
	from  string
	to    []string
	data  []byte
	tls   bool
	login string
}

func startMailServer(t *testing.T, o serverOpts) *mailServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &mailServer{addr: ln.Addr().String(), opts: o}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(c *gosmtp.Conn) (gosmtp.Session, error) {
		return &session{s: s, c: c}, nil
	}))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = false
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.Debug = &s.log
	srv.ErrorLog = log.New(io.Discard, "", 0)
	if !o.noTLS {
		cert, _ := testCert()
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	go func() { _ = srv.Serve(countingListener{ln, &s.conns}) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

func (s *mailServer) messages() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.msgs...)
}

func (s *mailServer) transcript() string {
	return s.log.String()
}

// sentCommands lists the commands of a kind the client sent (server
// replies begin with a code, so they never match).
func (s *mailServer) sentCommands(verb string) []string {
	return regexp.MustCompile(`(?mi)^`+regexp.QuoteMeta(verb)+`\b.*$`).FindAllString(s.transcript(), -1)
}

type countingListener struct {
	net.Listener
	n *atomic.Int32
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// session is one SMTP session; go-smtp starts a new one after STARTTLS.
type session struct {
	s     *mailServer
	c     *gosmtp.Conn
	login string
	from  string
	to    []string
}

var _ gosmtp.AuthSession = (*session)(nil)

func (x *session) AuthMechanisms() []string {
	if x.s.opts.noAuth {
		return nil
	}
	return []string{sasl.Plain}
}

func (x *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain || x.s.opts.noAuth {
		return nil, gosmtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if (identity != "" && identity != username) || username != smtpUser || password != smtpPass {
			return gosmtp.ErrAuthFailed
		}
		x.login = username
		x.s.mu.Lock()
		x.s.logins = append(x.s.logins, username)
		x.s.mu.Unlock()
		return nil
	}), nil
}

func (x *session) Mail(from string, _ *gosmtp.MailOptions) error {
	if !x.s.opts.noAuth && x.login == "" {
		return gosmtp.ErrAuthRequired
	}
	x.from = from
	return nil
}

func (x *session) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	if err := x.s.opts.rcptErr; err != nil {
		return err
	}
	x.to = append(x.to, to)
	return nil
}

func (x *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := x.s.opts.dataErr; err != nil {
		return err
	}
	_, isTLS := x.c.TLSConnectionState()
	x.s.mu.Lock()
	x.s.msgs = append(x.s.msgs, received{from: x.from, to: append([]string(nil), x.to...), data: b, tls: isTLS, login: x.login})
	x.s.mu.Unlock()
	return nil
}

func (x *session) Reset() { x.from, x.to = "", nil }

func (x *session) Logout() error { return nil }

// startSilentServer accepts connections and never answers.
func startSilentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

// smtpReply is a go-smtp error reply with code and message.
func smtpReply(code int, msg string) error {
	return &gosmtp.SMTPError{Code: code, EnhancedCode: gosmtp.EnhancedCodeNotSet, Message: msg}
}
