package signin_test

import (
	"context"
	"log"
	"net/http"
	"os"

	"github.com/signoff/approval"
	"github.com/signoff/approval/approvalhttp"
	"github.com/signoff/approval/signin"
)

// Reviewers sign in with the company's OpenID provider; the review pages
// are under /review, the sign-in routes under /auth. (Compiled, not run:
// it needs a provider to discover.)
func Example() {
	ctx := context.Background()
	gate, err := approval.New(approval.Config{ /* Store, SigningKey, Directory, ... */
		BaseURL: "https://ops.example.com/review",
	})
	if err != nil {
		log.Fatal(err)
	}
	o, err := signin.New(ctx, signin.Config{
		Issuer:       "https://login.example.com",
		ClientID:     "approvals",
		ClientSecret: os.Getenv("OIDC_CLIENT_SECRET"),
		RedirectURL:  "https://ops.example.com/auth/callback",
		SessionKeys:  [][]byte{[]byte(os.Getenv("SESSION_KEY"))}, // 32 random bytes or more
		GroupsClaim:  "groups",
		Home:         "/review/approvals?awaiting=me",
	})
	if err != nil {
		log.Fatal(err)
	}
	h, err := approvalhttp.New(gate, approvalhttp.Options{
		Identity: o.Identity,
		SignIn:   o.LoginURL(""),
		SignOut:  o.LogoutURL(),
		// Operators: members of "ops" at the provider, as of their sign-in.
		Operator: func(r *http.Request, who string) bool {
			s, err := o.Session(r)
			if err != nil {
				return false
			}
			for _, g := range s.Groups {
				if g == "ops" {
					return true
				}
			}
			return false
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/auth/", o)
	mux.Handle("/review/", o.RequireLogin(http.StripPrefix("/review", h)))
	log.Fatal(http.ListenAndServe(":8080", mux))
}
