package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/keyguard-dev/keyguard/events"
)

func TestExampleLoads(t *testing.T) {
	f, err := Load(Example)
	if err != nil {
		t.Fatalf("example fleet: %v", err)
	}
	if len(f.Databases) != 3 {
		t.Fatalf("databases = %d, want 3", len(f.Databases))
	}
	prod, _ := f.Database("proddb")
	if prod.Rotation.Settle != 15*time.Minute || prod.MaxWindow() != 4*time.Hour {
		t.Errorf("proddb rotation = %+v, max %v", prod.Rotation, prod.MaxWindow())
	}
	ledger, _ := f.Database("ledger")
	if ledger.MaxWindow() != 8*time.Hour {
		t.Errorf("ledger (2TiB) max window = %v, want 8h", ledger.MaxWindow())
	}
	if ledger.Retry.Base != 15*time.Minute || ledger.Retry.Max != 2*time.Hour || ledger.Retry.Factor != 2 {
		t.Errorf("ledger retry not merged with defaults: %+v", ledger.Retry)
	}
	if a, _ := f.Database("archive"); a.Mode != events.Offline {
		t.Errorf("archive mode = %q", a.Mode)
	}
	if _, ok := prod.Schedule(events.Delta); !ok {
		t.Error("proddb has no parsed delta schedule")
	}
	if got := len(f.ByKey(prod.KeyCRN)); got != 2 {
		t.Errorf("ByKey = %d databases, want 2", got)
	}
	if got := len(f.KeyCRNs()); got != 2 {
		t.Errorf("Keys = %d, want 2", got)
	}
}

const goodKey = "crn:v1:bluemix:public:kms:us-south:a/0123456789abcdef0123456789abcdef:5f1e2d3c-0000-4000-8000-00000000aaaa:key:0b1c2d3e-0000-4000-8000-00000000b001"

func TestLoadRejects(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // every fragment must appear in the one error
	}{
		{"empty", ``, []string{"version must be 1", "at least one database"}},
		{"unknown field", "version: 1\nbogus: 3\n", []string{"field bogus not found"}},
		{"many problems at once", `version: 1
databases:
  - name: Bad Name
    key_crn: nope
    executor: cron
    mode: sideways
    schedules: {incremental: "61 * * * *", weekly: "@daily"}
    alert_threshold: 0
  - name: dup
    instance: x
    key_crn: ` + goodKey + `
    schedules: {full: "@daily"}
  - name: dup
    instance: x
    key_crn: ` + goodKey + `
    schedules: {full: "@daily"}
    retry: {base: 2h, max: 1h}
    rotation: {settle: 5h}
`, []string{"name must match", "not a Key Protect", "instance is required", "executor must be",
			"mode must be online or offline", "schedules.incremental", "unknown backup type \"weekly\"",
			"a full schedule is required", "alert_threshold must be at least 1", "name is used twice",
			"retry: need", "settle exceeds"}},
		{"saas limits", `version: 1
databases:
  - name: saas
    instance: x
    key_crn: ` + goodKey + `
    executor: db2saas
    mode: offline
    schedules: {full: "@daily", delta: "@hourly"}
`, []string{"online backups only", "full backups only"}},
		{"keys and retention", `version: 1
databases:
  - name: a
    instance: x
    key_crn: ` + goodKey + `
    executor: db2cli
    runner: somewhere
    backup_dir: relative/dir
    tablespaces: ["USERSPACE1", "1bad"]
    retention: {keep_fulls: 1}
    schedules: {full: "@daily"}
keys:
  - crn: ` + goodKey + `
    managed_rotation: {every: 1h}
  - crn: ` + goodKey + `
  - crn: crn:v1:bluemix:public:kms:us-south:a/0123456789abcdef0123456789abcdef:5f1e2d3c-0000-4000-8000-00000000aaaa:key:0b1c2d3e-0000-4000-8000-00000000ffff
`, []string{"managed_rotation.every must be at least 24h", "is listed twice", "protects no database", "keep_fulls must be at least 2",
			"backup_dir must be an absolute path", `table space name "1bad"`, "runner must be job or host"}},
		{"table spaces, partitions, log archive", `version: 1
databases:
  - name: a
    instance: x
    key_crn: ` + goodKey + `
    executor: db2cli
    tablespaces: ["TS_ORDERS"]
    schedules: {full: "@daily"}
  - name: b
    instance: x
    key_crn: ` + goodKey + `
    executor: db2cli
    mode: offline
    schedules: {full: "@daily", tablespace: "@hourly"}
    tablespaces: ["TS_ORDERS"]
    log_archive: {dir: relative}
  - name: c
    instance: x
    key_crn: ` + goodKey + `
    executor: db2saas
    partitioned: true
    schedules: {full: "@daily", weekly: "@weekly"}
`, []string{"schedules.tablespace and tablespaces go together", "table space backups need archive logging", "log_archive.dir",
			"partitioned databases are backed up through the Db2 command line", `unknown backup type "weekly"`}},
		{"bad size", `version: 1
databases:
  - name: a
    instance: x
    key_crn: ` + goodKey + `
    size: lots
    schedules: {full: "@daily"}
`, []string{`size "lots"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load([]byte(tc.yaml))
			if err == nil {
				t.Fatal("Load accepted a bad policy")
			}
			if !errors.Is(err, ErrInvalidFleet) {
				t.Errorf("error does not wrap ErrInvalidFleet: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestLoadRejectsOversized(t *testing.T) {
	if _, err := Load(make([]byte, MaxFleetBytes+1)); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("oversized policy: err = %v", err)
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want Size
		bad  bool
	}{
		{"0", 0, false}, {"1024", 1024, false}, {"1KiB", 1024, false}, {"1.5TiB", 3 << 39, false},
		{"2TB", 2e12, false}, {"500 GiB", 500 << 30, false}, {"-1GB", 0, true}, {"GB", 0, true},
		{"1e300TB", 0, true},
	}
	for _, tc := range tests {
		got, err := ParseSize(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseSize(%q) = %v, %v; want %v, bad=%v", tc.in, got, err, tc.want, tc.bad)
		}
	}
	if s := Size(2 << 40).String(); s != "2TiB" {
		t.Errorf("String = %q", s)
	}
}

func FuzzLoad(f *testing.F) {
	f.Add(Example)
	f.Add([]byte("version: 1\ndatabases: [{name: a}]\n"))
	f.Add([]byte("{{{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fl, err := Load(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidFleet) {
				t.Fatalf("error does not wrap ErrInvalidFleet: %v", err)
			}
			return
		}
		for _, d := range fl.Databases {
			if _, ok := d.Schedule(events.Full); !ok {
				t.Fatalf("accepted database %q without a full schedule", d.Name)
			}
		}
	})
}

// Problem 1: a deployed fleet must name each database's executor, and cannot name the local
// stack's simulated Db2; only a loader told of it (the local stack) accepts it.
func TestDeployedFleetNamesARealExecutor(t *testing.T) {
	db := func(executor string) string {
		return "version: 1\ndatabases:\n  - name: a\n    instance: i\n    key_crn: " + goodKey + "\n    schedules: {full: \"@daily\"}\n" + executor
	}
	if _, err := Load([]byte(db(""))); err == nil || !strings.Contains(err.Error(), "executor is required") {
		t.Fatalf("no executor: %v", err)
	}
	if _, err := Load([]byte(db("    executor: simulated\n"))); err == nil || !strings.Contains(err.Error(), "cannot back up a deployed database") {
		t.Fatalf("simulated in a deployment: %v", err)
	}
	if _, err := Load([]byte("version: 1\ndefaults: {executor: simulated}\n" + db("")[len("version: 1\n"):])); err == nil {
		t.Fatal("simulated through defaults was accepted")
	}
	if _, err := Load([]byte(db("    executor: simulated\n")), WithExecutors("simulated")); err != nil {
		t.Fatalf("the local stack's loader refused its simulated executor: %v", err)
	}
	for _, e := range []string{"db2cli\n    backup_dir: /b", "db2saas"} {
		if _, err := Load([]byte(db("    executor: " + e + "\n"))); err != nil {
			t.Fatalf("executor %s: %v", e, err)
		}
	}
	f, err := Load(Example)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range f.Databases {
		if d.Executor != ExecDb2CLI && d.Executor != ExecDb2SaaS {
			t.Fatalf("the shipped example names executor %q for %s", d.Executor, d.Name)
		}
	}
}

// TestSchedulesAreUTC: schedules are UTC. A CRON_TZ= or TZ= prefix would give slots the local
// clock's gaps and repeats (the weekly full skipped on the spring-forward Sunday, run twice on the
// fall-back Sunday), so validation refuses it; the UTC schedule has exactly one slot on each of
// those days.
func TestSchedulesAreUTC(t *testing.T) {
	fleet := func(expr string) string {
		return "version: 1\ndatabases:\n  - name: a\n    instance: x\n    executor: db2saas\n    key_crn: " + goodKey + "\n    schedules: {full: \"" + expr + "\"}\n"
	}
	for _, expr := range []string{
		"CRON_TZ=America/New_York 30 2 * * 0",
		"TZ=Europe/Berlin @weekly",
		"CRON_TZ=UTC", // no space: the cron parser itself would panic on this one
		" CRON_TZ=UTC 0 2 * * *",
		"0 2 * * 0 TZ=UTC",
	} {
		_, err := Load([]byte(fleet(expr)))
		if !errors.Is(err, ErrInvalidFleet) || !strings.Contains(err.Error(), "schedules are UTC") {
			t.Errorf("schedule %q: Load = %v, want a refusal saying schedules are UTC", expr, err)
		}
	}

	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	days := []struct {
		name  string
		day   time.Time // local midnight of a clock change
		local string    // the weekly full at a local time the change skips or repeats
		want  int       // slots of that local schedule on the day
	}{
		{"New York spring forward", time.Date(2026, 3, 8, 0, 0, 0, 0, ny), "30 2 * * 0", 0},
		{"New York fall back", time.Date(2026, 11, 1, 0, 0, 0, 0, ny), "30 1 * * 0", 2},
		{"Berlin spring forward", time.Date(2026, 3, 29, 0, 0, 0, 0, berlin), "30 2 * * 0", 0},
		{"Berlin fall back", time.Date(2026, 10, 25, 0, 0, 0, 0, berlin), "30 2 * * 0", 2},
	}
	slots := func(s interface{ Next(time.Time) time.Time }, from, to time.Time) int {
		n := 0
		for at := s.Next(from.Add(-time.Second)); !at.IsZero() && at.Before(to); at = s.Next(at) {
			n++
		}
		return n
	}
	for _, d := range days {
		t.Run(d.name, func(t *testing.T) {
			next := d.day.AddDate(0, 0, 1)
			if hours := next.Sub(d.day); hours == 24*time.Hour {
				t.Fatalf("%s is not a clock change day", d.day.Format(time.DateOnly))
			}
			// What the prefix would do (robfig/cron honours it): the hazard the refusal avoids.
			tz := "CRON_TZ=" + d.day.Location().String() + " " + d.local
			if raw, err := cronParser.Parse(tz); err != nil || slots(raw, d.day, next) != d.want {
				t.Fatalf("%q: %v; the local schedule no longer shows the hazard (want %d slots)", tz, err, d.want)
			}
			// The accepted UTC schedule: one slot in the 24 UTC hours from the day's start, and
			// one on each of the 7 days around the change.
			f, err := Load([]byte(fleet(d.local)))
			if err != nil {
				t.Fatal(err)
			}
			db, _ := f.Database("a")
			s, _ := db.Schedule(events.Full)
			utcDay := time.Date(d.day.Year(), d.day.Month(), d.day.Day(), 0, 0, 0, 0, time.UTC)
			if n := slots(s, utcDay, utcDay.AddDate(0, 0, 1)); n != 1 {
				t.Errorf("UTC schedule %q: %d slots on %s, want 1", d.local, n, utcDay.Format(time.DateOnly))
			}
			if n := slots(s, utcDay.AddDate(0, 0, -3), utcDay.AddDate(0, 0, 4)); n != 1 {
				t.Errorf("UTC schedule %q: %d slots in the week around the change, want 1", d.local, n)
			}
		})
	}
}

// fleetOf returns a policy of n Db2 on Cloud databases over n/500 keys.
func fleetOf(n int) []byte {
	var b strings.Builder
	b.WriteString("version: 1\ndefaults: {executor: db2saas}\ndatabases:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - name: db%06d\n    instance: \"crn:v1:bluemix:public:dashdb-for-transactions:us-south:a/0123456789abcdef0123456789abcdef:7a1b2c3d-0000-4000-8000-%012d::\"\n    key_crn: crn:v1:bluemix:public:kms:us-south:a/0123456789abcdef0123456789abcdef:5f1e2d3c-0000-4000-8000-00000000aaaa:key:0b1c2d3e-0000-4000-8000-%012d\n    schedules: {full: \"%d 2 * * *\"}\n", i, i, i/500, i%60)
	}
	return []byte(b.String())
}

func TestLargeFleetIsIndexed(t *testing.T) {
	f, err := Load(fleetOf(5000))
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := f.Database("db004321"); !ok || d.Name != "db004321" {
		t.Fatalf("Database = %+v %v", d, ok)
	}
	if _, ok := f.Database("nope"); ok {
		t.Fatal("found a database that is not there")
	}
	if keys := f.KeyCRNs(); len(keys) != 10 || len(f.ByKey(keys[3])) != 500 || f.ByKey(keys[3])[0].Name != "db001500" {
		t.Fatalf("%d keys, %d databases on the fourth", len(keys), len(f.ByKey(keys[3])))
	}
	// A fleet changed after Load is searched without the stale index.
	f.Databases = append(f.Databases, f.Databases[0])
	f.Databases[len(f.Databases)-1].Name = "added"
	if _, ok := f.Database("added"); !ok {
		t.Fatal("a database added after Load is not found")
	}
}

// BenchmarkLoadFleet: parse and validate a 10,000- and a 50,000-database policy (Db2 on Cloud
// CRNs, about 360 bytes a database), beside the floor of decoding the same YAML into untyped
// nodes.
func BenchmarkLoadFleet(b *testing.B) {
	for _, n := range []int{10000, 50000} {
		y := fleetOf(n)
		b.Run(fmt.Sprintf("Load/%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(y)))
			for b.Loop() {
				if _, err := Load(y); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("yaml.Node/%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(y)))
			for b.Loop() {
				var node yaml.Node
				if err := yaml.Unmarshal(y, &node); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestTablespaceSchedule: schedules.tablespace with its table spaces sits beside the database's
// schedules; partitioned and log_archive are read.
func TestTablespaceSchedule(t *testing.T) {
	f, err := Load([]byte(`version: 1
databases:
  - name: sales
    instance: db2inst1@h
    key_crn: ` + goodKey + `
    executor: db2cli
    partitioned: true
    log_archive: {cos_prefix: "db2logs/", prune: true}
    schedules: {full: "0 2 * * 0", incremental: "0 2 * * 1-6", tablespace: "0 14 * * *"}
    tablespaces: [TS_ORDERS, TS_LINES]
`))
	if err != nil {
		t.Fatal(err)
	}
	d := f.Databases[0]
	if !d.TablespaceBackups() || !d.Partitioned || !d.LogArchive.Prune || d.LogArchive.COSPrefix != "db2logs/" {
		t.Fatalf("%+v", d)
	}
	if _, ok := d.Schedule(TablespaceSchedule); !ok {
		t.Fatal("no parsed table space schedule")
	}
	if _, ok := d.Schedule(events.Full); !ok {
		t.Fatal("the full schedule is gone")
	}
}
