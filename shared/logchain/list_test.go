package logchain_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/db2"
	"github.com/keyguard-dev/keyguard/shared/logchain"
	"github.com/keyguard-dev/keyguard/shared/objstore"
)

// archive writes log files nums of chain 0 under root as Db2 does for DISK archiving.
func archive(tb testing.TB, root string, nums ...int) {
	tb.Helper()
	dir := filepath.Join(root, "NODE0000", "LOGSTREAM0000", "C0000000")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	for _, n := range nums {
		if err := os.WriteFile(filepath.Join(dir, logchain.Name(n)), []byte("log"), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

// TestCheckDirPrunesOnlyWhatNoChainNeeds: the check lists a DISK archive, reports a removed
// file as missing (and prunes nothing then), prunes files older than the first needed one
// when the chain is whole, and deletes nothing when Db2's AUTO_DEL_REC_OBJ is ON.
func TestCheckDirPrunesOnlyWhatNoChainNeeds(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "db2inst1", "SALES")
	archive(t, root, 1, 2, 3, 4, 5, 6)
	if err := os.WriteFile(filepath.Join(root, "README"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	need := logchain.Need{From: 3, FirstActive: 7, Chain: -1}
	dir := logchain.Dir{Root: root}

	r, err := logchain.Check(ctx, dir, need, logchain.Options{Database: "sales", AutoDelete: true, Prune: true, Now: now})
	if err != nil || r.Deleted != 0 || r.Deleter != "db2" || r.Files != 6 {
		t.Fatalf("auto delete: %+v %v", r, err)
	}
	os.Remove(filepath.Join(root, "NODE0000", "LOGSTREAM0000", "C0000000", logchain.Name(4)))
	r, err = logchain.Check(ctx, dir, need, logchain.Options{Database: "sales", Prune: true, Now: now})
	if err != nil || !r.Broken || r.Deleted != 0 || r.Gaps[0].First != 4 {
		t.Fatalf("broken: %+v %v", r, err)
	}
	archive(t, root, 4)
	r, err = logchain.Check(ctx, dir, need, logchain.Options{Database: "sales", Prune: true, Now: now})
	if err != nil || r.Broken || r.Deleted != 2 || r.Files != 4 || r.Oldest != 3 || r.NewestAt.IsZero() {
		t.Fatalf("prune: %+v %v", r, err)
	}
	// An archive directory that is not there is an error the report names, not a gap.
	r, err = logchain.Check(ctx, logchain.Dir{Root: filepath.Join(root, "nope")}, need, logchain.Options{Database: "sales", Now: now})
	if !errors.Is(err, logchain.ErrNoArchive) || r.Broken || r.Error == "" {
		t.Fatalf("missing archive: %+v %v", r, err)
	}
}

// BenchmarkCheckDir10000: the log chain check over 10,000 archived log files in a directory,
// beside its floor, the raw walk of the same directory; it reports the ratio.
func BenchmarkCheckDir10000(b *testing.B) {
	root := filepath.Join(b.TempDir(), "db2inst1", "SALES")
	nums := make([]int, 10000)
	for i := range nums {
		nums[i] = 100 + i
	}
	archive(b, root, nums...)
	ctx := context.Background()
	need := logchain.Need{From: 100, FirstActive: 10100, Chain: -1}
	raw := func() int {
		n := 0
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if _, err := d.Info(); err == nil {
					n++
				}
			}
			return err
		})
		return n
	}
	var floor, check time.Duration
	for b.Loop() {
		t0 := time.Now()
		if n := raw(); n != 10000 {
			b.Fatalf("raw walk: %d", n)
		}
		t1 := time.Now()
		r, err := logchain.Check(ctx, logchain.Dir{Root: root}, need, logchain.Options{Database: "sales", Now: t1})
		if err != nil || r.Files != 10000 || r.Broken {
			b.Fatalf("check: %+v %v", r, err)
		}
		check += time.Since(t1)
		floor += t1.Sub(t0)
	}
	b.ReportMetric(float64(check.Microseconds())/float64(b.N)/1000, "check-ms/op")
	b.ReportMetric(float64(floor.Microseconds())/float64(b.N)/1000, "raw-walk-ms/op")
	b.ReportMetric(float64(check)/float64(floor), "check/raw")
	_ = fmt.Sprint()
}

func TestArchiveOf(t *testing.T) {
	db := config.Database{Name: "sales", Alias: "SALES", Instance: "db2inst1@h"}
	l, _, ok := logchain.ArchiveOf(db, db2.DBConfig{LogArchMeth1: "DISK:/db2/archive/"}, nil)
	if !ok || l.String() != "/db2/archive/db2inst1/SALES" {
		t.Fatalf("DISK: %v %v", l, ok)
	}
	if _, why, ok := logchain.ArchiveOf(db, db2.DBConfig{LogArchMeth1: "DB2REMOTE://cos//logs"}, nil); ok || !strings.Contains(why, "cos_prefix") {
		t.Fatalf("DB2REMOTE without cos_prefix: %v %s", ok, why)
	}
	db.LogArchive.COSPrefix = "db2logs/"
	l, _, ok = logchain.ArchiveOf(db, db2.DBConfig{LogArchMeth1: "DB2REMOTE://cos//logs"}, objstore.NewMemory())
	if !ok || l.String() != "cos:db2logs/db2inst1/SALES/" {
		t.Fatalf("DB2REMOTE: %v %v", l, ok)
	}
	if _, _, ok := logchain.ArchiveOf(config.Database{Alias: "X"}, db2.DBConfig{LogArchMeth1: "TSM:STANDARD"}, nil); ok {
		t.Fatal("TSM listed")
	}
}

// TestObjectsListerPrunes: a DB2REMOTE archive in the bucket is listed and pruned like a
// directory.
func TestObjectsListerPrunes(t *testing.T) {
	ctx := context.Background()
	m := objstore.NewMemory()
	for n := 1; n <= 5; n++ {
		if _, err := m.Put(ctx, "db2logs/db2inst1/SALES/NODE0000/LOGSTREAM0000/C0000000/"+logchain.Name(n), []byte("x"), objstore.Cond{}); err != nil {
			t.Fatal(err)
		}
	}
	l := logchain.Objects{Store: m, Prefix: "db2logs/db2inst1/SALES/"}
	r, err := logchain.Check(ctx, l, logchain.Need{From: 3, FirstActive: 6, Chain: -1}, logchain.Options{Database: "sales", Prune: true, Now: time.Now()})
	if err != nil || r.Deleted != 2 || r.Files != 3 || r.Broken {
		t.Fatalf("%+v %v", r, err)
	}
	left, _ := m.List(ctx, "db2logs/")
	if len(left) != 3 {
		t.Fatalf("left %d", len(left))
	}
}
