package policy

import (
	"strings"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/state"
)

// NextSlot is db's next schedule slot after now: its type and time. When the slots of several
// types fall at the same time, the highest-ranked type names it (a full covers the incremental
// due with it). ok is false when db has no schedule.
func NextSlot(db config.Database, now time.Time) (typ events.BackupType, at time.Time, ok bool) {
	for _, t := range []events.BackupType{events.Full, events.Incremental, events.Delta} {
		sched, has := db.Schedule(t)
		if !has {
			continue
		}
		next := sched.Next(now)
		if next.IsZero() {
			continue
		}
		if !ok || next.Before(at) {
			typ, at, ok = t, next, true
		}
	}
	return typ, at, ok
}

// Refusal is the reason recorded as the last decision when an on-demand request by requestedBy
// is refused by hold (a Hold reason): "request by <requestedBy> refused: <hold>".
func Refusal(requestedBy, hold string) string {
	return "request by " + requestedBy + " refused: " + hold
}

// RefusedRequest reports whether d records the refusal of a request by requestedBy (Refusal),
// and the hold that refused it.
func RefusedRequest(d *state.Decision, requestedBy string) (hold string, ok bool) {
	if d == nil || d.Action != string(Defer) {
		return "", false
	}
	return strings.CutPrefix(d.Reason, Refusal(requestedBy, ""))
}
