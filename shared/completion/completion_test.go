package completion

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/catalog/catalogtest"
	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/edge"
	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/state"
	"github.com/keyguard-dev/keyguard/test/testkit"
)

var now = time.Date(2026, 11, 24, 2, 45, 0, 0, time.UTC)

func setup(t *testing.T, run *state.Run) (*Handler, *testkit.Sender) {
	send := &testkit.Sender{}
	h := &Handler{Store: state.NewMemoryStore(), Fleet: config.Static{F: testkit.LoadFleet(t)}, Send: send, Clock: clock.NewFake(now),
		Catalog: catalog.New(objstore.NewMemory())}
	_, err := state.Update(context.Background(), h.Store, "db1", func() *state.State { return state.New("db1", testkit.KeyA) }, func(st *state.State) error {
		st.Run = run
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return h, send
}

func get(t *testing.T, h *Handler) *state.State {
	st, _, err := h.Store.Get(context.Background(), "db1")
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func run(id string, attempt int) *state.Run {
	return &state.Run{ID: id, Type: events.Delta, Mode: events.Online, Slot: now.Add(-15 * time.Minute), Attempt: attempt, StartedAt: now.Add(-10 * time.Minute), LeaseUntil: now.Add(time.Hour), KeyVersion: "1"}
}

func failed(id string) events.BackupFailed {
	return events.BackupFailed{Database: "db1", RunID: id, Type: events.Delta, Mode: events.Online, StartedAt: now.Add(-10 * time.Minute), EndedAt: now,
		Class: events.Transient, Code: "SQL2062N", Message: "media error"}
}

func completed(id string) events.BackupCompleted {
	return events.BackupCompleted{Database: "db1", RunID: id, Type: events.Delta, Mode: events.Online, StartedAt: now.Add(-10 * time.Minute), EndedAt: now,
		ImageTimestamp: "20261124023500", SizeBytes: 10, KeyCRN: testkit.KeyA, KeyVersion: "1", Verified: true, CatalogKey: "catalog/db1/20261124023500-delta.json"}
}

// recorded is what a runner does before publishing a completion: it records the run.
func recorded(t *testing.T, h *Handler, c events.BackupCompleted) events.BackupCompleted {
	t.Helper()
	if err := h.Catalog.Record(context.Background(), nil, catalog.RunRecord{Database: c.Database, RunID: c.RunID, Completed: &c}); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestFailuresRetryThenAlertThenSuccessResets(t *testing.T) {
	h, send := setup(t, run("r1", 1))
	ctx := context.Background()
	e1 := testkit.Event(t, "f1", failed("r1"))
	for range 2 { // the duplicate counts once
		if _, err := h.Handle(ctx, e1); err != nil {
			t.Fatal(err)
		}
	}
	st := get(t, h)
	if st.ConsecutiveFailures != 1 || st.Run != nil || st.NextRetry == nil || st.NextRetry.At.Sub(now) != 30*time.Minute {
		t.Fatalf("after one failure: %d, run %+v, retry %+v", st.ConsecutiveFailures, st.Run, st.NextRetry)
	}
	if len(send.OfType(events.TypeAlert)) != 0 {
		t.Fatal("alerted below the threshold")
	}
	// Second failure (the retry's run) reaches the threshold of 2.
	_, _ = state.Update(ctx, h.Store, "db1", nil, func(st *state.State) error { st.Run = run("r2", 2); return nil })
	if _, err := h.Handle(ctx, testkit.Event(t, "f2", failed("r2"))); err != nil {
		t.Fatal(err)
	}
	st = get(t, h)
	if st.ConsecutiveFailures != 2 || st.NextRetry == nil || st.NextRetry.At.Sub(now) != time.Hour {
		t.Fatalf("after two failures: %d, retry %+v", st.ConsecutiveFailures, st.NextRetry)
	}
	alerts := send.OfType(events.TypeAlert)
	if len(alerts) != 1 || alerts[0].ID != "r2/alert" || !strings.Contains(alerts[0].Payload.(events.Alert).Message, "2 consecutive backup failures") {
		t.Fatalf("alerts = %+v", alerts)
	}
	// Success resets.
	_, _ = state.Update(ctx, h.Store, "db1", nil, func(st *state.State) error { st.Run = run("r3", 3); return nil })
	if _, err := h.Handle(ctx, testkit.Event(t, "c3", recorded(t, h, completed("r3")))); err != nil {
		t.Fatal(err)
	}
	st = get(t, h)
	if st.ConsecutiveFailures != 0 || st.NextRetry != nil || st.Run != nil || st.LastSuccess == nil || st.LastSuccess.RunID != "r3" {
		t.Fatalf("after success: %+v", st)
	}
}

func TestLateAndUnknownOutcomes(t *testing.T) {
	h, _ := setup(t, run("current", 1))
	ctx := context.Background()
	// A failure of a run no longer in flight changes nothing but the seen list.
	if res, err := h.Handle(ctx, testkit.Event(t, "late-f", failed("old"))); err != nil || !strings.Contains(res.Detail, "ignored") {
		t.Fatalf("late failure: %+v %v", res, err)
	}
	st := get(t, h)
	if st.ConsecutiveFailures != 0 || st.Run == nil || st.Run.ID != "current" {
		t.Fatalf("late failure changed the run: %+v", st)
	}
}

// TestCompletionOfAnUnknownRunChangesNothing: a backup.completed for a run that is neither in
// flight nor the run whose lease expired last neither resets the failure count nor records a
// success, even with a run record.
func TestCompletionOfAnUnknownRunChangesNothing(t *testing.T) {
	h, _ := setup(t, run("current", 1))
	ctx := context.Background()
	_, _ = state.Update(ctx, h.Store, "db1", nil, func(st *state.State) error { st.ConsecutiveFailures = 2; return nil })
	before := get(t, h)
	res, err := h.Handle(ctx, testkit.Event(t, "other-c", recorded(t, h, completed("other"))))
	if err != nil || !strings.Contains(res.Detail, "ignored") {
		t.Fatalf("completion of an unknown run: %+v %v", res, err)
	}
	if st := get(t, h); st.Revision != before.Revision || st.ConsecutiveFailures != 2 || st.LastSuccess != nil {
		t.Fatalf("an unknown run's completion changed the state: %+v", st)
	}
}

// TestCompletionWithoutACatalogRecordIsRefused: a success is accepted only with the run record
// its producer writes before publishing.
func TestCompletionWithoutACatalogRecordIsRefused(t *testing.T) {
	h, _ := setup(t, run("r1", 1))
	before := get(t, h)
	_, err := h.Handle(context.Background(), testkit.Event(t, "c1", completed("r1")))
	if edge.Status(err) != 422 || !strings.Contains(err.Error(), "no record in the catalog") {
		t.Fatalf("unrecorded completion: %v", err)
	}
	if st := get(t, h); st.Revision != before.Revision {
		t.Fatal("an unrecorded completion changed the state")
	}
}

// TestLateSuccessOfTheExpiredRunIsAccepted: the run whose lease expired (counted as a failure)
// finished after all: its success is recorded and resets the count; a redelivery changes nothing.
func TestLateSuccessOfTheExpiredRunIsAccepted(t *testing.T) {
	h, _ := setup(t, nil)
	ctx := context.Background()
	expired := run("slow", 1)
	_, _ = state.Update(ctx, h.Store, "db1", nil, func(st *state.State) error {
		st.LastExpired, st.ConsecutiveFailures = expired, 1
		st.NextRetry = &state.Retry{At: now.Add(time.Hour), Type: events.Delta, Slot: expired.Slot, Attempt: 2}
		return nil
	})
	c := recorded(t, h, completed("slow"))
	for i := range 2 {
		if _, err := h.Handle(ctx, testkit.Event(t, "c-slow", c)); err != nil {
			t.Fatalf("delivery %d: %v", i, err)
		}
	}
	st := get(t, h)
	if st.ConsecutiveFailures != 0 || st.LastSuccess == nil || st.LastSuccess.RunID != "slow" || st.LastExpired != nil || st.NextRetry != nil {
		t.Fatalf("late success: %+v", st)
	}
}

// TestTheRecordedOutcomeWins: an event that contradicts the run's record is applied as recorded.
func TestTheRecordedOutcomeWins(t *testing.T) {
	h, _ := setup(t, run("r1", 1))
	ctx := context.Background()
	f := failed("r1")
	if err := h.Catalog.Record(ctx, nil, catalog.RunRecord{Database: "db1", RunID: "r1", Failed: &f}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Handle(ctx, testkit.Event(t, "c1", completed("r1"))); err != nil {
		t.Fatal(err)
	}
	if st := get(t, h); st.ConsecutiveFailures != 1 || st.LastSuccess != nil {
		t.Fatalf("the event overrode the record: %+v", st)
	}
}

// TestAlertWithALongMessageIsStillSent: a failure message at the event limit (4096 bytes) plus a
// code made an alert that failed validation and blocked the outbox for good.
func TestAlertWithALongMessageIsStillSent(t *testing.T) {
	h, send := setup(t, run("r1", 1))
	ctx := context.Background()
	_, _ = state.Update(ctx, h.Store, "db1", nil, func(st *state.State) error { st.ConsecutiveFailures = 1; return nil })
	f := failed("r1")
	f.Message = strings.Repeat("x", 4000)
	if _, err := h.Handle(ctx, testkit.Event(t, "f1", f)); err != nil {
		t.Fatal(err)
	}
	if st := get(t, h); len(st.PendingAlerts) != 0 || len(send.OfType(events.TypeAlert)) != 1 {
		t.Fatalf("alert not sent: pending %d, sent %d", len(st.PendingAlerts), len(send.OfType(events.TypeAlert)))
	}
}

func TestSuspectRunNeedsVerification(t *testing.T) {
	r := run("s1", 1)
	r.Suspect = true
	h, _ := setup(t, r)
	c := completed("s1")
	c.Verified = false
	recorded(t, h, c)
	if _, err := h.Handle(context.Background(), testkit.Event(t, "c", c)); err != nil {
		t.Fatal(err)
	}
	if st := get(t, h); st.ConsecutiveFailures != 1 || st.LastFailure.Class != events.Rotation {
		t.Fatalf("unverified suspect run: %+v", st)
	}
}

func TestRejects(t *testing.T) {
	h, _ := setup(t, run("r1", 1))
	ctx := context.Background()
	before := get(t, h)
	c := completed("r1")
	c.Database = "nope"
	if _, err := h.Handle(ctx, testkit.Event(t, "x", c)); edge.Status(err) != 422 {
		t.Fatalf("unknown database: %v", err)
	}
	if _, err := h.Handle(ctx, events.Event{ID: "y", Source: "s", Type: events.TypeBackupCompleted, Data: []byte(`{"database":"db1"}`)}); edge.Status(err) != 400 {
		t.Fatalf("bad data: %v", err)
	}
	if _, err := h.Handle(ctx, events.Event{ID: "z", Source: "s", Type: events.TypeTick}); edge.Status(err) != 422 {
		t.Fatalf("wrong type: %v", err)
	}
	if after := get(t, h); after.Revision != before.Revision {
		t.Fatal("rejected events changed the state")
	}
}

func TestSuccessAppliesChainSafeRetention(t *testing.T) {
	h, _ := setup(t, run("r-new", 1))
	cat := h.Catalog.(*catalog.Catalog)
	ctx := context.Background()
	// Four weekly fulls, each with an incremental: keep_fulls 2 (default) and keep_days 14 keep
	// the newest two chains and whatever a point-in-time restore within 14 days needs.
	var want []string
	for i, day := range []string{"20261025", "20261101", "20261108", "20261115", "20261122"} {
		full := day + "020000"
		inc := day + "120000"
		for _, e := range []catalog.Entry{catalogtest.Sample("db1", full, events.Full, ""), catalogtest.Sample("db1", inc, events.Incremental, full)} {
			if err := cat.Put(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		if i >= 2 {
			want = append(want, full, inc)
		}
	}
	if _, err := h.Handle(ctx, testkit.Event(t, "c-new", recorded(t, h, completed("r-new")))); err != nil {
		t.Fatal(err)
	}
	left, err := cat.List(ctx, "db1")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range left {
		got = append(got, e.ImageTimestamp)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("kept %v, want %v", got, want)
	}
	for _, e := range left {
		if _, err := catalog.Chain(left, e.ImageTimestamp); err != nil {
			t.Fatalf("retention broke the chain of %s: %v", e.ImageTimestamp, err)
		}
	}
}

// TestRetentionWaitsForUnreadableEntries: an object of the catalog that this reader cannot
// decode (an entry of a newer schema, during a rolling upgrade) might need any older image, so
// retention deletes nothing until it is readable or removed. Retention reads the catalog's index,
// which learns of an object written behind its back when it is rebuilt from the entries (a
// newer keyguard that writes such entries writes a newer index, which this reader rebuilds).
func TestRetentionWaitsForUnreadableEntries(t *testing.T) {
	h, _ := setup(t, run("r-new", 1))
	objs := objstore.NewMemory()
	cat := catalog.New(objs)
	h.Catalog = cat
	ctx := context.Background()
	for _, day := range []string{"20261025", "20261101", "20261108", "20261115", "20261122"} {
		if err := cat.Put(ctx, catalogtest.Sample("db1", day+"020000", events.Full, "")); err != nil {
			t.Fatal(err)
		}
	}
	newer := `{"schema_version": 99, "database": "db1", "image_timestamp": "20261123020000", "type": "delta", "base": "20261025020000"}`
	if _, err := objs.Put(ctx, catalog.Key("db1", "20261123020000", events.Delta), []byte(newer), objstore.Cond{}); err != nil {
		t.Fatal(err)
	}
	if err := cat.Reindex(ctx, "db1"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Handle(ctx, testkit.Event(t, "c-new", recorded(t, h, completed("r-new")))); err != nil {
		t.Fatal(err)
	}
	left, err := cat.List(ctx, "db1")
	if err != nil || len(left) != 5 {
		t.Fatalf("after retention %d entries (%v), want all 5 kept while an entry is unreadable", len(left), err)
	}
}

// Problem 3: a run that failed after Db2 wrote its image (discarded) makes the next backup a
// full, so no incremental or delta is built on the discarded image.
func TestDiscardedImageMakesTheNextBackupFull(t *testing.T) {
	h, _ := setup(t, run("r1", 1))
	f := failed("r1")
	f.DiscardedImage = "20261124023000"
	if _, err := h.Handle(context.Background(), testkit.Event(t, "f1", f)); err != nil {
		t.Fatal(err)
	}
	if st := get(t, h); !st.NeedFull || !strings.Contains(st.NeedFullReason, "20261124023000") || st.NextRetry == nil || st.NextRetry.Type != events.Delta {
		t.Fatalf("need full %v (%q), retry %+v", st.NeedFull, st.NeedFullReason, st.NextRetry)
	}
}
