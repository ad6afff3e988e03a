package db2saasemu_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/test/db2saasemu"
	"github.com/keyguard-dev/keyguard/test/iamemu"
)

const (
	apiKey = "emu-test-key"
	crn    = "crn:v1:bluemix:public:dashdb-for-transactions:us-south:a/0123456789abcdef0123456789abcdef:11111111-2222-4333-8444-555555555555::"
)

var t0 = time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)

// token gets an access token from the mounted IAM emulator.
func token(t *testing.T, e *db2saasemu.Emulator) string {
	t.Helper()
	resp, err := http.PostForm(e.URL()+iamemu.TokenPath, url.Values{"grant_type": {iamemu.GrantAPIKey}, "apikey": {apiKey}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.AccessToken == "" {
		t.Fatalf("token: status %d, err %v", resp.StatusCode, err)
	}
	return body.AccessToken
}

type answer struct {
	status int
	body   map[string]any
	header http.Header
}

func call(t *testing.T, e *db2saasemu.Emulator, method, route, bearer, profile string) answer {
	t.Helper()
	req, err := http.NewRequest(method, e.URL()+route, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if profile != "" {
		req.Header.Set("x-db-profile", profile)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("%s %s: body is not JSON: %v", method, route, err)
	}
	return answer{resp.StatusCode, body, resp.Header}
}

func backupsOf(t *testing.T, a answer) []map[string]any {
	t.Helper()
	raw, ok := a.body["backups"].([]any)
	if !ok {
		t.Fatalf("no backups array in %v", a.body)
	}
	out := make([]map[string]any, len(raw))
	for i, x := range raw {
		out[i] = x.(map[string]any)
	}
	return out
}

func TestRequestsAreChecked(t *testing.T) {
	e := db2saasemu.Start(t, db2saasemu.Options{APIKey: apiKey, Instances: []string{crn}})
	tok := token(t, e)
	good := url.QueryEscape(crn)
	other := url.QueryEscape(strings.Replace(crn, "11111111", "99999999", 1))
	for _, tc := range []struct {
		name, method, route, bearer, profile string
		want                                 int
	}{
		{"no token", "GET", db2saasemu.RouteBackups, "", good, http.StatusUnauthorized},
		{"foreign token", "GET", db2saasemu.RouteBackups, "a.b.c", good, http.StatusUnauthorized},
		{"no profile", "GET", db2saasemu.RouteBackups, tok, "", http.StatusBadRequest},
		{"raw CRN", "GET", db2saasemu.RouteBackups, tok, crn, http.StatusBadRequest},
		{"not a CRN", "GET", db2saasemu.RouteBackups, tok, "instance-1", http.StatusBadRequest},
		{"unknown instance", "GET", db2saasemu.RouteBackups, tok, other, http.StatusNotFound},
		{"wrong method", "DELETE", db2saasemu.RouteBackups, tok, good, http.StatusMethodNotAllowed},
		{"unknown route", "GET", db2saasemu.ContextRoot + "/manage/restore", tok, good, http.StatusNotFound},
		{"good", "GET", db2saasemu.RouteBackups, tok, good, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := call(t, e, tc.method, tc.route, tc.bearer, tc.profile)
			if a.status != tc.want {
				t.Fatalf("status %d, want %d (%v)", a.status, tc.want, a.body)
			}
			if tc.want != http.StatusOK {
				errs, _ := a.body["errors"].([]any)
				if len(errs) != 1 || a.body["status_code"] != float64(tc.want) {
					t.Fatalf("error body %v is not the API handbook shape", a.body)
				}
			}
		})
	}
	if got := e.Requests(); len(got) != 9 || got[8].Profile != good || got[8].Status != http.StatusOK {
		t.Fatalf("requests recorded: %+v", got)
	}
}

func TestBackupLifecycle(t *testing.T) {
	clk := clock.NewFake(t0)
	e := db2saasemu.Start(t, db2saasemu.Options{APIKey: apiKey, Clock: clk, Duration: 20 * time.Minute, Size: 123})
	tok, p := token(t, e), url.QueryEscape(crn)

	a := call(t, e, "POST", db2saasemu.RouteCreate, tok, p)
	task, _ := a.body["task"].(map[string]any)
	if a.status != http.StatusOK || !strings.HasPrefix(task["id"].(string), strings.TrimRight(crn, ":")+":task:") {
		t.Fatalf("create: %d %v", a.status, a.body)
	}
	if a := call(t, e, "POST", db2saasemu.RouteCreate, tok, p); a.status != http.StatusConflict {
		t.Fatalf("second create while running: %d, want 409", a.status)
	}
	clk.Advance(5 * time.Minute)
	l := backupsOf(t, call(t, e, "GET", db2saasemu.RouteBackups, tok, p))
	want := map[string]any{"type": "on_demand", "status": "running", "created_at": "2026-03-01T02:00:00.000Z",
		"size": float64(0), "duration": float64(300)}
	if len(l) != 1 {
		t.Fatalf("list: %v", l)
	}
	for k, v := range want {
		if l[0][k] != v {
			t.Errorf("running backup %s = %v, want %v", k, l[0][k], v)
		}
	}
	clk.Advance(15 * time.Minute)
	l = backupsOf(t, call(t, e, "GET", db2saasemu.RouteBackups, tok, p))
	if l[0]["status"] != "completed" || l[0]["size"] != float64(123) || l[0]["duration"] != float64(1200) {
		t.Fatalf("completed backup: %v", l[0])
	}

	e.FailNextBackup()
	clk.Advance(time.Minute)
	if a := call(t, e, "POST", db2saasemu.RouteCreate, tok, p); a.status != http.StatusOK {
		t.Fatalf("create after completion: %d", a.status)
	}
	clk.Advance(20 * time.Minute)
	l = backupsOf(t, call(t, e, "GET", db2saasemu.RouteBackups, tok, p))
	if len(l) != 2 || l[0]["status"] != "failed" || l[1]["status"] != "completed" {
		t.Fatalf("list newest first with the injected failure: %v", l)
	}
}

func TestInjectedFailures(t *testing.T) {
	e := db2saasemu.Start(t, db2saasemu.Options{APIKey: apiKey})
	tok, p := token(t, e), url.QueryEscape(crn)
	e.FailNext(1, http.StatusTooManyRequests)
	e.FailNext(1, http.StatusServiceUnavailable)
	a := call(t, e, "GET", db2saasemu.RouteBackups, tok, p)
	if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") != "1" {
		t.Fatalf("first: %d %v", a.status, a.header)
	}
	if a := call(t, e, "POST", db2saasemu.RouteCreate, tok, p); a.status != http.StatusServiceUnavailable {
		t.Fatalf("second: %d", a.status)
	}
	if len(e.Backups(crn)) != 0 {
		t.Fatal("a failed create stored a backup")
	}
	if a := call(t, e, "GET", db2saasemu.RouteBackups, tok, p); a.status != http.StatusOK {
		t.Fatalf("third: %d", a.status)
	}
}

func TestSeededScheduledBackupBlocksCreate(t *testing.T) {
	clk := clock.NewFake(t0)
	e := db2saasemu.Start(t, db2saasemu.Options{APIKey: apiKey, Clock: clk})
	id := e.AddBackup(crn, db2saasemu.Seed{Type: db2saasemu.TypeScheduled, CreatedAt: t0.Add(-time.Minute), Duration: time.Hour})
	tok, p := token(t, e), url.QueryEscape(crn)
	if a := call(t, e, "POST", db2saasemu.RouteCreate, tok, p); a.status != http.StatusConflict {
		t.Fatalf("create during a scheduled backup: %d", a.status)
	}
	got := e.Backups(crn)
	if len(got) != 1 || got[0].ID != id || got[0].Status != db2saasemu.StatusRunning || got[0].Type != db2saasemu.TypeScheduled {
		t.Fatalf("backups: %+v", got)
	}
}
