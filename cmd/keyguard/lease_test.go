package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/catalog/catalogtest"
)

// TestOperatorRetentionKeepsLeasedImages: prune keeps the images a live restore lease holds and
// backup delete refuses them; an expired lease holds nothing.
func TestOperatorRetentionKeepsLeasedImages(t *testing.T) {
	ctx := context.Background()
	lease := func(until time.Time) catalog.Lease {
		return catalog.Lease{Database: "db1", RestoreID: "r1", Images: []string{"20261101010000", "20261102010000", "20261109010000"},
			Created: until.Add(-time.Hour), Renewed: until.Add(-time.Hour), Until: until}
	}
	t.Run("live lease", func(t *testing.T) {
		f := seed(t)
		if _, err := catalog.PutLease(ctx, f.objs, lease(testNow.Add(10*time.Minute)), ""); err != nil {
			t.Fatal(err)
		}
		err := f.run(t, "backup", "delete", "db1", "20261109010000")
		if !errors.Is(err, errRefused) || !strings.Contains(err.Error(), "a running restore uses it") {
			t.Fatalf("delete of a leased image = %v", err)
		}
		if err := f.run(t, "prune", "db1", "-confirm"); err != nil {
			t.Fatal(err)
		}
		got, err := catalog.New(f.objs).List(ctx, "db1")
		if err != nil {
			t.Fatal(err)
		}
		// Without the lease prune leaves the last five; the leased chain stays too.
		want := "20261101010000-full 20261102010000-incremental 20261108010000-full 20261109010000-incremental 20261115010000-full 20261116010000-delta 20261116130000-delta"
		if names := strings.Join(catalogtest.Names(got), " "); names != want {
			t.Errorf("after prune: %s\nwant %s", names, want)
		}
	})
	t.Run("expired lease", func(t *testing.T) {
		f := seed(t)
		if _, err := catalog.PutLease(ctx, f.objs, lease(testNow), ""); err != nil {
			t.Fatal(err)
		}
		if err := f.run(t, "backup", "delete", "db1", "20261109010000", "-confirm"); err != nil {
			t.Fatalf("delete under an expired lease = %v", err)
		}
		if err := f.run(t, "prune", "db1", "-confirm"); err != nil {
			t.Fatal(err)
		}
		got, _ := catalog.New(f.objs).List(ctx, "db1")
		if names := strings.Join(catalogtest.Names(got), " "); names != "20261108010000-full 20261115010000-full 20261116010000-delta 20261116130000-delta" {
			t.Errorf("after prune: %s", names)
		}
	})
}
