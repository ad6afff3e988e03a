package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"io"
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
	"github.com/keyguard-dev/keyguard/shared/runtime"
	"github.com/keyguard-dev/keyguard/shared/state"
	"github.com/keyguard-dev/keyguard/shared/upload"
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
	db1.LastSuccess = &state.Outcome{RunID: "db1-delta-20261116T130000Z-a1", Type: events.Delta, At: at(16, 13), KeyVersion: keyV2,
		RequestedBy: "keyguard-cli:alice (request 0f1e2d3c)", Reason: "before the upgrade"}
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
	errOut *bytes.Buffer
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
	f := fixture{objs: objs, sender: &fakeSender{}, out: &bytes.Buffer{}, errOut: &bytes.Buffer{}}
	f.o = &ops{objs: objs, fleet: config.Static{F: fleet}, sender: f.sender, download: memDownloader{objs}, out: f.out, errOut: f.errOut,
		now: func() time.Time { return testNow }, newID: func() string { return "1a2b3c4d5e6f7a8b" }, user: "alice",
		pollEvery: time.Second, sleep: func(context.Context, time.Duration) error { return errors.New("no wait in this test") },
		bucket: "b", fleetKey: defaultFleetKey}
	return f
}

// app is the command line's view of f.
func (f fixture) app() *app {
	return &app{out: f.out, errOut: f.errOut, getenv: func(string) string { return "" }, build: func(need) (*ops, error) { return f.o, nil }}
}

// run runs the command line args against f; a usage error fails the test.
func (f fixture) run(t *testing.T, args ...string) error {
	t.Helper()
	_, err := run(context.Background(), args, f.app())
	var ue *usageError
	if errors.As(err, &ue) {
		t.Fatalf("keyguard %q: usage error: %v", args, err)
	}
	return err
}

// memDownloader serves image files from a store, a MiB per write.
type memDownloader struct{ objs objstore.Store }

func (d memDownloader) Download(ctx context.Context, key string, w io.Writer) (upload.Object, error) {
	b, _, err := d.objs.Get(ctx, key)
	if err != nil {
		return upload.Object{}, err
	}
	for rest := b; len(rest) > 0; {
		n := min(len(rest), 1<<20)
		if _, err := w.Write(rest[:n]); err != nil {
			return upload.Object{}, err
		}
		rest = rest[n:]
	}
	sum := sha256.Sum256(b)
	return upload.Object{Key: key, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])}, nil
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
		{"status-db1-db3", []string{"status", "db1", "db3"}},
		{"status-json", []string{"status", "-json", "db1", "db3"}},
		{"backup-list", []string{"backup", "list", "db1"}},
		{"backup-list-json", []string{"backup", "list", "db2", "-json"}},
		{"backup-list-empty", []string{"backup", "list", "db3"}},
		{"backup-show", []string{"backup", "show", "db1", "20261116130000"}},
		{"backup-show", []string{"backup", "show", "db1", "latest"}},
		{"backup-show-json", []string{"backup", "show", "--json", "db1", "20261109010000"}},
		{"backup-create", []string{"backup", "create", "db1", "-type", "incremental", "-reason", "before the upgrade"}},
		{"backup-delete-dry-run", []string{"backup", "delete", "db1", "20261109010000"}},
		{"plan-restore", []string{"plan-restore", "db1"}},
		{"plan-restore-at", []string{"plan-restore", "db1", "-at", "2026-11-10T12:00:00+01:00"}},
		{"plan-restore-date", []string{"plan-restore", "db1", "-at=2026-11-10"}},
		{"plan-restore-json", []string{"plan-restore", "-json", "db2"}},
		{"prune-dry-run", []string{"prune", "db1"}},
		{"prune-dry-run", []string{"prune", "-dry-run", "db1"}},
		{"fleet-validate", []string{"fleet", "validate", "testdata/fleet.yaml"}},
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

// TestUnknownDatabase: every read command says the same of a database keyguard knows nothing
// of, and fails; a database of the fleet with no backups yet is not an error.
func TestUnknownDatabase(t *testing.T) {
	for _, args := range [][]string{{"status", "nosuchdb"}, {"backup", "list", "nosuchdb"}, {"backup", "list", "nosuchdb", "-json"}} {
		f := seed(t)
		if err := f.run(t, args...); err == nil || err.Error() != unknownDatabase("nosuchdb").Error() {
			t.Errorf("keyguard %q = %v, want %v", args, err, unknownDatabase("nosuchdb"))
		}
	}
	f := seed(t)
	if err := f.run(t, "backup", "list", "db3", "-json"); err != nil || strings.TrimSpace(f.out.String()) != "[]" {
		t.Errorf("backup list of a database with no backups = %v, %q", err, f.out)
	}
}

// TestMissingFleetObject: without a policy object, the error names the key and how to upload
// one, not the store's 404.
func TestMissingFleetObject(t *testing.T) {
	f := seed(t)
	f.o.fleet = policySource{src: &runtime.COSFleet{Objects: f.objs, Key: defaultFleetKey, TTL: time.Minute}, o: f.o}
	err := f.run(t, "status")
	for _, want := range []string{"no fleet policy at config/fleet.yaml in bucket b", config.EnvFleetKey, "keyguard fleet push FILE", config.EnvFleetFile} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("status without a policy = %v, want it to say %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "not found") {
		t.Errorf("the store's error shows through: %v", err)
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
	want := events.BackupRequested{Database: "db3", Type: events.Full, Mode: events.Offline, RequestedBy: "keyguard-cli:alice (request 1a2b3c4d)"}
	if len(f.sender.sent) != 1 || f.sender.sent[0].id != "keyguard-cli-1a2b3c4d5e6f7a8b" || f.sender.sent[0].p != want {
		t.Fatalf("sent %+v, want one %+v under id keyguard-cli-1a2b3c4d5e6f7a8b", f.sender.sent, want)
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
			err := f.run(t, append([]string{"backup", "delete", "-confirm"}, tc.args...)...)
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
		if err := f.run(t, "backup", "delete", "-force", "-confirm", "db2", "20261110020000"); err != nil {
			t.Fatal(err)
		}
		err := f.run(t, "backup", "delete", "-force", "db2", "20261111020000", "-confirm")
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
	if err := f.run(t, "prune", "db1", "-confirm"); err != nil {
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
	if err := f.run(t, "prune", "db1", "-confirm"); err != nil {
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
	if err := f.run(t, "prune", "db1", "-confirm"); err != nil {
		t.Fatal(err)
	}
	if got, _ := catalog.New(f.objs).List(ctx, "db1"); len(got) != len(db1Entries()) {
		t.Errorf("prune deleted entries while %s is unreadable: %d left", key, len(got))
	}
	if out := f.out.String(); strings.Contains(out, "deleted ") || !strings.Contains(out, key) {
		t.Errorf("prune output does not name the unreadable object or deleted something:\n%s", out)
	}
	if err := f.run(t, "backup", "delete", "db1", "20261101010000", "-confirm"); !errors.Is(err, errRefused) || !strings.Contains(err.Error(), key) {
		t.Errorf("backup delete = %v, want a refusal naming %s", err, key)
	}
}

// TestWritesAreDryRunsWithoutConfirm: prune and backup delete change nothing without -confirm
// (and say so), and still refuse what they would refuse.
func TestWritesAreDryRunsWithoutConfirm(t *testing.T) {
	for _, args := range [][]string{{"prune", "db1"}, {"prune", "-dry-run", "db1"}, {"backup", "delete", "db1", "20261109010000"},
		{"backup", "delete", "db2", "20261110020000", "-force"}} {
		f := seed(t)
		ctx := context.Background()
		before, _ := f.objs.List(ctx, "")
		if err := f.run(t, args...); err != nil {
			t.Fatalf("keyguard %q: %v", args, err)
		}
		if after, _ := f.objs.List(ctx, ""); len(after) != len(before) {
			t.Errorf("keyguard %q changed the store: %d objects, then %d", args, len(before), len(after))
		}
		if !strings.Contains(f.out.String(), "dry run: nothing deleted; add -confirm") {
			t.Errorf("keyguard %q does not say it was a dry run:\n%s", args, f.out)
		}
	}
	f := seed(t)
	if err := f.run(t, "backup", "delete", "db1", "20261115010000"); !errors.Is(err, errRefused) {
		t.Errorf("a dry run of a refused delete = %v, want the refusal", err)
	}
}

func TestUsageErrors(t *testing.T) {
	cases := [][]string{
		{},
		{"frobnicate"},
		{"stauts"},
		{"backup"},
		{"backup", "frob"},
		{"fleet"},
		{"status", "-x"},
		{"status", "db1", "bad/name"},
		{"backup", "list"},
		{"backup", "list", "db1", "extra"},
		{"backup", "show", "db1"},
		{"backup", "show", "db1", "2024"},
		{"backup", "create", "-type", "weekly", "db1"},
		{"backup", "create", "-mode", "warm", "db1"},
		{"backup", "create", "db1", "-timeout", "-1s"},
		{"backup", "create"},
		{"backup", "delete", "db1"},
		{"backup", "delete", "db1", "latest"},
		{"backup", "delete", "-force", "db1", "notatime"},
		{"backup", "fetch", "db1"},
		{"plan-restore", "-at", "yesterday", "db1"},
		{"plan-restore"},
		{"prune"},
		{"prune", "-dry-run", "db1", "db2"},
		{"prune", "-dry-run", "-confirm", "db1"},
		{"fleet", "validate"},
		{"version", "extra"},
	}
	for _, args := range cases {
		f := seed(t)
		_, err := run(context.Background(), args, f.app())
		var ue *usageError
		if !errors.As(err, &ue) {
			t.Errorf("keyguard %q = %v, want a usage error", args, err)
		}
	}
	f := seed(t)
	if _, err := run(context.Background(), []string{"backup", "delete", "-h"}, f.app()); err != nil || !strings.Contains(f.out.String(), "--force") {
		t.Errorf("backup delete -h = %v, want help with the flags:\n%s", err, f.out)
	}
	_, err := run(context.Background(), []string{"stauts"}, f.app())
	if err == nil || !strings.Contains(err.Error(), "did you mean status?") {
		t.Errorf("a misspelt command = %v, want a suggestion", err)
	}
}

// TestFlagsAnywhere: flags go before or after the arguments, with one dash or two.
func TestFlagsAnywhere(t *testing.T) {
	var outs []string
	for _, args := range [][]string{{"backup", "list", "-json", "db2"}, {"backup", "list", "db2", "-json"}, {"backup", "list", "db2", "--json"}} {
		f := seed(t)
		if err := f.run(t, args...); err != nil {
			t.Fatalf("keyguard %q: %v", args, err)
		}
		outs = append(outs, f.out.String())
	}
	for i := 1; i < len(outs); i++ {
		if outs[i] != outs[0] {
			t.Errorf("output %d differs from the first:\n%s\n---\n%s", i, outs[i], outs[0])
		}
	}
	if got := normalizeFlags([]string{"-json", "-at=2026-11-25", "-o", "x", "-x", "--", "-json"}, map[string]bool{"json": true, "at": true}); strings.Join(got, " ") != "--json --at=2026-11-25 -o x -x -- -json" {
		t.Errorf("normalizeFlags = %q", got)
	}
}

func TestParseAt(t *testing.T) {
	cases := map[string]time.Time{
		"2026-11-25":                time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC),
		"2026-11-25 10:30":          time.Date(2026, 11, 25, 10, 30, 0, 0, time.UTC),
		"2026-11-25T10:30:15":       time.Date(2026, 11, 25, 10, 30, 15, 0, time.UTC),
		"2026-11-25T10:30:00+01:00": time.Date(2026, 11, 25, 9, 30, 0, 0, time.UTC),
	}
	for in, want := range cases {
		if got, err := parseAt(in); err != nil || !got.Equal(want) {
			t.Errorf("parseAt(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "yesterday", "25/11/2026", "2026-11-25 25:00"} {
		if _, err := parseAt(bad); err == nil {
			t.Errorf("parseAt(%q) accepted", bad)
		}
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
		{"version", 0, ""},
		{"fleet validate testdata/fleet.yaml", 0, ""},
		{"fleet validate testdata/nosuchfile.yaml", 1, "no such file"},
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
			if strings.Contains(stderr.String(), "KEYGUARD_EN_") {
				t.Errorf("keyguard %s asks for Event Notifications, which only backup create uses: %s", tc.args, stderr.String())
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
	getenv := func(k string) string { return env[k] }
	o, err := opsFromEnv(getenv, needStore|needSender)
	if err != nil {
		t.Fatal(err)
	}
	fleet, err := o.fleet.Fleet(context.Background())
	if err != nil || len(fleet.Databases) != 3 {
		t.Fatalf("fleet from KEYGUARD_FLEET_FILE: %v, %v", fleet, err)
	}
	if o.user != "bob" || o.objs == nil || o.sender == nil || o.download == nil || len(o.newID()) != 16 || o.newID() == o.newID() {
		t.Errorf("ops from env: %+v", o)
	}
	delete(env, "USER")
	if o, err = opsFromEnv(getenv, needStore); err != nil || o.user != "operator" || o.sender != nil {
		t.Errorf("without USER: %+v, %v; want user operator and no sender for a read", o, err)
	}
	// Reading needs no Event Notifications and, with HMAC keys, no API key.
	for _, k := range []string{"KEYGUARD_EN_URL", "KEYGUARD_EN_INSTANCE_ID", "KEYGUARD_EN_SOURCE_ID", "KEYGUARD_API_KEY"} {
		delete(env, k)
	}
	if _, err := opsFromEnv(getenv, needStore); err != nil {
		t.Errorf("a read without Event Notifications: %v", err)
	}
	_, err = opsFromEnv(getenv, needStore|needSender)
	for _, want := range []string{"KEYGUARD_EN_URL is required", "KEYGUARD_EN_SOURCE_ID", "KEYGUARD_API_KEY", "make serve"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("sending without Event Notifications = %v, want it to say %q", err, want)
		}
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
	if deps := catalog.Dependents(list, full.ImageTimestamp); len(deps) != 2 || deps[0] != d1.Name() {
		t.Errorf("dependents of %s = %v, want %s and %s", full.Name(), deps, d1.Name(), gone.Name())
	}
	if n := countFulls(append(list, catalogtest.Discard(catalogtest.Sample("db1", "20241104010000", events.Full, ""), "x"))); n != 1 {
		t.Errorf("countFulls = %d, want 1 (a discarded full does not count)", n)
	}
}
