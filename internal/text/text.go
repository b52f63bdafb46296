// Package text holds the string helpers the packages share for what they
// show people and echo in errors: cutting a string to a size on a rune
// boundary, so that a cut never splits a UTF-8 sequence.
package text

import "unicode/utf8"

// Clip returns s cut to at most n bytes on a rune boundary, with "…"
// appended when it was cut (so the result may exceed n by the ellipsis'
// three bytes). s shorter than n is returned as it is.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return Cut(s, n) + "…"
}

// Cut returns s cut to at most n bytes on a rune boundary, with nothing
// appended: for a field with a hard limit.
func Cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
