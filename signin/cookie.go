package signin

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// A cookie's value is "v1." + base64url(JSON content) + "." +
// base64url(HMAC-SHA256(key, purpose + "\x00" + base64url(content))).
// The content is readable by whoever holds the cookie (their own approver
// ID and groups, or their own sign-in's state), so it is signed, not
// encrypted: the smaller construction, with nothing secret to hide from the
// browser that carries it. The purpose separates the session from the
// flow cookie, so one can never be passed off as the other. The expiry is
// inside the signed content: a browser that keeps a cookie past its
// Max-Age, or a copy replayed later, is refused all the same.
const cookieVersion = "v1"

// Purposes bound into each signature.
const (
	purposeSession = "signin.session"
	purposeFlow    = "signin.flow"
)

// maxCookieBytes is the most a cookie value may be: browsers keep 4096
// bytes for the name, value and attributes together.
const maxCookieBytes = 3800

// codec signs and verifies cookie values with a list of keys: the first
// signs, each verifies.
type codec struct {
	keys [][]byte
}

func (c codec) mac(key []byte, purpose, body string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(body))
	return m.Sum(nil)
}

// seal returns the cookie value carrying v for purpose.
func (c codec) seal(purpose string, v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	body := base64.RawURLEncoding.EncodeToString(b)
	sig := base64.RawURLEncoding.EncodeToString(c.mac(c.keys[0], purpose, body))
	s := cookieVersion + "." + body + "." + sig
	if len(s) > maxCookieBytes {
		return "", fmt.Errorf("signin: the %s cookie would be %d bytes, more than a browser keeps (%d): too many groups?", purpose, len(s), maxCookieBytes)
	}
	return s, nil
}

// open verifies value for purpose against every key and decodes it into v.
func (c codec) open(purpose, value string, v any) error {
	if len(value) > maxCookieBytes {
		return fmt.Errorf("%w: %d bytes", ErrBadCookie, len(value))
	}
	ver, rest, ok := strings.Cut(value, ".")
	if !ok || ver != cookieVersion {
		return fmt.Errorf("%w: not a %s cookie", ErrBadCookie, cookieVersion)
	}
	body, sig, ok := strings.Cut(rest, ".")
	if !ok {
		return fmt.Errorf("%w: no signature", ErrBadCookie)
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return fmt.Errorf("%w: signature encoding", ErrBadCookie)
	}
	valid := false
	for _, k := range c.keys {
		if hmac.Equal(got, c.mac(k, purpose, body)) {
			valid = true
			break
		}
	}
	if !valid {
		return fmt.Errorf("%w: signature", ErrBadCookie)
	}
	b, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return fmt.Errorf("%w: content encoding", ErrBadCookie)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: content: %v", ErrBadCookie, err)
	}
	return nil
}

// expiry checks the signed window [issued, expires) against now.
func expiry(now time.Time, issued, expires int64) error {
	if expires == 0 || issued == 0 {
		return fmt.Errorf("%w: no expiry", ErrBadCookie)
	}
	if u := now.Unix(); u >= expires {
		return fmt.Errorf("%w %s ago", ErrExpired, now.Sub(time.Unix(expires, 0)).Round(time.Second))
	}
	// A cookie issued in the future came from a clock (or a key) not to be
	// trusted; a minute of skew between replicas is allowed.
	if time.Unix(issued, 0).After(now.Add(time.Minute)) {
		return fmt.Errorf("%w: issued in the future", ErrBadCookie)
	}
	return nil
}
