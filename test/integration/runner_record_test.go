package integration

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
)

// failingRunRecords stores an image's entry and then fails, as if the run record's write failed
// every time (found by test/sim TestRunRecordWriteFailsAfterTheEntry).
type failingRunRecords struct{ *catalog.Catalog }

func (f failingRunRecords) Record(ctx context.Context, e *catalog.Entry, r catalog.RunRecord) error {
	if e != nil {
		if err := f.Catalog.Put(ctx, *e); err != nil {
			return err
		}
	}
	return errors.New("put run record: 503 Slow Down")
}

// TestRunnerKeepsACatalogedImageWhoseRunRecordFails: when only the run record cannot be
// written, the image stays cataloged as kept and the run is announced completed (not discarded
// and failed, which would back the slot up again); the scheduler reads the outcome from the
// entry. The next delta builds on the image.
func TestRunnerKeepsACatalogedImageWhoseRunRecordFails(t *testing.T) {
	g := historyRig(t)
	ctx := context.Background()
	g.r.Catalog = failingRunRecords{Catalog: g.cat}
	full, ok := g.run(t, "run-full", events.Full).(events.BackupCompleted)
	if !ok {
		t.Fatalf("full whose run record fails: %+v, want backup.completed", g.out.last())
	}
	e, err := g.cat.Get(ctx, "sales", full.ImageTimestamp)
	if err != nil || e.IsDiscarded() || e.RunID != "run-full" {
		t.Fatalf("entry = %+v, %v; want the kept image of run-full", e, err)
	}
	if _, err := g.cat.GetRun(ctx, "sales", "run-full"); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("run record: %v, want none", err)
	}
	g.r.Catalog = g.cat
	delta, ok := g.run(t, "run-delta", events.Delta).(events.BackupCompleted)
	if !ok || delta.Type != events.Delta {
		t.Fatalf("delta after it: %+v, want a delta built on %s", g.out.last(), full.ImageTimestamp)
	}
	checkChainsMatchDb2(t, g)
}

// lostAnswers stores a kept entry but answers as if the write failed, n times; with
// failDiscarded it fails every discarded record, as COS answering 503 would.
type lostAnswers struct {
	*catalog.Catalog
	n             int
	failDiscarded bool
}

func (l *lostAnswers) Put(ctx context.Context, e catalog.Entry) error {
	if e.IsDiscarded() && l.failDiscarded {
		return errors.New("put catalog entry: 503 Slow Down")
	}
	if err := l.Catalog.Put(ctx, e); err != nil || e.IsDiscarded() || l.n == 0 {
		return err
	}
	l.n--
	return errors.New("put catalog entry: 503 Slow Down (the write was applied)")
}

// TestRunnerKeepsAnImageWhoseEntryWriteLostItsAnswer: both writes of the entry were applied but
// answered as failed; recording the image as discarded is then refused (an entry exists) or fails
// too, and storing the kept entry again shows it is stored: the run succeeded, and its record says
// so (found by test/sim, hostile seeds 2 and 11).
func TestRunnerKeepsAnImageWhoseEntryWriteLostItsAnswer(t *testing.T) {
	g := historyRig(t)
	ctx := context.Background()
	for _, failDiscarded := range []bool{false, true} {
		g.r.Catalog = &lostAnswers{Catalog: g.cat, n: 2, failDiscarded: failDiscarded}
		id := fmt.Sprintf("run-full-%v", failDiscarded)
		full, ok := g.run(t, id, events.Full).(events.BackupCompleted)
		if !ok {
			t.Fatalf("full whose entry writes lost their answers (discarded records failing: %v): %+v, want backup.completed", failDiscarded, g.out.last())
		}
		if e, err := g.cat.Get(ctx, "sales", full.ImageTimestamp); err != nil || e.IsDiscarded() || e.RunID != id {
			t.Fatalf("entry = %+v, %v; want the kept image", e, err)
		}
		if rec, err := g.cat.GetRun(ctx, "sales", id); err != nil || rec.Completed == nil {
			t.Fatalf("run record = %+v, %v; want the success", rec, err)
		}
	}
	checkChainsMatchDb2(t, g)
}
