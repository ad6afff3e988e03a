package db2

import (
	"errors"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/keyguard-dev/keyguard/events"
)

// wantErr is the expected *Error of a sample; the zero value means success.
type wantErr struct {
	class  events.FailureClass
	code   string
	reason string
}

func checkErr(t *testing.T, err error, want wantErr) bool {
	t.Helper()
	if want == (wantErr{}) {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return true
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not an *Error (want %+v)", err, want)
	}
	if e.Class != want.class || e.Code != want.code || e.Reason != want.reason {
		t.Fatalf("error = {%s %s %s %q}, want %+v", e.Class, e.Code, e.Reason, e.Msg, want)
	}
	if ClassOf(err) != want.class {
		t.Fatalf("ClassOf = %s, want %s", ClassOf(err), want.class)
	}
	return false
}

// sortedNames fails the test when a sample has no expectation or an expectation no sample.
func sortedNames[V any](t *testing.T, dir string, cases map[string]V) ([]string, map[string]string) {
	t.Helper()
	in := samples(t, dir)
	var names []string
	for n := range in {
		if _, ok := cases[n]; !ok {
			t.Errorf("testdata/%s/%s.txt has no expectation", dir, n)
		}
		names = append(names, n)
	}
	for n := range cases {
		if _, ok := in[n]; !ok {
			t.Errorf("expectation %q has no sample in testdata/%s", n, dir)
		}
	}
	sort.Strings(names)
	return names, in
}

var unrec = wantErr{class: events.Permanent, reason: ReasonUnrecognisedOutput}

func TestParseDBConfig(t *testing.T) {
	type want struct {
		err   wantErr
		check func(t *testing.T, c DBConfig)
	}
	cases := map[string]want{
		"circular": {check: func(t *testing.T, c DBConfig) {
			if c.Database != "SAMPLE" || c.LogArchMeth1 != "OFF" || c.TrackMod || c.BackupPending || c.Recoverable() {
				t.Errorf("got %+v", c)
			}
			if c.LogPrimary != 13 || c.LogSecond != 12 || c.LogFilSiz != 1024 || c.ActiveLogBytes() != 25*1024*4096 {
				t.Errorf("log sizes %d %d %d", c.LogPrimary, c.LogSecond, c.LogFilSiz)
			}
			if v, ok := c.Params["ALT_COLLATE"]; !ok || v != "" {
				t.Errorf("empty ALT_COLLATE = %q, %v", v, ok)
			}
			if c.Params["DATABASE_MEMORY"] != "AUTOMATIC(53488)" {
				t.Errorf("DATABASE_MEMORY = %q", c.Params["DATABASE_MEMORY"])
			}
		}},
		"archive": {check: func(t *testing.T, c DBConfig) {
			if c.Database != "SALES" || c.LogArchMeth1 != "DISK:/db2/archive/" || !c.TrackMod || !c.Recoverable() || !c.Encrypted {
				t.Errorf("got %+v", c)
			}
			if c.FirstActiveLog != "S0000042.LOG" || c.AutoDelRecObj {
				t.Errorf("first active log %q, AUTO_DEL_REC_OBJ %v", c.FirstActiveLog, c.AutoDelRecObj)
			}
			if c.LogSecond != -1 || c.ActiveLogBytes() != 20*16384*4096 {
				t.Errorf("infinite logging: LOGSECOND %d, active log %d", c.LogSecond, c.ActiveLogBytes())
			}
		}},
		"auto-delete": {check: func(t *testing.T, c DBConfig) {
			if !c.AutoDelRecObj {
				t.Errorf("AUTO_DEL_REC_OBJ = ON read as off: %+v", c.Params["AUTO_DEL_REC_OBJ"])
			}
		}},
		"backup-pending": {check: func(t *testing.T, c DBConfig) {
			if !c.BackupPending || c.RollforwardPending || c.RestorePending {
				t.Errorf("got %+v", c)
			}
		}},
		"rollforward-pending": {check: func(t *testing.T, c DBConfig) {
			if !c.RollforwardPending || c.Rollforward != "DATABASE" || c.LogArchMeth1 != "TSM:STANDARD" {
				t.Errorf("got %+v", c)
			}
		}},
		"restore-pending": {check: func(t *testing.T, c DBConfig) {
			if !c.RestorePending || !c.Recoverable() {
				t.Errorf("LOGRETAIN is recoverable, restore pending: %+v", c)
			}
		}},
		"second-method-only": {check: func(t *testing.T, c DBConfig) {
			if c.LogArchMeth1 != "OFF" || !c.Recoverable() {
				t.Errorf("LOGARCHMETH2 alone makes the database recoverable: %+v", c)
			}
		}},
		"truncated":      {err: unrec},
		"bad-trackmod":   {err: unrec},
		"garbage":        {err: unrec},
		"not-found":      {err: wantErr{class: events.Configuration, code: "SQL1013N"}},
		"no-environment": {err: wantErr{class: events.Configuration, code: "DB21061E"}},
	}
	names, in := sortedNames(t, "dbcfg", cases)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			cfg, err := ParseDBConfig(in[name])
			golden(t, goldenPath("dbcfg", name), render(t, cfg, err))
			if checkErr(t, err, cases[name].err) && cases[name].check != nil {
				cases[name].check(t, cfg)
			}
		})
	}
}

func TestParseBackupResult(t *testing.T) {
	type want struct {
		ts  string
		err wantErr
	}
	cases := map[string]want{
		"success":                {ts: "20261124013000"},
		"success-crlf":           {ts: "20261124020512"},
		"bad-timestamp":          {err: unrec},
		"online-not-allowed":     {err: wantErr{class: events.Configuration, code: "SQL2413N"}},
		"trackmod-off":           {err: wantErr{class: events.Configuration, code: "SQL2426N"}},
		"backup-pending":         {err: wantErr{class: events.Configuration, code: "SQL1116N"}},
		"in-use":                 {err: wantErr{class: events.Transient, code: "SQL1035N"}},
		"disk-full":              {err: wantErr{class: events.Configuration, code: "SQL2419N"}},
		"keystore":               {err: wantErr{class: events.Rotation, code: "SQL1728N"}},
		"wrapped-fs-full":        {err: wantErr{class: events.Configuration, code: "SQL2004N"}},
		"syntax":                 {err: wantErr{class: events.Permanent, code: "SQL0104N"}},
		"unlisted-keystore-text": {err: wantErr{class: events.Rotation, code: "SQL1799N"}},
		"unlisted":               {err: wantErr{class: events.Transient, code: "SQL2999N"}},
		"garbage":                {err: unrec},
		"empty":                  {err: unrec},
	}
	names, in := sortedNames(t, "backup", cases)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			ts, err := ParseBackupResult(in[name])
			golden(t, goldenPath("backup", name), render(t, ts, err))
			if checkErr(t, err, cases[name].err) && ts != cases[name].ts {
				t.Errorf("timestamp %q, want %q", ts, cases[name].ts)
			}
		})
	}
}

func TestParseCheckBackup(t *testing.T) {
	type want struct {
		ok      bool
		err     wantErr
		buffers int
		errs    int
	}
	cases := map[string]want{
		"ok":         {ok: true, buffers: 6},
		"ok-header":  {ok: true, buffers: 26},
		"two-images": {ok: true, buffers: 6},
		"errors":     {buffers: 3, errs: 1},
		"missing":    {errs: 1},
		"garbage":    {err: unrec},
	}
	names, in := sortedNames(t, "ckbkp", cases)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			ok, d, err := ParseCheckBackup(in[name])
			golden(t, goldenPath("ckbkp", name), render(t, struct {
				OK      bool         `json:"ok"`
				Details CheckDetails `json:"details"`
			}{ok, d}, err))
			w := cases[name]
			if !checkErr(t, err, w.err) {
				return
			}
			if ok != w.ok || d.Buffers != w.buffers || len(d.Errors) != w.errs {
				t.Errorf("ok %v buffers %d errors %q, want %+v", ok, d.Buffers, d.Errors, w)
			}
		})
	}
	t.Run("header fields", func(t *testing.T) {
		_, d, _ := ParseCheckBackup(samples(t, "ckbkp")["ok-header"])
		for k, v := range map[string]string{"Timestamp": "20261124013000", "Backup Mode": "1", "Includes Logs": "1",
			"Encrypt Info Flags": "0x1", "DB Comment (Volume)": "", "Instance": "db2inst1"} {
			if got, ok := d.Header[k]; !ok || got != v {
				t.Errorf("header %q = %q (%v), want %q", k, got, ok, v)
			}
		}
		if d.ProperName != "SALES.0.db2inst1.DBPART000.20261124013000.001" {
			t.Errorf("proper name %q", d.ProperName)
		}
		if d.ErrorsDetected != 0 || d.Images != 1 {
			t.Errorf("details %+v", d)
		}
	})
}

func TestParseApplications(t *testing.T) {
	type want struct {
		n   int
		err wantErr
	}
	cases := map[string]want{
		"none":          {n: 0},
		"two":           {n: 2},
		"many":          {n: 4},
		"instance-down": {err: wantErr{class: events.Transient, code: "SQL1032N"}},
		"bad-row":       {err: unrec},
		"garbage":       {err: unrec},
	}
	names, in := sortedNames(t, "apps", cases)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			apps, err := ParseApplications(in[name])
			golden(t, goldenPath("apps", name), render(t, apps, err))
			if checkErr(t, err, cases[name].err) && len(apps) != cases[name].n {
				t.Errorf("%d applications, want %d: %+v", len(apps), cases[name].n, apps)
			}
		})
	}
	t.Run("columns", func(t *testing.T) {
		apps, err := ParseApplications(samples(t, "apps")["many"])
		if err != nil {
			t.Fatal(err)
		}
		want := Application{AuthID: "REPORTS", Name: "python3", Handle: 131090, ID: "fd00:0:0:0:0:0:0:12.52712.261124012002", DBName: "SALES", Agents: 2}
		if apps[2] != want {
			t.Errorf("row 3 = %+v, want %+v", apps[2], want)
		}
	})
}

func TestParseDBSize(t *testing.T) {
	type want struct {
		size, capacity int64
		err            wantErr
	}
	cases := map[string]want{
		"ok":               {size: 1207959552, capacity: 105587609600},
		"capacity-unknown": {size: 1207959552, capacity: -1},
		"no-connection":    {err: wantErr{class: events.Transient, code: "SQL1024N"}},
		"bad-status":       {err: unrec},
		"bad-size":         {err: unrec},
	}
	names, in := sortedNames(t, "dbsize", cases)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			sz, err := ParseDBSize(in[name])
			golden(t, goldenPath("dbsize", name), render(t, sz, err))
			w := cases[name]
			if checkErr(t, err, w.err) && (sz.Size != w.size || sz.Capacity != w.capacity || sz.Snapshot.IsZero()) {
				t.Errorf("got %+v, want %+v", sz, w)
			}
		})
	}
}

func TestParseSQLCode(t *testing.T) {
	cases := []struct {
		name, out, code, msg string
		ok                   bool
	}{
		{"none", "DB20000I  The SQL command completed successfully.\n", "", "", false},
		{"empty", "", "", "", false},
		{"error joined across lines", "SQL2413N  Online backup is not allowed because the database is not \nrecoverable.\n\nmore",
			"SQL2413N", "SQL2413N Online backup is not allowed because the database is not recoverable.", true},
		{"error preferred to earlier warning", "SQL2059W  A device full warning.\n\nSQL2419N  The target disk \"/b\" has become full.\n",
			"SQL2419N", `SQL2419N The target disk "/b" has become full.`, true},
		{"SQL error preferred to CLP error", samples(t, "backup")["syntax"], "SQL0104N",
			`SQL0104N An unexpected token "fulll" was found following "BACKUP DATABASE SAMPLE". Expected tokens may include: "TO". SQLSTATE=42601`, true},
		{"warning alone", "SQL1611W  No data was returned by Database System Monitor.\n", "SQL1611W",
			"SQL1611W No data was returned by Database System Monitor.", true},
		{"five digits", "SQL30082N  Security processing failed with reason \"24\".\n", "SQL30082N",
			`SQL30082N Security processing failed with reason "24".`, true},
		{"severity C", "SQL0968C  The file system is full.  SQLSTATE=57011\n", "SQL0968C", "SQL0968C The file system is full. SQLSTATE=57011", true},
		{"inside a path is not a message", "Path to log files = /db/NODE0000/SQL00001/\n", "", "", false},
		{"SQLSTATE is not a message", "SQLSTATE=57019\n", "", "", false},
		{"glued to a word is not a message", "xSQL1035N y\n", "", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, msg, ok := ParseSQLCode(c.out)
			if code != c.code || msg != c.msg || ok != c.ok {
				t.Errorf("ParseSQLCode = %q, %q, %v; want %q, %q, %v", code, msg, ok, c.code, c.msg, c.ok)
			}
		})
	}
	t.Run("long message is capped", func(t *testing.T) {
		_, msg, _ := ParseSQLCode("SQL2062N  " + strings.Repeat("é", 2000))
		if len(msg) > maxMsg || !utf8.ValidString(msg) || !strings.HasPrefix(msg, "SQL2062N é") {
			t.Errorf("message is %d bytes, valid UTF-8 %v", len(msg), utf8.ValidString(msg))
		}
	})
}

func TestArchiveTarget(t *testing.T) {
	for in, want := range map[string][2]string{
		"DISK:/db2/archive/":             {"DISK", "/db2/archive/"},
		"DB2REMOTE://cosalias//archive/": {"DB2REMOTE", "cosalias//archive/"},
		"TSM:STANDARD":                   {"TSM", "STANDARD"},
		"OFF":                            {"OFF", ""},
		"disk:/x":                        {"DISK", "/x"},
	} {
		if k, tg := ArchiveTarget(in); k != want[0] || tg != want[1] {
			t.Errorf("ArchiveTarget(%q) = %q %q, want %q", in, k, tg, want)
		}
	}
}
