package keyprotect_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/keyprotect"
	"github.com/keyguard-dev/keyguard/test/kpemu"
)

// What envelope encryption needs; the adapter must satisfy it.
type wrapper interface {
	Wrap(ctx context.Context, keyRef string, key []byte, aad []string) ([]byte, string, error)
	Unwrap(ctx context.Context, keyRef string, wrapped []byte, aad []string) ([]byte, error)
}

var _ wrapper = (*keyprotect.Client)(nil)

func TestWrapUnwrap(t *testing.T) {
	clk := clock.NewFake(t0)
	e := kpemu.Start(t, kpemu.Options{Clock: clk})
	id, crn := e.AddKey("keystore-root")
	c := newClient(t, e, nil)
	ctx := context.Background()
	dek := bytes.Repeat([]byte{7}, 32)
	aad := []string{"keyguard keystore", "sales", "20261124020000"}

	v1, _ := e.CurrentVersion(id)
	wrapped, version, err := c.Wrap(ctx, crn, dek, aad)
	if err != nil || version != v1 || len(wrapped) == 0 || bytes.Contains(wrapped, dek) {
		t.Fatalf("Wrap: version %q (want %s), %d bytes, %v", version, v1, len(wrapped), err)
	}
	for _, ref := range []string{id, crn} {
		got, err := c.Unwrap(ctx, ref, wrapped, aad)
		if err != nil || !bytes.Equal(got, dek) {
			t.Fatalf("Unwrap(%s): %v", ref, err)
		}
	}
	clk.Advance(2 * time.Hour)
	v2, _ := e.Rotate(id)
	if got, err := c.Unwrap(ctx, id, wrapped, aad); err != nil || !bytes.Equal(got, dek) {
		t.Fatalf("Unwrap after a rotation: %v", err)
	}
	if _, version, err := c.Wrap(ctx, id, dek, nil); err != nil || version != v2 {
		t.Fatalf("Wrap after a rotation: version %q (want %s), %v", version, v2, err)
	}

	// A transient failure is retried within the budget.
	e.FailNext(1, http.StatusServiceUnavailable)
	if _, _, err := c.Wrap(ctx, id, dek, aad); err != nil {
		t.Fatalf("Wrap after one 503: %v", err)
	}
	e.FailNext(keyprotect.DefaultRetries+1, http.StatusServiceUnavailable)
	_, _, err = c.Wrap(ctx, id, dek, aad)
	if ke := asError(t, err); !keyprotect.IsTransient(err) || ke.Op != "wrap key" || ke.StatusCode != 503 || ke.Attempts != keyprotect.DefaultRetries+1 {
		t.Fatalf("Wrap with Key Protect down: %v", err)
	}
	e.ResetCalls()

	// Wrong AAD or a changed wrapped key: permanent, not retried.
	_, err = c.Unwrap(ctx, id, wrapped, aad[:2])
	if ke := asError(t, err); ke.Class != keyprotect.Permanent || ke.StatusCode != 422 || ke.Attempts != 1 {
		t.Fatalf("Unwrap with other AAD: %v", err)
	}
	// Bad input never reaches the service.
	if _, _, err := c.Wrap(ctx, id, nil, aad); asError(t, err).Class != keyprotect.Invalid {
		t.Fatalf("Wrap of nothing: %v", err)
	}
	if _, err := c.Unwrap(ctx, id, nil, aad); asError(t, err).Class != keyprotect.Invalid {
		t.Fatalf("Unwrap of nothing: %v", err)
	}
	if n := e.Requests(); n != 1 {
		t.Fatalf("requests %d, want 1", n)
	}
}

func TestWrapUnwrapKeyStates(t *testing.T) {
	e := kpemu.Start(t, kpemu.Options{})
	id, _ := e.AddKey("k")
	c := newClient(t, e, nil)
	ctx := context.Background()
	wrapped, _, err := c.Wrap(ctx, id, make([]byte, 32), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		state  kpemu.State
		class  keyprotect.Class
		status int
	}{
		{kpemu.StateSuspended, keyprotect.Permanent, 409},
		{kpemu.StateDeactivated, keyprotect.Permanent, 409},
		{kpemu.StateDestroyed, keyprotect.NotFound, 410},
	} {
		if err := e.SetState(id, tc.state); err != nil {
			t.Fatal(err)
		}
		_, _, werr := c.Wrap(ctx, id, make([]byte, 32), nil)
		_, uerr := c.Unwrap(ctx, id, wrapped, nil)
		for what, err := range map[string]error{"wrap": werr, "unwrap": uerr} {
			if ke := asError(t, err); ke.Class != tc.class || ke.StatusCode != tc.status {
				t.Errorf("%s in state %d: %v, want %s %d", what, tc.state, err, tc.class, tc.status)
			}
		}
	}
}
