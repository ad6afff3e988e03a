package catalog

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
)

// randomHistory is a history of db with every way a chain can break: discarded images, missing
// or newer parents, parents of another line, incrementals on non-fulls, images taken between a
// child and its parent, table space lines, and instants that do not sort like timestamps.
func randomHistory(rng *rand.Rand, n int) []Entry {
	start := time.Date(2024, 3, 3, 1, 0, 0, 0, time.UTC)
	types := []events.BackupType{events.Full, events.Incremental, events.Delta, events.Delta}
	lines := [][]string{nil, nil, nil, {"TS1"}, {"TS1", "TS2"}}
	var out []Entry
	for i := range n {
		at := start.Add(time.Duration(i) * time.Hour)
		e := Entry{Database: "db1", ImageTimestamp: Timestamp(at), Type: types[rng.IntN(len(types))], Mode: events.Online,
			Scope: ScopeDatabase, StartedAt: at, EndedAt: at.Add(10 * time.Minute), KeyCRN: "crn", RunID: "r", SizeBytes: 1}
		if rng.IntN(8) == 0 { // instants that disagree with the timestamps' order
			e.StartedAt = e.StartedAt.Add(-time.Duration(rng.IntN(3)) * time.Hour)
			e.EndedAt = e.StartedAt.Add(time.Minute)
		}
		if ts := lines[rng.IntN(len(lines))]; ts != nil {
			e.Scope, e.Tablespaces = ScopeTablespace, ts
		}
		if e.Type != events.Full && len(out) > 0 {
			switch r := rng.IntN(10); {
			case r < 6: // the previous image
				e.ParentTimestamp = out[len(out)-1].ImageTimestamp
			case r < 9: // any older image
				e.ParentTimestamp = out[rng.IntN(len(out))].ImageTimestamp
			default: // one that is not in the catalog
				e.ParentTimestamp = Timestamp(at.Add(-1000 * time.Hour))
			}
		} else if e.Type != events.Full {
			e.ParentTimestamp = Timestamp(at.Add(-time.Hour))
		}
		if rng.IntN(9) == 0 {
			e.Discarded = &Discard{At: e.EndedAt, Reason: "upload failed"}
		}
		out = append(out, e)
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// TestLinksAgreeWithChain: links, which Retain uses, says a chain is complete exactly when
// chain finds it, and its parent links walk the same chain.
func TestLinksAgreeWithChain(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for round := range 300 {
		entries := randomHistory(rng, 1+rng.IntN(60))
		h, err := newHistory(entries)
		if err != nil {
			t.Fatal(err)
		}
		complete, parent := h.links()
		for i, e := range h.sorted {
			idx, err := h.chain(e.ImageTimestamp)
			if complete[i] != (err == nil) {
				t.Fatalf("round %d: %s: links says complete=%v, chain says %v", round, e.Name(), complete[i], err)
			}
			if err != nil {
				continue
			}
			var walk []int
			for j := i; j >= 0; j = parent[j] {
				walk = append(walk, j)
			}
			slices.Reverse(walk)
			if !slices.Equal(walk, idx) {
				t.Fatalf("round %d: %s: parent links walk %v, chain is %v", round, e.Name(), walk, idx)
			}
		}
	}
}

// TestRetainAgreesWithReference: Retain (parent links, each chain kept once) decides as the
// reference implementation (one chain per entry), over random histories, policies and leases.
func TestRetainAgreesWithReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for round := range 400 {
		entries := randomHistory(rng, 1+rng.IntN(80))
		policy := RetentionPolicy{KeepFulls: rng.IntN(4), KeepDays: rng.IntN(3)}
		now := time.Date(2024, 3, 3, 1, 0, 0, 0, time.UTC).Add(time.Duration(rng.IntN(130)) * time.Hour)
		inUse := map[string]bool{}
		for range rng.IntN(3) {
			inUse[entries[rng.IntN(len(entries))].ImageTimestamp] = true
		}
		keep, drop := Retain(entries, policy, now, inUse)
		rkeep, rdrop := retainReference(entries, policy, now, inUse)
		if !slices.Equal(names(keep), names(rkeep)) || !slices.Equal(names(drop), names(rdrop)) {
			t.Fatalf("round %d: Retain keeps %v drops %v; the reference keeps %v drops %v", round, names(keep), names(drop), names(rkeep), names(rdrop))
		}
	}
}

func names(es []Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Name()
	}
	return out
}

// retainReference is Retain as it was first written: the chain of every entry computed by chain.
func retainReference(entries []Entry, policy RetentionPolicy, now time.Time, inUse map[string]bool) (keep, drop []Entry) {
	h, err := newHistory(entries)
	if err != nil {
		return slices.Clone(entries), nil
	}
	n := len(h.sorted)
	chains := make([][]int, n)
	for i, e := range h.sorted {
		chains[i], _ = h.chain(e.ImageTimestamp) // nil when broken
	}
	kept := make([]bool, n)
	done := make([]bool, n)
	var mark func(i int)
	mark = func(i int) {
		if done[i] {
			return
		}
		done[i], kept[i] = true, true
		if chains[i] != nil {
			for _, j := range chains[i] {
				kept[j] = true
			}
			return
		}
		cur := h.sorted[i]
		if cur.IsDiscarded() || cur.Type == events.Full {
			return
		}
		// Broken chain: keep the parent (with its own chain or ancestors), and what the link
		// check reads between parent and child.
		p, ok := h.byTS[cur.ParentTimestamp]
		if !ok {
			return
		}
		mark(p)
		if p > i {
			// A parent that sorts after its child (runs that overlapped, clocks that went back)
			// breaks the chain, and is kept all the same: Db2 built the child on it.
			return
		}
		l := line(cur)
		for k := p + 1; k < i; k++ {
			if b := h.sorted[k]; line(b) == l && (cur.Type == events.Delta || b.Type == events.Full) {
				mark(k)
			}
		}
	}
	// Per line: the newest KeepFulls full chains of the line, and everything of the line since
	// the oldest of them (everything of it, when it has fewer fulls).
	for i := range h.sorted {
		l := line(h.sorted[i])
		var fulls []int
		for j, e := range h.sorted {
			if line(e) == l && e.Type == events.Full && !e.IsDiscarded() {
				fulls = append(fulls, j)
			}
		}
		since := 0
		if k := max(policy.KeepFulls, MinKeepFulls); len(fulls) >= k {
			since = fulls[len(fulls)-k]
		}
		if i >= since && !h.sorted[i].IsDiscarded() {
			mark(i)
		}
	}
	// The window of KeepDays, and per line the chain that covers its start.
	if policy.KeepDays > 0 {
		cutoff := now.Add(-time.Duration(policy.KeepDays) * 24 * time.Hour)
		for i := n - 1; i >= 0; i-- {
			if e := h.sorted[i]; !e.EndedAt.Before(cutoff) && !e.IsDiscarded() {
				mark(i)
			}
		}
		for i := n - 1; i >= 0; i-- {
			e := h.sorted[i]
			if chains[i] == nil || e.EndedAt.After(cutoff) {
				continue
			}
			newest := true
			for j := i + 1; j < n; j++ {
				if o := h.sorted[j]; line(o) == line(e) && chains[j] != nil && !o.EndedAt.After(cutoff) {
					newest = false
				}
			}
			if newest {
				mark(i)
			}
		}
	}
	for ts, use := range inUse {
		if i, ok := h.byTS[ts]; ok && use {
			mark(i)
		}
	}
	for i, e := range h.sorted {
		if kept[i] {
			keep = append(keep, *e)
		} else {
			drop = append(drop, *e)
		}
	}
	slices.SortFunc(drop, func(a, b Entry) int { return Compare(b, a) })
	return keep, childrenFirst(drop)
}
