package jsondiff

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDiff(t *testing.T) {
	t.Parallel()
	cs, err := Diff([]byte(`{"a":1,"b":{"pin":"1234"},"c":[1]}`), []byte(` {"a":1.0,"b":{"PIN":"1234"},"c":[1,{"pin":5,"x":"<"}]}`), []string{"pin"})
	require.NoError(t, err)
	require.Equal(t, []Change{
		{Path: "a", Kind: Changed, Old: json.RawMessage(`1`), New: json.RawMessage(`1.0`)},
		{Path: "b.PIN", Kind: Added, New: json.RawMessage(`"[redacted]"`), Redacted: true},
		{Path: "b.pin", Kind: Removed, Old: json.RawMessage(`"[redacted]"`), Redacted: true},
		{Path: "c[1]", Kind: Added, New: json.RawMessage(`{"pin":"[redacted]","x":"<"}`)},
	}, cs)

	cs, err = Diff([]byte(`{"a":[1,2]}`), []byte(`{ "a" : [ 1 , 2 ] }`), nil)
	require.NoError(t, err)
	require.Nil(t, cs)

	for _, bad := range [][2]string{{`{}`, `not json`}, {` `, `{}`}, {`{} {}`, `{}`}, {`{}`, `{"a":}`}} {
		_, err := Diff([]byte(bad[0]), []byte(bad[1]), nil)
		require.ErrorIs(t, err, ErrNotJSON, "%q", bad)
	}
}

// TestDiffCap: past MaxChanges the remaining differences are left out.
func TestDiffCap(t *testing.T) {
	t.Parallel()
	var old, new strings.Builder
	old.WriteString("[")
	new.WriteString("[")
	for i := range MaxChanges + 10 {
		if i > 0 {
			old.WriteString(",")
			new.WriteString(",")
		}
		old.WriteString(strconv.Itoa(i))
		new.WriteString(strconv.Itoa(-i - 1))
	}
	old.WriteString("]")
	new.WriteString("]")
	cs, err := Diff([]byte(old.String()), []byte(new.String()), nil)
	require.NoError(t, err)
	require.Len(t, cs, MaxChanges)
	require.Equal(t, Change{Path: "[999]", Kind: Changed, Old: json.RawMessage(`999`), New: json.RawMessage(`-1000`)}, cs[MaxChanges-1])
}

func TestMemberPath(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ path, k, want string }{
		{"", "to", "to"},
		{"lines[2]", "amount", "lines[2].amount"},
		{"a", "_x-y9", "a._x-y9"},
		{"", "a.b", `["a.b"]`},
		{"a", "", `a[""]`},
		{"a", "9x", `a["9x"]`},
		{"", "clé", `["clé"]`},
		{"", `q"`, `["q\""]`},
	} {
		require.Equal(t, tc.want, memberPath(tc.path, tc.k), "%q %q", tc.path, tc.k)
	}
}
