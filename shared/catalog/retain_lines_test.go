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
