package catalog

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/shared/objstore"
)

func TestRestoreRecords(t *testing.T) {
	ctx := context.Background()
	c := New(objstore.NewMemory())
	at := time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)
	r := RestoreRecord{Database: "sales", ID: "drill-1", RequestedBy: "scheduler", StartedAt: at, EndedAt: at.Add(90 * time.Second), Seconds: 90,
		Target: "20261124020000", Images: []string{"20261124010000-full", "20261124020000-incremental"}, Into: "SCRATCH", Drill: true, Success: true, ProbeResult: "8"}
	if err := c.PutRestore(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := c.PutRestore(ctx, r); err != nil {
		t.Fatalf("the same record again: %v", err)
	}
	other := r
	other.Success = false
	if err := c.PutRestore(ctx, other); !errors.Is(err, ErrExists) {
		t.Fatalf("another record for the id: %v", err)
	}
	got, err := c.GetRestore(ctx, "sales", "drill-1")
	if err != nil || got.Seconds != 90 || !got.Drill || got.Images[1] != "20261124020000-incremental" {
		t.Fatalf("get: %+v %v", got, err)
	}
	if _, err := c.GetRestore(ctx, "sales", "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	second := r
	second.ID, second.StartedAt, second.EndedAt = "op-2", at.Add(time.Hour), at.Add(time.Hour+time.Minute)
	if err := c.PutRestore(ctx, second); err != nil {
		t.Fatal(err)
	}
	list, err := c.ListRestores(ctx, "sales")
	if err != nil || len(list) != 2 || list[0].ID != "drill-1" || list[1].ID != "op-2" {
		t.Fatalf("list: %+v %v", list, err)
	}
	// Restore records are not catalog entries.
	if l, err := c.ListReport(ctx, "sales"); err != nil || len(l.Entries) != 0 || len(l.Skipped) != 0 {
		t.Fatalf("entries %+v %v", l, err)
	}
	if err := c.PutRestore(ctx, RestoreRecord{Database: "sales", ID: "bad id"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("invalid: %v", err)
	}
}
