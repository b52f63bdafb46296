package approval

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/signoff/approval/internal/text"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// The gate compares people, tags, names and currencies in one canonical
// spelling each, so that a variant spelling can neither slip past a policy
// nor let one person count twice:
//
//   - Identities (Action.RequestedBy, token subjects, User approvers,
//     directory members, Cancel's actor) and tags are Unicode NFKC,
//     case-folded, with no white space, control or format (invisible)
//     characters: "Bob", "ｂｏｂ" (fullwidth) and "bo\u0062" are "bob";
//     "bob " and "bob\u200b" are refused. Identities are at most
//     MaxIDBytes long.
//   - Action names and Name globs are printable ASCII without spaces,
//     folded to lower case, so no Unicode look-alike or stray space reaches
//     the glob: "Deploy:Prod" is "deploy:prod"; "deploy:prоd" (a Cyrillic
//     о) is refused.
//   - Currencies are three ASCII letters, upper-cased: "usd" is "USD";
//     " USD", "dollars" and "" are refused.
//
// Inputs are rewritten to these forms at the boundary (Guard, IssueToken,
// Cancel, SetPolicy), so a stored request holds canonical text and its
// action hash does not depend on the spelling.

// MaxIDBytes bounds an identity (a requester, approver or actor ID).
const MaxIDBytes = 256

// CanonicalID returns the canonical spelling of a person's or service's
// ID: NFKC, case-folded. It reports an error wrapping ErrInvalidIdentity for
// an empty ID, one longer than MaxIDBytes, one that is not valid UTF-8, or
// one holding white space, control or format characters. The gate compares
// identities only in this form; a Directory receives it (see Directory).
func CanonicalID(id string) (string, error) {
	if id == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalidIdentity)
	}
	if len(id) > MaxIDBytes {
		return "", fmt.Errorf("%w: %d bytes exceed the limit of %d", ErrInvalidIdentity, len(id), MaxIDBytes)
	}
	c, err := foldText(id)
	if err != nil {
		return "", fmt.Errorf("%w: %q %v", ErrInvalidIdentity, text.Clip(id, 64), err)
	}
	if len(c) > MaxIDBytes {
		return "", fmt.Errorf("%w: %d bytes in canonical form exceed the limit of %d", ErrInvalidIdentity, len(c), MaxIDBytes)
	}
	return c, nil
}

// sameID reports whether two identities are one person. Stored identities
// are canonical already; comparing canonical forms also covers requests and
// votes written before identities were canonicalized.
func sameID(a, b string) bool {
	if a == b {
		return true
	}
	ca, err1 := CanonicalID(a)
	cb, err2 := CanonicalID(b)
	return err1 == nil && err2 == nil && ca == cb
}

// foldText returns s NFKC case-folded. It refuses text that is not valid
// UTF-8 or that holds white space, control or format characters, before or
// after normalisation. Text that is canonical lower-case ASCII already is
// returned as it is, without allocating.
func foldText(s string) (string, error) {
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

// foldName returns an action name or name glob folded to lower case. It
// refuses anything but printable ASCII without spaces (0x21 to 0x7e).
func foldName(s string) (string, error) {
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

// foldCurrency returns an ISO 4217 currency code in upper case. It refuses
// anything but three ASCII letters.
func foldCurrency(s string) (string, error) {
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
