package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/test/enemu"
	"github.com/keyguard-dev/keyguard/test/fakedb2"
	"github.com/keyguard-dev/keyguard/test/s3server"
	"github.com/keyguard-dev/keyguard/test/stack"
)

// TestLostCompletionsForADayAreReconciledFromTheCatalog: Event Notifications loses every
// backup.completed for a simulated day. Every backup the runner cataloged is still reconciled
// (from the catalog, within a tick), no schedule slot is backed up twice, and nothing counts a
// false failure or alerts.
func TestLostCompletionsForADayAreReconciledFromTheCatalog(t *testing.T) {
	backupDir := t.TempDir()
	fleet, err := config.Load([]byte(`version: 1
databases:
  - name: payroll
    instance: db2inst1@db2host
    executor: db2cli
    backup_dir: ` + backupDir + `
    key_crn: ` + key + `
    schedules: {full: "0 2 * * *", incremental: "0 */4 * * *"}
`))
	if err != nil {
		t.Fatal(err)
	}
	stateFile := filepath.Join(t.TempDir(), "db2.json")
	fakedb2.WriteState(t, stateFile, fakedb2.State{Database: "PAYROLL", LogArchMeth1: "DISK:/db2/archive/", TrackMod: true,
		ImageBytes: 1 << 20, NextTimestamp: "20261124015500"})
	bin, err := s3server.FindBinary()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dropped := 0
	st, err := stack.Start(ctx, stack.Options{Versitygw: bin, Fleet: fleet, Start: time.Date(2026, 11, 24, 1, 55, 0, 0, time.UTC),
		Db2CLI: &stack.Db2CLI{FakeBin: fakedb2.Build(t), StateFile: stateFile},
		ENFault: func(n enemu.Notification, _ enemu.Subscription) enemu.Fault {
			if n.Type == events.TypeBackupCompleted {
				dropped++
				return enemu.Drop
			}
			return enemu.Deliver
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	for range 24 * 4 { // a day of 15-minute ticks, 02:10 to 01:55
		step(t, ctx, st, 15*time.Minute)
	}

	entries, err := catalog.New(st.Objects).List(ctx, "payroll")
	if err != nil {
		t.Fatal(err)
	}
	// The day's slots: the full at 02:00 (covering the incremental slot of 00:00 taken before it,
	// and no other), then incrementals at 04:00, 08:00, 12:00, 16:00, 20:00 and 00:00.
	if len(entries) != 7 || dropped < len(entries) {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name()+" "+e.RunID)
		}
		t.Errorf("%d catalog entries (%d completions dropped), want one per slot of the day (7): %v", len(entries), dropped, names)
	}
	slots := map[string]string{}
	for _, e := range entries {
		slot := strings.TrimSuffix(e.RunID[:strings.LastIndex(e.RunID, "-a")], "-req")
		slot = slot[strings.LastIndex(slot, "-")+1:]
		if prev, ok := slots[slot]; ok {
			t.Errorf("slot %s backed up twice: runs %s and %s", slot, prev, e.RunID)
		}
		slots[slot] = e.RunID
	}
	s, err := st.State(ctx, "payroll")
	if err != nil {
		t.Fatal(err)
	}
	if s.ConsecutiveFailures != 0 || s.LastFailure != nil {
		t.Fatalf("false failure counted: %d in a row, last %+v", s.ConsecutiveFailures, s.LastFailure)
	}
	if last := entries[len(entries)-1]; s.LastSuccess == nil || s.LastSuccess.RunID != last.RunID || s.Run != nil {
		t.Fatalf("newest cataloged run %s not reconciled: last success %+v, run in flight %+v", last.RunID, s.LastSuccess, s.Run)
	}
	if n := len(st.EN.NotificationsOfType(events.TypeAlert)); n != 0 {
		t.Fatalf("%d alerts raised for backups that succeeded", n)
	}
}

// TestDb2OnCloudBackupsAreCatalogedAndPlanned: a Db2 on Cloud database runs through the real
// db2saas executor against its emulator; its backup is cataloged with the key version pinned at
// start, and the operator command lists it and plans a restore from it.
func TestDb2OnCloudBackupsAreCatalogedAndPlanned(t *testing.T) {
	fleetYAML := []byte(`version: 1
databases:
  - name: ledger
    instance: "crn:v1:bluemix:public:dashdb-for-transactions:us-south:a/0123456789abcdef0123456789abcdef:7a1b2c3d-0000-4000-8000-000000000002::"
    executor: db2saas
    key_crn: ` + key + `
    schedules: {full: "30 3 * * *"}
`)
	fleet, err := config.Load(fleetYAML)
	if err != nil {
		t.Fatal(err)
	}
	bin, err := s3server.FindBinary()
	if err != nil {
		t.Fatal(err)
	}
	cli := t.TempDir()
	if err := fakedb2.GoBuild(cli, "github.com/keyguard-dev/keyguard/cmd/keyguard"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := stack.Start(ctx, stack.Options{Versitygw: bin, Fleet: fleet, Start: time.Date(2026, 11, 24, 3, 25, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	step(t, ctx, st, 5*time.Minute)  // 03:30: the backup is created on the service
	step(t, ctx, st, 30*time.Minute) // 04:00: the service lists it completed
	s, err := st.State(ctx, "ledger")
	if err != nil {
		t.Fatal(err)
	}
	if s.LastSuccess == nil || s.Run != nil || len(st.SaaS.Backups(fleet.Databases[0].Instance)) != 1 {
		t.Fatalf("state %+v, service backups %+v", s, st.SaaS.Backups(fleet.Databases[0].Instance))
	}
	entries, err := catalog.New(st.Objects).List(ctx, "ledger")
	if err != nil || len(entries) != 1 {
		t.Fatalf("catalog = %+v, %v", entries, err)
	}
	e := entries[0]
	if e.Executor != config.ExecDb2SaaS || !strings.HasPrefix(e.Images[0].Key, "db2saas://") || e.KeyVersion == "" || e.KeyVersion != s.Key.Version || e.RunID != s.LastSuccess.RunID {
		t.Fatalf("entry %+v (state key %+v)", e, s.Key)
	}

	fleetFile := filepath.Join(t.TempDir(), "fleet.yaml")
	if err := os.WriteFile(fleetFile, fleetYAML, 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, filepath.Join(cli, "keyguard"), args...)
		cmd.Env = append(os.Environ(), st.OperatorEnv(fleetFile)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("keyguard %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out := run("backup", "list", "ledger"); !strings.Contains(out, e.ImageTimestamp) || !strings.Contains(out, "full") {
		t.Fatalf("backup list does not show the Db2 on Cloud backup:\n%s", out)
	}
	if out := run("plan-restore", "ledger"); !strings.Contains(out, "RESTORE DATABASE ledger TAKEN AT "+e.ImageTimestamp) {
		t.Fatalf("plan-restore does not restore the Db2 on Cloud backup:\n%s", out)
	}
}
