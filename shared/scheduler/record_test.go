package scheduler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/catalog/catalogtest"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/outbox"
	"github.com/keyguard-dev/keyguard/shared/policy"
	"github.com/keyguard-dev/keyguard/shared/state"
	"github.com/keyguard-dev/keyguard/test/testkit"
)

// These tests name the problems of "the catalog is the truth" they reproduce.

// probingExec is an executor that also probes (as Code Engine and Db2 on Cloud do) and can
// forget the runs it was asked for (a crash), or answer a start ambiguously.
type probingExec struct {
	fakeExec
	probe     func(events.BackupStarted) events.Payload
	forget    bool
	ambiguous int // the next n starts create the run but answer an error
	created   map[string]int
}

func (p *probingExec) Start(ctx context.Context, r events.BackupStarted) error {
	p.mu.Lock()
	if p.created == nil {
		p.created = map[string]int{}
	}
	p.created[r.RunID]++
	amb := p.ambiguous > 0
	if amb {
		p.ambiguous--
	}
	p.mu.Unlock()
	if amb {
		return errors.New("create job run: context deadline exceeded (the job run may exist)")
	}
	return p.fakeExec.Start(ctx, r)
}

func (p *probingExec) Probe(_ context.Context, r events.BackupStarted) (events.Payload, error) {
	if p.probe == nil {
		return nil, nil
	}
	return p.probe(r), nil
}

func completedOf(r events.BackupStarted, ts string) events.BackupCompleted {
	return events.BackupCompleted{Database: r.Database, RunID: r.RunID, Type: r.Type, Mode: r.Mode, StartedAt: r.StartedAt,
		EndedAt: r.StartedAt.Add(20 * time.Minute), ImageTimestamp: ts, SizeBytes: 1 << 20, KeyCRN: r.KeyCRN, KeyVersion: r.KeyVersion, Verified: true}
}

// Problem 2: a Db2 on Cloud backup the probe finds completed is cataloged (entry and run
// record, with the key version pinned at start) before the run is closed.
func TestDb2OnCloudBackupIsCatalogedFromTheProbe(t *testing.T) {
	r := newRig(t, day.Add(2*time.Hour+5*time.Minute))
	x := &probingExec{}
	r.s.Execs[config.ExecDb2CLI] = x
	ctx := context.Background()
	if _, err := r.s.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	run := r.get(t, "db1").Run
	x.probe = func(b events.BackupStarted) events.Payload {
		c := completedOf(b, "20261124020500")
		c.Location = "db2saas://instance/backup-1"
		return c
	}
	r.clk.Advance(30 * time.Minute)
	if _, err := r.s.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	st := r.get(t, "db1")
	if st.LastSuccess == nil || st.LastSuccess.RunID != run.ID {
		t.Fatalf("probed success not applied: %+v", st.LastSuccess)
	}
	e, err := r.cat.Get(ctx, "db1", "20261124020500")
	if err != nil || e.RunID != run.ID || e.KeyVersion != run.KeyVersion || e.Images[0].Key != "db2saas://instance/backup-1" {
		t.Fatalf("catalog entry = %+v, %v", e, err)
	}
	if _, err := r.cat.GetRun(ctx, "db1", run.ID); err != nil {
		t.Fatalf("run record: %v", err)
	}
	n := 0
	for _, s := range r.send.OfType(events.TypeBackupCompleted) {
		if s.ID == run.ID+"/outcome" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("backup.completed of %s published %d times, want 1 (completion applies retention)", run.ID, n)
	}
}

// Problem 4: a runner whose publish failed exits non-zero, so the Code Engine probe reports the
// job run failed; the run record says it succeeded, and that stands.
func TestProbedJobFailureWithARecordedSuccessIsASuccess(t *testing.T) {
	r := newRig(t, day.Add(2*time.Hour+5*time.Minute))
	x := &probingExec{}
	r.s.Execs[config.ExecDb2CLI] = x
	ctx := context.Background()
	if _, err := r.s.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	run := r.get(t, "db1").Run
	c := completedOf(run.Event("db1"), "20261124020600")
	c.CatalogKey = catalog.Key("db1", "20261124020600", events.Full)
	e := catalogtest.Sample("db1", "20261124020600", events.Full, "")
	e.RunID = run.ID
	if err := r.cat.Record(ctx, &e, catalog.RunRecord{Database: "db1", RunID: run.ID, Completed: &c}); err != nil {
		t.Fatal(err)
	}
	x.probe = func(b events.BackupStarted) events.Payload {
		return events.BackupFailed{Database: b.Database, RunID: b.RunID, Type: b.Type, EndedAt: r.clk.Now(), Class: events.Transient, Code: "job-run-failed", Message: "exit 1"}
	}
	r.clk.Advance(30 * time.Minute)
	if _, err := r.s.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	st := r.get(t, "db1")
	if st.ConsecutiveFailures != 0 || st.LastSuccess == nil || st.LastSuccess.RunID != run.ID || len(r.exec.cancelled) != 0 {
		t.Fatalf("failures %d last success %+v cancelled %v", st.ConsecutiveFailures, st.LastSuccess, r.exec.cancelled)
	}
}

// Problem 5: a crash between the state write and the executor's start left the run in flight,
// never started; the next tick starts it (the same run id), instead of waiting out the lease.
func TestCrashBetweenStateWriteAndStartIsStartedNextTick(t *testing.T) {
	r := newRig(t, day.Add(2*time.Hour+5*time.Minute))
	ctx := context.Background()
	db, _ := testkit.LoadFleet(t).Database("db1")
	now := r.clk.Now()
	_, err := state.Update(ctx, r.store, "db1", func() *state.State { return state.New("db1", testkit.KeyA) }, func(st *state.State) error {
		res := policy.Tick(st, db, policy.TickInput{Now: now}) // the decision was stored, then the process died
		if res.Start == nil {
			t.Fatal("nothing to start")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	runID := r.get(t, "db1").Run.ID
	r.clk.Advance(5 * time.Minute)
	if _, err := r.s.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	// The tick decides the databases concurrently: db1's start is among the others, in no order.
	if !slices.ContainsFunc(r.exec.started, func(b events.BackupStarted) bool { return b.Database == "db1" && b.RunID == runID }) {
		t.Fatalf("started %+v, want the stored run %s started on the next tick", r.exec.started, runID)
	}
	if st := r.get(t, "db1"); st.Run == nil || !st.Run.Started || st.ConsecutiveFailures != 0 {
		t.Fatalf("run %+v failures %d", st.Run, st.ConsecutiveFailures)
	}
}

// Problem 5: an ambiguous start error (a timeout after Code Engine created the job run) neither
// counts a failure nor starts a second backup of the slot: the same run is asked for again.
func TestAmbiguousStartErrorBacksTheSlotUpOnce(t *testing.T) {
	r := newRig(t, day.Add(2*time.Hour+5*time.Minute))
	x := &probingExec{ambiguous: 1}
	r.s.Execs[config.ExecDb2CLI] = x
	ctx := context.Background()
	for range 8 {
		_, _ = r.s.Tick(ctx)
		r.clk.Advance(15 * time.Minute)
	}
	var ids []string
	for id := range x.created {
		if strings.HasPrefix(id, "db1-full-") {
			ids = append(ids, id)
		}
	}
	if len(ids) != 1 {
		t.Fatalf("runs created for db1's full slot: %v, want one", ids)
	}
	if st := r.get(t, "db1"); st.ConsecutiveFailures != 0 || st.Run == nil || !st.Run.Started {
		t.Fatalf("failures %d run %+v", st.ConsecutiveFailures, st.Run)
	}
}

// Problem 7: a version-less Cloud Logs rotation opens a window whose target the next poll fills
// in; it then closes on re-wrap like any other, without a false "re-wrap not confirmed" alert.
func TestVersionlessWindowClosesWhenThePollFillsItsTarget(t *testing.T) {
	r := newRig(t, day.Add(30*time.Minute))
	keys := &fakeKeys{status: map[string]KeyStatus{testkit.KeyA: {Version: "1", State: events.KeyActive, RotatedAt: day.Add(-30 * 24 * time.Hour)},
		testkit.KeyB: {Version: "7", State: events.KeyActive}}}
	r.s.Keys = keys
	ctx := context.Background()
	if _, err := r.s.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	db, _ := testkit.LoadFleet(t).Database("db1")
	rotated := r.clk.Now()
	_, _ = state.Update(ctx, r.store, "db1", nil, func(st *state.State) error {
		policy.Rotated(st, db, events.KeyRotated{KeyCRN: testkit.KeyA, RotatedAt: rotated, DetectedBy: "cloud-logs"}, rotated)
		return nil
	})
	if w := r.get(t, "db1").Window; w == nil || w.ToVersion != "" {
		t.Fatalf("version-less window = %+v", w)
	}
	keys.status[testkit.KeyA] = KeyStatus{Version: "2", State: events.KeyActive, RotatedAt: rotated}
	keys.regs = map[string][]Registration{testkit.KeyA: {{ResourceCRN: "i1", KeyVersion: "2"}, {ResourceCRN: "i2", KeyVersion: "1"}}}
	r.clk.Advance(5 * time.Minute)
	if _, err := r.s.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if w := r.get(t, "db1").Window; w == nil || w.ToVersion != "2" {
		t.Fatalf("the poll did not fill the window's target: %+v", w)
	}
	r.clk.Advance(15 * time.Minute)
	if _, err := r.s.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	st := r.get(t, "db1")
	if st.Window != nil || st.Key.Version != "2" {
		t.Fatalf("window %+v key %+v: want closed on re-wrap, version 2", st.Window, st.Key)
	}
	for _, a := range r.send.OfType(events.TypeAlert) {
		if a.Payload.(events.Alert).Reason == "rewrap-unconfirmed" && a.Payload.(events.Alert).Database == "db1" {
			t.Fatalf("false alert: %+v", a)
		}
	}
}

// Problem 8: a key changed in the fleet policy drops the old key's window: its version is never
// written into the new key's state, and the next full is tagged with the new key's version.
func TestKeyChangedInTheFleetDropsTheOldKeysWindow(t *testing.T) {
	r := newRig(t, day.Add(30*time.Minute))
	ctx := context.Background()
	_, _ = state.Update(ctx, r.store, "db1", func() *state.State { return state.New("db1", testkit.KeyB) }, func(st *state.State) error {
		st.Key.Version = "b1"
		st.Window = &state.RotationWindow{FromVersion: "b1", ToVersion: "b2", OpenedAt: day, MinCloseAt: day, MaxCloseAt: day.Add(4 * time.Hour)}
		return nil
	})
	r.s.Keys = &fakeKeys{status: map[string]KeyStatus{testkit.KeyA: {Version: "a7", State: events.KeyActive}, testkit.KeyB: {Version: "b2", State: events.KeyActive}}}
	for range 2 {
		if _, err := r.s.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		r.clk.Advance(5 * time.Minute)
	}
	st := r.get(t, "db1")
	if st.Key.CRN != testkit.KeyA || st.Key.Version != "a7" || st.Window != nil || !st.NeedFull {
		t.Fatalf("after the key change: key %+v window %+v needFull %v", st.Key, st.Window, st.NeedFull)
	}
}

// Problem 9: the rotation function saw the key destroyed first (the state already says
// destroyed when the tick polls it): the unrestorable alert is still sent, once.
func TestUnrestorableAlertWhenTheRotationFunctionSawDestroyedFirst(t *testing.T) {
	r := newRig(t, day.Add(30*time.Minute))
	ctx := context.Background()
	e := catalogtest.Sample("db3", "20261120020000", events.Full, "")
	e.KeyCRN = testkit.KeyB
	if err := r.cat.Put(ctx, e); err != nil {
		t.Fatal(err)
	}
	db, _ := testkit.LoadFleet(t).Database("db3")
	_, _ = state.Update(ctx, r.store, "db3", func() *state.State { return state.New("db3", testkit.KeyB) }, func(st *state.State) error {
		policy.KeyState(st, db, events.KeyDestroyed, day) // what the rotation function did, without a catalog
		st.PendingAlerts = nil                            // its key-state alert went out
		return nil
	})
	r.s.Keys = &fakeKeys{status: map[string]KeyStatus{testkit.KeyA: {Version: "1", State: events.KeyActive}, testkit.KeyB: {Version: "1", State: events.KeyDestroyed}}}
	for range 3 {
		if _, err := r.s.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		r.clk.Advance(5 * time.Minute)
	}
	if n := countReason(r, "unrestorable"); n != 1 {
		t.Fatalf("unrestorable alerts sent: %d, want 1", n)
	}
}

// Problem 9: a failed catalog listing delays the unrestorable alert to the next tick; it is
// never lost. With 1000 entries it names the newest few, the count and the command for the rest,
// and the state stays under its budget.
func TestUnrestorableAlertSurvivesAFailedListingAndStaysBounded(t *testing.T) {
	r := newRig(t, day.Add(30*time.Minute))
	ctx := context.Background()
	for i := range 1000 {
		e := catalogtest.Sample("db3", fmt.Sprintf("2025%02d%02d%02d0000", 1+i/240%12, 1+i/10%24, i%10), events.Full, "")
		e.KeyCRN = testkit.KeyB
		if err := r.cat.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	failing := &flakyCatalog{Catalog: r.s.Catalog, failLists: 1}
	r.s.Catalog = failing
	r.s.Keys = &fakeKeys{status: map[string]KeyStatus{testkit.KeyA: {Version: "1", State: events.KeyActive}, testkit.KeyB: {Version: "1", State: events.KeyDestroyed}}}
	if _, err := r.s.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countReason(r, "unrestorable"); n != 0 {
		t.Fatalf("alert sent without a listing: %d", n)
	}
	r.clk.Advance(5 * time.Minute)
	if _, err := r.s.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	var got events.Alert
	for _, a := range r.send.OfType(events.TypeAlert) {
		if al := a.Payload.(events.Alert); al.Reason == "unrestorable" {
			got = al
		}
	}
	if !strings.Contains(got.Message, "1000 cataloged backup(s)") || !strings.Contains(got.Message, "keyguard backup list db3") || len(got.Related) != state.MaxAlertRelated {
		t.Fatalf("unrestorable alert = %+v", got)
	}
	body, err := state.Encode(r.get(t, "db3"))
	if err != nil || len(body) > state.BudgetBytes {
		t.Fatalf("state %d bytes (%v)", len(body), err)
	}
}

type flakyCatalog struct {
	Catalog
	failLists int
}

func (f *flakyCatalog) List(ctx context.Context, db string) ([]catalog.Entry, error) {
	if f.failLists > 0 {
		f.failLists--
		return nil, errors.New("list: 503 slow down")
	}
	return f.Catalog.List(ctx, db)
}

func countReason(r *rig, reason string) int {
	n := 0
	for _, a := range r.send.OfType(events.TypeAlert) {
		if a.Payload.(events.Alert).Reason == reason {
			n++
		}
	}
	return n
}

// Problem 10: while Event Notifications refuses every send for a year of failing backups, the
// state stays under its budget, every lease still expires (the run never wedges in flight), and
// once Event Notifications recovers the pending alerts go out.
func TestAYearWithoutEventNotificationsKeepsTheStateBounded(t *testing.T) {
	r := newRig(t, day.Add(2*time.Hour+5*time.Minute))
	ctx := context.Background()
	r.send.FailNext(1 << 30)
	for range 365 * 24 / 3 { // every 3 hours for a year: starts, lease expiries, failures, alerts
		_, _ = r.s.Tick(ctx)
		r.clk.Advance(3 * time.Hour)
		st := r.get(t, "db1")
		body, err := state.Encode(st)
		if err != nil || len(body) > state.BudgetBytes {
			t.Fatalf("%s: state %d bytes (%v)", r.clk.Now(), len(body), err)
		}
		if st.Run != nil && r.clk.Now().Sub(st.Run.LeaseUntil) > 3*time.Hour {
			t.Fatalf("%s: run %s stuck in flight past its lease", r.clk.Now(), st.Run.ID)
		}
	}
	st := r.get(t, "db1")
	if st.ConsecutiveFailures < 100 || len(st.PendingAlerts) == 0 {
		t.Fatalf("the year did not fail as intended: %d failures, %d pending alerts", st.ConsecutiveFailures, len(st.PendingAlerts))
	}
	r.send.FailNext(0)
	if _, err := outbox.Flush(ctx, r.store, r.send, st); err != nil {
		t.Fatal(err)
	}
	if st := r.get(t, "db1"); len(st.PendingAlerts) != 0 || len(r.send.OfType(events.TypeAlert)) == 0 {
		t.Fatalf("after Event Notifications recovered: %d pending", len(st.PendingAlerts))
	}
}
