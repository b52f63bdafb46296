package approval

import (
	"fmt"

	"github.com/signoff/approval/internal/ident"
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
// action hash does not depend on the spelling. Package ident does the
// folding.

// MaxIDBytes bounds an identity (a requester, approver or actor ID).
const MaxIDBytes = 256

// CanonicalID returns the canonical spelling of a person's or service's
// ID: NFKC, case-folded. It reports an error wrapping ErrInvalidIdentity for
// an empty ID, one longer than MaxIDBytes, one that is not valid UTF-8, or
// one holding white space, control or format characters. The gate compares
// identities only in this form; a Directory receives it (see Directory).
func CanonicalID(id string) (string, error) {
	c, err := ident.ID(id, MaxIDBytes)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalidIdentity, err)
	}
	return c, nil
}

// sameID reports whether two identities are one person (see ident.Same).
func sameID(a, b string) bool { return ident.Same(a, b, MaxIDBytes) }
