package catalog_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/catalog/catalogtest"
	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/objstore"
)

func head(t *testing.T, s objstore.Store) string {
	t.Helper()
	b, _, err := s.Get(context.Background(), catalog.IndexHeadKey("db1"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestIntentWithoutEntryExpires: a Put that stopped after recording its intent and before
// writing the entry leaves an intent; readers wait PendingGrace for the entry (the Put may be
// slow), then drop it.
func TestIntentWithoutEntryExpires(t *testing.T) {
	ctx := context.Background()
	s := &catalogtest.Failing{Store: objstore.NewMemory()}
	clk := clock.NewFake(time.Date(2024, 3, 10, 0, 0, 0, 0, time.UTC))
	c := catalog.NewWithOptions(s, catalog.Options{Clock: clk})
	full := catalogtest.Sample("db1", "20240303010000", events.Full, "")
	if err := c.Put(ctx, full); err != nil {
		t.Fatal(err)
	}
	e := catalogtest.Sample("db1", "20240304010000", events.Delta, full.ImageTimestamp)
	s.SetFail(func(op, key string) error {
		if op == "put" && key == e.Key() {
			return catalogtest.ErrCrash
		}
		return nil
	})
	if err := c.Put(ctx, e); !errors.Is(err, catalogtest.ErrCrash) {
		t.Fatalf("Put = %v, want the crash", err)
	}
	s.SetFail(nil)
	for _, wait := range []time.Duration{0, catalog.PendingGrace - time.Minute} {
		clk.Set(time.Date(2024, 3, 10, 0, 0, 0, 0, time.UTC).Add(wait))
		l, err := c.Summaries(ctx, "db1")
		if err != nil || len(l.Entries) != 1 {
			t.Fatalf("Summaries = %v, %v; want the full alone", catalogtest.Names(l.Entries), err)
		}
		if !strings.Contains(head(t, s), "\npending\t"+e.Name()) {
			t.Fatalf("after %s the intent is gone already:\n%s", wait, head(t, s))
		}
	}
	clk.Advance(2 * time.Minute)
	if _, err := c.Summaries(ctx, "db1"); err != nil {
		t.Fatal(err)
	}
	if text := head(t, s); strings.Contains(text, "\npending\t") {
		t.Fatalf("the intent outlived PendingGrace:\n%s", text)
	}
}

// pausing runs hook after the listing of catalog/db1/ that a rebuild makes, once.
type pausing struct {
	objstore.Store
	once sync.Once
	hook func()
}

func (p *pausing) List(ctx context.Context, prefix string) ([]objstore.Info, error) {
	out, err := p.Store.List(ctx, prefix)
	if prefix == catalog.Prefix("db1") {
		p.once.Do(p.hook)
	}
	return out, err
}

// TestPutAndDeleteDuringARebuild: a rebuild lists the entries, and a Put and a Delete happen
// between its listing and its write. The Put's entry is not in the listing and the deleted entry
// is: the index written afterwards still has the first and not the second, because a rebuild
// marks the head first and both record themselves on it.
func TestPutAndDeleteDuringARebuild(t *testing.T) {
	ctx := context.Background()
	mem := objstore.NewMemory()
	seed := catalog.New(mem)
	full := catalogtest.Sample("db1", "20240303010000", events.Full, "")
	incr := catalogtest.Sample("db1", "20240304010000", events.Incremental, full.ImageTimestamp)
	for _, e := range []catalog.Entry{full, incr} {
		if err := seed.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := mem.Delete(ctx, catalog.IndexHeadKey("db1")); err != nil {
		t.Fatal(err)
	}
	added := catalogtest.Sample("db1", "20240305010000", events.Delta, incr.ImageTimestamp)
	other := catalog.New(mem) // another process
	p := &pausing{Store: mem, hook: func() {
		if err := other.Put(ctx, added); err != nil {
			t.Errorf("Put during the rebuild: %v", err)
		}
		if err := other.Delete(ctx, "db1", incr.ImageTimestamp); err != nil {
			t.Errorf("Delete during the rebuild: %v", err)
		}
	}}
	l, err := catalog.New(p).Summaries(ctx, "db1")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprint([]string{full.Name(), added.Name()})
	if got := fmt.Sprint(catalogtest.Names(l.Entries)); got != want {
		t.Fatalf("Summaries after the rebuild = %s, want %s", got, want)
	}
	// And for a reader that comes later, with nothing left to resolve.
	l, err = catalog.New(mem).Summaries(ctx, "db1")
	if got := fmt.Sprint(catalogtest.Names(l.Entries)); err != nil || got != want {
		t.Fatalf("Summaries later = %s, %v; want %s", got, err, want)
	}
	if text := head(t, mem); strings.Contains(text, "\npending\t") || strings.Contains(text, "\nbuilding\t") {
		t.Fatalf("the head after the rebuild:\n%s", text)
	}
}

// lostAnswers performs every conditional write of the index head and then answers
// ErrPrecondition, as an SDK retry of a write whose first answer was lost does.
type lostAnswers struct{ objstore.Store }

func (s lostAnswers) Put(ctx context.Context, key string, body []byte, c objstore.Cond) (string, error) {
	etag, err := s.Store.Put(ctx, key, body, c)
	if err == nil && strings.HasPrefix(key, "index/") && !strings.Contains(key, "/base-") && c != (objstore.Cond{}) {
		return "", fmt.Errorf("retried: %w", objstore.ErrPrecondition)
	}
	return etag, err
}

// TestIndexWritesWhoseAnswerWasLost: every change of the head is idempotent, so a write that
// succeeded and answered 412 (an SDK retry) is recognised on the next read.
func TestIndexWritesWhoseAnswerWasLost(t *testing.T) {
	ctx := context.Background()
	mem := objstore.NewMemory()
	c := catalog.NewWithOptions(lostAnswers{mem}, catalog.Options{CompactAfter: 3})
	var hist []catalog.Entry
	parent := ""
	for i := range 8 {
		ts := fmt.Sprintf("202403%02d010000", i+3)
		typ := events.Delta
		if i%4 == 0 {
			typ, parent = events.Full, ""
		}
		e := catalogtest.Sample("db1", ts, typ, parent)
		if err := c.Put(ctx, e); err != nil {
			t.Fatalf("Put %s: %v", e.Name(), err)
		}
		hist = append(hist, e)
		parent = ts
	}
	if n, err := c.DeleteMany(ctx, "db1", []string{hist[1].ImageTimestamp, hist[2].ImageTimestamp}); err != nil || n != 2 {
		t.Fatalf("DeleteMany = %d, %v", n, err)
	}
	l, err := c.Summaries(ctx, "db1")
	if err != nil || len(l.Entries) != 6 {
		t.Fatalf("Summaries = %v, %v; want 6 entries", catalogtest.Names(l.Entries), err)
	}
	if _, err := c.Prune(ctx, "db1", catalog.RetentionPolicy{KeepFulls: 2}, hist[7].EndedAt); err != nil {
		t.Fatal(err)
	}
	if text := head(t, mem); strings.Contains(text, "\npending\t") || strings.Contains(text, "\ndeleting\t") {
		t.Fatalf("marks left behind:\n%s", text)
	}
}

// noDeletes refuses deletions, as the runner's and the scheduler's access does.
type noDeletes struct{ objstore.Store }

func (noDeletes) Delete(context.Context, string) error { return errors.New("403 AccessDenied") }
func (noDeletes) DeleteMany(context.Context, []string) error {
	return errors.New("403 AccessDenied")
}

// TestPruneDropsBasesOthersCouldNotDelete: writers without the right to delete (the runner)
// leave the bases their compactions replaced; retention, which may delete, removes those
// older than an hour and keeps the current one.
func TestPruneDropsBasesOthersCouldNotDelete(t *testing.T) {
	ctx := context.Background()
	mem := objstore.NewMemory()
	runner := catalog.NewWithOptions(noDeletes{mem}, catalog.Options{CompactAfter: 2})
	var last catalog.Entry
	for i := range 9 {
		last = catalogtest.Sample("db1", fmt.Sprintf("202403%02d010000", i+3), events.Full, "")
		if err := runner.Put(ctx, last); err != nil {
			t.Fatal(err)
		}
	}
	bases, _ := mem.List(ctx, "index/db1/base-")
	if len(bases) < 3 {
		t.Fatalf("%d bases; want the old ones left behind", len(bases))
	}
	clk := clock.NewFake(time.Now().Add(2 * time.Hour))
	c := catalog.NewWithOptions(mem, catalog.Options{Clock: clk})
	if _, err := c.Prune(ctx, "db1", catalog.RetentionPolicy{KeepFulls: 20}, last.EndedAt); err != nil {
		t.Fatal(err)
	}
	if bases, _ := mem.List(ctx, "index/db1/base-"); len(bases) != 1 || !strings.Contains(head(t, mem), bases[0].Key) {
		t.Fatalf("after Prune the bases are %v; want the current one alone", bases)
	}
	if l, err := c.Summaries(ctx, "db1"); err != nil || len(l.Entries) != 9 {
		t.Fatalf("Summaries = %d entries, %v", len(l.Entries), err)
	}
}

// TestPutWithAnUnreadableBase: a Put whose intent would compact the head over an unreadable
// base still records the entry; the next reader rebuilds the index.
func TestPutWithAnUnreadableBase(t *testing.T) {
	ctx := context.Background()
	mem := objstore.NewMemory()
	c := catalog.NewWithOptions(mem, catalog.Options{CompactAfter: 2})
	put := func(day int) {
		t.Helper()
		if err := c.Put(ctx, catalogtest.Sample("db1", fmt.Sprintf("202403%02d010000", day), events.Full, "")); err != nil {
			t.Fatalf("Put: %v", err)
		}
	}
	for day := 3; day < 7; day++ {
		put(day)
	}
	bases, err := mem.List(ctx, "index/db1/base-")
	if err != nil || len(bases) != 1 {
		t.Fatalf("bases %v, %v", bases, err)
	}
	if _, err := mem.Put(ctx, bases[0].Key, []byte("garbage"), objstore.Cond{}); err != nil {
		t.Fatal(err)
	}
	for day := 7; day < 11; day++ {
		put(day)
	}
	l, err := c.Summaries(ctx, "db1")
	if err != nil || len(l.Entries) != 8 {
		t.Fatalf("Summaries = %v, %v; want 8 entries", catalogtest.Names(l.Entries), err)
	}
}

// partial deletes batches key by key the way S3 DeleteObjects does: a key it fails on is
// reported, and the others of the request are deleted all the same.
type partial struct {
	objstore.Store
	mu    sync.Mutex
	fail  string
	calls [][]string
}

func (p *partial) DeleteMany(ctx context.Context, keys []string) error {
	p.mu.Lock()
	p.calls = append(p.calls, append([]string(nil), keys...))
	fail := p.fail
	p.mu.Unlock()
	var failed []error
	for _, k := range keys {
		if k == fail {
			failed = append(failed, fmt.Errorf("delete %s: %w", k, catalogtest.ErrCrash))
			continue
		}
		if err := p.Store.Delete(ctx, k); err != nil {
			failed = append(failed, err)
		}
	}
	return errors.Join(failed...)
}

// TestABatchDeleteThatFailsOnAChildKeepsItsParent: an entry is deleted only once every entry of
// the deletion that builds on it is gone, so a batch request that fails on an incremental's entry
// (and deletes the rest of the request, as DeleteObjects does) never leaves that incremental
// without its full; the next Prune finishes both. Chains of depth three take three requests.
func TestABatchDeleteThatFailsOnAChildKeepsItsParent(t *testing.T) {
	ctx := context.Background()
	s := &partial{Store: objstore.NewMemory()}
	clk := clock.NewFake(time.Date(2024, 3, 10, 0, 0, 0, 0, time.UTC))
	c := catalog.NewWithOptions(s, catalog.Options{Clock: clk})
	full := catalogtest.Sample("db1", "20240303010000", events.Full, "")
	incr := catalogtest.Sample("db1", "20240304010000", events.Incremental, full.ImageTimestamp)
	delta := catalogtest.Sample("db1", "20240305010000", events.Delta, incr.ImageTimestamp)
	other := catalogtest.Sample("db1", "20240306010000", events.Full, "")
	for _, e := range []catalog.Entry{full, incr, delta, other} {
		if err := c.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	s.fail = incr.Key()
	tss := []string{full.ImageTimestamp, incr.ImageTimestamp, delta.ImageTimestamp}
	if _, err := c.DeleteMany(ctx, "db1", tss); !errors.Is(err, catalogtest.ErrCrash) {
		t.Fatalf("DeleteMany = %v, want the failure", err)
	}
	for _, e := range []catalog.Entry{full, incr} {
		if _, _, err := s.Get(ctx, e.Key()); err != nil {
			t.Errorf("%s after a failed delete of %s: %v (want kept)", e.Name(), incr.Name(), err)
		}
	}
	if _, _, err := s.Get(ctx, delta.Key()); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("%s, which nothing builds on: %v, want deleted", delta.Name(), err)
	}
	s.mu.Lock()
	s.fail, s.calls = "", nil
	s.mu.Unlock()
	clk.Advance(catalog.DeletingGrace + time.Minute)
	if _, err := c.DeleteMany(ctx, "db1", tss); err != nil {
		t.Fatal(err)
	}
	for _, e := range []catalog.Entry{full, incr, delta} {
		if _, _, err := s.Get(ctx, e.Key()); !errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("%s after the second DeleteMany: %v, want deleted", e.Name(), err)
		}
	}
	if _, _, err := s.Get(ctx, other.Key()); err != nil {
		t.Errorf("%s: %v, want kept", other.Name(), err)
	}
	// A fresh chain of three: its entries take three requests, newest first.
	s.mu.Lock()
	s.calls = nil
	s.mu.Unlock()
	for _, e := range []catalog.Entry{full, incr, delta} {
		if err := c.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.DeleteMany(ctx, "db1", tss); err != nil {
		t.Fatal(err)
	}
	var entryCalls [][]string
	for _, call := range s.calls {
		if strings.HasPrefix(call[0], catalog.Prefix("db1")) {
			entryCalls = append(entryCalls, call)
		}
	}
	want := [][]string{{delta.Key()}, {incr.Key()}, {full.Key()}}
	if fmt.Sprint(entryCalls) != fmt.Sprint(want) {
		t.Errorf("entry deletions = %v, want %v", entryCalls, want)
	}
}

// TestHalfDeletedEntriesLeaveListingsAndWaitForLeases: an entry whose deletion stopped half way
// (marked on the index, still stored) is out of List and ListReport, as it is out of Summaries,
// so a restore never plans on it; and a deletion finished by a later Prune leaves alone an image
// a running restore leases (found by test/sim, hostile seed 13: a restore planned from the
// entries on a full whose deletion had crashed, and the next retention pass finished it).
func TestHalfDeletedEntriesLeaveListingsAndWaitForLeases(t *testing.T) {
	ctx := context.Background()
	s := &catalogtest.Failing{Store: objstore.NewMemory()}
	at := time.Date(2024, 3, 10, 0, 0, 0, 0, time.UTC)
	clk := clock.NewFake(at)
	c := catalog.NewWithOptions(s, catalog.Options{Clock: clk})
	old := catalogtest.Sample("db1", "20240303010000", events.Full, "")
	mid := catalogtest.Sample("db1", "20240304010000", events.Full, "")
	newest := catalogtest.Sample("db1", "20240305010000", events.Full, "")
	for _, e := range []catalog.Entry{old, mid, newest} {
		if err := c.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	s.SetFail(func(op, key string) error {
		if (op == "delete" || op == "delete-many") && strings.HasPrefix(key, catalog.Prefix("db1")) {
			return catalogtest.ErrCrash
		}
		return nil
	})
	if _, err := c.DeleteMany(ctx, "db1", []string{old.ImageTimestamp}); !errors.Is(err, catalogtest.ErrCrash) {
		t.Fatalf("DeleteMany = %v, want the crash", err)
	}
	s.SetFail(nil)
	if _, _, err := s.Get(ctx, old.Key()); err != nil {
		t.Fatalf("the entry whose deletion crashed: %v, want still stored", err)
	}
	l, err := c.ListReport(ctx, "db1")
	if err != nil {
		t.Fatal(err)
	}
	if got := catalogtest.Names(l.Entries); len(got) != 2 {
		t.Errorf("ListReport = %v, want the two entries not being deleted", got)
	}
	// A restore leases the half-deleted full all the same (it listed before the deletion).
	if _, err := catalog.PutLease(ctx, s, catalog.Lease{Database: "db1", RestoreID: "r1", Images: []string{old.ImageTimestamp},
		Created: at, Renewed: at, Until: at.Add(23 * time.Hour)}, ""); err != nil {
		t.Fatal(err)
	}
	clk.Advance(catalog.DeletingGrace + time.Minute)
	if _, err := c.Prune(ctx, "db1", catalog.RetentionPolicy{KeepFulls: 2}, clk.Now()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, old.Key()); err != nil {
		t.Errorf("leased entry after Prune: %v, want kept while the lease holds", err)
	}
	// Once the lease is gone the next Prune finishes the deletion.
	if err := catalog.DeleteLease(ctx, s, "db1", "r1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Prune(ctx, "db1", catalog.RetentionPolicy{KeepFulls: 2}, clk.Now()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, old.Key()); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("entry after the lease ended and Prune: %v, want deleted", err)
	}
}
