package iamemu

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/keyguard-dev/keyguard/shared/clock"
)

// TokenPath is the path of the token operation, relative to the IAM base URL.
const TokenPath = "/identity/token"

// Grant types the emulator accepts.
const (
	GrantAPIKey       = "urn:ibm:params:oauth:grant-type:apikey"
	GrantRefreshToken = "refresh_token"
	GrantCRToken      = "urn:ibm:params:oauth:grant-type:cr-token"
)

// DefaultTTL is the lifetime of an access token unless Options.TTL says otherwise (IAM's own).
const DefaultTTL = time.Hour

const maxFormBytes = 64 << 10

// Options configure an Emulator.
type Options struct {
	// APIKey is the one API key the apikey grant accepts. Empty accepts no API key.
	APIKey string
	// TTL is the access token lifetime; zero means DefaultTTL.
	TTL time.Duration
	// Clock stamps and judges tokens; nil means the wall clock.
	Clock clock.Clock
}

// Emulator is an IAM token endpoint. The zero value is not usable; call New or NewWithOptions.
type Emulator struct {
	apiKey string
	ttl    time.Duration
	clock  clock.Clock

	mu       sync.Mutex
	policies []Authorization
	seq      int
	secret   []byte
	profiles map[string]string // compute-resource token -> profile id or name
	fail     []int             // status codes for the next token requests
	requests int
	issued   int
}

// New returns an Emulator that accepts apiKey, with default options.
func New(apiKey string) *Emulator { return NewWithOptions(Options{APIKey: apiKey}) }

// NewWithOptions returns an Emulator configured by o.
func NewWithOptions(o Options) *Emulator {
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	return &Emulator{
		apiKey:   o.APIKey,
		ttl:      o.TTL,
		clock:    clock.Or(o.Clock),
		secret:   randomBytes(32),
		profiles: map[string]string{},
	}
}

// Handler returns the emulator as an http.Handler (it serves POST TokenPath and GET PoliciesPath).
func (e *Emulator) Handler() http.Handler { return e }

// TrustProfile makes the cr-token grant accept crToken together with profile as either
// profile_id or profile_name (what ContainerAuthenticator sends for a trusted profile).
func (e *Emulator) TrustProfile(crToken, profile string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.profiles[crToken] = profile
}

// FailNext makes the next n token requests answer status (e.g. 500, 429) whatever they carry.
func (e *Emulator) FailNext(n, status int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for range n {
		e.fail = append(e.fail, status)
	}
}

// RevokeAll invalidates every token issued so far (access and refresh) by changing the signing
// secret. Clients holding a cached token then get 401 from the services that check it.
func (e *Emulator) RevokeAll() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.secret = randomBytes(32)
}

// TokenRequests counts every request that reached the token operation, failed or not.
func (e *Emulator) TokenRequests() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.requests
}

// TokensIssued counts successful token responses.
func (e *Emulator) TokensIssued() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.issued
}

// Claims are what an access token says.
type Claims struct {
	Subject   string `json:"sub"`
	GrantType string `json:"grant_type"`
	Kind      string `json:"kind"` // access or refresh
	IssuedAt  int64  `json:"iat"`
	Expires   int64  `json:"exp"`
	ID        string `json:"jti"`
	Issuer    string `json:"iss"`
}

// Errors returned by Verify.
var (
	ErrNoToken      = errors.New("no bearer token")
	ErrBadToken     = errors.New("malformed or foreign token")
	ErrTokenExpired = errors.New("token expired")
)

// Valid reports whether authorization (an Authorization header value, "Bearer <token>") carries
// an unexpired access token this emulator issued.
func (e *Emulator) Valid(authorization string) bool {
	_, err := e.Verify(authorization)
	return err == nil
}

// Verify checks an Authorization header value and returns the access token's claims.
func (e *Emulator) Verify(authorization string) (Claims, error) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(authorization), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return Claims{}, ErrNoToken
	}
	c, err := e.parse(strings.TrimSpace(token))
	if err != nil {
		return Claims{}, err
	}
	if c.Kind != "access" {
		return Claims{}, fmt.Errorf("%w: not an access token", ErrBadToken)
	}
	return c, nil
}

func (e *Emulator) parse(token string) (Claims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return Claims{}, ErrBadToken
	}
	e.mu.Lock()
	secret := e.secret
	e.mu.Unlock()
	want := sign(secret, parts[0]+"."+parts[1])
	if subtle.ConstantTimeCompare([]byte(want), []byte(parts[2])) != 1 {
		return Claims{}, ErrBadToken
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return Claims{}, ErrBadToken
	}
	var c Claims
	if err := json.Unmarshal(raw, &c); err != nil {
		return Claims{}, ErrBadToken
	}
	if e.clock.Now().Unix() >= c.Expires {
		return Claims{}, ErrTokenExpired
	}
	return c, nil
}

// tokenResponse is IAM's success body.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	Expiration   int64  `json:"expiration"`
	Scope        string `json:"scope"`
}

// ServeHTTP answers POST TokenPath and GET PoliciesPath.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == PoliciesPath && r.Method == http.MethodGet {
		e.servePolicies(w, r)
		return
	}
	if r.URL.Path != TokenPath {
		iamError(w, http.StatusNotFound, "BXNIM0100E", "Not found: "+r.URL.Path)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		iamError(w, http.StatusMethodNotAllowed, "BXNIM0101E", "Method not allowed")
		return
	}
	e.mu.Lock()
	e.requests++
	var forced int
	if len(e.fail) > 0 {
		forced, e.fail = e.fail[0], e.fail[1:]
	}
	e.mu.Unlock()
	if forced != 0 {
		iamError(w, forced, "BXNIM0500E", "Injected failure")
		return
	}

	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		iamError(w, http.StatusBadRequest, "BXNIM0109E", "Content-Type must be application/x-www-form-urlencoded")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		iamError(w, http.StatusBadRequest, "BXNIM0109E", "Unreadable form body")
		return
	}
	grant := r.PostForm.Get("grant_type")
	var subject string
	switch grant {
	case GrantAPIKey:
		key := r.PostForm.Get("apikey")
		if key == "" {
			iamError(w, http.StatusBadRequest, "BXNIM0109E", "Property missing or empty. Property: apikey")
			return
		}
		if e.apiKey == "" || subtle.ConstantTimeCompare([]byte(key), []byte(e.apiKey)) != 1 {
			iamError(w, http.StatusBadRequest, "BXNIM0415E", "Provided API key could not be found.")
			return
		}
		subject = "iam-ServiceId-keyguard-emulator"
	case GrantRefreshToken:
		c, err := e.parse(r.PostForm.Get("refresh_token"))
		if err != nil || c.Kind != "refresh" {
			iamError(w, http.StatusBadRequest, "BXNIM0407E", "Provided refresh token is invalid or expired.")
			return
		}
		subject = c.Subject
	case GrantCRToken:
		cr := r.PostForm.Get("cr_token")
		e.mu.Lock()
		profile, ok := e.profiles[cr]
		e.mu.Unlock()
		id, name := r.PostForm.Get("profile_id"), r.PostForm.Get("profile_name")
		if cr == "" || !ok || (id != profile && name != profile) {
			iamError(w, http.StatusBadRequest, "BXNIM0538E", "Compute resource token or trusted profile not accepted.")
			return
		}
		subject = "iam-Profile-" + profile
	case "":
		iamError(w, http.StatusBadRequest, "BXNIM0109E", "Property missing or empty. Property: grant_type")
		return
	default:
		iamError(w, http.StatusBadRequest, "BXNIM0104E", "Unsupported grant type")
		return
	}

	resp := e.issue(subject, grant)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(resp)
}

// issue mints an access and a refresh token for subject.
func (e *Emulator) issue(subject, grant string) tokenResponse {
	now := e.clock.Now()
	exp := now.Add(e.ttl).Unix()
	e.mu.Lock()
	secret := e.secret
	e.issued++
	e.mu.Unlock()
	access := mint(secret, Claims{Subject: subject, GrantType: grant, Kind: "access", IssuedAt: now.Unix(),
		Expires: exp, ID: hex.EncodeToString(randomBytes(8)), Issuer: "iamemu"})
	refresh := mint(secret, Claims{Subject: subject, GrantType: grant, Kind: "refresh", IssuedAt: now.Unix(),
		Expires: now.Add(30 * 24 * time.Hour).Unix(), ID: hex.EncodeToString(randomBytes(8)), Issuer: "iamemu"})
	return tokenResponse{
		AccessToken:  access,
		RefreshToken: refresh,
		TokenType:    "Bearer",
		ExpiresIn:    int64(e.ttl / time.Second),
		Expiration:   exp,
		Scope:        "ibm openid",
	}
}

var jwtHeader = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT","kid":"iamemu"}`))

func mint(secret []byte, c Claims) string {
	body, _ := json.Marshal(c) // Claims always marshals
	signed := jwtHeader + "." + base64.RawURLEncoding.EncodeToString(body)
	return signed + "." + sign(secret, signed)
}

func sign(secret []byte, s string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(s))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return b
}

// iamError writes IAM's error body shape.
func iamError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"errorCode":    code,
		"errorMessage": msg,
		"context":      map[string]string{"requestType": "incoming.Identity_Token"},
	})
}
