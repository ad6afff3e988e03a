package fakedb2_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/db2"
	"github.com/keyguard-dev/keyguard/test/fakedb2"
)

// The fake satisfies the interface the db2 package runs commands through.
var _ db2.Runner = fakedb2.Runner{}

type env struct {
	r      fakedb2.Runner
	state  string
	target string
}

func setup(t *testing.T, s fakedb2.State) env {
	t.Helper()
	dir := t.TempDir()
	e := env{r: fakedb2.Runner{Bin: fakedb2.Build(t), State: filepath.Join(dir, "db2.json")}, target: filepath.Join(dir, "backup")}
	e.state = e.r.State
	if err := os.Mkdir(e.target, 0o755); err != nil {
		t.Fatal(err)
	}
	if s.NextTimestamp == "" {
		s.NextTimestamp = "20261124013000"
	}
	fakedb2.WriteState(t, e.state, s)
	return e
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// plan inspects the database through the fake and plans a backup the way the runner job does.
func (e env) plan(t *testing.T, typ events.BackupType, mode events.Mode, hasFull bool) (db2.Plan, error) {
	t.Helper()
	in, err := db2.Inspect(ctx(t), e.r, "SALES")
	if err != nil {
		return db2.Plan{}, err
	}
	req := db2.Request{Database: "SALES", Type: typ, Mode: mode, TargetDir: e.target, IncludeLogs: mode == events.Online, Compress: true}
	return db2.PlanBackup(req, in.Config, len(in.Applications), hasFull, 1<<40, db2.RequiredSpace(in.Size, in.Config, req.IncludeLogs, mode))
}

func sha(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func TestBackupVerified(t *testing.T) {
	const imageBytes = 9<<20 + 777
	e := setup(t, fakedb2.State{Database: "SALES", LogArchMeth1: "DISK:/db2/archive/", TrackMod: true, Applications: 3,
		SizeBytes: 20 << 20, ImageBytes: imageBytes})
	p, err := e.plan(t, events.Full, events.Online, false)
	if err != nil {
		t.Fatal(err)
	}
	res, err := db2.Execute(ctx(t), e.r, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Timestamp != "20261124013000" || !res.Verified || res.Check.Buffers != 3 {
		t.Errorf("result %+v", res)
	}
	if want := filepath.Join(e.target, "SALES.0.db2inst1.DBPART000.20261124013000.001"); res.Image != want {
		t.Errorf("image %s, want %s", res.Image, want)
	}
	st, err := os.Stat(res.Image)
	if err != nil || st.Size() != imageBytes {
		t.Fatalf("image file: %v, size %d, want %d", err, st.Size(), imageBytes)
	}
	s := fakedb2.ReadState(t, e.state)
	if len(s.History) != 1 || s.History[0].SHA256 != sha(t, res.Image) || s.History[0].Mode != "online" || !s.History[0].IncludeLogs {
		t.Errorf("history %+v", s.History)
	}
	want := []string{
		"db2 get db cfg for SALES", "db2 connect to SALES", "db2 CALL GET_DBSIZE_INFO(?, ?, ?, -1)", "db2 connect reset",
		"db2 list applications for db SALES",
		"db2 backup database SALES online to " + e.target + " compress include logs without prompting",
	}
	if strings.Join(s.Calls, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls\n%s\nwant\n%s", strings.Join(s.Calls, "\n"), strings.Join(want, "\n"))
	}

	// The chain continues: an incremental on top of the full, then a delta.
	for i, typ := range []events.BackupType{events.Incremental, events.Delta} {
		p, err := e.plan(t, typ, events.Online, true)
		if err != nil {
			t.Fatal(err)
		}
		res, err := db2.Execute(ctx(t), e.r, p, nil)
		if err != nil || !res.Verified {
			t.Fatalf("%s: %v %+v", typ, err, res)
		}
		h := fakedb2.ReadState(t, e.state).History
		if len(h) != i+2 || h[i+1].Type != string(typ) || h[i+1].Timestamp <= h[i].Timestamp {
			t.Errorf("history after %s: %+v", typ, h)
		}
	}
}

func TestOfflineBackupAndApplications(t *testing.T) {
	e := setup(t, fakedb2.State{Database: "SALES", Applications: 2})
	_, err := e.plan(t, events.Full, events.Offline, false)
	if !errors.Is(err, &db2.Error{Reason: db2.ReasonApplications}) || db2.ClassOf(err) != events.Transient {
		t.Fatalf("plan with applications connected: %v", err)
	}
	// Db2 itself refuses too when the plan is bypassed.
	out, exit, err := e.r.Run(ctx(t), []string{"db2", "backup", "database", "SALES", "to", e.target})
	if _, perr := db2.ParseBackupResult(out); err != nil || exit != 4 || !errors.Is(perr, &db2.Error{Code: "SQL1035N"}) {
		t.Fatalf("bypassed plan: exit %d %v %v", exit, err, perr)
	}
	s := fakedb2.ReadState(t, e.state)
	s.Applications = 0
	fakedb2.WriteState(t, e.state, s)
	p, err := e.plan(t, events.Full, events.Offline, false)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := db2.Execute(ctx(t), e.r, p, nil); err != nil || !res.Verified {
		t.Fatalf("offline: %v %+v", err, res)
	}
	// Online is refused on circular logging, unless the policy allows falling back to offline.
	if _, err := e.plan(t, events.Full, events.Online, true); !errors.Is(err, &db2.Error{Reason: db2.ReasonArchiveLoggingOff}) {
		t.Errorf("online on circular logging: %v", err)
	}
}

func TestBackupPendingTakesOfflineFull(t *testing.T) {
	e := setup(t, fakedb2.State{Database: "SALES", LogArchMeth1: "DISK:/db2/archive/", TrackMod: true, BackupPending: true})
	p, err := e.plan(t, events.Incremental, events.Online, true)
	if err != nil {
		t.Fatal(err)
	}
	if p.Type != events.Full || p.Mode != events.Offline || len(p.Notes) == 0 {
		t.Fatalf("plan %+v", p)
	}
	if res, err := db2.Execute(ctx(t), e.r, p, nil); err != nil || !res.Verified {
		t.Fatalf("execute: %v %+v", err, res)
	}
	if s := fakedb2.ReadState(t, e.state); s.BackupPending {
		t.Error("backup pending not cleared")
	}
	if p, err := e.plan(t, events.Incremental, events.Online, true); err != nil || p.Type != events.Incremental {
		t.Errorf("after clearing: %v %+v", err, p)
	}
}

func TestFaults(t *testing.T) {
	cases := []struct {
		fault   fakedb2.Fault
		typ     events.BackupType
		class   events.FailureClass
		code    string
		reason  string
		atPlan  bool // the failure shows during inspection
		image   bool // an image file is left for the caller to remove
		hasFull bool
	}{
		{fault: fakedb2.FaultCorruptImage, typ: events.Full, class: events.Transient, reason: db2.ReasonVerificationFailed, image: true},
		{fault: fakedb2.FaultKeyUnavailable, typ: events.Full, class: events.Rotation, code: "SQL1728N", atPlan: true},
		{fault: fakedb2.FaultDiskFull, typ: events.Full, class: events.Configuration, code: "SQL2419N"},
		{fault: fakedb2.FaultOnlineNotAllowed, typ: events.Full, class: events.Configuration, code: "SQL2413N"},
		{fault: fakedb2.FaultTrackModOff, typ: events.Incremental, class: events.Configuration, code: "SQL2426N", hasFull: true},
		{fault: fakedb2.FaultBackupPending, typ: events.Full, class: events.Configuration, code: "SQL1116N", atPlan: true},
	}
	for _, c := range cases {
		t.Run(string(c.fault), func(t *testing.T) {
			s := fakedb2.State{Database: "SALES", LogArchMeth1: "DISK:/db2/archive/", TrackMod: true, ImageBytes: 2 << 20,
				Inject: []fakedb2.Fault{c.fault}}
			if c.hasFull {
				s.History = []fakedb2.Backup{{Timestamp: "20261123013000", Type: "full", Mode: "online", Image: "/elsewhere"}}
			}
			e := setup(t, s)
			p, err := e.plan(t, c.typ, events.Online, c.hasFull)
			if c.atPlan {
				if db2.ClassOf(err) != c.class || !errors.Is(err, &db2.Error{Code: c.code}) {
					t.Fatalf("inspect: %v, want %s %s", err, c.class, c.code)
				}
				// The backup itself fails the same way.
				req := db2.Request{Database: "SALES", Type: c.typ, Mode: events.Online, TargetDir: e.target}
				if p, err = db2.PlanBackup(req, db2.DBConfig{LogArchMeth1: "DISK:/a/", TrackMod: true}, 0, true, -1, -1); err != nil {
					t.Fatal(err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			res, err := db2.Execute(ctx(t), e.r, p, nil)
			var de *db2.Error
			if !errors.As(err, &de) || de.Class != c.class || de.Code != c.code || de.Reason != c.reason {
				t.Fatalf("execute: %v, want class %s code %q reason %q", err, c.class, c.code, c.reason)
			}
			entries, _ := os.ReadDir(e.target)
			if c.image != (len(entries) == 1) || (c.image && filepath.Join(e.target, entries[0].Name()) != res.Image) {
				t.Errorf("files left in the target: %v (result image %q)", entries, res.Image)
			}
			if c.image {
				out, exit, err := e.r.Run(ctx(t), []string{"db2ckbkp", res.Image})
				if err != nil || exit == 0 || !strings.Contains(out, "ERRORS DETECTED") {
					t.Errorf("db2ckbkp on the corrupt image: exit %d %v\n%s", exit, err, out)
				}
			}
		})
	}
}

func TestRunnerErrors(t *testing.T) {
	e := setup(t, fakedb2.State{Database: "SALES"})
	if _, _, err := e.r.Run(ctx(t), []string{"rm", "-rf", "/"}); err == nil {
		t.Error("ran a command that is not db2")
	}
	if _, _, err := e.r.Run(ctx(t), nil); err == nil {
		t.Error("ran an empty command")
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := e.r.Run(cancelled, []string{"db2", "terminate"}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	out, exit, err := e.r.Run(ctx(t), []string{"db2", "list", "applications", "for", "db", "SALES"})
	if err != nil || exit != 2 || !strings.HasPrefix(out, "SQL1611W") {
		t.Errorf("warning exit: %d %v %q", exit, err, out)
	}
	// Env puts the binaries first on PATH, as a runner job that execs "db2" would find them.
	envs := fakedb2.Env(e.r.Bin, e.state)
	for _, kv := range envs {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			t.Setenv("PATH", v)
		}
	}
	cmd := exec.Command("db2", "terminate")
	cmd.Env = envs
	if out, err := cmd.CombinedOutput(); err != nil || cmd.Path != filepath.Join(e.r.Bin, "db2") || !strings.Contains(string(out), "TERMINATE command completed") {
		t.Errorf("db2 terminate: %v %s", err, out)
	}
}

// TestDiskArchiveHoldsLogFiles: with LOGARCHMETH1 DISK:<an existing directory>, each closed
// log file is written under <dir>/<instance>/<DATABASE>/NODE0000/LOGSTREAM0000/C0000000, `get db
// cfg` names the first active log, LIST HISTORY names the log each backup needs, and a file
// removed from the archive halts the roll-forward that needs it with SQL4970N.
func TestDiskArchiveHoldsLogFiles(t *testing.T) {
	arch := t.TempDir()
	e := setup(t, fakedb2.State{Database: "SALES", LogArchMeth1: "DISK:" + arch + "/", TrackMod: true})
	run := func(argv ...string) string {
		t.Helper()
		out, _, err := e.r.Run(ctx(t), argv)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if err := fakedb2.Write(e.state, time.Date(2026, 11, 24, 1, 0, 0, 0, time.UTC), 5); err != nil {
		t.Fatal(err)
	}
	run("db2", "backup", "database", "SALES", "online", "to", e.target, "without", "prompting")
	if err := fakedb2.Write(e.state, time.Date(2026, 11, 24, 1, 40, 0, 0, time.UTC), 3); err != nil {
		t.Fatal(err)
	}
	run("db2", "archive", "log", "for", "database", "SALES")
	dir := filepath.Join(arch, "db2inst1", "SALES", "NODE0000", "LOGSTREAM0000", "C0000000")
	for _, n := range []int{0, 1} {
		if _, err := os.Stat(filepath.Join(dir, fakedb2.LogName(n))); err != nil {
			t.Fatalf("archived log %d: %v", n, err)
		}
	}
	cfg, err := db2.ParseDBConfig(run("db2", "get", "db", "cfg", "for", "SALES"))
	if err != nil || cfg.FirstActiveLog != "S0000002.LOG" || cfg.AutoDelRecObj {
		t.Fatalf("db cfg: %+v %v", cfg.FirstActiveLog, err)
	}
	h, err := db2.ParseHistory(run("db2", "list", "history", "backup", "all", "for", "SALES"))
	if err != nil || len(h.Entries) != 1 || h.Entries[0].FirstLog != "S0000000.LOG" {
		t.Fatalf("history: %+v %v", h, err)
	}
	if err := os.Remove(filepath.Join(dir, fakedb2.LogName(1))); err != nil {
		t.Fatal(err)
	}
	ts := h.Entries[0].Timestamp
	run("db2", "restore", "database", "SALES", "from", e.target, "taken", "at", ts, "replace", "existing", "without", "prompting")
	out := run("db2", "rollforward", "database", "SALES", "to", "end", "of", "logs", "and", "stop")
	if !strings.Contains(out, "SQL4970N") || !strings.Contains(out, "S0000001.LOG") {
		t.Fatalf("roll-forward across a removed log file: %s", out)
	}
}

// TestPartitionsRestoreCatalogFirst: a two-partition database backs up ON ALL DBPARTITIONNUMS
// (one image per partition, the per-partition result table); a restore on partition 1 before
// the catalog partition is refused, in the right order it succeeds and the roll-forward runs.
func TestPartitionsRestoreCatalogFirst(t *testing.T) {
	e := setup(t, fakedb2.State{Database: "SALES", LogArchMeth1: "DISK:/nowhere/", Partitions: []int{0, 1}, CatalogPartition: 0})
	run := func(argv ...string) string {
		t.Helper()
		out, _, err := e.r.Run(ctx(t), argv)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	out := run("db2", "backup", "database", "SALES", "on", "all", "dbpartitionnums", "online", "to", e.target, "include", "logs", "without", "prompting")
	parts, err := db2.ParseBackupPartitions(out)
	if err != nil || len(parts) != 2 {
		t.Fatalf("backup: %v %v\n%s", parts, err, out)
	}
	ts, _ := db2.ParseBackupResult(out)
	for _, p := range []string{"DBPART000", "DBPART001"} {
		if _, err := os.Stat(filepath.Join(e.target, "SALES.0.db2inst1."+p+"."+ts+".001")); err != nil {
			t.Fatalf("image of %s: %v", p, err)
		}
	}
	if n, err := db2.ParseCatalogPartition(run("db2", "list", "db", "directory"), "SALES"); err != nil || n != 0 {
		t.Fatalf("catalog partition %d %v", n, err)
	}
	restore := []string{"db2", "restore", "database", "SALES", "from", e.target, "taken", "at", ts, "replace", "existing", "without", "prompting"}
	run("db2", "set", "client", "connect_dbpartitionnum", "1")
	if out := run(restore...); !strings.Contains(out, "SQL2551N") {
		t.Fatalf("partition 1 before the catalog partition: %s", out)
	}
	run("db2", "set", "client", "connect_dbpartitionnum", "0")
	if out := run(restore...); !strings.Contains(out, "DB20000I") {
		t.Fatalf("catalog partition: %s", out)
	}
	if out := run("db2", "rollforward", "database", "SALES", "to", "end", "of", "logs", "on", "all", "dbpartitionnums", "and", "stop"); !strings.Contains(out, "SQL1276N") {
		t.Fatalf("roll-forward before every partition is restored: %s", out)
	}
	run("db2", "set", "client", "connect_dbpartitionnum", "1")
	if out := run(restore...); !strings.Contains(out, "DB20000I") {
		t.Fatalf("partition 1 after the catalog partition: %s", out)
	}
	if out := run("db2", "rollforward", "database", "SALES", "to", "end", "of", "logs", "on", "all", "dbpartitionnums", "and", "stop"); !strings.Contains(out, "DB20000I") {
		t.Fatalf("roll-forward: %s", out)
	}
}

// TestTablespaceRestore: a table space image restores its table spaces online, left rollforward
// pending until ROLLFORWARD ... TABLESPACE (...) ONLINE; a table space not in the image is
// refused.
func TestTablespaceRestore(t *testing.T) {
	e := setup(t, fakedb2.State{Database: "SALES", LogArchMeth1: "DISK:/nowhere/"})
	run := func(argv ...string) string {
		t.Helper()
		out, _, err := e.r.Run(ctx(t), argv)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	out := run("db2", "backup", "database", "SALES", "tablespace", "(TS_ORDERS,TS_LINES)", "online", "to", e.target, "without", "prompting")
	ts, err := db2.ParseBackupResult(out)
	if err != nil {
		t.Fatal(err, out)
	}
	if out := run("db2", "restore", "database", "SALES", "tablespace", "(USERSPACE1)", "online", "from", e.target, "taken", "at", ts, "without", "prompting"); !strings.Contains(out, "SQL2560N") {
		t.Fatalf("a table space not in the image: %s", out)
	}
	if out := run("db2", "restore", "database", "SALES", "tablespace", "(TS_ORDERS)", "online", "from", e.target, "taken", "at", ts, "without", "prompting"); !strings.Contains(out, "DB20000I") {
		t.Fatalf("table space restore: %s", out)
	}
	if s := fakedb2.ReadState(t, e.state); len(s.TablespacesPending) != 1 {
		t.Fatalf("pending %v", s.TablespacesPending)
	}
	if out := run("db2", "rollforward", "database", "SALES", "to", "end", "of", "logs", "and", "stop", "tablespace", "(TS_ORDERS)", "online"); !strings.Contains(out, "DB20000I") {
		t.Fatalf("table space roll-forward: %s", out)
	}
	if s := fakedb2.ReadState(t, e.state); len(s.TablespacesPending) != 0 || s.Restores[0].RollForward != "END OF LOGS" {
		t.Fatalf("after the roll-forward: %+v", s.Restores)
	}
}
