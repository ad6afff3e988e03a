package db2saas_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/db2saas"
	"github.com/keyguard-dev/keyguard/test/db2saasemu"
	"github.com/keyguard-dev/keyguard/test/testkit"
)

// executor is what the scheduler and the runner declare; the Executor must satisfy both halves.
type executor interface {
	Start(ctx context.Context, run events.BackupStarted) error
	Probe(ctx context.Context, run events.BackupStarted) (events.Payload, error)
}

var _ executor = (*db2saas.Executor)(nil)

func newExecutor(t *testing.T, s *stack) (*db2saas.Executor, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	return &db2saas.Executor{Client: s.client, Clock: s.clk, Log: slog.New(slog.NewTextHandler(&logs, nil)),
		Instances: db2saas.InstanceMap(map[string]string{"db1": crnA, "db9": crnB})}, &logs
}

func newRun(at time.Time) events.BackupStarted {
	return events.BackupStarted{Database: "db1", RunID: "db1/full/" + at.Format("20060102T1504") + "/1", Type: events.Full,
		Mode: events.Online, Slot: at, StartedAt: at, LeaseUntil: at.Add(6 * time.Hour), KeyCRN: testkit.KeyA,
		KeyVersion: "v2", Executor: db2saas.ExecutorName}
}

func TestStartIsIdempotent(t *testing.T) {
	s := newStack(t)
	x, _ := newExecutor(t, s)
	run := newRun(t0)
	ctx := context.Background()
	if err := x.Start(ctx, run); err != nil {
		t.Fatal(err)
	}
	s.clk.Advance(30 * time.Second)
	if err := x.Start(ctx, run); err != nil {
		t.Fatalf("second start: %v", err)
	}
	s.clk.Advance(backupD) // even after it completed, the run's backup is not made again
	if err := x.Start(ctx, run); err != nil {
		t.Fatalf("third start: %v", err)
	}
	if n := len(s.emu.Backups(crnA)); n != 1 {
		t.Fatalf("%d backups, want 1", n)
	}
	if n := countRequests(s.emu, "POST"); n != 1 {
		t.Fatalf("%d creates, want 1", n)
	}
}

func TestStartConcurrent(t *testing.T) {
	s := newStack(t)
	x, _ := newExecutor(t, s)
	run := newRun(t0)
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Go(func() { errs[i] = x.Start(context.Background(), run) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("start %d: %v", i, err)
		}
	}
	if n := len(s.emu.Backups(crnA)); n != 1 {
		t.Fatalf("%d backups after concurrent starts, want 1", n)
	}
}

func TestStartRefuses(t *testing.T) {
	incremental, offline, unknown, invalid, late := newRun(t0), newRun(t0), newRun(t0), newRun(t0), newRun(t0.Add(-20*time.Minute))
	incremental.Type = events.Incremental
	offline.Mode = events.Offline
	unknown.Database = "db7"
	invalid.RunID = ""
	for _, tc := range []struct {
		name  string
		run   events.BackupStarted
		class events.FailureClass
		is    error
		lists int // list requests expected
	}{
		{"incremental", incremental, events.Permanent, db2saas.ErrUnsupported, 0},
		{"offline", offline, events.Permanent, db2saas.ErrUnsupported, 0},
		{"database without instance", unknown, events.Configuration, db2saas.ErrUnknownDatabase, 0},
		{"invalid run", invalid, events.Permanent, events.ErrInvalid, 0},
		{"too late to create", late, events.Transient, nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStack(t)
			x, _ := newExecutor(t, s)
			err := x.Start(context.Background(), tc.run)
			if err == nil || db2saas.ClassOf(err) != tc.class || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Fatalf("err = %v (class %s), want class %s, is %v", err, db2saas.ClassOf(err), tc.class, tc.is)
			}
			if n := countRequests(s.emu, "POST"); n != 0 {
				t.Fatalf("%d creates sent", n)
			}
			if n := countRequests(s.emu, "GET"); n != tc.lists {
				t.Fatalf("%d lists sent, want %d", n, tc.lists)
			}
		})
	}
}

func TestStartWhileAnotherBackupRuns(t *testing.T) {
	s := newStack(t)
	x, _ := newExecutor(t, s)
	// The service's own daily backup started a minute before the run and is still running.
	s.emu.AddBackup(crnA, db2saasemu.Seed{Type: db2saasemu.TypeScheduled, CreatedAt: t0.Add(-time.Minute), Duration: time.Hour})
	err := x.Start(context.Background(), newRun(t0))
	if !errors.Is(err, db2saas.ErrBackupInProgress) || !db2saas.IsTransient(err) {
		t.Fatalf("err = %v, want transient ErrBackupInProgress", err)
	}
	if n := len(s.emu.Backups(crnA)); n != 1 {
		t.Fatalf("%d backups", n)
	}
}

func TestStartIgnoresEarlierBackups(t *testing.T) {
	s := newStack(t)
	x, _ := newExecutor(t, s)
	s.emu.AddBackup(crnA, db2saasemu.Seed{CreatedAt: t0.Add(-45 * time.Minute), Duration: 5 * time.Minute, Size: 7})
	if err := x.Start(context.Background(), newRun(t0)); err != nil {
		t.Fatal(err)
	}
	if n := len(s.emu.Backups(crnA)); n != 2 {
		t.Fatalf("%d backups, want the old one and a new one", n)
	}
}

func TestStartServiceUnavailable(t *testing.T) {
	s := newStack(t, func(o *db2saas.Options) { o.MaxRetries = db2saas.NoRetries })
	x, _ := newExecutor(t, s)
	s.emu.FailNext(1, 503)
	if err := x.Start(context.Background(), newRun(t0)); !db2saas.IsTransient(err) {
		t.Fatalf("err = %v, want transient", err)
	}
	if n := len(s.emu.Backups(crnA)); n != 0 {
		t.Fatalf("%d backups", n)
	}
}

func TestProbeCompleted(t *testing.T) {
	s := newStack(t)
	x, _ := newExecutor(t, s)
	run := newRun(t0)
	ctx := context.Background()
	s.clk.Advance(3 * time.Second) // the backup is created a little after the run started
	if err := x.Start(ctx, run); err != nil {
		t.Fatal(err)
	}
	s.clk.Advance(5 * time.Minute)
	if p, err := x.Probe(ctx, run); p != nil || err != nil {
		t.Fatalf("probe while running = %v, %v; want nil, nil", p, err)
	}
	s.clk.Advance(backupD)
	p, err := x.Probe(ctx, run)
	if err != nil {
		t.Fatal(err)
	}
	c, ok := p.(events.BackupCompleted)
	if !ok {
		t.Fatalf("probe = %#v, want BackupCompleted", p)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	id := s.emu.Backups(crnA)[0].ID
	want := events.BackupCompleted{Database: "db1", RunID: run.RunID, Type: events.Full, Mode: events.Online,
		StartedAt: t0, EndedAt: t0.Add(3*time.Second + backupD), ImageTimestamp: "20260301020003",
		Location: db2saas.Location(crnA, id), SizeBytes: db2saasemu.DefaultSize, KeyCRN: testkit.KeyA, KeyVersion: "v2", Verified: true}
	if c != want {
		t.Fatalf("completed\n got %+v\nwant %+v", c, want)
	}
	if inst, bid, err := db2saas.ParseLocation(c.Location); err != nil || inst != crnA || bid != id {
		t.Fatalf("location %q parses to %q %q %v", c.Location, inst, bid, err)
	}
}

func TestProbeFailed(t *testing.T) {
	s := newStack(t)
	x, _ := newExecutor(t, s)
	run := newRun(t0)
	s.emu.FailNextBackup()
	if err := x.Start(context.Background(), run); err != nil {
		t.Fatal(err)
	}
	s.clk.Advance(backupD + time.Minute)
	p, err := x.Probe(context.Background(), run)
	if err != nil {
		t.Fatal(err)
	}
	f, ok := p.(events.BackupFailed)
	if !ok {
		t.Fatalf("probe = %#v, want BackupFailed", p)
	}
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	if f.Class != events.Transient || f.Code != "backup-failed" || !f.EndedAt.Equal(t0.Add(backupD)) || f.RunID != run.RunID {
		t.Fatalf("failed %+v", f)
	}
}

func TestProbeNotFound(t *testing.T) {
	s := newStack(t)
	x, logs := newExecutor(t, s)
	run := newRun(t0)
	ctx := context.Background()
	// The run's create never reached the service; an unrelated older backup exists.
	s.emu.AddBackup(crnA, db2saasemu.Seed{CreatedAt: t0.Add(-2 * time.Hour), Duration: time.Minute})
	s.clk.Advance(time.Minute)
	if p, err := x.Probe(ctx, run); p != nil || err != nil {
		t.Fatalf("probe within the grace = %v, %v; want nil, nil", p, err)
	}
	s.clk.Advance(db2saas.DefaultGrace)
	p, err := x.Probe(ctx, run)
	if err != nil {
		t.Fatal(err)
	}
	f, ok := p.(events.BackupFailed)
	if !ok {
		t.Fatalf("probe = %#v, want BackupFailed", p)
	}
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	if f.Class != events.Transient || f.Code != "backup-not-found" || !strings.HasPrefix(f.Message, "backup not found") {
		t.Fatalf("failed %+v", f)
	}
	if !strings.Contains(logs.String(), "no backup found for the run") {
		t.Fatalf("logs: %s", logs)
	}
}

func TestProbeListError(t *testing.T) {
	s := newStack(t, func(o *db2saas.Options) { o.MaxRetries = db2saas.NoRetries })
	x, _ := newExecutor(t, s)
	s.emu.FailNext(1, 502)
	p, err := x.Probe(context.Background(), newRun(t0))
	if p != nil || !db2saas.IsTransient(err) {
		t.Fatalf("probe = %v, %v; want nil and a transient error", p, err)
	}
	var e *db2saas.Error
	if !errors.As(err, &e) || e.StatusCode != 502 {
		t.Fatalf("err = %v", err)
	}
}

// fakeService answers ListBackups from a fixed list; CreateBackup is not expected.
type fakeService struct{ list []db2saas.Backup }

func (f fakeService) CreateBackup(context.Context, string) (db2saas.Task, error) {
	return db2saas.Task{}, errors.New("unexpected create")
}

func (f fakeService) ListBackups(context.Context, string) ([]db2saas.Backup, error) {
	return f.list, nil
}

func TestProbeMatching(t *testing.T) {
	bk := func(id, typ string, status db2saas.Status, created time.Time) db2saas.Backup {
		return db2saas.Backup{ID: id, Type: typ, Status: status, RawStatus: string(status), CreatedAt: created, SizeBytes: 1, Duration: time.Minute}
	}
	for _, tc := range []struct {
		name string
		list []db2saas.Backup
		want string // id of the completed backup reported; "" means nil (still waiting)
	}{
		{"earliest in the window wins", []db2saas.Backup{
			bk("later", "on_demand", db2saas.StatusCompleted, t0.Add(5*time.Minute)),
			bk("ours", "on_demand", db2saas.StatusCompleted, t0.Add(10*time.Second))}, "ours"},
		{"skew tolerated", []db2saas.Backup{bk("ours", "on_demand", db2saas.StatusCompleted, t0.Add(-time.Minute))}, "ours"},
		{"scheduled never claimed", []db2saas.Backup{bk("daily", "Scheduled", db2saas.StatusCompleted, t0.Add(time.Second))}, ""},
		{"before the window", []db2saas.Backup{bk("old", "on_demand", db2saas.StatusCompleted, t0.Add(-3*time.Minute))}, ""},
		{"after the window", []db2saas.Backup{bk("next", "on_demand", db2saas.StatusCompleted, t0.Add(16*time.Minute))}, ""},
		{"unknown status waits", []db2saas.Backup{{ID: "ours", Type: "on_demand", Status: db2saas.StatusUnknown, RawStatus: "archiving", CreatedAt: t0}}, ""},
		{"type missing still claimed", []db2saas.Backup{bk("ours", "", db2saas.StatusCompleted, t0)}, "ours"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newStack(t).clk
			clk.Advance(5 * time.Minute) // within the grace: a missing backup is not yet a failure
			x := &db2saas.Executor{Client: fakeService{tc.list}, Clock: clk, Instances: db2saas.InstanceMap(map[string]string{"db1": crnA}),
				Log: slog.New(slog.DiscardHandler)}
			p, err := x.Probe(context.Background(), newRun(t0))
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if p != nil {
					t.Fatalf("probe = %#v, want nil", p)
				}
				return
			}
			c, ok := p.(events.BackupCompleted)
			if !ok || c.Location != db2saas.Location(crnA, tc.want) {
				t.Fatalf("probe = %#v, want completion of %s", p, tc.want)
			}
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestInstancesFromFleet(t *testing.T) {
	f, err := config.Load([]byte(`version: 1
databases:
  - name: sales
    instance: "` + crnA + `"
    executor: db2saas
    key_crn: ` + testkit.KeyA + `
    schedules: {full: "0 2 * * *"}
  - name: onprem
    instance: db2host
    executor: db2cli
    key_crn: ` + testkit.KeyA + `
    schedules: {full: "0 3 * * *"}
`))
	if err != nil {
		t.Fatal(err)
	}
	resolve := db2saas.InstancesFromFleet(f)
	for name, want := range map[string]string{"sales": crnA, "onprem": "", "missing": ""} {
		got, ok := resolve(name)
		if got != want || ok != (want != "") {
			t.Errorf("resolve(%q) = %q, %v; want %q", name, got, ok, want)
		}
	}
	if _, ok := db2saas.InstancesFromFleet(nil)("sales"); ok {
		t.Error("a nil fleet resolved a database")
	}
}
