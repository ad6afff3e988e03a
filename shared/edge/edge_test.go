package edge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/codeengine"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/db2saas"
	"github.com/keyguard-dev/keyguard/shared/errkind"
	"github.com/keyguard-dev/keyguard/shared/keyprotect"
	"github.com/keyguard-dev/keyguard/shared/objstore"
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
		{"kind transient", "Bearer " + token, enBody, errkind.With(errkind.Transient, errors.New("key protect: 429")), 503, "key protect: 429", true},
		{"kind permanent", "Bearer " + token, enBody, errkind.With(errkind.Permanent, errors.New("no such key")), 422, "no such key", true},
		{"kind configuration", "Bearer " + token, enBody, errkind.With(errkind.Configuration, errors.New("api key refused")), 422, "api key refused", true},
		{"kind invalid", "Bearer " + token, enBody, errkind.With(errkind.Invalid, errors.New("bad key id")), 400, "bad key id", true},
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

func TestStatus(t *testing.T) {
	base := errors.New("boom")
	wrap := func(err error) error { return fmt.Errorf("handle event n1: %w", err) }
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"success", nil, http.StatusOK},
		// The event sentinels keep their statuses, whatever kind wraps them.
		{"too large", wrap(events.ErrTooLarge), http.StatusRequestEntityTooLarge},
		{"malformed", wrap(fmt.Errorf("%w: no id", events.ErrInvalid)), http.StatusBadRequest},
		{"unknown type", wrap(events.ErrUnknownType), http.StatusUnprocessableEntity},
		{"rejected", wrap(Reject("not for me")), http.StatusUnprocessableEntity},
		{"unknown database", wrap(config.ErrUnknownDatabase), http.StatusUnprocessableEntity},
		{"deadline", wrap(context.DeadlineExceeded), http.StatusGatewayTimeout},
		{"transient kind over a deadline", errkind.With(errkind.Transient, context.DeadlineExceeded), http.StatusGatewayTimeout},
		{"malformed marked transient", errkind.With(errkind.Transient, events.ErrInvalid), http.StatusBadRequest},
		// The kinds.
		{"transient", wrap(errkind.With(errkind.Transient, base)), http.StatusServiceUnavailable},
		{"permanent", wrap(errkind.With(errkind.Permanent, base)), http.StatusUnprocessableEntity},
		{"configuration", wrap(errkind.With(errkind.Configuration, base)), http.StatusUnprocessableEntity},
		{"invalid", wrap(errkind.With(errkind.Invalid, base)), http.StatusBadRequest},
		{"no kind", wrap(base), http.StatusServiceUnavailable},
		{"the outermost kind wins", errkind.With(errkind.Permanent, wrap(errkind.With(errkind.Transient, base))), http.StatusUnprocessableEntity},
		// The adapters' errors, as they say their kinds.
		{"key protect throttled", wrap(&keyprotect.Error{Class: keyprotect.Transient, StatusCode: 429, Err: base}), http.StatusServiceUnavailable},
		{"key protect: no such key", wrap(&keyprotect.Error{Class: keyprotect.NotFound, StatusCode: 404, Err: base}), http.StatusUnprocessableEntity},
		{"key protect: access refused", wrap(&keyprotect.Error{Class: keyprotect.Configuration, StatusCode: 403, Err: base}), http.StatusUnprocessableEntity},
		{"key protect: malformed key id", wrap(&keyprotect.Error{Class: keyprotect.Invalid, Err: base}), http.StatusBadRequest},
		{"code engine unavailable", wrap(&codeengine.Error{Transient: true, StatusCode: 503, Err: base}), http.StatusServiceUnavailable},
		{"code engine: IAM refused the key", wrap(&codeengine.Error{Auth: true, StatusCode: 400, Err: base}), http.StatusUnprocessableEntity},
		{"db2 on cloud: backup in progress", wrap(&db2saas.Error{Class: events.Transient, StatusCode: 409, Err: db2saas.ErrBackupInProgress}), http.StatusServiceUnavailable},
		{"db2 on cloud: unsupported", wrap(&db2saas.Error{Class: events.Permanent, Err: db2saas.ErrUnsupported}), http.StatusUnprocessableEntity},
		{"object storage unavailable", wrap(objstore.MarkTransient(base)), http.StatusServiceUnavailable},
	}
	for _, tc := range tests {
		if got := Status(tc.err); got != tc.want {
			t.Errorf("%s: Status(%v) = %d, want %d", tc.name, tc.err, got, tc.want)
		}
	}
}
