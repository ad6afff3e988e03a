package catalog

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
)

// TestQuickPruneIsSafe: whenever quiet judges from a head alone that retention drops nothing,
// Retain over everything the head stands for drops nothing indeed. Random histories (every way
// a chain breaks), policies, leases taken and released, images added after the mark (fulls,
// discarded, older than its newest, ended long ago) and times up to forty days later.
//
// Why it holds: the mark is written only when Retain(keep) at At drops nothing, and Due is a
// time at which it still drops nothing. Retain drops more as time passes, never less (the
// window of KeepDays only loses images, and the chain covering its start only gets newer, and
// that newer chain was already kept as part of the window), so nothing is dropped before Due.
// An image added after the mark, newer than everything in it, not discarded and not a
// database full, leaves the newest KeepFulls fulls as they were and is itself kept; it ended
// inside the window, so it cannot become the chain covering its start; it is never between
// an older image and its parent, so it breaks no older chain. Leases still held keep what they
// kept. So every image kept at the mark is still kept, and the added ones too.
func TestQuickPruneIsSafe(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 29))
	passes, quick := 0, 0
	for round := range 3000 {
		entries := randomHistory(rng, 1+rng.IntN(50))
		policy := RetentionPolicy{KeepFulls: rng.IntN(4), KeepDays: []int{0, 0, 1, 2, 5}[rng.IntN(5)]}
		t0 := time.Date(2024, 3, 3, 1, 0, 0, 0, time.UTC).Add(time.Duration(len(entries)+rng.IntN(48)) * time.Hour)
		inUse0 := map[string]bool{}
		for range rng.IntN(3) {
			inUse0[entries[rng.IntN(len(entries))].ImageTimestamp] = true
		}
		keep, _ := Retain(entries, policy, t0, inUse0)
		r, err := newRetention(keep)
		if err != nil {
			t.Fatal(err)
		}
		m := retentionMark(r, policy, t0, inUse0)
		if m == nil {
			continue
		}
		passes++
		rows := slices.Clone(keep)
		slices.SortFunc(rows, func(a, b Entry) int { return compareNames(&a, &b) })
		m.Rows = len(rows)
		h := &head{Database: "db1", Rows: rows, Retained: m}

		// Images added since, and a later time, leases taken or released.
		all := slices.Clone(keep)
		last := t0
		for _, e := range keep {
			last = maxTime(last, e.StartedAt)
		}
		for range rng.IntN(4) {
			at := last.Add(time.Duration(1+rng.IntN(30)) * time.Hour)
			if rng.IntN(6) == 0 { // older than the mark's newest
				at = last.Add(-time.Duration(1+rng.IntN(40)) * time.Hour)
			}
			e := Entry{Database: "db1", ImageTimestamp: Timestamp(at), Type: []events.BackupType{events.Full, events.Incremental, events.Delta, events.Delta}[rng.IntN(4)],
				Mode: events.Online, Scope: ScopeDatabase, StartedAt: at, EndedAt: at.Add(10 * time.Minute), KeyCRN: "crn", RunID: "r", SizeBytes: 1}
			if rng.IntN(4) == 0 {
				e.Scope, e.Tablespaces = ScopeTablespace, []string{"TS1"}
			}
			if e.Type != events.Full && len(all) > 0 {
				e.ParentTimestamp = all[rng.IntN(len(all))].ImageTimestamp
			} else if e.Type != events.Full {
				e.ParentTimestamp = Timestamp(at.Add(-time.Hour))
			}
			if rng.IntN(8) == 0 {
				e.Discarded = &Discard{At: e.EndedAt, Reason: "r"}
			}
			if _, dup := slices.BinarySearchFunc(h.Rows, e.Name(), byName); dup {
				continue
			}
			addRow(h, e)
			all = append(all, e)
		}
		t1 := t0.Add(time.Duration(rng.IntN(40*24)) * time.Hour)
		inUse1 := map[string]bool{}
		for ts := range inUse0 {
			if rng.IntN(5) > 0 {
				inUse1[ts] = true
			}
		}
		if rng.IntN(3) == 0 && len(all) > 0 {
			inUse1[all[rng.IntN(len(all))].ImageTimestamp] = true
		}
		kept, ok := quiet(h, policy, t1, inUse1)
		if !ok {
			continue
		}
		quick++
		k, drop := Retain(all, policy, t1, inUse1)
		if len(drop) > 0 || kept != len(k) {
			t.Fatalf("round %d: quiet said %d kept and nothing dropped, Retain keeps %d and drops %v\npolicy %+v, mark at %s due %s, now %s",
				round, kept, len(k), names(drop), policy, t0, m.Due, t1)
		}
	}
	// The property is not vacuous: many marks, and many quick passes.
	if passes < 1000 || quick < 300 {
		t.Fatalf("%d marks, %d quick passes: too few to say anything", passes, quick)
	}
	t.Logf("%d marks, %d quick passes checked", passes, quick)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// TestQuietRefuses: each change quiet must not judge from the head alone.
func TestQuietRefuses(t *testing.T) {
	at := time.Date(2024, 3, 10, 0, 0, 0, 0, time.UTC)
	mk := func() *head {
		full := Entry{Database: "db1", ImageTimestamp: "20240303010000", Type: events.Full, Mode: events.Online, Scope: ScopeDatabase,
			StartedAt: time.Date(2024, 3, 3, 1, 0, 0, 0, time.UTC), EndedAt: time.Date(2024, 3, 3, 2, 0, 0, 0, time.UTC), KeyCRN: "k", RunID: "r"}
		r, _ := newRetention([]Entry{full})
		m := retentionMark(r, RetentionPolicy{KeepDays: 30}, at, map[string]bool{"20240303010000": true})
		m.Rows = 1
		return &head{Database: "db1", Rows: []Entry{full}, Retained: m}
	}
	delta := func(ts string, started time.Time) Entry {
		return Entry{Database: "db1", ImageTimestamp: ts, Type: events.Delta, Mode: events.Online, Scope: ScopeDatabase, ParentTimestamp: "20240303010000",
			StartedAt: started, EndedAt: started.Add(time.Hour), KeyCRN: "k", RunID: "r"}
	}
	use := map[string]bool{"20240303010000": true}
	policy := RetentionPolicy{KeepDays: 30}
	if _, ok := quiet(mk(), policy, at.Add(time.Hour), use); !ok {
		t.Fatal("an unchanged head is not quiet")
	}
	cases := []struct {
		name   string
		change func(h *head) (RetentionPolicy, time.Time, map[string]bool)
	}{
		{"other policy", func(h *head) (RetentionPolicy, time.Time, map[string]bool) {
			return RetentionPolicy{KeepDays: 29}, at, use
		}},
		{"due passed", func(h *head) (RetentionPolicy, time.Time, map[string]bool) { return policy, h.Retained.Due, use }},
		{"clock went back", func(h *head) (RetentionPolicy, time.Time, map[string]bool) { return policy, at.Add(-time.Hour), use }},
		{"lease released", func(h *head) (RetentionPolicy, time.Time, map[string]bool) { return policy, at, nil }},
		{"a deletion", func(h *head) (RetentionPolicy, time.Time, map[string]bool) { h.Deletions++; return policy, at, use }},
		{"being deleted", func(h *head) (RetentionPolicy, time.Time, map[string]bool) {
			h.Deleting = []mark{{Name: "20240303010000-full", Since: at, Where: 'r'}}
			return policy, at, use
		}},
		{"pending", func(h *head) (RetentionPolicy, time.Time, map[string]bool) {
			h.Pending = []mark{{Name: "20240309010000-full", Since: at}}
			return policy, at, use
		}},
		{"compacted", func(h *head) (RetentionPolicy, time.Time, map[string]bool) {
			h.Base = &baseRef{Key: "index/db1/base-2-0123456789abcdef.gz"}
			return policy, at, use
		}},
		{"added older", func(h *head) (RetentionPolicy, time.Time, map[string]bool) {
			addRow(h, delta("20240302010000", time.Date(2024, 3, 2, 1, 0, 0, 0, time.UTC)))
			return policy, at, use
		}},
		{"added a full", func(h *head) (RetentionPolicy, time.Time, map[string]bool) {
			f := delta("20240309010000", at.Add(-time.Hour))
			f.Type, f.ParentTimestamp = events.Full, ""
			addRow(h, f)
			return policy, at, use
		}},
		{"added discarded", func(h *head) (RetentionPolicy, time.Time, map[string]bool) {
			d := delta("20240309010000", at.Add(-time.Hour))
			d.Discarded = &Discard{At: at, Reason: "r"}
			addRow(h, d)
			return policy, at, use
		}},
		{"added, ended before the window", func(h *head) (RetentionPolicy, time.Time, map[string]bool) {
			addRow(h, delta("20240304010000", time.Date(2024, 3, 4, 1, 0, 0, 0, time.UTC))) // ended 03-04 02:00
			return policy, time.Date(2024, 4, 3, 3, 0, 0, 0, time.UTC), use                 // the window starts 03-04 03:00
		}},
		{"rebuilding", func(h *head) (RetentionPolicy, time.Time, map[string]bool) { h.Building = at; return policy, at, use }},
		{"unreadable object", func(h *head) (RetentionPolicy, time.Time, map[string]bool) {
			h.Skipped = []Skipped{{Key: "catalog/db1/x", Reason: "r"}}
			return policy, at, use
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := mk()
			p, now, inUse := tc.change(h)
			if _, ok := quiet(h, p, now, inUse); ok {
				t.Fatal("quiet judged it from the head alone")
			}
		})
	}
}
