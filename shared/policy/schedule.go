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

// Refusal is the reason recorded when an on-demand request by requestedBy is refused by hold (a
// Hold reason): "request by <requestedBy> refused: <hold>".
func Refusal(requestedBy, hold string) string {
	return "request by " + requestedBy + " refused: " + hold
}

// Refused records in st that req was refused by hold at now: as the last decision, and as the
// last refusal, which the tick's decisions do not replace, so that whoever asked finds it
// (RefusedRequest). It reports whether st changed: the same refusal recorded again does not.
func Refused(st *state.State, req events.BackupRequested, hold string, now time.Time) bool {
	why := Refusal(req.RequestedBy, hold)
	if st.LastRefusal != nil && st.LastRefusal.Reason == why {
		return false
	}
	d := state.Decision{At: now, Action: string(Defer), Type: req.Type, Reason: why}
	st.LastDecision, st.LastRefusal = &d, &d
	return true
}

// RefusedRequest reports whether st records the refusal of a request by requestedBy (Refused),
// and the hold that refused it.
func RefusedRequest(st *state.State, requestedBy string) (hold string, ok bool) {
	for _, d := range []*state.Decision{st.LastRefusal, st.LastDecision} {
		if d != nil && d.Action == string(Defer) {
			if hold, ok := strings.CutPrefix(d.Reason, Refusal(requestedBy, "")); ok {
				return hold, true
			}
		}
	}
	return "", false
}
