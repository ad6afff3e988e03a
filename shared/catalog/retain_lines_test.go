package catalog_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/catalog/catalogtest"
)

// tablespaceFull is a full table space backup of tss taken at t.
func tablespaceEntry(t time.Time, typ events.BackupType, parent string, tss ...string) catalog.Entry {
	e := catalogtest.SampleAt("sales", t, typ, parent)
	e.Scope, e.Tablespaces = catalog.ScopeTablespace, tss
	return e
}

// TestRetainTablespaceOnlyHistory: a history of table space backups alone (60 daily fulls) is
// retained like a database's: its own newest KeepFulls chains, not all 60 (the defect: no
// database full meant "keep everything").
func TestRetainTablespaceOnlyHistory(t *testing.T) {
	start := time.Date(2024, 1, 1, 2, 0, 0, 0, time.UTC)
	var entries []catalog.Entry
	for d := range 60 {
		entries = append(entries, tablespaceEntry(start.AddDate(0, 0, d), events.Full, "", "TS_ORDERS"))
	}
	now := start.AddDate(0, 0, 60)
	keep, drop := catalog.Retain(entries, catalog.RetentionPolicy{KeepFulls: 2}, now, nil)
	if len(keep) != 2 || len(drop) != 58 || keep[1].ImageTimestamp != entries[59].ImageTimestamp {
		t.Fatalf("kept %v", catalogtest.Names(keep))
	}
	checkRetain(t, "table spaces only", entries, catalog.RetentionPolicy{KeepFulls: 2}, now, nil, keep, drop)
}

// TestRetainMixedLines: database and table space chains are retained each on their own: a
// table space full taken after the database fulls does not count as one of them (it would have
// let the older database chain go), table space images never keep old database images alive,
// and each line keeps its own newest KeepFulls chains.
func TestRetainMixedLines(t *testing.T) {
	day := func(d, h int) time.Time { return time.Date(2024, 3, d, h, 0, 0, 0, time.UTC) }
	var entries []catalog.Entry
	add := func(e catalog.Entry) catalog.Entry { entries = append(entries, e); return e }
	var dbFulls, tsFulls []string
	for d := 1; d <= 20; d += 2 {
		f := add(catalogtest.SampleAt("sales", day(d, 1), events.Full, ""))
		add(catalogtest.SampleAt("sales", day(d+1, 1), events.Incremental, f.ImageTimestamp))
		dbFulls = append(dbFulls, f.ImageTimestamp)
		tf := add(tablespaceEntry(day(d, 13), events.Full, "", "TS_ORDERS", "TS_LINES"))
		add(tablespaceEntry(day(d+1, 13), events.Delta, tf.ImageTimestamp, "TS_ORDERS", "TS_LINES"))
		tsFulls = append(tsFulls, tf.ImageTimestamp)
	}
	now := day(22, 0)
	policy := catalog.RetentionPolicy{KeepFulls: 3}
	keep, drop := catalog.Retain(entries, policy, now, nil)
	checkRetain(t, "mixed", entries, policy, now, nil, keep, drop)
	kept := map[string]bool{}
	for _, e := range keep {
		kept[e.ImageTimestamp] = true
	}
	for i, ts := range dbFulls {
		if want := i >= len(dbFulls)-3; kept[ts] != want {
			t.Errorf("database full %s kept %v, want %v", ts, kept[ts], want)
		}
	}
	for i, ts := range tsFulls {
		if want := i >= len(tsFulls)-3; kept[ts] != want {
			t.Errorf("table space full %s kept %v, want %v", ts, kept[ts], want)
		}
	}
	if len(keep) != 12 {
		t.Errorf("kept %d: %v", len(keep), catalogtest.Names(keep))
	}
	// Again on what was kept: nothing more goes.
	again, dropped := catalog.Retain(keep, policy, now, nil)
	if len(dropped) != 0 || len(again) != len(keep) {
		t.Errorf("a second pass drops %v", catalogtest.Names(dropped))
	}
}

// TestRetainKeepsPartitionsTogether: the images of every partition of a backup are one entry,
// kept or dropped as one.
func TestRetainKeepsPartitionsTogether(t *testing.T) {
	var entries []catalog.Entry
	for d := range 4 {
		e := catalogtest.Partitioned(catalogtest.SampleAt("sales", time.Date(2024, 3, 1+d, 1, 0, 0, 0, time.UTC), events.Full, ""), 0, 1)
		entries = append(entries, e)
	}
	keep, drop := catalog.Retain(entries, catalog.RetentionPolicy{}, time.Date(2024, 3, 9, 0, 0, 0, 0, time.UTC), nil)
	if len(keep) != 2 || len(drop) != 2 {
		t.Fatalf("keep %v drop %v", catalogtest.Names(keep), catalogtest.Names(drop))
	}
	for _, e := range slices.Concat(keep, drop) {
		if len(e.Partitions) != 2 || len(e.Images) != 2 {
			t.Fatalf("%s lost partitions: %+v", e.Name(), e.Partitions)
		}
	}
	_ = fmt.Sprint()
}

// TestRetainKeepsAParentThatSortsAfterItsChild: runs that overlapped can leave an incremental
// whose run started before the run of the full Db2 built it on (so it sorts first): the chain is
// broken, but while the incremental is kept (here by keep_days) its parent is kept too (found
// by the simulator: retention deleted a full an incremental builds on).
func TestRetainKeepsAParentThatSortsAfterItsChild(t *testing.T) {
	day := func(d, h int) time.Time { return time.Date(2024, 3, d, h, 0, 0, 0, time.UTC) }
	var entries []catalog.Entry
	for d := 1; d <= 3; d++ {
		entries = append(entries, catalogtest.SampleAt("sales", day(d, 1), events.Full, ""))
	}
	full := catalogtest.SampleAt("sales", day(4, 2), events.Full, "")
	inc := catalogtest.SampleAt("sales", day(4, 3), events.Incremental, full.ImageTimestamp)
	// The incremental's run started before the full's and ended days later.
	inc.StartedAt, inc.EndedAt = day(4, 1).Add(30*time.Minute), day(9, 0)
	full.EndedAt = day(4, 2).Add(10 * time.Minute)
	entries = append(entries, full, inc)
	for d := 5; d <= 8; d++ {
		entries = append(entries, catalogtest.SampleAt("sales", day(d, 1), events.Full, ""))
	}
	keep, _ := catalog.Retain(entries, catalog.RetentionPolicy{KeepFulls: 2, KeepDays: 1}, day(9, 12), nil)
	kept := map[string]bool{}
	for _, e := range keep {
		kept[e.ImageTimestamp] = true
	}
	if !kept[inc.ImageTimestamp] || !kept[full.ImageTimestamp] {
		t.Fatalf("kept %v: the incremental %v, its full %v", catalogtest.Names(keep), kept[inc.ImageTimestamp], kept[full.ImageTimestamp])
	}
}

// TestRetainDropsChildrenFirst: when an incremental sorts before the full it builds on (its
// run started first), and both go, the incremental is deleted first (found by the simulator:
// retention deleted a full while the incremental that builds on it was still there).
func TestRetainDropsChildrenFirst(t *testing.T) {
	day := func(d, h int) time.Time { return time.Date(2024, 3, d, h, 0, 0, 0, time.UTC) }
	full := catalogtest.SampleAt("sales", day(1, 2), events.Full, "")
	inc := catalogtest.SampleAt("sales", day(1, 3), events.Incremental, full.ImageTimestamp)
	inc.StartedAt, inc.EndedAt = day(1, 1), day(1, 4)
	entries := []catalog.Entry{full, inc}
	for d := 2; d <= 4; d++ {
		entries = append(entries, catalogtest.SampleAt("sales", day(d, 1), events.Full, ""))
	}
	_, drop := catalog.Retain(entries, catalog.RetentionPolicy{KeepFulls: 2}, day(5, 0), nil)
	names := catalogtest.Names(drop)
	if len(drop) != 3 || slices.Index(names, inc.Name()) > slices.Index(names, full.Name()) {
		t.Fatalf("drop order %v: %s must go before %s", names, inc.Name(), full.Name())
	}
}
