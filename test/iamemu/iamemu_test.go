package iamemu_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/go-sdk-core/v5/core"

	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/test/iamemu"
)

const apiKey = "test-api-key"

type tokenBody struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	Expiration   int64  `json:"expiration"`
	ErrorCode    string `json:"errorCode"`
	ErrorMessage string `json:"errorMessage"`
}

func post(t *testing.T, h http.Handler, contentType string, form url.Values) (int, tokenBody) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, iamemu.TokenPath, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", contentType)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var b tokenBody
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
		t.Fatalf("response is not JSON: %v: %q", err, rec.Body.String())
	}
	return rec.Code, b
}

func TestTokenCarriesExpirationAndExpires(t *testing.T) {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clk := clock.NewFake(start)
	e := iamemu.NewWithOptions(iamemu.Options{APIKey: apiKey, Clock: clk})

	code, b := post(t, e, "application/x-www-form-urlencoded",
		url.Values{"grant_type": {iamemu.GrantAPIKey}, "apikey": {apiKey}})
	if code != http.StatusOK {
		t.Fatalf("status %d, want 200 (%s)", code, b.ErrorMessage)
	}
	if b.TokenType != "Bearer" || b.ExpiresIn != 3600 || b.Expiration != start.Add(time.Hour).Unix() ||
		b.AccessToken == "" || b.RefreshToken == "" {
		t.Fatalf("token response %+v", b)
	}
	if !e.Valid("Bearer " + b.AccessToken) {
		t.Fatal("fresh token not valid")
	}
	if !e.Valid("bearer " + b.AccessToken) {
		t.Fatal("scheme must be case-insensitive")
	}
	if e.Valid("Bearer " + b.RefreshToken) {
		t.Fatal("a refresh token must not pass as an access token")
	}
	clk.Advance(time.Hour)
	if e.Valid("Bearer " + b.AccessToken) {
		t.Fatal("token still valid at its expiration")
	}
	if e.TokenRequests() != 1 || e.TokensIssued() != 1 {
		t.Fatalf("requests %d issued %d, want 1 and 1", e.TokenRequests(), e.TokensIssued())
	}
}

func TestTokenRequestErrors(t *testing.T) {
	e := iamemu.New(apiKey)
	form := "application/x-www-form-urlencoded"
	tests := []struct {
		name        string
		contentType string
		form        url.Values
		wantCode    int
		wantError   string
	}{
		{"wrong api key", form, url.Values{"grant_type": {iamemu.GrantAPIKey}, "apikey": {"nope"}}, 400, "BXNIM0415E"},
		{"missing api key", form, url.Values{"grant_type": {iamemu.GrantAPIKey}}, 400, "BXNIM0109E"},
		{"missing grant", form, url.Values{"apikey": {apiKey}}, 400, "BXNIM0109E"},
		{"unknown grant", form, url.Values{"grant_type": {"password"}, "apikey": {apiKey}}, 400, "BXNIM0104E"},
		{"json body", "application/json", url.Values{"grant_type": {iamemu.GrantAPIKey}, "apikey": {apiKey}}, 400, "BXNIM0109E"},
		{"bad refresh token", form, url.Values{"grant_type": {iamemu.GrantRefreshToken}, "refresh_token": {"x.y.z"}}, 400, "BXNIM0407E"},
		{"unknown cr token", form, url.Values{"grant_type": {iamemu.GrantCRToken}, "cr_token": {"cr"}, "profile_id": {"p"}}, 400, "BXNIM0538E"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, b := post(t, e, tt.contentType, tt.form)
			if code != tt.wantCode || b.ErrorCode != tt.wantError || b.AccessToken != "" {
				t.Fatalf("got %d %q (%s), want %d %q", code, b.ErrorCode, b.ErrorMessage, tt.wantCode, tt.wantError)
			}
		})
	}
	if e.TokensIssued() != 0 || e.TokenRequests() != len(tests) {
		t.Fatalf("issued %d requests %d", e.TokensIssued(), e.TokenRequests())
	}
}

func TestRouting(t *testing.T) {
	e := iamemu.New(apiKey)
	for _, tt := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, iamemu.TokenPath, http.StatusMethodNotAllowed},
		{http.MethodPost, "/identity/other", http.StatusNotFound},
	} {
		rec := httptest.NewRecorder()
		e.Handler().ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
		if rec.Code != tt.want {
			t.Errorf("%s %s: %d, want %d", tt.method, tt.path, rec.Code, tt.want)
		}
	}
}

func TestValidRejects(t *testing.T) {
	e := iamemu.New(apiKey)
	other := iamemu.New(apiKey)
	_, b := post(t, other, "application/x-www-form-urlencoded",
		url.Values{"grant_type": {iamemu.GrantAPIKey}, "apikey": {apiKey}})
	_, mine := post(t, e, "application/x-www-form-urlencoded",
		url.Values{"grant_type": {iamemu.GrantAPIKey}, "apikey": {apiKey}})
	for name, h := range map[string]string{
		"empty":          "",
		"no scheme":      mine.AccessToken,
		"basic":          "Basic " + mine.AccessToken,
		"bearer only":    "Bearer ",
		"garbage":        "Bearer abc",
		"tampered":       "Bearer " + mine.AccessToken[:len(mine.AccessToken)-2] + "xx",
		"other emulator": "Bearer " + b.AccessToken,
	} {
		if e.Valid(h) {
			t.Errorf("%s: accepted", name)
		}
	}
	if !e.Valid("Bearer " + mine.AccessToken) {
		t.Fatal("own token rejected")
	}
	e.RevokeAll()
	if e.Valid("Bearer " + mine.AccessToken) {
		t.Fatal("revoked token accepted")
	}
}

func TestIamAuthenticatorFetchesOneToken(t *testing.T) {
	e := iamemu.New(apiKey)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)

	auth, err := core.NewIamAuthenticatorBuilder().SetApiKey(apiKey).SetURL(srv.URL).Build()
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
			if err := auth.Authenticate(req); err != nil {
				errs <- err
				return
			}
			if !e.Valid(req.Header.Get("Authorization")) {
				errs <- fmt.Errorf("token %q not valid", req.Header.Get("Authorization"))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("authenticate: %v", err)
	}
	if n := e.TokenRequests(); n != 1 {
		t.Fatalf("token requests = %d, want 1 for 50 calls", n)
	}
}

func TestIamAuthenticatorErrors(t *testing.T) {
	e := iamemu.New(apiKey)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)

	bad, _ := core.NewIamAuthenticatorBuilder().SetApiKey("wrong").SetURL(srv.URL).Build()
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
	err := bad.Authenticate(req)
	var authErr *core.AuthenticationError
	if err == nil || !errors.As(err, &authErr) || authErr.Response.StatusCode != http.StatusBadRequest {
		t.Fatalf("wrong key: err %v, want an AuthenticationError with 400", err)
	}

	good, _ := core.NewIamAuthenticatorBuilder().SetApiKey(apiKey).SetURL(srv.URL).Build()
	e.FailNext(1, http.StatusServiceUnavailable)
	if err := good.Authenticate(req); err == nil || !errors.As(err, &authErr) || authErr.Response.StatusCode != 503 {
		t.Fatalf("injected 503: err %v", err)
	}
	if err := good.Authenticate(req); err != nil {
		t.Fatalf("after the injected failure: %v", err)
	}
}

func TestRefreshAndTrustedProfile(t *testing.T) {
	e := iamemu.New(apiKey)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)

	_, first := post(t, e, "application/x-www-form-urlencoded",
		url.Values{"grant_type": {iamemu.GrantAPIKey}, "apikey": {apiKey}})
	code, refreshed := post(t, e, "application/x-www-form-urlencoded",
		url.Values{"grant_type": {iamemu.GrantRefreshToken}, "refresh_token": {first.RefreshToken}})
	if code != 200 || !e.Valid("Bearer "+refreshed.AccessToken) {
		t.Fatalf("refresh grant: %d %+v", code, refreshed)
	}

	// ContainerAuthenticator (Code Engine trusted profile) reads the compute-resource token from
	// a file and uses the cr-token grant.
	crFile := filepath.Join(t.TempDir(), "cr-token")
	if err := os.WriteFile(crFile, []byte("compute-resource-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.TrustProfile("compute-resource-token", "Profile-keyguard")
	ca, err := core.NewContainerAuthenticatorBuilder().SetCRTokenFilename(crFile).
		SetIAMProfileID("Profile-keyguard").SetURL(srv.URL).Build()
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
	if err := ca.Authenticate(req); err != nil {
		t.Fatalf("container authenticator: %v", err)
	}
	c, err := e.Verify(req.Header.Get("Authorization"))
	if err != nil || c.Subject != "iam-Profile-Profile-keyguard" || c.GrantType != iamemu.GrantCRToken {
		t.Fatalf("claims %+v, err %v", c, err)
	}

	wrong, _ := core.NewContainerAuthenticatorBuilder().SetCRTokenFilename(crFile).
		SetIAMProfileID("Profile-other").SetURL(srv.URL).Build()
	if err := wrong.Authenticate(req); err == nil {
		t.Fatal("untrusted profile accepted")
	}
}
