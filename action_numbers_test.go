package approval

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/signoff/approval/internal/canon"
)

// exactByRat is exactThroughDouble as big.Rat computes it: the reference
// the linear comparison must agree with.
func exactByRat(lit string) bool {
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil {
		return false
	}
	c, err := canon.AppendFloat(nil, f)
	if err != nil {
		return false
	}
	want, ok1 := new(big.Rat).SetString(lit)
	got, ok2 := new(big.Rat).SetString(string(c))
	return ok1 && ok2 && want.Cmp(got) == 0
}

// TestExactThroughDouble: the decimal comparison agrees with big.Rat on
// hand-picked literals and on random ones of every shape JSON allows.
func TestExactThroughDouble(t *testing.T) {
	t.Parallel()
	lits := []string{
		"0", "-0", "0.0", "1", "-1", "1.5", "0.1", "1e3", "1E+3", "1e-3", "100", "1.0", "1.50",
		"9007199254740992", "9007199254740993", "123456789012345678", "1.7976931348623157e308",
		"5e-324", "4.9e-324", "2e-324", "1e-400", "0.0000000000000001", "0e-999", "0.000e5",
		"12345678901234567890e-10", "1.2345678901234567e-5", "-2.5e-1", "3.0e0", "1e22", "1e23",
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		var b strings.Builder
		if r.IntN(2) == 0 {
			b.WriteByte('-')
		}
		if r.IntN(4) == 0 {
			b.WriteByte('0')
		} else {
			b.WriteString(strconv.Itoa(1 + r.IntN(9)))
			for range r.IntN(20) {
				b.WriteByte(byte('0' + r.IntN(10)))
			}
		}
		if r.IntN(2) == 0 {
			b.WriteByte('.')
			for range 1 + r.IntN(20) {
				b.WriteByte(byte('0' + r.IntN(10)))
			}
		}
		if r.IntN(2) == 0 {
			fmt.Fprintf(&b, "e%d", r.IntN(700)-350)
		}
		lits = append(lits, b.String())
	}
	for _, lit := range lits {
		if got, want := exactThroughDouble([]byte(lit)), exactByRat(lit); got != want {
			t.Errorf("exactThroughDouble(%s) = %v, big.Rat says %v", lit, got, want)
		}
	}
}

// TestPayloadHashTinyNumbers: a number a double cannot hold is not
// canonicalized to another: {"x":0.000…0001} (400 zeros) and {"x":0} were
// one payload hash.
func TestPayloadHashTinyNumbers(t *testing.T) {
	t.Parallel()
	zero := PayloadHash([]byte(`{"x":0}`))
	for _, p := range []string{
		`{"x":0.` + strings.Repeat("0", 400) + `1}`,
		`{"x":1e-999999}`,
		`{"x":` + "0." + strings.Repeat("0", 330) + `5}`,
	} {
		if PayloadHash([]byte(p)) == zero {
			t.Errorf("%.40s… hashes as {\"x\":0}", p)
		}
	}
	if PayloadHash([]byte(`{"x": 0.0}`)) != zero || PayloadHash([]byte(`{ "x" : 0 }`)) != zero {
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
		PayloadHash(p)
	}
}
