package approval

import (
	"bytes"
	"os"
	"testing"
)

// FuzzParseArtifact: the artifact decoder never panics, and what it
// accepts is in the one form the gate writes: its body is exactly what
// the signature covers.
func FuzzParseArtifact(f *testing.F) {
	golden, err := os.ReadFile("testdata/artifacts/golden.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden)
	f.Add([]byte(`{"action_hash":"a","expires_at":"2026-03-01T10:00:00Z","issued_at":"2026-03-01T09:00:00Z","kid":"k","payload_hash":"p","policies":[],"reason":"","request_id":"r","v":1,"votes":[],"sig":"s"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, body, err := parseArtifact(b)
		if err != nil {
			return
		}
		want := append([]byte(ArtifactContext+"\n"), b[:body]...)
		want = append(want, '}')
		if got := a.signedBytes(); !bytes.Equal(got, want) {
			t.Fatalf("accepted a form that is not canonical:\n%s\n%s", got, want)
		}
	})
}
