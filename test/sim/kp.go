package sim

import (
	"context"
	"fmt"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/errkind"
	"github.com/keyguard-dev/keyguard/shared/scheduler"
)

// keyProtect answers the scheduler's polls from the trace: a key's newest version and when it
// was made, its state, and the version each database's registration reports (the old one until
// the database has re-wrapped). Calls take time and fail with 429s and during outages.
type keyProtect struct{ s *Sim }

var _ scheduler.Keys = keyProtect{}

func (k keyProtect) call(what string) error {
	s := k.s
	s.pause(s.jitter(30*time.Millisecond, 150*time.Millisecond))
	switch {
	case s.failAt("kp " + what):
		return errkind.With(errkind.Transient, fmt.Errorf("key protect: %s: 503 Service Unavailable", what))
	case s.tr.KPOutages.at(s.now()):
		s.fault()
		return errkind.With(errkind.Transient, fmt.Errorf("key protect: %s: 503 Service Unavailable", what))
	case s.rng.Float64() < s.p.KP429:
		s.fault()
		return errkind.With(errkind.Transient, fmt.Errorf("key protect: %s: 429 Too Many Requests", what))
	}
	return nil
}

// Key is one metadata call.
func (k keyProtect) Key(_ context.Context, crn string) (scheduler.KeyStatus, error) {
	if err := k.call("get key " + crn); err != nil {
		return scheduler.KeyStatus{}, err
	}
	kt, ok := k.s.tr.byKey[crn]
	if !ok {
		return scheduler.KeyStatus{}, errkind.With(errkind.Permanent, fmt.Errorf("key protect: key %s: 404 Not Found", crn))
	}
	now := k.s.now()
	st := events.KeyActive
	if kt.Suspended.at(now) {
		st = events.KeySuspended
	}
	return scheduler.KeyStatus{Version: kt.version(kt.latest(now)), State: st, RotatedAt: kt.lastRotated(now)}, nil
}

// Registrations lists the resources registered to the key with the version each reports.
func (k keyProtect) Registrations(_ context.Context, crn string) ([]scheduler.Registration, error) {
	if err := k.call("list registrations of " + crn); err != nil {
		return nil, err
	}
	kt, ok := k.s.tr.byKey[crn]
	if !ok {
		return nil, errkind.With(errkind.Permanent, fmt.Errorf("key protect: key %s: 404 Not Found", crn))
	}
	now := k.s.now()
	out := make([]scheduler.Registration, 0, len(kt.DBs))
	for _, d := range kt.DBs {
		out = append(out, scheduler.Registration{ResourceCRN: d.Instance, KeyVersion: kt.version(d.registered(now))})
	}
	return out, nil
}
