package catalogtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/objstore"
)

// Failing is a store whose operations can be made to fail, to stop a multi-step operation at
// one of its steps the way a crash would. Fail is called before each operation with its name
// (get, put, delete, delete-many, list) and key (the first key for delete-many); a non-nil
// error is returned instead of performing it. DeleteMany is passed on as one operation.
type Failing struct {
	objstore.Store
	mu   sync.Mutex
	Fail func(op, key string) error
}

func (f *Failing) check(op, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Fail == nil {
		return nil
	}
	return f.Fail(op, key)
}

// SetFail replaces the failure rule (nil: none).
func (f *Failing) SetFail(fail func(op, key string) error) {
	f.mu.Lock()
	f.Fail = fail
	f.mu.Unlock()
}

// Get fails or passes on.
func (f *Failing) Get(ctx context.Context, key string) ([]byte, string, error) {
	if err := f.check("get", key); err != nil {
		return nil, "", err
	}
	return f.Store.Get(ctx, key)
}

// Put fails or passes on.
func (f *Failing) Put(ctx context.Context, key string, body []byte, c objstore.Cond) (string, error) {
	if err := f.check("put", key); err != nil {
		return "", err
	}
	return f.Store.Put(ctx, key, body, c)
}

// Delete fails or passes on.
func (f *Failing) Delete(ctx context.Context, key string) error {
	if err := f.check("delete", key); err != nil {
		return err
	}
	return f.Store.Delete(ctx, key)
}

// List fails or passes on.
func (f *Failing) List(ctx context.Context, prefix string) ([]objstore.Info, error) {
	if err := f.check("list", prefix); err != nil {
		return nil, err
	}
	return f.Store.List(ctx, prefix)
}

// DeleteMany fails or passes on, as one operation.
func (f *Failing) DeleteMany(ctx context.Context, keys []string) error {
	if len(keys) > 0 {
		if err := f.check("delete-many", keys[0]); err != nil {
			return err
		}
	}
	return objstore.DeleteMany(ctx, f.Store, keys)
}

// ErrCrash is the failure Failing rules return in the suite.
var ErrCrash = errors.New("crash (injected)")

// SummaryEqual reports whether a and b have the same summary (catalog.Summary).
func SummaryEqual(a, b catalog.Entry) bool {
	fill := func(e catalog.Entry) catalog.Entry {
		e = catalog.Summary(e)
		e.Executor = "x"
		if e.Verification.Verified {
			e.Verification.Tool, e.Verification.At = "t", e.EndedAt
		}
		if !e.IsDiscarded() {
			e.Images = []catalog.Object{{Key: "x://y"}}
		}
		return e
	}
	return Equal(fill(a), fill(b))
}

// checkIndex fails t unless c's summaries of db are the summaries of the entries it lists.
func checkIndex(t *testing.T, c *catalog.Catalog, db string) catalog.Listing {
	t.Helper()
	ctx := context.Background()
	l, err := c.Summaries(ctx, db)
	if err != nil {
		t.Fatalf("Summaries: %v", err)
	}
	truth, err := c.ListReport(ctx, db)
	if err != nil {
		t.Fatalf("ListReport: %v", err)
	}
	if fmt.Sprint(Names(l.Entries)) != fmt.Sprint(Names(truth.Entries)) {
		t.Fatalf("Summaries = %v\nListReport = %v", Names(l.Entries), Names(truth.Entries))
	}
	for i := range l.Entries {
		if !SummaryEqual(l.Entries[i], truth.Entries[i]) {
			t.Fatalf("summary %s = %+v, the entry is %+v", l.Entries[i].Name(), l.Entries[i], truth.Entries[i])
		}
		if len(l.Entries[i].Images) != 0 || l.Entries[i].Executor != "" {
			t.Fatalf("summary %s carries what Get returns: %+v", l.Entries[i].Name(), l.Entries[i])
		}
	}
	return l
}

// week is a history of db1 with every image of a week and a half: a full every Sunday, an
// incremental every other day, a delta at 13:00, from start.
func week(days int) []catalog.Entry {
	start := time.Date(2024, 3, 3, 1, 0, 0, 0, time.UTC) // a Sunday
	var out []catalog.Entry
	var lastFull, last string
	for d := range days {
		for _, hour := range []int{1, 13} {
			at := start.AddDate(0, 0, d).Add(time.Duration(hour-1) * time.Hour)
			ts := catalog.Timestamp(at)
			typ, parent := events.Delta, last
			switch {
			case hour == 1 && at.Weekday() == time.Sunday:
				typ, parent = events.Full, ""
				lastFull = ts
			case hour == 1:
				typ, parent = events.Incremental, lastFull
			}
			out = append(out, Sample("db1", ts, typ, parent))
			last = ts
		}
	}
	return out
}

func putAll(t *testing.T, c *catalog.Catalog, entries []catalog.Entry) {
	t.Helper()
	for _, e := range entries {
		if err := c.Put(context.Background(), e); err != nil {
			t.Fatalf("Put %s: %v", e.Name(), err)
		}
	}
}

// headText is db's stored index head (its format is text: the suite looks for lines in it).
func headText(t *testing.T, s objstore.Store, db string) string {
	t.Helper()
	b, _, err := s.Get(context.Background(), catalog.IndexHeadKey(db))
	if err != nil {
		t.Fatalf("read the index head: %v", err)
	}
	return string(b)
}

func runIndex(t *testing.T, newStore func(t *testing.T) objstore.Store) {
	ctx := context.Background()

	t.Run("SummariesServeTheCatalog", func(t *testing.T) {
		c := catalog.NewWithOptions(newStore(t), catalog.Options{CompactAfter: 4})
		hist := append(week(5), FallBack("db1")...)
		gone := Discard(Sample("db1", "20240310120000", events.Delta, ""), "upload image: 503 Slow Down")
		gone.ParentTimestamp = ""
		putAll(t, c, append(hist, gone))
		l := checkIndex(t, c, "db1")
		if len(l.Entries) != len(hist)+1 || len(l.Skipped) != 0 {
			t.Fatalf("Summaries holds %d entries and skips %v, want %d and none", len(l.Entries), l.Skipped, len(hist)+1)
		}
		// A catalog planned from the index names the whole entries of its chain.
		plan, err := c.PlanRestore(ctx, "db1", hist[9].EndedAt, nil)
		if err != nil {
			t.Fatal(err)
		}
		want, err := catalog.PlanRestore(mustList(t, c, "db1"), hist[9].EndedAt, nil)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(Names(plan.Images)) != fmt.Sprint(Names(want.Images)) || fmt.Sprint(plan.Notes) != fmt.Sprint(want.Notes) {
			t.Fatalf("Catalog.PlanRestore = %v %v\nPlanRestore over List = %v %v", Names(plan.Images), plan.Notes, Names(want.Images), want.Notes)
		}
		for i, e := range plan.Images {
			if !Equal(e, want.Images[i]) {
				t.Errorf("planned %s is not the whole entry: %+v", e.Name(), e)
			}
		}
		chain, err := c.Chain(ctx, "db1", hist[5].ImageTimestamp)
		if err != nil || len(chain) == 0 || !Equal(chain[len(chain)-1], hist[5]) {
			t.Errorf("Catalog.Chain = %v, %v", Names(chain), err)
		}
	})

	t.Run("IndexMissingIsRebuilt", func(t *testing.T) {
		s := newStore(t)
		c := catalog.NewWithOptions(s, catalog.Options{CompactAfter: 4})
		putAll(t, c, week(4))
		infos, err := s.List(ctx, "index/")
		if err != nil || len(infos) < 2 {
			t.Fatalf("the index is %v, %v; want a head and a base", infos, err)
		}
		for _, in := range infos {
			if err := s.Delete(ctx, in.Key); err != nil {
				t.Fatal(err)
			}
		}
		checkIndex(t, c, "db1")
		if text := headText(t, s, "db1"); !strings.Contains(text, "\nrebuilt\t") {
			t.Errorf("the rebuilt head does not say when it was rebuilt:\n%s", text)
		}
		// A Put into a database without an index builds it first.
		if err := s.Delete(ctx, catalog.IndexHeadKey("db1")); err != nil {
			t.Fatal(err)
		}
		putAll(t, c, []catalog.Entry{Sample("db1", "20240320010000", events.Full, "")})
		checkIndex(t, c, "db1")
	})

	t.Run("IndexUnreadableIsRebuilt", func(t *testing.T) {
		for _, what := range []string{"head", "base"} {
			t.Run(what, func(t *testing.T) {
				s := newStore(t)
				c := catalog.NewWithOptions(s, catalog.Options{CompactAfter: 4})
				putAll(t, c, week(4))
				key := catalog.IndexHeadKey("db1")
				if what == "base" {
					infos, err := s.List(ctx, "index/db1/base-")
					if err != nil || len(infos) != 1 {
						t.Fatalf("bases %v, %v; want one", infos, err)
					}
					key = infos[0].Key
				}
				if _, err := s.Put(ctx, key, []byte("keyguard-catalog-index\t1\thead\ndatabase\tdb1\n"), objstore.Cond{}); err != nil {
					t.Fatal(err)
				}
				checkIndex(t, c, "db1")
			})
		}
	})

	t.Run("IndexStaleAfterACrashIsRepaired", func(t *testing.T) {
		s := &Failing{Store: newStore(t)}
		c := catalog.New(s)
		putAll(t, c, week(2))
		// The process stops after the entry is written and before its summary is: every
		// write of the head after the entry's fails.
		e := Sample("db1", "20240317010000", events.Full, "")
		var wrote bool
		s.SetFail(func(op, key string) error {
			switch {
			case op == "put" && key == e.Key():
				wrote = true
			case op == "put" && wrote && key == catalog.IndexHeadKey("db1"):
				return ErrCrash
			}
			return nil
		})
		if err := c.Put(ctx, e); err != nil {
			t.Fatalf("Put = %v, want nil: the entry is stored, its intent is in the index", err)
		}
		if !wrote || !strings.Contains(headText(t, s, "db1"), "\npending\t"+e.Name()+"\t") {
			t.Fatalf("the head does not hold the Put's intent:\n%s", headText(t, s, "db1"))
		}
		s.SetFail(nil)
		l := checkIndex(t, catalog.New(s), "db1")
		if got := l.Entries[len(l.Entries)-1]; got.Name() != e.Name() {
			t.Fatalf("the newest summary is %s, want %s", got.Name(), e.Name())
		}
		// The reader wrote the repair: the intent is now a summary.
		if text := headText(t, s, "db1"); strings.Contains(text, "\npending\t") || !strings.Contains(text, "\ne\t"+e.ImageTimestamp+"\t") {
			t.Fatalf("the head after the repair:\n%s", text)
		}

		// Stopped before the entry was written: the intent stays while it may still be
		// written, and is not a summary.
		e2 := Sample("db1", "20240318010000", events.Delta, e.ImageTimestamp)
		s.SetFail(func(op, key string) error {
			if op == "put" && key == e2.Key() {
				return ErrCrash
			}
			return nil
		})
		if err := c.Put(ctx, e2); !errors.Is(err, ErrCrash) {
			t.Fatalf("Put = %v, want the crash", err)
		}
		s.SetFail(nil)
		checkIndex(t, c, "db1")
		// Put again (the runner retries): stored and indexed.
		putAll(t, c, []catalog.Entry{e2})
		checkIndex(t, c, "db1")
	})

	t.Run("ConcurrentPutsLoseNoEntry", func(t *testing.T) {
		s := newStore(t)
		hist := week(8)
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				// Each writer its own Catalog (its own process), compacting often.
				c := catalog.NewWithOptions(s, catalog.Options{CompactAfter: 3})
				for i := w; i < len(hist); i += 4 {
					if err := c.Put(ctx, hist[i]); err != nil {
						t.Errorf("Put %s: %v", hist[i].Name(), err)
					}
				}
			})
		}
		wg.Wait()
		l := checkIndex(t, catalog.New(s), "db1")
		if len(l.Entries) != len(hist) {
			t.Fatalf("Summaries holds %d entries, want %d", len(l.Entries), len(hist))
		}
		if bases, err := s.List(ctx, "index/db1/base-"); err != nil || len(bases) != 1 {
			t.Errorf("bases left: %v, %v; want one", bases, err)
		}
	})

	t.Run("ConcurrentPutAndDelete", func(t *testing.T) {
		s := newStore(t)
		c := catalog.NewWithOptions(s, catalog.Options{CompactAfter: 3})
		hist := week(10)
		old, young := hist[:10], hist[10:]
		putAll(t, c, old)
		var tss []string
		for _, e := range old[:8] {
			tss = append(tss, e.ImageTimestamp)
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			for _, e := range young {
				if err := catalog.NewWithOptions(s, catalog.Options{CompactAfter: 3}).Put(ctx, e); err != nil {
					t.Errorf("Put %s: %v", e.Name(), err)
				}
			}
		})
		for _, part := range [][]string{tss[:5], tss[3:]} { // overlapping: two pruners
			wg.Go(func() {
				if _, err := catalog.NewWithOptions(s, catalog.Options{CompactAfter: 3}).DeleteMany(ctx, "db1", part); err != nil {
					t.Errorf("DeleteMany: %v", err)
				}
			})
		}
		wg.Wait()
		l := checkIndex(t, c, "db1")
		want := Names(append(slices.Clone(old[8:]), young...))
		if fmt.Sprint(Names(l.Entries)) != fmt.Sprint(want) {
			t.Fatalf("Summaries = %v\nwant %v", Names(l.Entries), want)
		}
	})

	t.Run("DeleteManyRemovesEntriesAndImages", func(t *testing.T) {
		s := newStore(t)
		c := catalog.New(s)
		hist := week(3)
		for _, e := range hist {
			if _, err := s.Put(ctx, e.Images[0].Key, []byte("img"), objstore.Cond{}); err != nil {
				t.Fatal(err)
			}
		}
		putAll(t, c, hist)
		tss := []string{hist[0].ImageTimestamp, hist[1].ImageTimestamp, "20200101010000"}
		n, err := c.DeleteMany(ctx, "db1", tss)
		if err != nil || n != 2 {
			t.Fatalf("DeleteMany = %d, %v; want 2", n, err)
		}
		for _, e := range hist[:2] {
			for _, k := range []string{e.Key(), e.Images[0].Key} {
				if _, _, err := s.Get(ctx, k); !errors.Is(err, objstore.ErrNotFound) {
					t.Errorf("%s after DeleteMany: %v", k, err)
				}
			}
		}
		if _, _, err := s.Get(ctx, hist[2].Images[0].Key); err != nil {
			t.Errorf("a kept image: %v", err)
		}
		checkIndex(t, c, "db1")
		if n, err := c.DeleteMany(ctx, "db1", tss); err != nil || n != 0 {
			t.Errorf("DeleteMany again = %d, %v; want 0, nil", n, err)
		}
	})

	t.Run("DeleteCrashPoints", func(t *testing.T) {
		// A deletion stops after each of its steps; no reader of the index sees the entry from
		// the first on, and the next Prune finishes it.
		for _, step := range []string{"mark", "files", "entries"} {
			t.Run(step, func(t *testing.T) {
				s := &Failing{Store: newStore(t)}
				clk := clock.NewFake(time.Date(2024, 3, 20, 0, 0, 0, 0, time.UTC))
				c := catalog.NewWithOptions(s, catalog.Options{Clock: clk})
				hist := week(2)
				for _, e := range hist {
					if _, err := s.Put(ctx, e.Images[0].Key, []byte("img"), objstore.Cond{}); err != nil {
						t.Fatal(err)
					}
				}
				putAll(t, c, hist)
				victim := hist[len(hist)-1]
				heads := 0
				s.SetFail(func(op, key string) error {
					switch {
					case op == "put" && key == catalog.IndexHeadKey("db1"):
						if heads++; step == "entries" && heads == 2 { // the write clearing the mark
							return ErrCrash
						}
					case op == "delete-many" && key == victim.Images[0].Key && step == "mark":
						return ErrCrash
					case op == "delete-many" && key == victim.Key() && step == "files":
						return ErrCrash
					}
					return nil
				})
				err := c.Delete(ctx, "db1", victim.ImageTimestamp)
				if !errors.Is(err, ErrCrash) {
					t.Fatalf("Delete = %v, want the crash", err)
				}
				s.SetFail(nil)
				l, err := c.Summaries(ctx, "db1")
				if err != nil {
					t.Fatal(err)
				}
				if slices.Contains(Names(l.Entries), victim.Name()) {
					t.Fatalf("a reader of the index still sees %s after the deletion began", victim.Name())
				}
				if !strings.Contains(headText(t, s, "db1"), "\ndeleting\t"+victim.Name()+"\t") {
					t.Fatalf("the head does not record the deletion:\n%s", headText(t, s, "db1"))
				}
				// Too soon: the deleter may still be at work.
				if _, err := c.Prune(ctx, "db1", catalog.RetentionPolicy{KeepFulls: 9}, clk.Now()); err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(headText(t, s, "db1"), "\ndeleting\t") {
					t.Fatal("Prune finished a deletion younger than DeletingGrace")
				}
				clk.Advance(catalog.DeletingGrace + time.Second)
				if _, err := c.Prune(ctx, "db1", catalog.RetentionPolicy{KeepFulls: 9}, clk.Now()); err != nil {
					t.Fatal(err)
				}
				for _, k := range []string{victim.Key(), victim.Images[0].Key} {
					if _, _, err := s.Get(ctx, k); !errors.Is(err, objstore.ErrNotFound) {
						t.Errorf("%s after Prune finished the deletion: %v", k, err)
					}
				}
				if text := headText(t, s, "db1"); strings.Contains(text, "\ndeleting\t") {
					t.Errorf("the mark is still there:\n%s", text)
				}
				checkIndex(t, c, "db1")
			})
		}
	})

	t.Run("UnreadableEntryPausesRetention", func(t *testing.T) {
		s := newStore(t)
		c := catalog.New(s)
		hist := week(15)
		putAll(t, c, hist)
		bad := catalog.Key("db1", "20240320010000", events.Full)
		if _, err := s.Put(ctx, bad, []byte(`{"schema_version":99}`), objstore.Cond{}); err != nil {
			t.Fatal(err)
		}
		// The index learns of objects written behind its back when it is rebuilt.
		if err := c.Reindex(ctx, "db1"); err != nil {
			t.Fatal(err)
		}
		l, err := c.Summaries(ctx, "db1")
		if err != nil || len(l.Skipped) != 1 || l.Skipped[0].Key != bad || !strings.Contains(l.Skipped[0].Reason, "newer than this reader") {
			t.Fatalf("Summaries skipped %+v, %v; want %s, newer than this reader", l.Skipped, err, bad)
		}
		p, err := c.Prune(ctx, "db1", catalog.RetentionPolicy{}, hist[len(hist)-1].EndedAt)
		if err != nil || len(p.Dropped) != 0 || len(p.Skipped) != 1 {
			t.Fatalf("Prune with an unreadable entry = %+v, %v; want nothing dropped", p, err)
		}
		// Once the object is gone, retention resumes.
		if err := s.Delete(ctx, bad); err != nil {
			t.Fatal(err)
		}
		p, err = c.Prune(ctx, "db1", catalog.RetentionPolicy{}, hist[len(hist)-1].EndedAt)
		if err != nil || len(p.Dropped) == 0 || len(p.Skipped) != 0 {
			t.Fatalf("Prune once the object is gone = %d dropped, %+v, %v", len(p.Dropped), p.Skipped, err)
		}
		checkIndex(t, c, "db1")
	})

	t.Run("PruneIsIncremental", func(t *testing.T) {
		s := newStore(t)
		c := catalog.New(s)
		hist := week(22) // three Sundays
		// Fulls at hist[0], [14], [28] and [42] (Sundays).
		putAll(t, c, hist[:26])
		policy := catalog.RetentionPolicy{KeepFulls: 2}
		now := hist[25].EndedAt.Add(13 * time.Hour) // run records are pruned too, once a day: the next Prune is within the day
		p, err := c.Prune(ctx, "db1", policy, now)
		if err != nil || p.Quick || p.Kept != 26 || len(p.Dropped) != 0 {
			t.Fatalf("first Prune = %d kept, %v dropped, quick %v, %v; want a full pass keeping 26", p.Kept, Names(p.Dropped), p.Quick, err)
		}
		// An incremental and a delta since: nothing to drop, seen from the head alone.
		putAll(t, c, hist[26:28])
		p, err = c.Prune(ctx, "db1", policy, hist[27].EndedAt)
		if err != nil || !p.Quick || p.Kept != 28 {
			t.Fatalf("Prune after two more images = %+v, %v; want a quick pass keeping 28", p, err)
		}
		// A third full moves the oldest kept full: a full pass drops the first week.
		all := append(mustList(t, c, "db1"), hist[28:31]...)
		putAll(t, c, hist[28:31])
		now = hist[30].EndedAt
		_, drop := catalog.Retain(all, policy, now, nil)
		p, err = c.Prune(ctx, "db1", policy, now)
		if err != nil || p.Quick || len(drop) != 14 || fmt.Sprint(Names(p.Dropped)) != fmt.Sprint(Names(drop)) {
			t.Fatalf("Prune after a full = %v, %v (quick %v); want %v dropped", Names(p.Dropped), err, p.Quick, Names(drop))
		}
		checkIndex(t, c, "db1")
		p, err = c.Prune(ctx, "db1", policy, now)
		if err != nil || !p.Quick || len(p.Dropped) != 0 || p.Kept != 17 {
			t.Fatalf("Prune again = %+v, %v; want quick, 17 kept", p, err)
		}
		// A discarded image is dropped at once: not quick.
		gone := Discard(Sample("db1", catalog.Timestamp(now.Add(time.Hour)), events.Delta, hist[30].ImageTimestamp), "upload failed")
		putAll(t, c, []catalog.Entry{gone})
		p, err = c.Prune(ctx, "db1", policy, now.Add(2*time.Hour))
		if err != nil || p.Quick || fmt.Sprint(Names(p.Dropped)) != fmt.Sprint([]string{gone.Name()}) {
			t.Fatalf("Prune after a discarded image = %v, %v (quick %v)", Names(p.Dropped), err, p.Quick)
		}
	})
}

func mustList(t *testing.T, c *catalog.Catalog, db string) []catalog.Entry {
	t.Helper()
	l, err := c.List(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
