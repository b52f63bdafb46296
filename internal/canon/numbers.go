package canon

import "strconv"

// NumbersSurvive reports whether every number in the JSON
// text (already known to be valid) keeps its exact value through RFC 8785
// number serialization. Literals of at most 15 digits, leading zeros
// included, without an exponent always do (a double holds 15 decimal
// digits exactly, and such a literal lies between 1e-15 and 1e15); only
// others are checked, so the usual payload costs one pass and no
// allocation. Leading zeros count: 0.000…0001 with 400 zeros has one
// significant digit but underflows to 0, and must not hash as 0 does.
func NumbersSurvive(payload []byte) bool {
	inString := false
	for i := 0; i < len(payload); i++ {
		c := payload[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		if c == '"' {
			inString = true
			continue
		}
		if c != '-' && (c < '0' || c > '9') {
			continue
		}
		end, digits, exp := scanNumber(payload, i)
		if (digits > 15 || exp) && !exactThroughDouble(payload[i:end]) {
			return false
		}
		i = end - 1
	}
	return true
}

// scanNumber reads the number literal starting at payload[i] and returns
// where it ends, how many digits it has (every digit, leading zeros
// included) and whether it has an exponent.
func scanNumber(payload []byte, i int) (end, digits int, exp bool) {
	for ; i < len(payload); i++ {
		switch c := payload[i]; {
		case c >= '0' && c <= '9':
			if !exp {
				digits++
			}
		case c == 'e' || c == 'E':
			exp = true
		case c == '-' || c == '+' || c == '.':
		default:
			return i, digits, exp
		}
	}
	return i, digits, exp
}

// exactThroughDouble reports whether the JSON number lit has the same value
// after conversion to a double and RFC 8785 serialization. It compares the
// two decimal texts by their significant digits and exponent, in time
// linear in their length: no big-number arithmetic, so a literal such as
// 1e-999999 costs what its bytes do.
func exactThroughDouble(lit []byte) bool {
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil {
		return false // out of a double's range: it cannot survive
	}
	c, err := AppendFloat(nil, f)
	if err != nil {
		return false
	}
	a, ok1 := decimalOf(lit)
	b, ok2 := decimalOf(c)
	return ok1 && ok2 && a == b
}

// decimal is a decimal number as its sign, its significant digits (no
// leading or trailing zeros; empty for zero) and the power of ten of its
// last digit: digits × 10^exp.
type decimal struct {
	neg    bool
	digits string
	exp    int64
}

// maxExp saturates an exponent: far beyond any double, so that a literal
// with a longer exponent compares unequal to every double but zero.
const maxExp = 1 << 40

// decimalOf reads a JSON number literal (-?int(.frac)?([eE][+-]?exp)?).
func decimalOf(lit []byte) (decimal, bool) {
	var d decimal
	i := 0
	if i < len(lit) && lit[i] == '-' {
		d.neg, i = true, i+1
	}
	var mant []byte
	fracDigits := int64(0)
	inFrac := false
	for ; i < len(lit); i++ {
		c := lit[i]
		switch {
		case c >= '0' && c <= '9':
			mant = append(mant, c)
			if inFrac {
				fracDigits++
			}
			continue
		case c == '.' && !inFrac:
			inFrac = true
			continue
		}
		break
	}
	var e int64
	if i < len(lit) && (lit[i] == 'e' || lit[i] == 'E') {
		i++
		eneg := false
		if i < len(lit) && (lit[i] == '+' || lit[i] == '-') {
			eneg, i = lit[i] == '-', i+1
		}
		if i == len(lit) {
			return decimal{}, false
		}
		for ; i < len(lit); i++ {
			c := lit[i]
			if c < '0' || c > '9' {
				return decimal{}, false
			}
			if e < maxExp {
				e = e*10 + int64(c-'0')
			}
		}
		if eneg {
			e = -e
		}
	}
	if i != len(lit) || len(mant) == 0 {
		return decimal{}, false
	}
	// Strip leading zeros, then trailing zeros into the exponent.
	j := 0
	for j < len(mant) && mant[j] == '0' {
		j++
	}
	mant = mant[j:]
	k := len(mant)
	for k > 0 && mant[k-1] == '0' {
		k--
	}
	d.exp = e - fracDigits + int64(len(mant)-k)
	d.digits = string(mant[:k])
	if d.digits == "" {
		return decimal{}, true // zero, of either sign
	}
	return d, true
}
