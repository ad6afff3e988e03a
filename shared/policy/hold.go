package policy

import (
	"fmt"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/state"
)

// Hold says why no backup or drill of the database may start now, whatever asks for it (a
// schedule slot, a retry, an operator, a drill): the key is not active, a rotation window is
// open, a run is in flight, or a restore drill is. ok is false when nothing holds. The reason starts with one of the Reason constants.
func Hold(st *state.State) (reason string, held bool) {
	switch {
	case st.Key.Blocked:
		return fmt.Sprintf("%s (%s)", ReasonKeyNotActive, st.Key.State), true
	case st.Window != nil:
		to := st.Window.ToVersion
		if to == "" {
			to = "not yet known"
		}
		return fmt.Sprintf("%s (key version %s until at most %s)", ReasonRotationWindow, to, st.Window.MaxCloseAt.UTC().Format(time.RFC3339)), true
	case st.Run != nil:
		return fmt.Sprintf("%s (%s)", ReasonRunInFlight, st.Run.ID), true
	case st.Restore != nil:
		return fmt.Sprintf("%s (%s)", ReasonRestoreInFlight, st.Restore.ID), true
	}
	return "", false
}

// NewRun is the run a start of type t at slot (attempt n) puts in flight at now: its id, lease,
// and the key version and executor it is pinned to.
func NewRun(st *state.State, db config.Database, t events.BackupType, mode events.Mode, slot time.Time, attempt int, now time.Time) state.Run {
	return state.Run{ID: RunID(db.Name, t, slot, attempt), Type: t, Mode: mode, Slot: slot, Attempt: attempt, StartedAt: now,
		LeaseUntil: now.Add(db.Lease), KeyVersion: st.Key.Version, KeyCRN: db.KeyCRN, Executor: db.Executor}
}

// Request applies an on-demand backup request: the run it starts (nil when refused), or why it
// is refused (a Hold). A full is taken instead of an incremental or delta when the chain needs
// one. The run records who asked and why.
func Request(st *state.State, db config.Database, req events.BackupRequested, now time.Time) (*state.Run, string) {
	if reason, held := Hold(st); held {
		return nil, reason
	}
	typ, mode := req.Type, req.Mode
	if mode == "" {
		mode = db.Mode
	}
	why := "requested by " + req.RequestedBy
	if typ != events.Full && (st.NeedFull || st.LastSuccess == nil) {
		typ = events.Full
		why += ", taken as full (" + needFullWhy(st) + ")"
	}
	run := NewRun(st, db, typ, mode, now, 1, now)
	run.ID += "-req"
	run.RequestedBy, run.Reason = req.RequestedBy, req.Reason
	st.Run = &run
	if req.Reason != "" {
		why += ": " + req.Reason
	}
	st.LastDecision = &state.Decision{At: now, Action: string(Start), Type: typ, Reason: why}
	return &run, ""
}

func needFullWhy(st *state.State) string {
	if st.NeedFullReason != "" {
		return st.NeedFullReason
	}
	return "no full backup yet"
}
