package approval_test

import (
	"strings"
	"testing"

	"github.com/signoff/approval"
)

// TestPayloadHashTinyNumbers: a number a double cannot hold is not
// canonicalized to another: {"x":0.000…0001} (400 zeros) and {"x":0} were
// one payload hash.
func TestPayloadHashTinyNumbers(t *testing.T) {
	t.Parallel()
	zero := approval.PayloadHash([]byte(`{"x":0}`))
	for _, p := range []string{
		`{"x":0.` + strings.Repeat("0", 400) + `1}`,
		`{"x":1e-999999}`,
		`{"x":` + "0." + strings.Repeat("0", 330) + `5}`,
	} {
		if approval.PayloadHash([]byte(p)) == zero {
			t.Errorf("%.40s… hashes as {\"x\":0}", p)
		}
	}
	if approval.PayloadHash([]byte(`{"x": 0.0}`)) != zero || approval.PayloadHash([]byte(`{ "x" : 0 }`)) != zero {
		t.Error("the same value in another spelling must keep one hash")
	}
}

// BenchmarkPayloadHashHugeExponents: a 256 KiB payload of literals with
// exponents a double cannot hold costs what its bytes do (big.Rat spent
// about 20 ms on each).
func BenchmarkPayloadHashHugeExponents(b *testing.B) {
	var s strings.Builder
	s.WriteString(`[`)
	for s.Len() < 255<<10 {
		s.WriteString(`1e-999999,`)
	}
	s.WriteString(`0]`)
	p := []byte(s.String())
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		approval.PayloadHash(p)
	}
}
