// Package ident spells the identities, tags, action names and currencies
// of the approval package in their one canonical form each, so that a
// variant spelling can neither slip past a policy nor let one person count
// twice: identities and tags are Unicode NFKC, case-folded, with no white
// space, control or format characters (Fold, ID); action names are
// printable ASCII in lower case (Name); currencies are three ASCII letters
// in upper case (Currency).
//
// These run on every Guard call: text already in canonical ASCII form is
// returned as it is, without allocating. Errors describe the text refused;
// the caller wraps them with its own sentinel.
package ident

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/signoff/approval/internal/text"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// ID returns the canonical spelling of a person's or service's ID (see
// Fold). It refuses an empty ID, one longer than max bytes before or after
// folding, and one Fold refuses.
func ID(id string, max int) (string, error) {
	if id == "" {
		return "", errors.New("empty")
	}
	if len(id) > max {
		return "", fmt.Errorf("%d bytes exceed the limit of %d", len(id), max)
	}
	c, err := Fold(id)
	if err != nil {
		return "", fmt.Errorf("%q %v", text.Clip(id, 64), err)
	}
	if len(c) > max {
		return "", fmt.Errorf("%d bytes in canonical form exceed the limit of %d", len(c), max)
	}
	return c, nil
}

// Same reports whether two identities are one person: equal, or both
// valid (see ID) with one canonical form. Stored identities are canonical
// already; comparing canonical forms also covers requests and votes
// written before identities were canonicalized.
func Same(a, b string, max int) bool {
	if a == b {
		return true
	}
	ca, err1 := ID(a, max)
	cb, err2 := ID(b, max)
	return err1 == nil && err2 == nil && ca == cb
}

// Fold returns s NFKC case-folded. It refuses text that is not valid
// UTF-8 or that holds white space, control or format characters, before or
// after normalisation. Text that is canonical lower-case ASCII already is
// returned as it is, without allocating.
func Fold(s string) (string, error) {
	lower := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return foldUnicode(s)
		}
		if c <= ' ' || c == 0x7f {
			return "", fmt.Errorf("holds white space or a control character at byte %d", i)
		}
		if 'A' <= c && c <= 'Z' {
			lower = false
		}
	}
	if lower {
		return s, nil
	}
	return strings.ToLower(s), nil
}

func foldUnicode(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("is not valid UTF-8")
	}
	if err := checkVisible(s); err != nil {
		return "", err
	}
	// NFKC, full case folding, NFKC again: folding can undo a composition.
	c := norm.NFKC.String(cases.Fold().String(norm.NFKC.String(s)))
	// Compatibility mappings can introduce spaces ("¨" is " ̈").
	if err := checkVisible(c); err != nil {
		return "", err
	}
	return c, nil
}

func checkVisible(s string) error {
	for i, r := range s {
		if unicode.IsSpace(r) || unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r) {
			return fmt.Errorf("holds white space, a control or a format character (%U at byte %d)", r, i)
		}
	}
	return nil
}

// Name returns an action name or name glob folded to lower case. It
// refuses anything but printable ASCII without spaces (0x21 to 0x7e).
func Name(s string) (string, error) {
	lower := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f {
			return "", fmt.Errorf("must be printable ASCII without spaces; byte %d is %q", i, c)
		}
		if 'A' <= c && c <= 'Z' {
			lower = false
		}
	}
	if lower {
		return s, nil
	}
	return strings.ToLower(s), nil
}

// Currency returns an ISO 4217 currency code in upper case. It refuses
// anything but three ASCII letters.
func Currency(s string) (string, error) {
	if len(s) != 3 {
		return "", fmt.Errorf("currency %q is not an ISO 4217 code of three letters", text.Clip(s, 16))
	}
	upper := true
	for i := 0; i < 3; i++ {
		switch c := s[i]; {
		case 'A' <= c && c <= 'Z':
		case 'a' <= c && c <= 'z':
			upper = false
		default:
			return "", fmt.Errorf("currency %q is not an ISO 4217 code of three letters", s)
		}
	}
	if upper {
		return s, nil
	}
	return strings.ToUpper(s), nil
}
