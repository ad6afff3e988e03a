package scheduler

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog/catalogtest"
	"github.com/keyguard-dev/keyguard/shared/state"
)

// A runner that died after cataloging its image and before writing its run record (found by
// test/sim TestRunnerDiesBetweenEntryAndRunRecord): at the lease, the image in the catalog is
// the run's outcome, recorded then applied; the run is neither counted failed nor cancelled.
func TestExpiredRunWithACatalogedImageIsASuccess(t *testing.T) {
	r := newRig(t, day.Add(2*time.Hour+5*time.Minute))
	ctx := context.Background()
	if _, err := r.s.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	run := r.get(t, "db1").Run
	e := catalogtest.Sample("db1", "20261124020600", events.Full, "")
	e.RunID, e.KeyVersion = run.ID, run.KeyVersion
	if err := r.cat.Put(ctx, e); err != nil {
		t.Fatal(err)
	}
	r.clk.Set(run.LeaseUntil.Add(time.Minute))
	if _, err := r.s.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	st := r.get(t, "db1")
	if st.ConsecutiveFailures != 0 || st.LastSuccess == nil || st.LastSuccess.RunID != run.ID || st.LastSuccess.Image != e.ImageTimestamp || len(r.exec.cancelled) != 0 {
		t.Fatalf("failures %d, last success %+v, cancelled %v: want the cataloged image as the run's success", st.ConsecutiveFailures, st.LastSuccess, r.exec.cancelled)
	}
	rec, err := r.cat.GetRun(ctx, "db1", run.ID)
	if err != nil || rec.Completed == nil || rec.Completed.CatalogKey != e.Key() {
		t.Fatalf("run record = %+v, %v; want the completion the entry implies", rec, err)
	}
}

// A run whose start was never confirmed (an ambiguous answer) did run, and its runner died after
// cataloging the image; then a rotation window opened. The image is the run's outcome: the run is
// not closed as failed, nor its slot backed up again (found by test/sim, hostile seed 5).
func TestUnconfirmedRunWithACatalogedImageIsASuccess(t *testing.T) {
	r := newRig(t, day.Add(2*time.Hour+5*time.Minute))
	ctx := context.Background()
	r.exec.fail = errors.New("create job run: context deadline exceeded (the job run may exist)")
	if _, err := r.s.Tick(ctx); err == nil {
		t.Fatal("the start did not fail")
	}
	r.exec.fail = nil
	st := r.get(t, "db1")
	run := st.Run
	if run == nil || run.Started {
		t.Fatalf("run %+v: want one in flight, not confirmed", run)
	}
	e := catalogtest.Sample("db1", "20261124020600", events.Full, "")
	e.RunID, e.KeyVersion = run.ID, run.KeyVersion
	if err := r.cat.Put(ctx, e); err != nil {
		t.Fatal(err)
	}
	// A rotation window opens; the next tick comes after the start grace.
	if _, err := state.Update(ctx, r.store, "db1", nil, func(st *state.State) error {
		st.Window = &state.RotationWindow{ToVersion: "v9", OpenedAt: r.clk.Now(), MinCloseAt: r.clk.Now().Add(time.Hour), MaxCloseAt: r.clk.Now().Add(4 * time.Hour)}
		st.Run.Suspect = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	r.clk.Advance(15 * time.Minute)
	if _, err := r.s.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	st = r.get(t, "db1")
	if st.Run != nil || st.LastSuccess == nil || st.LastSuccess.RunID != run.ID || st.ConsecutiveFailures != 0 || st.NextRetry != nil {
		t.Fatalf("run %+v, last success %+v, failures %d, retry %+v: want the cataloged image as the run's success", st.Run, st.LastSuccess, st.ConsecutiveFailures, st.NextRetry)
	}
}
