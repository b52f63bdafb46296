package approval

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gowebpki/jcs"
	"github.com/stretchr/testify/require"
)

var tokenNow = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// testKey returns a deterministic key, so failures reproduce.
func testKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

func pubOf(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

func testKeyring(t testing.TB, signer ed25519.PrivateKey, verify ...ed25519.PublicKey) *keyring {
	t.Helper()
	k, err := newKeyring(signer, verify, 30*time.Second)
	require.NoError(t, err)
	return k
}

func issueAt(t testing.TB, k *keyring, now time.Time, ttl time.Duration) string {
	t.Helper()
	tok, err := k.issue("req_1", "bob", VerdictApprove, now, ttl)
	require.NoError(t, err)
	return tok
}

// signRaw makes a token of any payload, signed by priv.
func signRaw(priv ed25519.PrivateKey, payload []byte) string {
	return b64.EncodeToString(payload) + "." + b64.EncodeToString(ed25519.Sign(priv, payload))
}

// signClaims signs well-formed claims, changed by mutate.
func signClaims(t testing.TB, priv ed25519.PrivateKey, mutate func(c map[string]any)) string {
	t.Helper()
	c := map[string]any{
		"v": 1, "kid": KeyID(pubOf(priv)), "tid": "dG9rZW4tMQ", "rid": "req_1", "sub": "bob",
		"act": "approve", "iat": tokenNow.Unix(), "exp": tokenNow.Add(time.Hour).Unix(),
	}
	if mutate != nil {
		mutate(c)
	}
	p, err := json.Marshal(c)
	require.NoError(t, err)
	return signRaw(priv, p)
}

// signEdited signs the hand-made claims with old replaced by new in their
// payload: a token validly signed over an odd spelling of its claims.
func signEdited(t testing.TB, priv ed25519.PrivateKey, old, new string) string {
	t.Helper()
	p, _ := splitToken(t, signClaims(t, priv, nil))
	require.Contains(t, string(p), old)
	return signRaw(priv, bytes.Replace(p, []byte(old), []byte(new), 1))
}

// otherTrailingBits respells a base64url part with the unused low bits of
// its last character set. A lenient decoder reads the same bytes from both,
// so that is checked: the two spellings differ in those bits only.
func otherTrailingBits(t testing.TB, part string) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	require.NotZero(t, len(part)%4, "%q has no unused bits", part)
	last := strings.IndexByte(alphabet, part[len(part)-1])
	alt := part[:len(part)-1] + string(alphabet[last^1])
	want, err := base64.RawURLEncoding.DecodeString(part)
	require.NoError(t, err)
	got, err := base64.RawURLEncoding.DecodeString(alt)
	require.NoError(t, err)
	require.Equal(t, want, got)
	return alt
}

func splitToken(t testing.TB, tok string) (payload, sig []byte) {
	t.Helper()
	ps, ss, ok := strings.Cut(tok, ".")
	require.True(t, ok)
	payload, err := b64.DecodeString(ps)
	require.NoError(t, err)
	sig, err = b64.DecodeString(ss)
	require.NoError(t, err)
	return payload, sig
}

func TestTokenVerify(t *testing.T) {
	t.Parallel()
	keyA, keyB := testKey(1), testKey(2)
	k := testKeyring(t, keyA)
	valid := issueAt(t, k, tokenNow, time.Hour)
	validPayload, validSig := splitToken(t, valid)
	ps, ss, _ := strings.Cut(valid, ".")

	// A payload whose standard base64 has '+' or '/', sent in that alphabet.
	var stdAlphabet string
	for i := 0; stdAlphabet == ""; i++ {
		tok := signClaims(t, keyA, func(c map[string]any) { c["sub"] = fmt.Sprintf("bob~~~%d?>", i) })
		p, sig := splitToken(t, tok)
		if s := base64.RawStdEncoding.EncodeToString(p); strings.ContainsAny(s, "+/") {
			stdAlphabet = s + "." + b64.EncodeToString(sig)
		}
	}

	// Payloads whose last base64 character has 2 and 4 unused bits (a
	// signature, 64 bytes, always has 4).
	withSpareBits := func(rem int) (ps, ss string) {
		for n := 0; ; n++ {
			tok := signClaims(t, keyA, func(c map[string]any) { c["tid"] = strings.Repeat("t", 10+n) })
			if p, _ := splitToken(t, tok); len(p)%3 == rem {
				ps, ss, _ = strings.Cut(tok, ".")
				return ps, ss
			}
		}
	}
	ps1, ss1 := withSpareBits(1)
	ps2, ss2 := withSpareBits(2)

	exp := fmt.Sprint(tokenNow.Add(time.Hour).Unix())
	iat := fmt.Sprint(tokenNow.Unix())
	future := func(d time.Duration) func(c map[string]any) {
		return func(c map[string]any) { c["iat"] = tokenNow.Add(d).Unix() }
	}

	tests := []struct {
		name string
		tok  string
		now  time.Time // tokenNow if zero
		want error     // nil: the token verifies
		msg  string    // if set, in the error message
	}{
		{name: "valid", tok: valid},
		{name: "valid, hand-made", tok: signClaims(t, keyA, nil)},
		{name: "valid, act both", tok: signClaims(t, keyA, func(c map[string]any) { c["act"] = "both" })},
		{name: "valid, act deny", tok: signClaims(t, keyA, func(c map[string]any) { c["act"] = "deny" })},
		{name: "valid, exp equals iat", tok: signClaims(t, keyA, func(c map[string]any) { c["exp"] = c["iat"] })},

		{name: "empty", tok: "", want: ErrTokenMalformed},
		{name: "no dot", tok: ps, want: ErrTokenMalformed},
		{name: "only a dot", tok: ".", want: ErrTokenMalformed},
		{name: "empty payload", tok: "." + ss, want: ErrTokenMalformed},
		{name: "empty signature", tok: ps + ".", want: ErrTokenMalformed},
		{name: "two dots", tok: valid + ".", want: ErrTokenMalformed},
		{name: "three parts", tok: ps + "." + ss + "." + ss, want: ErrTokenMalformed},
		{name: "bad base64 payload", tok: "!!" + ps[2:] + "." + ss, want: ErrTokenMalformed},
		{name: "bad base64 signature", tok: ps + "." + "*" + ss[1:], want: ErrTokenMalformed},
		{name: "padded payload", tok: ps + "==" + "." + ss, want: ErrTokenMalformed},
		{name: "padded signature", tok: valid + "==", want: ErrTokenMalformed},
		{name: "standard base64 alphabet", tok: stdAlphabet, want: ErrTokenMalformed},
		{name: "signature too short", tok: ps + "." + b64.EncodeToString(validSig[:63]), want: ErrTokenMalformed},
		{name: "signature too long", tok: ps + "." + b64.EncodeToString(append(validSig, 0)), want: ErrTokenMalformed},
		{name: "payload not JSON", tok: signRaw(keyA, []byte("approve req_1")), want: ErrTokenMalformed},
		{name: "payload JSON array", tok: signRaw(keyA, []byte(`[1]`)), want: ErrTokenMalformed},
		{name: "payload JSON null", tok: signRaw(keyA, []byte(`null`)), want: ErrTokenMalformed},
		{name: "payload truncated", tok: signRaw(keyA, validPayload[:len(validPayload)-1]), want: ErrTokenMalformed},
		{name: "version as string", tok: signClaims(t, keyA, func(c map[string]any) { c["v"] = "1" }), want: ErrTokenMalformed},
		{name: "fractional iat", tok: signClaims(t, keyA, func(c map[string]any) { c["iat"] = 1.5 }), want: ErrTokenMalformed},
		{name: "version 2", tok: signClaims(t, keyA, func(c map[string]any) { c["v"] = 2 }), want: ErrTokenMalformed},
		{name: "version missing", tok: signClaims(t, keyA, func(c map[string]any) { delete(c, "v") }), want: ErrTokenMalformed},
		{name: "kid missing", tok: signClaims(t, keyA, func(c map[string]any) { delete(c, "kid") }), want: ErrTokenMalformed},
		{name: "tid missing", tok: signClaims(t, keyA, func(c map[string]any) { delete(c, "tid") }), want: ErrTokenMalformed},
		{name: "rid missing", tok: signClaims(t, keyA, func(c map[string]any) { delete(c, "rid") }), want: ErrTokenMalformed},
		{name: "sub missing", tok: signClaims(t, keyA, func(c map[string]any) { delete(c, "sub") }), want: ErrTokenMalformed},
		{name: "sub empty", tok: signClaims(t, keyA, func(c map[string]any) { c["sub"] = "" }), want: ErrTokenMalformed},
		{name: "act missing", tok: signClaims(t, keyA, func(c map[string]any) { delete(c, "act") }), want: ErrTokenMalformed},
		{name: "unknown act", tok: signClaims(t, keyA, func(c map[string]any) { c["act"] = "maybe" }), want: ErrTokenMalformed},
		{name: "act in capitals", tok: signClaims(t, keyA, func(c map[string]any) { c["act"] = "APPROVE" }), want: ErrTokenMalformed},
		{name: "exp before iat", tok: signClaims(t, keyA, func(c map[string]any) { c["exp"] = tokenNow.Unix() - 1 }), want: ErrTokenMalformed},
		{name: "exp missing", tok: signClaims(t, keyA, func(c map[string]any) { delete(c, "exp") }), want: ErrTokenMalformed},
		// The payload must be in the exact canonical form issue writes.
		{name: "unknown extra claim", tok: signClaims(t, keyA, func(c map[string]any) { c["aud"] = "x" }), want: ErrTokenMalformed},
		{name: "payload with whitespace", tok: signRaw(keyA, append([]byte(" "), validPayload...)), want: ErrTokenMalformed},
		{name: "payload keys out of order", tok: signRaw(keyA, []byte(fmt.Sprintf(`{"v":1,"act":"approve","exp":%d,"iat":%d,"kid":%q,"rid":"req_1","sub":"bob","tid":"dG9rZW4tMQ"}`,
			tokenNow.Add(time.Hour).Unix(), tokenNow.Unix(), KeyID(pubOf(keyA))))), want: ErrTokenMalformed},
		{name: "payload keys in order (control for the case above)", tok: signRaw(keyA, []byte(fmt.Sprintf(`{"act":"approve","exp":%d,"iat":%d,"kid":%q,"rid":"req_1","sub":"bob","tid":"dG9rZW4tMQ","v":1}`,
			tokenNow.Add(time.Hour).Unix(), tokenNow.Unix(), KeyID(pubOf(keyA)))))},
		{name: "payload with trailing bytes", tok: signRaw(keyA, append(append([]byte(nil), validPayload...), '\n')), want: ErrTokenMalformed},
		// One token, one spelling: the unused bits of a last base64
		// character are zero.
		{name: "valid, payload with 4 unused bits (control for the case below)", tok: ps1 + "." + ss1},
		{name: "payload with other unused bits (4)", tok: otherTrailingBits(t, ps1) + "." + ss1, want: ErrTokenMalformed},
		{name: "valid, payload with 2 unused bits (control for the case below)", tok: ps2 + "." + ss2},
		{name: "payload with other unused bits (2)", tok: otherTrailingBits(t, ps2) + "." + ss2, want: ErrTokenMalformed},
		{name: "signature with other unused bits", tok: ps + "." + otherTrailingBits(t, ss), want: ErrTokenMalformed, msg: "signature"},
		// Strings have only the escapes canon.AppendString writes.
		{name: "valid, every canonical escape", tok: signEdited(t, keyA, `"tid":"dG9rZW4tMQ"`, `"tid":"\"\\\b\f\n\r\t\u0000\u0001\u000b\u001f"`)},
		{name: "escaped letter", tok: signEdited(t, keyA, `"bob"`, `"\u0062ob"`), want: ErrTokenMalformed},
		{name: "escaped non-ASCII", tok: signEdited(t, keyA, `"bob"`, `"bob\u00e9"`), want: ErrTokenMalformed},
		{name: "escaped surrogate pair", tok: signEdited(t, keyA, `"bob"`, `"bob\ud83d\ude00"`), want: ErrTokenMalformed},
		{name: "escaped slash", tok: signEdited(t, keyA, `"bob"`, `"b\/ob"`), want: ErrTokenMalformed},
		{name: "escaped newline in long form", tok: signEdited(t, keyA, `"bob"`, `"bob\u000a"`), want: ErrTokenMalformed},
		{name: "escaped tab in long form", tok: signEdited(t, keyA, `"bob"`, `"bob\u0009"`), want: ErrTokenMalformed},
		{name: "escape in upper-case hex", tok: signEdited(t, keyA, `"bob"`, `"bob\u001F"`), want: ErrTokenMalformed},
		{name: "escape in upper-case U", tok: signEdited(t, keyA, `"bob"`, `"bob\U001f"`), want: ErrTokenMalformed},
		{name: "short escape", tok: signEdited(t, keyA, `"bob"`, `"bob\u01"`), want: ErrTokenMalformed},
		{name: "Go hex escape", tok: signEdited(t, keyA, `"bob"`, `"\x62ob"`), want: ErrTokenMalformed},
		{name: "Go octal escape", tok: signEdited(t, keyA, `"bob"`, `"\142ob"`), want: ErrTokenMalformed},
		{name: "Go bell escape", tok: signEdited(t, keyA, `"bob"`, `"bob\a"`), want: ErrTokenMalformed},
		{name: "Go vertical tab escape", tok: signEdited(t, keyA, `"bob"`, `"bob\v"`), want: ErrTokenMalformed},
		{name: "Go long Unicode escape", tok: signEdited(t, keyA, `"bob"`, `"bob\U0001F600"`), want: ErrTokenMalformed},
		{name: "Go single-quote escape", tok: signEdited(t, keyA, `"bob"`, `"bob\'"`), want: ErrTokenMalformed},
		{name: "backslash ending the string", tok: signEdited(t, keyA, `"bob"`, `"bob\"`), want: ErrTokenMalformed},
		{name: "escaped quote of the key", tok: signEdited(t, keyA, `"sub":`, `"s\u0075b":`), want: ErrTokenMalformed},
		// Integers have one spelling: no leading zeros, no minus zero.
		{name: "valid, iat zero", tok: signEdited(t, keyA, `"iat":`+iat, `"iat":0`)},
		{name: "valid, iat negative", tok: signEdited(t, keyA, `"iat":`+iat, `"iat":-7`)},
		{name: "version with a leading zero", tok: signEdited(t, keyA, `"v":1`, `"v":01`), want: ErrTokenMalformed},
		{name: "exp with leading zeros", tok: signEdited(t, keyA, `"exp":`+exp, `"exp":00`+exp), want: ErrTokenMalformed},
		{name: "iat minus zero", tok: signEdited(t, keyA, `"iat":`+iat, `"iat":-0`), want: ErrTokenMalformed},
		{name: "iat minus zero zero", tok: signEdited(t, keyA, `"iat":`+iat, `"iat":-00`), want: ErrTokenMalformed},
		{name: "iat negative with a leading zero", tok: signEdited(t, keyA, `"iat":`+iat, `"iat":-07`), want: ErrTokenMalformed},
		{name: "iat a lone minus", tok: signEdited(t, keyA, `"iat":`+iat, `"iat":-`), want: ErrTokenMalformed},
		{name: "exp with a plus", tok: signEdited(t, keyA, `"exp":`+exp, `"exp":+`+exp), want: ErrTokenMalformed},
		{name: "exp of 19 digits", tok: signEdited(t, keyA, `"exp":`+exp, `"exp":1000000000000000000`), want: ErrTokenMalformed},
		{name: "valid, exp of 18 digits", tok: signEdited(t, keyA, `"exp":`+exp, `"exp":999999999999999999`)},
		{name: "over 2048 bytes, validly signed", tok: signClaims(t, keyA, func(c map[string]any) { c["sub"] = strings.Repeat("b", 1600) }), want: ErrTokenMalformed},
		// Malformed is reported before the key is even looked up.
		{name: "malformed and signed by an unknown key", tok: signClaims(t, keyB, func(c map[string]any) { c["v"] = 2 }), want: ErrTokenMalformed},

		{name: "another key with the same kid", tok: signClaims(t, keyB, func(c map[string]any) { c["kid"] = KeyID(pubOf(keyA)) }), want: ErrTokenSignature},
		{name: "unknown kid", tok: signClaims(t, keyB, nil), want: ErrTokenSignature},
		{name: "unknown kid naming no key", tok: signClaims(t, keyA, func(c map[string]any) { c["kid"] = "AAAAAAAAAAA" }), want: ErrTokenSignature},
		{name: "tampered payload", tok: b64.EncodeToString(bytes.Replace(validPayload, []byte(`"bob"`), []byte(`"bpb"`), 1)) + "." + ss, want: ErrTokenSignature},
		{name: "tampered expiry", tok: b64.EncodeToString(bytes.Replace(validPayload, []byte(`"exp":1`), []byte(`"exp":2`), 1)) + "." + ss, want: ErrTokenSignature},
		{name: "tampered signature", tok: ps + "." + b64.EncodeToString(append([]byte{validSig[0] ^ 1}, validSig[1:]...)), want: ErrTokenSignature},
		{name: "signature of another token", tok: ps + "." + strings.SplitN(issueAt(t, k, tokenNow, time.Hour), ".", 2)[1], want: ErrTokenSignature},
		// The signature is checked before expiry: a forged token learns
		// nothing about expiry.
		{name: "wrong key and expired", tok: signClaims(t, keyB, func(c map[string]any) { c["kid"] = KeyID(pubOf(keyA)) }), now: tokenNow.Add(48 * time.Hour), want: ErrTokenSignature},
		{name: "unknown kid and expired", tok: signClaims(t, keyB, nil), now: tokenNow.Add(48 * time.Hour), want: ErrTokenSignature},

		// A token issued in the future (beyond the leeway) is malformed,
		// but only a signed iat says so.
		{name: "issued in the future", tok: signClaims(t, keyA, future(5*time.Minute)), want: ErrTokenMalformed, msg: "issued 5m0s in the future"},
		{name: "issued in the future beyond leeway", tok: signClaims(t, keyA, future(31*time.Second)), want: ErrTokenMalformed},
		{name: "issued in the future by exactly the leeway", tok: signClaims(t, keyA, future(30*time.Second))},
		{name: "issued in the future within leeway", tok: signClaims(t, keyA, future(29*time.Second))},
		{name: "issued in the future, checked against now", tok: signClaims(t, keyA, future(5*time.Minute)), now: tokenNow.Add(5 * time.Minute)},
		{name: "issued in the future by an unknown key", tok: signClaims(t, keyB, future(5*time.Minute)), want: ErrTokenSignature},
		{name: "issued in the future by another key with the same kid", tok: signClaims(t, keyB, func(c map[string]any) {
			future(5 * time.Minute)(c)
			c["kid"] = KeyID(pubOf(keyA))
		}), want: ErrTokenSignature},
		{name: "tampered into the future", tok: b64.EncodeToString(bytes.Replace(validPayload, []byte(`"iat":`+iat), []byte(`"iat":`+fmt.Sprint(tokenNow.Add(time.Minute).Unix())), 1)) + "." + ss, want: ErrTokenSignature},

		{name: "expired long ago", tok: valid, now: tokenNow.Add(48 * time.Hour), want: ErrTokenExpired},
		{name: "expired beyond leeway", tok: valid, now: tokenNow.Add(time.Hour + 31*time.Second), want: ErrTokenExpired},
		{name: "expired by exactly the leeway", tok: valid, now: tokenNow.Add(time.Hour + 30*time.Second)},
		{name: "expired within leeway", tok: valid, now: tokenNow.Add(time.Hour + 29*time.Second)},
		{name: "at expiry", tok: valid, now: tokenNow.Add(time.Hour)},
		{name: "zero lifetime within leeway", tok: issueAt(t, k, tokenNow, 0), now: tokenNow.Add(10 * time.Second)},
		{name: "zero lifetime beyond leeway", tok: issueAt(t, k, tokenNow, 0), now: tokenNow.Add(31 * time.Second), want: ErrTokenExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			now := tt.now
			if now.IsZero() {
				now = tokenNow
			}
			claims, err := k.verifyToken(tt.tok, now)
			if tt.want == nil {
				require.NoError(t, err)
				require.Equal(t, 1, claims.Version)
				require.Equal(t, "req_1", claims.RequestID)
				require.Equal(t, "bob", claims.Subject)
				return
			}
			require.ErrorIs(t, err, tt.want)
			require.Contains(t, err.Error(), tt.msg)
			for _, other := range []error{ErrTokenMalformed, ErrTokenSignature, ErrTokenExpired} {
				if other != tt.want {
					require.NotErrorIs(t, err, other, "exactly one sentinel")
				}
			}
		})
	}
}

// TestTokenClaimStrings: every string issue writes reads back as itself,
// escapes included.
func TestTokenClaimStrings(t *testing.T) {
	t.Parallel()
	k := testKeyring(t, testKey(1))
	subs := []string{"\"", "\\", "\\\"", "\"\"", "é€😀\u2028\ufb33", "\\u0062", "\u007f"}
	for c := range 0x80 {
		subs = append(subs, "a"+string(rune(c))+"z")
	}
	// Carried in the request ID, which (unlike the subject) is any text.
	for _, s := range subs {
		tok, err := k.issue(s, "bob", VerdictApprove, tokenNow, time.Hour)
		require.NoError(t, err)
		claims, err := k.verifyToken(tok, tokenNow)
		require.NoError(t, err, "%q", s)
		require.Equal(t, s, claims.RequestID)
	}
}

// TestTokenDecodeAllocs: decoding claims allocates one copy of the
// payload, which the strings without escapes share, and one string for
// each string with escapes.
func TestTokenDecodeAllocs(t *testing.T) {
	k := testKeyring(t, testKey(1))
	for sub, want := range map[string]float64{"bob": 1, "b\"o\\b\n\x01": 2} {
		tok, err := k.issue("req_1", sub, VerdictApprove, tokenNow, time.Hour)
		require.NoError(t, err)
		payload, _ := splitToken(t, tok)
		var c TokenClaims
		require.True(t, decodeClaims(payload, &c))
		require.Equal(t, sub, c.Subject)
		// The least of three: see TestEvaluateNoMatchAllocatesNothing.
		allocs := math.Inf(1)
		for range 3 {
			allocs = min(allocs, testing.AllocsPerRun(100, func() { decodeClaims(payload, &c) }))
		}
		require.Equal(t, want, allocs, "%q", sub)
	}
}

func TestTokenLengthLimit(t *testing.T) {
	t.Parallel()
	key := testKey(1)
	k := testKeyring(t, key)
	var under, over string
	for n := 1000; over == ""; n++ {
		tok := signClaims(t, key, func(c map[string]any) { c["rid"] = strings.Repeat("r", n) })
		if len(tok) <= maxTokenLen {
			under = tok
		} else {
			over = tok
		}
	}
	require.Greater(t, len(under), maxTokenLen-4, "the longest token under the limit")
	_, err := k.verifyToken(under, tokenNow)
	require.NoError(t, err)
	_, err = k.verifyToken(over, tokenNow)
	require.ErrorIs(t, err, ErrTokenMalformed)
}

func TestTokenIssue(t *testing.T) {
	t.Parallel()
	key := testKey(1)
	k := testKeyring(t, key)
	for _, tt := range []struct {
		rid, sub string
		act      Verdict
	}{
		{"req_1", "bob", VerdictApprove},
		{"req_2", "alice@example.com", VerdictDeny},
		{"req_3 \x01 \"quoted\"", "ü/+=\"quoted\"\\😀", VerdictBoth},
	} {
		tok, err := k.issue(tt.rid, tt.sub, tt.act, tokenNow, 15*time.Minute)
		require.NoError(t, err)

		payload, _ := splitToken(t, tok)
		c, err := jcs.Transform(payload)
		require.NoError(t, err)
		require.Equal(t, string(c), string(payload), "the payload is canonical JSON")

		claims, err := k.verifyToken(tok, tokenNow)
		require.NoError(t, err)
		require.Equal(t, TokenClaims{
			Version: 1, KeyID: KeyID(pubOf(key)), TokenID: claims.TokenID, RequestID: tt.rid,
			Subject: tt.sub, Act: tt.act, IssuedAt: tokenNow.Unix(), ExpiresAt: tokenNow.Add(15 * time.Minute).Unix(),
		}, claims)
		raw, err := b64.DecodeString(claims.TokenID)
		require.NoError(t, err)
		require.Len(t, raw, 16, "128-bit random token ID")
	}

	a, b := issueAt(t, k, tokenNow, time.Hour), issueAt(t, k, tokenNow, time.Hour)
	require.NotEqual(t, a, b, "every token is distinct")
	ca, _ := k.verifyToken(a, tokenNow)
	cb, _ := k.verifyToken(b, tokenNow)
	require.NotEqual(t, ca.TokenID, cb.TokenID)
}

func TestTokenURLSafe(t *testing.T) {
	t.Parallel()
	k := testKeyring(t, testKey(3))
	for i := range 300 {
		tok, err := k.issue(fmt.Sprintf("req_%d", i), fmt.Sprintf("user-%d/+?=&ü", i), VerdictBoth, tokenNow, time.Duration(i)*time.Minute)
		require.NoError(t, err)
		require.False(t, strings.ContainsAny(tok, "+/="), tok)
		require.Equal(t, tok, url.QueryEscape(tok), "needs no escaping in a query string")
		require.Equal(t, tok, url.PathEscape(tok))
	}
}

func TestTokenErrorKeepsUnverifiedClaims(t *testing.T) {
	t.Parallel()
	k := testKeyring(t, testKey(1))
	forged := signClaims(t, testKey(2), func(c map[string]any) { c["sub"] = "mallory" })
	claims, err := k.verifyToken(forged, tokenNow)
	require.ErrorIs(t, err, ErrTokenSignature)
	require.Equal(t, "mallory", claims.Subject, "the claimed subject is kept for the audit trail")
}

func TestTokenKeyRotation(t *testing.T) {
	t.Parallel()
	keyA, keyB, keyC := testKey(1), testKey(2), testKey(3)
	old := testKeyring(t, keyA)
	rotated := testKeyring(t, keyB, pubOf(keyA))
	verifyOnly := testKeyring(t, nil, pubOf(keyA), pubOf(keyB))

	fromA := issueAt(t, old, tokenNow, time.Hour)
	fromB := issueAt(t, rotated, tokenNow, time.Hour)
	fromC := issueAt(t, testKeyring(t, keyC), tokenNow, time.Hour)

	for _, k := range []*keyring{rotated, verifyOnly} {
		c, err := k.verifyToken(fromA, tokenNow)
		require.NoError(t, err)
		require.Equal(t, KeyID(pubOf(keyA)), c.KeyID)
		c, err = k.verifyToken(fromB, tokenNow)
		require.NoError(t, err)
		require.Equal(t, KeyID(pubOf(keyB)), c.KeyID)
		_, err = k.verifyToken(fromC, tokenNow)
		require.ErrorIs(t, err, ErrTokenSignature)
	}
	_, err := old.verifyToken(fromB, tokenNow)
	require.ErrorIs(t, err, ErrTokenSignature, "the old gate does not know the new key")

	_, err = verifyOnly.issue("req_1", "bob", VerdictApprove, tokenNow, time.Hour)
	require.ErrorIs(t, err, ErrInvalidConfig)
}

func TestTokenKeyID(t *testing.T) {
	t.Parallel()
	pubA, pubB := pubOf(testKey(1)), pubOf(testKey(2))
	sum := sha256.Sum256(pubA)
	require.Equal(t, base64.RawURLEncoding.EncodeToString(sum[:8]), KeyID(pubA))
	require.Len(t, KeyID(pubA), 11)
	require.Equal(t, KeyID(pubA), KeyID(append(ed25519.PublicKey(nil), pubA...)), "stable")
	require.NotEqual(t, KeyID(pubA), KeyID(pubB))
	require.False(t, strings.ContainsAny(KeyID(pubA), "+/="))

	pub, priv, err := GenerateKeys()
	require.NoError(t, err)
	require.Equal(t, pub, pubOf(priv))
	require.Equal(t, KeyID(pub), testKeyring(t, priv).signerKID)
}

func TestTokenKeyringConfig(t *testing.T) {
	t.Parallel()
	key := testKey(1)
	for name, tt := range map[string]struct {
		signer ed25519.PrivateKey
		verify []ed25519.PublicKey
	}{
		"no keys":              {},
		"short signing key":    {signer: key[:32]},
		"short verify key":     {signer: key, verify: []ed25519.PublicKey{pubOf(key)[:31]}},
		"private as verify":    {verify: []ed25519.PublicKey{ed25519.PublicKey(key)}},
		"empty verify entries": {verify: []ed25519.PublicKey{nil}},
	} {
		_, err := newKeyring(tt.signer, tt.verify, 0)
		require.ErrorIs(t, err, ErrInvalidConfig, name)
	}
}

func TestTokenLeewayZero(t *testing.T) {
	t.Parallel()
	k, err := newKeyring(testKey(1), nil, 0)
	require.NoError(t, err)
	tok := issueAt(t, k, tokenNow, time.Minute)
	_, err = k.verifyToken(tok, tokenNow.Add(time.Minute))
	require.NoError(t, err)
	_, err = k.verifyToken(tok, tokenNow.Add(time.Minute+time.Second))
	require.ErrorIs(t, err, ErrTokenExpired)
	require.Contains(t, err.Error(), "expired 1s ago")
}

func TestTokenClaimsAllows(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		act, v Verdict
		want   bool
	}{
		{VerdictApprove, VerdictApprove, true},
		{VerdictApprove, VerdictDeny, false},
		{VerdictDeny, VerdictDeny, true},
		{VerdictDeny, VerdictApprove, false},
		{VerdictBoth, VerdictApprove, true},
		{VerdictBoth, VerdictDeny, true},
		{VerdictApprove, "", false},
	} {
		c := TokenClaims{Act: tt.act}
		require.Equal(t, tt.want, c.Allows(tt.v), "%s allows %s", tt.act, tt.v)
	}
}

func FuzzParseToken(f *testing.F) {
	key := testKey(1)
	k := testKeyring(f, key)
	valid := issueAt(f, k, tokenNow, time.Hour)
	for _, s := range []string{
		valid, "", ".", "..", "a.b", valid + ".", strings.Repeat("A", 3000),
		signClaims(f, key, func(c map[string]any) { c["v"] = 2 }),
		signClaims(f, testKey(2), nil),
		signRaw(key, []byte(`{"v":1,"kid":"x","tid":"t","rid":"r","sub":"s","act":"both","iat":9,"exp":8}`)),
		signRaw(key, []byte(`{"V":1,"KID":"x"}`)),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		var scratch [2 * maxTokenLen]byte
		claims, payload, sig, err := parseToken(tok, &scratch)
		if err != nil {
			require.ErrorIs(t, err, ErrTokenMalformed)
		} else {
			require.Len(t, sig, ed25519.SignatureSize)
			require.NotEmpty(t, payload)
			require.Equal(t, tokenVersion, claims.Version)
			require.LessOrEqual(t, claims.IssuedAt, claims.ExpiresAt)
		}
		_, err = k.verifyToken(tok, tokenNow)
		if err != nil && !errors.Is(err, ErrTokenMalformed) && !errors.Is(err, ErrTokenSignature) && !errors.Is(err, ErrTokenExpired) {
			t.Fatalf("verifyToken(%q) = %v, not a token sentinel", tok, err)
		}
	})
}

// BenchmarkVerifyToken is the whole check: decode, parse, look up the key,
// verify, check expiry. Compare it with BenchmarkVerifyTokenSignatureOnly,
// the signature check of the very same payload, to see the overhead.
func BenchmarkVerifyToken(b *testing.B) {
	k := testKeyring(b, testKey(1))
	tok := issueAt(b, k, tokenNow, time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.verifyToken(tok, tokenNow); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyTokenSignatureOnly is raw ed25519.Verify of the payload of
// BenchmarkVerifyToken's token. (BenchmarkEd25519Verify in bench_test.go
// measures a payload of the same size from the external test package.)
func BenchmarkVerifyTokenSignatureOnly(b *testing.B) {
	key := testKey(1)
	k := testKeyring(b, key)
	payload, sig := splitToken(b, issueAt(b, k, tokenNow, time.Hour))
	pub := pubOf(key)
	b.ReportAllocs()
	for b.Loop() {
		if !ed25519.Verify(pub, payload, sig) {
			b.Fatal("bad signature")
		}
	}
}

// TestTokenSubjectCanonical: a signed subject is read in canonical form, and
// one that is no identity at all is malformed.
func TestTokenSubjectCanonical(t *testing.T) {
	t.Parallel()
	key := testKey(1)
	k := testKeyring(t, key)
	c, err := k.verifyToken(signClaims(t, key, func(c map[string]any) { c["sub"] = "Bob" }), tokenNow)
	require.NoError(t, err)
	require.Equal(t, "bob", c.Subject)
	for _, sub := range []string{"bob ", "b\u200bob", strings.Repeat("b", MaxIDBytes+1)} {
		_, err := k.verifyToken(signClaims(t, key, func(c map[string]any) { c["sub"] = sub }), tokenNow)
		require.ErrorIs(t, err, ErrTokenMalformed, "%q", sub)
		require.ErrorIs(t, err, ErrInvalidIdentity, "%q", sub)
	}
}
