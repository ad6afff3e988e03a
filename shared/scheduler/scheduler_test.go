package scheduler

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/internal/testkit"
	"github.com/keyguard-dev/keyguard/shared/policy"
	"github.com/keyguard-dev/keyguard/shared/state"
)

type fakeExec struct {
	mu      sync.Mutex
	started []events.BackupStarted
	fail    error
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
	store state.Store
	exec  *fakeExec
	send  *testkit.Sender
	clk   *clock.Fake
}

func newRig(t *testing.T, at time.Time) *rig {
	r := &rig{store: state.NewMemoryStore(), exec: &fakeExec{}, send: &testkit.Sender{}, clk: clock.NewFake(at)}
	r.s = &Scheduler{Store: r.store, Fleet: config.Static{F: testkit.LoadFleet(t)}, Exec: r.exec, ExecName: "fake", Send: r.send, Clock: r.clk}
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

type rewrapYes struct{}

func (rewrapYes) Rewrapped(context.Context, string, string) (bool, error) { return true, nil }

func TestConfirmedRewrapClosesAfterSettle(t *testing.T) {
	r := newRig(t, day.Add(time.Hour+10*time.Minute))
	r.s.Rewrap = rewrapYes{}
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
	st := r.get(t, "db1")
	if st.ConsecutiveFailures != 1 || st.NextRetry == nil || st.NextRetry.Attempt != 2 || st.LastFailure.RunID != runID {
		t.Fatalf("after lease expiry: failures %d retry %+v last %+v", st.ConsecutiveFailures, st.NextRetry, st.LastFailure)
	}
}

func TestExecutorStartFailurePlansRetryAtOnce(t *testing.T) {
	r := newRig(t, day.Add(2*time.Hour+5*time.Minute))
	r.exec.fail = errors.New("job run quota exceeded")
	_, err := r.s.Tick(context.Background())
	if err == nil || !strings.Contains(err.Error(), "quota") {
		t.Fatalf("Tick error = %v", err)
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
