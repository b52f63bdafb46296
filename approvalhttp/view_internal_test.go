package approvalhttp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// TestFmtAmount: amounts in their currency's minor units, digits grouped.
func TestFmtAmount(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		amount   float64
		currency string
		want     string
	}{
		{125000, "USD", "125,000.00 USD"},
		{5000, "JPY", "5,000 JPY"},
		{1000, "KWD", "1,000.000 KWD"},
		{999.5, "EUR", "999.50 EUR"},
		{1234567.891, "USD", "1,234,567.89 USD"},
		{-42, "USD", "-42.00 USD"},
		{100, "", "100"},
		{1e6, "XYZ", "1,000,000 XYZ"},
		{0.5, "ABC", "0.5 ABC"},
	} {
		require.Equal(t, tc.want, fmtAmount(&approval.Cost{Amount: tc.amount, Currency: tc.currency}), "%v %s", tc.amount, tc.currency)
	}
	require.Empty(t, fmtAmount(nil))
}

// indentCases are JSON texts whose pretty-printing the payload view must
// get exactly right: empty and nested containers, whitespace everywhere,
// punctuation and escapes inside strings, characters of every width.
var indentCases = []string{
	`{}`, `[]`, `""`, `0`, `true`, `null`, `"top"`, `-1.5e+10`, "12 \n", "\"s\"\t ", "{}\n",
	`{"a":{}}`, `[[],{},[{}]]`, `{"a":[1,2,{"b":[]}],"c":null}`,
	" \t\r\n{ \"a\" : [ 1 , 2 , { } ] , \"b\" :\n\"x y\" }\n ",
	`{"p":"{[,:]}","q":"a\"b","r":"\\","s":"\\\"","t":"\u00e9\n","u":"\\\\"}`,
	`{"é":"é€😀","ключ":["значение",true,false]}`,
	strings.Repeat("[", 40) + `"deep"` + strings.Repeat("]", 40),
	`{"lines":[` + strings.Repeat(`{"sku":"SKU-000001","qty":3,"note":"<b>escape me</b> & more"},`, 50) + `{}]}`,
}

// TestIndentPrefix: indentPrefix prints what json.Indent prints, whole
// when it fits the limit, else a prefix of it longer than the limit.
func TestIndentPrefix(t *testing.T) {
	t.Parallel()
	for _, src := range indentCases {
		var full bytes.Buffer
		require.NoError(t, json.Indent(&full, []byte(src), "", "  "), src)
		for limit := 0; limit <= full.Len()+2; limit++ {
			got := indentPrefix([]byte("kept:"), []byte(src), limit)
			require.True(t, bytes.HasPrefix(got, []byte("kept:")), "appends to dst")
			got = got[len("kept:"):]
			if full.Len() <= limit {
				require.Equal(t, full.String(), string(got), "limit %d: %s", limit, src)
				continue
			}
			require.Greater(t, len(got), limit, "limit %d: %s", limit, src)
			require.True(t, bytes.HasPrefix(full.Bytes(), got), "limit %d: %q is not a prefix of %q", limit, got, full.String())
		}
	}
}

// FuzzIndentPrefix: for any JSON text and limit, indentPrefix gives
// json.Indent's output, or a prefix of it longer than the limit.
func FuzzIndentPrefix(f *testing.F) {
	for _, src := range indentCases {
		f.Add(src, 7)
	}
	f.Fuzz(func(t *testing.T, src string, limit int) {
		var full bytes.Buffer
		if limit < 0 || json.Indent(&full, []byte(src), "", "  ") != nil {
			return
		}
		got := indentPrefix(nil, []byte(src), limit)
		if full.Len() <= limit {
			require.Equal(t, full.String(), string(got))
			return
		}
		require.Greater(t, len(got), limit)
		require.True(t, bytes.HasPrefix(full.Bytes(), got))
	})
}

// TestPayloadViewCut: the review page's payload is what it was when the
// whole payload was pretty-printed and then cut: the same bytes, cut at
// the same character, with the same note, at every display limit.
func TestPayloadViewCut(t *testing.T) {
	t.Parallel()
	// whole is the view as the page made it before it stopped formatting
	// at the limit: json.Indent over everything, then the cut.
	whole := func(orig, red []byte, maxDisplay int) payloadView {
		var buf bytes.Buffer
		require.NoError(t, json.Indent(&buf, red, "", "  "))
		v := payloadView{Size: len(orig), Kind: "json", Text: buf.String()}
		if len(v.Text) > maxDisplay {
			cut := maxDisplay
			for cut > 0 && !utf8.RuneStart(v.Text[cut]) {
				cut--
			}
			v.Text, v.Truncated, v.Shown = v.Text[:cut], true, cut
		}
		return v
	}
	for _, src := range indentCases {
		red := []byte(src)
		var full bytes.Buffer
		require.NoError(t, json.Indent(&full, red, "", "  "))
		for _, maxDisplay := range []int{1, 2, 3, 5, 8, 13, 64, full.Len() - 1, full.Len(), full.Len() + 1, 64 << 10} {
			if maxDisplay < 1 {
				continue
			}
			h := &handler{maxDisplay: maxDisplay}
			for _, redacting := range []bool{false, true} {
				orig := append([]byte(`{"orig":1}`), red...) // the size shown is the original's
				require.Equal(t, whole(orig, red, maxDisplay), h.payload(orig, red, redacting),
					fmt.Sprintf("max %d, redacting %v: %s", maxDisplay, redacting, src))
			}
		}
	}
}
