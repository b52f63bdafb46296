package redact

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestJSON(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		src, want string
		n         int
	}{
		{`{"iban":"DE89","amount":5}`, `{"iban":"[redacted]","amount":5}`, 1},
		{` { "IBAN" : {"x":[1,{"iban":2}]} , "a" : [ {"Iban":null} ] } `, ` { "IBAN" : "[redacted]" , "a" : [ {"Iban":"[redacted]"} ] } `, 2},
		{`{"\u0069ban":[1,2]}`, `{"\u0069ban":"[redacted]"}`, 1},
		{`["iban",{"k":"iban"}]`, `["iban",{"k":"iban"}]`, 0},
		{`{}`, `{}`, 0},
		{`"iban"`, `"iban"`, 0},
		{`{"a\"iban":1,"iban\\":2}`, `{"a\"iban":1,"iban\\":2}`, 0},
	} {
		got, n := JSON([]byte(tc.src), []string{"iban"})
		require.Equal(t, tc.want, string(got), tc.src)
		require.Equal(t, tc.n, n, tc.src)
	}
	src := []byte(`{"a":1}`)
	got, n := JSON(src, []string{"iban"})
	require.Zero(t, n)
	require.Same(t, &src[0], &got[0], "without a match the input is returned")
}

func TestMetadata(t *testing.T) {
	t.Parallel()
	md := map[string]string{"Secret": "s", "ticket": "FIN-7"}
	got, ok := Metadata(md, []string{"secret"})
	require.True(t, ok)
	require.Equal(t, map[string]string{"Secret": Value, "ticket": "FIN-7"}, got)
	require.Equal(t, "s", md["Secret"], "the input is not modified")
	got, ok = Metadata(md, []string{"other"})
	require.False(t, ok)
	require.Equal(t, md, got)
}

// TestEqualFoldASCII: the ASCII fast path agrees with strings.EqualFold
// for every name against every ASCII member of up to two bytes, and for
// the names that fold into ASCII from outside it.
func TestEqualFoldASCII(t *testing.T) {
	t.Parallel()
	names := []string{"", "k", "K", "s", "S", "\u212A", "\u017F", "ks", "\u212As", "k\u017F", "a_", "é"}
	var members []string
	for c := range 0x80 {
		members = append(members, string(rune(c)))
		for d := 'A'; d <= 'z'; d++ {
			members = append(members, string(rune(c))+string(d))
		}
	}
	for _, m := range names {
		require.True(t, utf8.ValidString(m))
		for _, b := range members {
			require.Equal(t, strings.EqualFold(m, b), equalFoldASCII(m, []byte(b)), "%q vs %q", m, b)
		}
	}
	require.True(t, asciiOnly([]byte("api_key")))
	require.False(t, asciiOnly([]byte("clé")))
}
