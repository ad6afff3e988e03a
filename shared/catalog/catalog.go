package catalog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/state"
)

// listWorkers bounds the concurrent GETs of List: a database keeps a few weeks of entries, and
// each GET is a round trip to COS.
const listWorkers = 8

// Catalog keeps entries in an object store (COS in production; the key prefix is the store's).
// It holds no state of its own and is safe for concurrent use.
type Catalog struct {
	store objstore.Store
}

// New returns a Catalog over store.
func New(store objstore.Store) *Catalog { return &Catalog{store: store} }

// Put validates e and stores it at e.Key() if no entry exists for its database and timestamp
// (If-None-Match: *). Storing an entry equal to the stored one succeeds (an idempotent retry,
// including an SDK retry of a PUT that had succeeded); a different stored entry for the same
// timestamp (of any type) is ErrExists. An invalid entry is ErrInvalid and nothing is sent. Two
// concurrent Puts of different entries at one key: exactly one succeeds. Entries of one
// timestamp under different types are detected by a listing before the write, which two
// concurrent writers can both pass; Db2 timestamps are unique per database, so this needs a
// broken writer.
func (c *Catalog) Put(ctx context.Context, e Entry) error {
	body, err := Encode(e)
	if err != nil {
		return fmt.Errorf("put catalog entry: %w", err)
	}
	key := e.Key()
	others, err := c.keysAt(ctx, e.Database, e.ImageTimestamp)
	if err != nil {
		return fmt.Errorf("put catalog entry %s: %w", key, err)
	}
	for _, k := range others {
		if k != key {
			return fmt.Errorf("put catalog entry %s: %w: %s is stored for the same timestamp", key, ErrExists, k)
		}
	}
	_, err = c.store.Put(ctx, key, body, objstore.Cond{IfNoneMatch: true})
	if err == nil {
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
		return nil
	}
	if prev, derr := Decode(old); derr == nil {
		if again, eerr := Encode(prev); eerr == nil && bytes.Equal(again, body) {
			return nil // same entry, stored with other formatting
		}
	}
	return fmt.Errorf("put catalog entry %s: %w", key, ErrExists)
}

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

// List returns every entry of db sorted by Compare (oldest instant first), or an empty list. Any object under
// catalog/<db>/ that is not a well-named, valid entry is an error naming it (retention must not
// work from a partial view). Entries are read with a few concurrent GETs. An entry deleted
// during the call is left out. Read-only; safe concurrently.
func (c *Catalog) List(ctx context.Context, db string) ([]Entry, error) {
	if err := state.ValidateDatabase(db); err != nil {
		return nil, fmt.Errorf("list catalog: %w: %w", ErrInvalid, err)
	}
	infos, err := c.store.List(ctx, Prefix(db))
	if err != nil {
		return nil, fmt.Errorf("list catalog %s: %w", db, err)
	}
	var keys []string
	for _, in := range infos {
		if _, _, ok := parseKey(strings.TrimPrefix(in.Key, Prefix(db))); !ok {
			return nil, fmt.Errorf("list catalog %s: %w: unexpected object %s", db, ErrInvalid, in.Key)
		}
		keys = append(keys, in.Key)
	}
	entries := make([]Entry, len(keys))
	found := make([]bool, len(keys))
	errs := make([]error, len(keys))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
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
				default:
					errs[i] = err
					cancel()
				}
			}
		})
	}
feed:
	for i := range keys {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("list catalog %s: %w", db, err)
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("list catalog %s: %w", db, context.Cause(ctx))
	}
	out := make([]Entry, 0, len(entries))
	for i, e := range entries {
		if found[i] {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, Compare)
	seen := make(map[string]string, len(out))
	for _, e := range out {
		if other, dup := seen[e.ImageTimestamp]; dup {
			return nil, fmt.Errorf("list catalog %s: %w: %s and %s share a timestamp", db, ErrInvalid, other, e.Key())
		}
		seen[e.ImageTimestamp] = e.Key()
	}
	return out, nil
}

// Delete removes db's entry taken at timestamp: first the files keyguard stored for it (keys
// under images/<db>/, keystore included; external locations are left alone), then the entry, so
// that a crash in between leaves the entry for the next retention run, which deletes it again
// (Retain is deterministic). Deleting a missing entry succeeds (idempotent). Only retention
// calls it, with entries Retain dropped. Safe concurrently with other keys; two concurrent
// Deletes of one entry both succeed.
func (c *Catalog) Delete(ctx context.Context, db, timestamp string) error {
	e, err := c.Get(ctx, db, timestamp)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("delete catalog entry: %w", err)
	}
	files := slices.Clone(e.Images)
	if e.Keystore != nil {
		files = append(files, *e.Keystore)
	}
	for _, o := range files {
		if o.External() || !strings.HasPrefix(o.Key, imagePrefix(db)) {
			continue
		}
		if err := c.store.Delete(ctx, o.Key); err != nil {
			return fmt.Errorf("delete catalog entry %s: image %s: %w", e.Key(), o.Key, err)
		}
	}
	if err := c.store.Delete(ctx, e.Key()); err != nil {
		return fmt.Errorf("delete catalog entry %s: %w", e.Key(), err)
	}
	return nil
}
