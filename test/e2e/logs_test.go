package e2e

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/check"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/logchain"
	"github.com/keyguard-dev/keyguard/test/fakedb2"
	"github.com/keyguard-dev/keyguard/test/s3server"
	"github.com/keyguard-dev/keyguard/test/stack"
)

// logsStack starts the local stack with database payroll (alias PAYROLL, db2cli, online) under
// the given schedules and extra policy lines, its archive a real DISK directory
// (LOGARCHMETH1 DISK:<dir>/), and the fake db2 state s (Database, LogArchMeth1, TrackMod,
// NextTimestamp filled in). It returns the stack, the fake's state file and the archive
// directory of PAYROLL's log chain 0. The stack starts at 01:55.
func logsStack(t *testing.T, schedules, extra string, s fakedb2.State) (*stack.Stack, context.Context, string, string) {
	t.Helper()
	backupDir, archive := t.TempDir(), t.TempDir()
	fleetYAML := []byte(`version: 1
databases:
  - name: payroll
    instance: db2inst1@db2host
    executor: db2cli
    backup_dir: ` + backupDir + `
    key_crn: ` + key + `
    schedules: ` + schedules + `
` + extra)
	fleet, err := config.Load(fleetYAML)
	if err != nil {
		t.Fatal(err)
	}
	stateFile := filepath.Join(t.TempDir(), "db2.json")
	s.Database, s.LogArchMeth1, s.TrackMod, s.ImageBytes, s.NextTimestamp = "PAYROLL", "DISK:"+archive+"/", true, 1<<20, "20261124020000"
	fakedb2.WriteState(t, stateFile, s)
	bin, err := s3server.FindBinary()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	st, err := stack.Start(ctx, stack.Options{Versitygw: bin, Fleet: fleet, FleetYAML: fleetYAML, Start: time.Date(2026, 11, 24, 1, 55, 0, 0, time.UTC),
		Db2CLI: &stack.Db2CLI{FakeBin: fakedb2.Build(t), StateFile: stateFile}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st, ctx, stateFile, filepath.Join(archive, "db2inst1", "PAYROLL", "NODE0000", "LOGSTREAM0000", "C0000000")
}

func evaluate(t *testing.T, ctx context.Context, st *stack.Stack, name string) check.Item {
	t.Helper()
	obs, err := check.Gather(ctx, check.Sources{Objects: st.Objects}, st.Fleet.Databases, st.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range check.Evaluate(obs[0]).Items {
		if it.Name == name {
			return it
		}
	}
	t.Fatalf("no %q check", name)
	return check.Item{}
}

// TestArchivedLogsPointInTimeAndGap (issue item 1): each image records the log range Db2's
// history gives it; a restore to 02:45 replays the 02:30 write from archived log S0000001.LOG
// (not carried by the 02:00 image) and succeeds; once that file is removed from the archive,
// the next backup's log chain check reports the gap and keyguard check says CRITICAL, and the
// same restore is refused before Db2 runs, naming the missing file.
func TestArchivedLogsPointInTimeAndGap(t *testing.T) {
	st, ctx, db2, archive := logsStack(t, `{full: "0 2 * * *", incremental: "0 3,4 * * *"}`, "", fakedb2.State{})
	write(t, db2, at(1, 58), 5)
	step(t, ctx, st, 5*time.Minute) // 02:00 full, closes S0000000.LOG
	write(t, db2, at(2, 30), 3)     // into S0000001.LOG
	step(t, ctx, st, time.Hour)     // 03:00 incremental, archives S0000001.LOG
	write(t, db2, at(3, 30), 4)

	entries, err := catalog.New(st.Objects).List(ctx, "payroll")
	if err != nil || len(entries) != 2 {
		t.Fatalf("catalog: %v %v", entries, err)
	}
	if entries[0].LogRange != (catalog.LogRange{First: "S0000000.LOG", Last: "S0000000.LOG"}) || entries[1].LogRange.First != "S0000001.LOG" {
		t.Fatalf("log ranges %+v / %+v", entries[0].LogRange, entries[1].LogRange)
	}
	if it := evaluate(t, ctx, st, check.ArchivedLogs); it.Level != check.OK || !strings.Contains(it.Message, "newest archived log S0000001.LOG") {
		t.Fatalf("check before the loss: %+v", it)
	}

	rec, err := st.Restore(ctx, "pit-ok", events.RestoreRequested{Database: "payroll", RequestedBy: "e2e", Into: "SCRATCH", PointInTime: at(2, 45),
		Probe: "SELECT COUNT(*) FROM APP.ORDERS"})
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Success || rec.ProbeResult != "8" || !strings.Contains(rec.Message, "archived logs S0000001.LOG to S0000001.LOG present") {
		t.Fatalf("restore to 02:45 through archived S0000001.LOG: %+v", rec)
	}

	if err := os.Remove(filepath.Join(archive, "S0000001.LOG")); err != nil {
		t.Fatal(err)
	}
	step(t, ctx, st, time.Hour) // 04:00 incremental: its log chain check finds the gap
	it := evaluate(t, ctx, st, check.ArchivedLogs)
	if it.Level != check.Critical || !strings.Contains(it.Message, "S0000001.LOG missing") {
		t.Fatalf("check after the loss: %+v", it)
	}
	body, _, err := st.Objects.Get(ctx, logchain.ReportKey("payroll"))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := logchain.Decode(body)
	if err != nil || !rep.Broken || rep.Deleter != "keyguard" {
		t.Fatalf("report: %+v %v", rep, err)
	}
	t.Logf("log chain report after the loss: %s", rep.Summary())

	calls := len(fakedb2.ReadState(t, db2).Calls)
	rec, err = st.Restore(ctx, "pit-gap", events.RestoreRequested{Database: "payroll", RequestedBy: "e2e", Into: "SCRATCH2", PointInTime: at(2, 45)})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Success || !strings.Contains(rec.Message, "S0000001.LOG is missing from the archive") || rec.Code != "" {
		t.Fatalf("restore across the removed log: %+v", rec)
	}
	for _, c := range fakedb2.ReadState(t, db2).Calls[calls:] {
		if strings.HasPrefix(c, "db2 restore") || strings.HasPrefix(c, "db2 rollforward") {
			t.Fatalf("Db2 ran %q for a refused restore", c)
		}
	}
}

// TestPartitionedBackupAndRestoreOrder (issue item 2): a two-partition database whose catalog
// partition is 1 is backed up in one single-system-view backup (one timestamp, one verified
// image per partition, each cataloged with its partition number); the restore runs on
// partition 1 first, then 0, then rolls forward on all partitions, and the fake, which refuses
// any other order, restores it.
func TestPartitionedBackupAndRestoreOrder(t *testing.T) {
	st, ctx, db2, _ := logsStack(t, `{full: "0 2 * * *"}`, "    partitioned: true\n", fakedb2.State{Partitions: []int{0, 1}, CatalogPartition: 1, CurrentPartition: 1})
	write(t, db2, at(1, 58), 5)
	step(t, ctx, st, 5*time.Minute) // 02:00 full on all partitions
	entries, err := catalog.New(st.Objects).List(ctx, "payroll")
	if err != nil || len(entries) != 1 {
		t.Fatalf("catalog: %v %v", entries, err)
	}
	e := entries[0]
	if len(e.Images) != 2 || len(e.Partitions) != 2 || !e.Partitions[1].Catalog || e.Partitions[0].Catalog || !e.Verification.Verified ||
		!strings.Contains(e.Partitions[0].Image, "DBPART000") || !strings.Contains(e.Partitions[1].Image, "DBPART001") {
		t.Fatalf("entry: %+v", e)
	}
	if !slices.ContainsFunc(fakedb2.ReadState(t, db2).Calls, func(c string) bool {
		return strings.HasPrefix(c, "db2 backup database PAYROLL on all dbpartitionnums online")
	}) {
		t.Fatal("no single-system-view backup")
	}
	write(t, db2, at(2, 30), 3)
	changeDb2(t, db2, func(s *fakedb2.State) { s.CurrentPartition = 0 })
	rec, err := st.Restore(ctx, "dpf", events.RestoreRequested{Database: "payroll", RequestedBy: "e2e", Probe: "SELECT COUNT(*) FROM APP.ORDERS"})
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Success || rec.ProbeResult != "8" || !strings.Contains(rec.Message, "partitions [1 0] (catalog partition first)") {
		t.Fatalf("restore: %+v", rec)
	}
	s := fakedb2.ReadState(t, db2)
	var order []string
	for _, c := range s.Calls {
		if strings.HasPrefix(c, "db2 set client connect_dbpartitionnum") || strings.HasPrefix(c, "db2 restore") || strings.HasPrefix(c, "db2 rollforward") {
			order = append(order, c)
		}
	}
	if len(order) != 5 || order[0] != "db2 set client connect_dbpartitionnum 1" || order[2] != "db2 set client connect_dbpartitionnum 0" ||
		!strings.Contains(order[4], "on all dbpartitionnums and stop") {
		t.Fatalf("restore order:\n%s", strings.Join(order, "\n"))
	}
	if !slices.Equal(s.RestoredPartitions, []int{1, 0}) {
		t.Fatalf("restored partitions %v", s.RestoredPartitions)
	}
}

// TestTablespaceChainsBesideDatabaseChains (issue item 3): a table space schedule runs beside
// the database's full and incremental schedules (at 01:30, before the day's database full: Db2
// builds a database incremental on the newest full of any object, so a table space full taken
// between a database full and its incremental would make the runner take a full instead);
// after four days retention (keep_fulls 2) kept two database chains (full and incremental) and
// two table space fulls, each line on its own; a restore of TS_ORDERS comes from the newest
// table space image, online, rolled forward to the end of the logs.
func TestTablespaceChainsBesideDatabaseChains(t *testing.T) {
	st, ctx, db2, _ := logsStack(t, `{full: "0 2 * * *", incremental: "0 3 * * *", tablespace: "30 1 * * *"}`,
		"    tablespaces: [TS_ORDERS, TS_LINES]\n    retention: {keep_fulls: 2, keep_days: 0}\n", fakedb2.State{})
	write(t, db2, at(1, 58), 5)
	step(t, ctx, st, 5*time.Minute) // 02:00 full
	for range 4 * 24 * 2 {          // four days, half-hour steps
		step(t, ctx, st, 30*time.Minute)
	}
	entries, err := catalog.New(st.Objects).List(ctx, "payroll")
	if err != nil {
		t.Fatal(err)
	}
	var dbFulls, dbIncs, tsFulls []catalog.Entry
	for _, e := range entries {
		switch {
		case e.Scope == catalog.ScopeTablespace && e.Type == events.Full:
			tsFulls = append(tsFulls, e)
		case e.Type == events.Full:
			dbFulls = append(dbFulls, e)
		default:
			dbIncs = append(dbIncs, e)
		}
	}
	// Four days from Tuesday 01:55 end on Saturday 02:00, before its incremental.
	if len(dbFulls) != 2 || len(tsFulls) != 2 || len(dbIncs) != 1 || dbIncs[0].ParentTimestamp != dbFulls[0].ImageTimestamp {
		t.Fatalf("kept %d database fulls, %d incrementals, %d table space fulls: %v", len(dbFulls), len(dbIncs), len(tsFulls), catalogNames(entries))
	}
	if _, err := catalog.Chain(entries, dbIncs[0].ImageTimestamp); err != nil {
		t.Fatalf("the database chain is broken: %v", err)
	}
	if !slices.Equal(tsFulls[1].Tablespaces, []string{"TS_ORDERS", "TS_LINES"}) {
		t.Fatalf("table space entry %+v", tsFulls[1])
	}
	// The newest image holding TS_ORDERS is the 02:00 database full; up to 01:30, the table
	// space full.
	rec, err := st.Restore(ctx, "ts-db", events.RestoreRequested{Database: "payroll", RequestedBy: "e2e", Tablespaces: []string{"TS_ORDERS"}})
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Success || rec.Target != dbFulls[1].ImageTimestamp || !strings.Contains(rec.Message, "from database image") {
		t.Fatalf("table space restore from the database image: %+v", rec)
	}
	rec, err = st.Restore(ctx, "ts", events.RestoreRequested{Database: "payroll", RequestedBy: "e2e", Tablespaces: []string{"TS_ORDERS"}, Target: tsFulls[1].ImageTimestamp})
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Success || rec.Target != tsFulls[1].ImageTimestamp || !strings.Contains(rec.Message, "table spaces TS_ORDERS in place") {
		t.Fatalf("table space restore: %+v", rec)
	}
	s := fakedb2.ReadState(t, db2)
	last := s.Restores[len(s.Restores)-1]
	if !slices.Equal(last.Tablespaces, []string{"TS_ORDERS"}) || last.Timestamp != tsFulls[1].ImageTimestamp || last.RollForward != "END OF LOGS" || len(s.TablespacesPending) != 0 {
		t.Fatalf("fake db2 after the table space restore: %+v pending %v", last, s.TablespacesPending)
	}
	if !slices.ContainsFunc(s.Calls, func(c string) bool {
		return strings.HasPrefix(c, "db2 rollforward database PAYROLL to end of logs and stop tablespace (TS_ORDERS) online")
	}) {
		t.Fatalf("no table space roll-forward in %q", s.Calls[len(s.Calls)-6:])
	}
}

func catalogNames(es []catalog.Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Name()+"/"+string(e.Scope))
	}
	return out
}

// testLogger logs the stack's components with t.Log when KEYGUARD_E2E_LOG is set.
func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("KEYGUARD_E2E_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tlog struct{ t *testing.T }

func (l tlog) Write(p []byte) (int, error) { l.t.Log(strings.TrimSpace(string(p))); return len(p), nil }
