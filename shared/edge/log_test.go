package edge

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/secret"
)

// TestRefusalsAreWarnings: an event refused with a 4xx is logged at WARN (the sender's problem,
// and expected); a failure answered 5xx at ERROR.
func TestRefusalsAreWarnings(t *testing.T) {
	for _, tc := range []struct {
		fail  error
		level string
	}{{Reject("run in flight"), "level=WARN"}, {errors.New("cos: 503"), "level=ERROR"}} {
		var buf bytes.Buffer
		h := HandlerFunc(func(context.Context, events.Event) (Result, error) { return Result{}, tc.fail })
		mux := Mux(Options{Token: secret.New(token), Logger: slog.New(slog.NewTextHandler(&buf, nil))}, map[string]Handler{"/events": h})
		r := httptest.NewRequest("POST", "/events", strings.NewReader(enBody))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+token)
		mux.ServeHTTP(httptest.NewRecorder(), r)
		if !strings.Contains(buf.String(), tc.level) || !strings.Contains(buf.String(), "event failed") {
			t.Errorf("%v logged %q, want %s", tc.fail, buf.String(), tc.level)
		}
	}
}
