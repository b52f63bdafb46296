package ident

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCanonicalASCIIDoesNotAllocate: Guard folds every action's name,
// requester, currency and tags; text already canonical costs nothing.
func TestCanonicalASCIIDoesNotAllocate(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		if s, err := Fold("deploy-bot@example.com"); err != nil || s != "deploy-bot@example.com" {
			t.Fatal(s, err)
		}
		if s, err := Name("deploy:prod"); err != nil || s != "deploy:prod" {
			t.Fatal(s, err)
		}
		if s, err := Currency("USD"); err != nil || s != "USD" {
			t.Fatal(s, err)
		}
		if s, err := ID("alice", 256); err != nil || s != "alice" {
			t.Fatal(s, err)
		}
	})
	require.Zero(t, allocs)
}

func TestFoldNameCurrency(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"Bob": "bob", "\uff42\uff4f\uff42": "bob", "Stra\u00dfe": "strasse"} {
		got, err := Fold(in)
		require.NoError(t, err, "%q", in)
		require.Equal(t, want, got, "%q", in)
	}
	for _, in := range []string{"bob ", "b\x00b", "bo\xffb", "bob\u200b", "\u00a8"} {
		_, err := Fold(in)
		require.Error(t, err, "%q", in)
	}
	got, err := Name("Deploy:Prod*")
	require.NoError(t, err)
	require.Equal(t, "deploy:prod*", got)
	for _, in := range []string{"deploy prod", "deploy:pr\u043ed", "a\x7f"} {
		_, err := Name(in)
		require.Error(t, err, "%q", in)
	}
	got, err = Currency("usd")
	require.NoError(t, err)
	require.Equal(t, "USD", got)
	for _, in := range []string{"", "US", "U$D", " USD", "\uff35\uff33\uff24"} {
		_, err := Currency(in)
		require.Error(t, err, "%q", in)
	}
}

// TestIDAndSame: an ID is bounded before and after folding, and two
// spellings are one person only if both are valid IDs.
func TestIDAndSame(t *testing.T) {
	t.Parallel()
	_, err := ID("", 8)
	require.EqualError(t, err, "empty")
	_, err = ID("abcdefghi", 8)
	require.EqualError(t, err, "9 bytes exceed the limit of 8")
	_, err = ID("\u00bc\u00bc\u00bc", 10) // each "¼" (2 bytes) is "1⁄4" (5 bytes)
	require.EqualError(t, err, "15 bytes in canonical form exceed the limit of 10")
	_, err = ID("bob "+strings.Repeat("x", 100), 256)
	require.ErrorContains(t, err, "…\" holds white space")

	require.True(t, Same("Bob", "\uff42\uff4f\uff42", 16))
	require.True(t, Same("bob ", "bob ", 8), "equal strings are one person")
	require.False(t, Same("bob ", "bob", 8))
	require.False(t, Same("abcdefghi", "ABCDEFGHI", 8), "too long to be an ID")
	require.False(t, Same("alice", "bob", 8))
}
