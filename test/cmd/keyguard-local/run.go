package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/test/fakedb2"
	"github.com/keyguard-dev/keyguard/test/simdb2"
	"github.com/keyguard-dev/keyguard/test/stack"
)

func runDev(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	days := fs.Int("days", 7, "simulated days to play")
	tick := fs.Duration("tick", 15*time.Minute, "simulated time between ticks")
	fleetFile := fs.String("fleet", "", "fleet policy file (default: the local stack's, test/stack/fleet.dev.yaml)")
	vgw := fs.String("versitygw", defaultVersitygw(), "versitygw binary")
	verbose := fs.Bool("v", false, "print the components' logs to stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	fleetYAML := stack.DevYAML
	if *fleetFile != "" {
		b, err := os.ReadFile(*fleetFile)
		if err != nil {
			return err
		}
		fleetYAML = b
	}
	fleet, err := stack.LoadFleet(fleetYAML)
	if err != nil {
		return err
	}
	var log *slog.Logger
	if *verbose {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	start := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC) // a Monday
	work, err := os.MkdirTemp("", "keyguard-dev-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	db2 := &stack.Db2CLI{FakeBin: filepath.Join(work, "bin"), StateFile: filepath.Join(work, "db2.json")}
	if err := devDb2(fleet, work, db2, start); err != nil {
		return err
	}
	sc := scenario(fleet, start, db2)
	began := time.Now()
	st, err := stack.Start(ctx, stack.Options{Versitygw: *vgw, Fleet: fleet, Start: start, Fail: sc.fail, Logger: log, Rewrap: rewrapDelay, Db2CLI: db2})
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.EnablePreflight(ctx); err != nil {
		return err
	}
	fmt.Fprintf(out, "keyguard dev stack: S3 (versitygw) %s, Event Notifications emulator, functions %s %s %s\n",
		st.S3.Endpoint, st.URLs[config.FnScheduler], st.URLs[config.FnRotation], st.URLs[config.FnCompletion])
	fmt.Fprintf(out, "fleet: %s; simulated %d days from %s, a tick every %s\n", names(fleet), *days, start.Format("Mon 2006-01-02"), *tick)
	for _, n := range sc.notes {
		fmt.Fprintln(out, "scenario:", n)
	}
	fmt.Fprintln(out)

	tl := &timeline{out: out, last: map[string]string{}}
	if err := play(ctx, out, st, tl, sc, start, *days, *tick); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(out, "interrupted; stopping")
			return nil
		}
		return err
	}
	if err := summary(ctx, out, st, tl, time.Since(began)); err != nil {
		return err
	}
	return preflightTable(ctx, out, st, *tick)
}

// play runs the scenario's days, tick by tick, printing the timeline.
func play(ctx context.Context, out io.Writer, st *stack.Stack, tl *timeline, sc scenarioPlan, start time.Time, days int, tick time.Duration) error {
	end := start.Add(time.Duration(days) * 24 * time.Hour)
	for now := start; now.Before(end); now = st.Clock.Now() {
		if err := ctx.Err(); err != nil {
			return err
		}
		for _, a := range sc.actions {
			if !a.at.After(now) && !a.done {
				a.done = true
				fmt.Fprintf(out, "%s  %-8s %s\n", stamp(now), "ops", a.what)
				if err := a.do(ctx, st); err != nil {
					return fmt.Errorf("scenario %q: %w", a.what, err)
				}
			}
		}
		if err := st.Tick(ctx); err != nil {
			return err
		}
		if err := tl.collect(ctx, st); err != nil {
			return err
		}
		if err := st.Advance(ctx, tick); err != nil {
			return err
		}
	}
	return tl.collect(ctx, st)
}

type action struct {
	at   time.Time
	what string
	do   func(ctx context.Context, st *stack.Stack) error
	done bool
}

type scenarioPlan struct {
	actions []*action
	fail    []simdb2.FailRule
	notes   []string
}

// devDb2 prepares the fake Db2 command line for the fleet's db2cli databases (the first one is
// the fake's database; the dev stack supports one): binaries, a state file, and a backup
// directory under work instead of the policy's.
func devDb2(f *config.Fleet, work string, d *stack.Db2CLI, start time.Time) error {
	for i := range f.Databases {
		db := &f.Databases[i]
		if db.Executor != config.ExecDb2CLI {
			continue
		}
		db.BackupDir = filepath.Join(work, "backup", db.Name)
		if err := os.MkdirAll(db.BackupDir, 0o700); err != nil {
			return err
		}
		st := fakedb2.State{Database: db.Alias, Instance: db.Db2Instance(), ImageBytes: 4 << 20, NextTimestamp: start.Format("20060102150405"), Rows: 1200}
		if db.Mode == events.Online {
			st.LogArchMeth1, st.TrackMod = "DISK:/db2/archive/", true
		}
		if err := fakedb2.SaveState(d.StateFile, st); err != nil {
			return err
		}
		return fakedb2.BuildTo(d.FakeBin)
	}
	return nil
}

// setFault sets or clears a fault of the fake Db2.
func setFault(path string, f fakedb2.Fault, on bool) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var st fakedb2.State
	if err := json.Unmarshal(b, &st); err != nil {
		return err
	}
	st.Inject = nil
	if on {
		st.Inject = []fakedb2.Fault{f}
	}
	return fakedb2.SaveState(path, st)
}

// scenario: Key Protect rotates the first database's key mid-week (Db2 re-wraps in 40 minutes
// below 1 TiB, in 2.5 hours above), Cloud Logs reports the same rotation ten minutes later, and
// the self-managed database's images come out corrupt for an hour on Wednesday night, so its
// backup fails verification twice (the default alert threshold) before a retry succeeds.
func scenario(f *config.Fleet, start time.Time, db2 *stack.Db2CLI) scenarioPlan {
	var sc scenarioPlan
	key := f.Databases[0].KeyCRN
	rot := start.Add(3*24*time.Hour + 90*time.Minute) // Thursday 01:30
	var version string
	sc.actions = append(sc.actions,
		&action{at: rot, what: "Key Protect rotates the root key of " + names2(f.ByKey(key)), do: func(_ context.Context, st *stack.Stack) error {
			var err error
			version, err = st.RotateKey(key)
			return err
		}},
		&action{at: rot.Add(10 * time.Minute), what: "Cloud Logs alert: kms.secrets.rotate on the same key", do: func(ctx context.Context, st *stack.Stack) error {
			return st.PublishCloudLogsRotation(ctx, key, version, rot)
		}})
	sc.notes = append(sc.notes, fmt.Sprintf("Key Protect rotates the root key of %s %s; Db2 re-wraps in 40m (2h30m above 1 TiB); Cloud Logs reports it 10m later", names2(f.ByKey(key)), stamp(rot)))
	for _, db := range f.Databases {
		if db.Executor != config.ExecDb2CLI {
			continue
		}
		bad := start.Add(2 * 24 * time.Hour) // Wednesday 00:00
		sc.actions = append(sc.actions,
			&action{at: bad, what: "the backup disk of " + db.Name + " starts corrupting images", do: func(context.Context, *stack.Stack) error {
				return setFault(db2.StateFile, fakedb2.FaultCorruptImage, true)
			}},
			&action{at: bad.Add(time.Hour), what: "the backup disk of " + db.Name + " is replaced", do: func(context.Context, *stack.Stack) error {
				return setFault(db2.StateFile, fakedb2.FaultCorruptImage, false)
			}})
		sc.notes = append(sc.notes, fmt.Sprintf("%s (self-managed, the real runner against a fake db2 command line) writes corrupt images %s to %s",
			db.Name, stamp(bad), stamp(bad.Add(time.Hour))))
		break
	}
	return sc
}

func rewrapDelay(db config.Database) time.Duration {
	if db.Size >= 1<<40 {
		return 150 * time.Minute
	}
	return 40 * time.Minute
}

type timeline struct {
	out   io.Writer
	last  map[string]string
	seen  int
	count map[string]int
}

func (t *timeline) collect(ctx context.Context, st *stack.Stack) error {
	if t.count == nil {
		t.count = map[string]int{}
	}
	for _, db := range st.Fleet.Databases {
		s, err := st.State(ctx, db.Name)
		if err != nil {
			return fmt.Errorf("read state of %s: %w", db.Name, err)
		}
		d := s.LastDecision
		if d == nil || d.Action == "idle" || d.Action == "start" {
			continue
		}
		key := d.Action + d.Reason
		if t.last[db.Name] == key {
			continue
		}
		t.last[db.Name] = key
		t.count["defer"]++
		fmt.Fprintf(t.out, "%s  %-8s defer %s: %s\n", stamp(d.At), db.Name, d.Type, d.Reason)
	}
	ns := st.EN.Notifications()
	for _, n := range ns[t.seen:] {
		t.count[n.Type]++
		line := describe(n.Type, n.Data)
		if line == "" {
			continue
		}
		fmt.Fprintf(t.out, "%s  %s\n", stamp(n.Time), line)
	}
	t.seen = len(ns)
	return nil
}

func describe(typ string, data []byte) string {
	if typ == events.TypeTick {
		return ""
	}
	if events.IsCloudLogsAlert(typ) {
		return fmt.Sprintf("%-8s %s delivered to the rotation function", "-", typ)
	}
	p, err := events.DecodeData(typ, data)
	if err != nil {
		return fmt.Sprintf("%-8s %s (undecodable: %v)", "?", typ, err)
	}
	switch v := p.(type) {
	case *events.BackupStarted:
		return fmt.Sprintf("%-8s start %s %s backup under key version %s (%s)", v.Database, v.Mode, v.Type, short(v.KeyVersion), v.RunID)
	case *events.BackupCompleted:
		return fmt.Sprintf("%-8s completed %s, image %s, %s", v.Database, v.RunID, v.ImageTimestamp, config.Size(v.SizeBytes))
	case *events.BackupFailed:
		return fmt.Sprintf("%-8s FAILED %s: %s (%s)", v.Database, v.RunID, strings.TrimSpace(v.Code+" "+v.Message), v.Class)
	case *events.Alert:
		return fmt.Sprintf("%-8s ALERT %s: %s", orDash(v.Database), v.Severity, v.Message)
	case *events.RotationSettled:
		return fmt.Sprintf("%-8s rotation window closed after %s (%s); next backup is full under version %s", v.Database, v.ClosedAt.Sub(v.OpenedAt).Round(time.Minute), v.Reason, short(v.KeyVersion))
	case *events.KeyRotated:
		return fmt.Sprintf("%-8s key rotated: version %s -> %s (detected by %s)", "-", short(v.OldVersion), short(v.NewVersion), v.DetectedBy)
	case *events.RestoreRequested, *events.RestoreCompleted:
		return describeRestore(p)
	}
	b, _ := json.Marshal(p)
	return fmt.Sprintf("%-8s %s %s", "-", typ, b)
}

func summary(ctx context.Context, out io.Writer, st *stack.Stack, tl *timeline, took time.Duration) error {
	fmt.Fprintf(out, "\nsummary (%s wall time):\n", took.Round(time.Millisecond))
	fmt.Fprintf(out, "  backups started %d, completed %d, failed %d; deferrals %d; alerts %d; rotation windows closed %d\n",
		tl.count[events.TypeBackupStarted], tl.count[events.TypeBackupCompleted], tl.count[events.TypeBackupFailed],
		tl.count["defer"], tl.count[events.TypeAlert], tl.count[events.TypeRotationSettled])
	lost := len(st.EN.Lost())
	fmt.Fprintf(out, "  Event Notifications: %d notifications, %d deliveries lost\n", len(st.EN.Notifications()), lost)
	var problems []string
	for _, db := range st.Fleet.Databases {
		s, err := st.State(ctx, db.Name)
		if err != nil {
			return err
		}
		last := "none"
		if s.LastSuccess != nil {
			last = fmt.Sprintf("%s %s at %s", s.LastSuccess.Type, s.LastSuccess.RunID, stamp(s.LastSuccess.At))
		}
		fmt.Fprintf(out, "  %-8s state revision %d, key version %s, last success %s, consecutive failures %d\n",
			db.Name, s.Revision, short(s.Key.Version), last, s.ConsecutiveFailures)
		if s.Window != nil {
			problems = append(problems, db.Name+": rotation window still open at the end")
		}
		if len(s.PendingAlerts) > 0 {
			problems = append(problems, db.Name+": alerts still pending")
		}
	}
	if lost > 0 {
		problems = append(problems, fmt.Sprintf("%d deliveries lost", lost))
	}
	if len(problems) > 0 {
		return errors.New("scenario ended badly: " + strings.Join(problems, "; "))
	}
	fmt.Fprintln(out, "  every rotation window closed, every alert delivered, no delivery lost")
	return checkReport(ctx, out, st)
}

func stamp(t time.Time) string { return t.UTC().Format("Mon 01-02 15:04") }

// short abbreviates a Key Protect version id.
func short(v string) string {
	if len(v) > 8 {
		return v[:8]
	}
	return orDash(v)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func names(f *config.Fleet) string { return names2(f.Databases) }

func names2(dbs []config.Database) string {
	var n []string
	for _, d := range dbs {
		n = append(n, d.Name)
	}
	return strings.Join(n, ", ")
}

// defaultVersitygw finds bin/versitygw beside the module root.
func defaultVersitygw() string {
	if p := os.Getenv("KEYGUARD_VERSITYGW"); p != "" {
		return p
	}
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, "bin", "versitygw")
		}
		if filepath.Dir(d) == d {
			return filepath.Join(dir, "bin", "versitygw")
		}
	}
}
