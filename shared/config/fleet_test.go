package config

import (
	"errors"
	"strings"
	"testing"
	"time"

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
