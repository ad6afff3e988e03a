package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/catalog/catalogtest"
	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/edge"
	"github.com/keyguard-dev/keyguard/shared/errkind"
	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/policy"
	"github.com/keyguard-dev/keyguard/shared/state"
	"github.com/keyguard-dev/keyguard/test/testkit"
)

type fakeExec struct {
	mu        sync.Mutex
	started   []events.BackupStarted
	cancelled []string
	fail      error
}

func (f *fakeExec) Cancel(_ context.Context, r events.BackupStarted) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancelled = append(f.cancelled, r.RunID)
	return nil
}

func (f *fakeExec) Start(_ context.Context, r events.BackupStarted) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.started = append(f.started, r)
	return nil
}

type rig struct {
	s     *Scheduler
	cat   *catalog.Catalog
	store state.Store
	exec  *fakeExec
	send  *testkit.Sender
	clk   *clock.Fake
}

func newRig(t *testing.T, at time.Time) *rig {
	r := &rig{store: state.NewMemoryStore(), exec: &fakeExec{}, send: &testkit.Sender{}, clk: clock.NewFake(at)}
	r.cat = catalog.New(objstore.NewMemory())
	r.s = &Scheduler{Store: r.store, Fleet: config.Static{F: testkit.LoadFleet(t)}, Execs: map[string]Executor{config.ExecDb2CLI: r.exec}, Send: r.send, Clock: r.clk,
		Catalog: r.cat, Log: slog.New(slog.DiscardHandler)}
	return r
}

func (r *rig) get(t *testing.T, db string) *state.State {
	t.Helper()
	st, _, err := r.store.Get(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func report(t *testing.T, reps []DBReport, db string) DBReport {
	for _, r := range reps {
		if r.Database == db {
			return r
		}
	}
	t.Fatalf("no report for %s", db)
	return DBReport{}
}

var day = time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)

func TestTickStartsDueFullsOnceEvenWhenRepeated(t *testing.T) {
	r := newRig(t, day.Add(4*time.Hour+5*time.Minute))
	ctx := context.Background()
	for range 3 { // duplicate ticks
		if _, err := r.s.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if len(r.exec.started) != 3 {
		t.Fatalf("started %d runs, want one per database: %+v", len(r.exec.started), r.exec.started)
	}
	st := r.get(t, "db1")
	if st.Run == nil || st.Run.Type != events.Full || !st.Run.LeaseUntil.Equal(st.Run.StartedAt.Add(2*time.Hour)) {
		t.Fatalf("db1 run = %+v", st.Run)
	}
	if got := len(r.send.OfType(events.TypeBackupStarted)); got != 3 {
		t.Errorf("backup.started sent %d times, want 3", got)
	}
	// The delta slot of 03:30 was covered by the full.
	if !st.Slots[events.Delta].Equal(day.Add(3*time.Hour + 30*time.Minute)) {
		t.Errorf("delta slot = %v", st.Slots[events.Delta])
	}
}

func TestRotationWindowDefersThenClosesIntoFull(t *testing.T) {
	r := newRig(t, day.Add(2*time.Hour+5*time.Minute))
	ctx := context.Background()
	_, err := state.Update(ctx, r.store, "db1", func() *state.State { return state.New("db1", testkit.KeyA) }, func(st *state.State) error {
		st.LastSuccess = &state.Outcome{RunID: "old", Type: events.Full, At: day.Add(-22 * time.Hour)}
		st.Slots = map[events.BackupType]time.Time{events.Full: day.Add(-22 * time.Hour), events.Delta: day.Add(-30 * time.Minute)}
		st.Key.Version = "1"
		st.Window = &state.RotationWindow{FromVersion: "1", ToVersion: "2", OpenedAt: day.Add(time.Hour), MinCloseAt: day.Add(time.Hour + 15*time.Minute), MaxCloseAt: day.Add(5 * time.Hour)}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	reps, err := r.s.Tick(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rep := report(t, reps, "db1")
	if rep.Action != policy.Defer || !strings.Contains(rep.Reason, policy.ReasonRotationWindow) {
		t.Fatalf("db1 = %+v, want deferred by the rotation window", rep)
	}
	if st := r.get(t, "db1"); st.LastDecision == nil || !strings.Contains(st.LastDecision.Reason, policy.ReasonRotationWindow) {
		t.Fatalf("decision not recorded: %+v", st.LastDecision)
	}
	// At the maximum the window closes without confirmation, alerts, and the due delta runs as full.
	r.clk.Set(day.Add(5*time.Hour + 1*time.Minute))
	reps, err = r.s.Tick(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rep = report(t, reps, "db1")
	if rep.Action != policy.Start || rep.Type != events.Full {
		t.Fatalf("after the window db1 = %+v, want a full start", rep)
	}
	st := r.get(t, "db1")
	if st.Window != nil || st.Key.Version != "2" || st.Run.KeyVersion != "2" {
		t.Fatalf("state after close: window %+v key %+v run %+v", st.Window, st.Key, st.Run)
	}
	if n := len(r.send.OfType(events.TypeRotationSettled)); n != 1 {
		t.Errorf("rotation.settled sent %d times", n)
	}
	alerts := r.send.OfType(events.TypeAlert)
	if len(alerts) != 1 || alerts[0].Payload.(events.Alert).Reason != "rewrap-unconfirmed" {
		t.Errorf("alerts = %+v", alerts)
	}
	if len(st.PendingAlerts) != 0 {
		t.Errorf("sent alerts still pending: %+v", st.PendingAlerts)
	}
}

// fakeKeys is a Key Protect stand-in: one key version and state per CRN, registrations per CRN.
type fakeKeys struct {
	mu       sync.Mutex
	status   map[string]KeyStatus
	regs     map[string][]Registration
	keyCalls int
	regCalls int
	err      error
}

func (f *fakeKeys) Key(_ context.Context, crn string) (KeyStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keyCalls++
	if f.err != nil {
		return KeyStatus{}, f.err
	}
	return f.status[crn], nil
}

func (f *fakeKeys) Registrations(_ context.Context, crn string) ([]Registration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.regCalls++
	return f.regs[crn], nil
}

func TestConfirmedRewrapClosesAfterSettle(t *testing.T) {
	r := newRig(t, day.Add(time.Hour+10*time.Minute))
	r.s.Keys = &fakeKeys{status: map[string]KeyStatus{testkit.KeyA: {Version: "2", State: events.KeyActive}},
		regs: map[string][]Registration{testkit.KeyA: {{ResourceCRN: "i2", KeyVersion: "2"}}}}
	ctx := context.Background()
	_, _ = state.Update(ctx, r.store, "db2", func() *state.State { return state.New("db2", testkit.KeyA) }, func(st *state.State) error {
		st.Window = &state.RotationWindow{ToVersion: "2", OpenedAt: day.Add(time.Hour), MinCloseAt: day.Add(time.Hour + 15*time.Minute), MaxCloseAt: day.Add(9 * time.Hour)}
		return nil
	})
	if _, err := r.s.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if r.get(t, "db2").Window == nil {
		t.Fatal("window closed before the settle time")
	}
	r.clk.Set(day.Add(time.Hour + 20*time.Minute))
	if _, err := r.s.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if st := r.get(t, "db2"); st.Window != nil || !st.NeedFull {
		t.Fatalf("window %+v needFull %v", st.Window, st.NeedFull)
	}
	s := r.send.OfType(events.TypeRotationSettled)
	if len(s) != 1 || !s[0].Payload.(events.RotationSettled).Confirmed {
		t.Fatalf("settled = %+v", s)
	}
	if len(r.send.OfType(events.TypeAlert)) != 0 {
		t.Error("a confirmed close alerted")
	}
}

func TestLeaseExpiryCountsFailureAndRetries(t *testing.T) {
	r := newRig(t, day.Add(2*time.Hour+5*time.Minute))
	ctx := context.Background()
	if _, err := r.s.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	runID := r.get(t, "db1").Run.ID
	r.clk.Set(day.Add(4*time.Hour + 10*time.Minute)) // lease 2h passed
	reps, err := r.s.Tick(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep := report(t, reps, "db1"); len(rep.Notes) == 0 || !strings.Contains(rep.Notes[0], "lease expired for "+runID) {
		t.Fatalf("notes = %v", rep.Notes)
	}
	if len(r.exec.cancelled) != 1 || r.exec.cancelled[0] != runID {
		t.Fatalf("cancelled %v, want the expired run %s", r.exec.cancelled, runID)
	}
	st := r.get(t, "db1")
	if st.ConsecutiveFailures != 1 || st.NextRetry == nil || st.NextRetry.Attempt != 2 || st.LastFailure.RunID != runID {
		t.Fatalf("after lease expiry: failures %d retry %+v last %+v", st.ConsecutiveFailures, st.NextRetry, st.LastFailure)
	}
}

func TestTransientStartFailureIsAskedAgainThenCounted(t *testing.T) {
	r := newRig(t, day.Add(2*time.Hour+5*time.Minute))
	r.exec.fail = errors.New("job run quota exceeded")
	for i := 1; i <= policy.MaxStartAttempts; i++ {
		_, err := r.s.Tick(context.Background())
		if err == nil || !strings.Contains(err.Error(), "quota") {
			t.Fatalf("tick %d: error = %v", i, err)
		}
		st := r.get(t, "db1")
		if i < policy.MaxStartAttempts && (st.Run == nil || st.Run.StartAttempts != i || st.ConsecutiveFailures != 0) {
			t.Fatalf("tick %d: run %+v failures %d: a transient start error must keep the run and ask again", i, st.Run, st.ConsecutiveFailures)
		}
		r.clk.Advance(5 * time.Minute)
	}
	st := r.get(t, "db1")
	if st.Run != nil || st.ConsecutiveFailures != 1 || st.NextRetry == nil || !strings.Contains(st.LastFailure.Message, "3 attempt(s)") {
		t.Fatalf("run %+v failures %d retry %+v last %+v", st.Run, st.ConsecutiveFailures, st.NextRetry, st.LastFailure)
	}
	if len(r.exec.cancelled) == 0 {
		t.Fatal("a run given up after failed starts was not cancelled (an ambiguous start may have created it)")
	}
}

func TestPermanentStartFailurePlansRetryAtOnce(t *testing.T) {
	r := newRig(t, day.Add(2*time.Hour+5*time.Minute))
	r.exec.fail = errkind.With(errkind.Configuration, errors.New("runner job does not exist"))
	if _, err := r.s.Tick(context.Background()); err == nil {
		t.Fatal("tick hid the start failure")
	}
	st := r.get(t, "db1")
	if st.Run != nil || st.ConsecutiveFailures != 1 || st.NextRetry == nil {
		t.Fatalf("run %+v failures %d retry %+v", st.Run, st.ConsecutiveFailures, st.NextRetry)
	}
}

func TestPendingAlertSurvivesSendFailure(t *testing.T) {
	r := newRig(t, day.Add(5*time.Hour+1*time.Minute))
	ctx := context.Background()
	_, _ = state.Update(ctx, r.store, "db3", func() *state.State { return state.New("db3", testkit.KeyB) }, func(st *state.State) error {
		st.AddAlert("a1", events.Alert{Severity: events.Critical, Reason: "x", Message: "m"})
		return nil
	})
	r.send.FailNext(100)
	if _, err := r.s.Tick(ctx); err == nil {
		t.Fatal("tick hid the failed alert send")
	}
	if got := len(r.get(t, "db3").PendingAlerts); got != 1 {
		t.Fatalf("pending alerts = %d after a failed send", got)
	}
	r.send.FailNext(0)
	if _, err := r.s.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(r.get(t, "db3").PendingAlerts); got != 0 {
		t.Fatalf("pending alerts = %d after a good send", got)
	}
	if len(r.send.OfType(events.TypeAlert)) != 1 {
		t.Fatal("alert not sent exactly once")
	}
}

func TestConcurrentTicksTakeEachSlotOnce(t *testing.T) {
	r := newRig(t, day.Add(4*time.Hour+5*time.Minute))
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := r.s.Tick(context.Background()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	seen := map[string]int{}
	for _, s := range r.exec.started {
		seen[s.Database]++
	}
	if len(seen) != 3 || seen["db1"] != 1 || seen["db2"] != 1 || seen["db3"] != 1 {
		t.Fatalf("starts per database = %v, want exactly one each", seen)
	}
}

func TestPollingDetectsRotationAndCountsCalls(t *testing.T) {
	r := newRig(t, day.Add(30*time.Minute))
	keys := &fakeKeys{status: map[string]KeyStatus{
		testkit.KeyA: {Version: "1", State: events.KeyActive},
		testkit.KeyB: {Version: "7", State: events.KeyActive},
	}}
	r.s.Keys = keys
	ctx := context.Background()
	tick := func(d time.Duration) []DBReport {
		t.Helper()
		r.clk.Advance(d)
		reps, err := r.s.Tick(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return reps
	}
	tick(0)
	keys.keyCalls, keys.regCalls = 0, 0
	tick(5 * time.Minute)
	if keys.keyCalls != 2 || keys.regCalls != 0 {
		t.Fatalf("steady state: %d metadata and %d registration calls for 2 keys, want 2 and 0", keys.keyCalls, keys.regCalls)
	}
	if st := r.get(t, "db1"); st.Key.Version != "1" || st.Window != nil {
		t.Fatalf("first sighting: key %+v window %+v", st.Key, st.Window)
	}
	// Rotation seen by polling: both databases of KeyA hold; one key.rotated is announced.
	keys.status[testkit.KeyA] = KeyStatus{Version: "2", State: events.KeyActive, RotatedAt: r.clk.Now()}
	keys.regs = map[string][]Registration{testkit.KeyA: {{ResourceCRN: "i1", KeyVersion: "1"}, {ResourceCRN: "i2", KeyVersion: "1"}, {ResourceCRN: "stranger", KeyVersion: "1"}}}
	keys.keyCalls, keys.regCalls = 0, 0
	tick(5 * time.Minute)
	for _, db := range []string{"db1", "db2"} {
		if st := r.get(t, db); st.Window == nil || st.Window.ToVersion != "2" || st.Window.FromVersion != "1" || st.Window.DetectedBy != "poll" {
			t.Fatalf("%s window = %+v", db, st.Window)
		}
	}
	if n := len(r.send.OfType(events.TypeKeyRotated)); n != 1 {
		t.Fatalf("key.rotated announced %d times", n)
	}
	// During the window: one metadata and one registrations call per key with a window.
	keys.keyCalls, keys.regCalls = 0, 0
	reps := tick(5 * time.Minute)
	if keys.keyCalls != 2 || keys.regCalls != 1 {
		t.Fatalf("during the window: %d metadata, %d registration calls; want 2 and 1", keys.keyCalls, keys.regCalls)
	}
	if rep := report(t, reps, "db1"); rep.Action == policy.Start {
		t.Fatalf("db1 started during the window: %+v", rep)
	}
	// db1 re-wraps; after the 15 min settle its window closes, db2's stays (not re-wrapped).
	keys.regs[testkit.KeyA][0].KeyVersion = "2"
	tick(15 * time.Minute)
	if st := r.get(t, "db1"); st.Window != nil || st.Key.Version != "2" || !st.NeedFull {
		t.Fatalf("db1 after re-wrap: window %+v key %+v", st.Window, st.Key)
	}
	if st := r.get(t, "db2"); st.Window == nil {
		t.Fatal("db2 window closed without re-wrap")
	}
	if n := len(r.send.OfType(events.TypeKeyRotated)); n != 1 {
		t.Fatalf("key.rotated announced %d times in all", n)
	}
}

func TestPollingKeyStateAndErrors(t *testing.T) {
	r := newRig(t, day.Add(30*time.Minute))
	keys := &fakeKeys{status: map[string]KeyStatus{testkit.KeyA: {Version: "1", State: events.KeyActive}, testkit.KeyB: {Version: "1", State: events.KeyActive}}}
	r.s.Keys = keys
	ctx := context.Background()
	if _, err := r.s.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	keys.status[testkit.KeyB] = KeyStatus{Version: "1", State: events.KeyDeactivated}
	for range 2 {
		r.clk.Advance(5 * time.Minute)
		if _, err := r.s.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if st := r.get(t, "db3"); !st.Key.Blocked {
		t.Fatal("deactivated key did not block db3")
	}
	if n := len(r.send.OfType(events.TypeAlert)); n != 1 {
		t.Fatalf("alerts = %d, want one", n)
	}
	// 04:00: db3's full is due but blocked.
	r.clk.Set(day.Add(4*time.Hour + 5*time.Minute))
	reps, err := r.s.Tick(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep := report(t, reps, "db3"); rep.Action != policy.Defer || !strings.Contains(rep.Reason, policy.ReasonKeyNotActive) {
		t.Fatalf("db3 = %+v", rep)
	}
	// Key Protect failing does not fail the tick: backups of known-good keys go on.
	keys.err = errors.New("429 Too Many Requests")
	r.clk.Advance(24 * time.Hour)
	if _, err := r.s.Tick(ctx); err != nil {
		t.Fatalf("tick failed because Key Protect did: %v", err)
	}
}

type rotatingKeys struct {
	*fakeKeys
	rotations int
}

func (k *rotatingKeys) Rotate(_ context.Context, crn string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.rotations++
	st := k.status[crn]
	st.Version = fmt.Sprint(k.rotations + 1)
	k.status[crn] = st
	return nil
}

func TestManagedRotationWaitsForFreshFullsThenRotatesOnce(t *testing.T) {
	f := testkit.LoadFleet(t)
	f.Keys = []config.KeyPolicy{{CRN: testkit.KeyB, ManagedRotation: config.ManagedRotation{Every: 30 * 24 * time.Hour}}}
	r := newRig(t, day.Add(4*time.Hour+5*time.Minute)) // db3's full is due at 04:00
	r.s.Fleet = config.Static{F: f}
	keys := &rotatingKeys{fakeKeys: &fakeKeys{status: map[string]KeyStatus{
		testkit.KeyA: {Version: "1", State: events.KeyActive},
		testkit.KeyB: {Version: "1", State: events.KeyActive, RotatedAt: day.Add(-40 * 24 * time.Hour)},
	}}}
	r.s.Keys = keys
	ctx := context.Background()
	if _, err := r.s.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if keys.rotations != 0 {
		t.Fatal("rotated with a run in flight and no fresh full")
	}
	// The full completes under version 1: the next tick rotates, opens the window, announces.
	_, _ = state.Update(ctx, r.store, "db3", nil, func(st *state.State) error {
		policy.ApplySuccess(st, *st.Run, "20261124040500", "1", r.clk.Now().Add(40*time.Minute))
		return nil
	})
	r.clk.Advance(time.Hour)
	if _, err := r.s.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if keys.rotations != 1 {
		t.Fatalf("rotations = %d, want 1", keys.rotations)
	}
	st := r.get(t, "db3")
	if st.Window == nil || st.Window.ToVersion != "2" || st.Window.DetectedBy != "managed" {
		t.Fatalf("window = %+v", st.Window)
	}
	kr := r.send.OfType(events.TypeKeyRotated)
	if len(kr) != 1 || kr[0].Payload.(events.KeyRotated).DetectedBy != "managed" {
		t.Fatalf("key.rotated = %+v", kr)
	}
	// Later ticks: the window holds and no second rotation happens.
	keys.status[testkit.KeyB] = KeyStatus{Version: "2", State: events.KeyActive, RotatedAt: r.clk.Now()}
	r.clk.Advance(15 * time.Minute)
	if _, err := r.s.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if keys.rotations != 1 || len(r.send.OfType(events.TypeKeyRotated)) != 1 {
		t.Fatalf("rotations %d announcements %d", keys.rotations, len(r.send.OfType(events.TypeKeyRotated)))
	}
}

func TestRequestedBackup(t *testing.T) {
	r := newRig(t, day.Add(10*time.Hour))
	req := Requests{r.s}
	ctx := context.Background()
	e := testkit.Event(t, "req-1", events.BackupRequested{Database: "db1", Type: events.Incremental, RequestedBy: "ops@example.com"})
	res, err := req.Handle(ctx, e)
	if err != nil || res.Outcome != "started" {
		t.Fatalf("first request: %+v %v", res, err)
	}
	if len(r.exec.started) != 1 || r.exec.started[0].Type != events.Full {
		t.Fatalf("started %+v, want one full (no full yet)", r.exec.started)
	}
	if res, err := req.Handle(ctx, e); err != nil || res.Outcome != "duplicate" {
		t.Fatalf("duplicate request: %+v %v", res, err)
	}
	// A second request while the run is in flight is refused with the reason and changes nothing.
	before := r.get(t, "db1")
	_, err = req.Handle(ctx, testkit.Event(t, "req-2", events.BackupRequested{Database: "db1", Type: events.Full, RequestedBy: "ops"}))
	if err == nil || !strings.Contains(err.Error(), policy.ReasonRunInFlight) || !errors.Is(err, edge.ErrRejected) {
		t.Fatalf("request during a run: %v", err)
	}
	after := r.get(t, "db1")
	if after.Run.ID != before.Run.ID || after.LastDecision == nil || !strings.Contains(after.LastDecision.Reason, "request by ops refused: "+policy.ReasonRunInFlight) {
		t.Fatalf("a refused request must change nothing but the recorded refusal: run %+v decision %+v", after.Run, after.LastDecision)
	}
	if _, err := req.Handle(ctx, testkit.Event(t, "req-2", events.BackupRequested{Database: "db1", Type: events.Full, RequestedBy: "ops"})); err == nil {
		t.Fatal("a redelivered refused request was accepted")
	}
	if again := r.get(t, "db1"); again.Revision != after.Revision {
		t.Fatal("a redelivered refusal wrote the state again")
	}
	if _, err := req.Handle(ctx, testkit.Event(t, "req-3", events.BackupRequested{Database: "nope", Type: events.Full, RequestedBy: "ops"})); edge.Status(err) != 422 {
		t.Fatalf("unknown database: %v", err)
	}
}

func TestDestroyedKeyNamesUnrestorableBackups(t *testing.T) {
	r := newRig(t, day.Add(30*time.Minute))
	keys := &fakeKeys{status: map[string]KeyStatus{testkit.KeyA: {Version: "1", State: events.KeyActive}, testkit.KeyB: {Version: "1", State: events.KeyActive}}}
	r.s.Keys = keys
	e1 := catalogtest.Sample("db3", "20261120020000", events.Full, "")
	e1.KeyCRN = testkit.KeyB
	e2 := catalogtest.Sample("db3", "20261121020000", events.Full, "")
	e2.KeyCRN = testkit.KeyB
	e3 := catalogtest.Discard(catalogtest.Sample("db3", "20261122020000", events.Full, ""), "upload failed") // never restorable
	e3.KeyCRN = testkit.KeyB
	ctx := context.Background()
	for _, e := range []catalog.Entry{e1, e2, e3} {
		if err := r.cat.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.s.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	keys.status[testkit.KeyB] = KeyStatus{Version: "1", State: events.KeyDestroyed}
	for range 2 {
		r.clk.Advance(5 * time.Minute)
		if _, err := r.s.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var lost []events.Alert
	for _, a := range r.send.OfType(events.TypeAlert) {
		if al := a.Payload.(events.Alert); al.Reason == "unrestorable" {
			lost = append(lost, al)
		}
	}
	if len(lost) != 1 || len(lost[0].Related) != 2 || !strings.Contains(lost[0].Related[0], "20261121020000-full") {
		t.Fatalf("unrestorable alerts = %+v", lost)
	}
}
