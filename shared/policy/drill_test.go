package policy

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/state"
)

func drillDB(t *testing.T) config.Database {
	t.Helper()
	f, err := config.Load([]byte(fleetYAML + "    backup_dir: /b\n    drill: {cron: \"0 5 * * *\", target: SCRATCH, probe: \"SELECT 1 FROM SYSIBM.SYSDUMMY1\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	return f.Databases[0]
}

// TestDrill: a drill due on an idle database starts (restore.requested into the scratch
// database, probed and dropped) and holds backups until its record arrives; it waits out a
// rotation window and never starts beside a backup; a failed drill alerts once; a drill
// without an outcome by its lease fails.
func TestDrill(t *testing.T) {
	db := drillDB(t)
	db.Lease = 24 * time.Hour
	mon0500 := time.Date(2026, 11, 23, 5, 0, 0, 0, time.UTC)
	idle := func() *state.State {
		st := state.New("db1", db.KeyCRN)
		st.Key.Version = "v1"
		st.LastSuccess = &state.Outcome{RunID: "r", Type: events.Full, At: mon0200}
		st.Slots = map[events.BackupType]time.Time{events.Full: mon0200, events.Incremental: mon0200, events.Delta: mon0200.Add(-12 * time.Hour)}
		return st
	}

	st := idle()
	st.Window = &state.RotationWindow{ToVersion: "v2", OpenedAt: mon0500, MinCloseAt: mon0500, MaxCloseAt: mon0500.Add(4 * time.Hour)}
	r := Tick(st, db, TickInput{Now: mon0500.Add(time.Minute)})
	if r.StartRestore != nil || st.Restore != nil || !strings.Contains(strings.Join(r.Notes, ";"), "waits: rotation window") {
		t.Fatalf("drill during a window: %+v %+v", r.StartRestore, r.Notes)
	}

	st = idle()
	r = Tick(st, db, TickInput{Now: mon0500.Add(time.Minute)})
	req := r.StartRestore
	if req == nil || st.Restore == nil || req.ID != "drill-20261123T050000Z" || req.Into != "SCRATCH" || !req.Drop || !req.Drill || !req.Replace ||
		req.Probe == "" || !st.DrillSlot.Equal(mon0500) || !r.Changed {
		t.Fatalf("drill due: %+v state %+v", req, st.Restore)
	}
	if reason, held := Hold(st); !held || !strings.HasPrefix(reason, ReasonRestoreInFlight) {
		t.Fatalf("a drill in flight holds backups: %q %v", reason, held)
	}
	// The 14:00 delta waits for the drill.
	r = Tick(st, db, TickInput{Now: mon1405})
	if r.Decision.Action != Defer || r.Start != nil || !strings.Contains(r.Decision.Reason, ReasonRestoreInFlight) {
		t.Fatalf("delta beside the drill: %+v", r.Decision)
	}
	// Not requested yet: asked again after the grace.
	if r.StartRestore == nil {
		t.Fatal("an unconfirmed drill request is not sent again")
	}
	if !RestoreRequested(st, req.ID) || RestoreRequested(st, req.ID) {
		t.Fatal("RestoreRequested is not idempotent")
	}
	rec := catalog.RestoreRecord{Database: "db1", ID: req.ID, Drill: true, StartedAt: mon0500, EndedAt: mon0500.Add(time.Minute), Seconds: 42,
		Message: "restore of db1 failed (configuration): SQL4970N", Code: "SQL4970N"}
	r = Tick(st, db, TickInput{Now: mon1405, Restore: &RestoreEvidence{ID: req.ID, Record: &rec}})
	if st.Restore != nil || st.LastDrill == nil || st.LastDrill.Success || st.LastDrill.Code != "SQL4970N" || len(st.PendingAlerts) != 1 ||
		st.PendingAlerts[0].Alert.Reason != "drill-failed" || r.Start == nil {
		t.Fatalf("failed drill: last %+v alerts %+v start %+v", st.LastDrill, st.PendingAlerts, r.Start)
	}
	DrillDone(st, db, rec) // the same record again
	if len(st.PendingAlerts) != 1 {
		t.Fatalf("a drill alerts twice: %+v", st.PendingAlerts)
	}

	// No backup is due at 05:00 on Tuesday but a run is in flight: the drill waits for it.
	st = idle()
	st.Run = &state.Run{ID: "run-1", LeaseUntil: mon0500.Add(48 * time.Hour), StartedAt: mon0500, Started: true}
	if r := Tick(st, db, TickInput{Now: mon0500.Add(time.Minute)}); r.StartRestore != nil || st.Restore != nil {
		t.Fatalf("drill beside a backup run: %+v", r.StartRestore)
	}

	// A drill with no record by its lease fails.
	st = idle()
	Tick(st, db, TickInput{Now: mon0500.Add(time.Minute)})
	RestoreRequested(st, st.Restore.ID)
	Tick(st, db, TickInput{Now: mon0500.Add(db.Lease + 2*time.Minute), Restore: &RestoreEvidence{ID: st.Restore.ID}})
	if st.Restore != nil || st.LastDrill == nil || st.LastDrill.Success || st.LastDrill.Code != "transient" {
		t.Fatalf("lost drill: %+v", st.LastDrill)
	}
}

// TestCheckAlertsOncePerCause: a backup older than twice max_age is critical: the tick alerts
// once, not again while it lasts, and again after it cleared and came back.
func TestCheckAlertsOncePerCause(t *testing.T) {
	db := testDB(t)
	now := mon0205.Add(time.Minute)
	st := state.New("db1", db.KeyCRN)
	st.Key.Version = "v1"
	st.Slots = map[events.BackupType]time.Time{events.Full: now, events.Incremental: now, events.Delta: now}
	st.LastSuccess = &state.Outcome{RunID: "r", Type: events.Full, At: now.Add(-100 * time.Hour)}
	r := Tick(st, db, TickInput{Now: now})
	if len(st.PendingAlerts) != 1 || st.PendingAlerts[0].Alert.Reason != "check-critical" || !slices.Equal(st.CheckAlerted, []string{"backup age"}) || !r.Changed {
		t.Fatalf("first tick: alerts %+v alerted %v", st.PendingAlerts, st.CheckAlerted)
	}
	st.PendingAlerts = nil // sent
	Tick(st, db, TickInput{Now: now.Add(15 * time.Minute)})
	if len(st.PendingAlerts) != 0 {
		t.Fatalf("alerted twice: %+v", st.PendingAlerts)
	}
	st.LastSuccess.At = now
	Tick(st, db, TickInput{Now: now.Add(30 * time.Minute)})
	if st.CheckAlerted != nil || len(st.PendingAlerts) != 0 {
		t.Fatalf("cleared: %v %+v", st.CheckAlerted, st.PendingAlerts)
	}
}
