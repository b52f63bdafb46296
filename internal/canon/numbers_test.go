package canon

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// exactByRat is exactThroughDouble as big.Rat computes it: the reference
// the linear comparison must agree with.
func exactByRat(lit string) bool {
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil {
		return false
	}
	c, err := AppendFloat(nil, f)
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
