package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/keyguard-dev/keyguard/shared/objstore"
)

// MaxEncodedSize bounds the JSON encoding of one State. The lists in State are bounded, so a
// state near this size means something is wrong; it is refused rather than stored.
const MaxEncodedSize = 64 << 10

// ErrInvalidDatabase: the database name cannot name a state object.
var ErrInvalidDatabase = errors.New("invalid database name")

// dbName: a letter or digit, then letters, digits, '.', '_' or '-', at most 63 in all. Safe as
// one path segment of an object key, in URLs and in logs.
var dbName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// ValidateDatabase reports whether db can name a state object (see ErrInvalidDatabase).
func ValidateDatabase(db string) error {
	if !dbName.MatchString(db) {
		return fmt.Errorf("%w %q: want 1-63 characters of A-Z a-z 0-9 . _ - starting with a letter or digit", ErrInvalidDatabase, db)
	}
	return nil
}

// Key is the object key of db's state, relative to the object store's prefix.
func Key(db string) string { return "state/" + db + ".json" }

// ObjectStore is the Store over an objstore.Store: state/<db>.json, written with If-None-Match: *
// to create and If-Match: <etag> to replace. It is safe for concurrent use.
type ObjectStore struct {
	o objstore.Store
}

var _ Store = (*ObjectStore)(nil)

// NewObjectStore returns a Store keeping states in o (COS in production; the key prefix is o's).
func NewObjectStore(o objstore.Store) *ObjectStore { return &ObjectStore{o: o} }

// NewMemoryStore returns a Store in memory, for unit tests: an ObjectStore over objstore.NewMemory.
func NewMemoryStore() *ObjectStore { return NewObjectStore(objstore.NewMemory()) }

// Get returns the state of db and its ETag, or ErrNotFound. A stored object that does not decode
// is an error (never ErrNotFound: it must not be overwritten as if absent).
func (s *ObjectStore) Get(ctx context.Context, db string) (*State, string, error) {
	if err := ValidateDatabase(db); err != nil {
		return nil, "", fmt.Errorf("get state: %w", err)
	}
	body, etag, err := s.o.Get(ctx, Key(db))
	switch {
	case errors.Is(err, objstore.ErrNotFound):
		return nil, "", fmt.Errorf("get state %s: %w", db, ErrNotFound)
	case err != nil:
		return nil, "", fmt.Errorf("get state %s: %w", db, err)
	}
	st, err := Decode(body)
	if err != nil {
		return nil, "", fmt.Errorf("get state %s: %w", db, err)
	}
	return st, etag, nil
}

// Put writes st as db's state if the stored ETag is etag ("" = create only if absent), and
// returns the new ETag. ErrConflict when the precondition failed, ErrNotFound when etag is set
// but the object is gone (a store that answers 412 there yields ErrConflict; callers treat both
// as "re-read"). st.Database must be db or empty (then db is written); st is not changed.
func (s *ObjectStore) Put(ctx context.Context, db string, st *State, etag string) (string, error) {
	if err := ValidateDatabase(db); err != nil {
		return "", fmt.Errorf("put state: %w", err)
	}
	if st == nil {
		return "", fmt.Errorf("put state %s: nil state", db)
	}
	if st.SchemaVersion < 1 {
		return "", fmt.Errorf("put state %s: schema_version %d (build states with New)", db, st.SchemaVersion)
	}
	if st.Database != "" && st.Database != db {
		return "", fmt.Errorf("put state %s: state names database %q", db, st.Database)
	}
	cp := *st
	cp.Database = db
	body, err := Encode(&cp)
	if err != nil {
		return "", fmt.Errorf("put state %s: %w", db, err)
	}
	cond := objstore.Cond{IfMatch: etag, IfNoneMatch: etag == ""}
	newTag, err := s.o.Put(ctx, Key(db), body, cond)
	switch {
	case errors.Is(err, objstore.ErrPrecondition):
		return "", fmt.Errorf("put state %s: %w: %w", db, ErrConflict, err)
	case errors.Is(err, objstore.ErrNotFound):
		return "", fmt.Errorf("put state %s: %w", db, ErrNotFound)
	case err != nil:
		return "", fmt.Errorf("put state %s: %w", db, err)
	}
	return newTag, nil
}

// Databases lists the databases that have a state object, sorted.
func (s *ObjectStore) Databases(ctx context.Context) ([]string, error) {
	infos, err := s.o.List(ctx, "state/")
	if err != nil {
		return nil, fmt.Errorf("list states: %w", err)
	}
	var dbs []string
	for _, in := range infos {
		db, ok := strings.CutSuffix(strings.TrimPrefix(in.Key, "state/"), ".json")
		if ok && ValidateDatabase(db) == nil {
			dbs = append(dbs, db)
		}
	}
	return dbs, nil
}

// Encode returns the stored form of st: compact JSON, deterministic (fields in declaration
// order, map keys sorted), ending in a newline, at most MaxEncodedSize bytes.
func Encode(st *State) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(st); err != nil {
		return nil, fmt.Errorf("encode state: %w", err)
	}
	if buf.Len() > MaxEncodedSize {
		return nil, fmt.Errorf("encode state: %d bytes, more than %d", buf.Len(), MaxEncodedSize)
	}
	return buf.Bytes(), nil
}

// Decode parses a stored state. Unknown fields (from a newer writer) are ignored; Update refuses
// to rewrite a state of a newer SchemaVersion, so they are not lost.
func Decode(body []byte) (*State, error) {
	if len(body) > MaxEncodedSize {
		return nil, fmt.Errorf("decode state: %d bytes, more than %d", len(body), MaxEncodedSize)
	}
	var st State
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, fmt.Errorf("decode state: %w", err)
	}
	if st.SchemaVersion < 1 {
		return nil, fmt.Errorf("decode state: schema_version %d", st.SchemaVersion)
	}
	return &st, nil
}
