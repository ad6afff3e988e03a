package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/state"
	"github.com/keyguard-dev/keyguard/test/fakedb2"
	"github.com/keyguard-dev/keyguard/test/s3server"
	"github.com/keyguard-dev/keyguard/test/stack"
)

// db2cliStack starts the local stack with one self-managed database, payroll (alias PAYROLL),
// backed up online by the real runner against the fake db2 (a full at 02:00, an incremental at
// 03:00) and restored by the real restore job. The stack starts at 01:55.
func db2cliStack(t *testing.T, extra string) (*stack.Stack, context.Context, string) {
	st, ctx, state, _ := db2cliStackFleet(t, extra)
	return st, ctx, state
}

// db2cliStackFleet is db2cliStack, which also writes the fleet policy to a file for the
// operator command and returns its path.
func db2cliStackFleet(t *testing.T, extra string) (*stack.Stack, context.Context, string, string) {
	t.Helper()
	backupDir := t.TempDir()
	fleetYAML := []byte(`version: 1
databases:
  - name: payroll
    instance: db2inst1@db2host
    executor: db2cli
    backup_dir: ` + backupDir + `
    key_crn: ` + key + `
    schedules: {full: "0 2 * * *", incremental: "0 3 * * *"}
` + extra)
	fleet, err := config.Load(fleetYAML)
	if err != nil {
		t.Fatal(err)
	}
	stateFile := filepath.Join(t.TempDir(), "db2.json")
	fakedb2.WriteState(t, stateFile, fakedb2.State{Database: "PAYROLL", LogArchMeth1: "DISK:/db2/archive/", TrackMod: true,
		ImageBytes: 1 << 20, NextTimestamp: "20261124020000"})
	bin, err := s3server.FindBinary()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	st, err := stack.Start(ctx, stack.Options{Versitygw: bin, Fleet: fleet, FleetYAML: fleetYAML, Start: time.Date(2026, 11, 24, 1, 55, 0, 0, time.UTC),
		Db2CLI: &stack.Db2CLI{FakeBin: fakedb2.Build(t), StateFile: stateFile}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	fleetFile := filepath.Join(t.TempDir(), "fleet.yaml")
	if err := os.WriteFile(fleetFile, fleetYAML, 0o600); err != nil {
		t.Fatal(err)
	}
	return st, ctx, stateFile, fleetFile
}

func at(h, m int) time.Time { return time.Date(2026, 11, 24, h, m, 0, 0, time.UTC) }

func write(t *testing.T, state string, when time.Time, rows int64) {
	t.Helper()
	if err := fakedb2.Write(state, when, rows); err != nil {
		t.Fatal(err)
	}
}

func changeDb2(t *testing.T, state string, f func(*fakedb2.State)) {
	t.Helper()
	s := fakedb2.ReadState(t, state)
	f(&s)
	fakedb2.WriteState(t, state, s)
}

// TestRestorePointInTimeIntoNewDatabase: a full at 02:00, writes, an incremental at 03:00,
// writes; a restore to 02:45 into a new database SCRATCH holds exactly the rows written by then
// (the full rolled forward through the 02:30 write, not the 03:30 one); times outside the
// restorable range are refused with the range named; a roll-forward whose log is missing from
// the archive fails with SQL4970N; a database of the target's name is not replaced unless asked.
func TestRestorePointInTimeIntoNewDatabase(t *testing.T) {
	st, ctx, db2 := db2cliStack(t, "")
	write(t, db2, at(1, 58), 5)
	step(t, ctx, st, 5*time.Minute) // 02:00 full
	write(t, db2, at(2, 30), 3)
	step(t, ctx, st, time.Hour) // 03:00 incremental
	write(t, db2, at(3, 30), 4)
	entries, err := catalog.New(st.Objects).List(ctx, "payroll")
	if err != nil || len(entries) != 2 || entries[1].Type != events.Incremental {
		t.Fatalf("catalog: %+v %v", entries, err)
	}
	full := entries[0]

	probe := "SELECT COUNT(*) FROM APP.ORDERS"
	rec, err := st.Restore(ctx, "pit-1", events.RestoreRequested{Database: "payroll", RequestedBy: "e2e", Into: "SCRATCH", PointInTime: at(2, 45), Probe: probe})
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Success || rec.ProbeResult != "8" || rec.Target != full.ImageTimestamp || !slices.Equal(rec.Images, []string{full.Name()}) || rec.Seconds <= 0 || rec.Into != "SCRATCH" {
		t.Fatalf("restore to 02:45: %+v", rec)
	}
	t.Logf("restore to a point in time into a new database: %.3fs (%s)", rec.Seconds, rec.Message)
	s := fakedb2.ReadState(t, db2)
	if len(s.Copies) != 1 || s.Copies[0].Name != "SCRATCH" || s.Copies[0].Rows != 8 || s.Copies[0].RollforwardPending || s.Rows != 12 {
		t.Fatalf("fake db2 after the restore: copies %+v, own rows %d", s.Copies, s.Rows)
	}
	if !slices.ContainsFunc(s.Calls, func(c string) bool {
		return strings.HasPrefix(c, "db2 rollforward database SCRATCH to 2026-11-24-02.45.00.000000 using utc time and stop overflow log path (")
	}) {
		t.Fatalf("no point-in-time roll-forward in %q", s.Calls)
	}
	done := st.EN.NotificationsOfType(events.TypeRestoreCompleted)
	if len(done) != 1 {
		t.Fatalf("restore.completed notifications: %d", len(done))
	}

	// Outside the range: before the end of the oldest image, after the newest archived log.
	for i, pit := range []time.Time{at(1, 30), at(4, 30)} {
		rec, err := st.Restore(ctx, "pit-out-"+string(rune('a'+i)), events.RestoreRequested{Database: "payroll", RequestedBy: "e2e", Into: "SCRATCH2", PointInTime: pit})
		if err != nil {
			t.Fatal(err)
		}
		if rec.Success || rec.Class != events.Permanent || !strings.Contains(rec.Message, "outside the restorable range") ||
			!strings.Contains(rec.Message, "2026-11-24T02:00:00Z to 2026-11-24T03:30:00Z") {
			t.Fatalf("restore to %s: %+v", pit, rec)
		}
	}

	// The log of the 02:30 write is lost from the archive, and no image carries it.
	changeDb2(t, db2, func(s *fakedb2.State) { s.MissingLogs = []string{fakedb2.LogName(1)} })
	rec, err = st.Restore(ctx, "pit-2", events.RestoreRequested{Database: "payroll", RequestedBy: "e2e", Into: "SCRATCH2", PointInTime: at(2, 45)})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Success || rec.Code != "SQL4970N" || rec.Class != events.Configuration || !strings.Contains(rec.Message, "S0000001.LOG") {
		t.Fatalf("restore with a missing log: %+v", rec)
	}

	// SCRATCH exists: not replaced unless asked.
	changeDb2(t, db2, func(s *fakedb2.State) { s.MissingLogs = nil })
	rec, err = st.Restore(ctx, "into-existing", events.RestoreRequested{Database: "payroll", RequestedBy: "e2e", Into: "SCRATCH"})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Success || !strings.Contains(rec.Message, "database SCRATCH exists") {
		t.Fatalf("restore into an existing database: %+v", rec)
	}
	rec, err = st.Restore(ctx, "into-existing-2", events.RestoreRequested{Database: "payroll", RequestedBy: "e2e", Into: "SCRATCH", Replace: true, Probe: probe})
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Success || rec.ProbeResult != "12" {
		t.Fatalf("restore replacing SCRATCH to the end of logs: %+v", rec)
	}
}

// TestRestoreInPlaceProcedure: connected applications refuse an in-place restore unless it is
// forced (QUIESCE ... FORCE CONNECTIONS); an incremental restore that fails part way is aborted
// (RESTORE ... INCREMENTAL ABORT) and reported with its SQL code; WITHOUT ROLLING FORWARD of an
// online image is refused before Db2 runs.
func TestRestoreInPlaceProcedure(t *testing.T) {
	st, ctx, db2 := db2cliStack(t, "")
	write(t, db2, at(1, 58), 5)
	step(t, ctx, st, 5*time.Minute)
	write(t, db2, at(2, 30), 3)
	step(t, ctx, st, time.Hour)
	changeDb2(t, db2, func(s *fakedb2.State) { s.Applications = 2 })

	rec, err := st.Restore(ctx, "in-place-1", events.RestoreRequested{Database: "payroll", RequestedBy: "e2e"})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Success || !strings.Contains(rec.Message, "2 application(s) are connected to PAYROLL") || !strings.Contains(rec.Message, "ask with force") {
		t.Fatalf("in place with applications: %+v", rec)
	}
	if s := fakedb2.ReadState(t, db2); len(s.Restores) != 0 || s.Applications != 2 {
		t.Fatalf("a refused restore changed the database: %+v", s.Restores)
	}

	changeDb2(t, db2, func(s *fakedb2.State) { s.Inject = []fakedb2.Fault{fakedb2.FaultRestoreMedia} })
	rec, err = st.Restore(ctx, "in-place-2", events.RestoreRequested{Database: "payroll", RequestedBy: "e2e", Force: true})
	if err != nil {
		t.Fatal(err)
	}
	s := fakedb2.ReadState(t, db2)
	if rec.Success || rec.Code != "SQL2062N" || !strings.Contains(rec.Message, "ABORT cleaned up") || s.RestorePending ||
		!slices.Contains(s.Calls, "db2 restore database PAYROLL incremental abort") || !slices.Contains(s.Calls, "db2 quiesce database immediate force connections") {
		t.Fatalf("failed incremental restore: %+v\ncalls %q", rec, s.Calls)
	}

	changeDb2(t, db2, func(s *fakedb2.State) { s.Inject = nil })
	rec, err = st.Restore(ctx, "in-place-3", events.RestoreRequested{Database: "payroll", RequestedBy: "e2e", WithoutRollForward: true})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Success || !strings.Contains(rec.Message, "WITHOUT ROLLING FORWARD restores an offline image") {
		t.Fatalf("without rolling forward, online image: %+v", rec)
	}
	rec, err = st.Restore(ctx, "in-place-4", events.RestoreRequested{Database: "payroll", RequestedBy: "e2e", Force: true, Probe: "SELECT COUNT(*) FROM APP.ORDERS"})
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Success || rec.ProbeResult != "8" {
		t.Fatalf("in place, forced: %+v", rec)
	}
	t.Logf("restore in place of a full and an incremental, rolled forward to the end of logs: %.3fs", rec.Seconds)
}

// TestScheduledDrill: the fleet policy's drill block makes the scheduler, at 04:00 when no
// backup is due, ask the restore job to restore the newest restorable point into the scratch
// database, probe it and drop it; the drill's record (with its measured restore time) settles it
// on the next tick, and holds backups meanwhile. The next day's drill, whose logs are gone from
// the archive, fails and alerts.
func TestScheduledDrill(t *testing.T) {
	st, ctx, db2 := db2cliStack(t, "    drill: {cron: \"0 4 * * *\", target: PAYDRILL, probe: \"SELECT COUNT(*) FROM APP.ORDERS\"}\n")
	write(t, db2, at(1, 58), 5)
	step(t, ctx, st, 5*time.Minute) // 02:00 full
	write(t, db2, at(2, 30), 3)
	step(t, ctx, st, time.Hour) // 03:00 incremental
	step(t, ctx, st, time.Hour) // 04:00: the drill
	s := mustStateOf(t, ctx, st, "payroll")
	if s.LastDrill != nil || s.Restore == nil || !s.Restore.Requested || s.Restore.ID != "drill-20261124T040000Z" {
		t.Fatalf("at 04:00: restore %+v last drill %+v", s.Restore, s.LastDrill)
	}
	rec, err := catalog.New(st.Objects).GetRestore(ctx, "payroll", s.Restore.ID)
	if err != nil || !rec.Success || rec.Into != "PAYDRILL" || !rec.Drill || rec.ProbeResult != "8" || rec.Seconds <= 0 {
		t.Fatalf("drill record: %+v %v", rec, err)
	}
	f := fakedb2.ReadState(t, db2)
	if len(f.Copies) != 0 || !slices.Contains(f.Calls, "db2 drop database PAYDRILL") {
		t.Fatalf("the scratch database was not dropped: %+v", f.Copies)
	}
	step(t, ctx, st, 15*time.Minute) // the record settles the drill
	s = mustStateOf(t, ctx, st, "payroll")
	if s.Restore != nil || s.LastDrill == nil || !s.LastDrill.Success || s.LastDrill.Seconds != rec.Seconds {
		t.Fatalf("after the drill: restore %+v last drill %+v", s.Restore, s.LastDrill)
	}
	t.Logf("drill: measured restore time (RTO) %.3fs: %s", rec.Seconds, rec.Message)

	// The next day's drill cannot roll forward to the end of the logs: the log file holding the
	// write after Wednesday's full (03:00, which covers the 02:00 full and 03:00 incremental
	// slots) is gone from the archive, and no image carries it.
	write(t, db2, at(23, 0), 2)
	step(t, ctx, st, 22*time.Hour+45*time.Minute) // Wednesday 03:00
	write(t, db2, time.Date(2026, 11, 25, 3, 30, 0, 0, time.UTC), 1)
	changeDb2(t, db2, func(s *fakedb2.State) { s.MissingLogs = []string{fakedb2.LogName(s.LogSeq)} })
	step(t, ctx, st, time.Hour)      // 04:00 drill
	step(t, ctx, st, 15*time.Minute) // settled
	s = mustStateOf(t, ctx, st, "payroll")
	if s.LastDrill == nil || s.LastDrill.ID != "drill-20261125T040000Z" || s.LastDrill.Success || s.LastDrill.Code != "SQL4970N" {
		t.Fatalf("second drill: %+v", s.LastDrill)
	}
	var alerted bool
	for _, n := range st.EN.NotificationsOfType(events.TypeAlert) {
		alerted = alerted || strings.Contains(string(n.Data), `"drill-failed"`)
	}
	if !alerted || len(s.PendingAlerts) != 0 {
		t.Fatalf("the failed drill did not alert (pending %+v)", s.PendingAlerts)
	}
}

func mustStateOf(t *testing.T, ctx context.Context, st *stack.Stack, db string) *state.State {
	t.Helper()
	s, err := st.State(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
