package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/edge"
	"github.com/keyguard-dev/keyguard/shared/secret"
)

// TestLogLinesNameTheFunctionOnce: every line the edge writes through a function's logger
// carries "fn" exactly once (JSON with a duplicated key is read differently by every tool).
func TestLogLinesNameTheFunctionOnce(t *testing.T) {
	var buf bytes.Buffer
	log := NewLogger(&buf, config.FnScheduler, 0)
	h := edge.HandlerFunc(func(context.Context, events.Event) (edge.Result, error) { return edge.Result{Outcome: "ok"}, nil })
	srv := httptest.NewServer(edge.Mux(edge.Options{Token: secret.New("0123456789abcdef0123"), Logger: log}, map[string]edge.Handler{"/tick": h}))
	defer srv.Close()
	for _, auth := range []string{"Bearer 0123456789abcdef0123", "Bearer wrong"} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/tick", strings.NewReader(`{"specversion":"1.0","id":"t1","source":"/x","type":"`+events.TypeTick+`","data":{}}`))
		req.Header.Set("Content-Type", "application/cloudevents+json")
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want a line per request, got:\n%s", buf.String())
	}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %s", l)
		}
		if n := strings.Count(l, `"fn":`); n != 1 || m["fn"] != config.FnScheduler {
			t.Errorf("fn appears %d times (want once, %q): %s", n, config.FnScheduler, l)
		}
	}
}

// TestStartupErrorsNameTheVariableNotTheFunction: Run's errors leave the function's name to
// main (which prints it once) and name the variable at fault.
func TestStartupErrorsNameTheVariableNotTheFunction(t *testing.T) {
	noHandlers := func(Deps) (map[string]edge.Handler, error) { return nil, nil }
	err := Run(context.Background(), config.FnCompletion, env(map[string]string{}), noHandlers)
	if err == nil || strings.Contains(err.Error(), config.FnCompletion) || !strings.Contains(err.Error(), config.EnvCOSBucket+" is required") {
		t.Errorf("missing configuration: %v", err)
	}
	m := full()
	m[config.EnvFleetFile] = "/nonexistent/fleet.yaml"
	err = Run(context.Background(), config.FnCompletion, env(m), noHandlers)
	if err == nil || strings.Contains(err.Error(), config.FnCompletion) || !strings.HasPrefix(err.Error(), config.EnvFleetFile+": ") {
		t.Errorf("missing fleet file: %v", err)
	}
}
