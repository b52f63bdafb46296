package channels_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/signoff/approval"
	"github.com/signoff/approval/channels"
	"github.com/signoff/approval/memstore"
)

// A webhook channel signs each notification; the receiver verifies the
// signature and the time before it reads the body.
func ExampleNewWebhook() {
	secret := []byte("a shared secret of 32 random bytes")
	got := make(chan approval.Notification, 10)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := channels.VerifyRequest(secret, r, 5*time.Minute)
		if err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		n, err := channels.DecodeWebhook(body)
		if err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		got <- n
	}))
	defer receiver.Close()

	hook, _ := channels.NewWebhook(channels.WebhookConfig{URL: receiver.URL, Secret: secret})
	ctx := context.Background()
	_, priv, _ := approval.GenerateKeys()
	gate, _ := approval.New(approval.Config{Store: memstore.New(), SigningKey: priv, Channels: []approval.Channel{hook}})
	_ = gate.SetPolicy("deploys", approval.Policy{
		Match: approval.Name("deploy:*"), Approvers: []approval.Approver{approval.User("sam")}, RequiredApprovals: 1,
	})
	_, _ = gate.Guard(ctx, approval.Action{Name: "deploy:production", RequestedBy: "ci", Payload: []byte(`{"version":"1.4.2"}`)})
	_ = gate.Close(ctx) // delivers what is due

	n := <-got
	fmt.Println(n.Type, "for", n.Recipient, "about", n.Action.Name, string(n.Action.Payload))
	// Output:
	// approval.requested for sam about deploy:production {"version":"1.4.2"}
}
