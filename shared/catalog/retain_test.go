package catalog_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/catalog/catalogtest"
)

type retainCase struct {
	Case    string                  `json:"case"`
	Policy  catalog.RetentionPolicy `json:"policy"`
	Now     time.Time               `json:"now"`
	InUse   []string                `json:"in_use,omitempty"`
	Missing []string                `json:"missing_images,omitempty"`
	Keep    []string                `json:"keep"`
	Drop    []string                `json:"drop"`
}

// TestRetainWeekGolden applies retention policies to the three-week history.
func TestRetainWeekGolden(t *testing.T) {
	now := time.Date(2024, 3, 23, 18, 0, 0, 0, time.UTC)
	cases := []retainCase{
		{Case: "default: the two newest fulls (the post-rotation full is one) and all since"},
		{Case: "KeepFulls 1 is raised to 2", Policy: catalog.RetentionPolicy{KeepFulls: 1}},
		{Case: "three fulls", Policy: catalog.RetentionPolicy{KeepFulls: 3}},
		{Case: "14 days: the chain covering the window start is kept too", Policy: catalog.RetentionPolicy{KeepFulls: 2, KeepDays: 14}},
		{Case: "a running restore holds an old delta and its chain", InUse: []string{"20240306090000"}},
		{Case: "more fulls asked than exist: keep everything", Policy: catalog.RetentionPolicy{KeepFulls: 5}},
		{Case: "a lost incremental: its deltas are kept while in the kept range", Missing: []string{"20240318010000"}},
	}
	for i, c := range cases {
		cases[i].Now = now
		entries := without(weekHistory(), c.Missing...)
		inUse := map[string]bool{}
		for _, ts := range c.InUse {
			inUse[ts] = true
		}
		keep, drop := catalog.Retain(entries, c.Policy, now, inUse)
		checkRetain(t, c.Case, entries, c.Policy, now, inUse, keep, drop)
		cases[i].Keep, cases[i].Drop = catalogtest.Names(keep), catalogtest.Names(drop)
	}
	body, err := json.MarshalIndent(cases, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "week.retention.golden.json", append(body, '\n'))
}

// checkRetain asserts the promises of Retain.
func checkRetain(t *testing.T, name string, entries []catalog.Entry, policy catalog.RetentionPolicy, now time.Time, inUse map[string]bool, keep, drop []catalog.Entry) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf("%s: %s", name, fmt.Sprintf(format, args...))
	}
	// A partition of entries: keep oldest first, drop newest first.
	all := map[string]bool{}
	for _, e := range entries {
		all[e.Name()] = true
	}
	seen := map[string]bool{}
	for _, e := range append(slices.Clone(keep), drop...) {
		if !all[e.Name()] || seen[e.Name()] {
			fail("%s is not in entries or returned twice", e.Name())
		}
		seen[e.Name()] = true
	}
	if len(seen) != len(all) {
		fail("keep and drop hold %d of %d entries", len(seen), len(all))
	}
	if !slices.IsSortedFunc(keep, catalog.Compare) {
		fail("keep is not oldest first")
	}
	if !slices.IsSortedFunc(drop, func(a, b catalog.Entry) int { return catalog.Compare(b, a) }) {
		fail("drop is not newest first")
	}
	// Every kept image that was restorable stays restorable from kept images alone, with the
	// same chain.
	for _, e := range keep {
		before, err := catalog.Chain(entries, e.ImageTimestamp)
		if err != nil {
			continue
		}
		after, err := catalog.Chain(keep, e.ImageTimestamp)
		if err != nil {
			fail("kept %s lost its chain: %v", e.Name(), err)
		} else if fmt.Sprint(catalogtest.Names(after)) != fmt.Sprint(catalogtest.Names(before)) {
			fail("kept %s: chain %v became %v", e.Name(), catalogtest.Names(before), catalogtest.Names(after))
		}
	}
	// A kept image that was not restorable does not become restorable: what showed its chain
	// broken (a discarded image Db2 built it on) is kept with it.
	for _, e := range keep {
		if _, err := catalog.Chain(entries, e.ImageTimestamp); err == nil {
			continue
		}
		if after, err := catalog.Chain(keep, e.ImageTimestamp); err == nil {
			fail("kept %s was broken but is restorable from the kept images: %v", e.Name(), catalogtest.Names(after))
		}
	}
	// Discarded images are not fulls that count.
	for _, e := range keep {
		if e.IsDiscarded() {
			if _, err := catalog.Chain(keep, e.ImageTimestamp); err == nil {
				fail("discarded %s is restorable", e.Name())
			}
		}
	}
	// Deleting in drop order never leaves a remaining restorable image without its chain.
	chains := map[string][]catalog.Entry{}
	for _, e := range entries {
		if c, err := catalog.Chain(entries, e.ImageTimestamp); err == nil {
			chains[e.ImageTimestamp] = c
		}
	}
	deleted := map[string]bool{}
	for _, d := range drop {
		deleted[d.ImageTimestamp] = true
		for ts, chain := range chains {
			if deleted[ts] {
				continue
			}
			for _, c := range chain {
				if deleted[c.ImageTimestamp] {
					fail("after deleting %s, %s lost %s from its chain", d.Name(), ts, c.Name())
				}
			}
		}
	}
	// The newest KeepFulls fulls.
	var fulls []string
	sorted := slices.SortedFunc(slices.Values(entries), catalog.Compare)
	for _, e := range sorted {
		if e.Type == events.Full && e.Scope == catalog.ScopeDatabase && !e.IsDiscarded() {
			fulls = append(fulls, e.ImageTimestamp)
		}
	}
	k := max(policy.KeepFulls, catalog.MinKeepFulls)
	kept := map[string]bool{}
	for _, e := range keep {
		kept[e.ImageTimestamp] = true
	}
	for i := max(0, len(fulls)-k); i < len(fulls); i++ {
		if !kept[fulls[i]] {
			fail("full %s is one of the %d newest but was dropped", fulls[i], k)
		}
	}
	for ts, use := range inUse {
		if use && all[tsName(entries, ts)] && !kept[ts] {
			fail("in-use %s was dropped", ts)
		}
	}
	// The latest restore, and with KeepDays any point in the window, is planned the same.
	pits := []time.Time{{}}
	if policy.KeepDays > 0 {
		cutoff := now.Add(-time.Duration(policy.KeepDays) * 24 * time.Hour)
		for _, e := range entries {
			if !e.EndedAt.Before(cutoff) && !kept[e.ImageTimestamp] && !e.IsDiscarded() {
				fail("%s ended inside the %d-day window but was dropped", e.Name(), policy.KeepDays)
			}
		}
		for h := time.Duration(0); cutoff.Add(h).Before(now); h += 7 * time.Hour {
			pits = append(pits, cutoff.Add(h))
		}
	}
	for _, pit := range pits {
		want, errAll := catalog.PlanRestore(entries, pit, nil)
		got, errKeep := catalog.PlanRestore(keep, pit, nil)
		if (errAll == nil) != (errKeep == nil) || want.Target != got.Target {
			fail("restore to %v: all entries give %s (%v), kept ones %s (%v)", pit, want.Target, errAll, got.Target, errKeep)
		}
	}
	// Retain is a fixpoint: applied to what it kept, it keeps all of it.
	if _, again := catalog.Retain(keep, policy, now, inUse); len(again) != 0 {
		fail("Retain(keep) drops %v", catalogtest.Names(again))
	}
}

func tsName(entries []catalog.Entry, ts string) string {
	for _, e := range entries {
		if e.ImageTimestamp == ts {
			return e.Name()
		}
	}
	return ""
}

// randomHistory draws a consistent history of database and table space backups, some of them
// discarded (and, now and then, later backups naming a stale parent, as a runner that ignored
// Db2's history would), then loses a few images (as a broken catalog would).
func randomHistory(r *rand.Rand) []catalog.Entry {
	db := &builder{db: "db1", keyVersion: keyV1, scope: catalog.ScopeDatabase}
	at := time.Date(2024, 1, 7, 1, 0, 0, 0, time.UTC)
	for range r.IntN(60) + 1 {
		at = at.Add(time.Duration(r.IntN(12*60)+30) * time.Minute)
		db.scope = catalog.ScopeDatabase
		lastFull := db.dbLine.lastFull
		if r.IntN(6) == 0 {
			db.scope, db.tablespaces = catalog.ScopeTablespace, []string{"TS1"}
			lastFull = db.tsLine.lastFull
		}
		typ := []events.BackupType{events.Full, events.Incremental, events.Incremental, events.Delta, events.Delta, events.Delta}[r.IntN(6)]
		if lastFull == "" {
			typ = events.Full
		}
		db.stale = r.IntN(4) == 0
		dur := time.Duration(r.IntN(90)+1) * time.Minute
		if r.IntN(10) == 0 {
			db.discard(at, typ, dur, "upload failed")
		} else {
			db.backup(at, typ, dur, int64(r.IntN(50)+1))
		}
	}
	entries := db.entries
	for range r.IntN(3) {
		if r.IntN(3) == 0 && len(entries) > 1 {
			entries = without(entries, entries[r.IntN(len(entries))].ImageTimestamp)
		}
	}
	return entries
}

// TestRetainDiscarded: discarded images are never restorable, do not count as fulls, and go
// once no kept image's chain check reads them; one that a kept image was built on stays, so that
// image keeps showing as broken.
func TestRetainDiscarded(t *testing.T) {
	b := &builder{db: "db1", keyVersion: keyV1, scope: catalog.ScopeDatabase}
	day := func(d, h int) time.Time { return time.Date(2024, 3, d, h, 0, 0, 0, time.UTC) }
	b.backup(day(3, 1), events.Full, time.Hour, 10)                     // F1
	b.discard(day(3, 9), events.Delta, time.Minute, "upload failed")    // old, needed by nobody
	b.backup(day(4, 1), events.Incremental, time.Hour, 1)               // on F1
	b.backup(day(10, 1), events.Full, time.Hour, 10)                    // F2
	b.discard(day(11, 1), events.Full, time.Hour, "db2ckbkp failed")    // a discarded full
	b.backup(day(17, 1), events.Full, time.Hour, 10)                    // F3
	b.discard(day(17, 9), events.Delta, time.Minute, "keystore failed") // Db2 builds the next delta on it
	b.stale = true
	b.backup(day(17, 17), events.Delta, time.Minute, 1) // names F3: broken by the discarded delta
	entries := b.entries
	now := day(18, 0)
	keep, drop := catalog.Retain(entries, catalog.RetentionPolicy{}, now, nil)
	checkRetain(t, "discarded", entries, catalog.RetentionPolicy{}, now, nil, keep, drop)
	got := fmt.Sprintf("keep %v drop %v", catalogtest.Names(keep), catalogtest.Names(drop))
	want := "keep [20240310010000-full 20240317010000-full 20240317090000-delta 20240317170000-delta] " +
		"drop [20240311010000-full 20240304010000-incremental 20240303090000-delta 20240303010000-full]"
	if got != want {
		t.Errorf("Retain:\n got %s\nwant %s", got, want)
	}
}

// TestRetainRandomHistories checks Retain's promises on many random histories, policies,
// clocks and running restores.
func TestRetainRandomHistories(t *testing.T) {
	r := rand.New(rand.NewPCG(20240303, 5))
	dropped, broken, windowed, discarded := 0, 0, 0, 0
	for i := range 400 {
		entries := randomHistory(r)
		policy := catalog.RetentionPolicy{KeepFulls: r.IntN(5), KeepDays: r.IntN(12)}
		lastEnd := entries[len(entries)-1].EndedAt
		for _, e := range entries {
			if e.EndedAt.After(lastEnd) {
				lastEnd = e.EndedAt
			}
		}
		now := lastEnd.Add(time.Duration(r.IntN(5*24)) * time.Hour)
		inUse := map[string]bool{"20000101000000": true}
		for range r.IntN(3) {
			inUse[entries[r.IntN(len(entries))].ImageTimestamp] = true
		}
		keep, drop := catalog.Retain(entries, policy, now, inUse)
		checkRetain(t, fmt.Sprintf("history %d (%d entries, %+v)", i, len(entries), policy), entries, policy, now, inUse, keep, drop)
		if t.Failed() {
			t.Fatalf("history %d: %v", i, catalogtest.Names(entries))
		}
		if len(drop) > 0 {
			dropped++
			if policy.KeepDays > 0 {
				windowed++
			}
		}
		for _, e := range entries {
			if _, err := catalog.Chain(entries, e.ImageTimestamp); err != nil {
				broken++
				break
			}
		}
		for _, e := range drop {
			if e.IsDiscarded() {
				discarded++
				break
			}
		}
	}
	// The generator must exercise the interesting cases, or the test proves little.
	if dropped < 100 || broken < 40 || windowed < 50 || discarded < 40 {
		t.Errorf("weak generator: %d histories dropped something (%d with a window, %d a discarded image), %d had broken chains", dropped, windowed, discarded, broken)
	}
	t.Logf("%d histories dropped something (%d with a window, %d a discarded image), %d had broken chains", dropped, windowed, discarded, broken)
}

func TestRetainKeepsAllWhenUnsure(t *testing.T) {
	a := catalogtest.Sample("db1", "20240303010000", events.Full, "")
	b := catalogtest.Sample("db2", "20240304010000", events.Full, "")
	keep, drop := catalog.Retain([]catalog.Entry{a, b}, catalog.RetentionPolicy{}, time.Now(), nil)
	if len(keep) != 2 || len(drop) != 0 {
		t.Errorf("mixed databases: keep %v drop %v, want all kept", catalogtest.Names(keep), catalogtest.Names(drop))
	}
	if keep, drop := catalog.Retain(nil, catalog.RetentionPolicy{}, time.Now(), nil); len(keep)+len(drop) != 0 {
		t.Errorf("Retain(nil) = %v, %v", keep, drop)
	}
}
