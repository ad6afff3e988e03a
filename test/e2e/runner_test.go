package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/test/fakedb2"
	"github.com/keyguard-dev/keyguard/test/s3server"
	"github.com/keyguard-dev/keyguard/test/stack"
)

// TestTickRunsRunnerJobProcessEndToEnd: tick -> scheduler -> runner job process -> fake db2 ->
// image in versitygw with the SHA-256 Db2's image has -> catalog entry -> backup.completed
// through Event Notifications -> completion closes the run in the state.
func TestTickRunsRunnerJobProcessEndToEnd(t *testing.T) {
	backupDir := t.TempDir()
	fleetYAML := []byte(`version: 1
databases:
  - name: payroll
    instance: db2inst1@db2host
    executor: db2cli
    backup_dir: ` + backupDir + `
    key_crn: ` + key + `
    schedules: {full: "0 2 * * *", incremental: "0 3 * * *"}
`)
	fleet, err := config.Load(fleetYAML)
	if err != nil {
		t.Fatal(err)
	}
	runnerDir := t.TempDir()
	if err := fakedb2.GoBuild(runnerDir, "github.com/keyguard-dev/keyguard/functions/runner"); err != nil {
		t.Fatal(err)
	}
	stateFile := filepath.Join(t.TempDir(), "db2.json")
	fakedb2.WriteState(t, stateFile, fakedb2.State{Database: "PAYROLL", LogArchMeth1: "DISK:/db2/archive/", TrackMod: true,
		ImageBytes: 5 << 20, NextTimestamp: "20261124020000"})
	bin, err := s3server.FindBinary()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := stack.Start(ctx, stack.Options{Versitygw: bin, Fleet: fleet, FleetYAML: fleetYAML, Start: time.Date(2026, 11, 24, 1, 55, 0, 0, time.UTC),
		Db2CLI: &stack.Db2CLI{FakeBin: fakedb2.Build(t), StateFile: stateFile, RunnerBin: filepath.Join(runnerDir, "runner")}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	step(t, ctx, st, 5*time.Minute) // 02:00: the full runs in a child process
	s, err := st.State(ctx, "payroll")
	if err != nil {
		t.Fatal(err)
	}
	if s.Run != nil || s.LastSuccess == nil || s.LastSuccess.Type != events.Full || s.ConsecutiveFailures != 0 {
		t.Fatalf("state after the runner: run %+v last success %+v", s.Run, s.LastSuccess)
	}
	hist := fakedb2.ReadState(t, stateFile).History
	entries, err := catalog.New(st.Objects).List(ctx, "payroll")
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 1 || len(entries) != 1 {
		t.Fatalf("db2 history %d images, catalog %d entries", len(hist), len(entries))
	}
	e := entries[0]
	if e.ImageTimestamp != hist[0].Timestamp || e.Images[0].SHA256 != hist[0].SHA256 || e.SizeBytes != 5<<20 || e.KeyVersion != s.LastSuccess.KeyVersion || e.KeyVersion == "" {
		t.Fatalf("catalog %+v vs db2 %+v (state key version %q)", e, hist[0], s.LastSuccess.KeyVersion)
	}
	body, _, err := st.Objects.Get(ctx, e.Images[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(body); hex.EncodeToString(sum[:]) != hist[0].SHA256 {
		t.Fatal("the object in the S3 server is not the image Db2 wrote")
	}
	completed := st.EN.NotificationsOfType(events.TypeBackupCompleted)
	if len(completed) != 1 {
		t.Fatalf("backup.completed notifications = %d", len(completed))
	}
	// 03:00: the incremental builds on that full.
	step(t, ctx, st, time.Hour)
	entries, _ = catalog.New(st.Objects).List(ctx, "payroll")
	if len(entries) != 2 || entries[1].Type != events.Incremental || entries[1].ParentTimestamp != e.ImageTimestamp {
		t.Fatalf("after the incremental: %+v", entries)
	}
}
