package approval

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/signoff/approval/internal/canon"
	"github.com/signoff/approval/internal/keyfile"
	"github.com/signoff/approval/internal/text"
)

// Tokens are "base64url(payload).base64url(signature)" without padding,
// where payload is a JSON object and signature is Ed25519 over the payload
// bytes exactly as sent. Both parts are URL-safe, so a token travels in a
// query string unescaped. Verification accepts one spelling of each token:
// no unused base64 bits set, the payload in the exact form issue writes.

// tokenVersion is the payload format version ("v").
const tokenVersion = 1

// maxTokenLen bounds the token string before any decoding work.
const maxTokenLen = 2048

// DefaultTokenLeeway is the clock skew tolerated when checking expiry and
// issue time.
const DefaultTokenLeeway = 30 * time.Second

// b64 is strict so that the unused low bits of a last character must be
// zero: otherwise one signature has several spellings.
var b64 = base64.RawURLEncoding.Strict()

// TokenClaims is the verified content of a decision token.
type TokenClaims struct {
	// Version is the token format's, 1.
	Version int `json:"v"`
	// KeyID names the key that signed the token.
	KeyID string `json:"kid"`
	// TokenID identifies the token: a decision records it, so it
	// decides once.
	TokenID string `json:"tid"`
	// RequestID is the request the token decides.
	RequestID string `json:"rid"`
	// Subject is the approver the token names (canonical).
	Subject string `json:"sub"`
	// Act is the verdict the token allows: approve, deny or both.
	Act Verdict `json:"act"`
	// IssuedAt is when it was issued, in Unix seconds.
	IssuedAt int64 `json:"iat"`
	// ExpiresAt is when it expires, in Unix seconds.
	ExpiresAt int64 `json:"exp"`
}

// Allows reports whether the token permits verdict v.
func (c *TokenClaims) Allows(v Verdict) bool {
	return c.Act == VerdictBoth || c.Act == v
}

// KeyID returns the key ID of an Ed25519 public key: the first 8 bytes of
// its SHA-256, base64url. Tokens name the key that signed them by this ID.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return b64.EncodeToString(sum[:8])
}

// GenerateKeys returns a new Ed25519 key pair for signing tokens, for tests
// and demos. A key that lives only in memory dies with the process, and
// with it every link signed by it: a service keeps its key in a file
// (LoadOrCreateKeyFile, or EncodePrivateKeyPEM and DecodePrivateKeyPEM).
// New warns about a key from GenerateKeys that was never encoded with
// EncodePrivateKeyPEM when the gate sends links (see New).
func GenerateKeys() (ed25519.PublicKey, ed25519.PrivateKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("approval: generate keys: %w", err)
	}
	keyfile.MarkEphemeral(priv)
	return pub, priv, nil
}

// keyring signs with one key and verifies with any of several, by key ID.
type keyring struct {
	signer    ed25519.PrivateKey
	signerKID string
	verify    map[string]ed25519.PublicKey
	leeway    time.Duration
}

func newKeyring(signer ed25519.PrivateKey, verify []ed25519.PublicKey, leeway time.Duration) (*keyring, error) {
	k := &keyring{verify: make(map[string]ed25519.PublicKey), leeway: leeway}
	if signer != nil {
		if len(signer) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("%w: SigningKey has %d bytes, want %d", ErrInvalidConfig, len(signer), ed25519.PrivateKeySize)
		}
		pub := signer.Public().(ed25519.PublicKey)
		k.signer, k.signerKID = signer, KeyID(pub)
		k.verify[k.signerKID] = pub
	}
	for _, pub := range verify {
		if len(pub) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: a VerifyKeys entry has %d bytes, want %d", ErrInvalidConfig, len(pub), ed25519.PublicKeySize)
		}
		k.verify[KeyID(pub)] = pub
	}
	if len(k.verify) == 0 {
		return nil, fmt.Errorf("%w: no SigningKey or VerifyKeys (load one with approval.LoadOrCreateKeyFile, or approval.GenerateKeys for tests)", ErrInvalidConfig)
	}
	return k, nil
}

// issue signs a token for approver on request rid.
func (k *keyring) issue(rid, approver string, act Verdict, now time.Time, ttl time.Duration) (string, error) {
	if k.signer == nil {
		return "", fmt.Errorf("%w: no SigningKey: this gate only verifies tokens", ErrInvalidConfig)
	}
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("approval: token id: %w", err)
	}
	// The payload is written by hand, keys in a fixed (sorted) order.
	p := make([]byte, 0, 192)
	p = append(p, '{')
	p = canon.AppendKey(p, "act")
	p = canon.AppendString(p, string(act))
	p = append(p, ',')
	p = canon.AppendKey(p, "exp")
	p = strconv.AppendInt(p, now.Add(ttl).Unix(), 10)
	p = append(p, ',')
	p = canon.AppendKey(p, "iat")
	p = strconv.AppendInt(p, now.Unix(), 10)
	p = append(p, ',')
	p = canon.AppendKey(p, "kid")
	p = canon.AppendString(p, k.signerKID)
	p = append(p, ',')
	p = canon.AppendKey(p, "rid")
	p = canon.AppendString(p, rid)
	p = append(p, ',')
	p = canon.AppendKey(p, "sub")
	p = canon.AppendString(p, approver)
	p = append(p, ',')
	p = canon.AppendKey(p, "tid")
	p = canon.AppendString(p, b64.EncodeToString(raw[:]))
	p = append(p, ',')
	p = canon.AppendKey(p, "v")
	p = strconv.AppendInt(p, tokenVersion, 10)
	p = append(p, '}')
	sig := ed25519.Sign(k.signer, p)
	out := make([]byte, 0, b64.EncodedLen(len(p))+1+b64.EncodedLen(len(sig)))
	out = b64.AppendEncode(out, p)
	out = append(out, '.')
	out = b64.AppendEncode(out, sig)
	return string(out), nil
}

// parse decodes a token without checking its signature. The claims it
// returns are unverified; they name the claimed subject for the audit trail.
//
// The decoded bytes go into scratch, which callers give from their stack so
// that verification allocates only the claim strings.
func parseToken(tok string, scratch *[2 * maxTokenLen]byte) (claims TokenClaims, payload, sig []byte, err error) {
	if len(tok) > maxTokenLen {
		return claims, nil, nil, fmt.Errorf("%w: longer than %d bytes", ErrTokenMalformed, maxTokenLen)
	}
	for i := 0; i < len(tok); i++ {
		// The base64 decoder skips CR and LF; refuse them and anything else
		// outside the alphabet, so one token has one spelling.
		if c := tok[i]; !tokenChar[c] {
			return claims, nil, nil, fmt.Errorf("%w: character %q outside base64url", ErrTokenMalformed, c)
		}
	}
	ps, ss, ok := strings.Cut(tok, ".")
	if !ok || strings.IndexByte(ss, '.') >= 0 {
		return claims, nil, nil, fmt.Errorf("%w: want two dot-separated parts", ErrTokenMalformed)
	}
	// scratch holds the encoded token, then the decoded payload and
	// signature: base64 decodes to at most 3/4 of its input.
	enc := append(scratch[maxTokenLen:maxTokenLen], tok...)
	payload, err = b64.AppendDecode(scratch[:0], enc[:len(ps)])
	if err != nil {
		return claims, nil, nil, fmt.Errorf("%w: payload is not base64url", ErrTokenMalformed)
	}
	sig, err = b64.AppendDecode(payload[len(payload):len(payload)], enc[len(ps)+1:])
	if err != nil || len(sig) != ed25519.SignatureSize {
		return claims, nil, nil, fmt.Errorf("%w: signature is not a base64url Ed25519 signature", ErrTokenMalformed)
	}
	if !decodeClaims(payload, &claims) {
		return claims, nil, nil, fmt.Errorf("%w: payload is not the expected JSON", ErrTokenMalformed)
	}
	switch {
	case claims.Version != tokenVersion:
		err = fmt.Errorf("%w: unsupported version %d", ErrTokenMalformed, claims.Version)
	case claims.KeyID == "" || claims.TokenID == "" || claims.RequestID == "" || claims.Subject == "":
		err = fmt.Errorf("%w: missing kid, tid, rid or sub", ErrTokenMalformed)
	case claims.Act != VerdictApprove && claims.Act != VerdictDeny && claims.Act != VerdictBoth:
		err = fmt.Errorf("%w: unknown act %q", ErrTokenMalformed, claims.Act)
	case claims.ExpiresAt < claims.IssuedAt:
		err = fmt.Errorf("%w: expires before it was issued", ErrTokenMalformed)
	}
	return claims, payload, sig, err
}

// tokenChar holds the bytes of a token: base64url's alphabet and the dot.
var tokenChar = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
	}
	return t
}()

// verify checks a token in the order the contract fixes: form, key and
// signature, then the times. Request and verdict binding are checked by the
// caller. On error the returned claims are the unverified ones, if the token
// parsed.
func (k *keyring) verifyToken(tok string, now time.Time) (TokenClaims, error) {
	var scratch [2 * maxTokenLen]byte
	claims, payload, sig, err := parseToken(tok, &scratch)
	if err != nil {
		return claims, err
	}
	pub, ok := k.verify[claims.KeyID]
	if !ok {
		return claims, fmt.Errorf("%w: unknown key ID %q", ErrTokenSignature, claims.KeyID)
	}
	if !ed25519.Verify(pub, payload, sig) {
		return claims, fmt.Errorf("%w: signature does not verify", ErrTokenSignature)
	}
	// The subject is compared in canonical form only (see CanonicalID);
	// tokens from this gate carry it already.
	sub, err := CanonicalID(claims.Subject)
	if err != nil {
		return claims, fmt.Errorf("%w: subject: %w", ErrTokenMalformed, err)
	}
	claims.Subject = sub
	// The times are checked only once they are known to be signed, so that
	// an unsigned claim never decides which error a forger is told.
	if iat := time.Unix(claims.IssuedAt, 0); iat.After(now.Add(k.leeway)) {
		return claims, fmt.Errorf("%w: issued %s in the future", ErrTokenMalformed, iat.Sub(now).Truncate(time.Second))
	}
	if exp := time.Unix(claims.ExpiresAt, 0).Add(k.leeway); now.After(exp) {
		return claims, fmt.Errorf("%w: expired %s ago", ErrTokenExpired, now.Sub(time.Unix(claims.ExpiresAt, 0)).Truncate(time.Second))
	}
	return claims, nil
}

// decodeClaims parses a payload in the exact form issue writes: canonical
// JSON (RFC 8785) with these eight members in this order. Anything else is
// malformed.
func decodeClaims(p []byte, c *TokenClaims) bool {
	d := canon.NewReader(string(p))
	d.Lit(`{"act":`)
	c.Act = Verdict(d.Str())
	d.Lit(`,"exp":`)
	c.ExpiresAt = d.Int()
	d.Lit(`,"iat":`)
	c.IssuedAt = d.Int()
	d.Lit(`,"kid":`)
	c.KeyID = d.Str()
	d.Lit(`,"rid":`)
	c.RequestID = d.Str()
	d.Lit(`,"sub":`)
	c.Subject = d.Str()
	d.Lit(`,"tid":`)
	c.TokenID = d.Str()
	d.Lit(`,"v":`)
	c.Version = int(d.Int())
	d.Lit(`}`)
	return d.Done()
}

// IssueToken signs a single-use decision token for approver on request
// requestID, allowing verdict (VerdictApprove, VerdictDeny or VerdictBoth),
// valid for ttl. It does not check that the request exists or that the
// approver is eligible: Decide checks both when the token is used.
func (g *Gate) IssueToken(requestID, approver string, verdict Verdict, ttl time.Duration) (string, error) {
	switch {
	case checkRequestID(requestID) != nil:
		return "", fmt.Errorf("approval: issue token: %w: %q is not a request ID", ErrInvalidDecision, text.Clip(requestID, maxEchoBytes))
	case verdict != VerdictApprove && verdict != VerdictDeny && verdict != VerdictBoth:
		return "", fmt.Errorf("approval: issue token: %w: unknown verdict %q", ErrInvalidDecision, verdict)
	case ttl <= 0:
		return "", fmt.Errorf("approval: issue token: %w: ttl must be positive", ErrInvalidDecision)
	}
	approver, err := CanonicalID(approver)
	if err != nil {
		return "", fmt.Errorf("approval: issue token: %w: approver: %w", ErrInvalidDecision, err)
	}
	tok, err := g.keys.issue(requestID, approver, verdict, g.now(), ttl)
	if err != nil {
		return "", fmt.Errorf("approval: issue token: %w", err)
	}
	return tok, nil
}

// VerifyToken checks a token's form, signature and expiry and returns its
// claims. Decide does this itself; VerifyToken serves review pages that show
// who a link is for before the person confirms.
func (g *Gate) VerifyToken(token string) (TokenClaims, error) {
	c, err := g.keys.verifyToken(token, g.now())
	if err != nil {
		return TokenClaims{}, fmt.Errorf("approval: verify token: %w", err)
	}
	return c, nil
}
