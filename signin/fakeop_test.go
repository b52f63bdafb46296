package signin_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"
)

// fakeOP is an OpenID provider whose ID tokens the test shapes: it serves
// discovery, its keys, the token endpoint (checking the PKCE verifier
// against the challenge of the code's authorization) and user info, over
// TLS. Tokens are ES256, signed with key (or, to test a bad signature,
// with another key the JWKS does not hold).
type fakeOP struct {
	t   *testing.T
	srv *httptest.Server
	key *ecdsa.PrivateKey
	now func() time.Time

	mu        sync.Mutex
	codes     map[string]authz          // code -> the authorization it answers
	tokens    map[string]map[string]any // access token -> user info claims
	exchanges int                       // calls to the token endpoint
}

// authz is one authorization: what /authorize would have recorded, and how
// the test wants the tokens shaped.
type authz struct {
	nonce, challenge string
	idClaims         map[string]any // the ID token's claims
	userInfo         map[string]any // user info's claims
	signWith         *ecdsa.PrivateKey
}

func newFakeOP(t *testing.T, now func() time.Time) *fakeOP {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	op := &fakeOP{t: t, key: key, now: now, codes: map[string]authz{}, tokens: map[string]map[string]any{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{
			"issuer":                                op.srv.URL,
			"authorization_endpoint":                op.srv.URL + "/authorize",
			"token_endpoint":                        op.srv.URL + "/token",
			"jwks_uri":                              op.srv.URL + "/keys",
			"userinfo_endpoint":                     op.srv.URL + "/userinfo",
			"end_session_endpoint":                  op.srv.URL + "/end_session",
			"id_token_signing_alg_values_supported": []string{"ES256"},
			"code_challenge_methods_supported":      []string{"S256"},
			"response_types_supported":              []string{"code"},
			"subject_types_supported":               []string{"public"},
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &op.key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	})
	mux.HandleFunc("POST /token", op.token)
	mux.HandleFunc("GET /userinfo", func(w http.ResponseWriter, r *http.Request) {
		op.mu.Lock()
		claims, ok := op.tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
		op.mu.Unlock()
		if !ok {
			http.Error(w, "unknown token", http.StatusUnauthorized)
			return
		}
		writeJSON(w, claims)
	})
	op.srv = httptest.NewTLSServer(mux)
	t.Cleanup(op.srv.Close)
	return op
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// authorize records an authorization for the nonce and PKCE challenge of
// a sign-in and returns its code. The ID token's claims are the usual
// ones for alice, changed by shape.
func (op *fakeOP) authorize(clientID, nonce, challenge string, shape func(id, userInfo map[string]any)) string {
	now := op.now()
	a := authz{
		nonce: nonce, challenge: challenge, signWith: op.key,
		idClaims: map[string]any{
			"iss": op.srv.URL, "aud": clientID, "sub": "u-alice",
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "nonce": nonce,
			"email": "alice@example.com", "email_verified": true,
			"groups": []string{"finance", "ops"},
		},
		userInfo: map[string]any{"sub": "u-alice", "name": "Alice Example"},
	}
	if shape != nil {
		shape(a.idClaims, a.userInfo)
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	code := base64.RawURLEncoding.EncodeToString(b)
	op.mu.Lock()
	op.codes[code] = a
	op.mu.Unlock()
	return code
}

func (op *fakeOP) token(w http.ResponseWriter, r *http.Request) {
	require.NoError(op.t, r.ParseForm())
	op.mu.Lock()
	op.exchanges++
	a, ok := op.codes[r.PostForm.Get("code")]
	delete(op.codes, r.PostForm.Get("code"))
	op.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if !ok || base64.RawURLEncoding.EncodeToString(sum[:]) != a.challenge {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
		return
	}
	payload, err := json.Marshal(a.idClaims)
	require.NoError(op.t, err)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: a.signWith},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	require.NoError(op.t, err)
	jws, err := signer.Sign(payload)
	require.NoError(op.t, err)
	idToken, err := jws.CompactSerialize()
	require.NoError(op.t, err)
	access := "at-" + r.PostForm.Get("code")
	op.mu.Lock()
	op.tokens[access] = a.userInfo
	op.mu.Unlock()
	writeJSON(w, map[string]any{"access_token": access, "token_type": "Bearer", "expires_in": 3600, "id_token": idToken})
}

func (op *fakeOP) exchangeCount() int {
	op.mu.Lock()
	defer op.mu.Unlock()
	return op.exchanges
}
