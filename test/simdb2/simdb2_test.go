package simdb2

import (
	"context"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/test/testkit"
)

func TestSimulatedOutcomes(t *testing.T) {
	start := time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC)
	clk := clock.NewFake(start)
	send := &testkit.Sender{}
	sim := &Simulated{Clock: clk, Send: send, Catalog: catalog.New(objstore.NewMemory()), Fail: []FailRule{{Database: "db1", Nth: 2, Class: events.Transient, Code: "SQL2062N", Message: "media"}}}
	run := func(id string, typ events.BackupType) events.BackupStarted {
		return events.BackupStarted{Database: "db1", RunID: id, Type: typ, Mode: events.Online, Slot: clk.Now(), StartedAt: clk.Now(),
			LeaseUntil: clk.Now().Add(time.Hour), KeyCRN: testkit.KeyA, KeyVersion: "3", Executor: "simulated"}
	}
	ctx := context.Background()
	if err := sim.Start(ctx, run("r1", events.Full)); err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(ctx, run("r1", events.Full)); err != nil { // duplicate start: no second outcome
		t.Fatal(err)
	}
	clk.Advance(39 * time.Minute)
	if len(send.OfType(events.TypeBackupCompleted)) != 0 {
		t.Fatal("completed early")
	}
	clk.Advance(time.Minute)
	done := send.OfType(events.TypeBackupCompleted)
	if len(done) != 1 || done[0].ID != "r1/outcome" {
		t.Fatalf("completed = %+v", done)
	}
	c := done[0].Payload.(events.BackupCompleted)
	if c.KeyVersion != "3" || !c.Verified || c.ImageTimestamp != "20261124020000" || c.EndedAt.Sub(c.StartedAt) != 40*time.Minute {
		t.Fatalf("completion = %+v", c)
	}
	// The outcome is recorded before it is published: the image's entry and the run record.
	if rec, err := sim.Catalog.(*catalog.Catalog).GetRun(ctx, "db1", "r1"); err != nil || rec.Completed == nil {
		t.Fatalf("run record = %+v, %v", rec, err)
	}
	if es, err := sim.Catalog.List(ctx, "db1"); err != nil || len(es) != 1 || es[0].RunID != "r1" {
		t.Fatalf("catalog = %+v, %v", es, err)
	}
	if err := sim.Start(ctx, run("r2", events.Delta)); err != nil {
		t.Fatal(err)
	}
	clk.Advance(5 * time.Minute)
	failed := send.OfType(events.TypeBackupFailed)
	if len(failed) != 1 || failed[0].Payload.(events.BackupFailed).Code != "SQL2062N" {
		t.Fatalf("failed = %+v", failed)
	}
	if err := sim.Start(ctx, events.BackupStarted{RunID: "bad"}); err == nil {
		t.Fatal("invalid run accepted")
	}
}

func TestSimulatedFailsWhileRewrapping(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC))
	send := &testkit.Sender{}
	rewrapping := true
	sim := &Simulated{Clock: clk, Send: send, Catalog: catalog.New(objstore.NewMemory()), Rewrapping: func(db string) bool { return db == "db1" && rewrapping }}
	start := func(id string) {
		t.Helper()
		if err := sim.Start(context.Background(), events.BackupStarted{Database: "db1", RunID: id, Type: events.Full, Mode: events.Online, Slot: clk.Now(),
			StartedAt: clk.Now(), LeaseUntil: clk.Now().Add(time.Hour), KeyCRN: testkit.KeyA, Executor: "simulated"}); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Hour)
	}
	start("during")
	rewrapping = false
	start("after")
	f := send.OfType(events.TypeBackupFailed)
	if len(f) != 1 || f[0].Payload.(events.BackupFailed).Class != events.Rotation {
		t.Fatalf("failed = %+v", f)
	}
	if len(send.OfType(events.TypeBackupCompleted)) != 1 {
		t.Fatal("the backup after re-wrap did not complete")
	}
}

func TestSimulatedCancel(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC))
	send := &testkit.Sender{}
	sim := &Simulated{Clock: clk, Send: send}
	run := events.BackupStarted{Database: "db1", RunID: "r", Type: events.Full, Mode: events.Online, Slot: clk.Now(), StartedAt: clk.Now(),
		LeaseUntil: clk.Now().Add(time.Hour), KeyCRN: testkit.KeyA, Executor: "simulated"}
	if err := sim.Start(context.Background(), run); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := sim.Cancel(context.Background(), run); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(2 * time.Hour)
	if n := len(send.OfType(events.TypeBackupCompleted)) + len(send.OfType(events.TypeBackupFailed)); n != 0 {
		t.Fatalf("a cancelled run published %d outcomes", n)
	}
}
