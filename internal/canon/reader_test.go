package canon

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReaderReadsWhatAppendWrites: every string and integer this package
// writes reads back as itself, and encoding/json agrees on the value.
func TestReaderReadsWhatAppendWrites(t *testing.T) {
	t.Parallel()
	strs := []string{"", "bob", "\"", "\\", "\\\"", "é€😀\u2028\ufb33", "\\u0062", "\u007f"}
	for c := range 0x80 {
		strs = append(strs, "a"+string(rune(c))+"z")
	}
	ints := []int64{0, 1, -1, 42, 1772359200, -999999999999999999, 999999999999999999}
	for _, s := range strs {
		for _, n := range ints {
			b := append([]byte(`{"s":`), AppendString(nil, s)...)
			b = append(append(b, `,"n":`...), AppendInt(nil, n)...)
			b = append(b, '}')
			d := NewReader(string(b))
			d.Lit(`{"s":`)
			gotS := d.Str()
			d.Lit(`,"n":`)
			gotN := d.Int()
			d.Lit(`}`)
			require.True(t, d.Done(), "%s", b)
			require.Equal(t, s, gotS)
			require.Equal(t, n, gotN)
			var v struct {
				S string
				N int64
			}
			require.NoError(t, json.Unmarshal(b, &v))
			require.Equal(t, s, v.S)
		}
	}
}

// TestReaderRefusesOtherSpellings: another spelling of the same value is
// malformed, and so is anything left over.
func TestReaderRefusesOtherSpellings(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		`"\u0041"`, // 'A' escaped
		`"\/"`,     // a solidus needs no escape
		`"\u000a"`, // \n has a short form
		`"\u001F"`, // upper-case hex
		`"\x41"`,   // not JSON
		"\"a\nb\"", // a raw control character
		"\"\xff\"", // not UTF-8
		`"abc`,     // unterminated
		`"abc\`,
		`abc`,
	} {
		d := NewReader(in)
		d.Str()
		require.False(t, d.Done(), "%s", in)
	}
	for _, in := range []string{"01", "-0", "+1", "", "-", "1234567890123456789", "1.5", "1e3"} {
		d := NewReader(in)
		d.Int()
		require.False(t, d.Done(), "%q", in)
	}
	d := NewReader(`"a" `)
	require.Equal(t, "a", d.Str())
	require.False(t, d.Done(), "trailing space")
}

// TestReaderOptionalAndLists: Opt reads an optional member only when it is
// there; More walks a list to its end, and stops at a failure.
func TestReaderOptionalAndLists(t *testing.T) {
	t.Parallel()
	read := func(in string) ([]string, bool, bool) {
		d := NewReader(in)
		d.Lit(`{`)
		flag := d.Opt(`"flag":true,`)
		d.Lit(`"l":[`)
		var l []string
		for i := 0; d.More(']'); i++ {
			if i > 0 {
				d.Lit(",")
			}
			l = append(l, d.Str())
		}
		d.Lit("]}")
		return l, flag, d.Done()
	}
	l, flag, ok := read(`{"flag":true,"l":["a","b"]}`)
	require.True(t, ok)
	require.True(t, flag)
	require.Equal(t, []string{"a", "b"}, l)
	l, flag, ok = read(`{"l":[]}`)
	require.True(t, ok)
	require.False(t, flag)
	require.Empty(t, l)
	_, _, ok = read(`{"flag":false,"l":[]}`)
	require.False(t, ok)
	_, _, ok = read(`{"l":["a" "b"]}`)
	require.False(t, ok)
	_, _, ok = read(`{"l":["a",` + strings.Repeat(`"x",`, 3))
	require.False(t, ok)
}

// TestReaderStringsShareTheInput: strings without escapes are parts of
// the input, and cost no allocation.
func TestReaderStringsShareTheInput(t *testing.T) {
	b := `["alpha","beta","gamma","delta"]`
	var sink [4]string
	allocs := testing.AllocsPerRun(100, func() {
		d := NewReader(b)
		d.Lit("[")
		var out [4]string
		for i := 0; d.More(']'); i++ {
			if i > 0 {
				d.Lit(",")
			}
			out[i] = d.Str()
		}
		d.Lit("]")
		if !d.Done() {
			t.Fatal("not read")
		}
		sink = out
	})
	require.Zero(t, allocs)
	require.Equal(t, [4]string{"alpha", "beta", "gamma", "delta"}, sink)
}
