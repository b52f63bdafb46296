package signin

import (
	"fmt"
	"strings"
)

// Claims are the claims about the signed-in person: the ID token's, and
// the provider's user info for any the ID token leaves out.
type Claims map[string]any

// String returns the string claim name, or "".
func (c Claims) String(name string) string {
	s, _ := c[name].(string)
	return s
}

// Bool reports whether the claim name is true: the JSON true, or the
// string "true" that some providers send.
func (c Claims) Bool(name string) bool {
	switch v := c[name].(type) {
	case bool:
		return v
	case string:
		return strings.EqualFold(v, "true")
	}
	return false
}

// Strings returns the claim name as a list of strings: a JSON array of
// strings, or one string. Anything else is nil.
func (c Claims) Strings(name string) []string {
	switch v := c[name].(type) {
	case string:
		if v == "" {
			return nil
		}
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok || s == "" {
				return nil
			}
			out = append(out, s)
		}
		return out
	}
	return nil
}

// EmailSubject is the default Config.Subject: the email claim, provided
// email_verified is true. An unverified address is refused, since many
// providers let a person type any address into their profile. Map another
// claim (preferred_username, a user ID) with a Subject of your own.
func EmailSubject(c Claims) (string, error) {
	email := c.String("email")
	if email == "" {
		return "", fmt.Errorf("%w: no email claim (ask for the email scope)", ErrSubject)
	}
	if !c.Bool("email_verified") {
		return "", fmt.Errorf("%w: email %q is not verified (email_verified is not true)", ErrSubject, email)
	}
	return email, nil
}
