package catalog_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/catalog/catalogtest"
	"github.com/keyguard-dev/keyguard/shared/objstore"
)

var leaseT0 = time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)

func sampleLease(id string, images ...string) catalog.Lease {
	return catalog.Lease{Database: "db1", RestoreID: id, Images: images, Created: leaseT0, Renewed: leaseT0, Until: leaseT0.Add(30 * time.Minute)}
}

func TestLeaseValidate(t *testing.T) {
	ok := sampleLease("abc123", "20261101020000", "20261102020000")
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	tests := map[string]func(*catalog.Lease){
		"bad database":       func(l *catalog.Lease) { l.Database = "../x" },
		"bad id":             func(l *catalog.Lease) { l.RestoreID = "A/B" },
		"empty id":           func(l *catalog.Lease) { l.RestoreID = "" },
		"no images":          func(l *catalog.Lease) { l.Images = nil },
		"bad timestamp":      func(l *catalog.Lease) { l.Images = []string{"2026"} },
		"repeated image":     func(l *catalog.Lease) { l.Images = []string{"20261101020000", "20261101020000"} },
		"no created":         func(l *catalog.Lease) { l.Created = time.Time{} },
		"until before renew": func(l *catalog.Lease) { l.Until = l.Renewed.Add(-time.Second) },
		"renewed before":     func(l *catalog.Lease) { l.Renewed = l.Created.Add(-time.Second) },
		"term too long":      func(l *catalog.Lease) { l.Until = l.Renewed.Add(catalog.MaxLeaseTerm + time.Second) },
	}
	for name, edit := range tests {
		l := sampleLease("abc123", "20261101020000")
		edit(&l)
		if err := l.Validate(); !errors.Is(err, catalog.ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestLeaseEncodeDecode(t *testing.T) {
	l := sampleLease("abc123", "20261101020000", "20261102020000")
	b, err := catalog.EncodeLease(l)
	if err != nil {
		t.Fatal(err)
	}
	got, err := catalog.DecodeLease(b)
	if err != nil || got.RestoreID != l.RestoreID || !slices.Equal(got.Images, l.Images) || !got.Until.Equal(l.Until) {
		t.Fatalf("round trip %+v %v", got, err)
	}
	for name, body := range map[string]string{
		"not json":       "{",
		"unknown field":  strings.Replace(string(b), `"database"`, `"x": 1, "database"`, 1),
		"newer schema":   strings.Replace(string(b), `"schema_version": 1`, `"schema_version": 2`, 1),
		"no schema":      strings.Replace(string(b), `"schema_version": 1,`, ``, 1),
		"trailing value": string(b) + "{}",
		"too large":      strings.Repeat(" ", catalog.MaxLeaseSize+1),
	} {
		if _, err := catalog.DecodeLease([]byte(body)); !errors.Is(err, catalog.ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestPutLeaseCreateRenewDelete(t *testing.T) {
	ctx := context.Background()
	store := objstore.NewMemory()
	l := sampleLease("abc123", "20261101020000")
	etag, err := catalog.PutLease(ctx, store, l, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.Get(ctx, "leases/db1/restore-abc123.json"); err != nil {
		t.Fatalf("lease not at its key: %v", err)
	}
	// A retried create of the same lease is ours; another lease under the id is refused.
	if again, err := catalog.PutLease(ctx, store, l, ""); err != nil || again != etag {
		t.Fatalf("retried create: %q %v", again, err)
	}
	other := l
	other.Images = []string{"20261102020000"}
	if _, err := catalog.PutLease(ctx, store, other, ""); !errors.Is(err, catalog.ErrExists) {
		t.Fatalf("second create: %v", err)
	}
	// Renewal is conditional on the ETag the holder has.
	l.Renewed, l.Until = leaseT0.Add(10*time.Minute), leaseT0.Add(40*time.Minute)
	etag2, err := catalog.PutLease(ctx, store, l, etag)
	if err != nil || etag2 == etag {
		t.Fatalf("renew: %q %v", etag2, err)
	}
	if _, err := catalog.PutLease(ctx, store, other, etag); !errors.Is(err, objstore.ErrPrecondition) {
		t.Fatalf("renew with a stale ETag: %v", err)
	}
	if err := catalog.DeleteLease(ctx, store, "db1", "abc123"); err != nil {
		t.Fatal(err)
	}
	if err := catalog.DeleteLease(ctx, store, "db1", "abc123"); err != nil {
		t.Fatalf("delete again: %v", err)
	}
	if _, err := catalog.PutLease(ctx, store, l, etag2); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("renew of a deleted lease: %v", err)
	}
	bad := l
	bad.Images = nil
	if _, err := catalog.PutLease(ctx, store, bad, ""); !errors.Is(err, catalog.ErrInvalid) {
		t.Fatalf("invalid lease: %v", err)
	}
}

func TestInUse(t *testing.T) {
	ctx := context.Background()
	store := objstore.NewMemory()
	put := func(l catalog.Lease) {
		if _, err := catalog.PutLease(ctx, store, l, ""); err != nil {
			t.Fatal(err)
		}
	}
	put(sampleLease("live", "20261101020000", "20261102020000"))
	expired := sampleLease("expired", "20261108020000")
	expired.Until = leaseT0.Add(time.Minute)
	put(expired)
	otherDB := sampleLease("x", "20261115020000")
	otherDB.Database = "db2"
	put(otherDB)
	for _, k := range []string{"leases/db1/notes.txt", "leases/db1/other.json", "leases/db1/sub/restore-y.json"} {
		if _, err := store.Put(ctx, k, []byte("not a lease"), objstore.Cond{}); err != nil {
			t.Fatal(err)
		}
	}
	now := leaseT0.Add(5 * time.Minute)
	got, err := catalog.InUse(ctx, store, "db1", now)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got["20261101020000"] || !got["20261102020000"] {
		t.Fatalf("in use %v, want the live lease's two images", got)
	}
	// The catalog over the same store says the same.
	if viaCat, err := catalog.New(store).InUse(ctx, "db1", now); err != nil || len(viaCat) != 2 {
		t.Fatalf("Catalog.InUse %v %v", viaCat, err)
	}
	// At its until the live lease ends too.
	if got, err := catalog.InUse(ctx, store, "db1", leaseT0.Add(30*time.Minute)); err != nil || len(got) != 0 {
		t.Fatalf("after until: %v %v", got, err)
	}
	// A lease that does not decode stops retention (it might protect anything).
	if _, err := store.Put(ctx, "leases/db1/restore-bad.json", []byte("{"), objstore.Cond{}); err != nil {
		t.Fatal(err)
	}
	if _, err := catalog.InUse(ctx, store, "db1", now); !errors.Is(err, catalog.ErrInvalid) || !strings.Contains(err.Error(), "restore-bad.json") {
		t.Fatalf("garbage lease: %v", err)
	}
	// A lease stored under another database's prefix or id is refused too.
	misplaced := sampleLease("moved", "20261101020000")
	b, _ := catalog.EncodeLease(misplaced)
	if _, err := store.Put(ctx, "leases/db1/restore-bad.json", b, objstore.Cond{}); err != nil {
		t.Fatal(err)
	}
	if _, err := catalog.InUse(ctx, store, "db1", now); !errors.Is(err, catalog.ErrInvalid) {
		t.Fatalf("misplaced lease: %v", err)
	}
	if _, err := catalog.InUse(ctx, store, "../db1", now); !errors.Is(err, catalog.ErrInvalid) {
		t.Fatalf("bad database: %v", err)
	}
}

// TestRetainKeepsLeasedImages: retention with a live restore lease keeps the leased images it
// would otherwise delete (with their chains); once the lease has expired, it does not.
func TestRetainKeepsLeasedImages(t *testing.T) {
	ctx := context.Background()
	store := objstore.NewMemory()
	// Four weekly fulls, each with an incremental, all ended long ago.
	var entries []catalog.Entry
	for _, day := range []string{"20261025", "20261101", "20261108", "20261115"} {
		full := catalogtest.Sample("db1", day+"020000", events.Full, "")
		entries = append(entries, full, catalogtest.Sample("db1", day+"120000", events.Incremental, full.ImageTimestamp))
	}
	policy := catalog.RetentionPolicy{KeepFulls: 2}
	// A restore of the oldest incremental holds its chain.
	lease := sampleLease("r1", "20261025020000", "20261025120000")
	if _, err := catalog.PutLease(ctx, store, lease, ""); err != nil {
		t.Fatal(err)
	}
	names := func(es []catalog.Entry) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.ImageTimestamp)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		now  time.Time
		drop []string
	}{
		{"lease live", leaseT0.Add(time.Minute), []string{"20261101120000", "20261101020000"}},
		{"lease expired", lease.Until.Add(time.Second), []string{"20261101120000", "20261101020000", "20261025120000", "20261025020000"}},
	} {
		inUse, err := catalog.InUse(ctx, store, "db1", tc.now)
		if err != nil {
			t.Fatal(err)
		}
		_, drop := catalog.Retain(entries, policy, tc.now, inUse)
		if !slices.Equal(names(drop), tc.drop) {
			t.Errorf("%s: drop %v, want %v", tc.name, names(drop), tc.drop)
		}
	}
}
