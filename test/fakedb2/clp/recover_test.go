package clp

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// change edits the state file between commands, as the outside world would (writes, lost logs,
// faults, the clock of the next backup).
func change(t *testing.T, state string, f func(*State)) {
	t.Helper()
	s, err := Load(state)
	if err != nil {
		t.Fatal(err)
	}
	f(s)
	if err := Save(state, s); err != nil {
		t.Fatal(err)
	}
}

// TestRecoveryTranscript plays a recovery session against the fake and compares everything it
// printed with testdata/recover.golden (go test -update rewrites it): backups with writes between
// them, ARCHIVE LOG and the archived logs' history, an in-place restore refused while
// applications are connected, QUIESCE ... FORCE CONNECTIONS, a redirected incremental restore
// INTO a new database with LOGTARGET, SET STOGROUP PATHS and CONTINUE, a point-in-time
// roll-forward refused past the newest log, then done with the image's logs in the overflow
// path, a probe query, DROP DATABASE, an incremental restore failing on media and its ABORT, a
// roll-forward halted by a log missing from the archive, and UPDATE DBM CFG of the keystore.
func TestRecoveryTranscript(t *testing.T) {
	dir, logs := t.TempDir(), t.TempDir()
	state := newState(t, State{Database: "SALES", LogArchMeth1: "DISK:/db2/archive/", TrackMod: true, Applications: 2,
		ImageBytes: MinImageBytes, NextTimestamp: "20261124010000"})
	at := func(h, m int) time.Time { return time.Date(2026, 11, 24, h, m, 0, 0, time.UTC) }
	var out bytes.Buffer
	step := func(line string) {
		t.Helper()
		got, code := run(t, state, line)
		fmt.Fprintf(&out, "$ db2 %s\n%s[exit %d]\n\n", line, got, code)
	}
	note := func(s string) { fmt.Fprintf(&out, "# %s\n\n", s) }

	change(t, state, func(s *State) { s.AddWrite(at(0, 30), 5) })
	step("backup database SALES online to " + dir + " include logs without prompting")
	change(t, state, func(s *State) { s.AddWrite(at(1, 30), 3); s.NextTimestamp = "20261124020000" })
	step("backup database SALES online incremental to " + dir + " include logs without prompting")
	change(t, state, func(s *State) { s.AddWrite(at(2, 30), 4) })
	step("archive log for database SALES")
	step("list history archive log all for SALES")

	note("in place: applications are connected")
	step("restore db SALES from " + dir + " taken at 20261124010000 replace existing without prompting")
	step("connect to SALES")
	step("quiesce database immediate force connections")
	step("connect reset")
	step("list applications for db SALES")

	note("into a new database, redirected, with the image's logs extracted")
	step("restore db SALES incremental automatic from " + dir + " taken at 20261124020000 into SCRATCH logtarget " + logs + " redirect without prompting")
	step("set stogroup paths for IBMSTOGROUP on '/db2/scratch'")
	step("restore db SALES continue")
	step("connect to SCRATCH")
	step("get db cfg for SCRATCH")
	step("rollforward db SCRATCH to 2026-11-24-02.45.00.000000 using utc time and stop")
	change(t, state, func(s *State) { s.MissingLogs = []string{"S0000001.LOG"} })
	step("rollforward db SCRATCH to 2026-11-24-02.15.00.000000 using utc time and stop")
	step("rollforward db SCRATCH to 2026-11-24-02.15.00.000000 using utc time and stop overflow log path (" + logs + ")")
	step("connect to SCRATCH")
	step("select count(*) from keyguard.probe")
	step("drop database SCRATCH")
	step("connect reset")
	step("drop database SCRATCH")
	step("connect to SCRATCH")

	note("the full alone cannot reach 02:15: log S0000001.LOG is missing and no image carries it")
	step("restore db SALES from " + dir + " taken at 20261124010000 into SCRATCH2 without prompting")
	step("rollforward db SCRATCH2 to 2026-11-24-02.15.00.000000 using utc time and stop")
	step("rollforward db SCRATCH2 to end of logs and stop")

	note("an incremental restore fails while reading the chain, and is aborted")
	change(t, state, func(s *State) { s.Inject = []Fault{FaultRestoreMedia}; s.MissingLogs = nil })
	step("restore db SALES incremental automatic from " + dir + " taken at 20261124020000 replace existing without prompting")
	step("connect to SALES")
	step("restore db SALES incremental abort")
	change(t, state, func(s *State) { s.Inject = nil })
	step("restore db SALES incremental automatic from " + dir + " taken at 20261124020000 replace existing without prompting")
	step("rollforward db SALES to end of logs and stop")
	step("connect to SALES")
	step("select count(*) from keyguard.probe")
	step("connect reset")
	step("update dbm cfg using KEYSTORE_LOCATION /db2/keystore/db2keys.p12 KEYSTORE_TYPE PKCS12")

	got := strings.ReplaceAll(strings.ReplaceAll(out.String(), dir, "<dir>"), logs, "<logs>")
	golden := filepath.Join("testdata", "recover.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if got != string(want) {
		t.Errorf("the transcript differs from %s (go test -update rewrites it):\n%s", golden, got)
	}
	s, _ := Load(state)
	if s.Rows != 12 || len(s.Copies) != 1 || s.Copies[0].Name != "SCRATCH2" || s.Copies[0].Rows != 5 || s.RestorePending || s.RollforwardPending {
		t.Errorf("rows %d, copies %+v, restore pending %v, rollforward pending %v", s.Rows, s.Copies, s.RestorePending, s.RollforwardPending)
	}
	if _, err := os.Stat(filepath.Join(logs, "S0000001.LOG")); err != nil {
		t.Errorf("LOGTARGET: %v", err)
	}
}
