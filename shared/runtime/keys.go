package runtime

import (
	"context"

	"github.com/keyguard-dev/keyguard/shared/keyprotect"
	"github.com/keyguard-dev/keyguard/shared/scheduler"
)

// KeyWatcher adapts the Key Protect client to what the scheduler polls with.
type KeyWatcher struct{ C *keyprotect.Client }

var (
	_ scheduler.Keys    = KeyWatcher{}
	_ scheduler.Rotator = KeyWatcher{}
)

// Key is one metadata call.
func (w KeyWatcher) Key(ctx context.Context, keyCRN string) (scheduler.KeyStatus, error) {
	k, err := w.C.Key(ctx, keyCRN)
	if err != nil {
		return scheduler.KeyStatus{}, err
	}
	return scheduler.KeyStatus{Version: k.Version, State: k.State, RotatedAt: k.LastRotateDate}, nil
}

// Registrations lists the resources registered to the key with their key versions.
func (w KeyWatcher) Registrations(ctx context.Context, keyCRN string) ([]scheduler.Registration, error) {
	regs, err := w.C.Registrations(ctx, keyCRN)
	if err != nil {
		return nil, err
	}
	out := make([]scheduler.Registration, 0, len(regs))
	for _, r := range regs {
		out = append(out, scheduler.Registration{ResourceCRN: r.ResourceCRN, KeyVersion: r.KeyVersion})
	}
	return out, nil
}

// Rotate rotates the key (managed rotation).
func (w KeyWatcher) Rotate(ctx context.Context, keyCRN string) error { return w.C.Rotate(ctx, keyCRN) }
