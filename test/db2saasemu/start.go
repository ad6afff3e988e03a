package db2saasemu

import (
	"log/slog"
	"net/http/httptest"
	"testing"
)

// Start serves a new Emulator on a loopback httptest server until the test ends. The client's
// service URL is e.ServiceURL(); the IAM URL is e.URL(). Without a Logger, the emulator logs to
// the test's output.
func Start(t testing.TB, o Options) *Emulator {
	t.Helper()
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	e := New(o)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	e.mu.Lock()
	e.url = srv.URL
	e.mu.Unlock()
	return e
}
