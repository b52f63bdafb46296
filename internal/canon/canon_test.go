package canon

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/gowebpki/jcs"
	"github.com/stretchr/testify/require"
)

// jcsOf is the reference: encoding/json output run through gowebpki/jcs.
func jcsOf(t testing.TB, v any) string {
	t.Helper()
	raw, err := json.Marshal(v)
	require.NoError(t, err)
	out, err := jcs.Transform(raw)
	require.NoError(t, err)
	return string(out)
}

// trickyStrings exercise every escaping rule JCS has, and the ones it does
// not have (encoding/json escapes '<', '>', '&', U+2028 and U+2029; JCS
// writes them as they are).
func trickyStrings() []string {
	var ctl strings.Builder
	for c := range 0x20 {
		ctl.WriteByte(byte(c))
	}
	ss := []string{
		"",
		"plain",
		`"`,
		`\`,
		`\"`,
		`say "hi"\n`,
		ctl.String(),
		"\x7f",
		"<script>&amp;</script>",
		"a\u2028b\u2029c",
		"€$\x0f\nA'B\"\\\\\"/",
		"ö",
		"\u0080",
		"\ufb33",
		"\uffff",
		"\ufeff BOM",
		"😀",
		"\U0001F468\u200d\U0001F469\u200d\U0001F467", // family emoji (ZWJ sequence)
		"\U00010000\U0010ffff",
		"mixed \x00 😀 \x1f \" \\ < \u2028 end",
		strings.Repeat("long\t", 300),
	}
	for c := range 0x20 {
		ss = append(ss, string(rune(c)), "x"+string(rune(c))+"y")
	}
	return ss
}

func TestCanonAppendStringMatchesJCS(t *testing.T) {
	t.Parallel()
	for _, s := range trickyStrings() {
		want := jcsOf(t, s)
		require.Equal(t, want, string(AppendString(nil, s)), "string %q", s)
		// AppendString appends: existing bytes are kept.
		require.Equal(t, "prefix"+want, string(AppendString([]byte("prefix"), s)), "string %q", s)
	}
}

func TestCanonAppendStringEscapes(t *testing.T) {
	t.Parallel()
	// Spelled out, so a change in the reference library cannot hide a change
	// here: short escapes where JSON has them, lower-case \u00xx otherwise.
	tests := []struct {
		in, want string
	}{
		{"\b\f\n\r\t", `"\b\f\n\r\t"`},
		{"\x00\x01\x0b\x1f", `"\u0000\u0001\u000b\u001f"`},
		{`"\`, `"\"\\"`},
		{"/", `"/"`},
		{"\x7f", "\"\x7f\""},
		{"<>&", `"<>&"`},
		{"\u2028", "\"\u2028\""},
		{"😀", "\"😀\""},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, string(AppendString(nil, tt.in)), "input %q", tt.in)
	}
}

// TestCanonNeedsEscape: the eight-bytes-at-a-time check finds every byte
// that is escaped, wherever it is, whatever is around it.
func TestCanonNeedsEscape(t *testing.T) {
	t.Parallel()
	for n := range 40 {
		for _, around := range []byte{'a', ' ', '!', '#', '[', ']', 0x7f, 0x80, 0xff} {
			b := []byte(strings.Repeat(string(around), n+1))
			require.False(t, needsEscape(string(b)), "%q", b)
			for c := range 256 {
				b[n] = byte(c)
				want := c < 0x20 || c == '"' || c == '\\'
				require.Equal(t, want, needsEscape(string(b)), "%q", b)
			}
		}
	}
	require.False(t, needsEscape(""))
}

func FuzzCanonAppendString(f *testing.F) {
	for _, s := range trickyStrings() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			t.Skip("callers validate UTF-8 first")
		}
		require.Equal(t, jcsOf(t, s), string(AppendString(nil, s)))
	})
}

func TestCanonAppendKey(t *testing.T) {
	t.Parallel()
	require.Equal(t, `"a\"b":`, string(AppendKey(nil, `a"b`)))
}

func TestCanonAppendStrings(t *testing.T) {
	t.Parallel()
	for _, ss := range [][]string{{}, {""}, {"b", "a"}, trickyStrings()} {
		require.Equal(t, jcsOf(t, ss), string(AppendStrings(nil, ss)))
	}
}

func TestCanonAppendInt(t *testing.T) {
	t.Parallel()
	for _, n := range []int64{0, 1, -1, 42, 1 << 53, -(1 << 53)} {
		require.Equal(t, jcsOf(t, n), string(AppendInt(nil, n)))
	}
}

// rfcSortExample is RFC 8785 section 3.2.3's sorting example, in the order
// the RFC gives as the result.
var rfcSortExample = []string{
	"\r",
	"1",
	"\u0080",
	"\u00f6",
	"\u20ac",
	"\U0001F600", // "\ud83d\ude00"
	"\ufb33",
}

func TestCanonSortKeysRFC8785Example(t *testing.T) {
	t.Parallel()
	// Byte (and code point) order puts U+FB33 before U+1F600; UTF-16 order
	// puts the surrogate pair first. The example fails with sort.Strings.
	require.False(t, slices.IsSorted(rfcSortExample))

	r := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		keys := slices.Clone(rfcSortExample)
		r.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		SortKeys(keys)
		require.Equal(t, rfcSortExample, keys)
	}

	// The RFC's object, serialized by the reference.
	m := map[string]string{
		"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh",
		"1": "One", "\U0001F600": "Emoji: Grinning Face", "\u0080": "Control",
		"\u00f6": "Latin Small Letter O With Diaeresis",
	}
	require.Equal(t, jcsOf(t, m), string(AppendStringMap(nil, m)))
}

// lessUTF16 is the definition: lexicographic order of UTF-16 code units.
func lessUTF16(a, b string) bool {
	return slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(b))) < 0
}

func TestCanonLess(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want bool
	}{
		{"", "", false},
		{"", "a", true},
		{"a", "", false},
		{"a", "a", false},
		{"a", "ab", true},
		{"ab", "a", false},
		{"a", "b", true},
		{"B", "a", true},
		{"\U0001F600", "\ufb33", true}, // 0xD83D < 0xFB33
		{"\ufb33", "\U0001F600", false},
		{"\U0001F600", "\ud7ff", false}, // 0xD83D > 0xD7FF
		{"\U0001F600", "\U0001F601", true},
		{"\U00010000", "\U0010ffff", true},
		{"\U0001F600", "\U0001F600x", true},
		{"x\U0001F600", "x\ue000", true},
		{"\uffff", "\U00010000", false},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, Less(tt.a, tt.b), "Less(%q, %q)", tt.a, tt.b)
		require.Equal(t, lessUTF16(tt.a, tt.b), tt.want, "reference for (%q, %q)", tt.a, tt.b)
	}

	// Every pair of a pool rich in the interesting planes agrees with the
	// definition.
	pool := append(slices.Clone(rfcSortExample), trickyStrings()...)
	r := rand.New(rand.NewPCG(3, 4))
	alphabet := []rune{'a', 'z', 0x7f, 0xe9, 0x20ac, 0xd7ff, 0xe000, 0xfb33, 0xffff, 0x10000, 0x1f600, 0x10ffff}
	for range 300 {
		n := r.IntN(4)
		rs := make([]rune, n)
		for i := range rs {
			rs[i] = alphabet[r.IntN(len(alphabet))]
		}
		pool = append(pool, string(rs))
	}
	for _, a := range pool {
		for _, b := range pool {
			if Less(a, b) != lessUTF16(a, b) {
				t.Fatalf("Less(%q, %q) = %v, want %v", a, b, Less(a, b), lessUTF16(a, b))
			}
		}
	}
}

func TestCanonAppendStringMap(t *testing.T) {
	t.Parallel()
	big := map[string]string{}
	for i, s := range trickyStrings() {
		big[s] = trickyStrings()[(i+7)%len(trickyStrings())]
	}
	tests := []map[string]string{
		nil,
		{},
		{"b": "2", "a": "1"},
		{"\ufb33": "x", "\U0001F600": "y", "\u20ac": "z"},
		big,
	}
	for _, m := range tests {
		want := "{}"
		if m != nil {
			want = jcsOf(t, m)
		}
		require.Equal(t, want, string(AppendStringMap(nil, m)))
	}
}

func TestCanonAppendFloatRFC8785(t *testing.T) {
	t.Parallel()
	// RFC 8785 Appendix B: IEEE 754 bit patterns and their canonical text.
	tests := []struct {
		bits uint64
		want string
	}{
		{0x0000000000000000, "0"},
		{0x8000000000000000, "0"}, // minus zero
		{0x0000000000000001, "5e-324"},
		{0x8000000000000001, "-5e-324"},
		{0x7fefffffffffffff, "1.7976931348623157e+308"},
		{0xffefffffffffffff, "-1.7976931348623157e+308"},
		{0x4340000000000000, "9007199254740992"},
		{0xc340000000000000, "-9007199254740992"},
		{0x4430000000000000, "295147905179352830000"},
		{0x44b52d02c7e14af5, "9.999999999999997e+22"},
		{0x44b52d02c7e14af6, "1e+23"},
		{0x44b52d02c7e14af7, "1.0000000000000001e+23"},
		{0x444b1ae4d6e2ef4e, "999999999999999700000"},
		{0x444b1ae4d6e2ef4f, "999999999999999900000"},
		{0x444b1ae4d6e2ef50, "1e+21"},
		{0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"},
		{0x3eb0c6f7a0b5ed8d, "0.000001"},
		{0x41b3de4355555553, "333333333.3333332"},
		{0x41b3de4355555554, "333333333.33333325"},
		{0x41b3de4355555555, "333333333.3333333"},
		{0x41b3de4355555556, "333333333.3333334"},
		{0x41b3de4355555557, "333333333.33333343"},
		{0xbecbf647612f3696, "-0.0000033333333333333333"},
		{0x43143ff3c1cb0959, "1424953923781206.2"},
	}
	for _, tt := range tests {
		got, err := AppendFloat([]byte("x"), math.Float64frombits(tt.bits))
		require.NoError(t, err, "bits %#x", tt.bits)
		require.Equal(t, "x"+tt.want, string(got), "bits %#x", tt.bits)
	}

	// Section 3.2.2.3's examples, as numbers.
	for f, want := range map[float64]string{
		333333333.33333329: "333333333.3333333", 1e30: "1e+30", 4.50: "4.5",
		2e-3: "0.002", 0.000000000000000000000000001: "1e-27", 1000: "1000", 0.1: "0.1",
	} {
		got, err := AppendFloat(nil, f)
		require.NoError(t, err)
		require.Equal(t, want, string(got))
	}
}

func TestCanonAppendFloatRejectsNonFinite(t *testing.T) {
	t.Parallel()
	for _, bits := range []uint64{0x7fffffffffffffff, 0x7ff0000000000000, 0xfff0000000000000} {
		got, err := AppendFloat([]byte("keep"), math.Float64frombits(bits))
		require.Error(t, err, "bits %#x", bits)
		require.Equal(t, "keep", string(got), "nothing is appended on error")
	}
}

func TestCanonAppendJSON(t *testing.T) {
	t.Parallel()
	got, err := AppendJSON([]byte("p:"), []byte(` { "b" : [ 1.50, true, null ], "a" : "\u00e9\/" } `))
	require.NoError(t, err)
	require.Equal(t, `p:{"a":"é/","b":[1.5,true,null]}`, string(got))

	for _, bad := range []string{``, `{`, `{"a":1}x`, `{"a":1,"a":2}`, `"\ud800"`} {
		got, err := AppendJSON([]byte("p:"), []byte(bad))
		require.Error(t, err, "input %q", bad)
		require.Equal(t, "p:", string(got))
	}
}
