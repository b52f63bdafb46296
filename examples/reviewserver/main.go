// Reviewserver serves the review pages and JSON API of approvalhttp for a
// gate on SQLite. A wire transfer of 5,000 USD needs two approvals from
// the finance group (alice, bob and carol); at start it guards one such
// transfer and prints each approver's approve link, as a notification
// channel would deliver them. Open two of the links and confirm: the
// request is approved.
//
//	go run ./examples/reviewserver
//	go run ./examples/reviewserver -db approvals.db -addr 127.0.0.1:8080
//	go run ./examples/reviewserver -dev-user alice   # DEVELOPMENT ONLY, see below
//
// State lives in a SQLite file (a temporary one unless -db is given) and
// the token signing key in a PEM file beside it (-key), so links printed
// by one run still work after a restart with the same -db.
//
// The handler is mounted under /review with http.StripPrefix, and the
// gate's BaseURL includes that prefix, so the links resolve.
//
// Signing in is the host's business: a real service passes its own
// session check as approvalhttp.Options.Identity. This example has none,
// so by default only the links' tokens open a request, and the queue
// answers 401. -dev-user NAME makes every visitor that reviewer, which
// opens the queue and the session buttons for a local try-out; never use
// it on a server anyone else can reach.
package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/signoff/approval"
	"github.com/signoff/approval/approvalhttp"
	"github.com/signoff/approval/sqlstore"
)

func main() {
	var cfg config
	flag.StringVar(&cfg.DB, "db", "", "SQLite file to keep the state in (default: a temporary file)")
	flag.StringVar(&cfg.Key, "key", "", "PEM file holding the token signing key, created if missing (default: the -db file name plus .key)")
	flag.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "address to serve on")
	flag.StringVar(&cfg.DevUser, "dev-user", "", "DEVELOPMENT ONLY: treat every visitor as this signed-in reviewer (default: off, links only)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, cfg); err != nil {
		log.Fatal(err)
	}
}

// config is the command line.
type config struct {
	DB, Key, Addr, DevUser string
}

// prefix is where the handler is mounted.
const prefix = "/review"

// run serves until ctx is done.
func run(ctx context.Context, out io.Writer, cfg config) error {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	srv, err := setup(ctx, out, cfg, "http://"+ln.Addr().String())
	if err != nil {
		ln.Close()
		return err
	}
	defer srv.close()
	hs := &http.Server{Handler: srv.handler, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	fmt.Fprintf(out, "serving: http://%s%s/approvals\n", ln.Addr(), prefix)
	if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// server is the example's gate and handler.
type server struct {
	gate    *approval.Gate
	handler http.Handler
	close   func()
}

// setup opens the store and key, builds the gate and handler for the
// external address origin, and guards the sample request.
func setup(ctx context.Context, out io.Writer, cfg config, origin string) (*server, error) {
	var cleanup []func()
	closeAll := func() {
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
	}
	path := cfg.DB
	if path == "" {
		dir, err := os.MkdirTemp("", "approval-reviewserver-")
		if err != nil {
			return nil, err
		}
		cleanup = append(cleanup, func() { os.RemoveAll(dir) })
		path = filepath.Join(dir, "approvals.db")
	}
	store, err := sqlstore.Open(ctx, path)
	if err != nil {
		closeAll()
		return nil, err
	}
	cleanup = append(cleanup, func() { store.Close() })
	keyPath := cfg.Key
	if keyPath == "" {
		keyPath = path + ".key"
	}
	priv, _, err := approval.LoadOrCreateKeyFile(keyPath)
	if err != nil {
		closeAll()
		return nil, err
	}
	fmt.Fprintf(out, "store:   SQLite at %s, key %s (key ID %s)\n", path, keyPath, approval.KeyID(priv.Public().(ed25519.PublicKey)))

	gate, err := approval.New(approval.Config{
		Store:      store,
		SigningKey: priv,
		BaseURL:    origin + prefix, // the mount prefix, so that links resolve
		Directory:  approval.StaticDirectory{Groups: map[string][]string{"finance": {"alice", "bob", "carol"}}},
		Channels:   []approval.Channel{&linkPrinter{out: out}},
		Logger:     slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		closeAll()
		return nil, err
	}
	cleanup = append(cleanup, func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = gate.Close(cctx)
	})
	runCtx, stopRun := context.WithCancel(context.Background())
	go func() { _ = gate.Run(runCtx, time.Second) }() // timeouts and expiry
	cleanup = append(cleanup, stopRun)
	if err := gate.SetPolicy("high_spend", approval.Policy{
		Match:             approval.CostAtLeast(1000, "USD"),
		Reason:            "transfers of 1,000 USD or more need two finance approvals",
		Approvers:         []approval.Approver{approval.Group("finance")},
		RequiredApprovals: 2,
		Timeout:           24 * time.Hour,
		Redact:            []string{"iban"},
	}); err != nil {
		closeAll()
		return nil, err
	}

	opts := approvalhttp.Options{Logger: slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	if cfg.DevUser != "" {
		dev, err := approval.CanonicalID(cfg.DevUser)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("-dev-user: %w", err)
		}
		fmt.Fprintf(out, "WARNING: -dev-user: every visitor is %s (development only)\n", dev)
		opts.Identity = func(*http.Request) (string, error) { return dev, nil }
	}
	h, err := approvalhttp.New(gate, opts)
	if err != nil {
		closeAll()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(prefix+"/", http.StripPrefix(prefix, h))
	mux.Handle("GET /{$}", http.RedirectHandler(prefix+"/approvals", http.StatusSeeOther))

	res, err := gate.Guard(ctx, approval.Action{
		Name: "wire-transfer", RequestedBy: "user-1",
		Cost:    &approval.Cost{Amount: 5000, Currency: "USD"},
		Risk:    approval.RiskHigh,
		Tags:    []string{"payments"},
		Message: "Pay invoice INV-2291 to ACME GmbH",
		RunID:   "run-" + time.Now().UTC().Format("20060102T150405.000"),
		StepID:  "pay",
		Payload: []byte(`{"to":{"name":"ACME GmbH","iban":"DE89370400440532013000"},"amount":5000,"currency":"USD","reference":"INV-2291"}`),
	})
	if err != nil {
		closeAll()
		return nil, err
	}
	fmt.Fprintf(out, "guarded: %s %s (%s); approve links follow\n", res.RequestID, res.Status, res.Reason)
	return &server{gate: gate, handler: mux, close: closeAll}, nil
}

// linkPrinter is a Channel that prints each approver's approve link, in
// place of the email or chat message a service would send.
type linkPrinter struct {
	mu  sync.Mutex
	out io.Writer
}

func (p *linkPrinter) Name() string { return "stdout" }

func (p *linkPrinter) Send(_ context.Context, n approval.Notification) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case n.ApproveURL != "":
		fmt.Fprintf(p.out, "approve as %s: %s\n", n.Recipient, n.ApproveURL)
	default:
		fmt.Fprintf(p.out, "%s to %s: %s %s\n", n.Type, n.Recipient, n.RequestID, n.Status)
	}
	return nil
}
