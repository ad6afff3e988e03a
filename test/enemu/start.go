package enemu

import (
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"
)

// Test timing used by Start: deliveries retry after TestRetryWait and give up an attempt after
// TestAttemptTimeout, so a lost notification costs milliseconds, not EN's ten seconds.
const (
	TestRetryWait      = 5 * time.Millisecond
	TestAttemptTimeout = 2 * time.Second
)

// Start runs an Emulator accepting apiKey on a loopback httptest server, with test timing, and
// closes both when the test ends. The SDK's service URL and the IAM URL are both e.URL().
func Start(t testing.TB, apiKey string) *Emulator {
	t.Helper()
	return StartWithOptions(t, Options{APIKey: apiKey, RetryWait: TestRetryWait, AttemptTimeout: TestAttemptTimeout})
}

// StartWithOptions is Start with explicit options (no test timing is applied). Without a Logger,
// the emulator logs to the test's output.
func StartWithOptions(t testing.TB, o Options) *Emulator {
	t.Helper()
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	e := New(o)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	t.Cleanup(e.Close) // runs first: deliveries stop before the server goes
	e.mu.Lock()
	e.url = srv.URL
	e.mu.Unlock()
	return e
}
