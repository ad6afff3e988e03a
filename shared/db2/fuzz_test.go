package db2

import (
	"errors"
	"path"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/keyguard-dev/keyguard/events"
)

// Every fuzzer checks: no panic, every error is a classified *Error, and a success is well formed.

func addSamples(f *testing.F, dirs ...string) {
	for _, d := range dirs {
		for _, s := range samples(f, d) {
			f.Add(s)
		}
	}
}

func classified(t *testing.T, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || !e.Class.Valid() || e.Msg == "" {
		t.Fatalf("error %v is not a classified *Error", err)
	}
	if e.Code == "" && e.Reason == "" {
		t.Fatalf("error %v has neither code nor reason", err)
	}
}

func FuzzParseDBConfig(f *testing.F) {
	addSamples(f, "dbcfg")
	f.Add(" Backup pending = NO\n (TRACKMOD) = YES\n x (LOGARCHMETH1) = OFF\n (LOGSECOND) = -1\n")
	f.Fuzz(func(t *testing.T, out string) {
		c, err := ParseDBConfig(out)
		if err != nil {
			classified(t, err)
			return
		}
		if c.Params == nil || c.LogSecond < -1 || c.LogPrimary < -1 || c.ActiveLogBytes() < 0 {
			t.Fatalf("malformed config %+v", c)
		}
		if _, ok := c.Params["LOGARCHMETH1"]; !ok {
			t.Fatalf("accepted without LOGARCHMETH1")
		}
	})
}

func FuzzParseBackupResult(f *testing.F) {
	addSamples(f, "backup")
	f.Fuzz(func(t *testing.T, out string) {
		ts, err := ParseBackupResult(out)
		if err != nil {
			classified(t, err)
			return
		}
		if !ValidTimestamp(ts) || !strings.Contains(out, ts) {
			t.Fatalf("timestamp %q", ts)
		}
	})
}

func FuzzParseCheckBackup(f *testing.F) {
	addSamples(f, "ckbkp")
	f.Add("[1] Buffers processed:  ##\nImage Verification Complete - successful.\n")
	f.Add("MEDIA HEADER REACHED:\n  Timestamp -- 1\nERROR! x\nImage Verification Complete - ERRORS DETECTED: 2\n")
	f.Fuzz(func(t *testing.T, out string) {
		ok, d, err := ParseCheckBackup(out)
		if err != nil {
			classified(t, err)
			if ok {
				t.Fatal("ok with an error")
			}
			return
		}
		if ok && (d.ErrorsDetected != 0 || len(d.Errors) != 0) {
			t.Fatalf("ok with errors %+v", d)
		}
		if len(d.Errors) > maxCkErrors || d.Buffers < 0 || d.Images < 0 || d.ErrorsDetected < 0 {
			t.Fatalf("details %+v", d)
		}
	})
}

func FuzzParseApplications(f *testing.F) {
	addSamples(f, "apps")
	f.Add("-------- -- -- -- -- --\nA b 1 c d 1\n")
	f.Fuzz(func(t *testing.T, out string) {
		apps, err := ParseApplications(out)
		if err != nil {
			classified(t, err)
			return
		}
		if apps == nil {
			t.Fatal("nil list on success")
		}
		for _, a := range apps {
			if a.AuthID == "" || a.ID == "" || a.Handle < 0 || a.Agents < 0 {
				t.Fatalf("row %+v", a)
			}
		}
	})
}

func FuzzParseDBSize(f *testing.F) {
	addSamples(f, "dbsize")
	f.Fuzz(func(t *testing.T, out string) {
		sz, err := ParseDBSize(out)
		if err != nil {
			classified(t, err)
			return
		}
		if sz.Size < -1 || sz.Capacity < -1 {
			t.Fatalf("size %+v", sz)
		}
	})
}

func FuzzParseSQLCode(f *testing.F) {
	addSamples(f, "backup", "apps", "dbsize")
	f.Add("SQL2004N  An SQL error \"-968\" occurred during processing.")
	f.Fuzz(func(t *testing.T, out string) {
		code, msg, ok := ParseSQLCode(out)
		if !ok {
			if code != "" || msg != "" {
				t.Fatalf("not ok but %q %q", code, msg)
			}
			return
		}
		if !messageID.MatchString(code) || !strings.HasPrefix(msg, code) || len(msg) > maxMsg || !utf8.ValidString(msg) {
			t.Fatalf("code %q msg %q", code, msg)
		}
		if !classifyMessage(code, msg).Valid() {
			t.Fatalf("class of %q", code)
		}
	})
}

func FuzzParseImageName(f *testing.F) {
	f.Add("SAMPLE.0.db2inst1.DBPART000.20261124013000.001")
	f.Add("/backup/SALES.3.db2prod.NODE0001.CATN0000.20020829090733.002")
	f.Add("SAMPLE.0.db2inst1.DBPART000.20261124013000.001.gz")
	f.Fuzz(func(t *testing.T, name string) {
		img, err := ParseImageName(name)
		if err != nil {
			classified(t, err)
			return
		}
		again, err := ParseImageName(img.String())
		if err != nil || again != img {
			t.Fatalf("round trip of %q: %+v %v", name, again, err)
		}
		if img.String() != path.Base(strings.ReplaceAll(name, "\\", "/")) {
			t.Fatalf("String() = %q for %q", img.String(), name)
		}
	})
}

func FuzzPlanBackup(f *testing.F) {
	f.Add("sample", "online", "incremental", "/backup", "USERSPACE1", "DISK:/a", true, false, false, true, true, uint8(0), int64(10), int64(5))
	f.Add("SALES", "offline", "delta", "/b", "", "OFF", false, true, false, false, false, uint8(3), int64(-1), int64(0))
	f.Fuzz(func(t *testing.T, db, mode, typ, dir, ts, arch string, track, pending, rollfwd, full, allow bool, apps uint8, free, needed int64) {
		r := Request{Database: db, Mode: events.Mode(mode), Type: events.BackupType(typ), TargetDir: dir,
			IncludeLogs: track, Compress: full, AllowOffline: allow}
		if ts != "" {
			r.Tablespaces = strings.Split(ts, ",")
		}
		cfg := DBConfig{LogArchMeth1: arch, TrackMod: track, BackupPending: pending, RollforwardPending: rollfwd}
		p, err := PlanBackup(r, cfg, int(apps), full, free, needed)
		if err != nil {
			classified(t, err)
			return
		}
		if len(p.Commands) != 1 || len(p.Commands[0]) < 6 || p.Commands[0][0] != "db2" {
			t.Fatalf("commands %q", p.Commands)
		}
		for _, a := range p.Commands[0] {
			if a == "" || strings.ContainsAny(a, " \t\n\"'") {
				t.Fatalf("argument %q of %q", a, p.Commands[0])
			}
		}
		if p.Mode == events.Online && (!cfg.Recoverable() || pending) {
			t.Fatalf("online plan without archive logging or while pending: %+v", p)
		}
		if p.Mode == events.Offline && apps > 0 {
			t.Fatalf("offline plan with %d applications", apps)
		}
		if p.Type != events.Full && (!track || !full || pending) {
			t.Fatalf("%s plan without TRACKMOD or predecessor", p.Type)
		}
		if free >= 0 && needed > 0 && free < needed {
			t.Fatalf("plan despite insufficient space")
		}
		if _, err := ParseImageName(p.ImageName("20261124013000")); err != nil {
			t.Fatalf("plan's image name does not parse: %v", err)
		}
	})
}

func FuzzParseHistory(f *testing.F) {
	addSamples(f, "history")
	f.Add("Number of matching file entries = 1\n Op Obj Timestamp+Sequence\n --\n B D 20261124020009001 N D S0000001.LOG\n EID: 1 Location: x\n sqlcode: -1\n")
	f.Fuzz(func(t *testing.T, out string) {
		h, err := ParseHistory(out)
		if err != nil {
			classified(t, err)
			return
		}
		if h.Entries == nil {
			t.Fatal("nil entries on success")
		}
		for _, e := range h.Entries {
			if !ValidTimestamp(e.Timestamp) || len(e.Op) != 1 || len(e.Object) != 1 || e.Sequence < 0 || e.Sequence > 999 {
				t.Fatalf("entry %+v", e)
			}
			if e.Op == OpBackup && (!e.Type.Valid() || !e.Mode.Valid()) {
				t.Fatalf("backup entry without type or mode %+v", e)
			}
			if e.Start != "" && !ValidTimestamp(e.Start) || e.End != "" && !ValidTimestamp(e.End) {
				t.Fatalf("times %+v", e)
			}
		}
		seen := map[string]bool{}
		for _, b := range h.Backups() {
			if !b.IsBackup() || seen[b.Timestamp] {
				t.Fatalf("Backups() %+v", h.Backups())
			}
			seen[b.Timestamp] = true
		}
		for _, typ := range []events.BackupType{events.Incremental, events.Delta} {
			if b, ok := h.Base(typ); ok && (!seen[b.Timestamp] || typ == events.Incremental && b.Type != events.Full) {
				t.Fatalf("Base(%s) = %+v", typ, b)
			}
		}
	})
}
