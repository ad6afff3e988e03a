package ceemu_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/test/ceemu"
	"github.com/keyguard-dev/keyguard/test/iamemu"
)

const (
	apiKey  = "emu-key"
	project = "p-1"
	job     = "runner"
)

func token(t *testing.T, e *ceemu.Emulator) string {
	t.Helper()
	form := url.Values{"grant_type": {iamemu.GrantAPIKey}, "apikey": {apiKey}}
	resp, err := http.Post(e.URL()+iamemu.TokenPath, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&b); err != nil || b.AccessToken == "" {
		t.Fatalf("token: %v (status %d)", err, resp.StatusCode)
	}
	return b.AccessToken
}

type answer struct {
	Code int
	Body map[string]any
}

func (a answer) errCode() string {
	errs, _ := a.Body["errors"].([]any)
	if len(errs) == 0 {
		return ""
	}
	m, _ := errs[0].(map[string]any)
	s, _ := m["code"].(string)
	return s
}

func call(t *testing.T, e *ceemu.Emulator, tok, method, path string, body any) answer {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, e.URL()+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return answer{resp.StatusCode, m}
}

func runsPath(p string) string   { return "/v2/projects/" + p + "/job_runs" }
func runPath(p, n string) string { return runsPath(p) + "/" + n }
func lit(name, value string) any {
	return map[string]string{"type": "literal", "name": name, "value": value}
}
func create(name string) map[string]any {
	return map[string]any{"job_name": job, "name": name, "run_env_variables": []any{lit("ibmendata", `{"a":1}`), lit("X", "1")}}
}

func TestCreateGetAndStatus(t *testing.T) {
	e := ceemu.Start(t, ceemu.Options{APIKey: apiKey, ProjectID: project, Jobs: []string{job}})
	tok := token(t, e)

	a := call(t, e, tok, http.MethodPost, runsPath(project), create("kg-run-1"))
	if a.Code != http.StatusAccepted || a.Body["name"] != "kg-run-1" || a.Body["status"] != ceemu.StatusPending ||
		a.Body["resource_type"] != "job_run_v2" || a.Body["job_name"] != job {
		t.Fatalf("create: %d %v", a.Code, a.Body)
	}
	if a := call(t, e, tok, http.MethodPost, runsPath(project), create("kg-run-1")); a.Code != http.StatusConflict || a.errCode() == "" {
		t.Fatalf("duplicate: %d %v", a.Code, a.Body)
	}
	if n := len(e.JobRuns()); n != 1 {
		t.Fatalf("%d runs after a duplicate", n)
	}
	jr, ok := e.JobRun("kg-run-1")
	if !ok || jr.Getenv("ibmendata") != `{"a":1}` || jr.Getenv("X") != "1" || jr.Getenv("missing") != "" ||
		strings.Join(jr.Environ(), " ") != `ibmendata={"a":1} X=1` || jr.ArraySpec != "0" {
		t.Fatalf("recorded %+v", jr)
	}

	steps := []struct {
		status, reason string
		detailKey      string
	}{
		{ceemu.StatusRunning, "", "running"},
		{ceemu.StatusFailed, "OOMKilled", "failed"},
		{ceemu.StatusCompleted, "", "succeeded"},
	}
	for _, s := range steps {
		if err := e.SetStatus("kg-run-1", s.status, s.reason); err != nil {
			t.Fatal(err)
		}
		g := call(t, e, tok, http.MethodGet, runPath(project, "kg-run-1"), nil)
		d, _ := g.Body["status_details"].(map[string]any)
		if g.Code != http.StatusOK || g.Body["status"] != s.status || d[s.detailKey] != float64(1) {
			t.Fatalf("%s: %d %v", s.status, g.Code, g.Body)
		}
		if s.reason != "" && !strings.Contains(jsonText(d["indices_details"]), s.reason) {
			t.Fatalf("failure reason missing: %v", d)
		}
	}
	if err := e.SetStatus("kg-run-1", "exploded", ""); err == nil {
		t.Fatal("unknown status accepted")
	}
	if err := e.SetStatus("nope", ceemu.StatusRunning, ""); err == nil {
		t.Fatal("status of an unknown run accepted")
	}
	if g := call(t, e, tok, http.MethodGet, runPath(project, "nope"), nil); g.Code != http.StatusNotFound {
		t.Fatalf("unknown run: %d", g.Code)
	}
	if !e.Delete("kg-run-1") || e.Delete("kg-run-1") {
		t.Fatal("delete")
	}
	if g := call(t, e, tok, http.MethodGet, runPath(project, "kg-run-1"), nil); g.Code != http.StatusNotFound {
		t.Fatalf("deleted run: %d", g.Code)
	}
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestRefusals(t *testing.T) {
	e := ceemu.Start(t, ceemu.Options{APIKey: apiKey, ProjectID: project, Jobs: []string{job}})
	tok := token(t, e)
	tests := []struct {
		name   string
		tok    string
		method string
		path   string
		body   any
		want   int
	}{
		{"no token", "", http.MethodPost, runsPath(project), create("a"), http.StatusUnauthorized},
		{"forged token", "x.y.z", http.MethodGet, runPath(project, "a"), nil, http.StatusUnauthorized},
		{"other project", tok, http.MethodPost, runsPath("p-2"), create("a"), http.StatusNotFound},
		{"unknown job", tok, http.MethodPost, runsPath(project), map[string]any{"job_name": "other", "name": "a"}, http.StatusNotFound},
		{"no job", tok, http.MethodPost, runsPath(project), map[string]any{"name": "a"}, http.StatusBadRequest},
		{"upper case name", tok, http.MethodPost, runsPath(project), create("Kg-A"), http.StatusBadRequest},
		{"trailing dash", tok, http.MethodPost, runsPath(project), create("kg-"), http.StatusBadRequest},
		{"name too long", tok, http.MethodPost, runsPath(project), create(strings.Repeat("a", 64)), http.StatusBadRequest},
		{"bad env type", tok, http.MethodPost, runsPath(project), map[string]any{"job_name": job, "run_env_variables": []any{map[string]string{"type": "magic", "name": "A"}}}, http.StatusBadRequest},
		{"literal without name", tok, http.MethodPost, runsPath(project), map[string]any{"job_name": job, "run_env_variables": []any{map[string]string{"type": "literal", "value": "v"}}}, http.StatusBadRequest},
		{"bad array spec", tok, http.MethodPost, runsPath(project), map[string]any{"job_name": job, "scale_array_spec": "3-1"}, http.StatusBadRequest},
		{"list not served", tok, http.MethodGet, runsPath(project), nil, http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := call(t, e, tt.tok, tt.method, tt.path, tt.body)
			if a.Code != tt.want || a.errCode() == "" || a.Body["status_code"] != float64(tt.want) {
				t.Fatalf("got %d %v, want %d with an IBM error body", a.Code, a.Body, tt.want)
			}
		})
	}
	if n := len(e.JobRuns()); n != 0 {
		t.Fatalf("%d runs recorded from refused requests", n)
	}
	if e.Requests() != len(tests) {
		t.Fatalf("requests %d, want %d", e.Requests(), len(tests))
	}
}

func TestFailNextAndGeneratedName(t *testing.T) {
	e := ceemu.Start(t, ceemu.Options{APIKey: apiKey})
	tok := token(t, e)
	e.FailNext(2, http.StatusTooManyRequests)
	body := map[string]any{"job_name": job, "scale_array_spec": "0-2,5"}
	for range 2 {
		if a := call(t, e, tok, http.MethodPost, runsPath("any"), body); a.Code != http.StatusTooManyRequests {
			t.Fatalf("injected: %d", a.Code)
		}
	}
	a := call(t, e, tok, http.MethodPost, runsPath("any"), body)
	d, _ := a.Body["status_details"].(map[string]any)
	name, _ := a.Body["name"].(string)
	if a.Code != http.StatusAccepted || !strings.HasPrefix(name, job+"-") || d["requested"] != float64(4) {
		t.Fatalf("after injection: %d %v", a.Code, a.Body)
	}
	if e.Requests() != 3 || len(e.JobRuns()) != 1 {
		t.Fatalf("requests %d runs %d", e.Requests(), len(e.JobRuns()))
	}
}

func TestOnRunHook(t *testing.T) {
	got := make(chan ceemu.JobRun, 2)
	e := ceemu.Start(t, ceemu.Options{APIKey: apiKey, OnRun: func(r ceemu.JobRun) { got <- r }})
	tok := token(t, e)
	call(t, e, tok, http.MethodPost, runsPath(project), create("kg-hook"))
	call(t, e, tok, http.MethodPost, runsPath(project), create("kg-hook")) // duplicate: no second call
	select {
	case r := <-got:
		if r.Name != "kg-hook" || r.Getenv("ibmendata") != `{"a":1}` || r.Status != ceemu.StatusPending {
			t.Fatalf("hook got %+v", r)
		}
		// What the hook holds is a copy: changing it does not change the record.
		r.EnvVars[0].Value = "changed"
		if jr, _ := e.JobRun("kg-hook"); jr.Getenv("ibmendata") != `{"a":1}` {
			t.Fatal("hook copy aliases the record")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnRun not called")
	}
	select {
	case r := <-got:
		t.Fatalf("OnRun called for a refused duplicate: %+v", r)
	case <-time.After(50 * time.Millisecond):
	}
}
