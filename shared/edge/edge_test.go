package edge

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/secret"
)

const token = "0123456789abcdef-test-token"

const enBody = `{"specversion":"1.0","id":"n1","source":"keyguard/test","type":"dev.keyguard.alert","time":"2026-11-24T00:00:00Z",
"data":{"severity":"info","reason":"x","message":"m"},"ibmensourceid":"s","ibmendefaultshort":"a","ibmendefaultlong":"b","notification_id":"abc"}`

func TestServeMapsOutcomesToStatus(t *testing.T) {
	var calls atomic.Int32
	var fail error
	h := HandlerFunc(func(_ context.Context, e events.Event) (Result, error) {
		calls.Add(1)
		if e.NotificationID != "abc" || e.Shape != events.ShapeEN {
			t.Errorf("event = %+v", e)
		}
		return Result{Outcome: "ok"}, fail
	})
	mux := Mux(Options{Token: secret.New(token)}, map[string]Handler{"/events": h})
	tests := []struct {
		name   string
		auth   string
		body   string
		fail   error
		want   int
		reason string
		called bool
	}{
		{"ok", "Bearer " + token, enBody, nil, 200, `"outcome":"ok"`, true},
		{"no token", "", enBody, nil, 401, "bearer token", false},
		{"wrong token", "Bearer nope", enBody, nil, 401, "bearer token", false},
		{"wrong scheme", "Basic " + token, enBody, nil, 401, "bearer token", false},
		{"malformed", "Bearer " + token, `{"id":`, nil, 400, "", false},
		{"oversized", "Bearer " + token, `{"x":"` + strings.Repeat("a", events.MaxBodyBytes) + `"}`, nil, 413, "", false},
		{"rejected", "Bearer " + token, enBody, Reject("not for me"), 422, "not for me", true},
		{"unknown type", "Bearer " + token, enBody, events.ErrUnknownType, 422, "", true},
		{"transient", "Bearer " + token, enBody, errors.New("cos: 503"), 503, "cos: 503", true},
		{"deadline", "Bearer " + token, enBody, context.DeadlineExceeded, 504, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls.Store(0)
			fail = tc.fail
			r := httptest.NewRequest("POST", "/events", strings.NewReader(tc.body))
			r.Header.Set("Content-Type", "application/json")
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, r)
			if w.Code != tc.want || !strings.Contains(w.Body.String(), tc.reason) {
				t.Fatalf("status %d body %s; want %d containing %q", w.Code, w.Body, tc.want, tc.reason)
			}
			if (calls.Load() > 0) != tc.called {
				t.Fatalf("handler called = %v, want %v", calls.Load() > 0, tc.called)
			}
		})
	}
}

func TestHealthzNeedsNoTokenAndOtherMethodsFail(t *testing.T) {
	mux := Mux(Options{Token: secret.New(token)}, map[string]Handler{"/events": HandlerFunc(func(context.Context, events.Event) (Result, error) { return Result{}, nil })})
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", "/healthz", nil))
	if w.Code != 200 {
		t.Fatalf("healthz = %d", w.Code)
	}
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", "/events", nil))
	if w.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET /events = %d", w.Code)
	}
}

func TestUnsetTokenRejectsEverything(t *testing.T) {
	mux := Mux(Options{}, map[string]Handler{"/events": HandlerFunc(func(context.Context, events.Event) (Result, error) {
		t.Fatal("handler reached without a configured token")
		return Result{}, nil
	})})
	r := httptest.NewRequest("POST", "/events", strings.NewReader(enBody))
	r.Header.Set("Authorization", "Bearer ")
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	if w.Code != 401 {
		t.Fatalf("status %d", w.Code)
	}
}

func TestRunJob(t *testing.T) {
	env := map[string]string{"ibmendata": enBody}
	getenv := func(k string) string { return env[k] }
	if !IsJob(getenv) {
		t.Fatal("IsJob false with ibmendata set")
	}
	var got events.Event
	h := HandlerFunc(func(_ context.Context, e events.Event) (Result, error) { got = e; return Result{Outcome: "ok"}, nil })
	if err := RunJob(context.Background(), h, getenv, nil, 0); err != nil {
		t.Fatal(err)
	}
	if got.ID != "n1" || got.Shape != events.ShapeJobEN {
		t.Fatalf("event = %+v", got)
	}
	if err := RunJob(context.Background(), h, func(string) string { return "" }, nil, 0); err == nil {
		t.Fatal("RunJob without an event succeeded")
	}
	failing := HandlerFunc(func(context.Context, events.Event) (Result, error) { return Result{}, errors.New("boom") })
	if err := RunJob(context.Background(), failing, getenv, nil, 0); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("err = %v", err)
	}
}
