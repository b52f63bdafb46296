package text

import (
	"testing"
	"unicode/utf8"
)

func TestClipAndCut(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s         string
		n         int
		clip, cut string
	}{
		{"abc", 5, "abc", "abc"},
		{"abc", 3, "abc", "abc"},
		{"abcdef", 3, "abc…", "abc"},
		{"héllo", 2, "h…", "h"}, // é is two bytes: not split
		{"héllo", 3, "hé…", "hé"},
		{"€uro", 2, "…", ""},
		{"", 0, "", ""},
	} {
		if got := Clip(tc.s, tc.n); got != tc.clip {
			t.Errorf("Clip(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.clip)
		}
		if got := Cut(tc.s, tc.n); got != tc.cut || !utf8.ValidString(got) || len(got) > tc.n && len(tc.s) > tc.n {
			t.Errorf("Cut(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.cut)
		}
	}
}
