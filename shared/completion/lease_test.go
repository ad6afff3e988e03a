package completion

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/catalog/catalogtest"
	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/test/testkit"
)

// TestRetentionKeepsImagesOfRunningRestores: the retention completion applies after a success
// keeps the images a live restore lease holds, which it would otherwise delete; an expired lease
// holds nothing; a lease that does not decode stops retention.
func TestRetentionKeepsImagesOfRunningRestores(t *testing.T) {
	tests := []struct {
		name  string
		lease func(ctx context.Context, objs *objstore.Memory) error
		kept  []string // of the images retention drops without leases
	}{
		{"no lease", func(context.Context, *objstore.Memory) error { return nil }, nil},
		{"live lease", func(ctx context.Context, objs *objstore.Memory) error {
			_, err := catalog.PutLease(ctx, objs, catalog.Lease{Database: "db1", RestoreID: "r1", Images: []string{"20261025020000", "20261025120000"},
				Created: now.Add(-time.Hour), Renewed: now.Add(-5 * time.Minute), Until: now.Add(25 * time.Minute)}, "")
			return err
		}, []string{"20261025020000", "20261025120000"}},
		{"expired lease", func(ctx context.Context, objs *objstore.Memory) error {
			_, err := catalog.PutLease(ctx, objs, catalog.Lease{Database: "db1", RestoreID: "r1", Images: []string{"20261025020000", "20261025120000"},
				Created: now.Add(-2 * time.Hour), Renewed: now.Add(-time.Hour), Until: now.Add(-30 * time.Minute)}, "")
			return err
		}, nil},
		{"unreadable lease", func(ctx context.Context, objs *objstore.Memory) error {
			_, err := objs.Put(ctx, catalog.LeaseKey("db1", "r1"), []byte("{not json"), objstore.Cond{})
			return err
		}, []string{"20261025020000", "20261025120000", "20261101020000", "20261101120000"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := setup(t, run("r-new", 1))
			objs := objstore.NewMemory()
			cat := catalog.New(objs)
			h.Catalog = cat
			ctx := context.Background()
			c := recorded(t, h, completed("r-new"))
			var all []string
			for _, day := range []string{"20261025", "20261101", "20261108", "20261115", "20261122"} {
				full, inc := day+"020000", day+"120000"
				for _, e := range []catalog.Entry{catalogtest.Sample("db1", full, events.Full, ""), catalogtest.Sample("db1", inc, events.Incremental, full)} {
					if err := cat.Put(ctx, e); err != nil {
						t.Fatal(err)
					}
				}
				all = append(all, full, inc)
			}
			if err := tc.lease(ctx, objs); err != nil {
				t.Fatal(err)
			}
			if _, err := h.Handle(ctx, testkit.Event(t, "c-new", c)); err != nil {
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
			want := append(slices.Clone(tc.kept), all[4:]...) // the two newest chains and the 14 days are always kept
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("kept %v, want %v", got, want)
			}
		})
	}
}

// leaseAfterFirstRead is a store on which a restore leases the oldest chain right after
// retention first listed the leases (retention reads them through the catalog's own InUse, so
// the lease is written where it reads).
type leaseAfterFirstRead struct {
	*objstore.Memory
	reads int
}

func (l *leaseAfterFirstRead) List(ctx context.Context, prefix string) ([]objstore.Info, error) {
	if prefix == catalog.LeasePrefix("db1") {
		if l.reads++; l.reads == 2 {
			at := time.Now()
			if _, err := catalog.PutLease(ctx, l.Memory, catalog.Lease{Database: "db1", RestoreID: "r1", Images: []string{"20261025020000", "20261025120000"},
				Created: at, Renewed: at, Until: at.Add(24 * 365 * time.Hour)}, ""); err != nil {
				return nil, err
			}
		}
	}
	return l.Memory.List(ctx, prefix)
}

// TestRetentionReadsTheLeasesAgainBeforeEachDeletion: a restore that leased images after
// retention read the leases keeps them: retention reads the leases again before each deletion and
// stops at an image a restore uses (found by test/sim TestRetentionRacesARestoresLease).
func TestRetentionReadsTheLeasesAgainBeforeEachDeletion(t *testing.T) {
	h, _ := setup(t, run("r-new", 1))
	objs := &leaseAfterFirstRead{Memory: objstore.NewMemory()}
	cat := catalog.New(objs)
	h.Catalog = cat
	ctx := context.Background()
	c := recorded(t, h, completed("r-new"))
	for _, day := range []string{"20261025", "20261101", "20261108", "20261115", "20261122"} {
		full, inc := day+"020000", day+"120000"
		for _, e := range []catalog.Entry{catalogtest.Sample("db1", full, events.Full, ""), catalogtest.Sample("db1", inc, events.Incremental, full)} {
			if err := cat.Put(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := h.Handle(ctx, testkit.Event(t, "c-new", c)); err != nil {
		t.Fatal(err)
	}
	for _, ts := range []string{"20261025020000", "20261025120000"} {
		if _, err := cat.Get(ctx, "db1", ts); err != nil {
			t.Errorf("leased image %s: %v", ts, err)
		}
	}
}
