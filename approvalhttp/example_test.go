package approvalhttp_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/signoff/approval"
	"github.com/signoff/approval/approvalhttp"
	"github.com/signoff/approval/memstore"
)

// An agent runtime in another process gates a deploy through the server:
// Guard opens a request, Wait returns when a reviewer has answered, and
// the next Guard of the same action consumes the approval, with its
// artifact verified against the gate's public key.
func ExampleClient() {
	ctx := context.Background()

	// The server: a gate, and its handler with the agents' credentials.
	pub, priv, _ := approval.GenerateKeys()
	gate, _ := approval.New(approval.Config{Store: memstore.New(), SigningKey: priv, Logger: slog.New(slog.DiscardHandler)})
	defer gate.Close(ctx)
	_ = gate.SetPolicy("deploys", approval.Policy{
		Match:             approval.Name("deploy:*"),
		Approvers:         []approval.Approver{approval.User("alice")},
		RequiredApprovals: 1,
		Timeout:           time.Hour,
	})
	h, _ := approvalhttp.New(gate, approvalhttp.Options{
		Authenticate: func(r *http.Request) (string, error) {
			if r.Header.Get("Authorization") == "Bearer agent-7-key" {
				return "agent-7", nil
			}
			return "", errors.New("unknown key")
		},
		Logger: slog.New(slog.DiscardHandler),
	})
	srv := httptest.NewServer(h)
	defer srv.Close()

	// The agent: only the server's URL, its credentials and the public key.
	client, err := approvalhttp.NewClient(srv.URL, approvalhttp.ClientOptions{
		Authorize: func(r *http.Request) error {
			r.Header.Set("Authorization", "Bearer agent-7-key")
			return nil
		},
		Keys: []ed25519.PublicKey{pub},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	action := approval.Action{
		Name: "deploy:production", RequestedBy: "agent-7",
		Payload: []byte(`{"service":"api","version":"1.4.2"}`),
	}
	res, _ := client.Guard(ctx, action)
	fmt.Println(res.Status)

	// Alice approves, from her link or the review page.
	go func() {
		tok, _ := gate.IssueToken(res.RequestID, "alice", approval.VerdictApprove, time.Hour)
		_, _ = gate.Decide(ctx, res.RequestID, approval.Decision{Token: tok, Verdict: approval.VerdictApprove})
	}()
	req, _ := client.Wait(ctx, res.RequestID)
	fmt.Println(req.Status, req.Votes[0].Approver)

	res, err = client.Guard(ctx, action) // consumes the approval
	fmt.Println(res.Status, len(res.Artifact) > 0, err)
	// Output:
	// pending
	// approved alice
	// approved true <nil>
}

// The handler serves the review pages and the JSON API under any prefix;
// a reviewer's decision through the API binds the action hash they were
// shown.
func ExampleNew() {
	ctx := context.Background()
	_, priv, _ := approval.GenerateKeys()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	gate, _ := approval.New(approval.Config{Store: memstore.New(), SigningKey: priv, BaseURL: srv.URL + "/review",
		Logger: slog.New(slog.DiscardHandler)})
	defer gate.Close(ctx)
	_ = gate.SetPolicy("deploys", approval.Policy{
		Match: approval.Name("deploy:*"), Approvers: []approval.Approver{approval.User("sam")}, RequiredApprovals: 1,
	})
	h, _ := approvalhttp.New(gate, approvalhttp.Options{
		// Your reviewers' sign-in: here a header, for the example.
		Identity: func(r *http.Request) (string, error) { return r.Header.Get("X-User"), nil },
		Logger:   slog.New(slog.DiscardHandler),
	})
	mux.Handle("/review/", http.StripPrefix("/review", h))

	res, _ := gate.Guard(ctx, approval.Action{Name: "deploy:production", RequestedBy: "ci"})
	req, _ := gate.Get(ctx, res.RequestID)
	body := strings.NewReader(`{"reason":"looks good","action_hash":"` + req.ActionHash + `"}`)
	post, _ := http.NewRequest(http.MethodPost, srv.URL+"/review/api/approvals/"+res.RequestID+"/approve", body)
	post.Header.Set("Content-Type", "application/json")
	post.Header.Set("X-User", "sam")
	resp, err := http.DefaultClient.Do(post)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println("approve:", resp.Status)

	page, _ := http.NewRequest(http.MethodGet, srv.URL+"/review/approvals/"+res.RequestID, nil)
	page.Header.Set("X-User", "sam")
	resp, _ = http.DefaultClient.Do(page)
	resp.Body.Close()
	fmt.Println("review page:", resp.Status, resp.Header.Get("Content-Type"))
	res, _ = gate.Guard(ctx, approval.Action{Name: "deploy:production", RequestedBy: "ci"})
	fmt.Println("guard:", res.Status)
	// Output:
	// approve: 200 OK
	// review page: 200 OK text/html; charset=utf-8
	// guard: approved
}
