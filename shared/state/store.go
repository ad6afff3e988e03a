package state

import (
	"context"
	"errors"
)

// Errors of a Store.
var (
	// ErrNotFound: no state object exists for the database.
	ErrNotFound = errors.New("state not found")
	// ErrConflict: the stored object is not the one the caller read (CAS lost).
	ErrConflict = errors.New("state changed concurrently")
)

// Store reads and writes state objects by compare-and-swap. Implementations are safe for
// concurrent use; the in-memory one is for unit tests, the COS one for everything else.
type Store interface {
	// Get returns the stored state of db and its ETag, or ErrNotFound.
	Get(ctx context.Context, db string) (*State, string, error)
	// Put writes s for db if the stored ETag still equals etag; etag "" means create only if
	// absent. It returns the new ETag, or ErrConflict when the precondition failed (ErrNotFound
	// when etag is set and the object is gone). Put does not change s.
	Put(ctx context.Context, db string, s *State, etag string) (string, error)
}
