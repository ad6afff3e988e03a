package kpemu_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	kp "github.com/IBM/keyprotect-go-client"

	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/test/kpemu"
)

// kpStatus returns the HTTP status and first reason code of a keyprotect-go-client error.
func kpStatus(err error) (int, string) {
	var kpErr *kp.Error
	if !errors.As(err, &kpErr) {
		return 0, ""
	}
	if len(kpErr.Reasons) == 0 {
		return kpErr.StatusCode, ""
	}
	return kpErr.StatusCode, kpErr.Reasons[0].Code
}

func TestWrapUnwrapThroughRealClient(t *testing.T) {
	clk := clock.NewFake(t0)
	e := kpemu.Start(t, kpemu.Options{Clock: clk})
	id, _ := e.AddKey("keystore-root")
	other, _ := e.AddKey("other")
	c := client(t, e, e.APIKey())
	ctx := context.Background()
	dek := bytes.Repeat([]byte{0xd5}, 32)
	b64 := []byte(base64.StdEncoding.EncodeToString(dek))
	aad := []string{"keyguard keystore", "sales", "20261124020000"}

	v1, _ := e.CurrentVersion(id)
	w, err := c.WrapV2(ctx, id, b64, &aad)
	if err != nil {
		t.Fatal(err)
	}
	if w.CipherText == "" || w.KeyVersion == nil || w.KeyVersion.ID != v1 || w.PlainText != "" {
		t.Fatalf("wrap answer %+v", w)
	}
	if bytes.Contains([]byte(w.CipherText), b64) {
		t.Fatal("the wrapped key contains the plaintext")
	}
	again, err := c.WrapV2(ctx, id, b64, &aad)
	if err != nil || again.CipherText == w.CipherText {
		t.Fatalf("two wraps of one key gave the same ciphertext (no fresh nonce): %v", err)
	}

	pt, _, err := c.UnwrapV2(ctx, id, []byte(w.CipherText), &aad)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := base64.StdEncoding.DecodeString(string(pt)); err != nil || !bytes.Equal(got, dek) {
		t.Fatalf("unwrapped %q %v", pt, err)
	}

	// A key version keeps unwrapping after a rotation; new wraps use the new version.
	clk.Advance(2 * time.Hour)
	v2, _ := e.Rotate(id)
	if pt, _, err := c.UnwrapV2(ctx, id, []byte(w.CipherText), &aad); err != nil || string(pt) != string(b64) {
		t.Fatalf("unwrap of a version-1 key after a rotation: %q %v", pt, err)
	}
	if w2, err := c.WrapV2(ctx, id, b64, &aad); err != nil || w2.KeyVersion == nil || w2.KeyVersion.ID != v2 {
		t.Fatalf("wrap after rotation: %+v %v", w2, err)
	}

	// Without plaintext Key Protect makes a 32-byte key and returns it with its wrapped form.
	gen, err := c.WrapCreateDEKV2(ctx, id, nil)
	if err != nil {
		t.Fatal(err)
	}
	if raw, err := base64.StdEncoding.DecodeString(gen.PlainText); err != nil || len(raw) != 32 || gen.CipherText == "" {
		t.Fatalf("generated key %d bytes, %v", len(raw), err)
	}
	if pt, _, err := c.UnwrapV2(ctx, id, []byte(gen.CipherText), nil); err != nil || string(pt) != gen.PlainText {
		t.Fatalf("unwrap of a generated key: %v", err)
	}

	tampered := []byte(w.CipherText)
	tampered[len(tampered)/2] ^= 1
	if tampered[len(tampered)/2] == '=' {
		tampered[len(tampered)/2] = 'A'
	}
	refusals := []struct {
		name       string
		do         func() error
		wantStatus int
		wantReason string
	}{
		{"other aad", func() error {
			_, _, err := c.UnwrapV2(ctx, id, []byte(w.CipherText), &[]string{"keyguard keystore", "sales", "20261125020000"})
			return err
		}, 422, kpemu.ReasonUnwrap},
		{"no aad", func() error { _, _, err := c.UnwrapV2(ctx, id, []byte(w.CipherText), nil); return err }, 422, kpemu.ReasonUnwrap},
		{"other key", func() error { _, _, err := c.UnwrapV2(ctx, other, []byte(w.CipherText), &aad); return err }, 422, kpemu.ReasonUnwrap},
		{"tampered", func() error { _, _, err := c.UnwrapV2(ctx, id, tampered, &aad); return err }, 422, kpemu.ReasonUnwrap},
		{"junk", func() error { _, _, err := c.UnwrapV2(ctx, id, []byte("not a wrapped key"), &aad); return err }, 422, kpemu.ReasonUnwrap},
		{"unknown key", func() error { _, _, err := c.UnwrapV2(ctx, "nope", []byte(w.CipherText), &aad); return err }, 404, kpemu.ReasonNotFound},
	}
	for _, r := range refusals {
		if st, reason := kpStatus(r.do()); st != r.wantStatus || reason != r.wantReason {
			t.Errorf("%s: %d %s, want %d %s", r.name, st, reason, r.wantStatus, r.wantReason)
		}
	}
	if n, m := e.Calls(kpemu.RouteWrap), e.Calls(kpemu.RouteUnwrap); n != 4 || m != 9 {
		t.Fatalf("wrap calls %d, unwrap calls %d; want 4 and 9", n, m)
	}
}

func TestWrapUnwrapNeedAnActiveKey(t *testing.T) {
	e := kpemu.Start(t, kpemu.Options{})
	id, _ := e.AddKey("k")
	c := client(t, e, e.APIKey())
	ctx := context.Background()
	b64 := []byte(base64.StdEncoding.EncodeToString(make([]byte, 32)))
	wrapped, err := c.Wrap(ctx, id, b64, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		state      kpemu.State
		wantStatus int
		wantReason string
	}{
		{kpemu.StateSuspended, 409, kpemu.ReasonInvalidState},
		{kpemu.StateDeactivated, 409, kpemu.ReasonInvalidState},
		{kpemu.StatePreActivation, 409, kpemu.ReasonInvalidState},
		{kpemu.StateDestroyed, 410, kpemu.ReasonDeleted},
	} {
		if err := e.SetState(id, tc.state); err != nil {
			t.Fatal(err)
		}
		_, werr := c.Wrap(ctx, id, b64, nil)
		_, _, uerr := c.UnwrapV2(ctx, id, wrapped, nil)
		for what, err := range map[string]error{"wrap": werr, "unwrap": uerr} {
			if st, reason := kpStatus(err); st != tc.wantStatus || reason != tc.wantReason {
				t.Errorf("%s in state %d: %d %s, want %d %s", what, tc.state, st, reason, tc.wantStatus, tc.wantReason)
			}
		}
	}
	if err := e.SetState(id, kpemu.StateActive); err != nil {
		t.Fatal(err)
	}
	if pt, _, err := c.UnwrapV2(ctx, id, wrapped, nil); err != nil || string(pt) != string(b64) {
		t.Fatalf("unwrap once active again: %v", err)
	}
}

func TestWrapRefusesBadInput(t *testing.T) {
	e := kpemu.Start(t, kpemu.Options{})
	id, _ := e.AddKey("k")
	c := client(t, e, e.APIKey())
	ctx := context.Background()
	big := []byte(base64.StdEncoding.EncodeToString(make([]byte, kpemu.MaxWrapPlaintext+1)))
	if st, reason := kpStatus(func() error { _, err := c.Wrap(ctx, id, big, nil); return err }()); st != 400 || reason != kpemu.ReasonBadRequest {
		t.Fatalf("oversized plaintext: %d %s", st, reason)
	}
	if st, _ := kpStatus(func() error { _, _, err := c.UnwrapV2(ctx, id, nil, nil); return err }()); st != 400 {
		t.Fatalf("unwrap without ciphertext: %d", st)
	}
}
