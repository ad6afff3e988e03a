package db2

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
)

func TestParseBackupPartitions(t *testing.T) {
	two, _ := os.ReadFile("testdata/partitions/two.txt")
	parts, err := ParseBackupPartitions(string(two))
	if err != nil || !slices.Equal(parts, []int{0, 1}) {
		t.Fatalf("two partitions: %v %v", parts, err)
	}
	failed, _ := os.ReadFile("testdata/partitions/one-failed.txt")
	_, err = ParseBackupPartitions(string(failed))
	var e *Error
	if !errors.As(err, &e) || e.Code != "SQL2419N" || !strings.Contains(err.Error(), "partition 1") {
		t.Fatalf("a failed partition: %v", err)
	}
	for _, bad := range []string{"Backup successful. The timestamp for this backup image is : 20261124020000", "0001 DB20000I x\n0001 DB20000I y\n"} {
		if _, err := ParseBackupPartitions(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseCatalogPartition(t *testing.T) {
	dir, _ := os.ReadFile("testdata/dbdir/partitioned.txt")
	for alias, want := range map[string]int{"SALES": 2, "scratch": 0} {
		if n, err := ParseCatalogPartition(string(dir), alias); err != nil || n != want {
			t.Errorf("%s: %d %v, want %d", alias, n, err, want)
		}
	}
	if _, err := ParseCatalogPartition(string(dir), "OTHER"); err == nil {
		t.Error("an alias not in the directory has a catalog partition")
	}
}

func TestPartitionedBackupCommand(t *testing.T) {
	p, err := PlanBackup(Request{Database: "SALES", Type: events.Full, Mode: events.Online, TargetDir: "/b", Partitioned: true, Tablespaces: []string{"TS1"}},
		DBConfig{LogArchMeth1: "DISK:/a/"}, 0, true, -1, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(p.Commands[0], " ")
	if !strings.HasPrefix(got, "db2 backup database SALES on all dbpartitionnums tablespace (TS1) online to /b") {
		t.Fatalf("command %s", got)
	}
	if p.PartitionImagePath("20261124020000", 3) != "/b/SALES.3.db2inst1.DBPART003.20261124020000.001" {
		t.Fatalf("image path %s", p.PartitionImagePath("20261124020000", 3))
	}
}

func FuzzParseBackupPartitions(f *testing.F) {
	addSamples(f, "partitions")
	f.Fuzz(func(t *testing.T, out string) {
		parts, err := ParseBackupPartitions(out)
		if err != nil {
			classified(t, err)
			return
		}
		if len(parts) == 0 || !slices.IsSorted(parts) || parts[0] < 0 || parts[len(parts)-1] > 999 {
			t.Fatalf("partitions %v", parts)
		}
	})
}

func FuzzParseCatalogPartition(f *testing.F) {
	addSamples(f, "dbdir")
	f.Fuzz(func(t *testing.T, out string) {
		n, err := ParseCatalogPartition(out, "SALES")
		if err != nil {
			classified(t, err)
			return
		}
		if n < 0 || n > 999 {
			t.Fatalf("catalog partition %d", n)
		}
	})
}

func TestPlanRestorePartitionsAndTablespaces(t *testing.T) {
	c, err := PlanRestore(RestoreRequest{Source: "SALES", Dir: "/r", Target: "20261124020000", Online: true, Partitions: []int{2, 0, 1}, Replace: true})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range c.Restore {
		got = append(got, strings.Join(a, " "))
	}
	restore := "db2 restore database SALES from /r taken at 20261124020000 replace existing without prompting"
	want := []string{"db2 set client connect_dbpartitionnum 2", restore, "db2 set client connect_dbpartitionnum 0", restore, "db2 set client connect_dbpartitionnum 1", restore}
	if !slices.Equal(got, want) {
		t.Fatalf("restore\n%q\nwant\n%q", got, want)
	}
	if rf := strings.Join(c.RollForward, " "); rf != "db2 rollforward database SALES to end of logs on all dbpartitionnums and stop" {
		t.Fatalf("roll-forward %s", rf)
	}
	c, err = PlanRestore(RestoreRequest{Source: "SALES", Dir: "/r", Target: "20261124020000", Online: true, Tablespaces: []string{"ts_orders", "TS_LINES"}})
	if err != nil {
		t.Fatal(err)
	}
	if r := strings.Join(c.Restore[0], " "); r != "db2 restore database SALES tablespace (TS_ORDERS,TS_LINES) online from /r taken at 20261124020000 without prompting" {
		t.Fatalf("restore %s", r)
	}
	if rf := strings.Join(c.RollForward, " "); rf != "db2 rollforward database SALES to end of logs and stop tablespace (TS_ORDERS,TS_LINES) online" {
		t.Fatalf("roll-forward %s", rf)
	}
	for _, bad := range []RestoreRequest{
		{Source: "SALES", Into: "COPY", Dir: "/r", Target: "20261124020000", Tablespaces: []string{"TS1"}},
		{Source: "SALES", Dir: "/r", Target: "20261124020000", Tablespaces: []string{"TS1"}, PointInTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Source: "SALES", Dir: "/r", Target: "20261124020000", Partitions: []int{0}, StoragePaths: []string{"/x"}},
	} {
		if _, err := PlanRestore(bad); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
}
