package policy

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/check"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/state"
)

// RestoreEvidence is what the catalog says of the restore in flight: its record, once written.
type RestoreEvidence struct {
	ID     string
	Record *catalog.RestoreRecord
	// Unknown is true when the catalog could not be read: the restore is left as it is.
	Unknown bool
}

// DrillID names a database's drill at slot, so a repeated start of the same slot is the same
// restore (the restore job runs one per id; records are per database).
func DrillID(slot time.Time) string { return "drill-" + slot.UTC().Format("20060102T150405Z") }

// DrillRequest is the restore.requested of the drill run: the newest restorable point into the
// scratch database (replacing what an earlier drill left), probed, then dropped.
func DrillRequest(db config.Database, run state.RestoreRun) events.RestoreRequested {
	req := events.RestoreRequested{Database: db.Name, RequestedBy: "keyguard/scheduler (drill)", ID: run.ID, Drill: true, Replace: true, Drop: true}
	if d := db.Drill; d != nil {
		req.Into, req.Probe, req.StoragePaths = d.Target, d.Probe, d.StoragePaths
	}
	return req
}

// drill starts the drill due at now, unless a backup was decided this tick (a drill never runs
// beside a backup of its database) or Hold holds it (a rotation window, a blocked key, a run or a
// restore in flight): a held drill stays due and starts when the hold ends. It reports whether
// st changed.
func drill(st *state.State, db config.Database, d Decision, now time.Time, eff *Effects) bool {
	sched, ok := db.DrillSchedule()
	if !ok || d.Action != Idle {
		return false
	}
	slot, due := DueSlot(sched, st.DrillSlot, now, db.CatchUp)
	if !due {
		return false
	}
	if reason, held := Hold(st); held {
		if st.Restore == nil || st.Restore.ID != DrillID(slot) {
			eff.note("drill of slot %s waits: %s", slot.Format(time.RFC3339), reason)
		}
		return false
	}
	run := state.RestoreRun{ID: DrillID(slot), Drill: true, Target: db.Drill.Target, StartedAt: now, LeaseUntil: now.Add(db.Lease)}
	st.Restore, st.DrillSlot = &run, slot
	if pulled(db) {
		st.Restore.Requested = true // the state is the instruction: the host agent pulls it
	} else {
		req := DrillRequest(db, run)
		eff.StartRestore = &req
	}
	eff.note("drill %s: restore the newest restorable point into %s", run.ID, run.Target)
	return true
}

// pulled reports whether db's drills are pulled from the state by the runner agent on its Db2
// host (runner: host) rather than started as restore job runs through Event Notifications.
func pulled(db config.Database) bool {
	return db.Executor == config.ExecDb2CLI && db.Runner == config.RunnerHost
}

// reconcileRestore settles the restore drill in flight from its record, its lease, or its
// unconfirmed request. It reports whether st changed.
func reconcileRestore(st *state.State, db config.Database, ev *RestoreEvidence, now time.Time, eff *Effects) bool {
	run := *st.Restore
	if ev != nil && ev.ID == run.ID && ev.Unknown {
		return false
	}
	if ev != nil && ev.ID == run.ID && ev.Record != nil {
		DrillDone(st, db, *ev.Record)
		eff.note("drill %s ended: %s", run.ID, outcomeWord(ev.Record.Success))
		return true
	}
	if now.After(run.LeaseUntil) {
		DrillDone(st, db, catalog.RestoreRecord{Database: db.Name, ID: run.ID, Drill: run.Drill, StartedAt: run.StartedAt, EndedAt: now,
			Class: events.Transient, Message: "no outcome within the lease: the restore job did not record the drill"})
		eff.note("lease expired for drill %s", run.ID)
		return true
	}
	if !run.Requested && !pulled(db) && !now.Before(run.StartedAt.Add(StartGrace)) {
		req := DrillRequest(db, run)
		eff.StartRestore = &req
		eff.note("drill %s not confirmed requested: asking again", run.ID)
	}
	return false
}

// DrillDone applies a drill's record: the drill is no longer in flight, its outcome is kept,
// and a failed drill alerts (once per drill). Idempotent: a record of another restore than the
// one in flight only updates LastDrill when it is newer.
func DrillDone(st *state.State, db config.Database, rec catalog.RestoreRecord) {
	if st.Restore != nil && st.Restore.ID == rec.ID {
		st.Restore = nil
	}
	if st.LastDrill != nil && (st.LastDrill.ID == rec.ID || st.LastDrill.At.After(rec.EndedAt)) {
		return
	}
	st.LastDrill = &state.DrillOutcome{ID: rec.ID, At: rec.EndedAt, Success: rec.Success, Seconds: rec.Seconds, Code: orText(rec.Code, string(rec.Class))}
	if !rec.Success {
		st.AddAlert(db.Name+"/drill/"+rec.ID, events.Alert{Severity: events.Critical, Database: db.Name, KeyCRN: db.KeyCRN, Reason: "drill-failed",
			Message: fmt.Sprintf("restore drill %s of %s failed: the newest restorable point could not be restored: %s", rec.ID, db.Name, rec.Message)})
	}
}

// RestoreRequested records that the drill's restore.requested was accepted. It reports whether
// st changed.
func RestoreRequested(st *state.State, id string) bool {
	if st.Restore == nil || st.Restore.ID != id || st.Restore.Requested {
		return false
	}
	st.Restore.Requested = true
	return true
}

func orText(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

func outcomeWord(ok bool) string {
	if ok {
		return "restored"
	}
	return "FAILED"
}

// checkAlerts evaluates the checks the state alone answers (backup age, a window past its
// maximum) and alerts once on each critical cause, until it clears; the causes that alert on
// their own path (check.AlertsElsewhere) are left to it, and so is a stale backup while a Hold
// or failing backups explain it. It reports whether st changed.
func checkAlerts(st *state.State, db config.Database, now time.Time, eff *Effects) bool {
	res := check.Evaluate(check.Observation{DB: db, State: st, Now: now})
	// While something holds backups or they fail, stale backups are expected and alerted on
	// those paths (a window past its maximum is not held back).
	_, held := Hold(st)
	explained := held || st.ConsecutiveFailures > 0 || st.NextRetry != nil
	var causes []check.Item
	for _, it := range res.Critical() {
		if !slices.Contains(check.AlertsElsewhere, it.Name) && !(explained && it.Name == check.BackupAge) {
			causes = append(causes, it)
		}
	}
	changed := false
	kept := st.CheckAlerted[:0:0]
	for _, name := range st.CheckAlerted {
		if slices.ContainsFunc(causes, func(it check.Item) bool { return it.Name == name }) {
			kept = append(kept, name)
		} else {
			changed = true
			eff.note("check %q is no longer critical", name)
		}
	}
	for _, it := range causes {
		if slices.Contains(kept, it.Name) || len(kept) >= state.MaxCheckAlerted {
			continue
		}
		kept = append(kept, it.Name)
		changed = true
		st.AddAlert(fmt.Sprintf("%s/check/%s/%d", db.Name, strings.ReplaceAll(it.Name, " ", "-"), now.Unix()), events.Alert{Severity: events.Critical,
			Database: db.Name, KeyCRN: db.KeyCRN, Reason: "check-critical", Message: fmt.Sprintf("%s of %s is critical: %s", it.Name, db.Name, it.Message)})
		eff.note("check %q is critical: alerted", it.Name)
	}
	if len(kept) == 0 {
		kept = nil
	}
	st.CheckAlerted = kept
	return changed
}
