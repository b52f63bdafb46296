package approvalmcp

import (
	"encoding/json"
	"math/big"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// checkArgsCases are arguments checkArgs takes (ok) or refuses.
var checkArgsCases = []struct {
	args string
	ok   bool
}{
	{`{"id":42,"x":1.5,"y":-0,"z":0.1,"w":1e3,"v":1E+2,"u":2.5e-3}`, true},
	{`{"a":[1,[2,{"b":9007199254740992}]],"c":-9007199254740992}`, true},
	{`{"max":1.7976931348623157e308,"min":5e-324,"big":100000000000000000000}`, true},
	{`{"x":123456789012345}`, true},
	{`{"x":0.` + strings.Repeat("0", 290) + `1}`, true},
	{`{"x":0e999999999999999999999}`, true},
	{`{"x":9007199254740993}`, false},
	{`{"a":[1,[2,{"b":9007199254740993}]]}`, false},
	{`{"x":-9007199254740993}`, false},
	{`{"x":0.1000000000000000055511151231257827}`, false},
	{`{"x":1e400}`, false},
	{`{"x":-1e400}`, false},
	{`{"x":1e-400}`, false},
	{`{"x":2.5e-324}`, false},
	{`{"x":1` + strings.Repeat("0", 400) + `}`, false},
	{`{"x":0.` + strings.Repeat("0", 400) + `1}`, false},
	{`{"x":1e99999999999999999999}`, false},
	{`{"x":1e-99999999999999999999}`, false},
	{`{"s":"\ud83d\ude00","t":"\\ud800","u":"\\\ud83d\ude00","v":"\u00e9"}`, true},
	{`{"s":"\ud800"}`, false},
	{`{"s":"\udc00"}`, false},
	{`{"s":"\ud800x"}`, false},
	{`{"s":"\ud800\u0041"}`, false},
	{`{"s":"\ude00\ud83d"}`, false},
	{`{"s":"\\\ud800"}`, false},
	{`{"a":[{"s":"\uDBFF"}]}`, false},
	{`{"s\ud800":1}`, false},
	{"{\"s\":\"a\xffb\"}", false},
}

func TestCheckArgs(t *testing.T) {
	t.Parallel()
	for _, tc := range checkArgsCases {
		err := checkArgs(json.RawMessage(tc.args))
		if tc.ok {
			require.NoError(t, err, tc.args)
			require.True(t, receivedAsApproved(tc.args), "a typed tool receives %s as it is", tc.args)
		} else {
			require.ErrorIs(t, err, approval.ErrInvalidAction, tc.args)
		}
	}
}

// FuzzCheckArgs: what checkArgs takes, a tool added with mcp.AddTool
// receives with the values approved.
func FuzzCheckArgs(f *testing.F) {
	for _, tc := range checkArgsCases {
		f.Add(tc.args)
	}
	f.Fuzz(func(t *testing.T, args string) {
		if checkArgs(json.RawMessage(args)) == nil && !receivedAsApproved(args) {
			t.Fatalf("checkArgs takes %s, which a typed tool receives changed", args)
		}
	})
}

// receivedAsApproved reports whether args reach a typed tool as they are:
// the SDK decodes them into a map and encodes that again (here with
// encoding/json), and the two are compared with numbers exact.
func receivedAsApproved(args string) bool {
	if strings.TrimSpace(args) == "" || strings.TrimSpace(args) == "null" {
		return true
	}
	var m map[string]any
	if json.Unmarshal([]byte(args), &m) != nil {
		return false
	}
	got, err := json.Marshal(m)
	if err != nil {
		return false
	}
	return sameJSON(decodeExact(args), decodeExact(string(got)))
}

// decodeExact decodes JSON text with numbers as json.Number.
func decodeExact(s string) any {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return nil
	}
	return v
}

func sameJSON(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if w, ok := y[k]; !ok || !sameJSON(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameJSON(x[i], y[i]) {
				return false
			}
		}
		return true
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		rx, ok1 := rat(x)
		ry, ok2 := rat(y)
		return ok1 && ok2 && rx.Cmp(ry) == 0
	}
	return a == b
}

// rat is the exact value of a JSON number. big.Rat refuses a huge
// exponent, which only a zero's may have here.
func rat(n json.Number) (*big.Rat, bool) {
	mant, _, _ := strings.Cut(strings.ToLower(string(n)), "e")
	if strings.Trim(mant, "-0.") == "" {
		return new(big.Rat), true
	}
	return new(big.Rat).SetString(string(n))
}

func TestLoneSurrogate(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		`"\ud800"`: true, `"\ud83d\ude00"`: false, `"\\ud800"`: false, `"\\\ud800"`: true,
		`"\ud83d"`: true, `"\ude00"`: true, `"\ud83d\\ude00"`: true, `"\u0041\ud83d"`: true,
		`"\n\t\u0041"`: false, `"\uD83D\uDE00"`: false, `"\uD83D\u0041"`: true,
	} {
		require.Equal(t, want, loneSurrogate([]byte(s)), s)
		if !want {
			var got string
			require.NoError(t, json.Unmarshal([]byte(s), &got))
			require.NotContains(t, got, "\uFFFD", s)
		}
	}
}
