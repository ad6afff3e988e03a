package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/test/stack"
)

// TestServedPolicyIsDeployable: serve keeps the local fleet's deployable databases, with the
// self-managed one's backups under the work directory, as a policy that loads as a deployment
// loads it (no simulated database).
func TestServedPolicyIsDeployable(t *testing.T) {
	work := t.TempDir()
	yaml, db2, err := deployable(stack.DevYAML, work, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	f, err := config.Load(yaml)
	if err != nil {
		t.Fatalf("served policy does not load:\n%s\n%v", yaml, err)
	}
	var names []string
	for _, d := range f.Databases {
		names = append(names, d.Name)
	}
	if strings.Join(names, ",") != "ledger,archive" {
		t.Errorf("served databases %v, want ledger and archive", names)
	}
	archive, _ := f.Database("archive")
	if archive.BackupDir != filepath.Join(work, "backup", "archive") || db2 == nil || db2.StateFile != filepath.Join(work, "db2.json") {
		t.Errorf("archive backs up to %q; db2 %+v", archive.BackupDir, db2)
	}
	if strings.Contains(string(yaml), "proddb") || !strings.HasPrefix(string(yaml), "# Served by keyguard-local serve") {
		t.Errorf("served policy text:\n%s", yaml)
	}
	two := strings.Replace(string(stack.DevYAML), "executor: simulated", "executor: db2cli\n    backup_dir: /x", 1)
	if _, _, err := deployable([]byte(two), t.TempDir(), 1<<20); err == nil || !strings.Contains(err.Error(), "one self-managed database") {
		t.Errorf("two self-managed databases: %v", err)
	}
}

func TestExports(t *testing.T) {
	got := exports([]string{"B=x'y", "A=http://127.0.0.1:1"})
	want := "export A='http://127.0.0.1:1'\nexport B='x'\\''y'\n"
	if got != want {
		t.Errorf("exports = %q, want %q", got, want)
	}
}
