package policy

import (
	"fmt"
	"strings"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/state"
)

// Out is an event a handler publishes after its state write, under an id that makes it
// idempotent. Events are informational: the state and the catalog hold the truth, so a lost one
// is found again by reconciliation.
type Out struct {
	ID      string
	Payload events.Payload
}

// Effects are what a handler does after its decision is stored, in this order: cancel a lost run,
// start a run, publish events.
type Effects struct {
	// Start is a run to ask the executor for (idempotent by run id: it may be a run already asked
	// for whose start was not confirmed).
	Start *state.Run
	// StartRestore is a restore drill to ask the restore job for (restore.requested,
	// idempotent by its id).
	StartRestore *events.RestoreRequested
	// Cancel is a run to stop: its lease expired, or its start failed for good.
	Cancel *state.Run
	Send   []Out
	Notes  []string
}

func (e *Effects) note(format string, args ...any) {
	e.Notes = append(e.Notes, fmt.Sprintf(format, args...))
}

// KeyStatus is what a Key Protect poll said of the database's root key this tick.
type KeyStatus struct {
	Version   string
	State     events.KeyState
	RotatedAt time.Time
}

// RunEvidence is what was learned about a run before deciding: the outcome recorded in the
// catalog (a run record) or reported by the executor's probe; Outcome is nil when there is none.
type RunEvidence struct {
	RunID   string
	Outcome events.Payload // events.BackupCompleted or events.BackupFailed (values)
	// Recorded is true when Outcome comes from the catalog's run record.
	Recorded bool
	// Unknown is true when the catalog could not be read: the run's fate cannot be told, so it is
	// neither counted as failed at its lease nor started again.
	Unknown bool
}

// TickInput is what the scheduler observed for one database before deciding.
type TickInput struct {
	Now time.Time
	// Key is the Key Protect poll of the database's key; nil when not polled or the poll failed.
	Key *KeyStatus
	// KeyUnavailable is set when Key Protect was polled and did not answer.
	KeyUnavailable bool
	// Registrations, when Listed, are the key versions that the registrations of the database's
	// instance on its key report (Db2 re-wrapped when all report the window's version).
	Registrations []string
	Listed        bool
	// Run is the evidence about the run in flight (nil: none gathered).
	Run *RunEvidence
	// Unrestorable, when the key is destroyed and the alert is owed, is what the catalog holds
	// under that key (nil: not listed, try again next tick).
	Unrestorable *UnrestorableImages
	// Restore is the evidence about the restore drill in flight (nil: none gathered).
	Restore *RestoreEvidence
}

// TickResult is one tick's decision for one database.
type TickResult struct {
	Decision Decision
	Effects
	// Changed is false when the state needs no write.
	Changed bool
}

// Tick is the scheduler's whole decision for one database, applied to st (a copy the caller
// writes back when Changed):
//  1. a key changed in the fleet policy drops the old key's window and version;
//  2. the Key Protect poll: key state (blocks and alerts), first sighting, a rotation (opens a
//     window, announces key.rotated), the version a version-less window was waiting for;
//  3. the run in flight: its recorded or probed outcome is applied (and published); past its
//     lease with no evidence it is counted as failed, remembered as the last expired run and
//     cancelled; a run whose start was not confirmed is started again, unless a hold began
//     meanwhile (a rotation window, a key not active): then it is closed as failed and cancelled;
//  4. a rotation window closes once Db2 re-wrapped and the settle time passed, or at its maximum;
//  5. a destroyed key names the backups it made unrestorable;
//  6. the schedule: start (the run goes in flight), defer (a Hold, the backoff, or a key version
//     not yet known because Key Protect did not answer) or idle;
//  7. a restore drill in flight settled from its record or lease, and a drill due started when
//     the database is idle and nothing holds it;
//  8. the checks the state answers (package check): a critical one alerts once per cause.
//
// Whenever a run is to be started, the run whose lease expired last is cancelled again first
// (while it could still be running, MaxRunTime), in case the cancel decided at its expiry was
// lost.
//
// The decision is recorded in the state only when it differs from the last one (and a start
// stands while its run is in flight), so an idle database, or one whose run is under way, costs
// no write.
func Tick(st *state.State, db config.Database, in TickInput) TickResult {
	var r TickResult
	now := in.Now
	if st.Key.CRN != db.KeyCRN {
		r.note("root key changed in the fleet policy (was %s): its rotation window and version no longer apply", st.Key.CRN)
		st.Key = state.KeyInfo{CRN: db.KeyCRN}
		st.Window = nil
		st.NeedFull, st.NeedFullReason = true, "key changed in the fleet policy"
		if st.Run != nil {
			st.Run.Suspect = true
		}
		r.Changed = true
	}
	if in.Key != nil {
		r.Changed = observeKey(st, db, *in.Key, now, &r.Effects) || r.Changed
	}
	if st.Run != nil {
		r.Changed = reconcileRun(st, db, in.Run, now, &r.Effects) || r.Changed
	}
	if st.Restore != nil {
		r.Changed = reconcileRestore(st, db, in.Restore, now, &r.Effects) || r.Changed
	}
	if w := st.Window; w != nil {
		r.Changed = closeWindow(st, db, *w, in, &r.Effects) || r.Changed
	}
	if in.Unrestorable != nil {
		if note, ok := Unrestorable(st, db, *in.Unrestorable); ok {
			r.note("%s", note)
			r.Changed = true
		}
	}
	d := Decide(st, db, now)
	if d.Action == Start && st.Key.Version == "" && in.KeyUnavailable {
		// Every image records the key version that protects it: none starts before one is known.
		d = deferred(d, ReasonKeyVersionUnknown+" (Key Protect did not answer)")
	}
	r.Decision = d
	if d.Action == Start {
		run := NewRun(st, db, d.Type, d.Mode, d.Slot, d.Attempt, now)
		st.Run = &run
		if st.Slots == nil {
			st.Slots = map[events.BackupType]time.Time{}
		}
		for t, slot := range d.Covers {
			if slot.After(st.Slots[t]) {
				st.Slots[t] = slot
			}
		}
		if st.NextRetry != nil && (d.Retry || d.Type.Rank() <= st.NextRetry.Type.Rank()) {
			st.NextRetry = nil
		}
		r.Start = &run
		r.Changed = true
	}
	if x := st.LastExpired; r.Start != nil && r.Cancel == nil && x != nil && x.ID != r.Start.ID && now.Before(x.StartedAt.Add(MaxRunTime)) {
		// The run whose lease expired last was cancelled when it expired; a crash between that
		// decision and the cancel would leave it running beside the run starting now. Every start
		// while it could still run cancels it again first (cancelling is idempotent).
		c := *x
		r.Cancel = &c
	}
	r.Changed = drill(st, db, d, now, &r.Effects) || r.Changed
	r.Changed = checkAlerts(st, db, now, &r.Effects) || r.Changed
	last := st.LastDecision
	startKept := d.Action == Idle && st.Run != nil && last != nil && last.Action == string(Start) // the start stands while its run is in flight
	if !startKept && (last == nil || last.Action != string(d.Action) || last.Reason != d.Reason || last.Type != d.Type) {
		st.LastDecision = &state.Decision{At: now, Action: string(d.Action), Type: d.Type, Reason: d.Reason}
		r.Changed = true
	}
	return r
}

// observeKey applies a Key Protect poll. It reports whether st changed.
func observeKey(st *state.State, db config.Database, k KeyStatus, now time.Time, eff *Effects) bool {
	changed := false
	if k.State != "" && k.State != st.Key.State {
		at := now // a poll is the key's state now, even if an event claimed a later time
		if at.Before(st.Key.StateAt) {
			at = st.Key.StateAt
		}
		note, ok := KeyState(st, db, k.State, at)
		if ok {
			eff.note("%s", note)
			changed = true
		}
	}
	v := k.Version
	switch {
	case v == "" || v == st.Key.Version:
	case st.Key.Version == "" && st.Window == nil:
		st.Key.Version, st.Key.RotatedAt = v, k.RotatedAt
		eff.note("key version %s (first sighting)", v)
		changed = true
	default:
		kr := events.KeyRotated{KeyCRN: db.KeyCRN, OldVersion: st.Key.Version, NewVersion: v, RotatedAt: k.RotatedAt, DetectedBy: "poll"}
		if kr.RotatedAt.IsZero() {
			kr.RotatedAt = now
		}
		if kr.OldVersion == v {
			kr.OldVersion = ""
		}
		note, ok := Rotated(st, db, kr, now)
		if ok {
			eff.note("%s", note)
			eff.Send = append(eff.Send, Out{ID: db.KeyCRN + "/rotated/" + v, Payload: kr})
			changed = true
		}
	}
	return changed
}

// reconcileRun settles the run in flight from evidence, its lease, or its unconfirmed start.
func reconcileRun(st *state.State, db config.Database, ev *RunEvidence, now time.Time, eff *Effects) bool {
	run := *st.Run
	if ev != nil && ev.RunID == run.ID && ev.Unknown {
		eff.note("the catalog could not be read: %s is left as it is", run.ID)
		return false
	}
	if ev != nil && ev.RunID == run.ID && ev.Outcome != nil {
		from := "probe"
		if ev.Recorded {
			from = "catalog"
		}
		var note string
		switch o := ev.Outcome.(type) {
		case events.BackupCompleted:
			note, _ = Completed(st, db, o, now)
		case events.BackupFailed:
			note, _ = Failed(st, db, o, now)
		default:
			return false
		}
		eff.note("outcome of %s found in the %s: %s", run.ID, from, note)
		eff.Send = append(eff.Send, Out{ID: run.ID + "/outcome", Payload: ev.Outcome})
		return true
	}
	if now.After(run.LeaseUntil) {
		ApplyFailure(st, db, run, events.Transient, "no outcome within the lease", now)
		st.LastExpired = &run
		eff.Cancel = &run
		eff.note("lease expired for %s", run.ID)
		return true
	}
	if !run.Started && !now.Before(run.StartedAt.Add(StartGrace)) {
		if reason, held := Hold(st); held && !strings.HasPrefix(reason, ReasonRunInFlight) {
			// A hold began before the start was confirmed: asking again would back up inside it
			// (Db2 re-wrapping its keys, or a key not active). The run is closed as failed, and
			// cancelled in case an ambiguous start did create it; its retry waits for the hold.
			// It is remembered as the last expired run: should the cancel be lost and the run
			// have begun after all, its late outcome is applied (and the cancel asked again).
			class := events.Transient
			if st.Window != nil {
				class = events.Rotation
			}
			ApplyFailure(st, db, run, class, "start not confirmed before a hold began: "+reason, now)
			st.LastExpired = &run
			eff.Cancel = &run
			eff.note("start of %s not confirmed before a hold began (%s): closed as failed", run.ID, reason)
			return true
		}
		eff.Start = &run
		eff.note("start of %s not confirmed: asking the executor again", run.ID)
	}
	return false
}

// MaxRunTime bounds how long a run can go on once started: Code Engine, the executor that can
// cancel runs, ends a job run after at most 86400 s.
const MaxRunTime = 24 * time.Hour

// StartGrace is how long after a run is put in flight its start is left to the tick that took
// it; after that, a start still unconfirmed is asked for again (a crash, an ambiguous error).
const StartGrace = time.Minute

// closeWindow closes the rotation window w when it may close.
func closeWindow(st *state.State, db config.Database, w state.RotationWindow, in TickInput, eff *Effects) bool {
	rewrapped := w.ToVersion != "" && in.Listed && len(in.Registrations) > 0
	for _, v := range in.Registrations {
		rewrapped = rewrapped && v == w.ToVersion
	}
	closeNow, confirmed := CloseWindow(w, rewrapped, in.Now)
	if !closeNow {
		return false
	}
	st.Window = nil
	version := w.ToVersion
	if version != "" {
		st.Key.Version, st.Key.RotatedAt = version, w.RotatedAt
	} else {
		version = "(not known)"
	}
	st.NeedFull, st.NeedFullReason = true, "first backup under key version "+version
	reason := "re-wrap confirmed by every registration"
	if !confirmed {
		reason = "maximum window reached without re-wrap confirmation"
		st.AddAlert(db.Name+"/window/"+version, events.Alert{Severity: events.Warning, Database: db.Name, KeyCRN: db.KeyCRN,
			Reason: "rewrap-unconfirmed", Message: fmt.Sprintf("rotation window for key version %s closed after %s without confirmation that Db2 re-wrapped its keys",
				version, in.Now.Sub(w.OpenedAt).Round(time.Minute))})
	}
	eff.Send = append(eff.Send, Out{ID: db.Name + "/settled/" + version, Payload: events.RotationSettled{Database: db.Name, KeyCRN: db.KeyCRN,
		KeyVersion: version, OpenedAt: w.OpenedAt, ClosedAt: in.Now, Confirmed: confirmed, Reason: reason}})
	eff.note("rotation window closed: %s", reason)
	return true
}
