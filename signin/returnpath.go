package signin

import (
	"net/url"
	"strings"
)

// maxReturnBytes bounds a return path, which travels in the sign-in cookie.
const maxReturnBytes = 1024

// safeReturn returns s if it is a same-site relative path ("/review/approvals?awaiting=me")
// and def otherwise. Refused: anything not starting with a single "/"
// ("//evil.example" and "https://evil.example" name another site), any
// backslash (browsers read "/\evil.example" as "//evil.example"), and
// control characters (browsers drop tabs and newlines, so "/\t/evil" would
// become "//evil").
func safeReturn(s, def string) string {
	if s == "" || len(s) > maxReturnBytes || s[0] != '/' || strings.HasPrefix(s, "//") || strings.ContainsRune(s, '\\') {
		return def
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return def
		}
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return def
	}
	return s
}
