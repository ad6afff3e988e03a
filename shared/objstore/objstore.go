package objstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/keyguard-dev/keyguard/shared/errkind"
)

// Errors of a Store. Implementations wrap them with what was being done; test with errors.Is.
var (
	// ErrNotFound: the key does not exist (also the answer of an If-Match put on a missing key).
	ErrNotFound = errors.New("object not found")
	// ErrPrecondition: a conditional put failed (HTTP 412): the key exists for If-None-Match, or
	// its ETag differs from If-Match.
	ErrPrecondition = errors.New("precondition failed")
	// ErrInvalidKey: the key is empty, too long, not UTF-8 or otherwise unusable. Nothing was sent.
	ErrInvalidKey = errors.New("invalid object key")
)

// MaxKeyLen is the longest key (prefix included) accepted, in bytes (the S3 limit).
const MaxKeyLen = 1024

// MaxGetSize bounds what Get reads into memory. Store is for small objects; images are uploaded
// by other means.
const MaxGetSize = 16 << 20

// Cond is the precondition of a Put. The zero Cond writes unconditionally. At most one field may
// be set.
type Cond struct {
	// IfMatch, when not empty, writes only if the stored ETag equals it (If-Match).
	IfMatch string
	// IfNoneMatch writes only if the key does not exist (If-None-Match: *).
	IfNoneMatch bool
}

func (c Cond) validate() error {
	if c.IfMatch != "" && c.IfNoneMatch {
		return errors.New("objstore: Cond with both IfMatch and IfNoneMatch")
	}
	return nil
}

// Info describes one stored object.
type Info struct {
	// Key is relative to the store's prefix, as given to Put.
	Key          string
	Size         int64
	ETag         string
	LastModified time.Time
}

// Store keeps small objects by key. Keys are relative to the store's prefix. ETags are opaque
// strings: compare them only for equality and pass them back in Cond.IfMatch. Implementations
// are safe for concurrent use.
type Store interface {
	// Get returns the body and ETag of key, or ErrNotFound. Bodies larger than MaxGetSize are
	// refused with an error.
	Get(ctx context.Context, key string) ([]byte, string, error)
	// Put stores body at key if c holds, atomically, and returns the new ETag. A failed
	// precondition returns ErrPrecondition, except If-Match on a missing key, which returns
	// ErrNotFound. An unconditional Put is idempotent; a conditional Put repeated after it
	// succeeded (e.g. an SDK retry) answers ErrPrecondition, so callers that need to know must
	// re-read and compare.
	Put(ctx context.Context, key string, body []byte, c Cond) (string, error)
	// Delete removes key. Deleting a missing key succeeds (idempotent).
	Delete(ctx context.Context, key string) error
	// List returns the objects whose key starts with prefix, sorted by key (byte order), or an
	// empty list. It is not a snapshot: objects written during the call may or may not appear.
	List(ctx context.Context, prefix string) ([]Info, error)
}

// MaxBatchDelete is the most keys one S3 DeleteObjects request takes.
const MaxBatchDelete = 1000

// BatchDeleter is a Store that deletes many keys in few requests (S3 DeleteObjects,
// MaxBatchDelete keys a request). Use the DeleteMany function, which falls back to Delete for
// stores without it.
type BatchDeleter interface {
	// DeleteMany removes keys. Missing keys are not errors (idempotent). When it fails, any
	// subset of keys may be gone; calling it again with the same keys is safe. Safe concurrently.
	DeleteMany(ctx context.Context, keys []string) error
}

// deleteWorkers bounds the concurrent single deletes of DeleteMany's fallback.
const deleteWorkers = 8

// DeleteMany removes keys from s: in batches when s is a BatchDeleter, else with a few
// concurrent Deletes. Missing keys are not errors; an invalid key fails the call before anything
// is deleted. On failure any subset of keys may be gone (retrying is safe); the error joins the
// failures (at most a few are named).
func DeleteMany(ctx context.Context, s Store, keys []string) error {
	for _, k := range keys {
		if err := ValidateKey(k); err != nil {
			return fmt.Errorf("objstore: delete %d keys: %w", len(keys), err)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	if b, ok := s.(BatchDeleter); ok {
		return b.DeleteMany(ctx, keys)
	}
	var (
		mu     sync.Mutex
		failed []error
		wg     sync.WaitGroup
	)
	next := make(chan string)
	for range min(deleteWorkers, len(keys)) {
		wg.Go(func() {
			for k := range next {
				if err := s.Delete(ctx, k); err != nil {
					mu.Lock()
					failed = append(failed, err)
					mu.Unlock()
				}
			}
		})
	}
	for _, k := range keys {
		next <- k
	}
	close(next)
	wg.Wait()
	return joinFailures(fmt.Sprintf("objstore: delete %d keys", len(keys)), failed)
}

// joinFailures wraps the first few of failed (nil when empty) with what was being done and how
// many failed in all. Transient failures keep their mark.
func joinFailures(what string, failed []error) error {
	if len(failed) == 0 {
		return nil
	}
	const named = 3
	err := fmt.Errorf("%s: %d failed: %w", what, len(failed), errors.Join(failed[:min(named, len(failed))]...))
	if slices.ContainsFunc(failed, IsTransient) {
		return transientError{err}
	}
	return err
}

// ValidateKey reports whether key is usable as a key: not empty, valid UTF-8 without control
// characters, no leading "/", no "." or ".." path segment, at most MaxKeyLen bytes.
func ValidateKey(key string) error {
	bad := func(why string) error { return fmt.Errorf("%w %q: %s", ErrInvalidKey, key, why) }
	switch {
	case key == "":
		return bad("empty")
	case len(key) > MaxKeyLen:
		return bad(fmt.Sprintf("longer than %d bytes", MaxKeyLen))
	case !utf8.ValidString(key):
		return bad("not UTF-8")
	case strings.HasPrefix(key, "/"):
		return bad("leading slash")
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f {
			return bad("control character")
		}
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "." || seg == ".." {
			return bad("dot segment")
		}
	}
	return nil
}

// transientError marks an error as worth retrying later.
type transientError struct{ err error }

func (e transientError) Error() string      { return e.err.Error() }
func (e transientError) Unwrap() error      { return e.err }
func (e transientError) Kind() errkind.Kind { return errkind.Transient }

// MarkTransient returns err marked so that IsTransient reports true (nil stays nil). Fakes use
// it to inject retryable failures.
func MarkTransient(err error) error {
	if err == nil {
		return nil
	}
	return transientError{err}
}

// IsTransient reports whether err, or an error it wraps, is a transient failure of the store
// (5xx, throttling, timeout, broken connection): the same call may succeed later. Conflicts,
// missing keys, bad requests, authentication failures and cancellations are not transient.
func IsTransient(err error) bool {
	var t transientError
	return errors.As(err, &t)
}
