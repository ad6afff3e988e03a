package clp

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/db2"
)

// backups takes a full, an incremental and a delta online into dir and returns their timestamps.
func backups(t *testing.T, state, dir string) []string {
	t.Helper()
	var ts []string
	for _, kind := range []string{"", "incremental", "incremental delta"} {
		out, code := run(t, state, "backup database SALES online "+kind+" to "+dir+" compress include logs without prompting")
		got, err := db2.ParseBackupResult(out)
		if code != exitOK || err != nil {
			t.Fatalf("backup %q: %d %v\n%s", kind, code, err, out)
		}
		ts = append(ts, got)
	}
	return ts
}

func TestRestoreIncrementalAutomaticThenRollforward(t *testing.T) {
	dir := t.TempDir()
	state := newState(t, State{Database: "SALES", LogArchMeth1: "DISK:/archive/", TrackMod: true, ImageBytes: MinImageBytes + 10, NextTimestamp: "20261124013000"})
	ts := backups(t, state, dir)
	write(t, state, time.Date(2026, 11, 24, 2, 10, 0, 0, time.UTC), 1) // the logs reach past 02:00

	out, code := run(t, state, "db2 rollforward database SALES to end of logs and stop"[4:])
	if code != exitError || !strings.HasPrefix(out, "SQL1260N") {
		t.Fatalf("rollforward before restore: %d\n%s", code, out)
	}
	out, code = run(t, state, "RESTORE DATABASE sales INCREMENTAL AUTOMATIC FROM "+dir+" TAKEN AT "+ts[2]+" INTO SALES REPLACE EXISTING WITHOUT PROMPTING")
	if code != exitOK || out != "DB20000I  The RESTORE DATABASE command completed successfully.\n" {
		t.Fatalf("restore: %d\n%s", code, out)
	}
	s, _ := Load(state)
	want := Restore{Timestamp: ts[2], Incremental: true, Automatic: true, Images: ts, From: dir}
	if len(s.Restores) != 1 || !equalRestore(s.Restores[0], want) || !s.RollforwardPending {
		t.Fatalf("restores %+v pending %v", s.Restores, s.RollforwardPending)
	}
	cfg, _ := run(t, state, "get db cfg for SALES")
	if c, err := db2.ParseDBConfig(cfg); err != nil || !c.RollforwardPending {
		t.Fatalf("db cfg after restore: %+v %v", c, err)
	}
	if out, code = run(t, state, "connect to SALES"); code != exitError || !strings.HasPrefix(out, "SQL1117N") {
		t.Fatalf("connect while pending: %d\n%s", code, out)
	}
	out, code = run(t, state, "rollforward db SALES to 2026-11-24-01.29.00.000000 using utc time and stop")
	if code != exitError || !strings.HasPrefix(out, "SQL1275N") {
		t.Fatalf("rollforward before the image: %d\n%s", code, out)
	}
	out, code = run(t, state, "rollforward database SALES to 2026-11-24-02.00.00.000000 using utc time and stop")
	if code != exitOK || !strings.Contains(out, "Rollforward status                     = not pending") ||
		!strings.Contains(out, "Last committed transaction             = 2026-11-24-02.00.00.000000 UTC") ||
		!strings.HasSuffix(out, "DB20000I  The ROLLFORWARD command completed successfully.\n") {
		t.Fatalf("rollforward: %d\n%s", code, out)
	}
	s, _ = Load(state)
	if s.RollforwardPending || s.Restores[0].RollForward != "2026-11-24-02.00.00.000000" {
		t.Fatalf("after rollforward: pending %v, %+v", s.RollforwardPending, s.Restores)
	}
	if out, code = run(t, state, "connect to SALES"); code != exitOK {
		t.Fatalf("connect after rollforward: %d\n%s", code, out)
	}
}

// write commits a transaction of rows at time at.
func write(t *testing.T, state string, at time.Time, rows int64) {
	t.Helper()
	s, err := Load(state)
	if err != nil {
		t.Fatal(err)
	}
	s.AddWrite(at, rows)
	if err := Save(state, s); err != nil {
		t.Fatal(err)
	}
}

func equalRestore(a, b Restore) bool {
	return a.Timestamp == b.Timestamp && a.Incremental == b.Incremental && a.Automatic == b.Automatic && slices.Equal(a.Images, b.Images) &&
		a.From == b.From && a.WithoutRollingForward == b.WithoutRollingForward && a.RollForward == b.RollForward
}

func TestRestoreFailures(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, dir string, ts []string) // damage the directory
		line  func(dir string, ts []string) string
		code  string
	}{
		{"missing target", nil, func(d string, ts []string) string {
			return "restore db SALES from " + d + " taken at 20261124013009 replace existing without prompting"
		}, "SQL2542N"},
		{"chain image missing", func(t *testing.T, d string, ts []string) { rm(t, d, ts[1]) }, func(d string, ts []string) string {
			return "restore db SALES incremental auto from " + d + " taken at " + ts[2] + " replace existing without prompting"
		}, "SQL2542N"},
		{"corrupt target", func(t *testing.T, d string, ts []string) { flip(t, d, ts[2]) }, func(d string, ts []string) string {
			return "restore db SALES incremental automatic from " + d + " taken at " + ts[2] + " replace existing without prompting"
		}, "SQL2530N"},
		{"corrupt full", func(t *testing.T, d string, ts []string) { flip(t, d, ts[0]) }, func(d string, ts []string) string {
			return "restore db SALES incremental automatic from " + d + " taken at " + ts[2] + " replace existing without prompting"
		}, "SQL2530N"},
		{"incremental without INCREMENTAL", nil, func(d string, ts []string) string {
			return "restore db SALES from " + d + " taken at " + ts[1] + " replace existing without prompting"
		}, "SQL2573N"},
		{"online without rolling forward", nil, func(d string, ts []string) string {
			return "restore db SALES from " + d + " taken at " + ts[0] + " replace existing without rolling forward without prompting"
		}, "SQL2537N"},
		{"bad directory", nil, func(d string, ts []string) string {
			return "restore db SALES from " + d + "/nope taken at " + ts[0] + " without prompting"
		}, "SQL2036N"},
		{"two images, no timestamp", nil, func(d string, ts []string) string { return "restore db SALES incremental automatic from " + d }, "SQL2522N"},
		{"unknown database", nil, func(d string, ts []string) string { return "restore db OTHER from " + d }, "SQL1013N"},
		{"syntax", nil, func(d string, ts []string) string { return "restore db SALES taken " + ts[0] }, "SQL0104N"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			state := newState(t, State{Database: "SALES", LogArchMeth1: "DISK:/archive/", TrackMod: true, ImageBytes: MinImageBytes + 10, NextTimestamp: "20261124013000"})
			ts := backups(t, state, dir)
			if c.setup != nil {
				c.setup(t, dir, ts)
			}
			out, code := run(t, state, c.line(dir, ts))
			got, _, _ := db2.ParseSQLCode(out)
			if code != exitError || got != c.code {
				t.Fatalf("exit %d code %s, want %s\n%s", code, got, c.code, out)
			}
			if s, _ := Load(state); len(s.Restores) != 0 || s.RollforwardPending {
				t.Fatalf("failed restore changed state: %+v pending %v", s.Restores, s.RollforwardPending)
			}
		})
	}
}

func TestRestoreOffline(t *testing.T) {
	cases := []struct {
		name        string
		logarch     string
		without     bool
		wantPending bool
	}{
		{"circular logging", "", false, false},
		{"recoverable", "DISK:/archive/", false, true},
		{"recoverable, without rolling forward", "DISK:/archive/", true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			state := newState(t, State{Database: "SALES", LogArchMeth1: c.logarch, ImageBytes: MinImageBytes, NextTimestamp: "20261124013000"})
			if out, code := run(t, state, "backup db SALES to "+dir); code != exitOK {
				t.Fatal(out)
			}
			line := "restore database SALES from " + dir
			if c.without {
				line += " without rolling forward"
			}
			out, code := run(t, state, line+" without prompting")
			// Without REPLACE EXISTING Db2 warns that the database is overwritten.
			if code != exitWarning || !strings.HasPrefix(out, "SQL2539W") || !strings.HasSuffix(out, "DB20000I  The RESTORE DATABASE command completed successfully.\n") {
				t.Fatalf("restore: %d\n%s", code, out)
			}
			s, _ := Load(state)
			if s.RollforwardPending != c.wantPending || len(s.Restores) != 1 || s.Restores[0].Timestamp != "20261124013000" {
				t.Fatalf("pending %v, restores %+v", s.RollforwardPending, s.Restores)
			}
			out, code = run(t, state, "rollforward db SALES to end of logs and complete")
			if c.wantPending != (code == exitOK) {
				t.Fatalf("rollforward: %d\n%s", code, out)
			}
		})
	}
}

func TestRollforwardWithoutStop(t *testing.T) {
	dir := t.TempDir()
	state := newState(t, State{Database: "SALES", LogArchMeth1: "DISK:/archive/", ImageBytes: MinImageBytes, NextTimestamp: "20261124013000"})
	if out, code := run(t, state, "backup db SALES online to "+dir); code != exitOK {
		t.Fatal(out)
	}
	if out, code := run(t, state, "restore db SALES from "+dir+" taken at 20261124013000 replace existing without prompting"); code != exitOK {
		t.Fatal(out)
	}
	out, code := run(t, state, "rollforward db SALES query status")
	if code != exitOK || !strings.Contains(out, "= DB pending") {
		t.Fatalf("query status: %d\n%s", code, out)
	}
	out, code = run(t, state, "rollforward db SALES to end of logs")
	if s, _ := Load(state); code != exitOK || !strings.Contains(out, "= DB working") || !s.RollforwardPending {
		t.Fatalf("to end of logs without stop: %d\n%s", code, out)
	}
	out, code = run(t, state, "rollforward db SALES stop")
	if s, _ := Load(state); code != exitOK || s.RollforwardPending || s.Restores[0].RollForward != "END OF LOGS" {
		t.Fatalf("stop: %d %+v\n%s", code, s.Restores, out)
	}
}

func rm(t *testing.T, dir, ts string) {
	t.Helper()
	if err := os.Remove(filepath.Join(dir, "SALES.0.db2inst1.DBPART000."+ts+".001")); err != nil {
		t.Fatal(err)
	}
}

// flip inverts one byte in the middle of the image body.
func flip(t *testing.T, dir, ts string) {
	t.Helper()
	p := filepath.Join(dir, "SALES.0.db2inst1.DBPART000."+ts+".001")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[headerBytes+2] ^= 0xff
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestHistoryKeepsDiscardedImages: Db2's history counts every image it wrote, including one
// whose file was deleted afterwards; the next delta builds on it, and a restore of that delta
// needs it.
func TestHistoryKeepsDiscardedImages(t *testing.T) {
	dir := t.TempDir()
	state := newState(t, State{Database: "SALES", LogArchMeth1: "DISK:/archive/", TrackMod: true, ImageBytes: MinImageBytes + 10, NextTimestamp: "20261124013000"})
	ts := backups(t, state, dir) // full, incremental, delta
	rm(t, dir, ts[2])            // the delta is discarded
	out, code := run(t, state, "backup database SALES online incremental delta to "+dir+" include logs without prompting")
	d2, err := db2.ParseBackupResult(out)
	if code != exitOK || err != nil {
		t.Fatalf("second delta: %d %v\n%s", code, err, out)
	}
	out, code = run(t, state, "backup database SALES online incremental to "+dir+" include logs without prompting")
	i2, err := db2.ParseBackupResult(out)
	if code != exitOK || err != nil {
		t.Fatalf("second incremental: %d %v\n%s", code, err, out)
	}
	s, _ := Load(state)
	bases := map[string]string{}
	for _, b := range s.History {
		bases[b.Timestamp] = b.Base
	}
	if bases[ts[0]] != "" || bases[ts[1]] != ts[0] || bases[ts[2]] != ts[1] || bases[d2] != ts[2] || bases[i2] != ts[0] {
		t.Fatalf("bases %v: want incremental on the full, delta on the previous image (the discarded one too)", bases)
	}

	out, code = run(t, state, "list history backup all for sales")
	h, err := db2.ParseHistory(out)
	if code != exitOK || err != nil || h.Database != "SALES" {
		t.Fatalf("list history: %d %v\n%s", code, err, out)
	}
	var got []string
	for _, b := range h.Backups() {
		got = append(got, b.Timestamp+"-"+string(b.Type)+"-"+string(b.Mode))
	}
	want := []string{ts[0] + "-full-online", ts[1] + "-incremental-online", ts[2] + "-delta-online", d2 + "-delta-online", i2 + "-incremental-online"}
	if !slices.Equal(got, want) {
		t.Fatalf("history %v\nwant    %v", got, want)
	}
	if b, ok := h.Base(events.Delta); !ok || b.Timestamp != i2 {
		t.Errorf("delta base %+v", b)
	}
	out, _ = run(t, state, "list history backup since "+d2+" for SALES")
	if h, err := db2.ParseHistory(out); err != nil || len(h.Entries) != 2 || h.Entries[0].Timestamp != d2 {
		t.Errorf("list history since %s: %v %+v\n%s", d2, err, h.Entries, out)
	}
	if out, code := run(t, state, "list history backup all for HR"); code != exitError || !strings.HasPrefix(out, "SQL1013N") {
		t.Errorf("unknown database: %d %s", code, out)
	}

	// Restoring the delta built on the discarded one needs the missing image: SQL2542N.
	out, code = run(t, state, "restore database SALES incremental automatic from "+dir+" taken at "+d2+" without prompting")
	if code != exitError || !strings.HasPrefix(out, "SQL2542N") || !strings.Contains(out, ts[2]) {
		t.Fatalf("restore of a delta built on a deleted image: %d\n%s", code, out)
	}
}
