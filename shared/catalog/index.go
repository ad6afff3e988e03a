package catalog

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/state"
)

// Timing of the index's repairs.
const (
	// DefaultCompactAfter is how many summaries a head holds (rows plus removed names) before
	// they are folded into a new base.
	DefaultCompactAfter = 256
	// PendingGrace is how long a Put's intent may wait for its entry: an intent older than
	// that whose entry does not exist is dropped (the Put died before writing it).
	PendingGrace = time.Hour
	// DeletingGrace is how long a deletion may take before the next pruner finishes it.
	DeletingGrace = 2 * time.Minute
	// BuildingGrace is how long a rebuild may take before another reader takes it over.
	BuildingGrace = 10 * time.Minute
	// orphanAge is how old an unreferenced base must be before a compaction deletes it (a reader
	// of an older head may still be reading it; it re-reads the head when the base is gone).
	orphanAge = time.Hour
	// casAttempts bounds the compare-and-swap attempts of one change of the head.
	casAttempts = 24
	// fetchWorkers bounds the concurrent GETs of entries the index reads or deletes.
	fetchWorkers = 8
)

// Options tune a Catalog. The zero value is the defaults.
type Options struct {
	// Clock stamps intents and deletions; the wall clock when nil.
	Clock clock.Clock
	// CompactAfter is DefaultCompactAfter when 0.
	CompactAfter int
	// Rand is the source of the random part of index base names (crypto/rand when nil); a
	// seeded source makes a run replayable.
	Rand io.Reader
}

// errNoIndex: the head does not exist or cannot be read; errBusy: another reader is
// rebuilding it.
var (
	errNoIndex  = errors.New("no readable catalog index")
	errBusy     = errors.New("the catalog index is being rebuilt")
	errBaseGone = errors.New("the index base named by the head is gone")
)

// snapshot is a head as read, with its ETag.
type snapshot struct {
	h    *head
	etag string
	// bad is the error that made the stored head unreadable (h is nil then; etag is the
	// unreadable head's).
	bad error
}

func (c *Catalog) now() time.Time { return clock.Or(c.clock).Now().UTC() }

// readHead reads db's head. A missing head is a snapshot with h nil and no etag.
func (c *Catalog) readHead(ctx context.Context, db string) (*snapshot, error) {
	body, etag, err := c.store.Get(ctx, IndexHeadKey(db))
	switch {
	case errors.Is(err, objstore.ErrNotFound):
		return &snapshot{}, nil
	case err != nil:
		return nil, fmt.Errorf("read catalog index of %s: %w", db, err)
	}
	h, err := decodeHead(body)
	if err == nil && h.Database != db {
		err = fmt.Errorf("%w: the head names database %s", ErrIndex, h.Database)
	}
	if err != nil {
		return &snapshot{etag: etag, bad: err}, nil
	}
	return &snapshot{h: h, etag: etag}, nil
}

// readBase reads and checks the base h names (nil when none), sorted by name.
func (c *Catalog) readBase(ctx context.Context, h *head) ([]Entry, error) {
	if h.Base == nil {
		return nil, nil
	}
	body, _, err := c.store.Get(ctx, h.Base.Key)
	switch {
	case errors.Is(err, objstore.ErrNotFound):
		return nil, fmt.Errorf("read catalog index base %s: %w", h.Base.Key, errBaseGone)
	case err != nil:
		return nil, fmt.Errorf("read catalog index base %s: %w", h.Base.Key, err)
	}
	return decodeBase(body, h.Database, *h.Base)
}

// update applies change to db's head by compare-and-swap until it holds, and returns the head
// written (or read, when change changed nothing). change must be idempotent: it runs again on
// a newer head after a conflict. A head grown past CompactAfter is folded into a new base in
// the same write. A missing or unreadable head is errNoIndex.
func (c *Catalog) update(ctx context.Context, db string, change func(h *head) (bool, error)) (*head, error) {
	for attempt := range casAttempts {
		if attempt > 0 {
			if err := backoff(ctx, attempt); err != nil {
				return nil, err
			}
		}
		s, err := c.readHead(ctx, db)
		if err != nil {
			return nil, err
		}
		if s.h == nil {
			return nil, errNoIndex
		}
		changed, err := change(s.h)
		if err != nil {
			return nil, err
		}
		if !changed {
			return s.h, nil
		}
		s.h.Generation++
		oldBase, newBase, err := c.compact(ctx, s.h)
		switch {
		case errors.Is(err, errBaseGone):
			continue // a newer head names another base
		case err != nil:
			// The change matters more than the compaction, which the next write tries again
			// (an unreadable base is rebuilt by the next reader).
			oldBase, newBase = "", ""
		}
		body := encodeHead(s.h)
		_, err = c.store.Put(ctx, IndexHeadKey(db), body, objstore.Cond{IfMatch: s.etag})
		if errors.Is(err, objstore.ErrPrecondition) || errors.Is(err, objstore.ErrNotFound) {
			// Ours, written by a request whose answer was lost (an SDK retry answers 412)?
			if stored, _, gerr := c.store.Get(ctx, IndexHeadKey(db)); gerr == nil && bytes.Equal(stored, body) {
				err = nil
			}
		}
		if err == nil {
			if oldBase != "" {
				// Readers of the old head re-read the head when its base is gone.
				_ = c.store.Delete(ctx, oldBase)
			}
			return s.h, nil
		}
		if newBase != "" {
			_ = c.store.Delete(ctx, newBase)
		}
		if !errors.Is(err, objstore.ErrPrecondition) && !errors.Is(err, objstore.ErrNotFound) {
			return nil, fmt.Errorf("write catalog index of %s: %w", db, err)
		}
		// Someone else wrote the head (or an SDK retry of our own write answered 412): read it
		// again; change is idempotent.
	}
	return nil, fmt.Errorf("write catalog index of %s: %w after %d attempts", db, objstore.ErrPrecondition, casAttempts)
}

// backoff waits a little, more with each attempt, jittered so that conflicting writers part.
func backoff(ctx context.Context, attempt int) error {
	d := time.Duration(1+rand.IntN(4<<min(attempt, 6))) * time.Millisecond
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// compact folds h's rows and removed names into a new base when they number more than
// CompactAfter, writes it (create-only, under a name of its own), and points h at it. It
// returns the old base's key (to delete once h is written) and the new one's (to delete if it
// is not). On error h is unchanged.
func (c *Catalog) compact(ctx context.Context, h *head) (oldBase, newBase string, err error) {
	if len(h.Rows)+len(h.Removed) <= c.compactAfter() || !h.Building.IsZero() {
		return "", "", nil
	}
	base, err := c.readBase(ctx, h)
	if err != nil {
		return "", "", err
	}
	merged := mergeRows(base, h.Rows, h.Removed)
	if len(merged) > MaxIndexEntries {
		return "", "", fmt.Errorf("catalog index of %s: %d summaries, more than %d", h.Database, len(merged), MaxIndexEntries)
	}
	body, err := encodeBase(h.Database, merged)
	if err != nil {
		return "", "", fmt.Errorf("encode catalog index base of %s: %w", h.Database, err)
	}
	key := fmt.Sprintf("%sbase-%d-%s.gz", indexPrefix(h.Database), h.Generation, c.nonce())
	if _, err := c.store.Put(ctx, key, body, objstore.Cond{IfNoneMatch: true}); err != nil {
		return "", "", fmt.Errorf("write catalog index base %s: %w", key, err)
	}
	sum := sha256.Sum256(body)
	if h.Base != nil {
		oldBase = h.Base.Key
	}
	h.Base = &baseRef{Key: key, Count: len(merged), Size: int64(len(body)), SHA256: hex.EncodeToString(sum[:])}
	h.Rows, h.Removed = nil, nil
	for i, d := range h.Deleting {
		h.Deleting[i].Where = '-'
		if _, ok := slices.BinarySearchFunc(merged, d.Name, byName); ok {
			h.Deleting[i].Where = 'b'
		}
	}
	if m := h.Retained; m != nil && m.fresh {
		m.Base, m.Rows = key, 0
	}
	c.dropOrphans(ctx, h.Database, key, oldBase)
	return oldBase, key, nil
}

// dropOrphans deletes the bases of db older than orphanAge that are neither keep nor current:
// bases written by a compaction that lost its compare-and-swap and could not clean up, or
// replaced by one whose writer may not delete (best effort: errors are ignored).
func (c *Catalog) dropOrphans(ctx context.Context, db, keep, current string) {
	infos, err := c.store.List(ctx, indexPrefix(db)+"base-")
	if err != nil {
		return
	}
	var old []string
	for _, in := range infos {
		if in.Key != keep && in.Key != current && c.now().Sub(in.LastModified) > orphanAge {
			old = append(old, in.Key)
		}
	}
	_ = objstore.DeleteMany(ctx, c.store, old)
}

func (c *Catalog) nonce() string {
	b := make([]byte, 8)
	if c.rand != nil {
		_, _ = io.ReadFull(c.rand, b)
	} else {
		_, _ = crand.Read(b)
	}
	return hex.EncodeToString(b)
}

func byName(e Entry, name string) int {
	ts, typ, _ := strings.Cut(name, "-")
	if c := strings.Compare(e.ImageTimestamp, ts); c != 0 {
		return c
	}
	return strings.Compare(string(e.Type), typ)
}

// mergeRows returns base without the removed names, with rows added (a row replaces a base
// summary of the same name), sorted by name.
func mergeRows(base, rows []Entry, removed []string) []Entry {
	if len(rows) == 0 && len(removed) == 0 {
		return base
	}
	out := make([]Entry, 0, len(base)+len(rows))
	i, j := 0, 0
	for i < len(base) || j < len(rows) {
		switch {
		case j == len(rows) || i < len(base) && compareNames(&base[i], &rows[j]) < 0:
			if _, gone := slices.BinarySearchFunc(removed, &base[i], func(n string, e *Entry) int { return -byName(*e, n) }); !gone {
				out = append(out, base[i])
			}
			i++
		case i == len(base) || compareNames(&base[i], &rows[j]) > 0:
			out = append(out, rows[j])
			j++
		default: // the same name: the row is newer
			out = append(out, rows[j])
			i++
			j++
		}
	}
	return out
}

// --- small edits of a head, each idempotent ---

func rowIndex(h *head, name string) (int, bool) {
	return slices.BinarySearchFunc(h.Rows, name, byName)
}

func markIndex(ms []mark, name string) (int, bool) {
	return slices.BinarySearchFunc(ms, name, func(m mark, n string) int { return strings.Compare(m.Name, n) })
}

// addRow puts e's summary in the rows (replacing one of the same name) and takes its name out
// of the removed names, so that the row replaces a stale summary in the base.
func addRow(h *head, e Entry) {
	s := Summary(e)
	if i, ok := rowIndex(h, s.Name()); ok {
		h.Rows[i] = s
	} else {
		h.Rows = slices.Insert(h.Rows, i, s)
	}
	if i, ok := slices.BinarySearch(h.Removed, s.Name()); ok {
		h.Removed = slices.Delete(h.Removed, i, i+1)
	}
}

func addMark(ms []mark, m mark) ([]mark, bool) {
	i, ok := markIndex(ms, m.Name)
	if ok {
		return ms, false
	}
	return slices.Insert(ms, i, m), true
}

func dropMark(ms []mark, name string) ([]mark, bool) {
	i, ok := markIndex(ms, name)
	if !ok {
		return ms, false
	}
	return slices.Delete(ms, i, i+1), true
}

// --- reading the catalog through the index ---

// indexView is what a reader makes of the index: the summaries it stands for, by name.
type indexView struct {
	h       *head
	rows    []Entry // base and head rows merged, without the removed and deleting ones, by name
	skipped []Skipped
	found   map[string]fetched
	// gen is the head's generation once the view's repairs are written; exact is false when
	// others wrote the head meanwhile (it may then hold more than the view).
	gen   uint64
	exact bool
}

// fetched is the result of reading one entry named by an intent or a skipped object.
type fetched struct {
	entry Entry
	err   error // nil, or wrapping objstore.ErrNotFound or ErrInvalid
}

// Summaries returns db's catalog as the index records it: the summary (see Summary) of every
// entry, sorted by Compare, and the objects the index could not read (Skipped), like
// ListReport but reading one small head and one compressed base instead of one object per
// entry. Whole entries are read by Get. A missing, unreadable or stale index is rebuilt from the
// entries first (see Reindex); while another reader rebuilds it, the entries are listed and read
// one by one. Intents of Puts whose entry exists are applied (best effort). The error is non-nil
// only when the store fails or db is not a valid name. Safe concurrently.
func (c *Catalog) Summaries(ctx context.Context, db string) (Listing, error) {
	if err := state.ValidateDatabase(db); err != nil {
		return Listing{}, fmt.Errorf("catalog summaries: %w: %w", ErrInvalid, err)
	}
	v, err := c.view(ctx, db)
	if errors.Is(err, errBusy) {
		l, err := c.listAll(ctx, db)
		for i, e := range l.Entries {
			l.Entries[i] = Summary(e)
		}
		return l, err
	}
	if err != nil {
		return Listing{}, fmt.Errorf("catalog summaries of %s: %w", db, err)
	}
	return v.listing(), nil
}

// view reads db's index: head, base, and the entries its intents and skipped objects name. It
// rebuilds a missing or unreadable index, and repairs what the intents show (best effort).
func (c *Catalog) view(ctx context.Context, db string) (*indexView, error) {
	for attempt := range 4 {
		s, err := c.readHead(ctx, db)
		if err != nil {
			return nil, err
		}
		switch {
		case s.h == nil:
			if err := c.rebuild(ctx, db, s); err != nil {
				return nil, err
			}
			continue
		case !s.h.Building.IsZero() && c.now().Sub(s.h.Building) < BuildingGrace:
			return nil, errBusy
		case !s.h.Building.IsZero():
			if err := c.rebuild(ctx, db, s); err != nil { // the builder died: take over
				return nil, err
			}
			continue
		}
		base, err := c.readBase(ctx, s.h)
		switch {
		case errors.Is(err, errBaseGone) && attempt < 3:
			continue // compacted since: read the new head
		case errors.Is(err, ErrIndex) || errors.Is(err, errBaseGone):
			if err := c.rebuild(ctx, db, s); err != nil {
				return nil, err
			}
			continue
		case err != nil:
			return nil, err
		}
		v := &indexView{h: s.h, rows: mergeRows(base, s.h.Rows, s.h.Removed), skipped: s.h.Skipped, gen: s.h.Generation, exact: true}
		if len(s.h.Deleting) > 0 {
			v.rows = slices.DeleteFunc(slices.Clone(v.rows), func(e Entry) bool {
				_, deleting := markIndex(s.h.Deleting, e.Name())
				return deleting
			})
		}
		if err := c.resolve(ctx, v); err != nil {
			return nil, err
		}
		return v, nil
	}
	return nil, fmt.Errorf("read catalog index of %s: it keeps changing", db)
}

// resolve reads the entries v's intents and skipped objects name, adds to v what they show, and
// writes that to the head (best effort: a conflict leaves it to the next reader).
func (c *Catalog) resolve(ctx context.Context, v *indexView) error {
	h := v.h
	var keys []string
	for _, p := range h.Pending {
		ts, typ, _ := parseName(p.Name)
		keys = append(keys, Key(h.Database, ts, typ))
	}
	for _, s := range h.Skipped {
		keys = append(keys, s.Key)
	}
	if len(keys) == 0 {
		return nil
	}
	v.found = make(map[string]fetched, len(keys))
	results, err := c.fetchKeys(ctx, h.Database, keys)
	if err != nil {
		return err
	}
	for i, k := range keys {
		v.found[k] = results[i]
	}
	now := c.now()
	baseKey := baseKeyOf(h)
	known := make(map[string]bool, len(h.Pending))
	for _, p := range h.Pending {
		_, ok := slices.BinarySearchFunc(v.rows, p.Name, byName)
		known[p.Name] = ok
	}
	// What the reader sees now.
	for _, p := range h.Pending {
		ts, typ, _ := parseName(p.Name)
		if f := v.found[Key(h.Database, ts, typ)]; f.err == nil && !known[p.Name] {
			if _, deleting := markIndex(h.Deleting, p.Name); !deleting {
				v.rows = insertRow(v.rows, Summary(f.entry))
			}
		}
	}
	changed := false
	v.skipped = nil
	for _, s := range h.Skipped {
		switch f := v.found[s.Key]; {
		case f.err == nil:
			v.rows, changed = insertRow(v.rows, Summary(f.entry)), true
		case errors.Is(f.err, objstore.ErrNotFound):
			changed = true
		default:
			v.skipped = append(v.skipped, s)
		}
	}
	stale := changed || slices.ContainsFunc(h.Pending, func(p mark) bool {
		ts, typ, _ := parseName(p.Name)
		f := v.found[Key(h.Database, ts, typ)]
		return f.err == nil || errors.Is(f.err, ErrInvalid) || now.Sub(p.Since) > PendingGrace
	})
	if !stale {
		return nil
	}
	// The repair, applied to whatever head is current if it still stands on the same base.
	var wrote bool
	cur, err := c.update(ctx, h.Database, func(cur *head) (changed bool, err error) {
		defer func() { wrote = changed }()
		if baseKeyOf(cur) != baseKey || !cur.Building.IsZero() {
			return false, nil
		}
		for _, p := range slices.Clone(cur.Pending) {
			ts, typ, _ := parseName(p.Name)
			f, read := v.found[Key(cur.Database, ts, typ)]
			if _, deleting := markIndex(cur.Deleting, p.Name); !read || deleting {
				continue
			}
			switch {
			case f.err == nil:
				if !known[p.Name] {
					addRow(cur, f.entry)
				}
			case errors.Is(f.err, ErrInvalid):
				cur.Skipped = appendSkipped(cur.Skipped, Skipped{Key: Key(cur.Database, ts, typ), Reason: f.err.Error()})
			case errors.Is(f.err, objstore.ErrNotFound) && now.Sub(p.Since) > PendingGrace:
			default:
				continue
			}
			cur.Pending, _ = dropMark(cur.Pending, p.Name)
			changed = true
		}
		skipped := cur.Skipped[:0:0]
		for _, s := range cur.Skipped {
			f, read := v.found[s.Key]
			switch {
			case read && f.err == nil:
				addRow(cur, f.entry)
				changed = true
			case read && errors.Is(f.err, objstore.ErrNotFound):
				changed = true
			default:
				skipped = append(skipped, s)
			}
		}
		cur.Skipped = skipped
		return changed, nil
	})
	switch {
	case err != nil || cur == nil:
		v.exact = false
	case wrote && cur.Generation == v.gen+1, !wrote && cur.Generation == v.gen:
		v.gen = cur.Generation
	default:
		v.exact = false
	}
	return nil
}

func appendSkipped(list []Skipped, s Skipped) []Skipped {
	if len(list) >= maxSkipped || slices.ContainsFunc(list, func(x Skipped) bool { return x.Key == s.Key }) {
		return list
	}
	s.Reason = clean(s.Reason, maxDetail)
	return append(list, s)
}

func insertRow(rows []Entry, e Entry) []Entry {
	i, ok := slices.BinarySearchFunc(rows, e.Name(), byName)
	if ok {
		rows[i] = e
		return rows
	}
	return slices.Insert(rows, i, e)
}

func baseKeyOf(h *head) string {
	if h.Base == nil {
		return ""
	}
	return h.Base.Key
}

// listing is the view as ListReport would give it: summaries sorted by Compare, and what could
// not be read, two entries of one timestamp included. It reorders v.rows: call it last.
func (v *indexView) listing() Listing {
	db := v.h.Database
	l := Listing{Database: db, Skipped: slices.Clone(v.skipped)}
	dup := false
	for i := 1; i < len(v.rows) && !dup; i++ {
		dup = v.rows[i].ImageTimestamp == v.rows[i-1].ImageTimestamp
	}
	if !dup {
		l.Entries = v.rows // the view's own copy
	} else {
		l.Entries = make([]Entry, 0, len(v.rows))
	}
	for i := 0; dup && i < len(v.rows); {
		j := i + 1
		for j < len(v.rows) && v.rows[j].ImageTimestamp == v.rows[i].ImageTimestamp {
			j++
		}
		if j == i+1 {
			l.Entries = append(l.Entries, v.rows[i])
		} else { // Db2 never gives two images one timestamp: neither can be trusted
			for k := i; k < j; k++ {
				var others []string
				for o := i; o < j; o++ {
					if o != k {
						others = append(others, v.rows[o].Key())
					}
				}
				l.Skipped = append(l.Skipped, Skipped{Key: v.rows[k].Key(), Reason: fmt.Sprintf("%v: entries share timestamp %s with %s",
					ErrInvalid, v.rows[k].ImageTimestamp, strings.Join(others, ", "))})
			}
		}
		i = j
	}
	for _, p := range v.h.Pending {
		ts, typ, _ := parseName(p.Name)
		if f := v.found[Key(db, ts, typ)]; errors.Is(f.err, ErrInvalid) {
			l.Skipped = append(l.Skipped, Skipped{Key: Key(db, ts, typ), Reason: f.err.Error()})
		}
	}
	sortByCompare(l.Entries)
	slices.SortFunc(l.Skipped, func(a, b Skipped) int { return strings.Compare(a.Key, b.Key) })
	l.Skipped = slices.CompactFunc(l.Skipped, func(a, b Skipped) bool { return a.Key == b.Key })
	if len(l.Skipped) == 0 {
		l.Skipped = nil
	}
	return l
}

// sortByCompare sorts entries by Compare without copying them at each comparison. Summaries
// come by name, which is the order of Compare but across a fall-back hour.
func sortByCompare(entries []Entry) {
	sorted := true
	for i := 1; i < len(entries) && sorted; i++ {
		sorted = compareRefs(&entries[i-1], &entries[i]) <= 0
	}
	if sorted {
		return
	}
	idx := make([]int, len(entries))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return compareRefs(&entries[a], &entries[b]) })
	out := make([]Entry, len(entries))
	for i, j := range idx {
		out[i] = entries[j]
	}
	copy(entries, out)
}

// fetchKeys reads the entries at keys (of db) with a few concurrent GETs. Each result is the
// entry, or an error wrapping objstore.ErrNotFound (missing) or ErrInvalid (unreadable); any
// other failure of the store fails the call.
func (c *Catalog) fetchKeys(ctx context.Context, db string, keys []string) ([]fetched, error) {
	out := make([]fetched, len(keys))
	// As in ListReport: a failure stops the feeding, cancels nothing in flight, and the one
	// reported is the first in key order.
	var stop atomic.Bool
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(fetchWorkers, len(keys)) {
		wg.Go(func() {
			for i := range next {
				var e Entry
				var err error
				if _, _, ok := parseKey(strings.TrimPrefix(keys[i], Prefix(db))); !ok || !strings.HasPrefix(keys[i], Prefix(db)) {
					// Not an entry's name: only whether it is still there matters.
					_, _, err = c.store.Get(ctx, keys[i])
					if err == nil {
						err = fmt.Errorf("%w: not an entry name (<timestamp>-<full|incremental|delta>.json)", ErrInvalid)
					}
				} else {
					e, err = c.read(ctx, db, keys[i])
				}
				if err != nil && !errors.Is(err, objstore.ErrNotFound) && !errors.Is(err, ErrInvalid) {
					stop.Store(true)
				}
				out[i] = fetched{entry: e, err: err}
			}
		})
	}
	for i := range keys {
		if stop.Load() || ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	for _, f := range out {
		if f.err != nil && !errors.Is(f.err, objstore.ErrNotFound) && !errors.Is(f.err, ErrInvalid) {
			return nil, f.err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, context.Cause(ctx)
	}
	return out, nil
}

// --- rebuilding ---

// Reindex rebuilds db's index from its entries: it lists catalog/<db>/, reads every entry (one
// GET each: minutes for 100,000 entries) and writes the summaries. Puts and deletions may go on
// meanwhile: a rebuild marks the head as building first, so that their intents and deletions
// are recorded on it and applied to the listing when it is written. Summaries and Put rebuild
// a missing or unreadable index by themselves; Reindex is for an index that may lack entries
// written by other means (restored from a copy, or by a keyguard that predates the index).
func (c *Catalog) Reindex(ctx context.Context, db string) error {
	if err := state.ValidateDatabase(db); err != nil {
		return fmt.Errorf("reindex catalog: %w: %w", ErrInvalid, err)
	}
	s, err := c.readHead(ctx, db)
	if err != nil {
		return err
	}
	return c.rebuild(ctx, db, s)
}

// rebuild marks the head s as building (creating it when missing, replacing it when
// unreadable), lists and reads the entries, and writes their summaries on the head, minus the
// names deleted meanwhile. If another rebuild started first, rebuild returns errBusy.
func (c *Catalog) rebuild(ctx context.Context, db string, s *snapshot) error {
	started := c.now()
	switch {
	case s.h == nil:
		h := &head{Database: db, Generation: 1, Building: started}
		cond := objstore.Cond{IfNoneMatch: true}
		if s.etag != "" { // unreadable: replace it
			cond = objstore.Cond{IfMatch: s.etag}
		}
		body := encodeHead(h)
		if _, err := c.store.Put(ctx, IndexHeadKey(db), body, cond); err != nil {
			if !errors.Is(err, objstore.ErrPrecondition) && !errors.Is(err, objstore.ErrNotFound) {
				return fmt.Errorf("rebuild catalog index of %s: %w", db, err)
			}
			// Someone else's head, or ours written by a request whose answer was lost.
			if stored, _, gerr := c.store.Get(ctx, IndexHeadKey(db)); gerr != nil || !bytes.Equal(stored, body) {
				return errBusy
			}
		}
	default:
		gen := s.h.Generation
		_, err := c.update(ctx, db, func(h *head) (bool, error) {
			switch {
			case h.Building.Equal(started):
				return false, nil // ours, written by a request whose answer was lost
			case h.Generation != gen:
				return false, errBusy // someone else changed it: let them
			}
			h.Building, h.Base, h.Rows, h.Removed, h.Retained = started, nil, nil, nil, nil
			for i := range h.Deleting {
				h.Deleting[i].Where = '-'
			}
			return true, nil
		})
		if err != nil {
			return err
		}
	}
	l, err := c.listAll(ctx, db)
	if err != nil {
		return fmt.Errorf("rebuild catalog index of %s: %w", db, err)
	}
	done := c.now()
	_, err = c.update(ctx, db, func(h *head) (bool, error) {
		switch {
		case h.Building.IsZero() && h.Rebuilt.Equal(done):
			return false, nil // ours, written by a request whose answer was lost
		case !h.Building.Equal(started):
			return false, errBusy // taken over
		}
		h.Rows = h.Rows[:0]
		for _, e := range l.Entries {
			name := e.Name()
			_, deleting := markIndex(h.Deleting, name)
			_, removed := slices.BinarySearch(h.Removed, name)
			if !deleting && !removed {
				h.Rows = append(h.Rows, Summary(e))
			}
		}
		slices.SortFunc(h.Rows, func(a, b Entry) int { return compareNames(&a, &b) })
		h.Skipped = nil
		for _, sk := range l.Skipped {
			if _, dup := rowIndex(h, strings.TrimSuffix(strings.TrimPrefix(sk.Key, Prefix(db)), ".json")); !dup {
				h.Skipped = appendSkipped(h.Skipped, sk)
			}
		}
		h.Building, h.Rebuilt, h.Removed, h.Base, h.Retained = time.Time{}, done, nil, nil, nil
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("rebuild catalog index of %s: %w", db, err)
	}
	return nil
}

// --- Put and Delete through the index ---

// intend records a Put's intent to write the entry name, before the entry is written, so that a
// crash after the entry is written and before it is indexed is found by the next reader. A
// missing or unreadable index is rebuilt first.
func (c *Catalog) intend(ctx context.Context, db, name string) error {
	since := c.now()
	for range 3 {
		_, err := c.update(ctx, db, func(h *head) (bool, error) {
			var added bool
			h.Pending, added = addMark(h.Pending, mark{Name: name, Since: since})
			return added, nil
		})
		if !errors.Is(err, errNoIndex) {
			return err
		}
		s, err := c.readHead(ctx, db)
		if err != nil {
			return err
		}
		if s.h == nil {
			if err := c.rebuild(ctx, db, s); err != nil && !errors.Is(err, errBusy) {
				return err
			}
		}
	}
	return fmt.Errorf("catalog index of %s: %w", db, errNoIndex)
}

// indexed puts the entry e, now stored, in the head's rows in place of its intent. While the
// index is being rebuilt the intent stays, for the next reader to resolve.
func (c *Catalog) indexed(ctx context.Context, e Entry) error {
	name := e.Name()
	_, err := c.update(ctx, e.Database, func(h *head) (bool, error) {
		if _, deleting := markIndex(h.Deleting, name); !h.Building.IsZero() || deleting {
			return false, nil
		}
		if i, ok := rowIndex(h, name); ok && sameSummary(h.Rows[i], e) {
			var dropped bool
			h.Pending, dropped = dropMark(h.Pending, name)
			return dropped, nil
		}
		addRow(h, e)
		h.Pending, _ = dropMark(h.Pending, name)
		return true, nil
	})
	return err
}

// toDelete is an entry to delete: its name, the files keyguard stored for it and the
// timestamp of the image it builds on (none when unknown).
type toDelete struct {
	name  string
	files []string
	// parent is the timestamp of the image the entry builds on ("" for a full, or when the
	// entry is gone).
	parent string
}

// deleteNames deletes the entries of db named (and the files keyguard stored for them), a
// thousand at a time: it reads them (their files), removes them from the index (marking them
// deleting: no reader sees them from then on), deletes their files, then the entries, then
// clears the marks. A crash in between leaves marks that the next pruner finishes (see
// finishDeletions). A name with no entry is only taken out of the index. An unreadable entry is
// an error and nothing of its batch is deleted. It returns how many entries it deleted and the
// index's generation after each of its writes (for Prune to tell whether others wrote).
func (c *Catalog) deleteNames(ctx context.Context, db string, names []string) (int, []uint64, error) {
	n := 0
	var gens []uint64
	for len(names) > 0 {
		batch := names[:min(objstore.MaxBatchDelete, len(names))]
		names = names[len(batch):]
		keys := make([]string, len(batch))
		for i, name := range batch {
			ts, typ, ok := parseName(name)
			if !ok {
				return n, gens, fmt.Errorf("delete catalog entry %s/%s: %w: not an entry name", db, name, ErrInvalid)
			}
			keys[i] = Key(db, ts, typ)
		}
		found, err := c.fetchKeys(ctx, db, keys)
		if err != nil {
			return n, gens, fmt.Errorf("delete catalog entries of %s: %w", db, err)
		}
		var dels []toDelete
		for i, f := range found {
			switch {
			case errors.Is(f.err, ErrInvalid):
				return n, gens, fmt.Errorf("delete catalog entry %s: %w", keys[i], f.err)
			case f.err != nil:
				dels = append(dels, toDelete{name: batch[i]})
			default:
				dels = append(dels, toDelete{name: batch[i], files: ownFiles(f.entry), parent: f.entry.ParentTimestamp})
			}
		}
		g, err := c.delete(ctx, db, dels)
		gens = append(gens, g...)
		if err != nil {
			return n, gens, err
		}
		for _, f := range found {
			if f.err == nil {
				n++
			}
		}
	}
	return n, gens, nil
}

// ownFiles are the keys of e's files in keyguard's store (images and keystore under
// images/<database>/; external locations are left alone).
func ownFiles(e Entry) []string {
	var out []string
	all := slices.Clone(e.Images)
	if e.Keystore != nil {
		all = append(all, *e.Keystore)
	}
	for _, o := range all {
		if !o.External() && strings.HasPrefix(o.Key, imagePrefix(e.Database)) {
			out = append(out, o.Key)
		}
	}
	return out
}

// delete performs the deletion of dels: mark, files, entries, clear.
func (c *Catalog) delete(ctx context.Context, db string, dels []toDelete) ([]uint64, error) {
	since := c.now()
	var gens []uint64
	h, err := c.update(ctx, db, func(h *head) (bool, error) {
		changed := false
		for _, d := range dels {
			where := byte('-')
			switch _, inRows := rowIndex(h, d.name); {
			case !h.Building.IsZero():
			case inRows:
				where = 'r'
			case h.Base != nil:
				where = 'b' // perhaps: finishing it adds a name the base may not hold to removed
			}
			var added bool
			if h.Deleting, added = addMark(h.Deleting, mark{Name: d.name, Since: since, Where: where}); added {
				h.Deletions++
				changed = true
			}
		}
		return changed, nil
	})
	if errors.Is(err, errNoIndex) {
		// No index to hide them from: whoever builds it lists what is left.
		h, err = nil, nil
	}
	if err != nil {
		return gens, fmt.Errorf("delete catalog entries of %s: %w", db, err)
	}
	if h != nil {
		gens = append(gens, h.Generation)
	}
	var files []string
	names := make([]string, len(dels))
	for i, d := range dels {
		files = append(files, d.files...)
		names[i] = d.name
	}
	if err := objstore.DeleteMany(ctx, c.store, files); err != nil {
		return gens, fmt.Errorf("delete images of %d catalog entries of %s: %w", len(dels), db, err)
	}
	// Children before parents, so that a deletion stopped half way leaves no entry whose parent
	// is gone for a reader of the entries themselves (the index hides the whole batch from its
	// readers). DeleteMany deletes a batch in no particular order (S3 DeleteObjects, or
	// concurrent deletes), so the entries go in layers: first those no other entry of the batch
	// builds on, then those only they built on, and so on.
	for _, layer := range deletionLayers(dels) {
		keys := make([]string, len(layer))
		for i, d := range layer {
			ts, typ, _ := parseName(d.name)
			keys[i] = Key(db, ts, typ)
		}
		slices.SortFunc(keys, func(a, b string) int { return strings.Compare(b, a) })
		if err := objstore.DeleteMany(ctx, c.store, keys); err != nil {
			return gens, fmt.Errorf("delete %d catalog entries of %s: %w", len(dels), db, err)
		}
	}
	if h == nil {
		return gens, nil
	}
	h, err = c.update(ctx, db, func(h *head) (bool, error) { return clearDeleting(h, names), nil })
	if err != nil && !errors.Is(err, errNoIndex) {
		return gens, fmt.Errorf("delete catalog entries of %s: %w", db, err)
	}
	if h != nil {
		gens = append(gens, h.Generation)
	}
	return gens, nil
}

// deletionLayers splits dels into layers to delete one after the other: each entry comes in a
// layer after every entry of dels that names it as its parent.
func deletionLayers(dels []toDelete) [][]toDelete {
	left := slices.Clone(dels)
	var layers [][]toDelete
	for len(left) > 0 {
		parents := make(map[string]bool, len(left))
		for _, d := range left {
			if d.parent != "" {
				parents[d.parent] = true
			}
		}
		var layer, rest []toDelete
		for _, d := range left {
			ts, _, _ := parseName(d.name)
			if parents[ts] {
				rest = append(rest, d)
			} else {
				layer = append(layer, d)
			}
		}
		if len(layer) == 0 { // a cycle of parents cannot be written; delete what is left
			layer, rest = rest, nil
		}
		layers = append(layers, layer)
		left = rest
	}
	return layers
}

// clearDeleting ends the deletions of names whose entries are gone: each summary leaves the
// rows or the base (through the removed names).
func clearDeleting(h *head, names []string) bool {
	changed := false
	for _, name := range names {
		i, ok := markIndex(h.Deleting, name)
		if !ok {
			continue
		}
		d := h.Deleting[i]
		h.Deleting = slices.Delete(h.Deleting, i, i+1)
		changed = true
		if j, inRows := rowIndex(h, name); inRows {
			h.Rows = slices.Delete(h.Rows, j, j+1)
		}
		if d.Where == 'b' || !h.Building.IsZero() {
			if j, ok := slices.BinarySearch(h.Removed, name); !ok {
				h.Removed = slices.Insert(h.Removed, j, name)
			}
		}
	}
	return changed
}

// finishDeletions completes the deletions begun more than DeletingGrace ago (their deleter
// died): it deletes what is left of them and clears their marks. An image a running restore
// leases (inUse) waits for the lease to end.
func (c *Catalog) finishDeletions(ctx context.Context, h *head, inUse map[string]bool) error {
	var names []string
	for _, d := range h.Deleting {
		ts, _, _ := parseName(d.Name)
		if c.now().Sub(d.Since) > DeletingGrace && !inUse[ts] {
			names = append(names, d.Name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	_, _, err := c.deleteNames(ctx, h.Database, names)
	return err
}

// DeleteMany deletes db's entries taken at timestamps, each with the files keyguard stored for
// it, as Delete does, with few requests: one read of the index, one GET per entry (for its
// files), S3 DeleteObjects for the files and the entries (a thousand keys a request), and two
// writes of the index head per thousand entries. A timestamp with no entry is skipped. It
// returns how many entries it deleted. The entries leave the index before anything is deleted,
// so no reader of the index plans on an entry that is half gone; a deletion stopped half way
// is finished by the next Prune. Safe concurrently (two deletions of one entry both succeed).
func (c *Catalog) DeleteMany(ctx context.Context, db string, timestamps []string) (int, error) {
	for _, ts := range timestamps {
		if err := checkName(db, ts); err != nil {
			return 0, fmt.Errorf("delete catalog entries: %w", err)
		}
	}
	if len(timestamps) == 0 {
		return 0, nil
	}
	l, err := c.Summaries(ctx, db)
	if err != nil {
		return 0, fmt.Errorf("delete catalog entries of %s: %w", db, err)
	}
	byTS := make(map[string][]string, len(l.Entries))
	for _, e := range l.Entries {
		byTS[e.ImageTimestamp] = append(byTS[e.ImageTimestamp], e.Name())
	}
	var names []string
	for _, ts := range timestamps {
		if n, ok := byTS[ts]; ok {
			names = append(names, n...)
			continue
		}
		// Not in the index: perhaps an entry it does not know.
		keys, err := c.keysAt(ctx, db, ts)
		if err != nil {
			return 0, fmt.Errorf("delete catalog entry %s/%s: %w", db, ts, err)
		}
		for _, k := range keys {
			names = append(names, strings.TrimSuffix(strings.TrimPrefix(k, Prefix(db)), ".json"))
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	n, _, err := c.deleteNames(ctx, db, names)
	return n, err
}
