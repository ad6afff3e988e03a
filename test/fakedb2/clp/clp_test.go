package clp

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/db2"
)

var meta = ImageMeta{Database: "SALES", Instance: "db2inst1", Timestamp: "20261124013000", Type: "full", Mode: "online"}

func fileSHA(t *testing.T, path string) string {
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

func TestImageRoundTrip(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		size int64
	}{{"minimum", 0}, {"small", MinImageBytes + 1}, {"buffers", 2*BufferBytes + 12345}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, c.name)
			sum, err := WriteImage(p, meta, c.size, false, 0)
			if err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if want := max(c.size, MinImageBytes); st.Size() != want {
				t.Errorf("size %d, want %d", st.Size(), want)
			}
			if got := fileSHA(t, p); got != sum {
				t.Errorf("returned sha %s, file sha %s", sum, got)
			}
			v, err := VerifyImage(p)
			if err != nil {
				t.Fatal(err)
			}
			if v.Meta.Timestamp != meta.Timestamp || v.Size != st.Size() || v.Buffers != int(max(1, (st.Size()+BufferBytes-1)/BufferBytes)) {
				t.Errorf("verified %+v", v)
			}
		})
	}
}

func TestImageDeterministic(t *testing.T) {
	dir := t.TempDir()
	a, _ := WriteImage(filepath.Join(dir, "a"), meta, 1<<20, false, 0)
	b, _ := WriteImage(filepath.Join(dir, "b"), meta, 1<<20, false, 0)
	other := meta
	other.Timestamp = "20261124013001"
	c, _ := WriteImage(filepath.Join(dir, "c"), other, 1<<20, false, 0)
	if a == "" || a != b || a == c {
		t.Errorf("same image gives %s and %s; another timestamp gives %s", a, b, c)
	}
	_, err := WriteImage(filepath.Join(dir, "a"), meta, 1<<20, false, 0)
	if !errors.Is(err, os.ErrExist) {
		t.Errorf("overwriting an image: %v", err)
	}
}

func TestImageStreams(t *testing.T) {
	const size = 64 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	p := filepath.Join(t.TempDir(), "big")
	if _, err := WriteImage(p, meta, size, false, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyImage(p); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Errorf("writing and verifying a %d MiB image allocated %d MiB: not streamed", size>>20, alloc>>20)
	}
	// No holes: every block is allocated.
	if blocks := allocatedBytes(t, p); blocks >= 0 && blocks < size {
		t.Errorf("image occupies %d bytes on disk, want at least %d (sparse?)", blocks, size)
	}
}

func TestImageDamage(t *testing.T) {
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt")
	if _, err := WriteImage(corrupt, meta, 1<<20, true, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyImage(corrupt); !errors.Is(err, ErrCorrupt) {
		t.Errorf("corrupt image: %v", err)
	}
	good := filepath.Join(dir, "good")
	if _, err := WriteImage(good, meta, 1<<20, false, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(good, 1<<19); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyImage(good); !errors.Is(err, ErrCorrupt) {
		t.Errorf("truncated image: %v", err)
	}
	junk := filepath.Join(dir, "junk")
	if err := os.WriteFile(junk, bytes.Repeat([]byte("x"), 10000), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyImage(junk); !errors.Is(err, ErrNotImage) {
		t.Errorf("junk: %v", err)
	}
	full := filepath.Join(dir, "full")
	if _, err := WriteImage(full, meta, 1<<20, false, 1<<19); !errors.Is(err, errDiskFull) {
		t.Errorf("disk full: %v", err)
	}
}

// run runs one fake db2 command line in process.
func run(t *testing.T, state string, line string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	code := DB2(strings.Fields(line), state, &out)
	return out.String(), code
}

func newState(t *testing.T, s State) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "state.json")
	if err := Save(p, &s); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDB2OutputParses(t *testing.T) {
	dir := t.TempDir()
	state := newState(t, State{Database: "SALES", LogArchMeth1: "DISK:/archive/", TrackMod: true, Applications: 2,
		SizeBytes: 5 << 30, ImageBytes: 1 << 20, NextTimestamp: "20261124013000", Encrypted: true})

	out, code := run(t, state, "get db cfg for sales")
	cfg, err := db2.ParseDBConfig(out)
	if err != nil || code != exitOK || !cfg.TrackMod || !cfg.Recoverable() || cfg.BackupPending || !cfg.Encrypted || cfg.Database != "SALES" {
		t.Fatalf("db cfg: %v %d %+v\n%s", err, code, cfg, out)
	}
	out, _ = run(t, state, "list applications for db SALES")
	if apps, err := db2.ParseApplications(out); err != nil || len(apps) != 2 {
		t.Fatalf("apps: %v %+v\n%s", err, apps, out)
	}
	out, code = run(t, state, "CALL GET_DBSIZE_INFO(?, ?, ?, -1)")
	if _, err := db2.ParseDBSize(out); !errors.Is(err, &db2.Error{Code: "SQL1024N"}) || code != exitError {
		t.Fatalf("dbsize without connection: %v\n%s", err, out)
	}
	if out, code = run(t, state, "connect to SALES"); code != exitOK || !strings.Contains(out, "Local database alias   = SALES") {
		t.Fatalf("connect: %d\n%s", code, out)
	}
	out, _ = run(t, state, "CALL GET_DBSIZE_INFO(?, ?, ?, -1)")
	if sz, err := db2.ParseDBSize(out); err != nil || sz.Size != 5<<30 || sz.Capacity != -1 {
		t.Fatalf("dbsize: %v %+v\n%s", err, sz, out)
	}
	out, _ = run(t, state, "list applications for db SALES")
	if apps, _ := db2.ParseApplications(out); len(apps) != 3 || apps[0].Name != "db2bp" {
		t.Fatalf("own connection is listed: %+v", apps)
	}
	if out, code = run(t, state, "connect reset"); code != exitOK || !strings.HasPrefix(out, "DB20000I") {
		t.Fatalf("connect reset: %d %s", code, out)
	}
	out, code = run(t, state, "backup database SALES online to "+dir+" compress include logs without prompting")
	ts, err := db2.ParseBackupResult(out)
	if err != nil || code != exitOK || ts != "20261124013000" {
		t.Fatalf("backup: %v %d %q\n%s", err, code, ts, out)
	}
	var ck bytes.Buffer
	image := filepath.Join(dir, "SALES.0.db2inst1.DBPART000.20261124013000.001")
	if code := Ckbkp([]string{"-h", image}, &ck); code != 0 {
		t.Fatalf("db2ckbkp %d\n%s", code, ck.String())
	}
	ok, d, err := db2.ParseCheckBackup(ck.String())
	if err != nil || !ok || d.Header["Backup Mode"] != "1" || d.Header["Includes Logs"] != "1" || d.Header["Encrypt Info Flags"] != "0x1" ||
		d.ProperName != filepath.Base(image) {
		t.Fatalf("db2ckbkp output: %v %v %+v\n%s", err, ok, d, ck.String())
	}
	s, err := Load(state)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.History) != 1 || s.History[0].Image != image || s.NextTimestamp != "20261124013001" || len(s.Calls) != 8 {
		t.Errorf("state after backup: %+v", s)
	}
}

func TestDB2Failures(t *testing.T) {
	base := State{Database: "SALES", LogArchMeth1: "DISK:/archive/", TrackMod: true, NextTimestamp: "20261124013000",
		History: []Backup{{Timestamp: "20261123013000", Type: "full", Mode: "online", Image: "/x"}}}
	with := func(f func(*State)) State { s := base; f(&s); return s }
	cases := []struct {
		name  string
		state State
		cmd   string
		code  string
		class events.FailureClass
	}{
		{"unknown database", base, "backup database HR to DIR", "SQL1013N", events.Configuration},
		{"online without archive logging", with(func(s *State) { s.LogArchMeth1 = "" }), "backup database SALES online to DIR", "SQL2413N", events.Configuration},
		{"fault online-not-allowed", with(func(s *State) { s.Inject = []Fault{FaultOnlineNotAllowed} }), "backup database SALES online to DIR", "SQL2413N", events.Configuration},
		{"backup pending online", with(func(s *State) { s.BackupPending = true }), "backup database SALES online to DIR", "SQL2413N", events.Configuration},
		{"fault backup-pending", with(func(s *State) { s.Inject = []Fault{FaultBackupPending} }), "backup database SALES incremental to DIR", "SQL1116N", events.Configuration},
		{"fault backup-pending on connect", with(func(s *State) { s.Inject = []Fault{FaultBackupPending} }), "connect to SALES", "SQL1116N", events.Configuration},
		{"trackmod off", with(func(s *State) { s.TrackMod = false }), "backup database SALES incremental to DIR", "SQL2426N", events.Configuration},
		{"fault trackmod-off", with(func(s *State) { s.Inject = []Fault{FaultTrackModOff} }), "backup database SALES online incremental delta to DIR", "SQL2426N", events.Configuration},
		{"incremental without full", with(func(s *State) { s.History = nil }), "backup database SALES online incremental to DIR", "SQL2426N", events.Configuration},
		{"fault disk-full", with(func(s *State) { s.Inject = []Fault{FaultDiskFull} }), "backup database SALES online to DIR", "SQL2419N", events.Configuration},
		{"fault key-unavailable", with(func(s *State) { s.Inject = []Fault{FaultKeyUnavailable} }), "backup database SALES online to DIR", "SQL1728N", events.Rotation},
		{"fault key-unavailable on connect", with(func(s *State) { s.Inject = []Fault{FaultKeyUnavailable} }), "connect to SALES", "SQL1728N", events.Rotation},
		{"offline with applications", with(func(s *State) { s.Applications = 1 }), "backup database SALES to DIR", "SQL1035N", events.Transient},
		{"offline while the CLP is connected", with(func(s *State) { s.Connected = true }), "backup database SALES to DIR", "SQL1035N", events.Transient},
		{"table space without archive logging", with(func(s *State) { s.LogArchMeth1 = "OFF" }), "backup database SALES tablespace ( USERSPACE1 , TS2 ) to DIR", "SQL2421N", events.Configuration},
		{"offline include logs", base, "backup database SALES to DIR include logs", "SQL2032N", events.Permanent},
		{"missing directory", base, "backup database SALES online to DIR/missing", "SQL2036N", events.Configuration},
		{"syntax", base, "backup database SALES fulll to DIR", "SQL0104N", events.Permanent},
		{"unknown command", base, "restart the world", "SQL0104N", events.Permanent},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			state := newState(t, c.state)
			out, code := run(t, state, strings.ReplaceAll(c.cmd, "DIR", dir))
			if code != exitError {
				t.Errorf("exit %d, want %d", code, exitError)
			}
			gotCode, msg, ok := db2.ParseSQLCode(out)
			if !ok || gotCode != c.code {
				t.Fatalf("code %q, want %s\n%s", gotCode, c.code, out)
			}
			if _, err := db2.ParseBackupResult(out); db2.ClassOf(err) != c.class {
				t.Errorf("class %s, want %s (%s)", db2.ClassOf(err), c.class, msg)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("a failed command left %d files", len(entries))
			}
		})
	}
}

func TestDB2Environment(t *testing.T) {
	var out bytes.Buffer
	if code := DB2([]string{"get", "db", "cfg", "for", "X"}, "", &out); code != exitSystem || !strings.HasPrefix(out.String(), "DB21061E") {
		t.Errorf("no state: %d %q", code, out.String())
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"database":"X","inject":["meteor"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := DB2([]string{"terminate"}, bad, &out); code != exitSystem || !strings.Contains(out.String(), "meteor") {
		t.Errorf("bad state: %d %q", code, out.String())
	}
}

func TestBackupPendingCleared(t *testing.T) {
	dir := t.TempDir()
	state := newState(t, State{Database: "SALES", LogArchMeth1: "DISK:/a/", BackupPending: true, NextTimestamp: "20261124013000"})
	if out, _ := run(t, state, "connect to SALES"); !strings.HasPrefix(out, "SQL1116N") {
		t.Fatalf("connect while pending: %s", out)
	}
	out, _ := run(t, state, "backup database SALES to "+dir+" without prompting")
	if _, err := db2.ParseBackupResult(out); err != nil {
		t.Fatal(err)
	}
	out, _ = run(t, state, "get db cfg for SALES")
	if cfg, err := db2.ParseDBConfig(out); err != nil || cfg.BackupPending {
		t.Fatalf("still pending after an offline full backup: %v", err)
	}
	out, _ = run(t, state, "backup database SALES online to "+dir+" include logs")
	if ts, err := db2.ParseBackupResult(out); err != nil || ts != "20261124013001" {
		t.Fatalf("online after clearing: %v %s", err, ts)
	}
}

func TestCkbkpOutput(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "SALES.0.db2inst1.DBPART000.20261124013000.001")
	bad := filepath.Join(dir, "SALES.0.db2inst1.DBPART000.20261124013001.001")
	if _, err := WriteImage(good, meta, 3*BufferBytes, false, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteImage(bad, meta, 1<<20, true, 0); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		args    []string
		exit    int
		ok      bool
		buffers int
		errs    int
	}{
		{"good", []string{good}, 0, true, 3, 0},
		{"corrupt", []string{bad}, 1, false, 1, 1},
		{"missing", []string{filepath.Join(dir, "nope")}, 1, false, 0, 1},
		{"not an image", []string{dir}, 1, false, 0, 1},
		{"good and corrupt", []string{good, bad}, 1, false, 4, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			exit := Ckbkp(c.args, &out)
			ok, d, err := db2.ParseCheckBackup(out.String())
			if err != nil || exit != c.exit || ok != c.ok || d.Buffers != c.buffers || len(d.Errors) != c.errs {
				t.Errorf("exit %d ok %v details %+v err %v\n%s", exit, ok, d, err, out.String())
			}
		})
	}
	var out bytes.Buffer
	if Ckbkp(nil, &out) != 1 {
		t.Error("no arguments should fail")
	}
	if _, _, err := db2.ParseCheckBackup(out.String()); db2.ClassOf(err) != events.Permanent {
		t.Errorf("usage text is not a verdict: %v", err)
	}
}
