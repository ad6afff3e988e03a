package catalog

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keyguard-dev/keyguard/events"
)

// ChainError says why the restore chain of Target cannot be built: the link from Image to its
// parent Parent is missing (Missing) or inconsistent (Reason), or the chain needs a discarded
// image (Discarded). It wraps ErrBrokenChain.
type ChainError struct {
	Database string
	// Target is the image whose chain was asked for, Image the one whose link is broken
	// ("<timestamp>-<type>").
	Target, Image string
	// Parent is the timestamp Image names as its parent (empty for a full).
	Parent string
	// Missing is true when no entry has the Parent timestamp.
	Missing bool
	// Discarded is the timestamp of the discarded image that breaks the chain: Image itself,
	// its parent, or the image Db2 built Image on (its actual base, which the catalog's parent
	// link skips over). Empty when no discarded image is involved.
	Discarded string
	Reason    string
}

func (e *ChainError) Error() string {
	if e.Missing {
		return fmt.Sprintf("%s: chain of %s/%s: %s needs image %s, which is not in the catalog",
			ErrBrokenChain, e.Database, e.Target, e.Image, e.Parent)
	}
	img := e.Image
	if e.Parent != "" {
		img += " (parent " + e.Parent + ")"
	}
	return fmt.Sprintf("%s: chain of %s/%s: %s: %s", ErrBrokenChain, e.Database, e.Target, img, e.Reason)
}

// Unwrap makes errors.Is(err, ErrBrokenChain) true.
func (e *ChainError) Unwrap() error { return ErrBrokenChain }

// history is one database's entries sorted by Compare (UTC instants), with an index by
// timestamp.
type history struct {
	db string
	// sorted points into the caller's entries, which are never modified.
	sorted []*Entry
	byTS   map[string]int
}

// newHistory sorts a copy of entries. Entries of several databases, or two entries with one
// timestamp, are an error.
func newHistory(entries []Entry) (*history, error) {
	h := &history{sorted: make([]*Entry, len(entries)), byTS: make(map[string]int, len(entries))}
	for i := range entries {
		h.sorted[i] = &entries[i]
	}
	slices.SortStableFunc(h.sorted, compareRefs)
	for i, e := range h.sorted {
		if i == 0 {
			h.db = e.Database
		}
		if e.Database != h.db {
			return nil, fmt.Errorf("%w: entries of databases %s and %s mixed", ErrInvalid, h.db, e.Database)
		}
		if _, dup := h.byTS[e.ImageTimestamp]; dup {
			return nil, fmt.Errorf("%w: two entries of %s at %s", ErrInvalid, h.db, e.ImageTimestamp)
		}
		h.byTS[e.ImageTimestamp] = i
	}
	return h, nil
}

// line identifies the entries a chain may mix: the same scope and the same table spaces.
func line(e *Entry) string {
	if e.Scope != ScopeTablespace {
		return string(e.Scope)
	}
	ts := slices.Clone(e.Tablespaces)
	slices.Sort(ts)
	return string(e.Scope) + ":" + strings.Join(ts, ",")
}

// Chain returns the images a restore of the image taken at target needs, in restore order,
// following Db2's RESTORE ... INCREMENTAL AUTOMATIC: the chain starts from the full image, then
// applies, oldest first, each image that the next one builds on, ending with the target.
//
//   - full: the full alone.
//   - incremental (cumulative, since the most recent full): that full, then the incremental.
//   - delta (since the previous backup of any type): the full, the latest incremental taken
//     after it and before the delta (if any), then every delta after that incremental (or after
//     the full) up to and including the target.
//
// A discarded image (Entry.Discarded) is never restorable, and because Db2's history still
// counts it, Db2 built the next image of its line on it (a delta on any discarded image, an
// incremental on a discarded full): such an image is broken too, whether the catalog names the
// discarded image as its parent or an older one. Both errors name the discarded image
// (ChainError.Discarded).
//
// The chain is found by following ParentTimestamp links back to a full, and each link is
// checked against the history, in the order of Compare (UTC instants; Db2's local timestamps
// do not sort like them across a fall-back hour): the parent must exist, be older, be of the same scope (and the
// same table spaces); an incremental's parent must be a full with no other full of that line in
// between; a delta's parent must be the previous image of that line. Any violation is a
// *ChainError (ErrBrokenChain) naming the image. Mixing database and table space incremental
// backups, whose predecessor Db2 may assemble from several images, is not modelled: each line
// forms its own chains. A target not in entries is ErrNotFound. entries is not modified.
func Chain(entries []Entry, target string) ([]Entry, error) {
	h, err := newHistory(entries)
	if err != nil {
		return nil, fmt.Errorf("chain of %s: %w", target, err)
	}
	idx, err := h.chain(target)
	if err != nil {
		return nil, err
	}
	return h.pick(idx), nil
}

func (h *history) pick(idx []int) []Entry {
	out := make([]Entry, len(idx))
	for i, j := range idx {
		out[i] = *h.sorted[j]
	}
	return out
}

// chain returns the indexes of target's chain in restore order.
func (h *history) chain(target string) ([]int, error) {
	i, ok := h.byTS[target]
	if !ok {
		return nil, fmt.Errorf("chain of %s/%s: %w", h.db, target, ErrNotFound)
	}
	tname := h.sorted[i].Name()
	brk := func(img *Entry, missing bool, reason string, args ...any) error {
		return &ChainError{Database: h.db, Target: tname, Image: img.Name(), Parent: img.ParentTimestamp,
			Missing: missing, Reason: fmt.Sprintf(reason, args...)}
	}
	gone := func(img, discarded *Entry, reason string, args ...any) error {
		err := brk(img, false, reason, args...).(*ChainError)
		err.Discarded = discarded.ImageTimestamp
		return err
	}
	rev := []int{i}
	if cur := h.sorted[i]; cur.IsDiscarded() {
		return nil, gone(cur, cur, "the image was discarded (%s)", cur.Discarded.Reason)
	}
	for cur := h.sorted[i]; cur.Type != events.Full; {
		if !cur.Type.Valid() {
			return nil, brk(cur, false, "unknown type %q", cur.Type)
		}
		p, ok := h.byTS[cur.ParentTimestamp]
		if !ok {
			return nil, brk(cur, true, "")
		}
		if p >= i {
			return nil, brk(cur, false, "the parent is not older")
		}
		parent := h.sorted[p]
		if parent.IsDiscarded() {
			return nil, gone(cur, parent, "its parent %s was discarded (%s)", parent.Name(), parent.Discarded.Reason)
		}
		l := line(cur)
		if line(parent) != l {
			return nil, brk(cur, false, "the parent is a backup of %s, this one of %s", line(parent), l)
		}
		if cur.Type == events.Incremental && parent.Type != events.Full {
			return nil, brk(cur, false, "an incremental builds on a full, the parent is %s", parent.Type)
		}
		// Newest first: the first match is the image Db2 built cur on.
		for k := i - 1; k > p; k-- {
			between := h.sorted[k]
			if line(between) != l || (cur.Type == events.Incremental && between.Type != events.Full) {
				continue
			}
			if between.IsDiscarded() {
				return nil, gone(cur, between, "Db2 built it on %s, which was discarded (%s)", between.Name(), between.Discarded.Reason)
			}
			if cur.Type == events.Incremental {
				return nil, brk(cur, false, "full %s was taken in between, so Db2 built the incremental on it", between.ImageTimestamp)
			}
			return nil, brk(cur, false, "%s was taken in between, so Db2 built the delta on it", between.Name())
		}
		rev = append(rev, p)
		i, cur = p, parent
	}
	slices.Reverse(rev)
	return rev, nil
}

// links returns, for each entry of h, whether its restore chain is complete (h.chain of its
// timestamp succeeds) and the index of its parent in that chain (-1 for a full, or when a link
// is broken): the checks of chain, each link checked once.
func (h *history) links() (complete []bool, parent []int) {
	n := len(h.sorted)
	complete, parent = make([]bool, n), make([]int, n)
	for i, cur := range h.sorted {
		parent[i] = -1
		switch {
		case cur.IsDiscarded():
		case cur.Type == events.Full:
			complete[i] = true
		default:
			if p, ok := h.link(i); ok {
				complete[i], parent[i] = complete[p], p
			}
		}
	}
	return complete, parent
}

// link returns the parent of the i-th entry, not a full, when the link to it holds (the checks
// chain makes of one link).
func (h *history) link(i int) (int, bool) {
	cur := h.sorted[i]
	if !cur.Type.Valid() {
		return -1, false
	}
	p, ok := h.byTS[cur.ParentTimestamp]
	if !ok || p >= i {
		return -1, false
	}
	parent := h.sorted[p]
	l := line(cur)
	if parent.IsDiscarded() || line(parent) != l || cur.Type == events.Incremental && parent.Type != events.Full {
		return -1, false
	}
	for k := i - 1; k > p; k-- {
		if b := h.sorted[k]; line(b) == l && (cur.Type != events.Incremental || b.Type == events.Full) {
			return -1, false
		}
	}
	return p, true
}

// RestorePlan is what a restore to a point in time needs.
type RestorePlan struct {
	Database string `json:"database"`
	// Target is the timestamp of the last image restored (RESTORE ... TAKEN AT).
	Target string `json:"target"`
	// Images are the chain to restore, in restore order.
	Images []Entry `json:"images"`
	// RollForward is "end of logs" or "to <yyyy-mm-dd-hh.mm.ss.nnnnnn> using UTC time".
	RollForward string `json:"roll_forward"`
	// Commands are the Db2 commands, once the images are where Db2 can read them.
	Commands []string `json:"commands"`
	// Partitions, for a partitioned database, are the database partitions in restore order:
	// the catalog partition first, then the others ascending; the roll-forward runs on all.
	Partitions []int `json:"partitions,omitempty"`
	// Tablespaces, for a table space restore (PlanTablespaceRestore), are the table spaces
	// restored; empty for a database restore.
	Tablespaces []string `json:"tablespaces,omitempty"`
	// Notes say what the operator should know: newer chains skipped and why, unverified images,
	// logs needed, keys not checked.
	Notes []string `json:"notes,omitempty"`
}

// RollForwardTime formats t for Db2's ROLLFORWARD ... TO <time> USING UTC TIME.
func RollForwardTime(t time.Time) string { return t.UTC().Format("2006-01-02-15.04.05.000000") }

// PlanRestore chooses how to restore a database to pointInTime (zero: as late as possible): the
// newest database-scope image that ended at or before pointInTime whose chain is complete and
// whose every image's key version keyAvailable reports available (keyAvailable is called with
// the entry's KeyCRN and KeyVersion, which may be empty when unknown; nil means "not checked",
// and a note says so). Newer images that were skipped are named in Notes with the reason. The
// roll-forward goes to the end of logs, or to pointInTime in UTC. With no such chain the error
// wraps ErrNoRestorableChain and gives the reasons. entries is not modified.
func PlanRestore(entries []Entry, pointInTime time.Time, keyAvailable func(keyCRN, version string) bool) (RestorePlan, error) {
	h, err := newHistory(entries)
	if err != nil {
		return RestorePlan{}, fmt.Errorf("plan restore: %w", err)
	}
	_, chain, skipped, ok := h.newest(func(e *Entry) bool {
		return e.Scope == ScopeDatabase && (pointInTime.IsZero() || !e.EndedAt.After(pointInTime))
	}, keyAvailable)
	if ok {
		return plan(h.db, chain, pointInTime, skipped.notes(), keyAvailable == nil), nil
	}
	when := "the latest point"
	if !pointInTime.IsZero() {
		when = pointInTime.UTC().Format(time.RFC3339)
	}
	notes := skipped.notes()
	if len(notes) == 0 {
		notes = []string{"no database backup ended by then"}
	}
	return RestorePlan{}, fmt.Errorf("plan restore of %s to %s: %w: %s", h.db, when, ErrNoRestorableChain, strings.Join(notes, "; "))
}

// skips groups the images PlanRestore passed over by reason, in the order met (newest first).
// newest finds, newest first, the entry accept takes whose chain is complete and whose keys
// keyAvailable accepts (nil: any), with its chain; skipped holds why newer ones it took were
// passed over.
func (h *history) newest(accept func(*Entry) bool, keyAvailable func(keyCRN, version string) bool) (e *Entry, chain []Entry, skipped skips, ok bool) {
	for i := len(h.sorted) - 1; i >= 0; i-- {
		e := h.sorted[i]
		if !accept(e) {
			continue
		}
		idx, err := h.chain(e.ImageTimestamp)
		if err != nil {
			skipped.add(chainReason(err), e.Name())
			continue
		}
		chain := h.pick(idx)
		if missing := unavailableKeys(chain, keyAvailable); missing != "" {
			skipped.add(missing, e.Name())
			continue
		}
		return e, chain, skipped, true
	}
	return nil, nil, skipped, false
}

type skips struct {
	reasons []string
	images  map[string][]string
}

func (s *skips) add(reason, image string) {
	if s.images == nil {
		s.images = map[string][]string{}
	}
	if _, ok := s.images[reason]; !ok {
		s.reasons = append(s.reasons, reason)
	}
	s.images[reason] = append(s.images[reason], image)
}

func (s *skips) notes() []string {
	var out []string
	for _, r := range s.reasons {
		imgs := s.images[r]
		which := strings.Join(imgs, ", ")
		if len(imgs) > 3 {
			which = fmt.Sprintf("%d images, %s back to %s", len(imgs), imgs[0], imgs[len(imgs)-1])
		}
		out = append(out, fmt.Sprintf("skipped %s: %s", which, r))
	}
	return out
}

func chainReason(err error) string {
	var ce *ChainError
	switch {
	case errors.As(err, &ce) && ce.Missing:
		return fmt.Sprintf("broken chain: %s needs image %s, which is not in the catalog", ce.Image, ce.Parent)
	case errors.As(err, &ce) && ce.Discarded != "" && strings.HasPrefix(ce.Image, ce.Discarded+"-"):
		return ce.Reason
	case errors.As(err, &ce):
		img := ce.Image
		if ce.Parent != "" {
			img += " (parent " + ce.Parent + ")"
		}
		return fmt.Sprintf("broken chain: %s: %s", img, ce.Reason)
	}
	return err.Error()
}

// unavailableKeys describes the key versions of chain that keyAvailable refuses, or "".
func unavailableKeys(chain []Entry, keyAvailable func(string, string) bool) string {
	if keyAvailable == nil {
		return ""
	}
	var out []string
	seen := map[[2]string]bool{}
	for _, e := range chain {
		k := [2]string{e.KeyCRN, e.KeyVersion}
		if seen[k] {
			continue
		}
		seen[k] = true
		if !keyAvailable(e.KeyCRN, e.KeyVersion) {
			v := e.KeyVersion
			if v == "" {
				v = "(unrecorded)"
			}
			out = append(out, fmt.Sprintf("key version %s of %s is unavailable (needed from %s)", v, e.KeyCRN, e.Name()))
		}
	}
	return strings.Join(out, "; ")
}

func plan(db string, chain []Entry, pit time.Time, notes []string, unchecked bool) RestorePlan {
	target := chain[len(chain)-1]
	p := RestorePlan{Database: db, Target: target.ImageTimestamp, Images: chain, Notes: notes}
	restore := fmt.Sprintf("RESTORE DATABASE %s TAKEN AT %s", db, target.ImageTimestamp)
	if len(chain) > 1 {
		restore = fmt.Sprintf("RESTORE DATABASE %s INCREMENTAL AUTOMATIC TAKEN AT %s", db, target.ImageTimestamp)
	}
	if pit.IsZero() {
		p.RollForward = "end of logs"
		p.Commands = []string{restore, fmt.Sprintf("ROLLFORWARD DATABASE %s TO END OF LOGS AND STOP", db)}
	} else {
		p.RollForward = "to " + RollForwardTime(pit) + " using UTC time"
		p.Commands = []string{restore, fmt.Sprintf("ROLLFORWARD DATABASE %s TO %s USING UTC TIME AND STOP", db, RollForwardTime(pit))}
	}
	if order := PartitionOrder(target); len(order) > 0 {
		// db2_all "<<+n<" runs on partition n alone, "<<-n<" on every partition but n: the
		// catalog partition is restored first, then the others; the roll-forward covers all.
		p.Partitions = order
		cat := order[0]
		p.Commands = []string{
			fmt.Sprintf("db2_all \"<<+%d< db2 %s\"", cat, restore),
			fmt.Sprintf("db2_all \"<<-%d< db2 %s\"", cat, restore),
			strings.Replace(p.Commands[1], " AND STOP", " ON ALL DBPARTITIONNUMS AND STOP", 1),
		}
		p.Notes = append(p.Notes, fmt.Sprintf("partitioned database: restore the catalog partition %d first, then partitions %s, then roll forward on all", cat, joinInts(order[1:])))
	}
	if unchecked {
		p.Notes = append(p.Notes, "key availability was not checked")
	}
	for _, e := range chain {
		if !e.Verification.Verified {
			p.Notes = append(p.Notes, fmt.Sprintf("%s is not verified", e.Name()))
		}
		if e.KeyVersion == "" {
			p.Notes = append(p.Notes, fmt.Sprintf("%s does not record its key version", e.Name()))
		}
	}
	switch {
	case target.Mode == events.Online && target.LogRange.First != "":
		p.Notes = append(p.Notes, fmt.Sprintf("roll-forward needs the archived logs from %s on", target.LogRange.First))
	case target.Mode == events.Online:
		p.Notes = append(p.Notes, "roll-forward needs the logs written during and after the online backup (log range not recorded)")
	case pit.IsZero():
		p.Notes = append(p.Notes, "offline image: RESTORE ... WITHOUT ROLLING FORWARD also gives the database as of the image")
	}
	return p
}

// PartitionOrder is the order in which the partitions of e's images are restored: the catalog
// partition first, then the others in ascending order; nil for a single-partition database.
func PartitionOrder(e Entry) []int {
	cat, ok := e.CatalogPartition()
	if !ok {
		return nil
	}
	out := []int{cat}
	for _, p := range e.Partitions {
		if p.Number != cat {
			out = append(out, p.Number)
		}
	}
	return out
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ", ")
}

// PlanTablespaceRestore chooses how to restore the table spaces tablespaces of a database
// online while the rest of it stays in use: the newest image whose chain is complete, whose
// keys keyAvailable accepts, and that holds every one of them (a table space backup of those
// table spaces or more, or a database backup), then a roll-forward of those table spaces to the
// end of the logs (a table space cannot be rolled forward to a point in time earlier than the
// database is, without its related table spaces: not offered). Names compare without regard to
// case. Table space and database chains are found the same way as for PlanRestore. With no such
// image the error wraps ErrNoRestorableChain and gives the reasons. entries is not modified.
func PlanTablespaceRestore(entries []Entry, tablespaces []string, keyAvailable func(keyCRN, version string) bool) (RestorePlan, error) {
	if len(tablespaces) == 0 {
		return RestorePlan{}, fmt.Errorf("plan table space restore: %w: no table space named", ErrInvalid)
	}
	h, err := newHistory(entries)
	if err != nil {
		return RestorePlan{}, fmt.Errorf("plan table space restore: %w", err)
	}
	want := make([]string, len(tablespaces))
	for i, ts := range tablespaces {
		want[i] = strings.ToUpper(ts)
	}
	holds := func(e *Entry) bool {
		if e.Scope == ScopeDatabase {
			return true
		}
		for _, w := range want {
			if !slices.ContainsFunc(e.Tablespaces, func(t string) bool { return strings.EqualFold(t, w) }) {
				return false
			}
		}
		return true
	}
	e, chain, skipped, ok := h.newest(holds, keyAvailable)
	if !ok {
		notes := skipped.notes()
		if len(notes) == 0 {
			notes = []string{"no image holds " + strings.Join(want, ", ")}
		}
		return RestorePlan{}, fmt.Errorf("plan restore of table spaces %s of %s: %w: %s", strings.Join(want, ", "), h.db, ErrNoRestorableChain, strings.Join(notes, "; "))
	}
	list := "(" + strings.Join(want, ",") + ")"
	restore := fmt.Sprintf("RESTORE DATABASE %s TABLESPACE %s ONLINE TAKEN AT %s", h.db, list, e.ImageTimestamp)
	if len(chain) > 1 {
		restore = fmt.Sprintf("RESTORE DATABASE %s TABLESPACE %s ONLINE INCREMENTAL AUTOMATIC TAKEN AT %s", h.db, list, e.ImageTimestamp)
	}
	p := RestorePlan{Database: h.db, Target: e.ImageTimestamp, Images: chain, Tablespaces: want, RollForward: "end of logs",
		Commands: []string{restore, fmt.Sprintf("ROLLFORWARD DATABASE %s TO END OF LOGS AND STOP TABLESPACE %s ONLINE", h.db, list)},
		Notes:    skipped.notes()}
	if e.Scope == ScopeDatabase {
		p.Notes = append(p.Notes, fmt.Sprintf("from database image %s (no newer table space image holds %s)", e.Name(), strings.Join(want, ", ")))
	}
	if keyAvailable == nil {
		p.Notes = append(p.Notes, "key availability was not checked")
	}
	return p, nil
}

// Dependents names, newest first, the other entries of list (sorted oldest first) whose restore
// chain includes ts: an entry that deleting ts would leave without a restore. A broken chain
// still depends on the ancestors it links to (as Retain keeps them). Timestamps are local time
// and need not grow along a chain (a fall-back hour), so the walk up the parents stops at an
// image already seen.
func Dependents(list []Entry, ts string) []string {
	byTS := make(map[string]Entry, len(list))
	for _, e := range list {
		byTS[e.ImageTimestamp] = e
	}
	var out []string
	for i := len(list) - 1; i >= 0; i-- {
		e := list[i]
		if e.ImageTimestamp == ts {
			continue
		}
		needs := false
		if chain, err := Chain(list, e.ImageTimestamp); err == nil {
			needs = slices.ContainsFunc(chain, func(c Entry) bool { return c.ImageTimestamp == ts })
		}
		seen := map[string]bool{e.ImageTimestamp: true}
		for p := e.ParentTimestamp; !needs && p != "" && !seen[p]; {
			if p == ts {
				needs = true
				break
			}
			seen[p] = true
			next, ok := byTS[p]
			if !ok {
				break
			}
			p = next.ParentTimestamp
		}
		if needs {
			out = append(out, e.Name())
		}
	}
	return out
}

// OnNewestChain reports whether ts is on the restore chain of the newest database image of list
// (sorted oldest first): the chain a run in flight builds on.
func OnNewestChain(list []Entry, ts string) bool {
	for i := len(list) - 1; i >= 0; i-- {
		if list[i].Scope != ScopeDatabase {
			continue
		}
		chain, err := Chain(list, list[i].ImageTimestamp)
		if err != nil {
			return list[i].ImageTimestamp == ts
		}
		return slices.ContainsFunc(chain, func(c Entry) bool { return c.ImageTimestamp == ts })
	}
	return false
}
