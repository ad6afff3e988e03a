package catalog

import (
	"slices"
	"time"

	"github.com/keyguard-dev/keyguard/events"
)

// MinKeepFulls is the fewest full chains retention keeps (Db2's advice: at least two full images
// with their logs). Smaller RetentionPolicy.KeepFulls values are raised to it.
const MinKeepFulls = 2

// RetentionPolicy says how much history to keep.
type RetentionPolicy struct {
	// KeepFulls is how many of the newest database-scope full images are kept, together with
	// every image taken since the oldest of them. At least MinKeepFulls (0 means MinKeepFulls).
	KeepFulls int
	// KeepDays, when positive, keeps every image that ended within that many days before now,
	// with its chain, plus the chain a point-in-time restore to the start of that window needs.
	KeepDays int
}

// Retain splits one database's entries into those to keep and those retention may delete. It
// keeps:
//
//   - the newest KeepFulls database fulls and every image taken since the oldest of them (all
//     images when there are fewer fulls). The newest full is restorable on its own and every
//     newer image is kept with its chain, so the last restorable chain is always kept;
//   - with KeepDays, every image that ended at or after now - KeepDays days, and the newest
//     restorable database chain that ended at or before that moment, so that a restore to any
//     point in the window stays possible;
//   - every image whose timestamp is in inUse (images a running restore uses).
//
// Every kept image keeps its whole chain (Chain), so a kept image never loses an image it needs;
// an image with a broken chain keeps whatever ancestors exist. keep is sorted oldest first; drop
// is sorted newest first (both by Compare), the order to delete in, so that a deletion stopped half way never
// leaves an image without the images it builds on. Entries Retain cannot index (several
// databases, two entries at one timestamp) are all kept. Pure: entries and inUse are not
// modified. Retain(keep, ...) with the same arguments keeps everything again (for histories
// whose chains break only by missing images, the only way keyguard's own writes can break).
// Archived logs are not catalog entries: whoever prunes them must keep those the kept images
// need (LogRange).
func Retain(entries []Entry, policy RetentionPolicy, now time.Time, inUse map[string]bool) (keep, drop []Entry) {
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
	mark := func(i int) {
		kept[i] = true
		if chains[i] != nil {
			for _, j := range chains[i] {
				kept[j] = true
			}
			return
		}
		// Broken chain: keep the ancestors that exist.
		for j := i; ; {
			p, ok := h.byTS[h.sorted[j].ParentTimestamp]
			if !ok || p >= j {
				return
			}
			kept[p] = true
			j = p
		}
	}
	restorableDB := func(i int) bool { return chains[i] != nil && h.sorted[i].Scope == ScopeDatabase }

	// The newest KeepFulls full chains, and everything since the oldest of them (everything,
	// when there are fewer fulls).
	var fulls []int
	for i, e := range h.sorted {
		if e.Scope == ScopeDatabase && e.Type == events.Full {
			fulls = append(fulls, i)
		}
	}
	since := 0
	if k := max(policy.KeepFulls, MinKeepFulls); len(fulls) >= k {
		since = fulls[len(fulls)-k]
	}
	for i := since; i < n; i++ {
		mark(i)
	}
	// The window of KeepDays, and the chain that covers its start.
	if policy.KeepDays > 0 {
		cutoff := now.Add(-time.Duration(policy.KeepDays) * 24 * time.Hour)
		covered := false
		for i := n - 1; i >= 0; i-- {
			e := h.sorted[i]
			if !e.EndedAt.Before(cutoff) {
				mark(i)
			}
			if !covered && restorableDB(i) && !e.EndedAt.After(cutoff) {
				mark(i)
				covered = true
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
			keep = append(keep, e)
		} else {
			drop = append(drop, e)
		}
	}
	slices.SortFunc(drop, func(a, b Entry) int { return Compare(b, a) })
	return keep, drop
}
