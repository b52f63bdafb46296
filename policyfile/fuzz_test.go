package policyfile_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/signoff/approval"
	"github.com/signoff/approval/memstore"
	"github.com/signoff/approval/policyfile"
)

// FuzzLoadPolicies feeds the policy file decoder arbitrary bytes: it must
// never panic, a gate with a directory must register what it accepts, and
// a file it accepts must encode to one that decodes to the same policies
// (the same snapshot hashes).
func FuzzLoadPolicies(f *testing.F) {
	files, _ := filepath.Glob("testdata/policies/*.yaml")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"policies": {"p": {"match": {"cost": {"at_least": 1e3, "currency": "usd"}}, "approvers": ["group:g"], "required_approvals": 1}}}`))
	f.Add([]byte("policies:\n  p:\n    match: {not: {tag: {none_of: [a]}}}\n    effect: deny\n"))
	reg := policyfile.MatcherRegistry{"weekend": func(approval.Action) (bool, error) { return true, nil }}
	// Two gates whose directory cannot list its names, as Parse assumes:
	// one registers what was read, the other what its encoding reads back.
	gate := func() *approval.Gate {
		_, priv, err := approval.GenerateKeys()
		if err != nil {
			f.Fatal(err)
		}
		g, err := approval.New(approval.Config{Store: memstore.New(), SigningKey: priv,
			Directory: onDemand{approval.StaticDirectory{}}, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			f.Fatal(err)
		}
		f.Cleanup(func() { _ = g.Close(context.Background()) })
		return g
	}
	first, second := gate(), gate()
	f.Fuzz(func(t *testing.T, data []byte) {
		pf, err := policyfile.Parse(bytes.NewReader(data), reg)
		if err != nil {
			return
		}
		if err := first.ReplacePolicies(pf.Policies); err != nil {
			t.Fatalf("Parse accepted what a gate refuses: %v", err)
		}
		var buf bytes.Buffer
		if err := policyfile.Encode(&buf, pf); err != nil {
			t.Fatalf("encode: %v", err)
		}
		again, err := policyfile.Parse(bytes.NewReader(buf.Bytes()), reg)
		if err != nil {
			t.Fatalf("the encoded file does not decode: %v\n%s", err, buf.Bytes())
		}
		if len(again.Policies) != len(pf.Policies) {
			t.Fatalf("%d policies, then %d", len(pf.Policies), len(again.Policies))
		}
		if err := second.ReplacePolicies(again.Policies); err != nil {
			t.Fatalf("the encoded file does not register: %v\n%s", err, buf.Bytes())
		}
		for i, p := range pf.Policies {
			if again.Policies[i].Name != p.Name {
				t.Fatalf("policy %q is %q after the round trip:\n%s", p.Name, again.Policies[i].Name, buf.Bytes())
			}
			h1, _ := first.PolicyHash(p.Name)
			h2, ok := second.PolicyHash(p.Name)
			if !ok || h1 != h2 {
				t.Fatalf("policy %q changed in the round trip:\n%s", p.Name, buf.Bytes())
			}
		}
	})
}
