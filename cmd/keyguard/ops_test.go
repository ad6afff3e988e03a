package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/catalog/catalogtest"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/state"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestMain runs main itself when KEYGUARD_TEST_MAIN holds the arguments, so that exit codes
// can be checked in a child process.
func TestMain(m *testing.M) {
	if args, ok := os.LookupEnv("KEYGUARD_TEST_MAIN"); ok {
		os.Args = append([]string{"keyguard"}, strings.Fields(args)...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

var testNow = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

const keyV2 = "9c4e1a77-2b5d-4f6e-8a10-0000000000v2"

type sent struct {
	id string
	p  events.Payload
}

// fakeSender records what is sent; err, when set, is returned instead.
type fakeSender struct {
	sent []sent
	err  error
}

func (f *fakeSender) Send(_ context.Context, id string, p events.Payload) error {
	if f.err != nil {
		return f.err
	}
	f.sent = append(f.sent, sent{id, p})
	return nil
}

// db1Entries: three weekly fulls with incrementals and deltas; a key rotation on 11-14 puts the
// newest chain under key version 2, and the newest delta is not verified yet.
func db1Entries() []catalog.Entry {
	s := catalogtest.Sample
	e := []catalog.Entry{
		s("db1", "20261101010000", events.Full, ""),
		s("db1", "20261102010000", events.Incremental, "20261101010000"),
		s("db1", "20261102130000", events.Delta, "20261102010000"),
		s("db1", "20261108010000", events.Full, ""),
		s("db1", "20261109010000", events.Incremental, "20261108010000"),
		s("db1", "20261115010000", events.Full, ""),
		s("db1", "20261116010000", events.Delta, "20261115010000"),
		s("db1", "20261116130000", events.Delta, "20261116010000"),
	}
	for i := 5; i < len(e); i++ {
		e[i].KeyVersion = keyV2
	}
	e[7].Verification = catalog.Verification{}
	e[7].LogRange = catalog.LogRange{First: "S0000120.LOG", Last: "S0000124.LOG"}
	return e
}

// db2Entries: two offline fulls, nothing else.
func db2Entries() []catalog.Entry {
	var out []catalog.Entry
	for _, ts := range []string{"20261110020000", "20261111020000"} {
		e := catalogtest.Sample("db2", ts, events.Full, "")
		e.Mode = events.Offline
		out = append(out, e)
	}
	return out
}

func states() []*state.State {
	at := func(d, h int) time.Time { return time.Date(2026, 11, d, h, 0, 0, 0, time.UTC) }
	db1 := state.New("db1", catalogtest.KeyCRN)
	db1.Revision = 42
	db1.Key = state.KeyInfo{CRN: catalogtest.KeyCRN, Version: keyV2, State: events.KeyActive, RotatedAt: at(14, 9)}
	db1.Run = &state.Run{ID: "db1-delta-20261119T130000Z-a2", Type: events.Delta, Mode: events.Online, Slot: at(19, 13), Attempt: 2,
		StartedAt: at(19, 23), LeaseUntil: at(20, 5), KeyVersion: keyV2}
	db1.LastSuccess = &state.Outcome{RunID: "db1-delta-20261116T130000Z-a1", Type: events.Delta, At: at(16, 13), KeyVersion: keyV2}
	db1.LastFailure = &state.Outcome{RunID: "db1-delta-20261119T130000Z-a1", Type: events.Delta, At: at(19, 14),
		Class: events.Transient, Message: "SQL2062N media error"}
	db1.ConsecutiveFailures = 1
	db1.LastDecision = &state.Decision{At: at(19, 23), Action: "start", Type: events.Delta, Reason: "retry due"}
	db1.PendingAlerts = []state.PendingAlert{{ID: "a1", Alert: events.Alert{Severity: "HIGH", Reason: "backup-failures", Message: "x"}}}

	db2 := state.New("db2", catalogtest.KeyCRN)
	db2.Revision = 7
	db2.Key = state.KeyInfo{CRN: catalogtest.KeyCRN, Version: catalogtest.KeyV1, State: events.KeySuspended, Blocked: true}
	db2.Window = &state.RotationWindow{FromVersion: catalogtest.KeyV1, ToVersion: keyV2, OpenedAt: at(19, 9),
		MinCloseAt: at(19, 9).Add(15 * time.Minute), MaxCloseAt: at(19, 13), DetectedBy: "watcher"}
	db2.NextRetry = &state.Retry{At: at(20, 2), Type: events.Full, Slot: at(19, 2), Attempt: 2}
	db2.NeedFull, db2.NeedFullReason = true, "rotated to key version "+keyV2
	db2.LastDecision = &state.Decision{At: at(19, 23), Action: "defer", Reason: "rotation window"}
	return []*state.State{db1, db2}
}

type fixture struct {
	o      *ops
	objs   objstore.Store
	sender *fakeSender
	out    *bytes.Buffer
}

// seed returns ops over an in-memory store holding the states, the catalogs of db1 and db2 and
// their image files, and the fleet of testdata/fleet.yaml.
func seed(t *testing.T) fixture {
	t.Helper()
	ctx := context.Background()
	objs := objstore.NewMemory()
	for _, st := range states() {
		if _, err := state.NewObjectStore(objs).Put(ctx, st.Database, st, ""); err != nil {
			t.Fatal(err)
		}
	}
	cat := catalog.New(objs)
	for _, e := range append(db1Entries(), db2Entries()...) {
		if err := cat.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
		for _, img := range e.Images {
			if _, err := objs.Put(ctx, img.Key, []byte("image"), objstore.Cond{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	b, err := os.ReadFile("testdata/fleet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	fleet, err := config.Load(b)
	if err != nil {
		t.Fatal(err)
	}
	f := fixture{objs: objs, sender: &fakeSender{}, out: &bytes.Buffer{}}
	f.o = &ops{objs: objs, fleet: config.Static{F: fleet}, sender: f.sender, out: f.out,
		now: func() time.Time { return testNow }, newID: func() string { return "req-1" }, user: "alice"}
	return f
}

// run parses args and runs the command against f.
func (f fixture) run(t *testing.T, args ...string) error {
	t.Helper()
	act, err := parseOps(args)
	if err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	return act(context.Background(), f.o)
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestGoldenOutput(t *testing.T) {
	cases := []struct {
		name string
		args []string
	}{
		{"status", []string{"status"}},
		{"status-db2", []string{"status", "db2"}},
		{"status-json", []string{"status", "-json", "db1", "db3"}},
		{"backup-list", []string{"backup", "list", "db1"}},
		{"backup-list-json", []string{"backup", "list", "-json", "db2"}},
		{"backup-list-empty", []string{"backup", "list", "db3"}},
		{"backup-show", []string{"backup", "show", "db1", "20261116130000"}},
		{"backup-show-json", []string{"backup", "show", "-json", "db1", "20261109010000"}},
		{"backup-create", []string{"backup", "create", "-type", "incremental", "-reason", "before the upgrade", "db1"}},
		{"plan-restore", []string{"plan-restore", "db1"}},
		{"plan-restore-at", []string{"plan-restore", "-at", "2026-11-10T12:00:00+01:00", "db1"}},
		{"plan-restore-json", []string{"plan-restore", "-json", "db2"}},
		{"prune-dry-run", []string{"prune", "-dry-run", "db1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := seed(t)
			if err := f.run(t, tc.args...); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name, f.out.Bytes())
		})
	}
}

func TestStatusUnknownDatabase(t *testing.T) {
	f := seed(t)
	if err := f.run(t, "status", "nosuchdb"); err == nil || !strings.Contains(err.Error(), "not in the fleet policy") {
		t.Errorf("status of an unknown database = %v, want an error saying it is not in the fleet", err)
	}
}

func TestBackupShowMissing(t *testing.T) {
	f := seed(t)
	if err := f.run(t, "backup", "show", "db1", "20261117010000"); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("show of a missing backup = %v, want ErrNotFound", err)
	}
}

func TestBackupCreate(t *testing.T) {
	f := seed(t)
	if err := f.run(t, "backup", "create", "-mode", "offline", "db3"); err != nil {
		t.Fatal(err)
	}
	want := events.BackupRequested{Database: "db3", Type: events.Full, Mode: events.Offline, RequestedBy: "keyguard-cli:alice"}
	if len(f.sender.sent) != 1 || f.sender.sent[0].id != "req-1" || f.sender.sent[0].p != want {
		t.Fatalf("sent %+v, want one %+v under id req-1", f.sender.sent, want)
	}
	if strings.Contains(f.out.String(), "warning") {
		t.Errorf("a database with no state got a warning:\n%s", f.out)
	}

	t.Run("refusals are announced", func(t *testing.T) {
		f := seed(t)
		if err := f.run(t, "backup", "create", "db2"); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(f.out.String(), "warning: the scheduler will refuse it unless this changes first: key not active (suspended)") {
			t.Errorf("no warning about the blocked key:\n%s", f.out)
		}
	})
	t.Run("unknown database sends nothing", func(t *testing.T) {
		f := seed(t)
		if err := f.run(t, "backup", "create", "nosuchdb"); err == nil {
			t.Error("create for a database outside the fleet succeeded")
		}
		if len(f.sender.sent) != 0 {
			t.Errorf("sent %+v", f.sender.sent)
		}
	})
	t.Run("send error", func(t *testing.T) {
		f := seed(t)
		f.sender.err = errors.New("en down")
		if err := f.run(t, "backup", "create", "db3"); err == nil || !strings.Contains(err.Error(), "en down") {
			t.Errorf("create with a failing sender = %v", err)
		}
	})
}

func TestBackupDelete(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		noRun   bool   // clear db1's run in flight first
		refused string // part of the refusal; "" = deleted
	}{
		{name: "full other images build on", args: []string{"db1", "20261115010000"},
			refused: "20261116130000-delta, 20261116010000-delta build on it"},
		{name: "force never breaks a chain", args: []string{"-force", "db1", "20261108010000"},
			refused: "20261109010000-incremental builds on it"},
		{name: "ancestor of a delta", args: []string{"db1", "20261102010000"}, refused: "20261102130000-delta builds on it"},
		{name: "newest chain while a run is in flight", args: []string{"db1", "20261116130000"}, refused: "run db1-delta-20261119T130000Z-a2 is in flight"},
		{name: "newest leaf with no run", args: []string{"db1", "20261116130000"}, noRun: true},
		{name: "leaf off the newest chain", args: []string{"db1", "20261109010000"}},
		{name: "below keep_fulls", args: []string{"db2", "20261110020000"},
			refused: "1 full backup would remain and the retention policy keeps 2 (keep_fulls); -force allows it"},
		{name: "below keep_fulls with force", args: []string{"-force", "db2", "20261110020000"}},
		{name: "full with older fulls left", args: []string{"db1", "20261101010000"}, refused: "20261102130000-delta, 20261102010000-incremental build on it"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := seed(t)
			ctx := context.Background()
			if tc.noRun {
				states := state.NewObjectStore(f.objs)
				st, etag, err := states.Get(ctx, "db1")
				if err != nil {
					t.Fatal(err)
				}
				st.Run = nil
				if _, err := states.Put(ctx, "db1", st, etag); err != nil {
					t.Fatal(err)
				}
			}
			db, ts := tc.args[len(tc.args)-2], tc.args[len(tc.args)-1]
			before, _ := f.objs.List(ctx, "")
			err := f.run(t, append([]string{"backup", "delete"}, tc.args...)...)
			after, _ := f.objs.List(ctx, "")
			_, gerr := catalog.New(f.objs).Get(ctx, db, ts)
			if tc.refused != "" {
				if !errors.Is(err, errRefused) || !strings.Contains(err.Error(), tc.refused) {
					t.Errorf("delete = %v, want a refusal saying %q", err, tc.refused)
				}
				if len(after) != len(before) || gerr != nil {
					t.Errorf("a refused delete changed the store: %d objects, then %d; Get: %v", len(before), len(after), gerr)
				}
				return
			}
			if err != nil {
				t.Fatalf("delete = %v", err)
			}
			if !errors.Is(gerr, catalog.ErrNotFound) {
				t.Errorf("entry still there after delete: %v", gerr)
			}
			if len(after) != len(before)-2 { // the entry and its one image file
				t.Errorf("%d objects before, %d after; want 2 fewer", len(before), len(after))
			}
			if !strings.HasPrefix(f.out.String(), "deleted "+ts) {
				t.Errorf("output %q", f.out)
			}
		})
	}

	t.Run("force never deletes the last full", func(t *testing.T) {
		f := seed(t)
		if err := f.run(t, "backup", "delete", "-force", "db2", "20261110020000"); err != nil {
			t.Fatal(err)
		}
		err := f.run(t, "backup", "delete", "-force", "db2", "20261111020000")
		if !errors.Is(err, errRefused) || !strings.Contains(err.Error(), "last full backup") {
			t.Errorf("delete of the last full = %v, want a refusal", err)
		}
	})
	t.Run("missing entry", func(t *testing.T) {
		f := seed(t)
		if err := f.run(t, "backup", "delete", "db1", "20261117010000"); !errors.Is(err, catalog.ErrNotFound) {
			t.Errorf("delete of a missing entry = %v, want ErrNotFound", err)
		}
	})
	t.Run("database outside the fleet", func(t *testing.T) {
		f := seed(t)
		if err := f.run(t, "backup", "delete", "dbx", "20261117010000"); err == nil || !strings.Contains(err.Error(), "not in the fleet policy") {
			t.Errorf("delete in an unknown database = %v", err)
		}
	})
}

func TestPlanRestoreDestroyedKey(t *testing.T) {
	f := seed(t)
	ctx := context.Background()
	states := state.NewObjectStore(f.objs)
	st, etag, err := states.Get(ctx, "db2")
	if err != nil {
		t.Fatal(err)
	}
	st.Key.State = events.KeyDestroyed
	if _, err := states.Put(ctx, "db2", st, etag); err != nil {
		t.Fatal(err)
	}
	if err := f.run(t, "plan-restore", "db2"); !errors.Is(err, catalog.ErrNoRestorableChain) {
		t.Errorf("plan-restore under a destroyed key = %v, want ErrNoRestorableChain", err)
	}
	if err := f.run(t, "plan-restore", "db3"); err == nil || !strings.Contains(err.Error(), "no backups of db3") {
		t.Errorf("plan-restore with an empty catalog = %v", err)
	}
}

func TestPrune(t *testing.T) {
	f := seed(t)
	ctx := context.Background()
	if err := f.run(t, "prune", "db1"); err != nil {
		t.Fatal(err)
	}
	got, err := catalog.New(f.objs).List(ctx, "db1")
	if err != nil {
		t.Fatal(err)
	}
	want := "[20261108010000-full 20261109010000-incremental 20261115010000-full 20261116010000-delta 20261116130000-delta]"
	if names := catalogtest.Names(got); strings.Join(names, " ") != strings.Trim(want, "[]") {
		t.Errorf("after prune the catalog holds %v, want %s", names, want)
	}
	imgs, err := f.objs.List(ctx, "images/db1/")
	if err != nil || len(imgs) != len(got) {
		t.Errorf("after prune %d image files remain (%v), want %d", len(imgs), err, len(got))
	}
	for _, ts := range []string{"20261102130000-delta", "20261102010000-incremental", "20261101010000-full"} {
		if !strings.Contains(f.out.String(), "deleted "+ts) {
			t.Errorf("output does not say %s was deleted:\n%s", ts, f.out)
		}
	}
	// A second prune keeps everything.
	f.out.Reset()
	if err := f.run(t, "prune", "db1"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(f.out.String(), "deleted") {
		t.Errorf("second prune deleted something:\n%s", f.out)
	}
}

// TestPruneAndDeleteWaitForUnreadableEntries: while an object of the catalog cannot be read (an
// entry of a newer schema), prune deletes nothing and says why, and backup delete refuses.
func TestPruneAndDeleteWaitForUnreadableEntries(t *testing.T) {
	f := seed(t)
	ctx := context.Background()
	key := catalog.Key("db1", "20261117010000", events.Delta)
	if _, err := f.objs.Put(ctx, key, []byte(`{"schema_version": 99}`), objstore.Cond{}); err != nil {
		t.Fatal(err)
	}
	if err := f.run(t, "prune", "db1"); err != nil {
		t.Fatal(err)
	}
	if got, _ := catalog.New(f.objs).List(ctx, "db1"); len(got) != len(db1Entries()) {
		t.Errorf("prune deleted entries while %s is unreadable: %d left", key, len(got))
	}
	if out := f.out.String(); strings.Contains(out, "deleted ") || !strings.Contains(out, key) {
		t.Errorf("prune output does not name the unreadable object or deleted something:\n%s", out)
	}
	if err := f.run(t, "backup", "delete", "db1", "20261101010000"); !errors.Is(err, errRefused) || !strings.Contains(err.Error(), key) {
		t.Errorf("backup delete = %v, want a refusal naming %s", err, key)
	}
}

func TestPruneDryRunDeletesNothing(t *testing.T) {
	f := seed(t)
	ctx := context.Background()
	before, _ := f.objs.List(ctx, "")
	if err := f.run(t, "prune", "-dry-run", "db1"); err != nil {
		t.Fatal(err)
	}
	if after, _ := f.objs.List(ctx, ""); len(after) != len(before) {
		t.Errorf("dry run changed the store: %d objects, then %d", len(before), len(after))
	}
}

func TestUsageErrors(t *testing.T) {
	cases := [][]string{
		{},
		{"frobnicate"},
		{"backup"},
		{"backup", "frob"},
		{"status", "-x"},
		{"status", "db1", "bad/name"},
		{"backup", "list"},
		{"backup", "list", "db1", "extra"},
		{"backup", "list", "db1", "-json"},
		{"backup", "show", "db1"},
		{"backup", "show", "db1", "2024"},
		{"backup", "create", "-type", "weekly", "db1"},
		{"backup", "create", "-mode", "warm", "db1"},
		{"backup", "create"},
		{"backup", "delete", "db1"},
		{"backup", "delete", "-force", "db1", "notatime"},
		{"plan-restore", "-at", "yesterday", "db1"},
		{"plan-restore"},
		{"prune"},
		{"prune", "-dry-run", "db1", "db2"},
	}
	for _, args := range cases {
		_, err := parseOps(args)
		var ue *usageError
		if !errors.As(err, &ue) || ue.err == nil || ue.usage == "" {
			t.Errorf("parseOps(%q) = %v, want a usage error with usage text", args, err)
		}
	}
	_, err := parseOps([]string{"backup", "delete", "-h"})
	var ue *usageError
	if !errors.As(err, &ue) || ue.err != nil || !strings.Contains(ue.usage, "-force") {
		t.Errorf("parseOps(-h) = %v, want help with the flags", err)
	}
}

// TestExitCodes runs main in a child process with no KEYGUARD_ variables.
func TestExitCodes(t *testing.T) {
	cases := []struct {
		args   string
		code   int
		stderr string
	}{
		{"backup list", 2, "missing arguments"},
		{"frobnicate", 2, "unknown command"},
		{"prune -h", 0, ""},
		{"status", 1, "KEYGUARD_COS_BUCKET is required"},
	}
	for _, tc := range cases {
		t.Run(tc.args, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = []string{"KEYGUARD_TEST_MAIN=" + tc.args}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code || !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("keyguard %s: exit %d, stderr %q; want exit %d and %q", tc.args, code, stderr.String(), tc.code, tc.stderr)
			}
		})
	}
}

func TestOpsFromEnv(t *testing.T) {
	env := map[string]string{
		"KEYGUARD_COS_ENDPOINT": "http://127.0.0.1:1", "KEYGUARD_COS_BUCKET": "b",
		"KEYGUARD_COS_HMAC_KEY_ID": "k", "KEYGUARD_COS_HMAC_SECRET": "s",
		"KEYGUARD_EN_URL": "http://127.0.0.1:1", "KEYGUARD_EN_INSTANCE_ID": "i", "KEYGUARD_EN_SOURCE_ID": "s",
		"KEYGUARD_API_KEY": "key", "KEYGUARD_IAM_URL": "http://127.0.0.1:1", "KEYGUARD_FLEET_FILE": "testdata/fleet.yaml",
		"USER": "bob",
	}
	o, err := opsFromEnv(func(k string) string { return env[k] }, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	fleet, err := o.fleet.Fleet(context.Background())
	if err != nil || len(fleet.Databases) != 3 {
		t.Fatalf("fleet from KEYGUARD_FLEET_FILE: %v, %v", fleet, err)
	}
	if o.user != "bob" || o.objs == nil || o.sender == nil || !strings.HasPrefix(o.newID(), "keyguard-cli-") || o.newID() == o.newID() {
		t.Errorf("ops from env: %+v", o)
	}
	delete(env, "USER")
	o, err = opsFromEnv(func(k string) string { return env[k] }, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.user != "operator" {
		t.Errorf("without USER: user %q, want operator", o.user)
	}
}

// TestDependentsAcrossFallBack: a delta taken in the hour repeated when clocks go back carries a
// smaller timestamp than its parent; backup delete still counts it as depending on that parent,
// as retention does, even when its chain is broken (here by a discarded delta Db2 built it on).
func TestDependentsAcrossFallBack(t *testing.T) {
	hist := catalogtest.FallBack("db1")
	full, d1 := hist[0], hist[1]
	gone := catalogtest.SampleAt("db1", d1.StartedAt.Add(-30*time.Minute).In(time.FixedZone("EST", -5*3600)), events.Delta, full.ImageTimestamp)
	gone = catalogtest.Discard(gone, "upload failed")
	list := []catalog.Entry{full, gone, d1}
	if _, err := catalog.Chain(list, d1.ImageTimestamp); !errors.Is(err, catalog.ErrBrokenChain) {
		t.Fatalf("Chain(%s) = %v, want broken by the discarded delta", d1.Name(), err)
	}
	if deps := dependents(list, full.ImageTimestamp); len(deps) != 2 || deps[0] != d1.Name() {
		t.Errorf("dependents of %s = %v, want %s and %s", full.Name(), deps, d1.Name(), gone.Name())
	}
	if n := countFulls(append(list, catalogtest.Discard(catalogtest.Sample("db1", "20241104010000", events.Full, ""), "x"))); n != 1 {
		t.Errorf("countFulls = %d, want 1 (a discarded full does not count)", n)
	}
}
