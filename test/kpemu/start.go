package kpemu

import (
	"net/http/httptest"
	"testing"
)

// Start runs an Emulator configured by o on a loopback httptest server and closes it when the
// test ends. The client's BaseURL is e.URL() and its token URL e.TokenURL().
func Start(t testing.TB, o Options) *Emulator {
	t.Helper()
	e := New(o)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	e.mu.Lock()
	e.baseURL = srv.URL
	e.mu.Unlock()
	return e
}
