package keystore

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/keyprotect"
	"github.com/keyguard-dev/keyguard/test/kpemu"
)

var (
	_ Wrapper   = (*keyprotect.Client)(nil)
	_ Unwrapper = (*keyprotect.Client)(nil)
)

// The real keyprotect-go-client (through the adapter) against the Key Protect emulator.
func TestSealOpenWithKeyProtect(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC))
	e := kpemu.Start(t, kpemu.Options{Clock: clk})
	id, crn := e.AddKey("keystore-root")
	kp, err := keyprotect.New(keyprotect.Options{URL: e.URL(), InstanceID: e.InstanceID(), APIKey: e.APIKey(), TokenURL: e.TokenURL(),
		Retries: keyprotect.NoRetries})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	plain := archive(t)
	sealed, err := Seal(ctx, kp, crn, bind, fp, plain)
	if err != nil {
		t.Fatal(err)
	}
	h, err := ParseHeader(sealed)
	if v1, _ := e.CurrentVersion(id); err != nil || h.KeyVersion != v1 || h.KeyCRN != crn {
		t.Fatalf("header %+v %v, want key version %s", h, err, v1)
	}
	clk.Advance(2 * time.Hour)
	if _, err := e.Rotate(id); err != nil {
		t.Fatal(err)
	}
	if got, _, err := Open(ctx, kp, sealed, bind); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open after a rotation: %v", err)
	}
	if err := e.SetState(id, kpemu.StateSuspended); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Open(ctx, kp, sealed, bind); err == nil || keyprotect.IsTransient(err) {
		t.Fatalf("Open with a suspended key: %v", err)
	}
	if _, err := Seal(ctx, kp, crn, bind, fp, plain); err == nil {
		t.Fatal("Seal with a suspended key succeeded")
	}
	if err := e.SetState(id, kpemu.StateDestroyed); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Open(ctx, kp, sealed, bind); !keyprotect.IsNotFound(err) {
		t.Fatalf("Open with a destroyed key: %v", err)
	}
	e.FailNext(1, 503)
	_, err = Seal(ctx, kp, crn, bind, fp, plain)
	var ke *keyprotect.Error
	if !errors.As(err, &ke) || !keyprotect.IsTransient(err) {
		t.Fatalf("Seal with Key Protect unavailable: %v", err)
	}
}
