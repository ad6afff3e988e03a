package db2

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/keyguard-dev/keyguard/events"
)

const (
	gib = int64(1) << 30
)

var (
	circular = DBConfig{Database: "SAMPLE", LogArchMeth1: "OFF", LogArchMeth2: "OFF"}
	archive  = DBConfig{Database: "SAMPLE", LogArchMeth1: "DISK:/db2/archive/", LogArchMeth2: "OFF", TrackMod: true,
		LogPrimary: 13, LogSecond: 12, LogFilSiz: 1024}
)

func with(c DBConfig, f func(*DBConfig)) DBConfig { f(&c); return c }

func req(typ events.BackupType, mode events.Mode, f ...func(*Request)) Request {
	r := Request{Database: "sample", Type: typ, Mode: mode, TargetDir: "/backup", Compress: true}
	for _, fn := range f {
		fn(&r)
	}
	return r
}

func TestPlanBackup(t *testing.T) {
	includeLogs := func(r *Request) { r.IncludeLogs = true }
	allowOffline := func(r *Request) { r.AllowOffline = true }
	type facts struct {
		cfg          DBConfig
		apps         int
		full         bool
		free, needed int64
	}
	ok := facts{cfg: archive, full: true, free: 100 * gib, needed: 10 * gib}
	f := func(fn func(*facts)) facts { x := ok; fn(&x); return x }
	cases := []struct {
		name  string
		req   Request
		facts facts
		// want is the backup command (space separated) or, for a refusal, the error.
		cmd   string
		typ   events.BackupType
		mode  events.Mode
		err   wantErr
		notes int
	}{
		{name: "offline full on circular logging", req: req(events.Full, events.Offline), facts: f(func(x *facts) { x.cfg = circular }),
			cmd: "db2 backup database SAMPLE to /backup compress without prompting", typ: events.Full, mode: events.Offline},
		{name: "online full includes logs", req: req(events.Full, events.Online, includeLogs), facts: ok,
			cmd: "db2 backup database SAMPLE online to /backup compress include logs without prompting", typ: events.Full, mode: events.Online},
		{name: "online full excludes logs explicitly", req: req(events.Full, events.Online, func(r *Request) { r.Compress = false }), facts: ok,
			cmd: "db2 backup database SAMPLE online to /backup exclude logs without prompting", typ: events.Full, mode: events.Online},
		{name: "online with applications connected", req: req(events.Full, events.Online), facts: f(func(x *facts) { x.apps = 7 }),
			cmd: "db2 backup database SAMPLE online to /backup compress exclude logs without prompting", typ: events.Full, mode: events.Online},
		{name: "online without archive logging is refused", req: req(events.Full, events.Online), facts: f(func(x *facts) { x.cfg = circular }),
			err: wantErr{class: events.Configuration, reason: ReasonArchiveLoggingOff}},
		{name: "online without archive logging falls back to offline when allowed", req: req(events.Full, events.Online, allowOffline, includeLogs),
			facts: f(func(x *facts) { x.cfg = circular }),
			cmd:   "db2 backup database SAMPLE to /backup compress without prompting", typ: events.Full, mode: events.Offline, notes: 2},
		{name: "offline fallback still needs no applications", req: req(events.Full, events.Online, allowOffline),
			facts: f(func(x *facts) { x.cfg, x.apps = circular, 2 }),
			err:   wantErr{class: events.Transient, reason: ReasonApplications}},
		{name: "second archive method is enough for online", req: req(events.Full, events.Online),
			facts: f(func(x *facts) { x.cfg = with(circular, func(c *DBConfig) { c.LogArchMeth2 = "VENDOR:/opt/lib.so" }) }),
			cmd:   "db2 backup database SAMPLE online to /backup compress exclude logs without prompting", typ: events.Full, mode: events.Online},
		{name: "online incremental", req: req(events.Incremental, events.Online, includeLogs), facts: ok,
			cmd: "db2 backup database SAMPLE online incremental to /backup compress include logs without prompting", typ: events.Incremental, mode: events.Online},
		{name: "offline delta drops include logs", req: req(events.Delta, events.Offline, includeLogs), facts: ok,
			cmd: "db2 backup database SAMPLE incremental delta to /backup compress without prompting", typ: events.Delta, mode: events.Offline, notes: 1},
		{name: "incremental without TRACKMOD is refused", req: req(events.Incremental, events.Online),
			facts: f(func(x *facts) { x.cfg = with(archive, func(c *DBConfig) { c.TrackMod = false }) }),
			err:   wantErr{class: events.Configuration, reason: ReasonTrackModOff}},
		{name: "delta without TRACKMOD and without predecessor is refused", req: req(events.Delta, events.Online),
			facts: f(func(x *facts) { x.cfg, x.full = with(archive, func(c *DBConfig) { c.TrackMod = false }), false }),
			err:   wantErr{class: events.Configuration, reason: ReasonTrackModOff}},
		{name: "incremental without a full predecessor becomes full", req: req(events.Incremental, events.Online),
			facts: f(func(x *facts) { x.full = false }),
			cmd:   "db2 backup database SAMPLE online to /backup compress exclude logs without prompting", typ: events.Full, mode: events.Online, notes: 1},
		{name: "delta without a full predecessor becomes full", req: req(events.Delta, events.Offline),
			facts: f(func(x *facts) { x.full = false }),
			cmd:   "db2 backup database SAMPLE to /backup compress without prompting", typ: events.Full, mode: events.Offline, notes: 1},
		{name: "backup pending turns an online incremental into an offline full", req: req(events.Incremental, events.Online, includeLogs,
			func(r *Request) { r.Tablespaces = []string{"USERSPACE1"} }),
			facts: f(func(x *facts) { x.cfg = with(archive, func(c *DBConfig) { c.BackupPending = true }) }),
			cmd:   "db2 backup database SAMPLE to /backup compress without prompting", typ: events.Full, mode: events.Offline, notes: 2},
		{name: "backup pending with an offline full request adds no note", req: req(events.Full, events.Offline),
			facts: f(func(x *facts) { x.cfg = with(circular, func(c *DBConfig) { c.BackupPending = true }) }),
			cmd:   "db2 backup database SAMPLE to /backup compress without prompting", typ: events.Full, mode: events.Offline},
		{name: "backup pending ignores missing TRACKMOD and predecessor", req: req(events.Delta, events.Online),
			facts: f(func(x *facts) { x.cfg, x.full = with(circular, func(c *DBConfig) { c.BackupPending = true }), false }),
			cmd:   "db2 backup database SAMPLE to /backup compress without prompting", typ: events.Full, mode: events.Offline, notes: 1},
		{name: "backup pending still checks space", req: req(events.Full, events.Offline),
			facts: f(func(x *facts) { x.cfg, x.free = with(archive, func(c *DBConfig) { c.BackupPending = true }), gib }),
			err:   wantErr{class: events.Configuration, reason: ReasonInsufficientSpace}},
		{name: "rollforward pending", req: req(events.Full, events.Offline),
			facts: f(func(x *facts) {
				x.cfg = with(archive, func(c *DBConfig) { c.RollforwardPending, c.Rollforward, c.BackupPending = true, "DATABASE", true })
			}),
			err: wantErr{class: events.Configuration, reason: ReasonRollforwardPending}},
		{name: "restore pending", req: req(events.Full, events.Offline),
			facts: f(func(x *facts) { x.cfg = with(archive, func(c *DBConfig) { c.RestorePending = true }) }),
			err:   wantErr{class: events.Configuration, reason: ReasonRestorePending}},
		{name: "offline with applications connected", req: req(events.Full, events.Offline), facts: f(func(x *facts) { x.apps = 1 }),
			err: wantErr{class: events.Transient, reason: ReasonApplications}},
		{name: "space is checked before applications", req: req(events.Full, events.Offline),
			facts: f(func(x *facts) { x.apps, x.free = 3, gib }),
			err:   wantErr{class: events.Configuration, reason: ReasonInsufficientSpace}},
		{name: "insufficient space", req: req(events.Full, events.Online), facts: f(func(x *facts) { x.free = 10*gib - 1 }),
			err: wantErr{class: events.Configuration, reason: ReasonInsufficientSpace}},
		{name: "exactly enough space", req: req(events.Full, events.Online), facts: f(func(x *facts) { x.free = 10 * gib }),
			cmd: "db2 backup database SAMPLE online to /backup compress exclude logs without prompting", typ: events.Full, mode: events.Online},
		{name: "unknown size skips the space check", req: req(events.Full, events.Online), facts: f(func(x *facts) { x.free, x.needed = 0, -1 }),
			cmd: "db2 backup database SAMPLE online to /backup compress exclude logs without prompting", typ: events.Full, mode: events.Online, notes: 1},
		{name: "unknown free space skips the space check", req: req(events.Full, events.Online), facts: f(func(x *facts) { x.free = -1 }),
			cmd: "db2 backup database SAMPLE online to /backup compress exclude logs without prompting", typ: events.Full, mode: events.Online, notes: 1},
		{name: "table space backup online", req: req(events.Full, events.Online, func(r *Request) {
			r.Tablespaces, r.TargetDir, r.Compress = []string{"USERSPACE1", "SYSCATSPACE"}, "/backup/sales/", false
		}), facts: ok,
			cmd: "db2 backup database SAMPLE tablespace (USERSPACE1,SYSCATSPACE) online to /backup/sales exclude logs without prompting",
			typ: events.Full, mode: events.Online},
		{name: "table space backup needs archive logging", req: req(events.Full, events.Offline, func(r *Request) { r.Tablespaces = []string{"USERSPACE1"} }),
			facts: f(func(x *facts) { x.cfg = circular }),
			err:   wantErr{class: events.Configuration, reason: ReasonTablespaceNotLogged}},
		{name: "invalid database", req: req(events.Full, events.Offline, func(r *Request) { r.Database = "sales;drop" }), facts: ok,
			err: wantErr{class: events.Permanent, reason: ReasonInvalidRequest}},
		{name: "database name too long", req: req(events.Full, events.Offline, func(r *Request) { r.Database = "SALESDB01" }), facts: ok,
			err: wantErr{class: events.Permanent, reason: ReasonInvalidRequest}},
		{name: "relative target", req: req(events.Full, events.Offline, func(r *Request) { r.TargetDir = "backup" }), facts: ok,
			err: wantErr{class: events.Permanent, reason: ReasonInvalidRequest}},
		{name: "target with a space", req: req(events.Full, events.Offline, func(r *Request) { r.TargetDir = "/my backups" }), facts: ok,
			err: wantErr{class: events.Permanent, reason: ReasonInvalidRequest}},
		{name: "unknown type and mode", req: req("weekly", "sideways"), facts: ok,
			err: wantErr{class: events.Permanent, reason: ReasonInvalidRequest}},
		{name: "duplicate table space", req: req(events.Full, events.Online, func(r *Request) { r.Tablespaces = []string{"TS1", "ts1"} }), facts: ok,
			err: wantErr{class: events.Permanent, reason: ReasonInvalidRequest}},
		{name: "invalid instance", req: req(events.Full, events.Online, func(r *Request) { r.Instance = "db2 inst" }), facts: ok,
			err: wantErr{class: events.Permanent, reason: ReasonInvalidRequest}},
	}
	seen := map[string]bool{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := strings.NewReplacer(" ", "-").Replace(c.name)
			if seen[file] {
				t.Fatalf("duplicate case name %q", c.name)
			}
			seen[file] = true
			x := c.facts
			p, err := PlanBackup(c.req, x.cfg, x.apps, x.full, x.free, x.needed)
			golden(t, goldenPath("plan", file), render(t, p, err))
			if !checkErr(t, err, c.err) {
				return
			}
			if len(p.Commands) != 1 {
				t.Fatalf("%d commands, want 1", len(p.Commands))
			}
			if got := strings.Join(p.Commands[0], " "); got != c.cmd {
				t.Errorf("command\n got %s\nwant %s", got, c.cmd)
			}
			if p.Type != c.typ || p.Mode != c.mode || len(p.Notes) != c.notes {
				t.Errorf("type %s mode %s notes %q; want %s %s and %d notes", p.Type, p.Mode, p.Notes, c.typ, c.mode, c.notes)
			}
			if p.IncludeLogs && p.Mode != events.Online {
				t.Errorf("offline plan includes logs")
			}
		})
	}
}

func TestPlanImage(t *testing.T) {
	p, err := PlanBackup(req(events.Full, events.Online), archive, 0, true, 10, 1)
	if err != nil {
		t.Fatal(err)
	}
	if p.Instance != DefaultInstance {
		t.Errorf("instance %q", p.Instance)
	}
	const ts = "20261124013000"
	if got, want := p.ImagePath(ts), "/backup/SAMPLE.0.db2inst1.DBPART000.20261124013000.001"; got != want {
		t.Errorf("image path %s, want %s", got, want)
	}
	if got := strings.Join(p.VerifyCommand(ts), " "); got != "db2ckbkp /backup/SAMPLE.0.db2inst1.DBPART000.20261124013000.001" {
		t.Errorf("verify command %s", got)
	}
	tsPlan, err := PlanBackup(req(events.Full, events.Online, func(r *Request) {
		r.Tablespaces, r.Instance = []string{"USERSPACE1"}, "db2prod"
	}), archive, 0, true, 10, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := tsPlan.ImageName(ts); got != "SAMPLE.3.db2prod.DBPART000.20261124013000.001" {
		t.Errorf("table space image name %s", got)
	}
}

func TestRequiredSpace(t *testing.T) {
	size := DBSize{Size: 10 * gib, Capacity: 100 * gib}
	logs := archive.ActiveLogBytes() // (13+12) * 1024 pages * 4 KiB = 100 MiB
	if logs != 25*1024*4096 {
		t.Fatalf("active log bytes %d", logs)
	}
	cases := []struct {
		name        string
		size        DBSize
		includeLogs bool
		mode        events.Mode
		want        int64
	}{
		{"offline", size, true, events.Offline, 10 * gib},
		{"online without logs", size, false, events.Online, 10 * gib},
		{"online with logs", size, true, events.Online, 10*gib + logs},
		{"unknown size", SizeUnknown, true, events.Online, -1},
	}
	for _, c := range cases {
		if got := RequiredSpace(c.size, archive, c.includeLogs, c.mode); got != c.want {
			t.Errorf("%s: RequiredSpace = %d, want %d", c.name, got, c.want)
		}
	}
}

func TestImageNames(t *testing.T) {
	cases := []struct {
		name string
		want Image
		err  bool
	}{
		{"SAMPLE.0.db2inst1.DBPART000.20261124013000.001", Image{"SAMPLE", 0, "db2inst1", 0, -1, "20261124013000", 1}, false},
		{"/backup/SALES.3.db2prod.DBPART002.20261124013000.002", Image{"SALES", 3, "db2prod", 2, -1, "20261124013000", 2}, false},
		{"SAMPLE.0.db2inst1.NODE0000.CATN0000.20020829090733.001", Image{"SAMPLE", 0, "db2inst1", 0, 0, "20020829090733", 1}, false},
		{"SAMPLE.0.db2inst1.DBPART000.20261324013000.001", Image{}, true},
		{"SAMPLE.0.db2inst1.DBPART000.20261124013000.000", Image{}, true},
		{"1SAMPLE.0.db2inst1.DBPART000.20261124013000.001", Image{}, true},
		{"sample.0.db2inst1.DBPART000.20261124013000.001", Image{}, true},
		{"SAMPLE.0.db2inst1.DBPART000.20261124013000.001.gz", Image{}, true},
		{"", Image{}, true},
	}
	for _, c := range cases {
		got, err := ParseImageName(c.name)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("ParseImageName(%q) = %+v, %v; want %+v, error %v", c.name, got, err, c.want, c.err)
			continue
		}
		if err != nil {
			if ClassOf(err) != events.Permanent {
				t.Errorf("class %s", ClassOf(err))
			}
			continue
		}
		if base := c.name[strings.LastIndex(c.name, "/")+1:]; got.String() != base {
			t.Errorf("String() = %s, want %s", got.String(), base)
		}
	}
	if got := ImageName("sales", "db2inst1", false, "20261124013000"); got != "SALES.0.db2inst1.DBPART000.20261124013000.001" {
		t.Errorf("ImageName = %s", got)
	}
}

func TestClassify(t *testing.T) {
	cases := map[string]events.FailureClass{
		"SQL1728N": events.Rotation, "SQL1782N": events.Rotation, "SQL1785N": events.Rotation,
		"SQL2413N": events.Configuration, "SQL2426N": events.Configuration, "SQL1116N": events.Configuration,
		"SQL0968C": events.Configuration, "SQL2419N": events.Configuration,
		"SQL1035N": events.Transient, "SQL2062N": events.Transient, "SQL2033N": events.Transient,
		"SQL0104N":   events.Permanent,
		" sql2413n ": events.Configuration, "SQL9999N": events.Transient, "": events.Transient,
	}
	for code, want := range cases {
		if got := Classify(code); got != want {
			t.Errorf("Classify(%q) = %s, want %s", code, got, want)
		}
	}
	// The documented table, rendered, so a change to it shows in review.
	var b strings.Builder
	seen := map[string]bool{}
	for _, c := range codes {
		if seen[c.Code] {
			t.Errorf("%s listed twice", c.Code)
		}
		seen[c.Code] = true
		if !c.Class.Valid() || !messageID.MatchString(c.Code) {
			t.Errorf("bad row %+v", c)
		}
		unsure := ""
		if c.Unsure {
			unsure = " (unsure)"
		}
		fmt.Fprintf(&b, "%-9s %-13s %s%s\n", c.Code, c.Class, c.Meaning, unsure)
	}
	golden(t, "testdata/classify.golden", []byte(b.String()))
}

func TestClassifyMessage(t *testing.T) {
	cases := []struct {
		code, msg string
		want      events.FailureClass
	}{
		{"SQL2004N", `SQL2004N An SQL error "-968" occurred during processing.`, events.Configuration},
		{"SQL2004N", `SQL2004N An SQL error "-1035" occurred during processing.`, events.Transient},
		{"SQL2004N", `SQL2004N An SQL error "-1728" occurred during processing.`, events.Rotation},
		{"SQL2004N", `SQL2004N An SQL error occurred.`, events.Transient},
		{"SQL1799N", "SQL1799N the Keystore is closed", events.Rotation},
		{"SQL1035N", "SQL1035N mentions the keystore but is listed", events.Transient},
	}
	for _, c := range cases {
		if got := classifyMessage(c.code, c.msg); got != c.want {
			t.Errorf("classifyMessage(%s, %q) = %s, want %s", c.code, c.msg, got, c.want)
		}
	}
}

func TestErrorMatching(t *testing.T) {
	_, err := PlanBackup(req(events.Incremental, events.Online), circular, 0, true, 1, 1)
	wrapped := fmt.Errorf("plan: %w", err)
	if !errors.Is(wrapped, &Error{Reason: ReasonArchiveLoggingOff}) {
		t.Errorf("errors.Is by reason failed: %v", wrapped)
	}
	if errors.Is(wrapped, &Error{Reason: ReasonTrackModOff}) || errors.Is(wrapped, &Error{}) {
		t.Errorf("errors.Is matched the wrong reason")
	}
	_, err = ParseBackupResult(samples(t, "backup")["keystore"])
	if !errors.Is(fmt.Errorf("x: %w", err), &Error{Code: "SQL1728N"}) || ClassOf(fmt.Errorf("x: %w", err)) != events.Rotation {
		t.Errorf("code matching failed: %v", err)
	}
	if ClassOf(nil) != "" || ClassOf(errors.New("exec: db2: not found")) != events.Transient {
		t.Errorf("ClassOf of nil or a plain error")
	}
	if got := err.Error(); !strings.HasPrefix(got, "db2 rotation failure SQL1728N: ") {
		t.Errorf("Error() = %q", got)
	}
}
