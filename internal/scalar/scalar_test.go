package scalar

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   any
		want any
	}{
		{"x", "x"}, {true, true}, {1.5, 1.5}, {float32(0.5), 0.5}, {3, 3.0}, {int64(-4), -4.0},
		{int32(5), 5.0}, {uint(6), 6.0}, {uint64(7), 7.0}, {json.Number("1e2"), 100.0},
	} {
		got, err := Of(tc.in)
		require.NoError(t, err, "%v", tc.in)
		require.Equal(t, tc.want, got, "%T %v", tc.in, tc.in)
	}
	for in, msg := range map[any]string{
		math.NaN():           "value is not a finite number",
		math.Inf(-1):         "value is not a finite number",
		float32(math.Inf(1)): "value is not a finite number",
		json.Number("x"):     `value "x" is not a number`,
		json.Number("1e999"): `value "1e999" is not a number`,
		int8(1):              "value of type int8 (want a string, a number or a bool)",
	} {
		_, err := Of(in)
		require.EqualError(t, err, msg, "%T %v", in, in)
	}
	_, err := Of(nil)
	require.EqualError(t, err, "value of type <nil> (want a string, a number or a bool)")
}

func TestLookup(t *testing.T) {
	t.Parallel()
	p := []byte(`{"a":{"b":[1,"x",{"c":2}],"n":12345678901234567890,"s":"v","big":1e400},"t":true}`)
	for _, tc := range []struct {
		path []string
		want any
	}{
		{[]string{"a", "b"}, []any{1.0, "x", map[string]any{"c": json.Number("2")}}},
		{[]string{"a", "n"}, 12345678901234567890.0},
		{[]string{"a", "big"}, "1e400"},
		{[]string{"a", "s"}, "v"},
		{[]string{"t"}, true},
		{[]string{"a", "missing"}, nil},
		{[]string{"t", "x"}, nil},
		{[]string{"a", "b", "c"}, nil},
	} {
		got, err := Lookup(p, tc.path)
		require.NoError(t, err)
		require.Equal(t, tc.want, got, "%v", tc.path)
	}
	got, err := Lookup(nil, []string{"a"})
	require.NoError(t, err)
	require.Nil(t, got)
	_, err = Lookup([]byte("a=1"), []string{"a"})
	require.EqualError(t, err, "the payload is not JSON")
}

func TestEqual(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		a, b any
		eq   bool
	}{
		{"a", "a", true}, {"a", "A", false},
		{"10", 10.0, true}, {10.0, "1e1", true}, {"ten", 10.0, false}, {10.0, 10.0, true}, {10.0, 11.0, false},
		{"true", true, true}, {false, "false", true}, {"True", true, false}, {true, true, true}, {true, false, false},
		{true, 1.0, false}, {1.0, true, false}, {nil, nil, false}, {[]any{"a"}, "a", false}, {"a", nil, false},
	} {
		require.Equal(t, tc.eq, Equal(tc.a, tc.b), "%#v %#v", tc.a, tc.b)
		require.Equal(t, tc.eq, Equal(tc.b, tc.a), "%#v %#v", tc.b, tc.a)
	}
}

func TestNumber(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   any
		want float64
		ok   bool
	}{
		{2.5, 2.5, true}, {"2.5", 2.5, true}, {"-1e3", -1000, true},
		{"NaN", 0, false}, {"Inf", 0, false}, {"1e400", 0, false}, {"x", 0, false}, {true, 0, false}, {nil, 0, false},
	} {
		got, ok := Number(tc.in)
		require.Equal(t, tc.ok, ok, "%#v", tc.in)
		require.Equal(t, tc.want, got, "%#v", tc.in)
	}
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	require.Equal(t, `"abc"`, Describe("abc"))
	require.Equal(t, `"01234567890123456789012345678901…"`, Describe("0123456789012345678901234567890123"))
	require.Equal(t, `"0123456789012345678901234567890…"`, Describe("0123456789012345678901234567890é"), "cut on a rune boundary")
	require.Equal(t, "a bool", Describe(true))
	require.Equal(t, "a []interface {}", Describe([]any{}))
}

func TestAppendCanonical(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		v    any
		want string
	}{
		{"Bob <b>", `"Bob <b>"`}, {"\u2028\"", "\"\u2028\\\"\""}, {true, "true"}, {false, "false"},
		{1000.0, "1000"}, {1e21, "1e+21"}, {0.1, "0.1"}, {-0.0, "0"}, {math.NaN(), "null"}, {nil, "null"}, {3, "null"},
	} {
		require.Equal(t, tc.want, string(AppendCanonical([]byte("x"), tc.v))[1:], "%#v", tc.v)
	}
}
