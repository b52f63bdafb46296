// Mcpserver is an MCP server whose dangerous tool waits for people: of its
// two tools, list_tables runs at once, and drop_table runs only once two
// DBAs (alice, bob and carol) approved that exact call. It serves MCP
// (streamable HTTP) at /mcp and the review pages of approvalhttp at
// /review, on one local port printed at start, and prints each approver's
// approve link, as a notification channel would deliver it.
//
//	go run ./examples/mcpserver                    # MCP at http://127.0.0.1:8080/mcp
//	go run ./examples/mcpserver -stdio             # MCP on stdin/stdout; review pages still on -addr
//	go run ./examples/mcpserver -db approvals.db -wait 45s
//
// Point an MCP client (an agent, the MCP inspector) at it and ask it to
// drop the table sessions_2019. The call waits up to -wait for the
// approvals; open two of the printed links and approve, and it runs. If
// the wait runs out first, the model is told that the call awaits
// approval, with the request's review page, and to call again later with
// the same arguments: that call runs once the request is approved.
//
// State lives in a SQLite file (a temporary one unless -db is given) and
// the token signing key in a PEM file beside it (-key), so links printed
// by one run still work after a restart with the same -db.
//
// The server does not authenticate its MCP clients: a request names the
// client as the client named itself. A server others can reach derives
// the requester from its authentication instead (approvalmcp.Options.Identity).
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
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/signoff/approval"
	"github.com/signoff/approval/approvalhttp"
	"github.com/signoff/approval/approvalmcp"
	"github.com/signoff/approval/sqlstore"
)

func main() {
	var cfg config
	flag.StringVar(&cfg.DB, "db", "", "SQLite file to keep the state in (default: a temporary file)")
	flag.StringVar(&cfg.Key, "key", "", "PEM file holding the token signing key, created if missing (default: the -db file name plus .key)")
	flag.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "address to serve on")
	flag.BoolVar(&cfg.Stdio, "stdio", false, "serve MCP on stdin and stdout instead of at /mcp (the review pages stay on -addr)")
	flag.DurationVar(&cfg.Wait, "wait", 20*time.Second, "how long a drop_table call waits for the approvals before it answers pending")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	out := io.Writer(os.Stdout)
	if cfg.Stdio {
		out = os.Stderr // stdout carries the protocol
	}
	if err := run(ctx, out, cfg); err != nil {
		log.Fatal(err)
	}
}

// config is the command line.
type config struct {
	DB, Key, Addr string
	Stdio         bool
	Wait          time.Duration
}

// Where the handlers are mounted.
const (
	reviewPrefix = "/review"
	mcpPath      = "/mcp"
)

// run serves until ctx is done (or, with -stdio, the client leaves).
func run(ctx context.Context, out io.Writer, cfg config) error {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	origin := "http://" + ln.Addr().String()
	srv, err := newServer(ctx, out, cfg, origin)
	if err != nil {
		ln.Close()
		return err
	}
	defer srv.close()
	hs := &http.Server{Handler: srv.handler, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	fmt.Fprintf(out, "review:  %s%s/approvals\n", origin, reviewPrefix)
	if cfg.Stdio {
		fmt.Fprintln(out, "mcp:     stdio")
		err = srv.mcp.Run(ctx, &mcp.StdioTransport{})
	} else {
		fmt.Fprintf(out, "mcp:     %s%s\n", origin, mcpPath)
		select {
		case <-ctx.Done():
		case err = <-served:
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// server is the example's gate, MCP server and HTTP handler.
type server struct {
	gate *approval.Gate
	mcp  *mcp.Server
	// handler serves the review pages under /review and, without -stdio,
	// MCP at /mcp.
	handler http.Handler
	close   func()
}

// newServer opens the store and key, and builds the gate, the MCP server
// with its gated tools, and the HTTP handler, for the external address
// origin.
func newServer(ctx context.Context, out io.Writer, cfg config, origin string) (*server, error) {
	var cleanup []func()
	closeAll := func() {
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
	}
	fail := func(err error) (*server, error) {
		closeAll()
		return nil, err
	}
	path := cfg.DB
	if path == "" {
		dir, err := os.MkdirTemp("", "approval-mcpserver-")
		if err != nil {
			return nil, err
		}
		cleanup = append(cleanup, func() { os.RemoveAll(dir) })
		path = filepath.Join(dir, "approvals.db")
	}
	store, err := sqlstore.Open(ctx, path)
	if err != nil {
		return fail(err)
	}
	cleanup = append(cleanup, func() { store.Close() })
	keyPath := cfg.Key
	if keyPath == "" {
		keyPath = path + ".key"
	}
	priv, _, err := approval.LoadOrCreateKeyFile(keyPath)
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(out, "store:   SQLite at %s, key %s (key ID %s)\n", path, keyPath, approval.KeyID(priv.Public().(ed25519.PublicKey)))

	logger := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelWarn}))
	reviewBase := origin + reviewPrefix
	gate, err := approval.New(approval.Config{
		Store:      store,
		SigningKey: priv,
		BaseURL:    reviewBase, // the mount prefix, so that links resolve
		Directory:  approval.StaticDirectory{Groups: map[string][]string{"dba": {"alice", "bob", "carol"}}},
		Channels:   []approval.Channel{&linkPrinter{out: out}},
		Logger:     logger,
	})
	if err != nil {
		return fail(err)
	}
	cleanup = append(cleanup, func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = gate.Close(cctx)
	})
	runCtx, stopRun := context.WithCancel(context.Background())
	go func() { _ = gate.Run(runCtx, time.Second) }() // timeouts and expiry
	cleanup = append(cleanup, stopRun)
	if err := gate.SetPolicy("drop_table", approval.Policy{
		Match:             approval.Name(approvalmcp.ActionPrefix + "drop_*"),
		Reason:            "dropping a table needs two DBAs",
		Approvers:         []approval.Approver{approval.Group("dba")},
		RequiredApprovals: 2,
		Timeout:           time.Hour,
	}); err != nil {
		return fail(err)
	}

	s := mcp.NewServer(&mcp.Implementation{Name: "approval-mcpserver", Version: "1"}, &mcp.ServerOptions{Logger: logger})
	db := newDatabase("customers", "orders", "sessions_2019")
	mcp.AddTool(s, &mcp.Tool{Name: "list_tables", Description: "List the database's tables."}, db.listTables)
	mcp.AddTool(s, &mcp.Tool{
		Name:        "drop_table",
		Description: "Drop a table and all its rows. Two DBAs must approve each call.",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: new(true)},
	}, db.dropTable)
	mw, err := approvalmcp.Middleware(approvalmcp.Options{
		Gate:      gate,
		Rules:     []approvalmcp.Rule{{Tools: "drop_*", Mode: approvalmcp.Block, Wait: cfg.Wait}},
		ReviewURL: func(id string) string { return reviewBase + approval.ReviewPath + id },
		Logger:    logger,
	})
	if err != nil {
		return fail(err)
	}
	s.AddReceivingMiddleware(mw)

	review, err := approvalhttp.New(gate, approvalhttp.Options{Logger: logger})
	if err != nil {
		return fail(err)
	}
	mux := http.NewServeMux()
	mux.Handle(reviewPrefix+"/", http.StripPrefix(reviewPrefix, review))
	mux.Handle("GET /{$}", http.RedirectHandler(reviewPrefix+"/approvals", http.StatusSeeOther))
	if !cfg.Stdio {
		mux.Handle(mcpPath, mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{Logger: logger}))
	}
	return &server{gate: gate, mcp: s, handler: mux, close: closeAll}, nil
}

// database is the example's stand-in for a real one: a set of table names.
type database struct {
	mu     sync.Mutex
	tables []string
}

func newDatabase(tables ...string) *database { return &database{tables: tables} }

type noArgs struct{}

type dropArgs struct {
	Table string `json:"table" jsonschema:"the table to drop"`
}

func (db *database) listTables(context.Context, *mcp.CallToolRequest, noArgs) (*mcp.CallToolResult, any, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	return text(fmt.Sprintf("tables: %v", db.tables)), nil, nil
}

func (db *database) dropTable(ctx context.Context, _ *mcp.CallToolRequest, in dropArgs) (*mcp.CallToolResult, any, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	i := slices.Index(db.tables, in.Table)
	if i < 0 {
		return nil, nil, fmt.Errorf("no table %q", in.Table)
	}
	db.tables = slices.Delete(db.tables, i, i+1)
	msg := "dropped " + in.Table
	if res, ok := approvalmcp.ResultFromContext(ctx); ok && res.RequestID != "" {
		msg += " (approved in request " + res.RequestID + ")"
	}
	return text(msg), nil, nil
}

func text(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
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
