package scheduler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/policy"
	"github.com/keyguard-dev/keyguard/shared/state"
)

// Rotator rotates a root key (Key Protect "rotate" action). Implemented by the Key Protect adapter
// when the deployment grants keyguard Writer on the key; needed only for managed rotation.
type Rotator interface {
	Rotate(ctx context.Context, keyCRN string) error
}

// freshFull is how recent the verified full of every database must be for a managed rotation.
const freshFull = 24 * time.Hour

// managedRotation rotates a key whose policy asks keyguard to, when it is due and safe: the key
// is active, no database it protects has a run in flight or a window open, and each has a full
// backup under the current version finished within the last day. The rotation is then applied
// at once: windows open on every database (DetectedBy "managed") and key.rotated is announced.
// It returns a note for the log, or "" when nothing was due.
func (s *Scheduler) managedRotation(ctx context.Context, fleet *config.Fleet, crn string, kp *keyPoll) (string, error) {
	every := fleet.Key(crn).ManagedRotation.Every
	rot, ok := s.Keys.(Rotator)
	if every == 0 || !ok || kp == nil || kp.err != nil || kp.status.State != events.KeyActive {
		return "", nil
	}
	now := clock.Or(s.Clock).Now()
	if !kp.status.RotatedAt.IsZero() && now.Sub(kp.status.RotatedAt) < every {
		return "", nil
	}
	dbs := fleet.ByKey(crn)
	for _, db := range dbs {
		st, _, err := s.Store.Get(ctx, db.Name)
		if err != nil {
			return "", nil
		}
		last := st.LastSuccess
		if _, held := policy.Hold(st); held {
			return "", nil
		}
		switch {
		case last == nil || last.Type != events.Full || last.KeyVersion != kp.status.Version || now.Sub(last.At) > freshFull:
			return "", nil
		}
	}
	if err := rot.Rotate(ctx, crn); err != nil {
		return "", fmt.Errorf("managed rotation of %s: %w", crn, err)
	}
	after, err := s.Keys.Key(ctx, crn)
	if err != nil || after.Version == kp.status.Version || after.Version == "" {
		// The next tick's poll finds the new version and opens the windows.
		return "managed rotation done; windows open on the next poll", nil
	}
	kr := events.KeyRotated{KeyCRN: crn, OldVersion: kp.status.Version, NewVersion: after.Version, RotatedAt: now, DetectedBy: "managed"}
	var errs []error
	for _, db := range dbs {
		_, err := state.Update(ctx, s.Store, db.Name, func() *state.State { return state.New(db.Name, db.KeyCRN) }, func(st *state.State) error {
			if _, changed := policy.Rotated(st, db, kr, now); !changed {
				return state.ErrNoChange
			}
			return nil
		})
		if err != nil && !errors.Is(err, state.ErrNoChange) {
			errs = append(errs, fmt.Errorf("%s: %w", db.Name, err))
		}
	}
	if err := s.Send.Send(ctx, crn+"/rotated/"+kr.NewVersion, kr); err != nil {
		s.log().Warn("announce managed rotation", "key", crn, "err", err)
	}
	return fmt.Sprintf("managed rotation of %s to version %s", crn, kr.NewVersion), errors.Join(errs...)
}
