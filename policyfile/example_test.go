package policyfile_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/signoff/approval"
	"github.com/signoff/approval/memstore"
	"github.com/signoff/approval/policyfile"
)

// A policy file replaces a gate's policies in one step; a mistake names
// its line, and the gate keeps the policies it had.
func ExampleLoad() {
	ctx := context.Background()
	_, priv, _ := approval.GenerateKeys()
	gate, _ := approval.New(approval.Config{Store: memstore.New(), SigningKey: priv,
		Directory: approval.StaticDirectory{Roles: map[string][]string{"sre_lead": {"sam"}}}})
	defer gate.Close(ctx)

	err := policyfile.Load(gate, strings.NewReader(`
version: 1
policies:
  production-release:
    match: {name: "release:*:production"}
    reason: SRE sign-off required before releasing to production.
    approvers: [role:sre_lead]
    required_approvals: 1
`))
	fmt.Println("loaded:", err)
	res, _ := gate.Guard(ctx, approval.Action{Name: "release:web:production", RequestedBy: "ci"})
	fmt.Println(res.Status, "-", res.Reason)

	err = policyfile.Load(gate, strings.NewReader(`
version: 1
policies:
  typo:
    match: {name: "release:*"}
    approvers: [role:sre_lead]
    required_aprovals: 1
`))
	var fe *policyfile.Error
	if errors.As(err, &fe) {
		fmt.Println("refused at line", fe.Line, fe.Path, errors.Is(err, approval.ErrInvalidPolicy))
	}
	fmt.Println("still:", len(gate.Policies()), "policy")
	// Output:
	// loaded: <nil>
	// pending - SRE sign-off required before releasing to production.
	// refused at line 7 policies.typo.required_aprovals true
	// still: 1 policy
}
