package integration

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/catalog/catalogtest"
	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/test/s3server"
)

// hourly is n entries of db, one an hour from a Sunday: a full every week, an incremental every
// day, deltas in between, each with a log range and a run id of realistic length.
func hourly(db string, start time.Time, n int) []catalog.Entry {
	out := make([]catalog.Entry, 0, n)
	var lastFull, last string
	for i := range n {
		at := start.Add(time.Duration(i) * time.Hour)
		ts := catalog.Timestamp(at)
		typ, parent := events.Delta, last
		switch {
		case i%168 == 0:
			typ, parent = events.Full, ""
			lastFull = ts
		case i%24 == 0:
			typ, parent = events.Incremental, lastFull
		}
		e := catalogtest.Sample(db, ts, typ, parent)
		e.LogRange = catalog.LogRange{First: fmt.Sprintf("S%07d.LOG", i), Last: fmt.Sprintf("S%07d.LOG", i+1)}
		e.RunID = fmt.Sprintf("%s-%s-%08x", db, ts, uint32(i)*2654435761)
		out = append(out, e)
		last = ts
	}
	return out
}

// putRaw stores each entry (and, with images, a small object for its image) with 32 writers,
// without the index: the index is built afterwards, in one go, by Reindex.
func putRaw(tb testing.TB, objs objstore.Store, entries []catalog.Entry, images bool) {
	tb.Helper()
	ctx := context.Background()
	next := make(chan catalog.Entry)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed error
	for range 32 {
		wg.Go(func() {
			for e := range next {
				body, err := catalog.Encode(e)
				if err == nil {
					_, err = objs.Put(ctx, e.Key(), body, objstore.Cond{})
				}
				if err == nil && images {
					_, err = objs.Put(ctx, e.Images[0].Key, []byte("image"), objstore.Cond{})
				}
				if err != nil {
					mu.Lock()
					failed = err
					mu.Unlock()
				}
			}
		})
	}
	for _, e := range entries {
		next <- e
	}
	close(next)
	wg.Wait()
	if failed != nil {
		tb.Fatal(failed)
	}
}

// baseKey is the key of db's index base.
func baseKey(tb testing.TB, objs objstore.Store, db string) (string, int64) {
	tb.Helper()
	infos, err := objs.List(context.Background(), "index/"+db+"/base-")
	if err != nil || len(infos) != 1 {
		tb.Fatalf("index bases of %s: %v, %v; want one", db, infos, err)
	}
	return infos[0].Key, infos[0].Size
}

// BenchmarkCatalog100k: a database of 100,000 entries (eleven years of hourly backups) in
// versitygw, through ibm-cos-sdk-go, each operation beside its floor measured in the same
// loop: one GET of an object the size of the index's base (the least any reader of the whole
// index does). The setup (writing the entries, building the index with Reindex) is not timed.
// Run it alone with
//
//	go test ./test/integration -run '^$' -bench BenchmarkCatalog100k -benchtime 5x
//
// The sub-benchmarks:
//
//   - prune-full: completion's retention step when the index head alone cannot decide (a policy
//     changed): head and base read, Retain over 100,000 summaries, the mark for the next
//     success (with Retain at the horizons of KeepDays), the head written;
//   - prune-incremental: the same step on the next success, decided from the head alone;
//   - plan-restore: Catalog.PlanRestore to the latest point, the whole entries of its chain read;
//   - list-floor: one listing of the 100,000 keys, the least any reader of one object per
//     entry does (not a ratio: it is the floor of the old path, not of this one).
func BenchmarkCatalog100k(b *testing.B) {
	const n = 100_000
	ctx := context.Background()
	srv := s3server.Start(b)
	objs := objstore.NewCOS(srv.Client(b), srv.Bucket, "bench")
	start := time.Date(2014, 1, 5, 1, 0, 0, 0, time.UTC) // a Sunday
	entries := hourly("sales", start, n)
	t0 := time.Now()
	putRaw(b, objs, entries, false)
	b.Logf("setup: %d entries written in %s", n, time.Since(t0).Round(time.Second))
	c := catalog.New(objs)
	t0 = time.Now()
	if err := c.Reindex(ctx, "sales"); err != nil {
		b.Fatal(err)
	}
	key, size := baseKey(b, objs, "sales")
	b.Logf("setup: index rebuilt from the entries in %s; base %s of %d bytes", time.Since(t0).Round(time.Second), key, size)
	now := entries[n-1].EndedAt.Add(time.Hour)

	floor := func(b *testing.B) time.Duration {
		b.StopTimer()
		defer b.StartTimer()
		t0 := time.Now()
		if _, _, err := objs.Get(ctx, key); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	report := func(b *testing.B, op, fl time.Duration) {
		per := float64(b.N)
		b.ReportMetric(op.Seconds()*1e3/per, "ms/op-wall")
		b.ReportMetric(fl.Seconds()*1e3/per, "ms/floor-get")
		b.ReportMetric(float64(op)/float64(fl), "op/floor")
	}

	b.Run("prune-full", func(b *testing.B) {
		var op, fl time.Duration
		i := 0
		for b.Loop() {
			// Two policies that keep everything, in turn: the mark of one does not answer for
			// the other, so every pass reads and judges the whole index.
			policy := catalog.RetentionPolicy{KeepFulls: 2, KeepDays: 5000 + i%2}
			i++
			t0 := time.Now()
			p, err := c.Prune(ctx, "sales", policy, now)
			op += time.Since(t0)
			if err != nil || p.Quick || p.Kept != n || len(p.Dropped) != 0 {
				b.Fatalf("Prune = kept %d, dropped %d, quick %v, %v", p.Kept, len(p.Dropped), p.Quick, err)
			}
			fl += floor(b)
		}
		report(b, op, fl)
	})

	b.Run("prune-incremental", func(b *testing.B) {
		policy := catalog.RetentionPolicy{KeepFulls: 2, KeepDays: 5000}
		if _, err := c.Prune(ctx, "sales", policy, now); err != nil {
			b.Fatal(err)
		}
		var op, fl time.Duration
		for b.Loop() {
			t0 := time.Now()
			p, err := c.Prune(ctx, "sales", policy, now.Add(time.Minute))
			op += time.Since(t0)
			if err != nil || !p.Quick || p.Kept != n {
				b.Fatalf("Prune = kept %d, quick %v, %v", p.Kept, p.Quick, err)
			}
			fl += floor(b)
		}
		report(b, op, fl)
	})

	b.Run("plan-restore", func(b *testing.B) {
		var op, fl time.Duration
		all := func(string, string) bool { return true }
		for b.Loop() {
			t0 := time.Now()
			plan, err := c.PlanRestore(ctx, "sales", time.Time{}, all)
			op += time.Since(t0)
			if err != nil || plan.Target != entries[n-1].ImageTimestamp || len(plan.Images[0].Images) != 1 {
				b.Fatalf("PlanRestore = %s (%d images), %v", plan.Target, len(plan.Images), err)
			}
			fl += floor(b)
		}
		report(b, op, fl)
	})

	b.Run("list-floor", func(b *testing.B) {
		var op time.Duration
		for b.Loop() {
			t0 := time.Now()
			infos, err := objs.List(ctx, catalog.Prefix("sales"))
			op += time.Since(t0)
			if err != nil || len(infos) != n {
				b.Fatalf("List = %d keys, %v", len(infos), err)
			}
		}
		b.ReportMetric(op.Seconds()*1e3/float64(b.N), "ms/op-wall")
	})
}

// BenchmarkCatalogDelete1000: retention deleting 1,000 entries of a catalog of 2,000, each with
// its image file, in versitygw: DeleteMany (index marks, one GET per entry for its files, S3
// DeleteObjects for files and entries), Delete one entry at a time (as the operator's backup
// delete does), and one at a time the way Delete worked before the index (as completion
// deleted: a listing, a GET and two DELETEs per entry); each beside the floor measured in the
// same loop: S3 DeleteObjects of the same 2,000 keys (1,000 entries and their images) with
// nothing else. The entries are written again, untimed, before each operation and each floor.
//
//	go test ./test/integration -run '^$' -bench BenchmarkCatalogDelete1000 -benchtime 3x
func BenchmarkCatalogDelete1000(b *testing.B) {
	const n, drop = 2000, 1000
	ctx := context.Background()
	srv := s3server.Start(b)
	objs := objstore.NewCOS(srv.Client(b), srv.Bucket, "bench")
	c := catalog.New(objs)
	entries := hourly("sales", time.Date(2024, 1, 7, 1, 0, 0, 0, time.UTC), n)
	tss := make([]string, drop)
	var keys []string
	for i, e := range entries[:drop] {
		tss[i] = e.ImageTimestamp
		keys = append(keys, e.Key(), e.Images[0].Key)
	}
	putRaw(b, objs, entries, true)
	if err := c.Reindex(ctx, "sales"); err != nil {
		b.Fatal(err)
	}
	refill := func(b *testing.B) {
		b.StopTimer()
		putRaw(b, objs, entries[:drop], true)
		if err := c.Reindex(ctx, "sales"); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	check := func(b *testing.B) {
		l, err := c.Summaries(ctx, "sales")
		if err != nil || len(l.Entries) != n-drop {
			b.Fatalf("after the deletion Summaries holds %d entries, %v; want %d", len(l.Entries), err, n-drop)
		}
	}
	floor := func(b *testing.B) time.Duration {
		b.StopTimer()
		defer b.StartTimer()
		putRaw(b, objs, entries[:drop], true)
		t0 := time.Now()
		if err := objstore.DeleteMany(ctx, objs, keys); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	// What Delete did before the index, one entry at a time: find the entry (a listing of its
	// timestamp), read it, delete its image, then the entry.
	before := func(b *testing.B, ts string) {
		infos, err := objs.List(ctx, catalog.Prefix("sales")+ts+"-")
		if err != nil || len(infos) != 1 {
			b.Fatalf("List %s = %v, %v", ts, infos, err)
		}
		body, _, err := objs.Get(ctx, infos[0].Key)
		if err != nil {
			b.Fatal(err)
		}
		e, err := catalog.Decode(body)
		if err != nil {
			b.Fatal(err)
		}
		for _, k := range []string{e.Images[0].Key, infos[0].Key} {
			if err := objs.Delete(ctx, k); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, mode := range []string{"batch", "one-by-one", "one-by-one-before-the-index"} {
		b.Run(mode, func(b *testing.B) {
			var op, fl time.Duration
			for b.Loop() {
				refill(b)
				t0 := time.Now()
				switch mode {
				case "batch":
					if got, err := c.DeleteMany(ctx, "sales", tss); err != nil || got != drop {
						b.Fatalf("DeleteMany = %d, %v", got, err)
					}
				case "one-by-one":
					for _, ts := range tss {
						if err := c.Delete(ctx, "sales", ts); err != nil {
							b.Fatal(err)
						}
					}
				default:
					for _, ts := range tss {
						before(b, ts)
					}
				}
				op += time.Since(t0)
				if mode != "one-by-one-before-the-index" {
					b.StopTimer()
					check(b)
					b.StartTimer()
				}
				fl += floor(b)
			}
			per := float64(b.N)
			b.ReportMetric(op.Seconds()*1e3/per, "ms/op-wall")
			b.ReportMetric(fl.Seconds()*1e3/per, "ms/floor-deleteobjects")
			b.ReportMetric(float64(op)/float64(fl), "op/floor")
			b.ReportMetric(op.Seconds()*1e3/per/drop, "ms/entry")
		})
	}
}
