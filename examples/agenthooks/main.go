// Agenthooks is an approval gate for coding agents: Claude Code's http
// hooks (and Codex's command hooks, through curl) ask it before a
// destructive shell command or a write outside the repository runs, and
// people approve that exact call on the review pages. It serves the hook
// endpoints (/hooks/claude, /hooks/codex) and the review pages of
// approvalhttp (/review) on one local port, and prints their URLs, the
// hook key to give the agent, and each approver's approve link, as a
// notification channel would deliver it.
//
//	go run ./examples/agenthooks                       # http://127.0.0.1:8080
//	go run ./examples/agenthooks -repo ~/src/project -wait 20s
//
// Gated: Bash commands matching rm -rf, git push --force or kubectl
// delete (two of the leads alice, bob and carol approve), and Write calls
// whose file_path is outside -repo (one lead). Anything else gets no
// decision: the agent's own permission rules apply. A gated call waits up
// to -wait for the approvals; if they do not come, the agent is told the
// request's review page and to ask again after approval, when the same
// call is allowed once.
//
// The state is in memory, and the hook key is made at start unless
// -hook-key is given: a real deployment keeps requests in sqlstore and
// maps a key per developer to that person (agenthooks.Options.Authenticate).
package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
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
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/signoff/approval"
	"github.com/signoff/approval/agenthooks"
	"github.com/signoff/approval/approvalhttp"
	"github.com/signoff/approval/memstore"
)

func main() {
	var cfg config
	wd, _ := os.Getwd()
	flag.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "address to serve on")
	flag.StringVar(&cfg.Repo, "repo", wd, "the repository the agent works in: a Write outside it needs approval")
	flag.DurationVar(&cfg.Wait, "wait", 20*time.Second, "how long a gated call waits for the approvals (keep it below the hook's timeout)")
	flag.StringVar(&cfg.Developer, "developer", "dev", "the person the hook key names")
	flag.StringVar(&cfg.HookKey, "hook-key", "", "the hook key the agent sends as a bearer token (default: a random one, printed)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, cfg); err != nil {
		log.Fatal(err)
	}
}

// config is the command line.
type config struct {
	Addr, Repo, Developer, HookKey string
	Wait                           time.Duration
}

// Where the handlers are mounted.
const (
	reviewPrefix = "/review"
	claudePath   = "/hooks/claude"
	codexPath    = "/hooks/codex"
)

// dangerous are the shell commands that need two leads.
var dangerous = regexp.MustCompile(`rm -rf|git push --force|kubectl delete`)

// run serves until ctx is done.
func run(ctx context.Context, out io.Writer, cfg config) error {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	origin := "http://" + ln.Addr().String()
	srv, err := newServer(out, cfg, origin)
	if err != nil {
		ln.Close()
		return err
	}
	defer srv.close()
	hs := &http.Server{Handler: srv.handler, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	fmt.Fprintf(out, "review:  %s%s/approvals\n", origin, reviewPrefix)
	fmt.Fprintf(out, "claude:  %s%s\n", origin, claudePath)
	fmt.Fprintf(out, "codex:   %s%s\n", origin, codexPath)
	fmt.Fprintf(out, "hook key for %s: export APPROVAL_HOOK_KEY=%s\n", srv.developer, srv.key)
	select {
	case <-ctx.Done():
	case err = <-served:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// server is the example's gate and HTTP handler.
type server struct {
	gate           *approval.Gate
	handler        http.Handler
	developer, key string
	close          func()
}

// newServer builds the gate, its policies, the hook endpoints and the
// review pages, for the external address origin.
func newServer(out io.Writer, cfg config, origin string) (*server, error) {
	repo, err := filepath.Abs(cfg.Repo)
	if err != nil {
		return nil, err
	}
	developer, err := approval.CanonicalID(cfg.Developer)
	if err != nil {
		return nil, fmt.Errorf("-developer: %w", err)
	}
	key := cfg.HookKey
	if key == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		key = "hk_" + hex.EncodeToString(b)
	}
	_, priv, err := approval.GenerateKeys()
	if err != nil {
		return nil, err
	}
	logger := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelWarn}))
	reviewBase := origin + reviewPrefix
	gate, err := approval.New(approval.Config{
		Store:      memstore.New(),
		SigningKey: priv,
		BaseURL:    reviewBase, // the mount prefix, so that links resolve
		Directory:  approval.StaticDirectory{Groups: map[string][]string{"leads": {"alice", "bob", "carol"}}},
		Channels:   []approval.Channel{&linkPrinter{out: out}},
		Logger:     logger,
	})
	if err != nil {
		return nil, err
	}
	runCtx, stopRun := context.WithCancel(context.Background())
	go func() { _ = gate.Run(runCtx, time.Second) }() // timeouts and expiry
	closeAll := func() {
		stopRun()
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = gate.Close(cctx)
	}
	for name, p := range map[string]approval.Policy{
		"shell": {
			Match:             approval.Name("*:bash"), // claude:bash and codex:bash
			Reason:            "a destructive shell command needs two leads",
			Approvers:         []approval.Approver{approval.Group("leads")},
			RequiredApprovals: 2,
			Timeout:           time.Hour,
		},
		"write_outside_repo": {
			Match:             approval.Name("claude:write"),
			Reason:            "writing outside the repository needs a lead",
			Approvers:         []approval.Approver{approval.Group("leads")},
			RequiredApprovals: 1,
			Timeout:           time.Hour,
		},
	} {
		if err := gate.SetPolicy(name, p); err != nil {
			closeAll()
			return nil, err
		}
	}

	opts := agenthooks.Options{
		Gate: gate,
		Rules: []agenthooks.Rule{
			{Tools: "Bash", When: agenthooks.InputMatches("command", dangerous)},
			{Tools: "Write", When: outside(repo)},
		},
		Authenticate: func(r *http.Request) (string, error) {
			tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(tok), []byte(key)) != 1 {
				return "", errors.New("no valid hook key")
			}
			return developer, nil
		},
		MaxWait:   cfg.Wait,
		ReviewURL: func(id string) string { return reviewBase + approval.ReviewPath + id },
		Logger:    logger,
	}
	claude, err := agenthooks.Claude(opts)
	if err != nil {
		closeAll()
		return nil, err
	}
	codex, err := agenthooks.Codex(opts)
	if err != nil {
		closeAll()
		return nil, err
	}
	review, err := approvalhttp.New(gate, approvalhttp.Options{Logger: logger})
	if err != nil {
		closeAll()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(reviewPrefix+"/", http.StripPrefix(reviewPrefix, review))
	mux.Handle("GET /{$}", http.RedirectHandler(reviewPrefix+"/approvals", http.StatusSeeOther))
	mux.Handle(claudePath, claude)
	mux.Handle(codexPath, codex)
	return &server{gate: gate, handler: mux, developer: developer, key: key, close: closeAll}, nil
}

// outside is a Rule.When that is true for a Write whose file_path is not
// within repo. A path that is not absolute, or not a string, gates the
// call too.
func outside(repo string) func(json.RawMessage) (bool, error) {
	return func(input json.RawMessage) (bool, error) {
		var in struct {
			FilePath string `json:"file_path"`
		}
		if err := json.Unmarshal(input, &in); err != nil {
			return true, err
		}
		if !filepath.IsAbs(in.FilePath) {
			return true, nil
		}
		rel, err := filepath.Rel(repo, filepath.Clean(in.FilePath))
		return err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)), nil
	}
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
