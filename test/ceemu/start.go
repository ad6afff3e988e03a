package ceemu

import (
	"log/slog"
	"net/http/httptest"
	"testing"
)

// Start runs an Emulator configured by o on a loopback httptest server and closes it when the
// test ends. The IAM URL is e.URL(); the Code Engine API URL is e.APIURL(). Without a Logger, the
// emulator logs to the test's output.
func Start(t testing.TB, o Options) *Emulator {
	t.Helper()
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	e := New(o)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	e.mu.Lock()
	e.url = srv.URL
	e.mu.Unlock()
	return e
}
