package kpemu_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	kp "github.com/IBM/keyprotect-go-client"

	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/test/kpemu"
)

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func TestMain(m *testing.M) {
	// The SDK retries 429 and 5xx up to 4 times with waits up to 30 s; these tests look at
	// single answers.
	kp.RetryMax = 0
	m.Run()
}

func client(t *testing.T, e *kpemu.Emulator, apiKey string) *kp.Client {
	t.Helper()
	c, err := kp.New(kp.ClientConfig{BaseURL: e.URL(), TokenURL: e.TokenURL(), APIKey: apiKey, InstanceID: e.InstanceID()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// rawGet calls the API with a fresh token and the instance header (unless instance is "-").
func rawGet(t *testing.T, e *kpemu.Emulator, path, instance string) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"urn:ibm:params:oauth:grant-type:apikey"}, "apikey": {e.APIKey()}}
	resp, err := http.PostForm(e.TokenURL(), form)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	req, _ := http.NewRequest(http.MethodGet, e.URL()+path, nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	if instance != "-" {
		req.Header.Set("bluemix-instance", instance)
	}
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("GET %s: body is not JSON: %v", path, err)
	}
	return resp.StatusCode, body
}

func reasonOf(body map[string]any) string {
	res, _ := body["resources"].([]any)
	if len(res) == 0 {
		return ""
	}
	reasons, _ := res[0].(map[string]any)["reasons"].([]any)
	if len(reasons) == 0 {
		return ""
	}
	code, _ := reasons[0].(map[string]any)["code"].(string)
	return code
}

func TestKeyThroughRealClient(t *testing.T) {
	clk := clock.NewFake(t0)
	e := kpemu.Start(t, kpemu.Options{Clock: clk})
	id, crn := e.AddKey("db2-root")
	c := client(t, e, e.APIKey())
	ctx := context.Background()

	k, err := c.GetKeyMetadata(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	v1, _ := e.CurrentVersion(id)
	if k.ID != id || k.CRN != crn || k.Name != "db2-root" || k.State != 1 || k.LastRotateDate != nil ||
		k.KeyVersion == nil || k.KeyVersion.ID != v1 || !k.CreationDate.Equal(t0) {
		t.Fatalf("metadata %+v", k)
	}
	if !strings.HasPrefix(crn, "crn:v1:bluemix:public:kms:us-south:a/") || !strings.HasSuffix(crn, ":"+e.InstanceID()+":key:"+id) {
		t.Fatalf("crn %s", crn)
	}
	if _, err := c.GetKey(ctx, id); err != nil {
		t.Fatalf("GetKey: %v", err)
	}

	clk.Advance(2 * time.Hour)
	if err := c.Rotate(ctx, id, ""); err != nil {
		t.Fatalf("rotate: %v", err)
	}
	k, _ = c.GetKeyMetadata(ctx, id)
	v2, _ := e.CurrentVersion(id)
	if v2 == v1 || k.KeyVersion.ID != v2 || k.LastRotateDate == nil || !k.LastRotateDate.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("after rotate: %+v (v1 %s v2 %s)", k, v1, v2)
	}
	vs, err := c.ListKeyVersions(ctx, id, nil)
	if err != nil || len(vs.KeyVersion) != 2 || vs.KeyVersion[0].ID != v2 || vs.KeyVersion[1].ID != v1 {
		t.Fatalf("versions %+v, %v", vs, err)
	}

	clk.Advance(59 * time.Minute)
	err = c.Rotate(ctx, id, "")
	var kpErr *kp.Error
	if !errors.As(err, &kpErr) || kpErr.StatusCode != http.StatusConflict || len(kpErr.Reasons) != 1 ||
		kpErr.Reasons[0].Code != kpemu.ReasonRotationNotAllowed {
		t.Fatalf("second rotation within the hour: %v", err)
	}
	clk.Advance(time.Minute)
	if err := c.Rotate(ctx, id, ""); err != nil {
		t.Fatalf("rotation an hour later: %v", err)
	}
	if n := e.Calls(kpemu.RouteRotate); n != 3 {
		t.Fatalf("rotate calls %d, want 3", n)
	}
}

func TestServerSideRotationCountsForTheLimit(t *testing.T) {
	clk := clock.NewFake(t0)
	e := kpemu.Start(t, kpemu.Options{Clock: clk})
	id, _ := e.AddKey("k")
	if _, err := e.Rotate(id); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Rotate(id); err != nil {
		t.Fatal("server-side rotation must not be rate limited:", err)
	}
	var kpErr *kp.Error
	if err := client(t, e, e.APIKey()).Rotate(context.Background(), id, ""); !errors.As(err, &kpErr) || kpErr.StatusCode != 409 {
		t.Fatalf("API rotation right after a policy rotation: %v", err)
	}
}

func TestRegistrationsAndPolicy(t *testing.T) {
	clk := clock.NewFake(t0)
	e := kpemu.Start(t, kpemu.Options{Clock: clk})
	id, _ := e.AddKey("k")
	other, _ := e.AddKey("other")
	db1, db2 := "crn:v1:bluemix:public:dashdb-for-transactions:us-south:a/acc:db1::", "crn:v1:bluemix:public:dashdb-for-transactions:us-south:a/acc:db2::"
	for _, r := range []string{db1, db2} {
		if err := e.AddRegistration(id, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.AddRegistration(other, "crn:v1:bluemix:public:cloud-object-storage:global:a/acc:cos::"); err != nil {
		t.Fatal(err)
	}
	v1, _ := e.CurrentVersion(id)
	clk.Advance(time.Hour)
	v2, _ := e.Rotate(id)
	if err := e.SetRegistrationVersion(id, db1, v2); err != nil {
		t.Fatal(err)
	}
	c := client(t, e, e.APIKey())
	regs, err := c.ListRegistrations(context.Background(), id, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(regs.Registrations) != 2 || regs.Registrations[0].ResourceCrn != db1 || regs.Registrations[0].KeyVersion.ID != v2 ||
		regs.Registrations[1].ResourceCrn != db2 || regs.Registrations[1].KeyVersion.ID != v1 || regs.Registrations[0].KeyID != id {
		t.Fatalf("registrations %+v", regs.Registrations)
	}
	all, err := c.ListRegistrations(context.Background(), "", "")
	if err != nil || len(all.Registrations) != 3 {
		t.Fatalf("all registrations %+v, %v", all, err)
	}
	filtered, err := c.ListRegistrations(context.Background(), "", "crn:v1:bluemix:public:dashdb-for-transactions:*")
	if err != nil || len(filtered.Registrations) != 2 {
		t.Fatalf("filtered registrations %+v, %v", filtered, err)
	}

	for name, tc := range map[string]struct {
		err  error
		want error
	}{
		"unknown key":     {e.SetRegistrationVersion("nope", db1, v2), kpemu.ErrNoKey},
		"unknown version": {e.SetRegistrationVersion(id, db1, "nope"), kpemu.ErrNoVersion},
		"unknown crn":     {e.SetRegistrationVersion(id, "crn:x", v2), kpemu.ErrNoRegistration},
		"bad state":       {e.SetState(id, 4), kpemu.ErrBadState},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", name, tc.err, tc.want)
		}
	}

	p, err := c.GetRotationPolicy(context.Background(), id)
	if err != nil || p != nil {
		t.Fatalf("no policy: %+v, %v", p, err)
	}
	if err := e.SetRotationPolicy(id, true, 3); err != nil {
		t.Fatal(err)
	}
	p, err = c.GetRotationPolicy(context.Background(), id)
	if err != nil || p == nil || p.Rotation == nil || p.Rotation.Enabled == nil || !*p.Rotation.Enabled || p.Rotation.Interval != 3 {
		t.Fatalf("policy %+v, %v", p, err)
	}
}

func TestPaging(t *testing.T) {
	e := kpemu.Start(t, kpemu.Options{})
	id, _ := e.AddKey("k")
	for i := range 4 {
		if err := e.AddRegistration(id, fmt.Sprintf("crn:v1:bluemix:public:db:us-south:a/acc:db%d::", i)); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Rotate(id); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		path      string
		wantN     int
		wantTotal float64
	}{
		{"/api/v2/keys/" + id + "/versions?limit=2&offset=1&totalCount=true", 2, 5},
		{"/api/v2/keys/" + id + "/versions?limit=2&offset=4", 1, -1},
		{"/api/v2/keys/" + id + "/versions?offset=9", 0, -1},
		{"/api/v2/keys/" + id + "/registrations?limit=3&totalCount=true", 3, 4},
		{"/api/v2/keys/" + id + "/registrations?limit=3&offset=3", 1, -1},
	} {
		code, body := rawGet(t, e, tc.path, e.InstanceID())
		md, _ := body["metadata"].(map[string]any)
		res, _ := body["resources"].([]any)
		if code != 200 || len(res) != tc.wantN || md["collectionTotal"] != float64(tc.wantN) {
			t.Errorf("%s: %d %v", tc.path, code, body)
		}
		if total, ok := md["totalCount"]; (tc.wantTotal >= 0) != ok || (ok && total != tc.wantTotal) {
			t.Errorf("%s: totalCount %v, want %v", tc.path, total, tc.wantTotal)
		}
	}
	for _, q := range []string{"limit=0", "limit=5001", "offset=-1", "limit=x"} {
		if code, body := rawGet(t, e, "/api/v2/keys/"+id+"/versions?"+q, e.InstanceID()); code != 400 || reasonOf(body) != kpemu.ReasonBadRequest {
			t.Errorf("%s: %d %v", q, code, body)
		}
	}
}

func TestRequestChecks(t *testing.T) {
	e := kpemu.Start(t, kpemu.Options{})
	id, _ := e.AddKey("k")
	for _, tc := range []struct {
		name, path, instance string
		want                 int
		reason               string
	}{
		{"ok", "/api/v2/keys/" + id + "/metadata", e.InstanceID(), 200, ""},
		{"missing instance", "/api/v2/keys/" + id + "/metadata", "-", 400, kpemu.ReasonMissingInstance},
		{"other instance", "/api/v2/keys/" + id + "/metadata", "11111111-2222-3333-4444-555555555555", 401, kpemu.ReasonUnauthorized},
		{"unknown key", "/api/v2/keys/nope/metadata", e.InstanceID(), 404, kpemu.ReasonNotFound},
		{"unknown key versions", "/api/v2/keys/nope/versions", e.InstanceID(), 404, kpemu.ReasonNotFound},
		{"bad policy type", "/api/v2/keys/" + id + "/policies?policy=nope", e.InstanceID(), 400, kpemu.ReasonBadRequest},
	} {
		code, body := rawGet(t, e, tc.path, tc.instance)
		if code != tc.want || reasonOf(body) != tc.reason {
			t.Errorf("%s: %d %v, want %d %s", tc.name, code, body, tc.want, tc.reason)
		}
	}

	// No or a foreign token: 401 in Key Protect's error shape, through the real client too.
	req, _ := http.NewRequest(http.MethodGet, e.URL()+"/api/v2/keys/"+id+"/metadata", nil)
	req.Header.Set("bluemix-instance", e.InstanceID())
	req.Header.Set("Authorization", "Bearer forged.token.here")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("forged token: %d", resp.StatusCode)
	}
	if _, err := client(t, e, "wrong-key").GetKeyMetadata(context.Background(), id); err == nil {
		t.Fatal("wrong API key accepted")
	}
	if n := e.Calls(kpemu.RouteMetadata); n != 5 {
		t.Fatalf("metadata calls %d, want 5 (the wrong API key never reaches the API)", n)
	}
}

func TestStatesAndActions(t *testing.T) {
	e := kpemu.Start(t, kpemu.Options{})
	id, _ := e.AddKey("k")
	c := client(t, e, e.APIKey())
	ctx := context.Background()
	status := func(err error) (int, string) {
		var kpErr *kp.Error
		if !errors.As(err, &kpErr) {
			return 0, ""
		}
		if len(kpErr.Reasons) == 0 {
			return kpErr.StatusCode, ""
		}
		return kpErr.StatusCode, kpErr.Reasons[0].Code
	}
	steps := []struct {
		name       string
		do         func() error
		wantStatus int
		wantReason string
		wantState  int
	}{
		{"enable active", func() error { return c.EnableKey(ctx, id) }, 409, kpemu.ReasonInvalidState, 1},
		{"disable", func() error { return c.DisableKey(ctx, id) }, 0, "", 2},
		{"disable again", func() error { return c.DisableKey(ctx, id) }, 409, kpemu.ReasonInvalidState, 2},
		{"rotate suspended", func() error { return c.Rotate(ctx, id, "") }, 409, kpemu.ReasonInvalidState, 2},
		{"enable", func() error { return c.EnableKey(ctx, id) }, 0, "", 1},
		{"destroy", func() error { return e.SetState(id, kpemu.StateDestroyed) }, 0, "", 5},
		{"rotate destroyed", func() error { return c.Rotate(ctx, id, "") }, 410, kpemu.ReasonDeleted, 5},
		{"get destroyed", func() error { _, err := c.GetKey(ctx, id); return err }, 410, kpemu.ReasonDeleted, 5},
		{"unknown action", func() error { return c.InitiateDualAuthDelete(ctx, id) }, 400, kpemu.ReasonBadRequest, 5},
	}
	for _, s := range steps {
		gotStatus, gotReason := status(s.do())
		if gotStatus != s.wantStatus || gotReason != s.wantReason {
			t.Fatalf("%s: status %d %s, want %d %s", s.name, gotStatus, gotReason, s.wantStatus, s.wantReason)
		}
		k, err := c.GetKeyMetadata(ctx, id)
		if err != nil || k.State != s.wantState {
			t.Fatalf("%s: state %+v %v, want %d", s.name, k, err, s.wantState)
		}
	}
	k, _ := c.GetKeyMetadata(ctx, id)
	if k.Deleted == nil || !*k.Deleted || k.DeletionDate == nil {
		t.Fatalf("destroyed key metadata %+v", k)
	}
}

func TestFailuresAndLatency(t *testing.T) {
	e := kpemu.Start(t, kpemu.Options{})
	id, _ := e.AddKey("k")
	c := client(t, e, e.APIKey())
	ctx := context.Background()

	e.FailNext(2, http.StatusServiceUnavailable)
	for range 2 {
		var kpErr *kp.Error
		if _, err := c.GetKeyMetadata(ctx, id); !errors.As(err, &kpErr) || kpErr.StatusCode != 503 {
			t.Fatalf("injected 503: %v", err)
		}
	}
	if _, err := c.GetKeyMetadata(ctx, id); err != nil {
		t.Fatalf("after the injected failures: %v", err)
	}
	if n, total := e.Calls(kpemu.RouteMetadata), e.Requests(); n != 3 || total != 3 {
		t.Fatalf("calls %d requests %d, want 3 and 3", n, total)
	}
	e.ResetCalls()
	if e.Calls(kpemu.RouteMetadata) != 0 {
		t.Fatal("ResetCalls kept counts")
	}

	e.SetLatency(300 * time.Millisecond)
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := c.GetKeyMetadata(short, id); err == nil {
		t.Fatal("a call slower than its context succeeded")
	}
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Fatalf("gave up after %v", d)
	}
	start = time.Now()
	if _, err := c.GetKeyMetadata(ctx, id); err != nil || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("latency not applied: %v after %v", err, time.Since(start))
	}
	if n := e.IAM().TokenRequests(); n != 1 {
		t.Fatalf("token requests %d, want 1 (the client caches its token)", n)
	}
}

func TestNewDefaults(t *testing.T) {
	e := kpemu.New(kpemu.Options{BaseURL: "http://127.0.0.1:1"})
	if e.APIKey() != kpemu.DefaultAPIKey || len(e.InstanceID()) != 36 || e.URL() != "http://127.0.0.1:1" ||
		e.TokenURL() != "http://127.0.0.1:1/identity/token" {
		t.Fatalf("defaults: %s %s %s", e.APIKey(), e.InstanceID(), e.URL())
	}
	if _, err := e.Rotate("nope"); !errors.Is(err, kpemu.ErrNoKey) {
		t.Fatalf("rotate unknown: %v", err)
	}
}
