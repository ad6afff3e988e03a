package restore

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
	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/objstore"
)

func TestLeaseHeldRenewedReleased(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC))
	store := objstore.NewMemory()
	r := &Restorer{Leases: store, LeaseTerm: 30 * time.Minute, Clock: clk}
	f := catalogtest.Sample("sales", "20261101020000", events.Full, "")
	i := catalogtest.Sample("sales", "20261102020000", events.Incremental, f.ImageTimestamp)
	plan, err := catalog.PlanRestore([]catalog.Entry{f, i}, time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	release, err := r.hold(ctx, "abc", plan)
	if err != nil {
		t.Fatal(err)
	}
	inUse := func() []string {
		m, err := catalog.InUse(ctx, store, "sales", clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for ts := range m {
			out = append(out, ts)
		}
		slices.Sort(out)
		return out
	}
	want := []string{f.ImageTimestamp, i.ImageTimestamp}
	if got := inUse(); !slices.Equal(got, want) {
		t.Fatalf("in use %v, want %v", got, want)
	}
	// A restore longer than the term keeps its lease: it is renewed every third of the term.
	for range 6 {
		clk.Advance(10 * time.Minute)
		if got := inUse(); !slices.Equal(got, want) {
			t.Fatalf("at %s in use %v, want %v", clk.Now(), got, want)
		}
	}
	// Deleted behind its back (an operator), the lease is taken again at the next renewal.
	if err := catalog.DeleteLease(ctx, store, "sales", "abc"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(10 * time.Minute)
	if got := inUse(); !slices.Equal(got, want) {
		t.Fatalf("after a deletion, in use %v", got)
	}
	release()
	if got := inUse(); len(got) != 0 {
		t.Fatalf("after release, in use %v", got)
	}
	clk.Advance(time.Hour)
	if infos, _ := store.List(ctx, "leases/"); len(infos) != 0 {
		t.Fatalf("a released lease came back: %v", infos)
	}
	release() // twice is harmless
}

func TestLeaseExpiresWhenTheRestoreDies(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC))
	store := objstore.NewMemory()
	plan, _ := catalog.PlanRestore([]catalog.Entry{catalogtest.Sample("sales", "20261101020000", events.Full, "")}, time.Time{}, nil)
	// A dead restore: its lease is written, never renewed (another clock), never released.
	dead := &Restorer{Leases: store, Clock: clock.NewFake(clk.Now())}
	if _, err := dead.hold(ctx, "dead", plan); err != nil {
		t.Fatal(err)
	}
	clk.Advance(DefaultLeaseTerm)
	if m, err := catalog.InUse(ctx, store, "sales", clk.Now()); err != nil || len(m) != 0 {
		t.Fatalf("expired lease still holds %v %v", m, err)
	}
}

func TestLeaseRefusedFailsTheRestore(t *testing.T) {
	store := &failingPut{Memory: objstore.NewMemory(), err: objstore.MarkTransient(errors.New("cos down"))}
	r := &Restorer{Leases: store}
	plan, _ := catalog.PlanRestore([]catalog.Entry{catalogtest.Sample("sales", "20261101020000", events.Full, "")}, time.Time{}, nil)
	if _, err := r.hold(context.Background(), "x", plan); err == nil || classOf(err) != events.Transient {
		t.Fatalf("hold with COS down: %v (%s)", err, classOf(err))
	}
	release, err := (&Restorer{}).hold(context.Background(), "x", plan)
	if err != nil {
		t.Fatal(err)
	}
	release() // no Leases: nothing held
}

type failingPut struct {
	*objstore.Memory
	err error
}

func (f *failingPut) Put(context.Context, string, []byte, objstore.Cond) (string, error) {
	return "", f.err
}

// A restore relies on its images only once its lease shows in listings and they are still
// cataloged: retention may have dropped one between the plan and the lease (found by test/sim
// TestRetentionRacesARestoresLease).
func TestSettleChecksTheImagesAfterTheLease(t *testing.T) {
	ctx := context.Background()
	store := objstore.NewMemory()
	cat := catalog.New(store)
	full, inc := catalogtest.Sample("db1", "20261124020000", events.Full, ""), catalogtest.Sample("db1", "20261125020000", events.Incremental, "20261124020000")
	for _, e := range []catalog.Entry{full, inc} {
		if err := cat.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	plan, err := catalog.PlanRestore([]catalog.Entry{full, inc}, time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &Restorer{Leases: store, Catalog: cat, LeaseSettle: -1}
	release, err := r.hold(ctx, "r1", plan)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if err := r.settle(ctx, "db1", plan); err != nil {
		t.Fatalf("settle with every image cataloged: %v", err)
	}
	if err := cat.Delete(ctx, "db1", full.ImageTimestamp); err != nil {
		t.Fatal(err)
	}
	if err := r.settle(ctx, "db1", plan); err == nil || !strings.Contains(err.Error(), full.Name()) {
		t.Fatalf("settle after %s was deleted: %v, want an error naming it", full.Name(), err)
	}
}
