package approval

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoadPolicies feeds the policy file decoder arbitrary bytes: it must
// never panic, and a file it accepts must encode to one that decodes to
// the same policies (the same snapshot hashes).
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
	reg := MatcherRegistry{"weekend": func(Action) (bool, error) { return true, nil }}
	f.Fuzz(func(t *testing.T, data []byte) {
		pf, cps, err := parsePolicyFile(bytes.NewReader(data), reg, true, nil)
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := EncodePolicies(&buf, pf); err != nil {
			t.Fatalf("encode: %v", err)
		}
		_, again, err := parsePolicyFile(bytes.NewReader(buf.Bytes()), reg, true, nil)
		if err != nil {
			t.Fatalf("the encoded file does not decode: %v\n%s", err, buf.Bytes())
		}
		if len(again) != len(cps) {
			t.Fatalf("%d policies, then %d", len(cps), len(again))
		}
		for i := range cps {
			if cps[i].name != again[i].name || cps[i].hash != again[i].hash {
				t.Fatalf("policy %q changed in the round trip:\n%s", cps[i].name, buf.Bytes())
			}
		}
	})
}
