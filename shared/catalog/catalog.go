package catalog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/state"
)

// listWorkers bounds the concurrent GETs of List: a database keeps a few weeks of entries, and
// each GET is a round trip to COS.
const listWorkers = 8

// Catalog keeps entries in an object store (COS in production; the key prefix is the store's),
// with an index per database beside them (see Summaries). It holds no state of its own and is
// safe for concurrent use.
type Catalog struct {
	store objstore.Store
	clock clock.Clock
	// compactAt is Options.CompactAfter.
	compactAt int
	rand      io.Reader
}

// New returns a Catalog over store, with the default Options.
func New(store objstore.Store) *Catalog { return NewWithOptions(store, Options{}) }

// NewWithOptions returns a Catalog over store.
func NewWithOptions(store objstore.Store, o Options) *Catalog {
	return &Catalog{store: store, clock: o.Clock, compactAt: o.CompactAfter, rand: o.Rand}
}

func (c *Catalog) compactAfter() int {
	if c.compactAt > 0 {
		return c.compactAt
	}
	return DefaultCompactAfter
}

// Put validates e and stores it at e.Key() if no entry exists for its database and timestamp
// (If-None-Match: *). Storing an entry equal to the stored one succeeds (an idempotent retry,
// including an SDK retry of a PUT that had succeeded); a different stored entry for the same
// timestamp (of any type) is ErrExists. An invalid entry is ErrInvalid and nothing is sent. Two
// concurrent Puts of different entries at one key: exactly one succeeds. Entries of one
// timestamp under different types are detected by a listing before the write, which two
// concurrent writers can both pass; Db2 timestamps are unique per database, so this needs a
// broken writer. An entry that names a discarded entry as its parent is refused with a
// *ChainError (ErrBrokenChain) naming it: Db2 cannot restore such a chain.
func (c *Catalog) Put(ctx context.Context, e Entry) error {
	body, err := Encode(e)
	if err != nil {
		return fmt.Errorf("put catalog entry: %w", err)
	}
	key := e.Key()
	if e.ParentTimestamp != "" && !e.IsDiscarded() {
		parent, err := c.Get(ctx, e.Database, e.ParentTimestamp)
		switch {
		case err == nil && parent.IsDiscarded():
			return fmt.Errorf("put catalog entry %s: %w", key, &ChainError{Database: e.Database, Target: e.Name(), Image: e.Name(),
				Parent: e.ParentTimestamp, Discarded: parent.ImageTimestamp, Reason: fmt.Sprintf("its parent %s was discarded (%s)", parent.Name(), parent.Discarded.Reason)})
		case err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrInvalid):
			return fmt.Errorf("put catalog entry %s: read parent: %w", key, err)
		}
	}
	others, err := c.keysAt(ctx, e.Database, e.ImageTimestamp)
	if err != nil {
		return fmt.Errorf("put catalog entry %s: %w", key, err)
	}
	for _, k := range others {
		if k != key {
			return fmt.Errorf("put catalog entry %s: %w: %s is stored for the same timestamp", key, ErrExists, k)
		}
	}
	// The intent first: a crash between the entry and its summary leaves an intent that the
	// next reader of the index resolves.
	if err := c.intend(ctx, e.Database, e.Name()); err != nil {
		return fmt.Errorf("put catalog entry %s: %w", key, err)
	}
	_, err = c.store.Put(ctx, key, body, objstore.Cond{IfNoneMatch: true})
	if err == nil {
		c.index(ctx, e)
		return nil
	}
	if !errors.Is(err, objstore.ErrPrecondition) {
		return fmt.Errorf("put catalog entry %s: %w", key, err)
	}
	// The key exists: ours from an earlier attempt, or someone else's.
	old, _, gerr := c.store.Get(ctx, key)
	if gerr != nil {
		return fmt.Errorf("put catalog entry %s: exists, and reading it back failed: %w", key, gerr)
	}
	if bytes.Equal(old, body) {
		c.index(ctx, e)
		return nil
	}
	if prev, derr := Decode(old); derr == nil {
		if again, eerr := Encode(prev); eerr == nil && bytes.Equal(again, body) {
			c.index(ctx, e)
			return nil // same entry, stored with other formatting
		}
	}
	return fmt.Errorf("put catalog entry %s: %w", key, ErrExists)
}

// index puts the stored entry e in the index. Its failure is not the Put's: the entry is
// stored, and its intent in the index makes the next reader add it.
func (c *Catalog) index(ctx context.Context, e Entry) { _ = c.indexed(ctx, e) }

// keysAt lists the keys of db's entries at timestamp (normally zero or one).
func (c *Catalog) keysAt(ctx context.Context, db, timestamp string) ([]string, error) {
	infos, err := c.store.List(ctx, Prefix(db)+timestamp+"-")
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, in := range infos {
		if _, _, ok := parseKey(strings.TrimPrefix(in.Key, Prefix(db))); ok {
			keys = append(keys, in.Key)
		}
	}
	return keys, nil
}

func checkName(db, timestamp string) error {
	if err := state.ValidateDatabase(db); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if !ValidTimestamp(timestamp) {
		return fmt.Errorf("%w: timestamp %q is not 14 digits", ErrInvalid, timestamp)
	}
	return nil
}

// Get returns db's entry taken at timestamp, whatever its type, or ErrNotFound. A stored entry
// that does not decode, or that disagrees with its key, is an error wrapping ErrInvalid, as are
// two entries for one timestamp. Read-only; safe concurrently.
func (c *Catalog) Get(ctx context.Context, db, timestamp string) (Entry, error) {
	if err := checkName(db, timestamp); err != nil {
		return Entry{}, fmt.Errorf("get catalog entry: %w", err)
	}
	keys, err := c.keysAt(ctx, db, timestamp)
	if err != nil {
		return Entry{}, fmt.Errorf("get catalog entry %s/%s: %w", db, timestamp, err)
	}
	switch len(keys) {
	case 0:
		return Entry{}, fmt.Errorf("get catalog entry %s/%s: %w", db, timestamp, ErrNotFound)
	case 1:
	default:
		return Entry{}, fmt.Errorf("get catalog entry %s/%s: %w: several entries %v", db, timestamp, ErrInvalid, keys)
	}
	e, err := c.read(ctx, db, keys[0])
	if errors.Is(err, objstore.ErrNotFound) { // deleted between the listing and the read
		return Entry{}, fmt.Errorf("get catalog entry %s/%s: %w", db, timestamp, ErrNotFound)
	}
	return e, err
}

// read gets and decodes key, checking that the entry matches its key.
func (c *Catalog) read(ctx context.Context, db, key string) (Entry, error) {
	body, _, err := c.store.Get(ctx, key)
	if err != nil {
		return Entry{}, fmt.Errorf("read catalog entry %s: %w", key, err)
	}
	e, err := Decode(body)
	if err != nil {
		return Entry{}, fmt.Errorf("read catalog entry %s: %w", key, err)
	}
	if e.Database != db || e.Key() != key {
		return Entry{}, fmt.Errorf("read catalog entry %s: %w: the entry names %s", key, ErrInvalid, e.Key())
	}
	return e, nil
}

// Reserved sub-folders of catalog/<database>/: records of other kinds (runs, restores) kept
// beside the entries. List skips their objects without reporting them.
var reservedDirs = []string{"runs/", "restores/"}

// Skipped is an object under catalog/<database>/ that List could not read as an entry: a name
// that is not <timestamp>-<type>.json, a body that does not decode (corrupt, unknown fields, a
// newer schema written by a newer keyguard during a rolling upgrade), an entry that disagrees
// with its key, or one of two entries sharing a timestamp.
type Skipped struct {
	Key    string `json:"key"`
	Reason string `json:"reason"`
}

// Listing is a database's catalog as ListReport read it.
type Listing struct {
	Database string `json:"database"`
	// Entries are the entries that could be read, sorted by Compare (oldest first).
	Entries []Entry `json:"entries"`
	// Skipped are the objects that could not, sorted by key. Objects in the reserved
	// sub-folders runs/ and restores/ are not listed here.
	Skipped []Skipped `json:"skipped,omitempty"`
}

// Retain applies Retain to the listing's entries, unless something was skipped: then it keeps
// every entry and drops nothing. A skipped object may be an entry (a newer one that this
// reader cannot decode, say) whose chain needs older entries, or whose descendants a kept
// chain check depends on, and its timestamp is local time, not an instant: no part of the
// history can be shown safe to delete without it. Retention resumes once the object is
// readable or removed; callers should report l.Skipped (an operator must look).
func (l Listing) Retain(policy RetentionPolicy, now time.Time, inUse map[string]bool) (keep, drop []Entry) {
	if len(l.Skipped) > 0 {
		keep = slices.Clone(l.Entries)
		slices.SortStableFunc(keep, Compare)
		return keep, nil
	}
	return Retain(l.Entries, policy, now, inUse)
}

// List returns the entries of db that it can read, sorted by Compare (oldest first), or an
// empty list: ListReport without the report. Objects that are not readable entries are
// skipped, so one bad or newer object does not stop backups and restores; callers that delete
// must use ListReport and Listing.Retain, which account for them. Read-only; safe concurrently.
func (c *Catalog) List(ctx context.Context, db string) ([]Entry, error) {
	l, err := c.ListReport(ctx, db)
	return l.Entries, err
}

// ListReport reads every object under catalog/<db>/ with a few concurrent GETs and returns the
// entries it could read and the objects it skipped, with the reason (see Skipped): the record
// itself, whole entries, at one GET each. Summaries returns the same from the index, in one
// read. Objects in the reserved sub-folders runs/ and restores/ are ignored. An entry deleted
// during the call is left out, and so is one whose deletion began (marked on the index head,
// read first): no reader plans on an entry that a later Prune finishes deleting. The error is
// non-nil only when the store fails (listing, or reading an object: then nothing is returned,
// never a partial view presented as complete) or db is not a valid name (ErrInvalid).
// Read-only; safe concurrently.
func (c *Catalog) ListReport(ctx context.Context, db string) (Listing, error) {
	if err := state.ValidateDatabase(db); err != nil {
		return Listing{}, fmt.Errorf("list catalog: %w: %w", ErrInvalid, err)
	}
	s, err := c.readHead(ctx, db)
	if err != nil {
		return Listing{}, fmt.Errorf("list catalog %s: %w", db, err)
	}
	l, err := c.listAll(ctx, db)
	if err != nil || s.h == nil || len(s.h.Deleting) == 0 {
		return l, err
	}
	l.Entries = slices.DeleteFunc(l.Entries, func(e Entry) bool {
		_, deleting := markIndex(s.h.Deleting, e.Name())
		return deleting
	})
	return l, nil
}

// listAll is ListReport without the head: every entry stored, those being deleted too (the
// index's rebuild reads it).
func (c *Catalog) listAll(ctx context.Context, db string) (Listing, error) {
	if err := state.ValidateDatabase(db); err != nil {
		return Listing{}, fmt.Errorf("list catalog: %w: %w", ErrInvalid, err)
	}
	infos, err := c.store.List(ctx, Prefix(db))
	if err != nil {
		return Listing{}, fmt.Errorf("list catalog %s: %w", db, err)
	}
	l := Listing{Database: db, Entries: []Entry{}}
	var keys []string
	for _, in := range infos {
		name := strings.TrimPrefix(in.Key, Prefix(db))
		switch {
		case slices.ContainsFunc(reservedDirs, func(d string) bool { return strings.HasPrefix(name, d) }):
		case !validName(name):
			l.Skipped = append(l.Skipped, Skipped{Key: in.Key, Reason: "not an entry name (<timestamp>-<full|incremental|delta>.json)"})
		case in.Size > MaxEncodedSize:
			l.Skipped = append(l.Skipped, Skipped{Key: in.Key, Reason: fmt.Sprintf("%d bytes, more than %d", in.Size, MaxEncodedSize)})
		default:
			keys = append(keys, in.Key)
		}
	}
	entries := make([]Entry, len(keys))
	found := make([]bool, len(keys))
	errs := make([]error, len(keys))
	// A failure of the store stops the feeding of further keys but cancels none in flight, and
	// the failure reported is the first in key order: every key before it was read to the end,
	// so the same store gives the same answer whatever the goroutines' order.
	var stop atomic.Bool
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(listWorkers, len(keys)) {
		wg.Go(func() {
			for i := range next {
				e, err := c.read(ctx, db, keys[i])
				switch {
				case err == nil:
					entries[i], found[i] = e, true
				case errors.Is(err, objstore.ErrNotFound):
				case errors.Is(err, ErrInvalid):
					errs[i] = err // unreadable: reported below
				default:
					errs[i] = err
					stop.Store(true)
				}
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
	for i, err := range errs {
		switch {
		case err == nil:
		case errors.Is(err, ErrInvalid):
			l.Skipped = append(l.Skipped, Skipped{Key: keys[i], Reason: err.Error()})
		default:
			return Listing{}, fmt.Errorf("list catalog %s: %w", db, err)
		}
	}
	if ctx.Err() != nil {
		return Listing{}, fmt.Errorf("list catalog %s: %w", db, context.Cause(ctx))
	}
	byTS := map[string][]int{}
	for i, e := range entries {
		if found[i] {
			byTS[e.ImageTimestamp] = append(byTS[e.ImageTimestamp], i)
		}
	}
	for i, e := range entries {
		if !found[i] {
			continue
		}
		if same := byTS[e.ImageTimestamp]; len(same) > 1 {
			// Db2 never gives two images one timestamp: one of them is wrong, and which one
			// is not knowable here.
			others := make([]string, 0, len(same)-1)
			for _, j := range same {
				if j != i {
					others = append(others, keys[j])
				}
			}
			l.Skipped = append(l.Skipped, Skipped{Key: keys[i], Reason: fmt.Sprintf("%v: entries share timestamp %s with %s", ErrInvalid, e.ImageTimestamp, strings.Join(others, ", "))})
			continue
		}
		l.Entries = append(l.Entries, e)
	}
	slices.SortFunc(l.Entries, Compare)
	slices.SortFunc(l.Skipped, func(a, b Skipped) int { return strings.Compare(a.Key, b.Key) })
	return l, nil
}

func validName(name string) bool {
	_, _, ok := parseKey(name)
	return ok
}

// Delete removes db's entry taken at timestamp with the files keyguard stored for it (keys
// under images/<db>/, keystore included; external locations are left alone): first from the
// index, so that no reader of the index plans on it any more, then its files, then the entry,
// then its mark in the index (see DeleteMany, which deletes many at once). A crash in between
// leaves a mark that the next Prune finishes. Deleting a missing entry succeeds (idempotent);
// an unreadable one, or two entries at timestamp, is an error wrapping ErrInvalid. Retention
// and the operator call it. Safe concurrently; two concurrent Deletes of one entry both
// succeed.
func (c *Catalog) Delete(ctx context.Context, db, timestamp string) error {
	if err := checkName(db, timestamp); err != nil {
		return fmt.Errorf("delete catalog entry: %w", err)
	}
	keys, err := c.keysAt(ctx, db, timestamp)
	switch {
	case err != nil:
		return fmt.Errorf("delete catalog entry %s/%s: %w", db, timestamp, err)
	case len(keys) == 0:
		return nil
	case len(keys) > 1:
		return fmt.Errorf("delete catalog entry %s/%s: %w: several entries %v", db, timestamp, ErrInvalid, keys)
	}
	name := strings.TrimSuffix(strings.TrimPrefix(keys[0], Prefix(db)), ".json")
	if _, _, err := c.deleteNames(ctx, db, []string{name}); err != nil {
		return fmt.Errorf("delete catalog entry: %w", err)
	}
	return nil
}
