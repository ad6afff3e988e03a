package catalog_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/catalog/catalogtest"
	"github.com/keyguard-dev/keyguard/shared/objstore"
)

const runKey = "crn:v1:bluemix:public:kms:us-south:a/0123:inst:key:aaaa"

func completedRun(id string) catalog.RunRecord {
	t0 := time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC)
	return catalog.RunRecord{Database: "db1", RunID: id, Completed: &events.BackupCompleted{Database: "db1", RunID: id, Type: events.Full,
		Mode: events.Online, StartedAt: t0, EndedAt: t0.Add(time.Hour), ImageTimestamp: "20261124020000", Location: "db2saas://i/b1",
		SizeBytes: 42, KeyCRN: runKey, KeyVersion: "v1", Verified: true}}
}

func TestRunRecordsAreWrittenOnceAndListedApart(t *testing.T) {
	ctx := context.Background()
	store := objstore.NewMemory()
	c := catalog.New(store)
	rec := completedRun("db1-full-20261124T020000Z-a1")
	if _, err := c.GetRun(ctx, "db1", rec.RunID); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("GetRun before = %v, want ErrNotFound", err)
	}
	entry := catalog.ServiceEntry(*rec.Completed, "db2saas", "")
	if err := c.Record(ctx, &entry, rec); err != nil {
		t.Fatal(err)
	}
	if err := c.Record(ctx, &entry, rec); err != nil {
		t.Fatalf("recording the same outcome again: %v", err)
	}
	other := rec
	failed := events.BackupFailed{Database: "db1", RunID: rec.RunID, Type: events.Full, EndedAt: time.Now(), Class: events.Transient, Message: "late"}
	other.Completed, other.Failed = nil, &failed
	if err := c.PutRun(ctx, other); !errors.Is(err, catalog.ErrExists) {
		t.Fatalf("a second, different outcome = %v, want ErrExists (the first outcome stands)", err)
	}
	got, err := c.GetRun(ctx, "db1", rec.RunID)
	if err != nil || got.Completed == nil || got.Completed.ImageTimestamp != "20261124020000" {
		t.Fatalf("GetRun = %+v, %v", got, err)
	}
	entries, err := c.List(ctx, "db1")
	if err != nil || len(entries) != 1 || entries[0].RunID != rec.RunID || !entries[0].Images[0].External() {
		t.Fatalf("List = %+v, %v (run records must not be listed as entries)", entries, err)
	}
	if err := c.DeleteRun(ctx, "db1", rec.RunID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetRun(ctx, "db1", rec.RunID); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("after DeleteRun: %v", err)
	}
}

func TestRunRecordValidation(t *testing.T) {
	ctx := context.Background()
	c := catalog.New(objstore.NewMemory())
	bad := completedRun("../escape")
	if err := c.PutRun(ctx, bad); !errors.Is(err, catalog.ErrInvalid) {
		t.Fatalf("path-like run id: %v", err)
	}
	both := completedRun("r1")
	both.Failed = &events.BackupFailed{Database: "db1", RunID: "r1", Type: events.Full, EndedAt: time.Now(), Class: events.Transient, Message: "m"}
	if err := c.PutRun(ctx, both); err == nil || !strings.Contains(err.Error(), "exactly one") {
		t.Fatalf("both outcomes: %v", err)
	}
	mismatch := completedRun("r2")
	mismatch.Completed.RunID = "r3"
	if err := c.PutRun(ctx, mismatch); !errors.Is(err, catalog.ErrInvalid) {
		t.Fatalf("outcome of another run: %v", err)
	}
}

func FuzzDecodeRun(f *testing.F) {
	f.Add([]byte(`{"schema_version":1,"database":"db1","run_id":"r1","failed":{"database":"db1","run_id":"r1","type":"full","ended_at":"2026-11-24T02:00:00Z","class":"transient","message":"m"}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := catalog.DecodeRun(body)
		if err != nil {
			return
		}
		if r.Validate() != nil {
			t.Fatalf("decoded an invalid record: %+v", r)
		}
	})
}

// RecordOf: a kept image implies its run's success (naming the entry), a discarded one its
// failure (naming the image); both are valid records of the entry's run.
func TestRecordOfAnEntry(t *testing.T) {
	e := catalogtest.Sample("db1", "20261124020000", events.Incremental, "20261123020000")
	e.RunID = "db1-incremental-20261124T020000Z-a1"
	r := catalog.RecordOf(e)
	if err := r.Validate(); err != nil || r.Completed == nil || r.RunID != e.RunID || r.Completed.CatalogKey != e.Key() ||
		r.Completed.ImageTimestamp != e.ImageTimestamp || r.Completed.KeyVersion != e.KeyVersion || r.Completed.Location != e.Images[0].Key {
		t.Fatalf("RecordOf(kept) = %+v (%v)", r.Completed, err)
	}
	e.Discarded = &catalog.Discard{At: e.EndedAt, Reason: strings.Repeat("upload failed; ", 400)}
	r = catalog.RecordOf(e)
	if err := r.Validate(); err != nil || r.Failed == nil || r.Failed.DiscardedImage != e.ImageTimestamp || r.Failed.Class != events.Transient {
		t.Fatalf("RecordOf(discarded) = %+v (%v)", r.Failed, err)
	}
}
