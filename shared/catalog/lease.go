package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/state"
)

// Limits of a lease.
const (
	// LeaseSchemaVersion is the version of the stored lease format.
	LeaseSchemaVersion = 1
	// MaxLeaseSize bounds the stored JSON of one lease.
	MaxLeaseSize = 64 << 10
	// MaxLeaseTerm bounds Until - Renewed: a lease is renewed, never taken for long, so that a
	// restore that died blocks retention for at most that long.
	MaxLeaseTerm = 24 * time.Hour
	maxLeaseID   = 64
)

// Lease is a running restore's claim on images of one database: retention keeps them (and their
// chains) until the lease's Until. It is a small mutable JSON object at
// leases/<database>/restore-<id>.json (outside catalog/ and images/, which may be under Object
// Lock), created with If-None-Match: * when the restore starts (PutLease with no ETag), renewed
// with If-Match while it runs (PutLease with the ETag), and deleted when it ends (DeleteLease).
// A lease whose Until has passed (its restore died) is ignored. Retention asks InUse.
//
// Ordering: a lease protects the images from every retention run that reads the leases after it
// was written. A retention run that read them before may still delete an image the restore
// planned to use; the restore then fails cleanly (every download is checked against the
// catalog), and never restores from a wrong image.
type Lease struct {
	Database string `json:"database"`
	// RestoreID names the restore (letters, digits, '-'); the lease's key is built from it.
	RestoreID string `json:"restore_id"`
	// Images are the timestamps of the images the restore uses (its whole chain).
	Images []string `json:"images"`
	// Created is when the restore took the lease; Renewed when it last renewed it.
	Created time.Time `json:"created"`
	Renewed time.Time `json:"renewed"`
	// Until is when the lease ends unless renewed: retention ignores it from then on.
	Until time.Time `json:"until"`
}

// LeasePrefix is the key prefix of db's leases: leases/<database>/.
func LeasePrefix(db string) string { return "leases/" + db + "/" }

// LeaseKey is the object key of a restore's lease: leases/<database>/restore-<id>.json.
func LeaseKey(db, id string) string { return LeasePrefix(db) + "restore-" + id + ".json" }

// Key is the object key of l.
func (l Lease) Key() string { return LeaseKey(l.Database, l.RestoreID) }

func validLeaseID(id string) bool {
	if id == "" || len(id) > maxLeaseID {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// Validate returns an error wrapping ErrInvalid that names every rule l breaks, or nil.
func (l Lease) Validate() error {
	var p problems
	if err := state.ValidateDatabase(l.Database); err != nil {
		p.need(false, "database: %v", err)
	}
	p.need(validLeaseID(l.RestoreID), "restore_id must be 1-%d letters, digits or '-'", maxLeaseID)
	p.need(len(l.Images) > 0, "images must name at least one image")
	p.need(len(l.Images) <= MaxImages, "more than %d images", MaxImages)
	seen := make(map[string]bool, len(l.Images))
	for i, ts := range l.Images {
		p.need(ValidTimestamp(ts), "images[%d] must be an image timestamp (14 digits)", i)
		p.need(!seen[ts], "images[%d] %s is repeated", i, ts)
		seen[ts] = true
	}
	p.need(!l.Created.IsZero() && !l.Renewed.IsZero() && !l.Until.IsZero(), "created, renewed and until are required")
	p.need(sane(l.Created) && sane(l.Renewed) && sane(l.Until), "instants must fall in the years 1970-9999 (UTC)")
	p.need(!l.Renewed.Before(l.Created), "renewed is before created")
	p.need(l.Until.After(l.Renewed), "until must be after renewed")
	p.need(l.Until.Sub(l.Renewed) <= MaxLeaseTerm, "until is more than %s after renewed", MaxLeaseTerm)
	if len(p) == 0 {
		return nil
	}
	return fmt.Errorf("%w lease %s/%s: %s", ErrInvalid, l.Database, l.RestoreID, strings.Join(p, "; "))
}

type storedLease struct {
	SchemaVersion int `json:"schema_version"`
	Lease
}

// EncodeLease validates l and returns its stored form (indented JSON, instants in UTC).
func EncodeLease(l Lease) ([]byte, error) {
	if err := l.Validate(); err != nil {
		return nil, fmt.Errorf("encode lease: %w", err)
	}
	l.Created, l.Renewed, l.Until = l.Created.UTC(), l.Renewed.UTC(), l.Until.UTC()
	b, err := json.MarshalIndent(storedLease{SchemaVersion: LeaseSchemaVersion, Lease: l}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode lease: %w", err)
	}
	return append(b, '\n'), nil
}

// DecodeLease parses a stored lease strictly: more than MaxLeaseSize bytes, unknown fields, a
// second JSON value, a missing or newer schema version, or a lease that fails Validate are
// errors wrapping ErrInvalid.
func DecodeLease(body []byte) (Lease, error) {
	bad := func(format string, args ...any) (Lease, error) {
		return Lease{}, fmt.Errorf("decode lease: %w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	if len(body) > MaxLeaseSize {
		return bad("%d bytes, more than %d", len(body), MaxLeaseSize)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var s storedLease
	if err := dec.Decode(&s); err != nil {
		return bad("%v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return bad("data after the lease")
	}
	if s.SchemaVersion != LeaseSchemaVersion {
		return bad("schema_version %d, want %d", s.SchemaVersion, LeaseSchemaVersion)
	}
	if err := s.Lease.Validate(); err != nil {
		return Lease{}, fmt.Errorf("decode lease: %w", err)
	}
	return s.Lease, nil
}

// LeaseWriter is where a restore keeps its lease. objstore.Store implements it.
type LeaseWriter interface {
	Get(ctx context.Context, key string) ([]byte, string, error)
	Put(ctx context.Context, key string, body []byte, c objstore.Cond) (string, error)
	Delete(ctx context.Context, key string) error
}

// LeaseReader is where retention reads leases. objstore.Store implements it.
type LeaseReader interface {
	Get(ctx context.Context, key string) ([]byte, string, error)
	List(ctx context.Context, prefix string) ([]objstore.Info, error)
}

// PutLease stores l at l.Key() and returns its new ETag. With etag empty it creates the lease
// (If-None-Match: *): a lease already stored with the same content is success (a retried
// create), with other content ErrExists. With etag set it renews (If-Match: etag): a lease that
// changed since is objstore.ErrPrecondition, one that was deleted objstore.ErrNotFound. An
// invalid lease is ErrInvalid and nothing is sent.
func PutLease(ctx context.Context, store LeaseWriter, l Lease, etag string) (string, error) {
	body, err := EncodeLease(l)
	if err != nil {
		return "", fmt.Errorf("put lease: %w", err)
	}
	key := l.Key()
	cond := objstore.Cond{IfMatch: etag, IfNoneMatch: etag == ""}
	tag, err := store.Put(ctx, key, body, cond)
	if !errors.Is(err, objstore.ErrPrecondition) {
		if err != nil {
			return "", fmt.Errorf("put lease %s: %w", key, err)
		}
		return tag, nil
	}
	// A retried PUT that had succeeded also answers 412: the stored body tells.
	old, tag, gerr := store.Get(ctx, key)
	switch {
	case gerr != nil:
		return "", fmt.Errorf("put lease %s: %w, and reading it back failed: %w", key, err, gerr)
	case bytes.Equal(old, body):
		return tag, nil
	case etag == "":
		return "", fmt.Errorf("put lease %s: %w", key, ErrExists)
	}
	return "", fmt.Errorf("put lease %s: %w", key, err)
}

// DeleteLease removes a restore's lease. Deleting a missing lease succeeds (idempotent).
func DeleteLease(ctx context.Context, store LeaseWriter, db, id string) error {
	if err := store.Delete(ctx, LeaseKey(db, id)); err != nil {
		return fmt.Errorf("delete lease %s: %w", LeaseKey(db, id), err)
	}
	return nil
}

// InUse returns the image timestamps of db that running restores use: the images of every lease
// under leases/<db>/ whose Until is after now. Expired leases are ignored, and so are objects
// there that are not named restore-<id>.json. A lease that does not decode, or that names
// another database or id than its key, is an error wrapping ErrInvalid that names it: retention
// must not decide without knowing what it would take from a restore. A lease deleted during the
// call is left out. Read-only; safe concurrently.
func InUse(ctx context.Context, store LeaseReader, db string, now time.Time) (map[string]bool, error) {
	if err := state.ValidateDatabase(db); err != nil {
		return nil, fmt.Errorf("restore leases: %w: %w", ErrInvalid, err)
	}
	infos, err := store.List(ctx, LeasePrefix(db))
	if err != nil {
		return nil, fmt.Errorf("list restore leases of %s: %w", db, err)
	}
	inUse := map[string]bool{}
	for _, in := range infos {
		name := strings.TrimPrefix(in.Key, LeasePrefix(db))
		rest, isRestore := strings.CutPrefix(name, "restore-")
		id, isJSON := strings.CutSuffix(rest, ".json")
		if !isRestore || !isJSON || strings.Contains(name, "/") {
			continue // not a restore lease
		}
		body, _, err := store.Get(ctx, in.Key)
		if errors.Is(err, objstore.ErrNotFound) {
			continue // released meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("read restore lease %s: %w", in.Key, err)
		}
		l, err := DecodeLease(body)
		if err != nil {
			return nil, fmt.Errorf("read restore lease %s: %w", in.Key, err)
		}
		if l.Database != db || l.RestoreID != id {
			return nil, fmt.Errorf("read restore lease %s: %w: it names %s", in.Key, ErrInvalid, l.Key())
		}
		if !now.Before(l.Until) {
			continue // expired: its restore stopped renewing it
		}
		for _, ts := range l.Images {
			inUse[ts] = true
		}
	}
	return inUse, nil
}

// InUse is InUse over the catalog's store (leases live beside the catalog).
func (c *Catalog) InUse(ctx context.Context, db string, now time.Time) (map[string]bool, error) {
	return InUse(ctx, c.store, db, now)
}

// leaseImages returns the timestamps of entries, for a lease.
func leaseImages(entries []Entry) []string {
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		if !slices.Contains(out, e.ImageTimestamp) {
			out = append(out, e.ImageTimestamp)
		}
	}
	return out
}

// RestoreLease returns the lease a restore with id takes on the images of plan, for term from
// now.
func RestoreLease(plan RestorePlan, id string, now time.Time, term time.Duration) Lease {
	return Lease{Database: plan.Database, RestoreID: id, Images: leaseImages(plan.Images), Created: now, Renewed: now, Until: now.Add(term)}
}
