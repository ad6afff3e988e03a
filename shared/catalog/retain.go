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
	// KeepFulls is how many of the newest full images of each line (the database, or one set
	// of table spaces) are kept, together with every image of that line taken since the oldest
	// of them. At least MinKeepFulls (0 means MinKeepFulls).
	KeepFulls int
	// KeepDays, when positive, keeps every image that ended within that many days before now,
	// with its chain, plus the chain a point-in-time restore to the start of that window needs.
	KeepDays int
}

// Retain splits one database's entries into those to keep and those retention may delete. It
// keeps:
//
//   - for each line (the whole database, or one set of table spaces: see Chain), its newest
//     KeepFulls fulls and every image of that line taken since the oldest of them (all its
//     images when it has fewer fulls). The newest full is restorable on its own and every
//     newer image is kept with its chain, so the last restorable chain of each line is always
//     kept; table space chains never count as, keep or drop database chains;
//   - with KeepDays, every image that ended at or after now - KeepDays days, and, for each
//     line, the newest restorable chain that ended at or before that moment, so that a restore
//     to any point in the window stays possible;
//   - every image whose timestamp is in inUse (images a running restore uses).
//
// Discarded images are never restorable and do not count as fulls; they are kept only while a
// kept image's chain check reads them (see below), and otherwise dropped with whatever files
// they stored.
//
// Every kept image keeps its whole chain (Chain), so a kept image never loses an image it needs.
// An image with a broken chain keeps whatever ancestors exist and, for each link, the images of
// its line between parent and child that Db2 would have built the child on (for a delta any
// image, for an incremental a full), discarded ones included: so a broken image stays broken
// and is never approved once what showed it broken is gone. keep is sorted oldest first; drop
// is sorted newest first (both by Compare), the order to delete in, so that a deletion stopped
// half way never leaves an image without the images it builds on. Entries Retain cannot index (several
// databases, two entries at one timestamp) are all kept. Pure: entries and inUse are not
// modified. Retain(keep, ...) with the same arguments keeps everything again (for histories
// whose chains break only by missing or discarded images, the only ways keyguard's own writes
// can break).
// Archived logs are not catalog entries: whoever prunes them must keep those the kept images
// need (LogRange).
func Retain(entries []Entry, policy RetentionPolicy, now time.Time, inUse map[string]bool) (keep, drop []Entry) {
	r, err := newRetention(entries)
	if err != nil {
		return slices.Clone(entries), nil
	}
	return r.split(r.kept(policy, now, inUse))
}

// retention is Retain's work on one history that does not depend on the policy or the time:
// the order, and each entry's chain. kept can then be asked for several instants.
type retention struct {
	h        *history
	complete []bool
	parent   []int
}

func newRetention(entries []Entry) (*retention, error) {
	h, err := newHistory(entries)
	if err != nil {
		return nil, err
	}
	complete, parent := h.links()
	return &retention{h: h, complete: complete, parent: parent}, nil
}

// split returns the entries kept (oldest first) and the others (newest first: the order to
// delete in).
func (r *retention) split(kept []bool) (keep, drop []Entry) {
	keep, drop = make([]Entry, 0, len(kept)), make([]Entry, 0, len(kept)/4)
	for i, e := range r.h.sorted {
		if kept[i] {
			keep = append(keep, *e)
		} else {
			drop = append(drop, *e)
		}
	}
	slices.Reverse(drop) // entries are sorted, and no two compare equal (one timestamp each)
	return keep, childrenFirst(drop)
}

// childrenFirst reorders drop (newest first) so that every entry comes after the dropped
// entries that name it as their parent: an image that sorts before the image it builds on
// (runs that overlapped, a clock that went back) is deleted before it all the same, so a
// deletion stopped half way never leaves an image whose parent is gone.
func childrenFirst(drop []Entry) []Entry {
	children := make(map[string][]int, len(drop))
	for i := range drop {
		if p := drop[i].ParentTimestamp; p != "" {
			children[p] = append(children[p], i)
		}
	}
	if len(children) == 0 {
		return drop
	}
	out := make([]Entry, 0, len(drop))
	emitted := make([]bool, len(drop))
	var emit func(i int)
	emit = func(i int) {
		if emitted[i] {
			return
		}
		emitted[i] = true
		for _, c := range children[drop[i].ImageTimestamp] {
			emit(c)
		}
		out = append(out, drop[i])
	}
	for i := range drop {
		emit(i)
	}
	return out
}

// kept marks the entries Retain keeps under policy at now, by their index in r.h.sorted.
func (r *retention) kept(policy RetentionPolicy, now time.Time, inUse map[string]bool) []bool {
	h, complete, parent := r.h, r.complete, r.parent
	n := len(h.sorted)
	kept := make([]bool, n)
	done := make([]bool, n)
	chained := make([]bool, n) // i and its whole chain are kept
	var mark func(i int)
	mark = func(i int) {
		if done[i] {
			return
		}
		done[i], kept[i] = true, true
		if complete[i] {
			for j := i; j >= 0 && !chained[j]; j = parent[j] {
				chained[j], kept[j] = true, true
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
	// Each line (the database, or one set of table spaces) is retained on its own: its newest
	// KeepFulls full chains and everything of that line since the oldest of them (everything of
	// it, when it has fewer fulls). A table space backup neither counts as a database full nor
	// keeps database images, and the other way round.
	lines := map[string][]int{} // line -> its entries, oldest first
	var order []string
	for i, e := range h.sorted {
		l := line(e)
		if _, ok := lines[l]; !ok {
			order = append(order, l)
		}
		lines[l] = append(lines[l], i)
	}
	k := max(policy.KeepFulls, MinKeepFulls)
	for _, l := range order {
		idx := lines[l]
		var fulls []int
		for _, i := range idx {
			if e := h.sorted[i]; e.Type == events.Full && !e.IsDiscarded() {
				fulls = append(fulls, i)
			}
		}
		since := 0
		if len(fulls) >= k {
			since = fulls[len(fulls)-k]
		}
		for _, i := range idx {
			if i >= since && !h.sorted[i].IsDiscarded() {
				mark(i)
			}
		}
	}
	// The window of KeepDays, and for each line the chain that covers its start.
	if policy.KeepDays > 0 {
		cutoff := now.Add(-time.Duration(policy.KeepDays) * 24 * time.Hour)
		covered := map[string]bool{}
		for i := n - 1; i >= 0; i-- {
			e := h.sorted[i]
			if !e.EndedAt.Before(cutoff) && !e.IsDiscarded() {
				mark(i)
			}
			if l := line(e); !covered[l] && complete[i] && !e.EndedAt.After(cutoff) {
				mark(i)
				covered[l] = true
			}
		}
	}
	for ts, use := range inUse {
		if i, ok := h.byTS[ts]; ok && use {
			mark(i)
		}
	}
	return kept
}
